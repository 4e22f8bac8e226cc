#!/bin/bash
# Continue loom-tiny's training on a machine with a GPU, from a bundle made by
# `tools/train/pack.py pack` (training split + weights), and export the result.
#   tools/train/train_gpu.sh BUNDLE OUTDIR MINUTES [train.py options...]
# OUTDIR receives weight shards at every checkpoint (so an interrupted run still gives its
# latest weights), train.log, and at the end loom-tiny.gguf + loom-tiny-mmproj.gguf.
# Back home: tools/train/pack.py merge --snap OUTDIR/weights --run runs/NAME
# A GPU is launch-bound on this small model: pass --mix 4 (four tasks per step, one padded batch)
# and/or --batch-mult 4 to give it more work per launch.
set -eo pipefail
B=$1; O=$2; M=$3; shift 3
PY=${PYTHON:-python3}
W=${TMPDIR:-/tmp}/loom-gpu
mkdir -p "$O"
$PY tools/train/pack.py unpack --bundle "$B" --data "$W/data" --run "$W/run"
$PY tools/train/train.py train --device ${DEVICE:-cuda} --data "$W/data" --run "$W/run" --vocab "$B/vocab.gguf" \
    --minutes "$M" --new-schedule --save-every 90 --snap "$O/weights" "$@" 2>&1 | tee "$O/train.log"
$PY tools/train/train.py export --run "$W/run" --vocab "$B/vocab.gguf" --out "$O/loom-tiny"
