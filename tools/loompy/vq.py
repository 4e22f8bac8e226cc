"""VQ image autoencoder in the LlamaGen / Janus style (PyTorch reference for loom's C codec).

Encoder: conv_in 3x3 -> per stage [n_res ResBlocks (+ attention at the lowest resolution
stage), downsample conv 3x3 stride 2 pad 1 except after the last stage] -> mid Res/Attn/Res
-> GroupNorm, swish, conv_out 3x3 -> quant_conv 1x1 -> z [embed_dim, h, w].

Quantizer: z and the codebook are L2-normalised along the embedding axis; the code of a
position is argmax of the cosine (ties -> lowest index); its vector is the normalised codebook
row. Loss = ||sg(z)-e||^2 + beta ||z-sg(e)||^2, straight-through gradient.
Codebook usage: k-means init from encoder outputs, dead-code restart during training.

Decoder (what the C implementation runs): post_quant_conv 1x1 embed_dim -> z_channels,
conv_in 3x3 -> ch*ch_mult[-1], mid Res/Attn/Res, up stages over reversed ch_mult, each with
dec_res ResBlocks (the first up stage — lowest resolution — also an AttnBlock after each
ResBlock), then nearest x2 upsample + conv 3x3 except after the last stage; GroupNorm,
swish, conv_out 3x3 -> 3. Pixel = clip((x + 1) / 2 * 255).

ResBlock = GN, swish, conv3, GN, swish, conv3, + (1x1 nin_shortcut if channels change).
AttnBlock = GN, 1x1 q/k/v, softmax(q^T k / sqrt(C)) over positions, 1x1 proj_out, residual.
GroupNorm uses `norm_groups` groups and eps 1e-6.
"""
from dataclasses import dataclass, asdict, field
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class VQConfig:
    ch: int = 32
    ch_mult: tuple = (1, 1, 2)
    enc_res: int = 1
    dec_res: int = 2
    z_channels: int = 64
    embed_dim: int = 8
    codebook_size: int = 1024
    norm_groups: int = 8
    image_size: int = 64
    beta: float = 0.25

    @property
    def grid(self):
        return self.image_size // 2 ** (len(self.ch_mult) - 1)

    def to_dict(self):
        d = asdict(self)
        d["ch_mult"] = list(self.ch_mult)
        return d

    @staticmethod
    def from_dict(d):
        d = dict(d)
        d["ch_mult"] = tuple(d["ch_mult"])
        return VQConfig(**d)


def swish(x):
    return x * torch.sigmoid(x)


