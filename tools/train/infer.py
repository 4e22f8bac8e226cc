"""Greedy inference with the PyTorch unified model: the reference loom's C pipeline is
checked against (same prompts as docs/FORMAT.md "Unified model", same greedy answers).

    answer_ids(model, tok, user_segments)            → generated token ids (text jobs)
    video_answer_ids(model, tok, frames)             → `loom describe`'s answer (two views)
    beam_ids(model, tok, user_segments, n_beams)     → the same by beam search
    ctc_logprobs(model, mel)                         → the CTC head's reading of a clip (beam_ids' ctc)
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


def route_gap(model):
    """The smallest routing gap (k-th vs next expert score) of the last forward, over the layers:
    how near a token was to other experts, which a last-bit difference would flip."""
    return min((getattr(L, "route_gap", float("inf")) for L in model.dec.layers), default=float("inf"))


@torch.no_grad()
def answer_ids(model, tok, user, n_max=256, margins=None, route_margins=None):
    """Greedy answer to one user turn, stopping at <|end|> or <|eos|> (not included).
    `margins`, if a list, receives each step's top-2 logit gap (the stop step included)."""
    model.eval()
    return _greedy(model, tok, _prefix(model, tok, user), [], n_max, margins, route_margins)


@torch.no_grad()
def _picture_cache(model, tok, image):
    """The decoder's cache after the turn's start and the picture (<|bos|><|user|><|image|>…)."""
    segs = [("ctl", "<|bos|>"), ("ctl", "<|user|>"), ("ctl", "<|image|>"), ("image", image), ("ctl", "<|/image|>")]
    X, _ = U.build(model, tok, [(segs, len(segs))])
    cache = []
    model.dec(X, cache=cache)
    return cache


@torch.no_grad()
def region_answer_ids(model, tok, image, n_max=256, mirror=True, regions=None, margins=None, route_margins=None):
    """`loom caption` on a model with caption regions (loom.caption.*): the turn's start and the
    picture run once, then each region's question after them (on a copy of that cache) →
    greedy answer ids per region, in U.CAPTION_REGIONS' order (or of the region indices in
    `regions`). With `mirror` (loom.caption.region_mirror) the picture's mirror image runs too,
    and each answer is read from both (_greedy_views; the mirror image's tokens through
    U.mirror_map, as loom caption passes loom.mirror.token_pairs)."""
    model.eval()
    caches = [_picture_cache(model, tok, image)]
    if mirror:
        caches.append(_picture_cache(model, tok, np.ascontiguousarray(np.asarray(image)[:, ::-1])))
    out = []
    for i in (range(len(U.CAPTION_REGIONS)) if regions is None else regions):
        qs = [U.REGION_QUESTION.replace("{}", U.CAPTION_REGIONS[j]) for j in ([i, U.REGION_MIRROR[i]] if mirror else [i])]
        Xs = [model.dec.token_embd[tok.text(q) + [tok.ctl["<|end|>"], tok.ctl["<|assistant|>"]]][None] for q in qs]
        # the layers replace their cache tensors when positions are added: copying the dicts is enough
        out.append(_greedy_views(model, tok, Xs, [[dict(c) for c in cache] for cache in caches], n_max,
                                 margins, route_margins, [None, U.mirror_map(tok)][:len(caches)]))
    return out


def video_mover(model, tok, frames, n_max=256, mirror=True):
    """loom_video_mover: the first and last frames read by region (region_answer_ids); the
    first region whose answers differ gives its first-frame answer, or its last-frame one where
    the first is U.REGION_EMPTY. Its text, or None where no region changed."""
    before, after = (region_answer_ids(model, tok, np.asarray(frames[k]), n_max, mirror) for k in (0, -1))
    for b, a in zip(before, after):
        b, a = tok.decode(b), tok.decode(a)
        if b != a:
            return b if b != U.REGION_EMPTY else a
    return None


