"""PyTorch reference of loom's vision path: preprocessing, ViT encoder, MLP projector
(optionally after a 2x2 patch merge), and the GGUF exporter/loader for it.

It is the spec that vision/{preprocess,vit}.c must reproduce (tests/test_vit_parity.c).
Names follow llama.cpp's mmproj conventions (clip.vision.*, v.*, mm.0 / mm.2); see
docs/FORMAT.md "Vision encoder".

    python3 -m tools.loompy.vision random  --out m.gguf [--size 224 --patch 16 --width 384 ...]
    python3 -m tools.loompy.vision bench   --gguf m.gguf --threads 2 --batch 1 --iters 10
"""
import argparse
import dataclasses
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tools.loompy import gguf

FITS = ("pad", "crop", "stretch")
FILTERS = ("bilinear", "bicubic")


# --- preprocessing ------------------------------------------------------------------------
def preprocess(rgb, size, filter="bicubic", fit="pad", pad_rgb=(127, 127, 127),
               mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), normalize=True):
    """rgb: uint8 [H][W][3] → float32 [3][size][size] (CHW).

    pad:     centre the image on a square of the long side filled with pad_rgb
             (PIL expand2square placement: offset (long - short) // 2), then resize.
    crop:    resize the short side to `size` (long side int(size*long/short)), then take the
             centre size×size window at offset round((long' - size) / 2).
    stretch: resize straight to size×size.
    Resizing is F.interpolate(..., antialias=True, align_corners=False) on float values in
    0..255, not clamped. normalize=False returns the resized 0..255 values."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()[None]
    _, _, h, w = x.shape
    if fit == "pad":
        side = max(h, w)
        canvas = torch.tensor(pad_rgb, dtype=torch.float32).view(1, 3, 1, 1).repeat(1, 1, side, side)
        oy, ox = (side - h) // 2, (side - w) // 2
        canvas[:, :, oy:oy + h, ox:ox + w] = x
        y = F.interpolate(canvas, size=(size, size), mode=filter, antialias=True, align_corners=False)
    elif fit == "crop":
        if w <= h:
            nw, nh = size, int(size * h / w)
        else:
            nw, nh = int(size * w / h), size
        y = F.interpolate(x, size=(nh, nw), mode=filter, antialias=True, align_corners=False)
        top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
        y = y[:, :, top:top + size, left:left + size]
    elif fit == "stretch":
        y = F.interpolate(x, size=(size, size), mode=filter, antialias=True, align_corners=False)
    else:
        raise ValueError(fit)
    y = y[0]
    if normalize:
        m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        y = (y / 255.0 - m) / s
    return y.contiguous()


def resize(rgb, out_h, out_w, filter):
    """Plain resize of uint8 [H][W][3] to float [3][out_h][out_w] on the 0..255 scale."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()[None]
    return F.interpolate(x, size=(out_h, out_w), mode=filter, antialias=True, align_corners=False)[0]


