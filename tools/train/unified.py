"""loom-tiny, the unified model: the MoE decoder + the vision encoder + the audio encoder,
and the chat sequences of every job (docs/FORMAT.md, "Unified model").

A sample is a list of segments: ("text", str) tokenized without special parsing,
("ctl", name) a control token, ("codes", base, array) media codes as token ids,
("image", pixels [64,64,3]), ("audio", log-mel [80,T] [, its transcript for the CTC loss]),
("video", frames [F,64,64,3]).
`loss_from` marks where the answer starts: the loss covers every later token.
"""
import math
import os
import sys
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.loompy import audio as audio_enc  # noqa: E402
from tools.data import scenes  # noqa: E402
from tools.loompy import bpe, decoder, gguf, vision  # noqa: E402

N_TEXT, N_CTL = 1629, 1642
IMAGE_START, IMAGE_COUNT = 1642, 1024
AUDIO_START, AUDIO_COUNT = 2666, 1024
N_VOCAB = AUDIO_START + AUDIO_COUNT
GRID = 16
VIDEO_FRAMES, TEMPORAL_MERGE, GEN_FRAMES = 8, 2, 4
# what the training-only attribute head names in each of a scene's 3x3 grid slots ("empty" last)
SCENE_SLOTS = 9
SCENE_ATTRS = (("shape", scenes.SHAPES), ("colour", list(scenes.COLOURS)), ("size", list(scenes.SIZES)))

PROMPTS = {"caption": "Describe the image.", "transcribe": "Transcribe the audio.",
           "video": "Describe the video.", "t2i": "Draw: ", "tts": "Say: ", "t2v": "Animate: ",
           "draw_tell": " Then tell me what you drew.", "say_write": " Then write it down.",
           "scan": "List every cell of the grid."}


# captions by region (train.py's `cell` task, exported as loom.caption.*): tools/data/scenes.py
CAPTION_REGIONS, REGION_QUESTION, REGION_EMPTY = scenes.CAPTION_REGIONS, scenes.REGION_QUESTION, scenes.REGION_EMPTY
REGION_MIRROR = scenes.REGION_MIRROR


def mirror_token_pairs(tok):
    """scenes.MIRROR_WORDS as token ids [a0, b0, a1, b1, …] (loom.mirror.token_pairs); each
    word must be one token."""
    out = []
    for pair in scenes.MIRROR_WORDS:
        for w in pair:
            ids = tok.text(w)
            assert len(ids) == 1, f"mirror word {w!r} is {len(ids)} tokens"
            out += ids
    return out


def mirror_map(tok):
    """[N_VOCAB] each token's mirror (identity but for mirror_token_pairs): what
    loom_model_mirror_tokens returns."""
    m = torch.arange(N_VOCAB)
    p = mirror_token_pairs(tok)
    for a, b in zip(p[::2], p[1::2]):
        m[a], m[b] = b, a
    return m


@dataclass
class Config:
    dec: decoder.DecoderConfig = field(default_factory=lambda: decoder.DecoderConfig(n_vocab=N_VOCAB))
    vis: vision.VisionConfig = field(default_factory=lambda: vision.VisionConfig(
        image_size=64, patch_size=8, n_embd=128, n_ff=512, n_layer=4, n_head=4, merge=2,
        n_mm_hidden=256, n_embd_out=256, eps=1e-6))
    aud: dict = field(default_factory=lambda: dict(n_mel=80, d=128, n_head=4, n_ff=384, n_layer=3,
                                                   n_pos=500, stack=4, d_proj=256, eps=1e-5))
    speech_words: bool = False   # speech blocks spell each word before its codes (speech_body; loom.audio.words)
    caption_regions: bool = False  # trained on the `cell` task: captions read cell by cell (loom.caption.*)


