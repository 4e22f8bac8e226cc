"""Does a routing near-tie explain a parity flip? Replays one guided media answer of the
tiny-parity fixtures (tests/data/tiny/expected.txt) teacher forced in PyTorch and, at one
forward (--at: the one that gives step AT's logits, i.e. caches the position before it),
gives the token the next expert set instead of its k-th in one MoE layer of one sequence
(conditional or unconditional). It prints the greedy code of the step after (or of --step, a
later one: the flipped position stays in the cache) for each such flip, to compare with the
code loom picks there (test_tiny_parity prints it).

    /usr/bin/python3 tools/parity/route_flip.py --run runs/g10 --job tts --index 8 --at 7

The run's checkpoint must be the bundled model's (make_tiny_fixtures.py checks that).
"""
import argparse
import os
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools.train import infer, train, unified as U  # noqa: E402

GUIDANCE = 3.0   # the fixtures' (make_tiny_fixtures.py --cfg)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--job", choices=("tts", "t2i"), default="tts")
    ap.add_argument("--index", type=int, required=True)
    ap.add_argument("--at", type=int, required=True, help="the forward (step) whose routing is flipped")
    ap.add_argument("--step", type=int, help="the step whose code is printed (default: AT + 1)")
    a = ap.parse_args()
    a.step = a.at + 1 if a.step is None else a.step
    if a.step <= a.at:
        ap.error("--step must come after --at")
    torch.set_num_threads(1)
    model = train.load(a.run)
    with tempfile.TemporaryDirectory() as d:   # export rounds the weights as the bundled files have them
        U.export(model, os.path.join(ROOT, "models/loom-tiny-vocab.gguf"), os.path.join(d, "loom-tiny"))
    tok = U.Tok(os.path.join(ROOT, "models/loom-tiny-vocab.gguf"))
    test = train.Data(os.path.join(ROOT, "data"), "test")
    fixture = os.path.join(ROOT, "tests/data/tiny/expected.txt")
    line = next(l for l in open(fixture) if l.startswith(f"{a.job} {a.index} "))
    block = [int(x) for x in line.split()[2].split(",")]
    if a.job == "tts":
        user, open_tok = [("text", U.PROMPTS["tts"] + test.speech["meta"][a.index]["text"])], "<|audio|>"
        lo, hi = U.AUDIO_START, U.AUDIO_START + U.AUDIO_COUNT
    else:
        user, open_tok = [("text", U.PROMPTS["t2i"] + test.scene_meta[a.index]["captions"][0])], "<|image|>"
        lo, hi = U.IMAGE_START, U.IMAGE_START + U.IMAGE_COUNT
        block = [lo + c for c in block]   # the fixture keeps image codes, not token ids

    flip = {"layer": None}
    moe = [i for i, L in enumerate(model.dec.layers) if getattr(L, "moe", False)]
    for i in moe:
        L = model.dec.layers[i]

        def route(x, L=L, i=i, plain=L.route):
            sel, w = plain(x)
            if flip["layer"] != i:
                return sel, w
            c = L.c   # the k-th expert swapped for the (k+1)-th, weights as route() makes them
            probs = torch.sigmoid(torch.nn.functional.linear(x, L.gate_inp))
            top = torch.topk(probs + L.exp_probs_b, c.n_expert_used + 1, dim=-1).indices
            sel = torch.cat([top[:, :c.n_expert_used - 1], top[:, c.n_expert_used:]], -1)
            w = probs.gather(-1, sel)
            w = w / w.sum(-1, keepdim=True).clamp_min(6.103515625e-5)
            return sel, (w * c.weights_scale if c.weights_scale not in (0.0, 1.0) else w)
        L.route = route

    @torch.no_grad()
    def replay(layer=None, seq=None):
        """The greedy code of step a.step and its gap, flipping `layer` of `seq` at forward `at`."""
        open_emb = model.dec.token_embd[tok.ctl[open_tok]][None, None]
        x = {"c": torch.cat([infer._prefix(model, tok, user), open_emb], 1),
             "u": torch.cat([infer._prefix(model, tok, []), open_emb], 1)}
        cache, gaps = {"c": [], "u": []}, {}
        for t in range(a.step + 1):
            lg = {}
            for s in "cu":
                flip["layer"] = layer if (t == a.at and s == seq) else None
                lg[s] = model.dec(x[s], cache=cache[s])[0, -1]
                if t == a.at:
                    gaps[s] = {i: model.dec.layers[i].route_gap for i in moe}
            x["c"] = x["u"] = model.dec.token_embd[block[t]][None, None]
        l = (lg["u"] + GUIDANCE * (lg["c"] - lg["u"]))[lo:hi]
        top = torch.topk(l, 2)
        return int(top.indices[0]) + lo, float(top.values[0] - top.values[1]), gaps

    code, gap, gaps = replay()
    print(f"{a.job} {a.index}: fixture code at step {a.step}: {block[a.step]}; replayed: {code} (gap {gap:.4g})")
    for s in "cu":
        print(f"  routing gaps at step {a.at}, {'conditional' if s == 'c' else 'unconditional'}: "
              + ", ".join(f"layer {i} {g:.2g}" for i, g in gaps[s].items()))
    for s in "cu":
        for i in moe:
            code, gap, _ = replay(i, s)
            print(f"  flip layer {i} of the {'conditional' if s == 'c' else 'unconditional'} sequence at step {a.at}: "
                  f"step {a.step} picks {code} (gap {gap:.4g})")


if __name__ == "__main__":
    main()
