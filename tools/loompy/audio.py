"""Whisper-style audio encoder + frame-stacking projector in PyTorch: the reference for
audio/audio_encoder.c, and its GGUF exporter (names and keys: docs/FORMAT.md, "Audio encoder").

    mel [n_mel][T] → conv1d(n_mel→d, k3 s1 p1) → GELU → conv1d(d→d, k3 s2 p1) → GELU
      → transpose [T2][d] + a.position_embd[:T2] → n_layer pre-LN blocks → a.post_ln
      → stack `stack` consecutive frames ([T2][d] → [ceil(T2/stack)][stack·d], zero-padded)
      → mm.a.mlp.1 → GELU → mm.a.mlp.2 → [n_tok][d_proj]
GELU is the exact (erf) form, as in Whisper and llama.cpp's voxtral projector. Blocks:
  x += attn_out(MHA(ln1(x)))   with q = attn_q(·)+b, k = attn_k(·) (no bias), v = attn_v(·)+b
  x += ffn_down(GELU(ffn_up(ln2(x))))

    python3 -m tools.loompy.audio --fixtures tests/data/audio/encoder   (re)makes test fixtures
"""
import argparse
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tools.loompy import gguf


class Block(nn.Module):
    def __init__(self, d, n_head, n_ff, eps):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.up = nn.Linear(d, n_ff)
        self.down = nn.Linear(n_ff, d)

    def forward(self, x):                      # x [T][d]
        T, d = x.shape
        hd = d // self.n_head
        h = self.ln1(x)
        q = self.q(h).view(T, self.n_head, hd).transpose(0, 1)   # [H][T][hd]
        k = self.k(h).view(T, self.n_head, hd).transpose(0, 1)
        v = self.v(h).view(T, self.n_head, hd).transpose(0, 1)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd), dim=-1)
        x = x + self.o((att @ v).transpose(0, 1).reshape(T, d))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class AudioEncoder(nn.Module):
    def __init__(self, n_mel=80, d=64, n_head=4, n_ff=128, n_layer=2, n_pos=50, stack=4,
                 d_proj=96, eps=1e-5):
        super().__init__()
        self.hp = dict(n_mel=n_mel, d=d, n_head=n_head, n_ff=n_ff, n_layer=n_layer,
                       n_pos=n_pos, stack=stack, d_proj=d_proj, eps=eps)
        self.conv1 = nn.Conv1d(n_mel, d, 3, stride=1, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.pos = nn.Parameter(torch.randn(n_pos, d) * 0.1)
        self.blocks = nn.ModuleList(Block(d, n_head, n_ff, eps) for _ in range(n_layer))
        self.post_ln = nn.LayerNorm(d, eps=eps)
        self.mlp1 = nn.Linear(d * stack, d_proj)
        self.mlp2 = nn.Linear(d_proj, d_proj)

    def forward(self, mel):                    # mel [n_mel][T] → [n_tok][d_proj]
        x = F.gelu(self.conv1(mel[None]))
        x = F.gelu(self.conv2(x))[0].transpose(0, 1)             # [T2][d]
        T2 = x.shape[0]
        assert T2 <= self.pos.shape[0], "input longer than the position table"
        x = x + self.pos[:T2]
        for b in self.blocks:
            x = b(x)
        x = self.post_ln(x)
        s = self.hp["stack"]
        pad = (-T2) % s
        if pad:
            x = torch.cat([x, x.new_zeros(pad, x.shape[1])])
        x = x.reshape(-1, s * x.shape[1])
        return self.mlp2(F.gelu(self.mlp1(x)))

    def randomize(self, seed):
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("weight") and "ln" in name:
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
                else:
                    fan_in = p.shape[1] * (p.shape[2] if p.dim() == 3 else 1) if p.dim() > 1 else 16
                    p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
        return self

    def tensors(self):
        """(gguf name, parameter) in file order: what export_gguf writes and load_gguf reads."""
        out = [("a.conv1d.1.weight", self.conv1.weight), ("a.conv1d.1.bias", self.conv1.bias),
               ("a.conv1d.2.weight", self.conv2.weight), ("a.conv1d.2.bias", self.conv2.bias),
               ("a.position_embd.weight", self.pos)]
        for i, b in enumerate(self.blocks):
            for g, m in (("ln1", b.ln1), ("attn_q", b.q), ("attn_k", b.k), ("attn_v", b.v), ("attn_out", b.o),
                         ("ln2", b.ln2), ("ffn_up", b.up), ("ffn_down", b.down)):
                out.append((f"a.blk.{i}.{g}.weight", m.weight))
                if m.bias is not None:
                    out.append((f"a.blk.{i}.{g}.bias", m.bias))
        for g, m in (("a.post_ln", self.post_ln), ("mm.a.mlp.1", self.mlp1), ("mm.a.mlp.2", self.mlp2)):
            out += [(g + ".weight", m.weight), (g + ".bias", m.bias)]
        return out

    def export_gguf(self, path, ttype=gguf.T_F32):
        hp = self.hp
        w = gguf.Writer()
        w.add_str("general.architecture", "clip")
        w.add_bool("clip.has_audio_encoder", True)
        w.add_str("clip.audio.projector_type", "voxtral")
        w.add_u32("clip.audio.embedding_length", hp["d"])
        w.add_u32("clip.audio.feed_forward_length", hp["n_ff"])
        w.add_u32("clip.audio.block_count", hp["n_layer"])
        w.add_u32("clip.audio.attention.head_count", hp["n_head"])
        w.add_f32("clip.audio.attention.layer_norm_epsilon", hp["eps"])
        w.add_u32("clip.audio.num_mel_bins", hp["n_mel"])
        w.add_u32("clip.audio.projector.stack_factor", hp["stack"])
        w.add_u32("clip.audio.projection_dim", hp["d_proj"])

        # Conv weights, norms, biases and the position table stay F32; matrices take ttype.
        for name, p in self.tensors():
            mat = p.dim() == 2 and not name.startswith("a.position")
            w.add_tensor(name, p.detach().numpy().astype(np.float32), ttype if mat else gguf.T_F32)
        w.write(path)


def load_gguf(path):
    """An AudioEncoder from a file export_gguf wrote (or an mmproj file holding one)."""
    kv, tensors = gguf.read(path)
    p = "clip.audio."
    model = AudioEncoder(n_mel=kv[p + "num_mel_bins"], d=kv[p + "embedding_length"],
                         n_head=kv[p + "attention.head_count"], n_ff=kv[p + "feed_forward_length"],
                         n_layer=kv[p + "block_count"], n_pos=tensors["a.position_embd.weight"][0][0],
                         stack=kv[p + "projector.stack_factor"], d_proj=kv[p + "projection_dim"],
                         eps=kv[p + "attention.layer_norm_epsilon"])
    with torch.no_grad():
        for name, t in model.tensors():
            t.copy_(torch.from_numpy(gguf.to_array(*tensors[name]).copy()))
    return model.eval()


def make_fixtures(out):
    """Random weights → GGUF, a mel input and the expected output (raw little-endian f32).
    Two inputs: 100 frames (T2 = 50, the whole position table, stacks evenly) and 37
    frames (T2 = 19, a partial stack)."""
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    enc = AudioEncoder().randomize(seed=42).eval()
    enc.export_gguf(os.path.join(out, "encoder.gguf"))
    g = torch.Generator().manual_seed(7)
    for T in (100, 37):
        mel = (torch.rand(enc.hp["n_mel"], T, generator=g) * 2.5 - 1.5).float()
        with torch.no_grad():
            y = enc(mel)
        mel.numpy().astype("<f4").tofile(os.path.join(out, f"mel_{T}.f32"))
        y.numpy().astype("<f4").tofile(os.path.join(out, f"out_{T}.f32"))
        print(f"T={T}: out {tuple(y.shape)}, |y| max {y.abs().max().item():.3f}")


CONFIGS = {  # Whisper encoder sizes (mel 80, 1500 positions) with a stack-4 projector
    "tiny": dict(n_mel=80, d=384, n_head=6, n_ff=1536, n_layer=4, n_pos=1500, stack=4, d_proj=512),
    "base": dict(n_mel=80, d=512, n_head=8, n_ff=2048, n_layer=6, n_pos=1500, stack=4, d_proj=512),
}


def bench(out, config, threads, reps):
    """For bench/bench_audio.c: write random weights (DIR/encoder.gguf) and 30 s of audio
    (DIR/audio.wav), then time Whisper's torch path (torch.stft log-mel + encoder) on them
    and print one line: TORCH mel_ms=… enc_ms=… (best of reps, after a warm-up)."""
    import time
    from tools.loompy import mel as melmod
    from tools.loompy.malloc import rerun_peer_with_tcmalloc
    rerun_peer_with_tcmalloc()
    torch.set_num_threads(threads)
    os.makedirs(out, exist_ok=True)
    enc = AudioEncoder(**CONFIGS[config]).randomize(seed=1).eval()
    enc.export_gguf(os.path.join(out, "encoder.gguf"))
    rng = np.random.default_rng(5)
    t = np.arange(30 * melmod.SAMPLE_RATE) / melmod.SAMPLE_RATE
    audio = 0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.1 * np.sin(t))) + 0.05 * rng.normal(size=t.size)
    melmod.write_wav16(os.path.join(out, "audio.wav"), audio)
    x = melmod.read_wav16(os.path.join(out, "audio.wav"))
    best_mel = best_enc = float("inf")
    with torch.no_grad():
        for _ in range(reps + 1):
            t0 = time.perf_counter()
            m = torch.from_numpy(melmod.log_mel_torch(x, 80))
            t1 = time.perf_counter()
            enc(m)
            t2 = time.perf_counter()
            best_mel, best_enc = min(best_mel, t1 - t0), min(best_enc, t2 - t1)
    print(f"TORCH mel_ms={best_mel * 1e3:.2f} enc_ms={best_enc * 1e3:.2f} threads={torch.get_num_threads()}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", metavar="DIR", help="write the encoder parity fixtures into DIR")
    ap.add_argument("--bench", metavar="DIR", help="export bench weights + audio into DIR and time torch")
    ap.add_argument("--config", default="tiny", choices=sorted(CONFIGS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    if a.fixtures:
        make_fixtures(a.fixtures)
    if a.bench:
        bench(a.bench, a.config, a.threads, a.reps)
