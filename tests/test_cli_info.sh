#!/usr/bin/env bash
# `loom info`: metadata and tensor table of a valid file (plain and --json), clear failures
# for malformed and missing files, usage errors.
set -u
loom="$1"
. "$(dirname "$0")/check.sh"
expect() { # expect NAME REGEX   (grep the last check's stdout and stderr)
  grep -qE -- "$2" "$tmp/all" && ok || { bad "$1: no match for '$2' in:"; cat "$tmp/all"; }
}

check info 0 "$loom" info data/gguf/tiny.gguf
expect header "GGUF v3, alignment 32, 7 metadata keys, 4 tensors"
expect arch "general.architecture +string +tiny$"
expect ctx "tiny.context_length +u32 +128$"
expect tokens-summarized 'tokenizer.ggml.tokens +array +\[string × 1000: "tok0", .*, …\]$'
expect f16 "token_embd.weight +f16 +\[64, 4\] +512$"
expect q8 "blk.0.ffn_up.weight +q8_0 +\[64, 4\] +272$"
expect total "total: 1552 bytes in 4 tensors"
expect by-type "by type: f16 1 \(512 bytes\), f32 1 \(256 bytes\), bf16 1 \(512 bytes\), q8_0 1 \(272 bytes\)$"
[ "$(wc -l <"$tmp/out")" -lt 30 ] && ok || bad "long array dumped"

check info-model-flag 0 "$loom" info --model data/gguf/tiny.gguf
expect model-flag "output_norm.weight +f32 +\[64\] +256$"

check info-json 0 "$loom" info --json data/gguf/tiny.gguf
expect json-kv '\{"key": "tiny.context_length", "type": "u32", "value": 128\}'
expect json-bool '"value": true'
expect json-tensor '\{"name": "blk.0.attn_q.weight", "type": "bf16", "type_id": 30, "shape": \[64, 4\], "offset": [0-9]+, "bytes": 512\}'
py=$(command -v /usr/bin/python3 python3 | head -1)
if [ -n "$py" ]; then
  "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["tensors"]) == 4 and len(d["metadata"]) == 7' "$tmp/out" \
    && ok || { bad "json does not parse"; cat "$tmp/out"; }
fi

check info-unknown-type 0 "$loom" info data/gguf_bad/unknown_tensor_type.gguf
expect unknown-type "blk.q4k +type12 +\[256\]"

check info-bad 1 "$loom" info data/gguf_bad/misaligned_offset.gguf
expect bad-msg "^loom: info: data/gguf_bad/misaligned_offset.gguf: tensor 0 \('t'\): offset 4 is not a multiple of alignment 32"
check info-magic 1 "$loom" info data/gguf_bad/wrong_magic.gguf
expect magic-msg "not a GGUF file"
check info-missing 1 "$loom" info data/gguf/no-such-file.gguf
expect missing-msg "no-such-file.gguf: cannot open: No such file"
check info-dir 1 "$loom" info data/gguf
check info-noarg 2 "$loom" info
check info-badopt 2 "$loom" info --frob data/gguf/tiny.gguf
check info-two 2 "$loom" info data/gguf/tiny.gguf data/gguf/tiny.gguf
check info-help 0 "$loom" info --help
expect help "usage: loom info"
check top-help 0 "$loom" --help
expect top-help-lists "^  info "

finish
