"""Rewrite a GGUF file with its F32 tensors of 2+ dimensions (and at least 256 values) stored
as F16; everything else (keys, vectors, other types) is copied unchanged.

    /usr/bin/python3 tools/gguf_to_f16.py IN.gguf OUT.gguf [--keep NAME ...]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.loompy import gguf  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--keep", nargs="*", default=[])
    a = ap.parse_args()
    kv, tensors = gguf.read(a.src)
    w = gguf.Writer(kv.get("general.alignment", 32))
    for k, v in kv.items():
        if k != "general.alignment":
            t, e = gguf.value_type(v)
            w.add(k, t, v, e)
    n16 = 0
    for name, (shape, tt, raw) in tensors.items():
        if tt == gguf.T_F32 and len(shape) >= 2 and int(np.prod(shape)) >= 256 and name not in a.keep:
            w.add_tensor(name, np.frombuffer(raw, np.float32).reshape(shape), gguf.T_F16)
            n16 += 1
        else:
            w.tensors.append((name, tuple(shape), tt, raw))
    w.write(a.dst)
    print(f"{a.dst}: {n16} of {len(tensors)} tensors as F16, {os.path.getsize(a.dst) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
