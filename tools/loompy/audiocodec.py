"""Audio codec: log-mel -> conv encoder -> VQ codes (25 per second) -> conv decoder -> log-mel
-> waveform by NNLS mel inversion + fast Griffin-Lim. PyTorch reference for loom's C decoder.

Features (Whisper's frame definition): 16 kHz mono, STFT n_fft 400 (periodic Hann window),
hop 160, centred with reflect padding of 200 on each side, power |X|^2 over the 201 bins,
80 Slaney mel filters (fmin 0, fmax 8000, Slaney area normalisation, as Whisper / librosa),
L = log10(max(mel, 1e-5)), network input x = (L + 4) / 4  (MEL_FLOOR, MEL_OFFSET, MEL_SCALE).

Encoder (not needed in C for generation): conv_in k3 80->C, ResBlock1d, then `n_down`
times [Conv1d k4 stride 2 pad 1 C->C, ResBlock1d], conv_out k3 C->embed_dim.
Quantizer: as the image VQ — L2-normalised codebook, cosine argmax.
Decoder: conv_in k3 embed_dim->C, ResBlock1d x n_res, then `n_down` times [nearest x2
upsample, conv k3 C->C, ResBlock1d], norm_out GroupNorm, swish, conv_out k3 C->80.
The decoder's output is x (normalised log-mel) at 100 frames/s: 4 mel frames per code.
ResBlock1d(dilation d) = GN, swish, conv k3 dil d pad d, GN, swish, conv k3, residual;
decoder ResBlocks use dilations 1, 3, 9, 1, 3, 9, ... for a wide receptive field.

Vocoder (exact, reimplemented in C): L = 4x - 4; P = 10^L (mel power [80,T]);
linear power S [201,T] by NNLS with `nnls_iters` multiplicative updates
S <- S * (M^T P) / (M^T M S + 1e-10) starting from S = M^T P; magnitude A = sqrt(S);
A is upsampled in time by `gl_upsample` (linear interpolation between frame centres) to hop
160/gl_upsample; fast Griffin-Lim (alpha 0.99, `gl_iters` iterations, initial phase 0)
with the same STFT (n_fft 400, periodic Hann, centred) and a window-sum-normalised
inverse STFT; output trimmed to T*160 samples and peak-normalised to 0.9 if it exceeds it.
"""
from dataclasses import dataclass, asdict
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .vq import Norm, Quantizer, gguf_tensors, load_weights, swish  # the image codec's blocks, quantizer, GGUF naming

SR = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
MEL_FLOOR = 1e-5
MEL_OFFSET = 4.0
MEL_SCALE = 4.0


