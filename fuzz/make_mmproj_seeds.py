#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_mmproj into fuzz/corpus/mmproj/: the media-encoder fixtures
(unified tiny-mmproj with both encoders, the two ViT layouts, the audio encoder) and broken
copies of them (truncated in the header, in the tensor infos and in the data; single bytes
flipped in a key length, a value and a tensor shape), and the audio encoder with a CTC head
(mm.a.ctc.*). Deterministic; run from the repository root and commit:
python3 fuzz/make_mmproj_seeds.py"""
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.loompy import gguf  # noqa: E402

OUT = "fuzz/corpus/mmproj"
SRC = {
    "unified-tiny-mmproj.gguf": "tests/data/unified/tiny-mmproj.gguf",
    "vit-mlp.gguf": "tests/data/vision/vit_mlp.gguf",
    "vit-merge.gguf": "tests/data/vision/vit_merge.gguf",
    "audio-encoder.gguf": "tests/data/audio/encoder/encoder.gguf",
}


def find_value(buf, key):
    """Offset of the value of a scalar u32/bool key (after its type field)."""
    k = key.encode()
    i = buf.find(struct.pack("<Q", len(k)) + k)
    assert i >= 0, key
    return i + 8 + len(k) + 4


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, src in SRC.items():
        shutil.copyfile(src, os.path.join(OUT, name))
    tiny = open(SRC["unified-tiny-mmproj.gguf"], "rb").read()
    merge = open(SRC["vit-merge.gguf"], "rb").read()
    write("cut-header.gguf", tiny[:600])           # inside the key/values
    write("cut-tensor-infos.gguf", tiny[:2600])    # inside the tensor table
    write("cut-data.gguf", merge[: len(merge) // 2])
    # one value changed: a vision image_size no longer a multiple of the patch, a huge
    # projection_dim, the vision encoder switched off by its key (no encoder left), a mel-bin
    # count the tensors disagree with
    b = bytearray(merge)
    struct.pack_into("<I", b, find_value(b, "clip.vision.image_size"), 33)
    write("flip-image-size.gguf", bytes(b))
    b = bytearray(merge)
    struct.pack_into("<I", b, find_value(b, "clip.vision.projection_dim"), 0x40000000)
    write("flip-projection-dim.gguf", bytes(b))
    b = bytearray(merge)
    b[find_value(b, "clip.has_vision_encoder")] = 0
    write("flip-no-encoder.gguf", bytes(b))
    b = bytearray(tiny)
    struct.pack_into("<I", b, find_value(b, "clip.audio.num_mel_bins"), 81)
    write("flip-mel-bins.gguf", bytes(b))
    b = bytearray(merge)
    b[len(b) // 3] ^= 0x40                          # a bit in the tensor data: still loads
    write("flip-data-bit.gguf", bytes(b))
    # the audio encoder (96-wide rows) with a 7-class CTC head
    kv, tensors = gguf.read(SRC["audio-encoder.gguf"])
    w = gguf.Writer()
    for k, v in kv.items():
        if k != "general.alignment":
            t, e = gguf.value_type(v)
            w.add(k, t, v, e)
    for name, (shape, tt, raw) in tensors.items():
        w.tensors.append((name, tuple(shape), tt, raw))
    x = np.sin(np.arange(7 * 97, dtype=np.float32)).reshape(7, 97)
    w.add_tensor("mm.a.ctc.weight", x[:, :96], gguf.T_F16)
    w.add_tensor("mm.a.ctc.bias", x[:, 96])
    w.write(os.path.join(OUT, "audio-ctc.gguf"))


if __name__ == "__main__":
    main()