@torch.no_grad()
def video_answer_ids(model, tok, frames, prompt=U.PROMPTS["video"], n_max=256, mirror=True, mover=False,
                     margins=None, route_margins=None):
    """`loom describe` greedy: the clip (frames [F,H,W,3]) and, with `mirror`
    (loom.mirror.token_pairs), its mirror image read together, token t of the answer read as
    U.mirror_map(tok)[t] in the mirror image's (loom_generate_params.view2_tokens). With
    `mover` (loom.describe.mover) the answer opens with the tokens of video_mover's text
    (loom_generate_params.opening)."""
    model.eval()
    m = video_mover(model, tok, frames, n_max, mirror) if mover else None
    views = [frames] + ([np.ascontiguousarray(np.asarray(frames)[:, :, ::-1])] if mirror else [])
    Xs = [_prefix(model, tok, [("ctl", "<|video|>"), ("video", v), ("ctl", "<|/video|>"), ("text", prompt)])
          for v in views]
    maps = [None, U.mirror_map(tok)][:len(views)]
    return _greedy_views(model, tok, Xs, [[] for _ in views], n_max, margins, route_margins, maps,
                         opening=tok.text(m) if m else None)


def _greedy_views(model, tok, Xs, caches, n_max, margins=None, route_margins=None, maps=None, opening=None):
    """Greedy tokens under several views (loom_generate_params.view2): each step the token t of
    highest summed log-probability (no media open token), where view k reads t as maps[k][t]
    (maps None or a view's None: t itself), fed to every view. One view is _greedy's answer.
    With `opening` (loom_generate_params.opening) the answer takes opening[0], then each step
    the likeliest of the opening's tokens after the one taken last, until its last; then goes
    on free. margins: the top-2 gap of the summed log-probabilities per step (among the
    opening's allowed tokens while it lasts); route_margins: the smallest routing gap of the
    views' forwards."""
    stop = {tok.ctl["<|end|>"], tok.ctl["<|eos|>"]}
    skip = [tok.ctl["<|image|>"], tok.ctl["<|audio|>"], tok.ctl["<|video|>"]]
    maps = maps or [None] * len(Xs)
    opening, nxt = list(opening or []), 0
    out = []
    for _ in range(n_max):
        lp, rg = 0, []
        for X, cache, mp in zip(Xs, caches, maps):
            l = torch.log_softmax(model.dec(X, cache=cache)[0, -1].double(), -1)
            lp = lp + (l if mp is None else l[mp])
            rg.append(route_gap(model))
        lp[skip] = -float("inf")
        if nxt < len(opening):   # the opening's tokens after the one taken last (at first its first)
            allowed = range(nxt, len(opening) if nxt else 1)
            keep = torch.full_like(lp, -float("inf"))
            keep[[opening[k] for k in allowed]] = lp[[opening[k] for k in allowed]]
            lp = keep
            nxt = max(allowed, key=lambda k: (float(lp[opening[k]]), -k)) + 1   # ties: the earliest, as C
            t = opening[nxt - 1]
        else:
            t = int(lp.argmax())
        if margins is not None:
            margins.append(_margin(lp))
        if route_margins is not None:
            route_margins.append(min(rg))
        if t in stop:
            break
        out.append(t)
        Xs = [model.dec.token_embd[t if mp is None else int(mp[t])][None, None] for mp in maps]
    return out


def _greedy(model, tok, X, cache, n_max, margins=None, route_margins=None):
    """Greedy tokens after input rows X [1,T,E] (continuing `cache`) until <|end|> / <|eos|>."""
    stop = {tok.ctl["<|end|>"], tok.ctl["<|eos|>"]}
    out = []
    for _ in range(n_max):
        l = model.dec(X, cache=cache)[0, -1]
        t = int(l.argmax())
        if margins is not None:
            margins.append(_margin(l))
        if route_margins is not None:
            route_margins.append(route_gap(model))
        if t in stop:
            break
        out.append(t)
        X = model.dec.token_embd[t][None, None]
    return out


@torch.no_grad()
def ctc_logprobs(model, mel):
    """The CTC head's log-probabilities over text tokens + blank for each audio row of a
    log-mel → float64 numpy [rows][N_TEXT + 1] (what loom_mmproj_audio_ctc computes)."""
    return torch.log_softmax(model.aux_ctc(model.aud(torch.from_numpy(mel))).double(), -1).numpy()