def hz_to_mel(f):
    """Slaney mel scale (librosa htk=False)."""
    f = np.asarray(f, np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def mel_to_hz(m):
    m = np.asarray(m, np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=8000.0):
    """[n_mels, n_fft//2+1] float32, Slaney-normalised triangles (librosa.filters.mel defaults)."""
    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    w = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return w.astype(np.float32)


_MEL = torch.from_numpy(mel_filters())


def stft(x, hop=HOP):
    """x [..., n] -> complex [..., 201, frames] (centred, reflect pad, periodic Hann)."""
    return torch.stft(x, N_FFT, hop, window=torch.hann_window(N_FFT), center=True,
                      pad_mode="reflect", return_complex=True)


def istft(X, hop=HOP, length=None):
    return torch.istft(X, N_FFT, hop, window=torch.hann_window(N_FFT), center=True, length=length)


def log_mel(wav):
    """wav float32 [n] or [b,n] -> normalised log-mel x [.., 80, frames] (frames = n//160 + 1)."""
    wav = torch.as_tensor(wav, dtype=torch.float32)
    p = stft(wav).abs() ** 2
    mel = _MEL @ p
    return (torch.log10(torch.clamp(mel, min=MEL_FLOOR)) + MEL_OFFSET) / MEL_SCALE


@dataclass
class ACConfig:
    ch: int = 128
    embed_dim: int = 8
    codebook_size: int = 1024
    n_down: int = 2           # 100 Hz / 2^n_down codes per second
    n_res: int = 6            # decoder ResBlocks before upsampling
    norm_groups: int = 8
    beta: float = 0.25
    nnls_iters: int = 20
    gl_iters: int = 32
    gl_upsample: int = 1

    @property
    def codes_per_second(self):
        return SR / HOP / 2 ** self.n_down

    def to_dict(self):
        return asdict(self)

    @staticmethod
    def from_dict(d):
        return ACConfig(**d)


class ResBlock1d(nn.Module):
    def __init__(self, c, g, dil=1):
        super().__init__()
        self.dil = dil
        self.norm1 = Norm(c, g)
        self.conv1 = nn.Conv1d(c, c, 3, 1, dil, dilation=dil)
        self.norm2 = Norm(c, g)
        self.conv2 = nn.Conv1d(c, c, 3, 1, 1)

    def forward(self, x):
        return x + self.conv2(swish(self.norm2(self.conv1(swish(self.norm1(x))))))


DILATIONS = (1, 3, 9)


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, g = cfg.ch, cfg.norm_groups
        self.conv_in = nn.Conv1d(N_MELS, C, 3, 1, 1)
        self.res_in = ResBlock1d(C, g)
        self.down = nn.ModuleList()
        for _ in range(cfg.n_down):
            st = nn.Module()
            st.conv = nn.Conv1d(C, C, 4, 2, 1)
            st.res = ResBlock1d(C, g, 3)
            self.down.append(st)
        self.norm_out = Norm(C, g)
        self.conv_out = nn.Conv1d(C, cfg.embed_dim, 3, 1, 1)

    def forward(self, x):
        h = self.res_in(self.conv_in(x))
        for st in self.down:
            h = st.res(st.conv(h))
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, g = cfg.ch, cfg.norm_groups
        self.conv_in = nn.Conv1d(cfg.embed_dim, C, 3, 1, 1)
        self.res = nn.ModuleList([ResBlock1d(C, g, DILATIONS[i % 3]) for i in range(cfg.n_res)])
        self.up = nn.ModuleList()
        for _ in range(cfg.n_down):
            st = nn.Module()
            st.conv = nn.Conv1d(C, C, 3, 1, 1)
            st.res = ResBlock1d(C, g, 1)
            self.up.append(st)
        self.norm_out = Norm(C, g)
        self.conv_out = nn.Conv1d(C, N_MELS, 3, 1, 1)

    def forward(self, e):
        h = self.conv_in(e)
        for r in self.res:
            h = r(h)
        for st in self.up:
            h = st.res(st.conv(F.interpolate(h, scale_factor=2.0, mode="nearest")))
        return self.conv_out(swish(self.norm_out(h)))


class AudioCodec(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantize = Quantizer(cfg.codebook_size, cfg.embed_dim, cfg.beta)
        self.decoder = Decoder(cfg)

    def encode(self, x):
        """normalised log-mel [b,80,T] (T multiple of 2^n_down) -> codes [b, T/2^n_down]"""
        return self.quantize.codes(self.encoder(x))

    def decode_codes(self, codes):
        return self.decoder(self.quantize.lookup(codes))

    def forward(self, x):
        z = self.encoder(x)
        with torch.autocast("cpu", enabled=False):
            zq, codes, qloss = self.quantize(z)
        return self.decoder(zq), codes, qloss


def pad_frames(x, mult):
    """Pad [b,80,T] on the right (with the floor value) to a multiple of mult frames."""
    t = x.shape[-1]
    n = (-t) % mult
    floor = (math.log10(MEL_FLOOR) + MEL_OFFSET) / MEL_SCALE
    return F.pad(x, (0, n), value=floor) if n else x


# ---------------------------------------------------------------- vocoder

def mel_to_linear_power(P, iters):
    """P [80,T] mel power -> [201,T] non-negative linear power (multiplicative NNLS)."""
    M = _MEL.double()
    P = P.double()
    MtP = M.t() @ P
    MtM = M.t() @ M
    S = MtP.clone()
    for _ in range(iters):
        S = S * MtP / (MtM @ S + 1e-10)
    return S.float()


def upsample_frames(A, k):
    """[F,T] -> [F,(T-1)*k+1] by linear interpolation between frame centres."""
    if k == 1:
        return A
    T = A.shape[1]
    pos = torch.arange((T - 1) * k + 1, dtype=torch.float32) / k
    i0 = pos.floor().long().clamp(max=T - 1)
    i1 = (i0 + 1).clamp(max=T - 1)
    w = (pos - i0.float())
    return A[:, i0] * (1 - w) + A[:, i1] * w


def griffin_lim(A, hop, iters, alpha=0.99, length=None):
    """Fast Griffin-Lim (Perraudin et al.) from magnitude A [201,T], initial phase 0."""
    X = A.to(torch.complex64)
    prev = torch.zeros_like(X)
    for _ in range(iters):
        x = istft(X, hop, length)
        C = stft(x, hop)[:, :A.shape[1]]
        T_ = C + alpha * (C - prev) if alpha else C
        prev = C
        X = A * torch.exp(1j * torch.angle(T_))
    return istft(X, hop, length)


def vocode(x, cfg):
    """normalised log-mel x [80,T] -> waveform float32 [T*160]."""
    x = torch.as_tensor(x, dtype=torch.float32)
    P = 10.0 ** (x * MEL_SCALE - MEL_OFFSET)
    A = torch.sqrt(mel_to_linear_power(P, cfg.nnls_iters))
    k = cfg.gl_upsample
    A = upsample_frames(A, k)
    n = x.shape[1] * HOP
    y = griffin_lim(A, HOP // k, cfg.gl_iters, length=(A.shape[1] - 1) * (HOP // k))
    y = F.pad(y, (0, max(0, n - len(y))))[:n]
    peak = float(y.abs().max())
    if peak > 0.9:
        y = y * (0.9 / peak)
    return y


# ---------------------------------------------------------------- GGUF export

def export_gguf(model, path):
    from . import gguf
    cfg = model.cfg
    w = gguf.Writer()
    w.add_str("general.architecture", "loom-audiocodec")
    w.add_str("general.name", "loom-tiny audio codec")
    w.add_u32("loom.ac.sample_rate", SR)
    w.add_u32("loom.ac.n_fft", N_FFT)
    w.add_u32("loom.ac.hop", HOP)
    w.add_u32("loom.ac.n_mels", N_MELS)
    w.add_f32("loom.ac.mel_floor", MEL_FLOOR)
    w.add_f32("loom.ac.mel_offset", MEL_OFFSET)
    w.add_f32("loom.ac.mel_scale", MEL_SCALE)
    w.add_u32("loom.ac.codebook_size", cfg.codebook_size)
    w.add_u32("loom.ac.embed_dim", cfg.embed_dim)
    w.add_u32("loom.ac.ch", cfg.ch)
    w.add_u32("loom.ac.n_down", cfg.n_down)
    w.add_u32("loom.ac.dec_res_blocks", cfg.n_res)
    w.add_arr("loom.ac.dec_dilations", gguf.U32, [DILATIONS[i % 3] for i in range(cfg.n_res)])
    w.add_u32("loom.ac.norm_groups", cfg.norm_groups)
    w.add_f32("loom.ac.norm_eps", 1e-6)
    w.add_f32("loom.ac.codes_per_second", cfg.codes_per_second)
    w.add_u32("loom.ac.nnls_iters", cfg.nnls_iters)
    w.add_u32("loom.ac.gl_iters", cfg.gl_iters)
    w.add_u32("loom.ac.gl_upsample", cfg.gl_upsample)
    w.add_f32("loom.ac.gl_alpha", 0.99)
    w.add_tensor("ac.mel_filters", _MEL.numpy())
    for name, arr in gguf_tensors(model, "ac"):
        w.add_tensor(name, arr)
    w.write(path)


def load_gguf(path):
    """Rebuild an AudioCodec from a file written by export_gguf."""
    from . import gguf
    kv, tensors = gguf.read(path)
    cfg = ACConfig(ch=kv["loom.ac.ch"], embed_dim=kv["loom.ac.embed_dim"],
                   codebook_size=kv["loom.ac.codebook_size"], n_down=kv["loom.ac.n_down"],
                   n_res=kv["loom.ac.dec_res_blocks"], norm_groups=kv["loom.ac.norm_groups"],
                   nnls_iters=kv["loom.ac.nnls_iters"], gl_iters=kv["loom.ac.gl_iters"],
                   gl_upsample=kv["loom.ac.gl_upsample"])
    return load_weights(AudioCodec(cfg), tensors, "ac")
