#!/usr/bin/env bash
# An MP4 written by loom (24 frames, 64x48, 12 fps, through test_video_io --write-mp4) as
# the `ffprobe` tool sees it: frame count, size, rate, pixel format, index at the front.
set -u
loom="$1"
writer="$(dirname "$loom")/tests/test_video_io"
pass=0; fail=0
ok() { if eval "$2"; then pass=$((pass+1)); else echo "FAIL $1"; fail=$((fail+1)); fi; }
if ! command -v ffprobe >/dev/null; then echo "SKIP: no ffprobe tool (apt install ffmpeg)"; echo "0 passed, 0 failed"; exit 0; fi
dir="$(mktemp -d /tmp/loom_mp4_ffprobe.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
out="$dir/clip.mp4"
ok "writer ran" '"$writer" --write-mp4 "$out"'
ok "file exists" '[ -s "$out" ]'
ok "no temporary left" '[ "$(ls "$dir" | wc -l)" -eq 1 ]'
# one ffprobe run (decoding every frame for nb_read_frames); probe KEY reads its answer
info="$(ffprobe -v error -select_streams v:0 -count_frames -of default=nw=1 \
  -show_entries stream=nb_read_frames,nb_frames,width,height,r_frame_rate,avg_frame_rate,duration,pix_fmt,codec_name "$out")"
probe() { sed -n "s/^$1=//p" <<<"$info"; }
ok "frame count 24" '[ "$(probe nb_read_frames)" = 24 ]'
ok "stored frame count 24" '[ "$(probe nb_frames)" = 24 ]'
ok "size 64x48" '[ "$(probe width),$(probe height)" = "64,48" ]'
ok "rate 12/1" '[ "$(probe r_frame_rate)" = 12/1 ] && [ "$(probe avg_frame_rate)" = 12/1 ]'
ok "duration 2 s" '[ "$(probe duration)" = 2.000000 ]'
ok "yuv420p" '[ "$(probe pix_fmt)" = yuv420p ]'
codec="$(probe codec_name)"
ok "codec h264 or mpeg4 ($codec)" '[ "$codec" = h264 ] || [ "$codec" = mpeg4 ]'
# +faststart: the index (moov) comes before the media data (mdat)
ok "moov before mdat" 'python3 - "$out" <<PY
import struct, sys
d = open(sys.argv[1], "rb").read(); i = 0; order = []
while i + 8 <= len(d):
    n, t = struct.unpack(">I4s", d[i:i+8]); order.append(t.decode("latin1")); i += n if n >= 8 else len(d)
sys.exit(0 if order.index("moov") < order.index("mdat") else 1)
PY'
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
