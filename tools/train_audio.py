"""Train / evaluate / export the audio codec on the synthetic speech (resumable).

    /usr/bin/python3 tools/train_audio.py train   [--steps 5000 --batch 32 --max-minutes 30]
    /usr/bin/python3 tools/train_audio.py eval    # mel error on test speech (held-out voices),
                                                  # docs/audio_*_{orig,codec}.wav pairs
    /usr/bin/python3 tools/train_audio.py export  # runs/audio/loom-tiny-audiocodec.gguf

Checkpoint: runs/audio/ckpt.pt; `train` resumes from it. Log-mels of the training set are
cached in data/speech/mel_train.npz.
"""
import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning threads starve on a shared CPU
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loompy import audiocodec as ac  # noqa: E402
from data.speech import read_wav, write_wav  # noqa: E402
from codec_train import Run  # noqa: E402


def records(data, split):
    with open(os.path.join(data, f"{split}.jsonl")) as f:
        return [json.loads(line) for line in f]


def mels(data, split):
    """Concatenated normalised log-mels [80, total] and per-utterance offsets (cached)."""
    cache = os.path.join(data, f"mel_{split}.npz")
    if os.path.exists(cache):
        z = np.load(cache)
        return z["mel"], z["off"]
    ms = [ac.log_mel(read_wav(os.path.join(data, r["wav"]))).numpy() for r in records(data, split)]
    off = np.cumsum([0] + [m.shape[1] for m in ms])
    mel = np.concatenate(ms, axis=1).astype(np.float32)
    np.savez(cache, mel=mel, off=off)
    return mel, off


def batch(mel, off, rng, bs, frames):
    out = np.empty((bs, ac.N_MELS, frames), np.float32)
    floor = (math.log10(ac.MEL_FLOOR) + ac.MEL_OFFSET) / ac.MEL_SCALE
    for i in range(bs):
        u = int(rng.integers(len(off) - 1))
        a, b = off[u], off[u + 1]
        n = b - a
        s = a + int(rng.integers(max(1, n - frames + 1)))
        seg = mel[:, s:min(b, s + frames)]
        out[i] = floor
        out[i, :, :seg.shape[1]] = seg
    return torch.from_numpy(out)


def train(a):
    torch.set_num_threads(a.threads)
    t = time.time()
    mel, off = mels(a.data, "train")
    print(f"train mels {mel.shape} ({len(off) - 1} utterances) in {time.time() - t:.1f}s", flush=True)
    r = Run(a, ac.ACConfig, ac.AudioCodec, ac.ACConfig(ch=a.ch, codebook_size=a.codebook),
            lambda model: model.encoder(batch(mel, off, np.random.default_rng(a.seed), 64, a.frames)))
    model, cfg = r.model, r.cfg
    print(f"audio codec {cfg.to_dict()} params={sum(p.numel() for p in model.parameters())} "
          f"codes/s={cfg.codes_per_second}", flush=True)
    model.train()
    while r.step < r.steps:
        rng = np.random.default_rng([a.seed, r.step])
        x = batch(mel, off, rng, a.batch, a.frames)
        r.set_lr()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            z = model.encoder(x)
            with torch.autocast("cpu", enabled=False):
                zq, codes, qloss = model.quantize(z)
            y = model.decoder(zq).float()
        rec = F.l1_loss(y, x) + F.mse_loss(y, x)
        loss = rec + qloss
        r.opt.zero_grad(set_to_none=True)
        loss.backward()
        r.opt.step()
        if r.end_step(z, codes, lambda: f"loss {loss.item():.4f} q {qloss.item():.4f} "
                      f"mel L1 {float((y - x).abs().mean()) * ac.MEL_SCALE * 10:.2f} dB"):
            break
    print(f"train time {time.time() - r.t0:.0f}s", flush=True)


def load_model(run):
    st = torch.load(os.path.join(run, "ckpt.pt"))
    m = ac.AudioCodec(ac.ACConfig.from_dict(st["cfg"]))
    m.load_state_dict(st["model"])
    return m.eval()


def roundtrip(model, x):
    """normalised log-mel [80,T] -> (codes [T'], reconstructed mel [80,T])."""
    k = 2 ** model.cfg.n_down
    xp = ac.pad_frames(x[None], k)
    with torch.no_grad():
        codes = model.encode(xp)
        y = model.decode_codes(codes)[0, :, :x.shape[1]]
    return codes[0], y


def evaluate(a):
    torch.set_num_threads(a.threads)
    model = load_model(a.run)
    recs = records(a.data, a.split)[:a.n_eval]
    t = time.time()
    err, err_floor, used, secs = [], [], set(), 0.0
    for r in recs:
        wav = read_wav(os.path.join(a.data, r["wav"]))
        x = ac.log_mel(wav)
        codes, y = roundtrip(model, x)
        used.update(codes.tolist())
        d = (y - x).abs() * ac.MEL_SCALE * 10  # dB of mel power
        err.append(float(d.mean()))
        secs += len(wav) / ac.SR
    n = model.cfg.codebook_size
    print(f"audio codec eval on {a.split} ({len(recs)} utterances, {secs:.0f} s of speech, "
          f"voices {sorted({r['voice'] for r in recs})}, {time.time() - t:.1f}s): "
          f"mel L1 {np.mean(err):.2f} dB (log10 units {np.mean(err) / 10:.3f}), "
          f"{model.cfg.codes_per_second:.0f} codes/s, codebook use {len(used)}/{n}")
    # short original / re-synthesised pairs for people to listen to
    short = sorted(recs, key=lambda r: r["seconds"])[:a.pairs]
    os.makedirs(a.docs, exist_ok=True)
    for i, r in enumerate(short):
        wav = read_wav(os.path.join(a.data, r["wav"]))
        x = ac.log_mel(wav)
        _, y = roundtrip(model, x)
        out = ac.vocode(y, model.cfg).numpy()
        base = os.path.join(a.docs, f"audio_{i}")
        write_wav(base + "_orig.wav", wav)
        write_wav(base + "_codec.wav", out)
        re = ac.log_mel(torch.from_numpy(out))[:, :x.shape[1]]
        print(f"{base}_{{orig,codec}}.wav: \"{r['text']}\" ({r['voice']}) "
              f"re-analysed mel L1 of the waveform {float((re - x).abs().mean()) * 40:.2f} dB")
    return float(np.mean(err))


def export(a):
    model = load_model(a.run)
    out = os.path.join(a.run, "loom-tiny-audiocodec.gguf")
    ac.export_gguf(model, out)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["train", "eval", "export"])
    ap.add_argument("--data", default="data/speech")
    ap.add_argument("--run", default="runs/audio")
    ap.add_argument("--steps", type=int, default=0, help="total steps (default 5000; on resume: change the schedule)")
    ap.set_defaults(default_steps=5000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--frames", type=int, default=128, help="training crop (mel frames, 10 ms)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ch", type=int, default=128)
    ap.add_argument("--codebook", type=int, default=1024)
    ap.add_argument("--dead-thresh", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-minutes", type=float, default=0)
    ap.add_argument("--no-bf16", dest="bf16", action="store_false")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n-eval", type=int, default=400)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--docs", default="docs")
    a = ap.parse_args(argv)
    {"train": train, "eval": evaluate, "export": export}[a.cmd](a)


if __name__ == "__main__":
    main()
