#!/bin/sh
# loom-tiny (2/2): the whole recipe, resumable (re-run after an interruption). From the repo root:
#   tools/train/run_all.sh          data -> features -> train -> export -> parity fixtures -> eval
#   tools/train/run_all.sh STAGE    one of: data prep train export fixtures eval
# Needs `scripts/setup --python` and a build (`scripts/build`). Logs in runs/.
set -e
PY=/usr/bin/python3
export OMP_WAIT_POLICY=PASSIVE
stage=${1:-all}
MINUTES=${LOOM_TRAIN_MINUTES:-90}
AUDIO_MINUTES=${LOOM_AUDIO_MINUTES:-20}
VISION_MINUTES=${LOOM_VISION_MINUTES:-25}
mkdir -p runs
t0=$(date +%s)
run() { [ "$stage" = all ] || [ "$stage" = "$1" ]; }
if run data; then nice -n 5 $PY tools/data/make_all.py | tee -a runs/data.log; fi
if run prep; then nice -n 5 $PY tools/train/prep.py | tee -a runs/prep.log; fi
if run train; then
  # vision warm-up: captioning alone until the decoder reads the image rows, then every task
  [ -f runs/tiny/ckpt.pt ] || { $PY tools/train/train.py train --run runs/tiny --minutes 8 --tasks caption \
      | tee -a runs/tiny_stdout.log; }
  # vision encoder alone (once): a head names each grid slot's shape, colour and size from the
  # image rows; without it the rows barely told shapes apart (a probe read 39 % of them)
  [ -f runs/tiny/vision.done ] || { $PY tools/train/train.py vision --run runs/tiny --minutes "$VISION_MINUTES" \
      && touch runs/tiny/vision.done; } | tee -a runs/tiny_stdout.log
  # audio warm-up (once): the audio encoder alone, by CTC on the transcripts, so the decoder
  # gets rows it can read; the unified training keeps a CTC term (--ctc) on them
  [ -f runs/tiny/audio.done ] || { $PY tools/train/train.py audio --run runs/tiny --minutes "$AUDIO_MINUTES" \
      && touch runs/tiny/audio.done; } | tee -a runs/tiny_stdout.log
  for m in vision audio; do [ -f runs/tiny/$m.done ] || { echo "the $m stage failed: see runs/tiny_stdout.log"; exit 1; }; done
  # --colour-swap: colour words in answers fed back shuffled half the time, so the shape after
  # one is read off the picture, not guessed from the colour (docs/MODEL.md, stage 8)
  $PY tools/train/train.py train --run runs/tiny --minutes "$MINUTES" --ctc 0.3 --colour-swap 0.5 \
      | tee -a runs/tiny_stdout.log
fi
if run export; then
  $PY tools/train/train.py export --run runs/tiny --out models/loom-tiny
fi
if run fixtures; then $PY tools/parity/make_tiny_fixtures.py --run runs/tiny; fi
if run eval; then $PY tools/eval/run_eval.py --n 200 --bench 10 --md runs/eval.md | tee runs/eval.log; fi
echo "done in $(( $(date +%s) - t0 )) s"
