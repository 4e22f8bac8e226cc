#!/usr/bin/env bash
# loom caption / transcribe / describe / chat on the random-weight unified fixture
# (data/unified/tiny*.gguf): output formats, exit codes and error messages. What the
# answers are is checked against PyTorch by test_unified_parity / test_tiny_parity.
set -u
loom="$1"
m=data/unified/tiny.gguf
media=../examples/media
. "$(dirname "$0")/check.sh"

check caption 0 "$loom" caption -m $m -q $media/scene1.png
[ "$(wc -l < "$tmp/out")" -eq 1 ] && ok || bad "caption: one line"
check caption-two 0 "$loom" caption -m $m -q $media/scene1.png $media/scene2.png
[ "$(grep -c "$(printf '\t')" "$tmp/out")" -eq 2 ] && ok || bad "caption: PATH<TAB>text per image"
# any number of inputs, in the order given, options between them (xargs hands over hundreds)
many=(); for k in $(seq 300); do many+=($media/scene$((k % 3 + 1)).png); done
check caption-300 0 "$loom" caption "${many[@]:0:150}" -m $m -q -n 2 "${many[@]:150}"
[ "$(cut -f1 "$tmp/out" | tr '\n' ' ')" = "${many[*]} " ] && ok || bad "caption: 300 inputs, one line each, in order"
check caption-json 0 "$loom" caption -m $m --json -p "what colour is the square?" $media/scene2.png
python3 -c "import json,sys; d=json.loads(open('$tmp/out').read()); assert d['image'].endswith('scene2.png') and isinstance(d['text'], str)" && ok || bad "caption --json parses"
check caption-noimage 1 "$loom" caption -m $m -q $media/speech.wav
has err "loom: "
check caption-nofile 1 "$loom" caption -m $m -q "$tmp/missing.png"
check caption-nomodel 1 "$loom" caption -m "$tmp/missing.gguf" $media/scene1.png
check caption-noargs 2 "$loom" caption -m $m
check caption-badopt 2 "$loom" caption -m $m --frobnicate $media/scene1.png
cp $m "$tmp/alone.gguf"
check caption-nommproj 1 "$loom" caption -m "$tmp/alone.gguf" $media/scene1.png
has err "mmproj"

# captions by region (loom.caption.*): the fixture with three regions added. The caption is
# the regions' answers composed, and each answer is what the same question asked alone gets
# (the command reuses the picture's cache for every question).
py=$(command -v /usr/bin/python3 python3 | head -1)   # Debian's, with numpy (scripts/setup)
"$py" - "$m" "$tmp/regions.gguf" "$tmp/halfregions.gguf" <<'PY'
import sys
sys.path.insert(0, "..")
from tools.loompy import gguf
kv, tensors = gguf.read(sys.argv[1])
for out, keys in ((sys.argv[2], 3), (sys.argv[3], 1)):
    w = gguf.Writer()
    for k, v in kv.items():
        if k != "general.alignment":
            t, et = gguf.value_type(v)
            et = gguf.I32 if k == "tokenizer.ggml.token_type" else et   # value_type reads ints as u32
            w.add(k, t, v, et)
    w.add_arr("loom.caption.regions", gguf.STRING, ["in the top left", "at the top", "in the center"])
    if keys == 3:
        w.add_str("loom.caption.region_question", "what is {}?")
        w.add_str("loom.caption.region_empty", "nothing")
    for name, (shape, ttype, raw) in tensors.items():
        w.add_tensor(name, gguf.to_array(shape, ttype, raw), ttype)
    w.write(out)
PY
ln -sf "$PWD/data/unified/tiny-mmproj.gguf" "$tmp/regions-mmproj.gguf"
ln -sf "$PWD/data/unified/tiny-mmproj.gguf" "$tmp/halfregions-mmproj.gguf"
check caption-regions 0 "$loom" caption -m "$tmp/regions.gguf" -q -n 6 --json $media/scene1.png
cp "$tmp/out" "$tmp/regions.json"
i=0
for phrase in "in the top left" "at the top" "in the center"; do
  check caption-region-$i 0 "$loom" caption -m "$tmp/regions.gguf" -q -n 6 --json -p "what is $phrase?" $media/scene1.png
  python3 -c "
import json; d, alone = json.loads(open('$tmp/regions.json').read()), json.loads(open('$tmp/out').read())
assert d['regions'][$i] == alone['text'], (d['regions'][$i], alone['text'])" \
    && ok || bad "caption region $i: the answer asked alone differs"
  i=$((i + 1))
