#!/usr/bin/env bash
# Make the small video fixtures under tests/data/video/ with the `ffmpeg` tool.
# Usage: tools/make_video_fixtures.sh [OUT_DIR]   (default tests/data/video)
#
# Every "pattern" clip is 64x48, 10 fps, 20 frames (2.0 s). Frame N (0..19) is drawn in RGB as
#   R = 220 left half / 40 right half,  G = 10 + 12*N,  B = 60 top half / 200 bottom half,
# so a test can tell which source frame a sample came from (G) and that channels and
# orientation are right (R, B). The clip is encoded once per container/codec pair that this
# ffmpeg can encode; a missing encoder is reported and that fixture is skipped (the test
# reports the missing file as a visible SKIP, not a silent pass).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-tests/data/video}"
mkdir -p "$out"
ff=(ffmpeg -hide_banner -loglevel error -y -nostdin)
src=(-f lavfi -i "color=c=black:s=64x48:r=10:d=2,format=gbrp,geq=r='if(lt(X,W/2),220,40)':g='10+12*N':b='if(lt(Y,H/2),60,200)'")
encoders="$(ffmpeg -hide_banner -encoders 2>/dev/null)"
have_enc() { grep -q " $1 " <<<"$encoders"; }

clip() { # clip FILE ENCODER ARGS...
  local file="$1" enc="$2"; shift 2
  if ! have_enc "$enc"; then echo "SKIP $file: this ffmpeg has no '$enc' encoder"; return; fi
  "${ff[@]}" "${src[@]}" -c:v "$enc" -pix_fmt yuv420p "$@" "$out/$file"
  echo "made $file ($(stat -c %s "$out/$file") bytes)"
}

clip h264.mp4   libx264     -crf 10 -bf 2 -g 8
clip h264.mov   libx264     -crf 10 -bf 0 -g 20
clip h264.mkv   libx264     -crf 10 -bf 3 -g 5
clip hevc.mp4   libx265     -x265-params log-level=error:crf=10:keyint=10 -tag:v hvc1
clip mpeg4.avi  mpeg4       -q:v 2 -g 6
clip mpeg4.mp4  mpeg4       -q:v 2 -bf 1 -g 10
clip vp8.webm   libvpx      -crf 4 -b:v 1M -g 7
clip vp9.webm   libvpx-vp9  -crf 10 -b:v 0 -g 9
clip av1.mkv    libaom-av1  -crf 10 -cpu-used 8 -g 10
# Audio only: 0.5 s of a 440 Hz tone in an M4A (AAC) and a WAV.
"${ff[@]}" -f lavfi -i "sine=frequency=440:sample_rate=8000:duration=0.5" -c:a aac -b:a 32k "$out/audio_only.m4a"
echo "made audio_only.m4a"
# Ten hours of still content: one frame per minute (600 frames, 36000 s), a keyframe every
# 20 frames (20 min), so sampling 8 frames must seek and decode forward (<= 8 x 20 frames). Frame N has
# G = 16 + 2*(N mod 100) everywhere (R = B = 128), which lets a test check which frame it got.
"${ff[@]}" -f lavfi -i "color=c=black:s=32x32:r=1/60:d=36000,format=gbrp,geq=r=128:g='16+2*mod(N,100)':b=128" \
  -c:v libx264 -preset ultrafast -crf 18 -g 20 -bf 0 -pix_fmt yuv420p "$out/ten_hours.mp4"
echo "made ten_hours.mp4 ($(stat -c %s "$out/ten_hours.mp4") bytes)"
# A Matroska header that claims 16384x16384: one 256x256 frame whose track header's
# PixelWidth / PixelHeight (EBML 0xB0 / 0xBA, 2-byte values 0x0100) are patched to 0x4000.
# (A Y4M header cannot carry this: FFmpeg refuses pictures of 2^28 pixels and more itself.)
"${ff[@]}" -f lavfi -i "color=c=gray:s=256x256:r=10:d=0.1" -frames:v 1 -c:v mpeg4 -q:v 31 "$out/dims_16k.mkv"
perl -0777 -pi -e 's/\xB0\x82\x01\x00/\xB0\x82\x40\x00/ or die "no PixelWidth"; s/\xBA\x82\x01\x00/\xBA\x82\x40\x00/ or die "no PixelHeight"' "$out/dims_16k.mkv"
echo "made dims_16k.mkv ($(stat -c %s "$out/dims_16k.mkv") bytes)"
du -ch "$out" | tail -1
