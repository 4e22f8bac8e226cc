#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_prompt into fuzz/corpus/prompt/: small programs in the
harness's byte language (fuzz/fuzz_prompt.c): byte 0 n_ctx (8 + b % 120), byte 1 n_batch,
then operations (op % 11: 0 token u32, 1 token u16 % 3000, 2 special, 3 text, 4 rows,
5 image, 6 audio (u16 length, see op_audio), 7 video, 8 clear, 9 append + generate, 10 truncate). Deterministic; run
from the repository root and commit:  python3 fuzz/make_prompt_seeds.py"""
import os
import struct

OUT = "fuzz/corpus/prompt"
BOS, USER, ASSISTANT, END = (bytes([2, k]) for k in (0, 1, 2, 3))


def text(s):
    b = s.encode()
    return bytes([3, len(b)]) + b


def image(w, h, shape=0):
    return bytes([5, w - 1, h - 1, shape]) + bytes((i * 29) % 256 for i in range(w * h * 3))


def audio(n):
    # mode byte 96..255: small values (mode - 176) / 80
    return bytes([6]) + struct.pack("<H", n) + bytes(96 + (i * 13) % 160 for i in range(n))


def video(frames, w, h, fps):
    return bytes([7, frames, w - 1, h - 1, fps]) + bytes((i * 7) % 256 for i in range(max(frames, 1) * w * h * 3))


def gen(n):
    return bytes([9, n])


def turn(*media, ask="Describe the image."):
    return BOS + USER + b"".join(media) + text(ask) + END + ASSISTANT + gen(3)


SEEDS = {
    "image-turn": bytes([112, 16]) + turn(image(16, 12)),
    "wide-image": bytes([112, 64]) + turn(image(40, 1, 1)),
    "audio-turn": bytes([112, 7]) + turn(audio(3200), ask="Transcribe the audio."),
    # from 0xF000 on the length is the encoder's window - 160 + (k & 0xFFF) % 640: 0xF0A0 is
    # exactly the window (the longest clip), 0xF27F 479 samples past it (refused)
    "audio-window": bytes([112, 7]) + bytes([6]) + struct.pack("<H", 0xF0A0) + gen(1),
    "audio-too-long": bytes([112, 7]) + bytes([6]) + struct.pack("<H", 0xF27F) + gen(1),
    "video-turn": bytes([112, 32]) + turn(video(3, 8, 6, 2)),
    "video-no-frames": bytes([112, 32]) + video(0, 4, 4, 2) + gen(1),
    "rows-nan-inf": bytes([60, 5]) + BOS + bytes([4, 2]) + bytes([0, 2, 3] * 64) + bytes([4, 1]) + bytes([200] * 64) + gen(3),
    "tokens-bad": bytes([20, 1]) + bytes([0]) + struct.pack("<i", -5) + bytes([0]) + struct.pack("<i", 1 << 30)
                  + bytes([1]) + struct.pack("<H", 2999) + bytes([2, 136]) + b"<|nope|>" + gen(2),
    "context-full": bytes([0, 3]) + BOS + text("a long prompt that needs more than eight positions of context") + gen(2),
    "clear-truncate": bytes([30, 4]) + BOS + USER + gen(1) + bytes([10, 1]) + bytes([8]) + text("again") + gen(2),
    "empty-image": bytes([112, 8]) + image(4, 4, 4) + image(4, 4, 8) + gen(1),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
