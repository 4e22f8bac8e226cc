"""Where is a decoder's expert selection nearly tied? Runs a deepseek2 GGUF (best its f32
widening, out/parity/loom-tiny-f32.gguf after tools/parity/perplexity) over a text in the
chunks tools/parity/perplexity uses (BOS first in each) and prints, per chunk, the positions
whose selection gap (k-th minus (k+1)-th score, over the MoE layers) is smallest. A position
that perplexity_parity reports apart (its "apart at token" line) should sit at, or just after,
one of these: the two sides' last-bit differences chose other experts there, and the
positions after it in the chunk read its changed cache. --flip TOKEN LAYER gives that token
the (k+1)-th expert instead of its k-th in that layer and prints the scored positions whose
logits then move by more than 0.1, as perplexity_parity counts them.

    /usr/bin/python3 tools/parity/route_gaps.py out/parity/loom-tiny-f32.gguf --at 133 173
    /usr/bin/python3 tools/parity/route_gaps.py out/parity/loom-tiny-f32.gguf --flip 39 2
"""
import argparse
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools.loompy import bpe, decoder, gguf  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--text", default=os.path.join(ROOT, "tests/data/text/captions.txt"))
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--top", type=int, default=5, help="smallest gaps printed per chunk")
    ap.add_argument("--at", type=int, nargs="*", default=[], help="token positions to print the gaps of")
    ap.add_argument("--flip", type=int, nargs=2, metavar=("TOKEN", "LAYER"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    kv, tensors = gguf.read(a.model)
    model = decoder.load_gguf(kv, tensors)
    ids = bpe.Vocab.from_gguf(a.model).encode(open(a.text, "rb").read(), add_bos=True)
    bos = kv["tokenizer.ggml.bos_token_id"]
    c = model.c
    gaps = {}     # layer → [T] gap of each position in this forward
    flip = [None]  # (position in the chunk, layer) to route to the (k+1)-th expert, or None

    def route(layer, i):
        plain = layer.route

        def hooked(x):
            score = torch.sigmoid(torch.nn.functional.linear(x, layer.gate_inp)) + layer.exp_probs_b
            top, idx = torch.topk(score, c.n_expert_used + 1, dim=-1)
            gaps[i] = (top[:, -2] - top[:, -1]).double()
            sel, w = plain(x)
            if flip[0] and flip[0][1] == i:
                j = flip[0][0]
                sel[j] = torch.cat([idx[j, :-2], idx[j, -1:]])
                p = torch.sigmoid(torch.nn.functional.linear(x[j], layer.gate_inp)).gather(-1, sel[j])
                w[j] = p / p.sum() * (c.weights_scale if c.weights_scale not in (0.0, 1.0) else 1.0)
            return sel, w
        return hooked

    for i, L in enumerate(model.layers):
        if L.moe:
            L.route = route(L, i)
    C = a.ctx
    with torch.no_grad():
        for ch in range(len(ids) // C):
            chunk = torch.tensor(ids[ch * C:(ch + 1) * C])
            chunk[0] = bos
            gaps.clear()
            logits = model(model.embed(chunk)[None])[0]
            if a.flip and ch * C <= a.flip[0] < (ch + 1) * C:
                flip[0] = (a.flip[0] - ch * C, a.flip[1])
                moved = (model(model.embed(chunk)[None])[0] - logits).abs().max(-1).values
                flip[0] = None
                apart = [ch * C + j for j in range(C // 2, C - 1) if moved[j] > 0.1]
                print(f"flipping token {a.flip[0]} in layer {a.flip[1]} moves {len(apart)} scored positions "
                      f"by > 0.1: {apart[:16]}; the largest by {moved[C // 2:C - 1].max():.3g}")
            g = torch.stack([gaps[i] for i in sorted(gaps)])           # [moe layers, T]
            best, layer = g.min(0)
            order = torch.argsort(best)[:a.top].tolist()
            print(f"chunk {ch:2d} (tokens {ch * C}..{(ch + 1) * C - 1}): smallest gaps " +
                  ", ".join(f"{ch * C + j} ({best[j]:.2e}, layer {sorted(gaps)[layer[j]]})" for j in order))
            for t in a.at:
                if ch * C <= t < (ch + 1) * C:
                    j = t - ch * C
                    rank = int((best < best[j]).sum())
                    print(f"  token {t}: gap {best[j]:.2e} in layer {sorted(gaps)[layer[j]]}, "
                          f"the chunk's {rank + 1}. smallest of {C}")


if __name__ == "__main__":
    main()
