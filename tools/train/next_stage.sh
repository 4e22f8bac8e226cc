#!/bin/sh
# One more CPU stage of loom-tiny, as stages 55-60 ran (docs/MODEL.md, "Training"): stage 51's
# command (every task, two processes, transcription weighed 10) on a fresh schedule.
#
#   tools/train/next_stage.sh RUN DATA [MINUTES] [PEAK_LR] [FROM]
#
# RUN: the run folder (runs/g19). DATA: the data tree (data/big200, tools/train/more_data.py).
# FROM: where to start when RUN has no checkpoint yet: a run folder (its ckpt.pt, AdamW state
# included, is copied) or a GGUF stem (`train.py import`: its weights, a fresh AdamW; default
# models/loom-tiny). Resumable: run it again after a cut-off with NEW= to keep the schedule
# (NEW=--new-schedule by default, which a fresh stage wants). Cut off before its first save,
# RUN/ckpt.pt is still FROM's, whose schedule is spent: train.py then stops and says so, and
# running it again without NEW= starts the stage over. Log: RUN/stdout.log.
# WEIGHTS=caption=8,... replaces the task weights below (a branch that leans on some tasks).
set -eu
[ $# -ge 2 ] || { sed -n 2,14p "$0"; exit 2; }
run=$1 data=$2 minutes=${3:-60} lr=${4:-5e-5} from=${5:-models/loom-tiny}
PY=/usr/bin/python3
export OMP_WAIT_POLICY=PASSIVE
[ -d "$data" ] || { echo "next_stage: no data tree $data" >&2; exit 1; }
if [ ! -f "$run/ckpt.pt" ]; then
  mkdir -p "$run"
  if [ -f "$from/ckpt.pt" ]; then
    cp "$from/ckpt.pt" "$run/ckpt.pt"
  else
    $PY tools/train/train.py import --gguf "$from" --run "$run"
  fi
fi
$PY tools/train/train.py train --run "$run" --data "$data" --minutes "$minutes" ${NEW---new-schedule} \
  --lr "$lr" --batch-mult 3 --procs 2 --ctc 0.3 --colour-swap 0.9 --shape-weight 2 \
  --speech-augment 0.5 --speech-tempo 0.15 --video-mp4 0.5 --position-swap 0.5 \
  --speech-accents 0.3 --speech-shift 1.0 --speech-gain 30 --tts-voice 1.0 --code-swap 0.2 \
  --tts-words --keep-every 15 \
  --weights ${WEIGHTS-caption=5,vqa=2,t2i=3,transcribe=10,tts=6,video=6,t2v=1,text=1.5,draw_tell=3,say_write=3} \
  >> "$run/stdout.log" 2>&1
