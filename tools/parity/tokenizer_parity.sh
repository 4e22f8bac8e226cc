#!/usr/bin/env bash
# Tokenizer parity fixtures: llama.cpp's token ids for every case of the corpus, for loom's
# pre-tokenizer ("llama3"), DeepSeek-V3's, GPT-2's and llama.cpp's "default", written to
# tests/data/tokenizer/expect-*.txt (test_tokenizer checks loom against them without npm).
#
#   tools/parity/tokenizer_parity.sh [--retrain]
#
# Needs the peer (tools/peer/install → peer/). Both llama.cpp front ends are run: the node
# script (node-llama-cpp, valid-UTF-8 cases) and the C API (every case, bytes as they are);
# they must agree wherever both apply.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
D=tests/data/tokenizer
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
NLC=peer/node_modules/node-llama-cpp
BINS=peer/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
[ -d "$NLC" ] || { echo "no peer: run tools/peer/install (or ln -s an installed peer/)"; exit 1; }

if [ "${1:-}" = "--retrain" ]; then $PY tools/parity/tokenizer_fixtures.py vocab $D; fi
$PY tools/parity/tokenizer_fixtures.py corpus $D/corpus.txt

# llama.h of the same llama.cpp release, from the bundle node-llama-cpp ships
git clone -q "$NLC/llama/gitRelease.bundle" "$W/llama.cpp" 2>/dev/null
cc -O1 -o "$W/tok" tools/parity/tokenize_llamacpp.c -I"$W/llama.cpp/include" \
   -I"$W/llama.cpp/ggml/include" "$(readlink -f $BINS)"/libllama.v*.so \
   "$(readlink -f $BINS)"/libggml.v*.so "$(readlink -f $BINS)/libggml-base.so" \
   -Wl,-rpath,"$(readlink -f $BINS)"

# fixture name : tokenizer.ggml.pre written into the model (same vocabulary and merges)
for spec in loom:llama3 deepseek-v3:deepseek-v3 gpt2:gpt-2 default:default; do
  pre=${spec%%:*}
  $PY tools/parity/tokenizer_fixtures.py model $D/vocab-loom.gguf "$W/model-$pre.gguf" "${spec#*:}"
  "$W/tok" "$W/model-$pre.gguf" $D/corpus.txt > "$W/c-$pre.txt"
  node tools/parity/tokenize_llamacpp.mjs "$W/model-$pre.gguf" $D/corpus.txt > "$W/js-$pre.txt"
  bad=$(paste -d'|' "$W/js-$pre.txt" "$W/c-$pre.txt" | awk -F'|' '$1 != "skip" && $1 != $2' | wc -l)
  n=$(wc -l < "$W/c-$pre.txt"); js=$(grep -vc '^skip$' "$W/js-$pre.txt" || true)
  echo "$pre: $n cases from the C API, $js also through node-llama-cpp, $bad disagreements"
  [ "$bad" = 0 ] || exit 1
  cp "$W/c-$pre.txt" $D/expect-$pre.txt
done

# speed and 1 MiB parity: loom (static library from build/) vs llama.cpp's C API
if [ -f build/libloom.a ]; then
  cc -O2 -D_GNU_SOURCE -o "$W/speed" tools/parity/tokenizer_speed.c -I. -Iinclude \
     -I"$W/llama.cpp/include" -I"$W/llama.cpp/ggml/include" build/libloom.a \
     "$(readlink -f $BINS)"/libllama.v*.so "$(readlink -f $BINS)"/libggml.v*.so \
     "$(readlink -f $BINS)/libggml-base.so" -Wl,-rpath,"$(readlink -f $BINS)" \
     -ldl -lm -lpthread
  "$W/speed" "$W/model-loom.gguf" $D/vocab-loom.gguf
else
  echo "(build/libloom.a missing: run scripts/build for the speed comparison)"
fi
