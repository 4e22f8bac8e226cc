#!/bin/sh
# loom-tiny 1/2: data -> VQ image codec -> audio codec -> GGUF export -> VQ decoder again
# -> parity fixtures. Every stage is resumable (re-run the script after an interruption).
# Run from the repo root.
#   tools/tiny1/run_all.sh            # everything
#   tools/tiny1/run_all.sh data|vq|audio|export|decoder|fixtures   # one stage
# The two codecs train concurrently, one thread each (2 cores), at nice 10. The decoder stage
# trains the VQ decoder alone again, codes kept (docs/TINY.md; LOOM_VQ_DECODER_STEPS, default
# 6000, 31 minutes on 2 threads): runs/vqdec/loom-tiny-vq.gguf is the codec to bundle.
set -e
PY=/usr/bin/python3
export OMP_WAIT_POLICY=PASSIVE
stage=${1:-all}
mkdir -p runs/vq runs/audio docs
t0=$(date +%s)
if [ "$stage" = all ] || [ "$stage" = data ]; then
  nice -n 10 $PY tools/data/make_all.py | tee runs/data.log
fi
if [ "$stage" = all ] || [ "$stage" = vq ] || [ "$stage" = audio ]; then
  if [ "$stage" != audio ]; then
    nice -n 10 $PY tools/train_vq.py train >> runs/vq/stdout.log 2>&1 &
    vq=$!
  fi
  if [ "$stage" != vq ]; then
    nice -n 10 $PY tools/train_audio.py train >> runs/audio/stdout.log 2>&1 &
    au=$!
  fi
  echo "training (logs: runs/vq/stdout.log runs/audio/stdout.log)"
  [ -n "$vq" ] && wait $vq
  [ -n "$au" ] && wait $au
  t1=$(date +%s); echo "training wall time $((t1 - t0)) s"
fi
if [ "$stage" = all ] || [ "$stage" = vq ]; then
  nice -n 10 $PY tools/train_vq.py eval | tee runs/vq/eval.log
fi
if [ "$stage" = all ] || [ "$stage" = audio ]; then
  nice -n 10 $PY tools/train_audio.py eval | tee runs/audio/eval.log
fi
if [ "$stage" = all ] || [ "$stage" = export ]; then
  $PY tools/train_vq.py export
  $PY tools/train_audio.py export
fi
if [ "$stage" = all ] || [ "$stage" = decoder ]; then
  nice -n 10 $PY tools/train_vq.py decoder --base runs/vq/loom-tiny-vq.gguf --run runs/vqdec \
    --steps "${LOOM_VQ_DECODER_STEPS:-6000}" --lr 3e-4 --threads 2 | tee -a runs/vqdec.log
fi
if [ "$stage" = all ] || [ "$stage" = fixtures ]; then
  $PY tools/parity/make_vq_fixtures.py
fi
echo "done in $(( $(date +%s) - t0 )) s"