done
python3 -c "
import json; d = json.loads(open('$tmp/regions.json').read()); r = d['regions']
parts = [a + ' ' + p for a, p in zip(r, ['in the top left', 'at the top', 'in the center']) if a != 'nothing']
want = 'nothing' if not parts else parts[0] if len(parts) == 1 else ', '.join(parts[:-1]) + ' and ' + parts[-1]
assert len(r) == 3 and d['text'] == want, (d, want)" && ok || { bad "caption by region: the composed caption"; cat "$tmp/regions.json"; }
check caption-whole 0 "$loom" caption -m "$tmp/regions.gguf" -q -n 6 --whole $media/scene1.png
cp "$tmp/out" "$tmp/whole.txt"
check caption-plain 0 "$loom" caption -m $m -q -n 6 $media/scene1.png
cmp -s "$tmp/out" "$tmp/whole.txt" && ok || bad "caption --whole: not the one-answer caption"
check caption-halfregions 1 "$loom" caption -m "$tmp/halfregions.gguf" -q $media/scene1.png
has err "loom.caption.region_question is missing"

# two views (loom.caption.region_mirror): three regions of the top row, the mirror swapping
# left and right. Region i of a picture is read with region mirror[i] of its mirror image, so
# captioning the mirror image reads the same pairs: its answer about region mirror[i] is the
# picture's about region i. --no-mirror reads the picture alone (the question asked alone).
"$py" - "$m" "$tmp" "$media/scene1.png" <<'PY'
import sys
sys.path.insert(0, "..")
import numpy as np
from tools.loompy import gguf, png
kv, tensors = gguf.read(sys.argv[1])
toks = list(kv["tokenizer.ggml.tokens"])
def regions(w, mirror):
    w.add_arr("loom.caption.regions", gguf.STRING, ["in the top left", "at the top", "in the top right"])
    w.add_str("loom.caption.region_question", "what is {}?")
    w.add_str("loom.caption.region_empty", "nothing")
    w.add_arr("loom.caption.region_mirror", gguf.I32, mirror)
# the fixture with its mirror keys: mirror / badmirror here, pairs / badpairs for describe below
for name, keys in (("mirror", lambda w: regions(w, [2, 1, 0])), ("badmirror", lambda w: regions(w, [1, 1, 0])),
                   ("pairs", lambda w: w.add_arr("loom.mirror.token_pairs", gguf.I32,
                                                 [toks.index("\u0120left"), toks.index("\u0120right")])),
                   ("badpairs", lambda w: w.add_arr("loom.mirror.token_pairs", gguf.I32, [5, 5])),
                   ("mover", lambda w: (regions(w, [2, 1, 0]), w.add_bool("loom.describe.mover", True),
                                        w.add_arr("loom.mirror.token_pairs", gguf.I32,
                                                  [toks.index("\u0120left"), toks.index("\u0120right")])))):
    w = gguf.Writer()
    for k, v in kv.items():
        if k != "general.alignment":
            t, et = gguf.value_type(v)
            et = gguf.I32 if k == "tokenizer.ggml.token_type" else et
            w.add(k, t, v, et)
    keys(w)
    for n, (shape, ttype, raw) in tensors.items():
        w.add_tensor(n, gguf.to_array(shape, ttype, raw), ttype)
    w.write(f"{sys.argv[2]}/{name}.gguf")
png.write_png(f"{sys.argv[2]}/mirrored.png", np.ascontiguousarray(png.read_png(sys.argv[3])[:, ::-1]))
PY
ln -sf "$PWD/data/unified/tiny-mmproj.gguf" "$tmp/mirror-mmproj.gguf"
ln -sf "$PWD/data/unified/tiny-mmproj.gguf" "$tmp/badmirror-mmproj.gguf"
check caption-mirror 0 "$loom" caption -m "$tmp/mirror.gguf" -q -n 6 --json $media/scene1.png
cp "$tmp/out" "$tmp/mirror.json"
check caption-mirrored 0 "$loom" caption -m "$tmp/mirror.gguf" -q -n 6 --json "$tmp/mirrored.png"
python3 -c "
import json; a, b = json.loads(open('$tmp/mirror.json').read()), json.loads(open('$tmp/out').read())
assert a['regions'] == b['regions'][::-1], (a['regions'], b['regions'])" \
  && ok || bad "caption in two views: the mirror image's answers are not the picture's, mirrored"