# --- the model ----------------------------------------------------------------------------
@dataclasses.dataclass
class VisionConfig:
    image_size: int = 224
    patch_size: int = 16
    n_embd: int = 384
    n_ff: int = 1536
    n_layer: int = 6
    n_head: int = 6
    eps: float = 1e-6
    merge: int = 1            # spatial_merge_size: 1 or 2
    n_mm_hidden: int = 512
    n_embd_out: int = 512     # projection_dim (the decoder's d_model)
    pre_ln: bool = True
    post_ln: bool = True
    bias: bool = True         # biases on patch embedding, q/k/v/o, MLP, projector
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.5, 0.5, 0.5)
    fit: str = "pad"
    filter: str = "bicubic"

    @property
    def side(self):
        return self.image_size // self.patch_size

    @property
    def n_patches(self):
        return self.side ** 2


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, b = c.n_embd, c.bias
        self.n_head = c.n_head
        self.ln1 = nn.LayerNorm(d, eps=c.eps)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=b) for _ in range(4))
        self.ln2 = nn.LayerNorm(d, eps=c.eps)
        self.up = nn.Linear(d, c.n_ff, bias=b)
        self.down = nn.Linear(c.n_ff, d, bias=b)

    def forward(self, x):                       # x: [B, T, d]
        B, T, d = x.shape
        dh = d // self.n_head
        h = self.ln1(x)
        q, k, v = (m(h).view(B, T, self.n_head, dh).transpose(1, 2) for m in (self.q, self.k, self.v))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh), dim=-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, d))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class VisionEncoder(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.c = c
        d = c.n_embd
        self.patch = nn.Conv2d(3, d, c.patch_size, c.patch_size, bias=c.bias)
        self.pos = nn.Parameter(torch.zeros(c.n_patches, d))
        self.pre_ln = nn.LayerNorm(d, eps=c.eps) if c.pre_ln else None
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.post_ln = nn.LayerNorm(d, eps=c.eps) if c.post_ln else None
        self.mm0 = nn.Linear(d * c.merge ** 2, c.n_mm_hidden, bias=c.bias)
        self.mm2 = nn.Linear(c.n_mm_hidden, c.n_embd_out, bias=c.bias)

    def forward(self, chw):                     # [B, 3, S, S] → [B, n_tok, n_embd_out]
        c = self.c
        x = self.patch(chw).flatten(2).transpose(1, 2) + self.pos     # row-major patches
        if self.pre_ln is not None:
            x = self.pre_ln(x)
        for blk in self.blocks:
            x = blk(x)
        if self.post_ln is not None:
            x = self.post_ln(x)
        if c.merge > 1:                          # 2x2 groups: (y,x) (y,x+1) (y+1,x) (y+1,x+1)
            B, m, s, d = x.shape[0], c.merge, c.side, x.shape[-1]
            x = x.view(B, s // m, m, s // m, m, d).permute(0, 1, 3, 2, 4, 5).reshape(B, -1, m * m * d)
        return self.mm2(F.gelu(self.mm0(x)))


def randomize(model, seed=0):
    """Random weights that keep activations O(1): W ~ N(0, 1/n_in), LN weights near 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "pos":
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            elif p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            elif "ln" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model


# --- GGUF ---------------------------------------------------------------------------------
def tensor_names(c, qkv_adjacent=True):
    """(gguf name, parameter path) pairs, in file order."""
    out = [("v.patch_embd.weight", "patch.weight"), ("v.position_embd.weight", "pos")]
    if c.bias:
        out.append(("v.patch_embd.bias", "patch.bias"))
    if c.pre_ln:
        out += [("v.pre_ln.weight", "pre_ln.weight"), ("v.pre_ln.bias", "pre_ln.bias")]
    for i in range(c.n_layer):
        for g, p in (("ln1", "ln1"), ("ln2", "ln2")):
            out += [(f"v.blk.{i}.{g}.weight", f"blocks.{i}.{p}.weight"), (f"v.blk.{i}.{g}.bias", f"blocks.{i}.{p}.bias")]
        mats = (("attn_q", "q"), ("attn_k", "k"), ("attn_v", "v"), ("attn_out", "o"), ("ffn_up", "up"),
                ("ffn_down", "down"))
        if qkv_adjacent:   # q, k, v weights back to back: loom runs them as one GEMM
            out += [(f"v.blk.{i}.{g}.weight", f"blocks.{i}.{p}.weight") for g, p in mats[:3]]
        else:              # q, k, v apart (as a converter may write them): three GEMMs
            mats = (mats[3], mats[0], mats[4], mats[1], mats[5], mats[2])
        for g, p in mats:
            if not (qkv_adjacent and g in ("attn_q", "attn_k", "attn_v")):
                out.append((f"v.blk.{i}.{g}.weight", f"blocks.{i}.{p}.weight"))
            if c.bias:
                out.append((f"v.blk.{i}.{g}.bias", f"blocks.{i}.{p}.bias"))
    if c.post_ln:
        out += [("v.post_ln.weight", "post_ln.weight"), ("v.post_ln.bias", "post_ln.bias")]
    out.append(("mm.0.weight", "mm0.weight"))
    if c.bias:
        out.append(("mm.0.bias", "mm0.bias"))
    out.append(("mm.2.weight", "mm2.weight"))
    if c.bias:
        out.append(("mm.2.bias", "mm2.bias"))
    return out


def export_gguf(model, path, ttype=gguf.T_F32, qkv_adjacent=True):
    """Write the encoder as GGUF. Matrices (2-D+) use `ttype`; vectors stay F32 (as llama.cpp's
    converters do). Returns the model with its weights rounded to what the file holds, so a
    reference run on it sees exactly what loom loads."""
    c = model.c
    w = gguf.Writer()
    w.add_str("general.architecture", "clip")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_str("clip.projector_type", "mlp")
    w.add_bool("clip.use_gelu", True)
    p = "clip.vision."
    w.add_u32(p + "image_size", c.image_size)
    w.add_u32(p + "patch_size", c.patch_size)
    w.add_u32(p + "embedding_length", c.n_embd)
    w.add_u32(p + "feed_forward_length", c.n_ff)
    w.add_u32(p + "block_count", c.n_layer)
    w.add_u32(p + "attention.head_count", c.n_head)
    w.add_f32(p + "attention.layer_norm_epsilon", c.eps)
    w.add_u32(p + "projection_dim", c.n_embd_out)
    if c.merge != 1:
        w.add_u32(p + "spatial_merge_size", c.merge)
    w.add_arr(p + "image_mean", gguf.F32, c.mean)
    w.add_arr(p + "image_std", gguf.F32, c.std)
    w.add_str("loom.vision.fit", c.fit)
    w.add_str("loom.vision.resize", c.filter)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, pname in tensor_names(c, qkv_adjacent):
            t = params[pname]
            arr = t.detach().numpy().astype(np.float32)
            tt = ttype if arr.ndim >= 2 else gguf.T_F32
            w.add_tensor(name, arr, tt)
            if tt == gguf.T_F16:
                t.copy_(torch.from_numpy(arr.astype(np.float16).astype(np.float32)))
            elif tt == gguf.T_BF16:
                bits = gguf.f32_to_bf16(arr).astype(np.uint32) << 16
                t.copy_(torch.from_numpy(bits.view(np.float32).reshape(arr.shape)))
            elif tt != gguf.T_F32:
                raise ValueError("export: F32, F16 or BF16 only")
    w.write(path)
    return model


def load_gguf(path):
    """Build a VisionEncoder from a GGUF written by export_gguf."""
    kv, tensors = gguf.read(path)
    p = "clip.vision."
    c = VisionConfig(image_size=kv[p + "image_size"], patch_size=kv[p + "patch_size"],
                     n_embd=kv[p + "embedding_length"], n_ff=kv[p + "feed_forward_length"],
                     n_layer=kv[p + "block_count"], n_head=kv[p + "attention.head_count"],
                     eps=kv[p + "attention.layer_norm_epsilon"], merge=kv.get(p + "spatial_merge_size", 1),
                     n_embd_out=kv[p + "projection_dim"], n_mm_hidden=tensors["mm.0.weight"][0][0],
                     pre_ln="v.pre_ln.weight" in tensors, post_ln="v.post_ln.weight" in tensors,
                     bias="mm.0.bias" in tensors, mean=tuple(kv.get(p + "image_mean", (0.5,) * 3)),
                     std=tuple(kv.get(p + "image_std", (0.5,) * 3)), fit=kv.get("loom.vision.fit", "pad"),
                     filter=kv.get("loom.vision.resize", "bicubic"))
    model = VisionEncoder(c)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, pname in tensor_names(c):
            params[pname].copy_(torch.from_numpy(gguf.to_array(*tensors[name]).copy()))
    return model.eval()


# --- command line -------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("random", help="write a random-weight encoder GGUF")
    r.add_argument("--out", required=True)
    for k, v in (("size", 224), ("patch", 16), ("width", 384), ("ff", 1536), ("layers", 6), ("heads", 6),
                 ("merge", 1), ("hidden", 512), ("proj", 512), ("seed", 0)):
        r.add_argument("--" + k, type=int, default=v)
    b = sub.add_parser("bench", help="time the PyTorch encoder on a GGUF")
    b.add_argument("--gguf", required=True)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--batch", type=int, default=1)
    b.add_argument("--iters", type=int, default=10)
    a = ap.parse_args(argv)
    if a.cmd == "random":
        c = VisionConfig(image_size=a.size, patch_size=a.patch, n_embd=a.width, n_ff=a.ff, n_layer=a.layers,
                         n_head=a.heads, merge=a.merge, n_mm_hidden=a.hidden, n_embd_out=a.proj)
        export_gguf(randomize(VisionEncoder(c), a.seed), a.out)
        return 0
    from tools.loompy.malloc import rerun_peer_with_tcmalloc
    rerun_peer_with_tcmalloc()
    torch.set_num_threads(a.threads)
    model = load_gguf(a.gguf)
    S = model.c.image_size
    x = torch.randn(a.batch, 3, S, S, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        model(x)                                  # warm-up
        best = float("inf")
        for _ in range(a.iters):
            t0 = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - t0)
    print(f"torch_images_per_s {a.batch / best:.4f} threads {torch.get_num_threads()} batch {a.batch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