class Norm(nn.GroupNorm):
    """GroupNorm(eps 1e-6) computed in float32 (also under bf16 autocast)."""

    def __init__(self, c, g):
        super().__init__(g, c, eps=1e-6, affine=True)

    def forward(self, x):
        return F.group_norm(x.float(), self.num_groups, self.weight, self.bias, self.eps).to(x.dtype)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, g):
        super().__init__()
        self.norm1 = Norm(cin, g)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2 = Norm(cout, g)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    def __init__(self, c, g):
        super().__init__()
        self.norm = Norm(c, g)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.norm(x)
        q = self.q(y).reshape(b, c, h * w).transpose(1, 2)   # [b, hw, c]
        k = self.k(y).reshape(b, c, h * w)                   # [b, c, hw]
        v = self.v(y).reshape(b, c, h * w)                   # [b, c, hw]
        a = torch.softmax(torch.bmm(q, k) / math.sqrt(c), dim=2)  # [b, hw(query), hw(key)]
        o = torch.bmm(v, a.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.proj_out(o)


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        g = cfg.norm_groups
        self.conv_in = nn.Conv2d(3, cfg.ch, 3, 1, 1)
        self.down = nn.ModuleList()
        cin = cfg.ch
        n = len(cfg.ch_mult)
        for i, m in enumerate(cfg.ch_mult):
            stage = nn.Module()
            stage.res = nn.ModuleList()
            stage.attn = nn.ModuleList()
            cout = cfg.ch * m
            for _ in range(cfg.enc_res):
                stage.res.append(ResBlock(cin, cout, g))
                cin = cout
                if i == n - 1:
                    stage.attn.append(AttnBlock(cin, g))
            stage.downsample = nn.Conv2d(cin, cin, 3, 2, 1) if i < n - 1 else None
            self.down.append(stage)
        self.mid_res1 = ResBlock(cin, cin, g)
        self.mid_attn = AttnBlock(cin, g)
        self.mid_res2 = ResBlock(cin, cin, g)
        self.norm_out = Norm(cin, g)
        self.conv_out = nn.Conv2d(cin, cfg.z_channels, 3, 1, 1)

    def forward(self, x):
        h = self.conv_in(x)
        for stage in self.down:
            for j, r in enumerate(stage.res):
                h = r(h)
                if len(stage.attn):
                    h = stage.attn[j](h)
            if stage.downsample is not None:
                h = stage.downsample(h)
        h = self.mid_res2(self.mid_attn(self.mid_res1(h)))
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        g = cfg.norm_groups
        mults = list(reversed(cfg.ch_mult))
        cin = cfg.ch * mults[0]
        self.conv_in = nn.Conv2d(cfg.z_channels, cin, 3, 1, 1)
        self.mid_res1 = ResBlock(cin, cin, g)
        self.mid_attn = AttnBlock(cin, g)
        self.mid_res2 = ResBlock(cin, cin, g)
        self.up = nn.ModuleList()
        for i, m in enumerate(mults):
            stage = nn.Module()
            stage.res = nn.ModuleList()
            stage.attn = nn.ModuleList()
            cout = cfg.ch * m
            for _ in range(cfg.dec_res):
                stage.res.append(ResBlock(cin, cout, g))
                cin = cout
                if i == 0:
                    stage.attn.append(AttnBlock(cin, g))
            stage.upsample = nn.Conv2d(cin, cin, 3, 1, 1) if i < len(mults) - 1 else None
            self.up.append(stage)
        self.norm_out = Norm(cin, g)
        self.conv_out = nn.Conv2d(cin, 3, 3, 1, 1)

    def forward(self, z):
        h = self.conv_in(z)
        h = self.mid_res2(self.mid_attn(self.mid_res1(h)))
        for stage in self.up:
            for j, r in enumerate(stage.res):
                h = r(h)
                if len(stage.attn):
                    h = stage.attn[j](h)
            if stage.upsample is not None:
                h = stage.upsample(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(swish(self.norm_out(h)))


class Quantizer(nn.Module):
    """L2-normalised codebook, cosine argmax; z is [b,d,...] (images [b,d,h,w], audio [b,d,t])."""

    def __init__(self, n, d, beta):
        super().__init__()
        self.embedding = nn.Embedding(n, d)
        nn.init.normal_(self.embedding.weight)
        self.beta = beta

    def codebook(self):
        return F.normalize(self.embedding.weight, dim=1)

    def codes(self, z):
        """z [b,d,...] -> codes [b,...] (int64)."""
        z = z.float()
        zf = F.normalize(z.movedim(1, -1).reshape(-1, z.shape[1]), dim=1)
        idx = torch.argmax(zf @ self.codebook().t(), dim=1)
        return idx.reshape(z.shape[0], *z.shape[2:])

    def lookup(self, codes):
        """codes [b,...] -> normalised vectors [b,d,...]."""
        return self.codebook()[codes].movedim(-1, 1).contiguous()

    def forward(self, z):
        z = z.float()  # quantize in float32 even under bf16 autocast
        zn = F.normalize(z, dim=1)
        codes = self.codes(z)
        e = self.lookup(codes)
        loss = F.mse_loss(e, zn.detach()) + self.beta * F.mse_loss(zn, e.detach())
        zq = zn + (e - zn).detach()
        return zq, codes, loss


class VQModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.quantize = Quantizer(cfg.codebook_size, cfg.embed_dim, cfg.beta)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)
        self.decoder = Decoder(cfg)

    def encode_z(self, x):
        return self.quant_conv(self.encoder(x))

    def encode(self, x):
        """x [b,3,H,W] in [-1,1] -> codes [b,h,w]."""
        return self.quantize.codes(self.encode_z(x))

    def decode_codes(self, codes):
        return self.decoder(self.post_quant_conv(self.quantize.lookup(codes)))

    def forward(self, x):
        z = self.encode_z(x)
        with torch.autocast("cpu", enabled=False):
            zq, codes, qloss = self.quantize(z)
        return self.decoder(self.post_quant_conv(zq)), codes, qloss


def to_input(imgs_u8):
    """uint8 [b,H,W,3] numpy -> float tensor [b,3,H,W] in [-1,1]."""
    x = torch.from_numpy(np.array(imgs_u8, dtype=np.uint8)).float().permute(0, 3, 1, 2)
    return x / 127.5 - 1.0


def to_pixels(x):
    """decoder output [b,3,H,W] -> uint8 [b,H,W,3], pixel = clip((x+1)/2*255) rounded."""
    y = ((x.detach().float() + 1.0) * 127.5).clamp(0, 255).round()
    return y.permute(0, 2, 3, 1).to(torch.uint8).numpy()


def psnr(a_u8, b_u8):
    """Mean over images of per-image PSNR (dB) between uint8 arrays."""
    a = a_u8.astype(np.float64)
    b = b_u8.astype(np.float64)
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(1)
    return float(np.mean(10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))))


