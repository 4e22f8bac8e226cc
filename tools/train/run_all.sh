#!/bin/sh
# loom-tiny (2/2): the whole recipe, resumable (re-run after an interruption). From the repo root:
#   tools/train/run_all.sh          data -> features -> train -> export -> parity fixtures -> eval
#   tools/train/run_all.sh STAGE    one of: data prep train export fixtures eval
# Needs `scripts/setup --python` and a build (`scripts/build`). Logs in runs/ and $LOOM_RUN (runs/tiny).
# LOOM_DATA, LOOM_RUN and LOOM_{WARMUP,VISION,AUDIO,TRAIN}_MINUTES override the defaults.
set -e
PY=/usr/bin/python3
export OMP_WAIT_POLICY=PASSIVE
stage=${1:-all}
MINUTES=${LOOM_TRAIN_MINUTES:-80}
WARMUP_MINUTES=${LOOM_WARMUP_MINUTES:-8}
AUDIO_MINUTES=${LOOM_AUDIO_MINUTES:-20}
VISION_MINUTES=${LOOM_VISION_MINUTES:-25}
DATA=${LOOM_DATA:-data}
R=${LOOM_RUN:-runs/tiny}
mkdir -p runs "$R"
t0=$(date +%s)
run() { [ "$stage" = all ] || [ "$stage" = "$1" ]; }
T="$PY tools/train/train.py"
if run data; then nice -n 5 $PY tools/data/make_all.py --out "$DATA" | tee -a runs/data.log; fi
if run prep; then nice -n 5 $PY tools/train/prep.py --data "$DATA" | tee -a runs/prep.log; fi
if run train; then
  # vision warm-up: captioning alone until the decoder reads the image rows
  [ -f "$R/warmup.done" ] || { $T train --run "$R" --data "$DATA" --minutes "$WARMUP_MINUTES" --tasks caption \
      && touch "$R/warmup.done"; } | tee -a "$R/stdout.log"
  # vision encoder alone (once): a head names each grid slot's shape, colour and size from the
  # image rows; without it the rows barely told shapes apart (a probe read 39 % of them)
  [ -f "$R/vision.done" ] || { $T vision --run "$R" --data "$DATA" --minutes "$VISION_MINUTES" \
      && touch "$R/vision.done"; } | tee -a "$R/stdout.log"
  # audio warm-up (once): the audio encoder alone, by CTC on the transcripts, so the decoder
  # gets rows it can read; the unified training keeps a CTC term (--ctc) on them
  [ -f "$R/audio.done" ] || { $T audio --run "$R" --data "$DATA" --minutes "$AUDIO_MINUTES" \
      && touch "$R/audio.done"; } | tee -a "$R/stdout.log"
  for m in warmup vision audio; do [ -f "$R/$m.done" ] || { echo "the $m stage failed: see $R/stdout.log"; exit 1; }; done
  # every task, two data-parallel processes (docs/MODEL.md, stage 18), on a fresh schedule
  # (the encoder stages reset its clock; a re-run resumes it). --colour-swap: colour words fed
  # back shuffled half the time, so the shape after one is read off the picture (stage 8);
  # --attr: the vision stage's head stays on; --speech-augment, --video-mp4: stages 11 and 14;
  # --speech-tempo: stage 23; --speech-accents, --speech-shift: stage 36 (stop 44).
  [ -f "$R/train.done" ] || { $T train --run "$R" --data "$DATA" --minutes "$MINUTES" --procs 2 \
      --ctc 0.3 --colour-swap 0.5 --attr 0.5 --speech-augment 0.5 --speech-tempo 0.15 --video-mp4 0.5 \
      --speech-accents 0.3 --speech-shift 1.0 \
      --weights caption=4,vqa=2,t2i=4,transcribe=8,tts=3,video=4,t2v=1,text=1.5,draw_tell=4,say_write=4 \
      && touch "$R/train.done"; } | tee -a "$R/stdout.log"
  [ -f "$R/train.done" ] || { echo "training failed: see $R/stdout.log"; exit 1; }
fi
if run export; then
  $PY tools/train/train.py export --run "$R" --out models/loom-tiny
fi
if run fixtures; then $PY tools/parity/make_tiny_fixtures.py --run "$R"; fi
if run eval; then $PY tools/eval/run_eval.py --n 200 --bench 10 --md runs/eval.md | tee runs/eval.log; fi
echo "done in $(( $(date +%s) - t0 )) s"
