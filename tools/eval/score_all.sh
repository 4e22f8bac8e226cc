#!/bin/sh
# Every row of docs/MODEL.md's table for one model, as the bundled versions are scored
# (run_eval.py --threads 1, two lanes side by side on the 2 cores; 21 minutes for v50 with a judge):
#
#   tools/eval/score_all.sh MODEL.gguf OUT_DIR [DATA] [JUDGE.gguf] [LOOM]
#
# MODEL's -mmproj.gguf (and -vq / -audiocodec) sit beside it. DATA: the tree the model was
# trained on (default data/big, else data), so "never spoken in training" means that tree's.
# JUDGE: a fixed model that also transcribes the speech (docs/MODEL.md uses v45:
# `git show a08377a^:models/loom-tiny.gguf`, and its -mmproj). Each group's output goes to
# OUT_DIR/<group>.log; OUT_DIR/summary.txt collects every "job metric value" line.
# QUICK=1: only the rows each CPU stage is screened on: captions, questions,
# transcription on all 400 test utterances and on the first 200, plain text, video, the val
# rows, and text to speech as the model judges itself (2.5 minutes).
set -eu
[ $# -ge 2 ] || { sed -n 2,11p "$0"; exit 2; }
model=$1 out=$2
data=${3:-data/big}; [ -d "$data" ] || data=data
judge=${4:-} loom=${5:-build/loom}
[ -f "$model" ] || { echo "score_all: no model $model" >&2; exit 1; }
[ -x "$loom" ] || { echo "score_all: no loom command at $loom (scripts/build)" >&2; exit 1; }
mkdir -p "$out"
E="/usr/bin/python3 tools/eval/run_eval.py --loom $loom --model $model --data $data --threads 1"
J=""; [ -n "$judge" ] && J="--judge $judge"

# the quick rows first (captions, questions, transcription, video, plain text: about 5 minutes),
# then speech, pictures and clips made by the model
lane1() {
  $E --n 1000 --jobs caption,vqa > "$out/test_caption.log" 2>&1
  $E --n 200 --jobs transcribe,text > "$out/test_transcribe.log" 2>&1
  if [ -n "${QUICK:-}" ]; then
    $E --n 400 --jobs transcribe > "$out/test_tr400.log" 2>&1
    return
  fi
  $E --n 200 --jobs tts,say_write,draw_tell,robust,long > "$out/test_rest.log" 2>&1
  $E --n 400 --jobs t2i > "$out/test_t2i.log" 2>&1
}
lane2() {
  $E --jobs video > "$out/test_video.log" 2>&1
  $E --n 200 --split val --jobs caption,transcribe,video,text > "$out/val.log" 2>&1
  if [ -n "${QUICK:-}" ]; then
    $E --n 200 --jobs tts > "$out/test_tts.log" 2>&1
    return
  fi
  $E --n 200 --split val --jobs tts > "$out/val_tts.log" 2>&1
  if [ -n "$J" ]; then
    $E --n 200 --jobs tts $J > "$out/test_tts_judged.log" 2>&1
    $E --n 200 --split val --jobs tts $J > "$out/val_tts_judged.log" 2>&1
    $E --n 200 --jobs tts $J --speak-args "--best-of 4" > "$out/test_tts_best4.log" 2>&1
  fi
  $E --n 200 --jobs t2v > "$out/test_t2v.log" 2>&1
}
t0=$(date +%s)
lane1 & p1=$!
lane2 & p2=$!
rc=0
wait $p1 || rc=1
wait $p2 || rc=1
for f in "$out"/*.log; do
  grep -E ' %$' "$f" | sed "s|^|$(basename "$f" .log) |"
done > "$out/summary.txt"
echo "score_all: $(wc -l < "$out/summary.txt") scores in $(( $(date +%s) - t0 )) s -> $out/summary.txt"
exit $rc