def _ctc_extend(lp, r, last, cs):
    """Answer g (its state r = (r_n, r_b) [T] each, last token or -1) extended by each token in
    cs → (log p_CTC(g + c as a prefix) per c, each one's state): beam_search.c's ctc_extend."""
    T, blank, cs = lp.shape[0], lp.shape[1] - 1, np.asarray(cs)
    gn, gb = r
    rn, rb = np.full((T, len(cs)), -np.inf), np.full((T, len(cs)), -np.inf)
    if last < 0:
        rn[0] = lp[0, cs]
    psi = rn[0].copy()
    same = cs == last
    with np.errstate(invalid="ignore"):   # logaddexp(-inf, -inf) is -inf, as in C
        for t in range(1, T):
            phi = np.where(same, gb[t - 1], np.logaddexp(gb[t - 1], gn[t - 1]))
            y = lp[t, cs]
            rn[t] = np.logaddexp(rn[t - 1], phi) + y
            rb[t] = np.logaddexp(rb[t - 1], rn[t - 1]) + lp[t, blank]
            psi = np.logaddexp(psi, phi + y)
    return psi, [(rn[:, j], rb[:, j]) for j in range(len(cs))]


@torch.no_grad()
def beam_ids(model, tok, user, n_beams, n_max=256, margins=None, ctc=None, ctc_weight=0.3):
    """Beam search for one user turn, as loom_session_generate runs it with n_beams > 1:
    each step extends every open answer by its n_beams most probable tokens (media open
    tokens excluded), keeps the n_beams best by total log-probability (ties: beam, then
    token id) and keeps the best ended one (<|end|> / <|eos|>); stops once that scores at
    least the best open answer. Returns the best ended answer (else the best open one at
    n_max), without its stop token. `margins`, if a list, receives each step's smallest
    score gap at a decision (the last kept open answer against the first dropped one, an
    ended answer against the best so far, the best ended against the best open one): where
    loom's F16 arithmetic may decide the other way.

    With ctc (ctc_logprobs' [T][classes]) scores are (1 − ctc_weight)·that log-probability +
    ctc_weight·the CTC prefix log-probability of the answer (of exactly the answer once it has
    ended), and each open answer is extended by its 2·n_beams best text or stop tokens, as
    loom_generate_params.ctc_logprobs does."""
    model.eval()
    stop = {tok.ctl["<|end|>"], tok.ctl["<|eos|>"]}
    skip = [tok.ctl[t] for t in ("<|image|>", "<|audio|>", "<|video|>")]
    w, K = (ctc_weight, 2 * n_beams) if ctc is not None else (0.0, n_beams)
    cache = []
    st0 = None if ctc is None else (np.full(ctc.shape[0], float("-inf")), np.cumsum(ctc[:, -1]))
    # score, answer, cache, logits, decoder log-probability, CTC state
    beams = [(0.0, [], cache, model.dec(_prefix(model, tok, user), cache=cache)[0, -1], 0.0, st0)]
    fin = None                                                                            # (score, answer)
    for t in range(n_max):
        cands = []
        for k, (score, ans, _, l, att, st) in enumerate(beams):
            l = l.float()
            lse = float(torch.logsumexp(l.double(), 0))
            allowed = l.clone()
            allowed[skip] = float("-inf")
            if ctc is not None:
                allowed[[i for i in range(ctc.shape[1] - 1, len(l)) if i not in stop]] = float("-inf")
            top = torch.topk(allowed, K).indices.tolist()
            if ctc is None:
                cands += [(score + (float(l[i]) - lse), k, i, None, None) for i in top]
                continue
            text = [i for i in top if i not in stop]
            psi, sts = _ctc_extend(ctc, st, ans[-1] if ans else -1, text) if text else ([], [])
            for i in top:
                a2 = att + (float(l[i]) - lse)
                if i in stop:
                    c2, st2 = float(np.logaddexp(st[0][-1], st[1][-1])), None
                else:
                    c2, st2 = float(psi[text.index(i)]), sts[text.index(i)]
                cands.append(((1 - w) * a2 + w * c2, k, i, a2, st2))
        cands.sort(key=lambda c: (-c[0], c[1], c[2]))
        nxt, gaps, dropped = [], [float("inf")], False
        for c in cands:
            if c[2] in stop:
                if fin is not None:
                    gaps.append(abs(c[0] - fin[0]))
                if fin is None or c[0] > fin[0]:
                    fin = (c[0], beams[c[1]][1])
            elif len(nxt) < n_beams:
                nxt.append(c)
            elif not dropped:   # the first open answer left out
                gaps.append(nxt[-1][0] - c[0])
                dropped = True
        if fin is not None and nxt:
            gaps.append(abs(fin[0] - nxt[0][0]))
        if margins is not None:
            margins.append(min(gaps))
        if not nxt or (fin is not None and fin[0] >= nxt[0][0]):
            break
        if t + 1 == n_max:
            if fin is None:
                return beams[nxt[0][1]][1] + [nxt[0][2]]
            break
        new = []
        for score, k, i, a2, st2 in nxt:
            c = [dict(x) for x in beams[k][2]]   # each layer's cache tensors are replaced, never changed
            new.append((score, beams[k][1] + [i], c, model.dec(model.dec.token_embd[i][None, None], cache=c)[0, -1],
                        a2, st2))
        beams = new
    return fin[1] if fin else []


