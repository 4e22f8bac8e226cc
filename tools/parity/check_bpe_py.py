#!/usr/bin/env python3
"""Check tools/loompy/bpe.py's reference encoder against llama.cpp's ids for the corpus
(tests/data/tokenizer/expect-loom.txt): the Python twin must agree case for case.

    /usr/bin/python3 tools/parity/check_bpe_py.py [tests/data/tokenizer]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from loompy import bpe  # noqa: E402

d = sys.argv[1] if len(sys.argv) > 1 else "tests/data/tokenizer"
v = bpe.Vocab.from_gguf(os.path.join(d, "vocab-loom.gguf"))
cases = open(os.path.join(d, "corpus.txt")).read().splitlines()
expect = open(os.path.join(d, "expect-loom.txt")).read().splitlines()
bad = 0
for i, (c, e) in enumerate(zip(cases, expect)):
    sp, _, hx = c.partition(" ")
    got = " ".join(map(str, v.encode(bytes.fromhex(hx), parse_special=sp == "1")))
    if got != e:
        bad += 1
        if bad <= 5:
            print(f"case {i} ({c}): python [{got}] llama.cpp [{e}]")
print(f"bpe.py reference encoder: {len(cases) - bad} of {len(cases)} cases identical to llama.cpp")
sys.exit(1 if bad or len(cases) != len(expect) else 0)