# ---------------------------------------------------------------- GGUF export

def gguf_tensors(model, prefix="vq"):
    """(name, array) pairs in loom's naming: vq.enc.* / vq.dec.* / vq.codebook (the audio codec:
    prefix "ac"). The codebook is exported already L2-normalised (rows of unit length)."""
    return [(gguf_name(k, prefix), model.quantize.codebook().detach().numpy() if k == "quantize.embedding.weight"
             else v.detach().float().numpy()) for k, v in model.state_dict().items()]


def gguf_name(key, prefix):
    """A codec's state-dict key → its GGUF tensor name."""
    if key == "quantize.embedding.weight":
        return prefix + ".codebook"
    return prefix + "." + key.replace("encoder.", "enc.").replace("decoder.", "dec.")


def load_weights(model, tensors, prefix):
    """Fill a codec from the tensors of gguf.read (inverse of gguf_tensors)."""
    from . import gguf
    model.load_state_dict({k: torch.from_numpy(gguf.to_array(*tensors[gguf_name(k, prefix)]).copy())
                           for k in model.state_dict()})
    return model.eval()


def export_gguf(model, path, ttype=None):
    from . import gguf
    cfg = model.cfg
    w = gguf.Writer()
    w.add_str("general.architecture", "loom-vq")
    w.add_str("general.name", "loom-tiny VQ image codec")
    w.add_u32("loom.vq.image_size", cfg.image_size)
    w.add_u32("loom.vq.grid", cfg.grid)
    w.add_u32("loom.vq.codebook_size", cfg.codebook_size)
    w.add_u32("loom.vq.embed_dim", cfg.embed_dim)
    w.add_u32("loom.vq.z_channels", cfg.z_channels)
    w.add_u32("loom.vq.ch", cfg.ch)
    w.add_arr("loom.vq.ch_mult", gguf.U32, list(cfg.ch_mult))
    w.add_u32("loom.vq.enc_res_blocks", cfg.enc_res)
    w.add_u32("loom.vq.dec_res_blocks", cfg.dec_res)
    w.add_u32("loom.vq.norm_groups", cfg.norm_groups)
    w.add_f32("loom.vq.norm_eps", 1e-6)
    for name, arr in gguf_tensors(model):
        t = gguf.T_F32
        if ttype is not None and arr.ndim == 4 and arr.size >= 1024:
            t = ttype
        w.add_tensor(name, arr, t)
    w.write(path)


def load_gguf(path):
    """Rebuild a VQModel from a file written by export_gguf (inverse of gguf_tensors)."""
    from . import gguf
    kv, tensors = gguf.read(path)
    cfg = VQConfig(ch=kv["loom.vq.ch"], ch_mult=tuple(kv["loom.vq.ch_mult"]),
                   enc_res=kv["loom.vq.enc_res_blocks"], dec_res=kv["loom.vq.dec_res_blocks"],
                   z_channels=kv["loom.vq.z_channels"], embed_dim=kv["loom.vq.embed_dim"],
                   codebook_size=kv["loom.vq.codebook_size"], norm_groups=kv["loom.vq.norm_groups"],
                   image_size=kv["loom.vq.image_size"])
    return load_weights(VQModel(cfg), tensors, "vq")
