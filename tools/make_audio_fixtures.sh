#!/usr/bin/env bash
# Make the tiny committed audio fixtures in tests/data/audio/ with the ffmpeg command-line
# tool. Every file is a 0.5 s, 440 Hz sine of amplitude 0.5 (both channels when stereo),
# so tests/test_audio_io.c can check length, frequency and level whatever the codec.
# The mel fixtures (speech/silence/tone/noise + expected mel) come from tools/loompy/mel.py.
set -euo pipefail
cd "$(dirname "$0")/../tests/data/audio"
ff() { ffmpeg -hide_banner -loglevel error -y -bitexact "$@"; }
tone() { # tone RATE CHANNELS → lavfi source spec
  local e='0.5*sin(2*PI*440*t)' spec
  spec="$e"; [ "$2" = 2 ] && spec="$e|$e"
  echo "aevalsrc=${spec}:s=$1:d=0.5"
}
ff -f lavfi -i "$(tone 8000 1)"  -c:a pcm_u8    tone_u8.wav
ff -f lavfi -i "$(tone 22050 2)" -c:a pcm_s16le tone_s16.wav
ff -f lavfi -i "$(tone 44100 1)" -c:a pcm_s24le tone_s24.wav
ff -f lavfi -i "$(tone 16000 1)" -c:a pcm_s32le tone_s32.wav
ff -f lavfi -i "$(tone 48000 1)" -c:a pcm_f32le tone_f32.wav
ff -f lavfi -i "$(tone 44100 2)" -c:a flac      tone.flac
ff -f lavfi -i "$(tone 44100 2)" -c:a libmp3lame -b:a 64k tone.mp3
ff -f lavfi -i "$(tone 48000 2)" -c:a libopus   -b:a 32k tone.opus
ff -f lavfi -i "$(tone 44100 2)" -c:a aac       -b:a 96k tone.m4a
# Video files with an audio track: the reader must pick the audio and skip the video.
ff -f lavfi -i "color=c=blue:s=32x32:r=10:d=0.5" -f lavfi -i "$(tone 44100 1)" \
   -c:v mpeg4 -c:a aac -b:a 48k -shortest tone_video.mp4
ff -f lavfi -i "color=c=red:s=32x32:r=10:d=0.5" -f lavfi -i "$(tone 48000 2)" \
   -c:v mpeg4 -c:a libopus -b:a 32k -shortest tone_video.mkv
ls -l tone*