class Unified(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.dec = decoder.Decoder(c.dec)
        self.vis = vision.VisionEncoder(c.vis)
        self.aud = audio_enc.AudioEncoder(**c.aud)
        # training only (never exported): each image row reconstructs its 16x16-pixel region
        # at 4x4 resolution, so the rows cannot collapse into a constant the decoder ignores
        side = c.vis.image_size // (c.vis.patch_size * c.vis.merge)
        self.aux_px = (c.vis.image_size // side) // 4
        self.aux = nn.Linear(c.vis.n_embd_out, 16 * 3)
        self.aux_rows = []
        # the same for audio: each row predicts the mean log-mel of the frames it covers
        self.aux_a = nn.Linear(c.aud["d_proj"], c.aud["n_mel"])
        self.aux_audio = []
        # and a CTC head over the text tokens (blank = N_TEXT): each transcript's tokens must be
        # readable from its rows in order, which gives the encoder alignment directly
        self.aux_ctc = nn.Linear(c.aud["d_proj"], N_TEXT + 1)
        self.aux_ctc_items = []
        # and an attribute head: the shape, colour and size in each grid slot of a scene, read
        # off all of its image rows at once (train.py --attr, train.py vision)
        self.aux_attr = nn.Linear(c.vis.n_embd_out * (c.vis.side // c.vis.merge) ** 2,
                                  SCENE_SLOTS * sum(len(v) + 1 for _, v in SCENE_ATTRS))
        with torch.no_grad():
            self.aux_attr.weight.zero_()        # no gradient into the rows until it has learnt
            self.aux_attr.bias.zero_()      # small init for the encoders too
            for m in (self.vis, self.aud):
                for n, p in m.named_parameters():
                    if p.dim() >= 2:
                        nn.init.normal_(p, 0.0, 0.02 if "pos" not in n else 0.02)
                    elif "ln" in n and n.endswith("weight"):
                        p.fill_(1.0)
                    else:
                        p.zero_()

    @property
    def device(self):
        return self.dec.token_embd.device

    # media → decoder embedding rows
    def image_rows(self, imgs):                 # uint8 [N,64,64,3] → [N,16,E]
        x = torch.from_numpy(np.ascontiguousarray(imgs)).to(self.device).float().permute(0, 3, 1, 2) / 255.0
        rows = self.vis((x - 0.5) / 0.5)
        if self.training:
            self.aux_rows.append((rows, x))
        return rows

    def ctc_loss(self):
        """CTC loss of the transcripts' audio rows seen since the last call (0 if none)."""
        items, self.aux_ctc_items = self.aux_ctc_items, []
        if not items:
            return torch.zeros((), device=self.device)
        T = max(r.shape[0] for r, _ in items)
        lp = torch.stack([F.pad(self.aux_ctc(r.float()), (0, 0, 0, T - r.shape[0])) for r, _ in items], 1)
        lp = lp.log_softmax(-1)                                              # [T, N, N_TEXT+1]
        tgt = torch.tensor([t for _, ids in items for t in ids], dtype=torch.long, device=lp.device)
        return F.ctc_loss(lp, tgt, torch.tensor([r.shape[0] for r, _ in items]),
                          torch.tensor([len(ids) for _, ids in items]), blank=N_TEXT, zero_infinity=True)

    def aux_loss(self):
        """Reconstruction loss of the images seen since the last call (0 if none)."""
        if not self.aux_rows and not self.aux_audio:
            return torch.zeros((), device=self.device)
        loss = 0.0
        for rows, x in self.aux_rows:
            N, R = rows.shape[:2]
            side = int(round(R ** 0.5))
            t = F.avg_pool2d(x, x.shape[-1] // (side * 4))                  # [N,3,side*4,side*4]
            t = t.view(N, 3, side, 4, side, 4).permute(0, 2, 4, 3, 5, 1).reshape(N, R, 48)
            loss = loss + F.mse_loss(self.aux(rows.float()), t * 2 - 1)
        self.aux_rows = []
        for rows, m in self.aux_audio:
            k = 2 * self.c.aud["stack"]                                      # mel frames per row
            n = rows.shape[0]
            mp = F.pad(m, (0, n * k - m.shape[1]), value=float(m.min())) if n * k > m.shape[1] else m[:, :n * k]
            t = mp.view(m.shape[0], n, k).mean(-1).t()                       # [n, n_mel]
            loss = loss + F.mse_loss(self.aux_a(rows.float()), t) / max(1, len(self.aux_audio))
        self.aux_audio = []
        return loss

    def attr_logits(self, rows):                 # [N,16,E] → per attribute [N, 9, its count + 1]
        out = self.aux_attr(rows.flatten(1).float()).view(rows.shape[0], SCENE_SLOTS, -1)
        return list(out.split([len(v) + 1 for _, v in SCENE_ATTRS], -1))

    def attr_loss(self, rows, targets):         # targets: int64 [N, 9, 3] (scene_targets)
        return sum(F.cross_entropy(o.reshape(-1, o.shape[-1]), targets[:, :, k].reshape(-1))
                   for k, o in enumerate(self.attr_logits(rows)))

    def video_rows(self, vids):                 # uint8 [N,F,64,64,3] → [N, F/m·(1+16) rows]
        N, Fr = vids.shape[:2]
        r = self.image_rows(vids.reshape(N * Fr, *vids.shape[2:]))
        r = r.view(N, Fr // TEMPORAL_MERGE, TEMPORAL_MERGE, r.shape[1], r.shape[2]).mean(2)
        return r                                # [N, groups, 16, E]

    def audio_rows(self, mel, text_ids=None):   # [80,T] → [ceil(T2/stack), E]
        m = torch.from_numpy(np.asarray(mel, np.float32)).to(self.device)
        rows = self.aud(m)
        if self.training:
            self.aux_audio.append((rows, m))
            if text_ids is not None:             # a transcript: its CTC target
                self.aux_ctc_items.append((rows, text_ids))
        return rows


class Tok:
    """The vocabulary (models/loom-tiny-vocab.gguf) + control ids, with a cache."""

    def __init__(self, path):
        self.v = bpe.Vocab.from_gguf(path)
        self.ctl = {t: i for i, t in enumerate(self.v.tokens) if i >= N_TEXT}
        self.cache = {}

    def text(self, s):
        ids = self.cache.get(s)
        if ids is None:
            ids = self.v.encode(s.encode("utf-8"))
            if len(self.cache) < 200000:
                self.cache[s] = ids
        return ids

    def decode(self, ids):
        return self.v.decode([i for i in ids if i < N_TEXT]).decode("utf-8", "replace")


def text_question(caption, question):
    """The plain-text task's user message: a scene told in words, then a question about it."""
    return f"Picture this: {caption}. {question}"


def turn(user, answer):
    """Segments of one chat turn; returns (segments, index of the first answer segment)."""
    segs = [("ctl", "<|bos|>"), ("ctl", "<|user|>")] + user + [("ctl", "<|end|>"), ("ctl", "<|assistant|>")]
    return segs + answer + [("ctl", "<|end|>")], len(segs)


def build(model, tok, samples, swap=None):
    """Batch of samples [(segments, answer_from)] → input rows [B,T,E], labels [B,T] (−100 = no loss).
    Token rows come from one embedding lookup; media rows are written over their slots.
    swap = [(ids [K], p), …]: in the answers, each input token that is one of a group's ids is
    replaced by a random one of them with probability p (its label stays), so what follows a
    word (a shape after a colour, the next object after a position) cannot be predicted from
    that word alone."""
    imgs = [s[1] for segs, _ in samples for s in segs if s[0] == "image"]
    vids = [s[1] for segs, _ in samples for s in segs if s[0] == "video"]
    img_rows = model.image_rows(np.stack(imgs)) if imgs else None
    vid_rows = model.video_rows(np.stack(vids)) if vids else None
    frame = tok.ctl["<|frame|>"]
    ii = vi = 0
    seqs, labels, media, where = [], [], [], []      # media rows and their (b, t) slots
    for b, (segs, a0) in enumerate(samples):
        ids, lab = [], []
        for k, s in enumerate(segs):
            if s[0] in ("text", "ctl", "codes"):
                new = (tok.text(s[1]) if s[0] == "text" else [tok.ctl[s[1]]] if s[0] == "ctl"
                       else [s[1] + int(c) for c in s[2]])
                ids += new
                lab += new if k >= a0 else [-100] * len(new)
                continue
            if s[0] == "image":
                rows = [img_rows[ii]]; ii += 1
            elif s[0] == "audio":
                rows = [model.audio_rows(s[1], tok.text(s[2]) if len(s) > 2 else None)]
            else:                                   # video: <|frame|> before each group
                g = vid_rows[vi]; vi += 1
                rows = []
                for j in range(g.shape[0]):
                    ids.append(frame)
                    lab.append(-100)
                    rows.append(g[j])
                    where += [(b, len(ids) + t) for t in range(g.shape[1])]
                    ids += [0] * g.shape[1]
                    lab += [-100] * g.shape[1]
                media += rows
                continue
            where += [(b, len(ids) + t) for t in range(rows[0].shape[0])]
            ids += [0] * rows[0].shape[0]
            lab += [-100] * rows[0].shape[0]
            media += rows
        seqs.append(ids)
        labels.append(lab[1:] + [-100])             # position t predicts token t+1
    T = max(len(q) for q in seqs)
    I = torch.zeros(len(seqs), T, dtype=torch.long)
    Y = torch.full((len(seqs), T), -100, dtype=torch.long)
    for b, (q, l) in enumerate(zip(seqs, labels)):
        I[b, :len(q)] = torch.tensor(q)
        Y[b, :len(l)] = torch.tensor(l)
    if swap:
        answer = torch.zeros_like(Y, dtype=torch.bool)
        answer[:, 1:] = Y[:, :-1] != -100           # token t is an answer token when t−1 predicts it
        I0 = I
        for ids, p in swap:
            hit = answer & torch.isin(I0, ids) & (torch.rand(I.shape) < p)
            I = torch.where(hit, ids[torch.randint(len(ids), I.shape)], I)
    I, Y = I.to(model.device), Y.to(model.device)
    X = F.embedding(I, model.dec.token_embd)
    if media:
        bi = torch.tensor([w[0] for w in where])
        ti = torch.tensor([w[1] for w in where])
        X = X.index_put((bi.to(X.device), ti.to(X.device)), torch.cat(media).to(X.dtype))
    return X, Y


def scene_targets(meta):
    """Per grid slot: the index of its object's shape, colour and size, or each list's length
    for an empty slot → int64 [9, 3]."""
    t = torch.tensor([len(v) for _, v in SCENE_ATTRS]).repeat(SCENE_SLOTS, 1)
    for o in meta["objects"]:
        t[o["row"] * 3 + o["col"]] = torch.tensor([v.index(o[k]) for k, v in SCENE_ATTRS])
    return t


def config_dict(c: Config):
    return {"dec": asdict(c.dec), "vis": asdict(c.vis), "aud": dict(c.aud), "speech_words": c.speech_words,
            "caption_regions": c.caption_regions}


def config_from(d):
    return Config(dec=decoder.DecoderConfig(**d["dec"]), vis=vision.VisionConfig(**d["vis"]), aud=dict(d["aud"]),
                  speech_words=bool(d.get("speech_words", False)),
                  caption_regions=bool(d.get("caption_regions", False)))


def speech_body(text, codes, units=None):
    """The segments of a speech block between <|audio|> and <|/audio|>: its codes, or with word
    units [(first word, first code), …] each unit's words (" word …", the tokens the prompt
    spells them with) before the unit's codes. espeak-ng speaks some short words with the next
    ("on the"), so a unit may hold several words and a word may have no codes of its own."""
    if not units:
        return [("codes", AUDIO_START, codes)]
    words, out = text.split(), []
    ends = units[1:] + [(len(words), len(codes))]
    for (w0, c0), (w1, c1) in zip(units, ends):
        out.append(("text", " " + " ".join(words[w0:w1])))
        if c1 > c0:
            out.append(("codes", AUDIO_START, codes[c0:c1]))
    return out


def load_gguf(stem):
    """The inverse of export(): a Unified model from <stem>.gguf and <stem>-mmproj.gguf, so
    training can go on from a bundled model. The training-only heads (aux*) start at zero:
    they pass no gradient to the encoders until they have learnt something; the CTC head is
    read back when the file has it."""
    kv, tensors = gguf.read(stem + ".gguf")
    dec = decoder.load_gguf(kv, tensors)
    vis = vision.load_gguf(stem + "-mmproj.gguf")
    aud = audio_enc.load_gguf(stem + "-mmproj.gguf")
    model = Unified(Config(dec=dec.c, vis=vis.c, aud=dict(aud.hp), speech_words=bool(kv.get("loom.audio.words", False)),
                           caption_regions="loom.caption.regions" in kv))
    model.dec, model.vis, model.aud = dec, vis, aud
    with torch.no_grad():
        for m in (model.aux, model.aux_a, model.aux_ctc, model.aux_attr):
            m.weight.zero_()
            m.bias.zero_()
        _, mt = gguf.read(stem + "-mmproj.gguf")
        if "mm.a.ctc.weight" in mt:   # the CTC head is in the file (loom's transcripts read it)
            model.aux_ctc.weight.copy_(torch.from_numpy(gguf.to_array(*mt["mm.a.ctc.weight"]).astype(np.float32)))
            model.aux_ctc.bias.copy_(torch.from_numpy(gguf.to_array(*mt["mm.a.ctc.bias"]).astype(np.float32)))
    return model


def export(model, tok_path, stem, ttype=gguf.T_F16):
    """Write <stem>.gguf (decoder + tokenizer + loom keys) and <stem>-mmproj.gguf (vision +
    audio encoders). Weights in `model` are rounded to what the files hold."""
    kv = gguf.read(tok_path)[0]
    toks = list(kv["tokenizer.ggml.tokens"]) + [f"<|img_{i}|>" for i in range(IMAGE_COUNT)] + \
        [f"<|aud_{i}|>" for i in range(AUDIO_COUNT)]
    types = list(kv["tokenizer.ggml.token_type"]) + [bpe.CONTROL] * (IMAGE_COUNT + AUDIO_COUNT)
    w = gguf.Writer()
    w.add_str("general.name", os.path.basename(stem))
    decoder.export_gguf(model.dec, w, ttype)
    w.add_str("tokenizer.ggml.model", "gpt2")
    w.add_str("tokenizer.ggml.pre", kv["tokenizer.ggml.pre"])
    w.add_arr("tokenizer.ggml.tokens", gguf.STRING, toks)
    w.add_arr("tokenizer.ggml.token_type", gguf.I32, types)
    w.add_arr("tokenizer.ggml.merges", gguf.STRING, list(kv["tokenizer.ggml.merges"]))
    for k in ("bos_token_id", "eos_token_id", "padding_token_id"):
        w.add_u32("tokenizer.ggml." + k, kv["tokenizer.ggml." + k])
    w.add_u32("tokenizer.ggml.eot_token_id", toks.index("<|end|>"))
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_bool("tokenizer.ggml.add_eos_token", False)
    for k, v in (("vocab.text_end", N_TEXT), ("vocab.control_end", N_CTL), ("vocab.image_start", IMAGE_START),
                 ("vocab.image_count", IMAGE_COUNT), ("vocab.audio_start", AUDIO_START),
                 ("vocab.audio_count", AUDIO_COUNT), ("image.grid", GRID), ("video.n_frames", VIDEO_FRAMES),
                 ("video.temporal_merge", TEMPORAL_MERGE), ("video.gen_frames", GEN_FRAMES)):
        w.add_u32("loom." + k, v)
    if model.c.speech_words:
        w.add_bool("loom.audio.words", True)
    if model.c.caption_regions:   # loom caption asks each grid cell alone (docs/FORMAT.md "Captions by region")
        w.add_arr("loom.caption.regions", gguf.STRING, CAPTION_REGIONS)
        w.add_str("loom.caption.region_question", REGION_QUESTION)
        w.add_str("loom.caption.region_empty", REGION_EMPTY)
        w.add_arr("loom.caption.region_mirror", gguf.I32, REGION_MIRROR)   # read in two views
        w.add_arr("loom.mirror.token_pairs", gguf.I32, mirror_token_pairs(Tok(tok_path)))   # loom describe: two views
        w.add_bool("loom.describe.mover", True)   # descriptions open with the object that changes (region words)
    w.write(stem + ".gguf")

    # mmproj: the vision writer's file plus the audio tensors and keys
    vision.export_gguf(model.vis, stem + "-mmproj.vis.tmp", ttype)
    model.aud.export_gguf(stem + "-mmproj.aud.tmp", ttype)
    merged = gguf.Writer()
    for part in (stem + "-mmproj.vis.tmp", stem + "-mmproj.aud.tmp"):
        pkv, tensors = gguf.read(part)
        for k, v in pkv.items():
            if k == "general.alignment":
                continue
            t, e = gguf.value_type(v)
            merged.add(k, t, v, e)
        for name, (shape, tt, raw) in tensors.items():
            merged.tensors.append((name, tuple(shape), tt, raw))
        os.remove(part)
    if model.aux_ctc.weight.detach().abs().max() > 0:   # the CTC head, once trained: loom's transcripts use it
        merged.add_tensor("mm.a.ctc.weight", model.aux_ctc.weight.detach().numpy().astype(np.float32), ttype)
        merged.add_tensor("mm.a.ctc.bias", model.aux_ctc.bias.detach().numpy().astype(np.float32))
    merged.add_bool("clip.has_vision_encoder", True)
    merged.add_bool("clip.has_audio_encoder", True)
    merged.add_str("general.name", os.path.basename(stem) + " media encoders")
    merged.write(stem + "-mmproj.gguf")
    if ttype == gguf.T_F16:    # the audio writer does not round in place; do it here
        with torch.no_grad():
            for n, p in model.aud.named_parameters():
                if p.dim() == 2 and not n.startswith("pos"):
                    p.copy_(p.half().float())
            model.aux_ctc.weight.copy_(model.aux_ctc.weight.half().float())
