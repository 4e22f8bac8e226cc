#!/usr/bin/env bash
# `loom quantize`: the bundled loom-tiny files converted to q8_0 run every understanding job;
# usage errors, a bad type, a missing input and the output being the input are refused
# with a message (the input untouched). test_quantize checks the bytes themselves.
set -u
loom="$1"
. "$(dirname "$0")/check.sh"
m=../models
q="$tmp/q8"; mkdir -p "$q"

check quantize 0 "$loom" quantize -q $m/loom-tiny.gguf "$q/loom-tiny.gguf"
has out "(q8_0): 43 of 62 tensors converted"
check quantize-mmproj 0 "$loom" quantize -q $m/loom-tiny-mmproj.gguf "$q/loom-tiny-mmproj.gguf" Q8_0
for f in vocab vq audiocodec; do ln -s "$(cd $m && pwd)/loom-tiny-$f.gguf" "$q/loom-tiny-$f.gguf"; done
size_f16=$(stat -c %s $m/loom-tiny.gguf); size_q8=$(stat -c %s "$q/loom-tiny.gguf")
[ "$size_q8" -lt $((size_f16 * 6 / 10)) ] && ok || bad "q8_0 decoder is $size_q8 bytes against $size_f16"
check info-q8 0 "$loom" info "$q/loom-tiny.gguf"
has out "general.file_type"
grep -qE 'blk\.1\.ffn_gate_inp\.weight +f16' "$tmp/out" && ok || bad "the router (f16 in the bundled file) was converted"
grep -qE 'blk\.1\.ffn_up_exps\.weight +q8_0' "$tmp/out" && ok || bad "the experts were not converted"

check caption-q8 0 "$loom" caption -m "$q/loom-tiny.gguf" ../examples/media/scene1.png
grep -qE '^(a|an|one|two|three) .+' "$tmp/out" && ok || bad "no caption from the q8_0 model"
check transcribe-q8 0 "$loom" transcribe -m "$q/loom-tiny.gguf" ../examples/media/speech.wav
[ -s "$tmp/out" ] && ok || bad "no transcript from the q8_0 model"
check describe-q8 0 "$loom" describe -m "$q/loom-tiny.gguf" ../examples/media/video.mp4
has out " on a "

check threads-1 0 "$loom" quantize -q -t 1 $m/loom-tiny.gguf "$tmp/t1.gguf"
cmp -s "$tmp/t1.gguf" "$q/loom-tiny.gguf" && ok || bad "-t 1 wrote other bytes than all threads"
check bad-threads 2 "$loom" quantize -t -3 $m/loom-tiny.gguf "$tmp/t.gguf"
check back-to-f16 0 "$loom" quantize -q "$q/loom-tiny.gguf" "$tmp/f16.gguf" f16
has out "(f16): 43 of 62 tensors converted"

check no-args 2 "$loom" quantize
has err "missing IN.gguf and OUT.gguf"
check one-arg 2 "$loom" quantize $m/loom-tiny.gguf
has err "missing OUT.gguf"
check bad-type 2 "$loom" quantize $m/loom-tiny.gguf "$tmp/x.gguf" q4_k
has err "unknown type 'q4_k'"
check extra-arg 2 "$loom" quantize a b q8_0 d
check bad-option 2 "$loom" quantize --frob a b
check missing-input 1 "$loom" quantize "$tmp/none.gguf" "$tmp/x.gguf"
has err "none.gguf"
[ ! -e "$tmp/x.gguf" ] && ok || bad "an output was written for a missing input"
cp $m/loom-tiny-vq.gguf "$tmp/vq.gguf"; before=$(md5sum <"$tmp/vq.gguf")
check same-file 1 "$loom" quantize "$tmp/vq.gguf" "$tmp/vq.gguf"
has err "the output is the input file"
[ "$(md5sum <"$tmp/vq.gguf")" = "$before" ] && ok || bad "the input was changed"
check help 0 "$loom" quantize --help
has out "usage: loom quantize"
finish
