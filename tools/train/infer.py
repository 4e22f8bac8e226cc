"""Greedy inference with the PyTorch unified model: the reference loom's C pipeline is
checked against (same prompts as docs/FORMAT.md "Unified model", same greedy answers).

    answer_ids(model, tok, user_segments)            → generated token ids (text jobs)
    media_codes(model, tok, user_segments, kind, …)  → image / audio codes (generation jobs)
"""
import numpy as np
import torch

from tools.train import unified as U


def _prefix(model, tok, user):
    segs = [("ctl", "<|bos|>"), ("ctl", "<|user|>")] + user + [("ctl", "<|end|>"), ("ctl", "<|assistant|>")]
    X, _ = U.build(model, tok, [(segs, len(segs))])
    return X


@torch.no_grad()
def _margin(l):
    """Gap between the best and the second-best logit: how near a greedy step is to a tie."""
    top = torch.topk(l.float(), 2).values
    return float(top[0] - top[1])


def _route_gap(model):
    """The smallest routing gap (k-th vs next expert score) of the last forward, over the layers:
    how near a token was to other experts, which a last-bit difference would flip."""
    return min((getattr(L, "route_gap", float("inf")) for L in model.dec.layers), default=float("inf"))


@torch.no_grad()
def answer_ids(model, tok, user, n_max=256, margins=None, route_margins=None):
    """Greedy answer to one user turn, stopping at <|end|> or <|eos|> (not included).
    `margins`, if a list, receives each step's top-2 logit gap (the stop step included)."""
    model.eval()
    X = _prefix(model, tok, user)
    stop = {tok.ctl["<|end|>"], tok.ctl["<|eos|>"]}
    out, cache = [], []
    for _ in range(n_max):
        l = model.dec(X, cache=cache)[0, -1]
        t = int(l.argmax())
        if margins is not None:
            margins.append(_margin(l))
        if route_margins is not None:
            route_margins.append(_route_gap(model))
        if t in stop:
            break
        out.append(t)
        X = model.dec.token_embd[t][None, None]
    return out


@torch.no_grad()
def generate_codes(model, tok, user, open_tok, lo, hi, n, cfg=1.0, close=None, temp=0.0, seed=0, margins=None,
                   route_margins=None):
    """Codes of one media block: force `open_tok`, then n tokens from [lo, hi) (greedy when
    temp <= 0), with classifier-free guidance against the empty prompt when cfg != 1.
    If `close` is given the block may end early when it is the best allowed token."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    Xc = torch.cat([_prefix(model, tok, user), model.dec.token_embd[tok.ctl[open_tok]][None, None]], 1)
    Xu = torch.cat([_prefix(model, tok, []), model.dec.token_embd[tok.ctl[open_tok]][None, None]], 1) \
        if cfg not in (0.0, 1.0) else None
    codes, cc, cu = [], [], []
    for _ in range(n):
        l = model.dec(Xc, cache=cc)[0, -1]
        gap = _route_gap(model)
        if Xu is not None:
            lu = model.dec(Xu, cache=cu)[0, -1]
            l = lu + cfg * (l - lu)
            gap = min(gap, _route_gap(model))
        if route_margins is not None:
            route_margins.append(gap)
        allowed = torch.full_like(l, float("-inf"))
        allowed[lo:hi] = l[lo:hi]
        if close is not None:
            allowed[close] = l[close]
        if margins is not None:
            margins.append(_margin(allowed))
        if temp > 0:
            t = int(torch.multinomial(torch.softmax(allowed / temp, -1), 1, generator=g))
        else:
            t = int(allowed.argmax())
        if close is not None and t == close:
            break
        codes.append(t - lo)
        Xc = model.dec.token_embd[t][None, None]   # only the new position; the rest is cached
        Xu = Xc if Xu is not None else None
    return np.array(codes, dtype=np.int32)