check caption-nomirror 0 "$loom" caption -m "$tmp/mirror.gguf" -q -n 6 --json --no-mirror $media/scene1.png
cp "$tmp/out" "$tmp/nomirror.json"
check caption-nomirror-alone 0 "$loom" caption -m "$tmp/mirror.gguf" -q -n 6 --json -p "what is in the top right?" $media/scene1.png
python3 -c "
import json; d, alone = json.loads(open('$tmp/nomirror.json').read()), json.loads(open('$tmp/out').read())
assert d['regions'][2] == alone['text'], (d['regions'][2], alone['text'])" \
  && ok || bad "caption --no-mirror: not the question asked of the picture alone"
check caption-badmirror 1 "$loom" caption -m "$tmp/badmirror.gguf" -q $media/scene1.png
has err "loom.caption.region_mirror"

check transcribe 0 "$loom" transcribe -m $m -q $media/speech.wav
check transcribe-srt 0 "$loom" transcribe -m $m -q -f srt $media/speech.wav
head -2 "$tmp/out" | tail -1 | grep -Eq '^00:00:00,000 --> 00:00:0[0-9],[0-9]{3}$' && ok || { bad "srt cue times"; cat "$tmp/out"; }
check transcribe-vtt 0 "$loom" transcribe -m $m -q -f vtt $media/speech.wav
head -1 "$tmp/out" | grep -q '^WEBVTT$' && ok || bad "vtt header"
check transcribe-json 0 "$loom" transcribe -m $m -q -f json $media/speech.wav
python3 -c "import json; d=json.loads(open('$tmp/out').read()); s=d['segments']; assert len(s)==1 and s[0]['start']==0 and abs(s[0]['end']-d['duration'])<1e-3" && ok || bad "transcribe json"
# 25 s of a steady tone: no pauses, so consecutive pieces of at most the encoder's window
# (the fixture's encoder takes 6 s: n_pos 300)
python3 - "$tmp/long.wav" <<'PY'
import math, struct, sys, wave
x = b"".join(struct.pack("<h", int(9830 * math.sin(i * 2 * math.pi * 440 / 16000))) for i in range(16000 * 25))
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(x)
PY
check transcribe-long 0 "$loom" transcribe -m $m -q -f json "$tmp/long.wav"
python3 -c "
import json; d=json.loads(open('$tmp/out').read()); s=d['segments']
assert len(s) >= 5 and s[0]['start'] == 0 and all(x['end'] - x['start'] <= 6 + 1e-3 for x in s), s
assert all(abs(a['end'] - b['start']) < 1e-6 for a, b in zip(s, s[1:])) and abs(s[-1]['end'] - 25) < 1e-3" && ok || { bad "long audio windows"; cat "$tmp/out"; }
# 14 s: tone with pauses at 4.5-4.8 s and 9.6-9.9 s and silence after 12.5 s: a piece per stretch
# of sound, cut in the pauses, the trailing digital silence left out (loom_audio_split)
python3 - "$tmp/pauses.wav" <<'PY'
import math, struct, sys, wave
quiet = lambda t: 4.5 <= t < 4.8 or 9.6 <= t < 9.9 or t >= 12.5
x = b"".join(struct.pack("<h", 0 if quiet(i / 16000) else int(9830 * math.sin(i * 2 * math.pi * 440 / 16000)))
             for i in range(16000 * 14))
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(x)
PY
check transcribe-pauses 0 "$loom" transcribe -m $m -q -f json "$tmp/pauses.wav"
python3 -c "
import json; s=json.loads(open('$tmp/out').read())['segments']
assert len(s) == 3 and s[0]['start'] == 0 and 4.5 <= s[0]['end'] <= 4.8 and 4.5 <= s[1]['start'] <= 4.8, s
assert 9.6 <= s[1]['end'] <= 9.9 and 9.6 <= s[2]['start'] <= 9.9 and abs(s[2]['end'] - 12.5) < 0.01, s" && ok || { bad "pieces at the pauses"; cat "$tmp/out"; }
check transcribe-stdin 0 sh -c "cat $media/speech.wav | '$loom' transcribe -m $m -q -"
check transcribe-greedy 0 "$loom" transcribe -m $m -q -b 1 -n 64 $media/speech.wav
# bf16 products (AMX where the CPU has it, float32 elsewhere): a transcript, one line
check transcribe-bf16 0 "$loom" transcribe -m $m -q --bf16 $media/speech.wav
[ "$(wc -l < "$tmp/out")" -eq 1 ] && ok || bad "transcribe --bf16: one line"
check caption-bf16 0 "$loom" caption -m $m -q --bf16 $media/scene1.png
check caption-beams 0 "$loom" caption -m $m -q -b 8 $media/scene1.png
check transcribe-beams 2 "$loom" transcribe -m $m -q -b 9 $media/speech.wav
has err "out of range"
check transcribe-ctc-range 2 "$loom" transcribe -m $m -q --ctc 1.5 $media/speech.wav
has err "--ctc"
check caption-ctc 2 "$loom" caption -m $m -q --ctc 0.3 $media/scene1.png
# the bundled model's CTC head: on the first parity clip where the decoder alone (--ctc 0) and the
# default (weight 0.3) answer differently (tests/data/tiny/beam.txt), so must the command
clip=$(awk '$1 == "transcribe" { a[$2] = $3 } $1 == "transcribe_ctc" && a[$2] != $3 { printf "%02d", $2; exit }' data/tiny/beam.txt)
[ -n "$clip" ] && ok || bad "tests/data/tiny/beam.txt: no clip where the CTC head changes the transcript"
check transcribe-ctc-off 0 "$loom" transcribe -m ../models/loom-tiny.gguf -q -t 1 --ctc 0 data/tiny/speech_$clip.flac
cp "$tmp/out" "$tmp/ctc0"
check transcribe-ctc-on 0 "$loom" transcribe -m ../models/loom-tiny.gguf -q -t 1 data/tiny/speech_$clip.flac
[ -s "$tmp/out" ] && ! cmp -s "$tmp/out" "$tmp/ctc0" && ok || bad "transcribe: --ctc 0 and the default give the same transcript"
# loom-tiny hears a recording the same with 0.5 s of digital silence before and after it
# (left out by loom_audio_split; the model itself read such padding as other words) and 20 dB
# quieter
python3 - $media/speech.wav "$tmp/padded.wav" "$tmp/quiet.wav" <<'PY'
import array, sys, wave
with wave.open(sys.argv[1]) as r:
    raw = r.readframes(r.getnframes())
