#!/usr/bin/env bash
# Without FFmpeg, audio and video commands fail with a clear error and everything else works
# (a plain 16 kHz WAV included: loom reads it itself).
# FFmpeg is loaded at first use by the sonames compiled into loom (lib/core/ffmpeg.h), so a
# copy of the loom program with libavformat's soname changed to one that does not exist runs
# as it would on a system without FFmpeg's libraries.
set -u
loom="$1"
m=data/unified/tiny.gguf
media=../examples/media
. "$(dirname "$0")/check.sh"

# Same length, so the program's layout is unchanged: libavformat.so.59 -> libavformat.so.00.
soname=$(grep -aoE 'libavformat\.so\.[0-9]+' "$loom" | head -1)
[ -n "$soname" ] && ok || bad "no libavformat soname in $loom"
gone="libavformat.so.$(echo "${soname#libavformat.so.}" | tr '0-9' '0')"
perl -0777 -pe "s/\Q$soname\E/$gone/g" "$loom" > "$tmp/loom" && chmod +x "$tmp/loom" && ok || bad "patch the soname"
grep -aq "$gone" "$tmp/loom" && ok || bad "patched copy lacks $gone"

check version 0 "$tmp/loom" version
check caption 0 "$tmp/loom" caption -m $m -q $media/scene1.png
# A plain WAV at 16 kHz is read without FFmpeg (audio/wav.h); one that needs resampling is not.
check transcribe 0 "$tmp/loom" transcribe -m $m -q $media/speech.wav
cp "$tmp/out" "$tmp/transcript_without_ffmpeg"
check transcribe-22khz 1 "$tmp/loom" transcribe -m $m -q data/audio/tone_s16.wav
has err "audio and video need FFmpeg, which could not be loaded: $gone: cannot open shared object file"
check describe 1 "$tmp/loom" describe -m $m -q $media/video.mp4
has err "audio and video need FFmpeg, which could not be loaded: $gone"
# Generation: WAV output needs no FFmpeg, MP4 output does (bundled model; one frame).
b=../models/loom-tiny.gguf
check speak 0 "$tmp/loom" speak -m $b -q -p "hi" -o "$tmp/hi.wav"
[ -s "$tmp/hi.wav" ] && ok || bad "speak wrote no WAV"
check animate 1 "$tmp/loom" animate -m $b -q --frames 1 -p "a red circle" -o "$tmp/c.mp4"
has err "audio and video need FFmpeg, which could not be loaded: $gone"
[ ! -e "$tmp/c.mp4" ] && ok || bad "animate left an MP4 behind"
# The unpatched program reads the same file, to the same transcript.
check transcribe-real 0 "$loom" transcribe -m $m -q $media/speech.wav
cmp -s "$tmp/out" "$tmp/transcript_without_ffmpeg" && ok || bad "transcripts differ with and without FFmpeg"

finish
