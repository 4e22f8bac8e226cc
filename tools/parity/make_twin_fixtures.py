"""Fixtures that pin loom's C decoder to its PyTorch twin (tools/loompy/decoder.py).

Writes tests/data/twin/decoder-{f32,f16}.gguf (random weights, loom-tiny's layout at a
smaller width) and decoder-{f32,f16}.bin: magic 'LMTW', n_pos, n_vocab, tokens [n_pos] i32,
logits [n_pos][n_vocab] f32 from the PyTorch model on the exported (rounded) weights.

    /usr/bin/python3 tools/parity/make_twin_fixtures.py
"""
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.loompy import decoder, gguf  # noqa: E402

OUT = "tests/data/twin"


def randomize(m, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
        for L in m.layers:
            if L.moe:
                L.exp_probs_b.copy_(0.05 * torch.randn(L.exp_probs_b.shape, generator=g))
    return m


def main():
    os.makedirs(OUT, exist_ok=True)
    c = decoder.DecoderConfig(n_vocab=384, n_embd=64, n_layer=3, n_head=4, kv_lora=32, n_nope=16,
                              n_rope=8, n_v=16, n_ff=128, n_ff_exp=64, n_expert=8, n_expert_used=2,
                              n_ctx=128)
    for name, tt in (("f32", gguf.T_F32), ("f16", gguf.T_F16)):
        m = randomize(decoder.Decoder(c), 7)
        w = gguf.Writer()
        w.add_str("general.name", "loom twin parity")
        decoder.export_gguf(m, w, tt)
        w.write(f"{OUT}/decoder-{name}.gguf")
        g = torch.Generator().manual_seed(11)
        tok = torch.randint(0, c.n_vocab, (40,), generator=g)
        with torch.no_grad():
            logits = m(m.embed(tok)[None])[0].numpy().astype(np.float32)
        with open(f"{OUT}/decoder-{name}.bin", "wb") as f:
            f.write(struct.pack("<4sII", b"LMTW", len(tok), c.n_vocab))
            f.write(tok.numpy().astype(np.int32).tobytes())
            f.write(logits.tobytes())
        print(name, "logits std", float(logits.std()))


if __name__ == "__main__":
    main()