quiet = array.array("h", raw)
quiet = array.array("h", (round(v / 10) for v in quiet)).tobytes()   # 20 dB quieter
for path, data in ((sys.argv[2], bytes(16000) + raw + bytes(16000)), (sys.argv[3], quiet)):
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(data)
PY
check transcribe-unpadded 0 "$loom" transcribe -m ../models/loom-tiny.gguf -q -t 1 $media/speech.wav
cp "$tmp/out" "$tmp/unpadded"
check transcribe-padded 0 "$loom" transcribe -m ../models/loom-tiny.gguf -q -t 1 "$tmp/padded.wav"
[ -s "$tmp/out" ] && cmp -s "$tmp/out" "$tmp/unpadded" && ok || { bad "transcribe: digital silence around the recording changed the transcript"; cat "$tmp/out" "$tmp/unpadded"; }
# and 20 dB quieter: each piece is brought to the training recordings' level (LOOM_SPEECH_PEAK)
check transcribe-quiet 0 "$loom" transcribe -m ../models/loom-tiny.gguf -q -t 1 "$tmp/quiet.wav"
[ -s "$tmp/out" ] && cmp -s "$tmp/out" "$tmp/unpadded" && ok || { bad "transcribe: a quieter recording changed the transcript"; cat "$tmp/out" "$tmp/unpadded"; }
# chat's attachments too; a clip of nothing but silence is refused with its name
check chat-audio 0 "$loom" chat -m ../models/loom-tiny.gguf -q -t 1 --audio $media/speech.wav -p "Transcribe the audio."
cp "$tmp/out" "$tmp/unpadded"
check chat-audio-padded 0 "$loom" chat -m ../models/loom-tiny.gguf -q -t 1 --audio "$tmp/padded.wav" -p "Transcribe the audio."
[ -s "$tmp/out" ] && cmp -s "$tmp/out" "$tmp/unpadded" && ok || { bad "chat: digital silence around the clip changed the answer"; cat "$tmp/out" "$tmp/unpadded"; }
python3 -c "import sys, wave; w = wave.open(sys.argv[1], 'wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(bytes(32000))" "$tmp/silent.wav"
check chat-audio-silent 1 "$loom" chat -m ../models/loom-tiny.gguf -q -t 1 --audio "$tmp/silent.wav" -p "Transcribe the audio."
has err "silent.wav: nothing but silence"
check transcribe-badfmt 2 "$loom" transcribe -m $m -f docx $media/speech.wav
check transcribe-image 1 "$loom" transcribe -m $m -q $media/scene1.png
# several files: each answered as if alone (the session starts afresh), in order
check transcribe-one 0 "$loom" transcribe -m $m -q -n 12 $media/speech.wav
alone=$(cat "$tmp/out")
check transcribe-two 0 "$loom" transcribe -m $m -q -n 12 $media/speech.wav "$tmp/long.wav"
[ "$(head -1 "$tmp/out")" = "$media/speech.wav	$alone" ] && [ "$(cut -f1 "$tmp/out" | tail -1)" = "$tmp/long.wav" ] \
  && [ "$(wc -l < "$tmp/out")" -eq 2 ] && ok || bad "transcribe: PATH<TAB>text per file, the first as alone"