@torch.no_grad()
def generate_codes(model, tok, user, open_tok, lo, hi, n, cfg=1.0, close=None, temp=0.0, seed=0, margins=None,
                   route_margins=None, words=None, block=None, frame=None, per_frame=0):
    """Codes of one media block: force `open_tok`, then n tokens from [lo, hi) (greedy when
    temp <= 0), with classifier-free guidance against the empty prompt when cfg != 1.
    If `close` is given the block may end early when it is the best allowed token.
    words (a loom.audio.words model's speech): the text spoken, each word (" word" tokens)
    spelt in turn: its first token competes with the codes, with the probability of any text
    token (the model may know that a word comes, not which), the rest is forced, and `close`
    competes only after the last word (lib/generate_media.c). block: a list that gets every
    token of the block after the open token, words' tokens included; margins and route_margins
    then get one entry per token of it (inf where a word's token was forced).
    frame (video): this token is forced before each per_frame codes, as `loom animate` does."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    Xc = torch.cat([_prefix(model, tok, user), model.dec.token_embd[tok.ctl[open_tok]][None, None]], 1)
    Xu = torch.cat([_prefix(model, tok, []), model.dec.token_embd[tok.ctl[open_tok]][None, None]], 1) \
        if cfg not in (0.0, 1.0) else None
    spelt = [tok.text(" " + w) for w in (words or "").split()]
    wi = wp = 0                           # the word being (or next) spelt, its tokens written
    codes, cc, cu = [], [], []
    marked = False                        # video: the current frame's marker is written
    while len(codes) < n:
        l = model.dec(Xc, cache=cc)[0, -1]
        gap = route_gap(model)
        if Xu is not None:
            lu = model.dec(Xu, cache=cu)[0, -1]
            l = lu + cfg * (l - lu)
            gap = min(gap, route_gap(model))
        forced = frame if frame is not None and not marked else spelt[wi][wp] if wp > 0 else None
        if forced is not None:            # a frame's marker, or the rest of a word: no near-tie there
            t, marked = forced, frame is not None
            for m in (margins, route_margins):
                if m is not None:
                    m.append(float("inf"))
        else:
            extra = spelt[wi][0] if wi < len(spelt) else close
            if route_margins is not None:
                route_margins.append(gap)
            allowed = torch.full_like(l, float("-inf"))
            allowed[lo:hi] = l[lo:hi]
            if extra is not None:
                # a word: the mass of every text id (the model may know that a word comes, not which)
                allowed[extra] = torch.logsumexp(l[:U.N_TEXT].float(), 0) if wi < len(spelt) else l[extra]
            if margins is not None:
                margins.append(_margin(allowed))
            if temp > 0:
                t = int(torch.multinomial(torch.softmax(allowed / temp, -1), 1, generator=g))
            else:
                t = int(allowed.argmax())
            if close is not None and t == close:
                break
        if lo <= t < hi:
            codes.append(t - lo)
            if frame is not None and len(codes) % per_frame == 0:
                marked = False            # the next frame opens with its marker
        elif t != frame:
            wp += 1
            if wp == len(spelt[wi]):
                wi, wp = wi + 1, 0
        if block is not None:
            block.append(t)
        Xc = model.dec.token_embd[t][None, None]   # only the new position; the rest is cached
        Xu = Xc if Xu is not None else None
    return np.array(codes, dtype=np.int32)
