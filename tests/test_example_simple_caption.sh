#!/usr/bin/env bash
# examples/simple_caption.c, the smallest program on the public API, prints what `loom caption --whole`
# prints for the same pictures and question, and fails cleanly on bad arguments.
set -u
loom="$1"
prog="$(dirname "$loom")/simple_caption"
. "$(dirname "$0")/check.sh"
m=../models
for i in 1 2 3; do
  img=../examples/media/scene$i.png
  check simple-$i 0 "$prog" $m/loom-tiny.gguf $m/loom-tiny-mmproj.gguf $img
  cp "$tmp/out" "$tmp/simple"
  check loom-$i 0 "$loom" caption -q --whole -m $m/loom-tiny.gguf $img
  [ -s "$tmp/simple" ] && cmp -s "$tmp/simple" "$tmp/out" && ok || { bad "scene$i: simple_caption and loom caption differ:"; cat "$tmp/simple" "$tmp/out"; }
done
check simple-question 0 "$prog" $m/loom-tiny.gguf $m/loom-tiny-mmproj.gguf ../examples/media/scene2.png "how many shapes are there?"
cp "$tmp/out" "$tmp/simple"
check loom-question 0 "$loom" caption -q -m $m/loom-tiny.gguf -p "how many shapes are there?" ../examples/media/scene2.png
cmp -s "$tmp/simple" "$tmp/out" && ok || bad "the answers to a question differ"
check usage 2 "$prog" $m/loom-tiny.gguf
has err "usage:"
check missing-image 1 "$prog" $m/loom-tiny.gguf $m/loom-tiny-mmproj.gguf "$tmp/none.png"
has err "none.png"
check bad-model 1 "$prog" ../examples/media/scene1.png $m/loom-tiny-mmproj.gguf ../examples/media/scene1.png
has err "scene1.png"
finish