check transcribe-two-json 0 "$loom" transcribe -m $m -q -n 4 -f json $media/speech.wav "$tmp/pauses.wav"
python3 -c "import json; d=[json.loads(l) for l in open('$tmp/out')]; assert [x['file'] for x in d]==['$media/speech.wav','$tmp/pauses.wav'] and len(d[1]['segments'])>1" && ok || bad "transcribe json: an object per line"
check transcribe-two-srt 2 "$loom" transcribe -m $m -f srt $media/speech.wav $media/speech.wav
has err "takes one input file"
check transcribe-stops 1 "$loom" transcribe -m $m -q -n 4 $media/speech.wav $media/scene1.png $media/speech.wav
[ "$(wc -l < "$tmp/out")" -eq 1 ] && ok || bad "transcribe: stops at the first file that fails"

check describe 0 "$loom" describe -m $m -q $media/video.mp4
check describe-json 0 "$loom" describe -m $m --json --frames 4 $media/video.mp4
python3 -c "import json; d=json.loads(open('$tmp/out').read()); assert len(d['frames'])==4" && ok || bad "describe --frames 4"
check describe-both 2 "$loom" describe -m $m --frames 4 --fps 2 $media/video.mp4
check describe-limit 1 "$loom" describe -m $m --frames 100 --max-frames 10 $media/video.mp4
check describe-notvideo 1 "$loom" describe -m $m $media/speech.wav
check describe-one 0 "$loom" describe -m $m -q -n 12 --frames 4 $media/video.mp4
alone=$(cat "$tmp/out")
check describe-two 0 "$loom" describe -m $m -q -n 12 --frames 4 $media/video.mp4 $media/video.mp4
[ "$(cut -f2 "$tmp/out" | sort -u)" = "$alone" ] && [ "$(wc -l < "$tmp/out")" -eq 2 ] && ok || bad "describe: PATH<TAB>text per video, as alone"
check describe-stops 1 "$loom" describe -m $m -q -n 4 $media/video.mp4 "$tmp/missing.mp4" $media/video.mp4
[ "$(wc -l < "$tmp/out")" -eq 1 ] && ok || bad "describe: stops at the first video that fails"
has err "missing.mp4"

