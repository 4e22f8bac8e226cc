#!/usr/bin/env bash
# `loom bench`: the table has one pp and one tg row per thread count with positive speeds,
# -p 0 / -n 0 skip a test, --json is one object per test with every repetition, and bad
# options, a test longer than the training context and a missing model are refused. The
# speeds themselves are benchmarks (docs/BENCHMARKS.md), not tested.
set -u
loom="$1"
. "$(dirname "$0")/check.sh"
m=../models/loom-tiny.gguf

check table 0 "$loom" bench -m $m -p 32 -n 8 -r 2 -t 1,2
has out "| model | size | params | threads | test | t/s |"
[ "$(grep -cE '^\| deepseek2 .* \| [0-9.]+ MiB \| [0-9.]+ M \| [12] \| (pp32|tg8) \| [0-9.]+ ± [0-9.]+ \|$' "$tmp/out")" -eq 4 ] \
  && ok || { bad "expected 4 rows (pp32, tg8 for 1 and 2 threads)"; cat "$tmp/out"; }
grep -qE '\| 1 \| pp32 \| 0\.00 ±' "$tmp/out" && bad "a speed of 0" || ok
has err "2 runs per test after one warm-up"

check pp-only 0 "$loom" bench -q -m $m -p 16 -n 0 -r 1 -t 1
[ "$(grep -c '| pp16 |' "$tmp/out")" -eq 1 ] && ! grep -q '| tg' "$tmp/out" && ! grep -q '^| model' "$tmp/out" \
  && ok || { bad "-p 16 -n 0 -q: one pp row, no header"; cat "$tmp/out"; }

check json 0 "$loom" bench -m $m -p 16 -n 4 -r 3 -t 1 --json
python3 - "$tmp/out" <<'PY' && ok || bad "--json"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["test"] for r in rows] == ["pp16", "tg4"], rows
for r in rows:
    assert r["threads"] == 1 and r["repetitions"] == 3 and len(r["tokens_per_s"]) == 3, r
    assert all(t > 0 for t in r["tokens_per_s"]) and abs(sum(r["tokens_per_s"]) / 3 - r["avg_ts"]) < 0.01, r
    assert r["size_bytes"] > 1e6 and r["params"] > 1e6, r
PY

check nothing 2 "$loom" bench -m $m -p 0 -n 0
has err "nothing to measure"
check too-long 2 "$loom" bench -m $m -p 100000 -n 1
has err "longer than the model's training context"
check bad-threads 2 "$loom" bench -m $m -t 1,x
has err "-t: expected"
check zero-threads 2 "$loom" bench -m $m -t 0
check bad-reps 2 "$loom" bench -m $m -r 0
check bad-option 2 "$loom" bench -m $m --frob
check missing-model 1 "$loom" bench -m "$tmp/none.gguf"
has err "none.gguf"
check help 0 "$loom" bench --help
has out "usage: loom bench"
finish