# two views (loom.mirror.token_pairs): the clip and its mirror image read together. Summing
# is symmetric, so the mirror image's description is the clip's (" left" and " right" swapped,
# were they in it); one view alone differs. Lossless RGB clips, so the mirror is exact. The
# model files were written with the caption mirror's above.
ln -sf "$PWD/data/unified/tiny-mmproj.gguf" "$tmp/pairs-mmproj.gguf"
ln -sf "$PWD/data/unified/tiny-mmproj.gguf" "$tmp/badpairs-mmproj.gguf"
if command -v ffmpeg >/dev/null; then
  ffmpeg -v error -y -i $media/video.mp4 -pix_fmt bgr0 -c:v ffv1 "$tmp/clip.mkv"
  ffmpeg -v error -y -i $media/video.mp4 -vf hflip -pix_fmt bgr0 -c:v ffv1 "$tmp/clip-mirror.mkv"
  check describe-views 0 "$loom" describe -m "$tmp/pairs.gguf" -q -n 12 --frames 4 "$tmp/clip.mkv"
  cp "$tmp/out" "$tmp/views.txt"
  views=$(sed 's/ left/ LEFT/g; s/ right/ left/g; s/ LEFT/ right/g' "$tmp/out")
  check describe-views-mirror 0 "$loom" describe -m "$tmp/pairs.gguf" -q -n 12 --frames 4 "$tmp/clip-mirror.mkv"
  [ "$(cat "$tmp/out")" = "$views" ] && ok || bad "describe in two views: the mirror image's description is not the clip's"
  check describe-views-one 0 "$loom" describe -m "$tmp/pairs.gguf" -q -n 12 --frames 4 --no-mirror "$tmp/clip.mkv"
  [ "$(cat "$tmp/out")" != "$views" ] && ok || bad "describe --no-mirror: the same as two views (the second view did nothing)"
  check describe-views-beams 0 "$loom" describe -m "$tmp/pairs.gguf" -q -n 12 --frames 4 -b 2 "$tmp/clip.mkv"
  cp "$tmp/out" "$tmp/beams.txt"
  check describe-views-beams-one 0 "$loom" describe -m "$tmp/pairs.gguf" -q -n 12 --frames 4 -b 2 --no-mirror "$tmp/clip.mkv"
  cmp -s "$tmp/out" "$tmp/beams.txt" && ok || bad "describe -b 2: not the clip alone"
  # the object that changes (loom.describe.mover): the first and last frames read by region;
  # a clip whose frames are all one picture changes nowhere, and is described as without it
  ln -sf "$PWD/data/unified/tiny-mmproj.gguf" "$tmp/mover-mmproj.gguf"
  check describe-mover 0 "$loom" describe -m "$tmp/mover.gguf" -q -n 12 --frames 4 --json "$tmp/clip.mkv"
  cp "$tmp/out" "$tmp/mover.json"
  check describe-mover-off 0 "$loom" describe -m "$tmp/mover.gguf" -q -n 12 --frames 4 --no-mover "$tmp/clip.mkv"
  cmp -s "$tmp/out" <(cat "$tmp/views.txt") && ok || bad "describe --no-mover: not the description without the key"
  "$py" -c "
import json; d = json.loads(open('$tmp/mover.json').read()); m = d['mover']
assert 'mover_ms' in d and (m is None or (m and d['text'][:1] == m[:1])), d" \
    && ok || bad "describe with a mover: no mover in the JSON, or the text does not open with it"
  ffmpeg -v error -y -loop 1 -i $media/scene1.png -t 1 -r 8 -pix_fmt bgr0 -c:v ffv1 "$tmp/still.mkv"
  check describe-mover-still 0 "$loom" describe -m "$tmp/mover.gguf" -q -n 12 --frames 4 --json "$tmp/still.mkv"
  "$py" -c "import json; assert json.loads(open('$tmp/out').read())['mover'] is None" \
    && ok || bad "describe: a clip of one still picture has a mover"
  cp "$tmp/out" "$tmp/still.json"
  check describe-mover-oneframe 0 "$loom" describe -m "$tmp/mover.gguf" -q -n 12 --frames 1 --json "$tmp/clip.mkv"
  "$py" -c "import json; assert json.loads(open('$tmp/out').read())['mover'] is None" \
    && ok || bad "describe: a clip read as one frame has a mover"
  check describe-mover-still-off 0 "$loom" describe -m "$tmp/mover.gguf" -q -n 12 --frames 4 --json --no-mover "$tmp/still.mkv"
  "$py" -c "
import json; a, b = (json.loads(open(f).read()) for f in ('$tmp/out', '$tmp/still.json'))
assert a['text'] == b['text'] and 'mover' not in a, (a, b)" && ok || bad "describe: no mover, yet not the plain description"
else
  echo "SKIP: no ffmpeg tool for the two-view describe checks"
fi
check caption-nomover 2 "$loom" caption -m $m --no-mover $media/scene1.png
check describe-badpairs 1 "$loom" describe -m "$tmp/badpairs.gguf" -q $media/video.mp4
has err "loom.mirror.token_pairs"
check transcribe-nomirror 2 "$loom" transcribe -m $m --no-mirror $media/speech.wav

check chat-once 0 "$loom" chat -m $m -q -n 8 --image $media/scene1.png -p "Describe the image."
printf '/image %s\nhello\n/image %s/nope.png\nagain\n/quit\n' $media/scene1.png "$tmp" | "$loom" chat -m $m -q -n 4 >"$tmp/out" 2>"$tmp/err"
[ $? -eq 0 ] && [ "$(wc -l < "$tmp/out")" -eq 2 ] && ok || { bad "chat: two answers"; cat "$tmp/out" "$tmp/err"; }
has err "nope.png"
check chat-media-noprompt 2 "$loom" chat -m $m --image $media/scene1.png

finish
