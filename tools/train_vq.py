"""Train / evaluate / export the VQ image codec on the synthetic scenes (resumable).

    /usr/bin/python3 tools/train_vq.py train  [--steps 2000 --batch 24 --max-minutes 30]
    /usr/bin/python3 tools/train_vq.py eval   # PSNR + codebook use on test scenes, docs/vq_samples.png
                                              # (runs/vq's checkpoint, else the --base file)
    /usr/bin/python3 tools/train_vq.py export # runs/vq/loom-tiny-vq.gguf
    /usr/bin/python3 tools/train_vq.py decoder --base models/loom-tiny-vq.gguf --run runs/vqdec \
        [--steps 4000 --lr 3e-4 --max-minutes 40]   # the decoder alone, codes kept (below)

Checkpoint: runs/vq/ckpt.pt (model, optimiser, step, usage stats); `train` resumes from it
(tools/codec_train.py, shared with train_audio.py).
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning threads starve on a shared CPU
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loompy.vq import VQConfig, VQModel, to_input, to_pixels, psnr, export_gguf, load_gguf  # noqa: E402
from loompy.png import write_png, grid  # noqa: E402
from codec_train import Run  # noqa: E402


def load_split(data, split):
    return np.load(os.path.join(data, f"{split}.npy"), mmap_mode="r")


def train(a):
    torch.set_num_threads(a.threads)
    data = np.ascontiguousarray(load_split(a.data, "train"))
    val = np.ascontiguousarray(load_split(a.data, "val")[:256])

    def first_z(model):
        rng = np.random.default_rng(a.seed)
        return model.encode_z(to_input(data[rng.choice(len(data), 64, replace=False)]))

    r = Run(a, VQConfig, VQModel, VQConfig(codebook_size=a.codebook, ch=a.ch), first_z)
    model, cfg = r.model, r.cfg
    if not r.resumed:
        with open(os.path.join(a.run, "config.json"), "w") as f:
            json.dump(cfg.to_dict(), f, indent=1)
    nparam = sum(p.numel() for p in model.parameters())
    print(f"VQ {cfg.to_dict()} params={nparam} grid={cfg.grid}x{cfg.grid}", flush=True)
    model.train()
    while r.step < r.steps:
        rng = np.random.default_rng([a.seed, r.step])
        full = r.step >= r.steps * a.full_frac  # crops first (4x cheaper), full images last
        bs = a.batch if full else a.crop_batch
        idx = np.sort(rng.choice(len(data), bs, replace=False))
        x = to_input(data[idx])
        if not full:  # random 32x32 crops aligned to the 4-pixel code grid
            oy, ox = (int(v) * 4 for v in rng.integers(0, 9, 2))
            x = x[:, :, oy:oy + 32, ox:ox + 32]
        if rng.random() < 0.5:
            x = x.flip(3)
        r.set_lr()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            z = model.encode_z(x)
            with torch.autocast("cpu", enabled=False):
                zq, codes, qloss = model.quantize(z)
            y = model.decoder(model.post_quant_conv(zq)).float()
        rec = F.mse_loss(y, x) + 0.2 * F.l1_loss(y, x)
        loss = rec + qloss
        r.opt.zero_grad(set_to_none=True)
        loss.backward()
        r.opt.step()
        if r.end_step(z, codes, lambda: f"loss {loss.item():.4f} rec {rec.item():.4f} q {qloss.item():.4f} "
                      f"psnr(batch) {psnr(to_pixels(y[:8]), to_pixels(x[:8])):.2f}"):
            break
    model.eval()
    with torch.no_grad():
        y = to_pixels(model(to_input(val))[0])
    print(f"val psnr {psnr(y, val):.2f} dB, train time {time.time() - r.t0:.0f}s", flush=True)


def train_decoder(a):
    """Train the decoder alone (post_quant_conv and decoder) of a finished codec (--base GGUF):
    the encoder and codebook stay, so every code keeps its meaning and the data's codes, and
    the decoder LM trained on them, stay valid; only how codes become pixels changes.
    Resumable (<run>/decoder.pt); writes <run>/loom-tiny-vq.gguf at the end."""
    torch.set_num_threads(a.threads)
    data = load_split(a.data, "train")
    model = load_gguf(a.base)
    for p in model.parameters():
        p.requires_grad_(False)
    params = list(model.post_quant_conv.parameters()) + list(model.decoder.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=a.lr)
    steps, step = a.steps or 4000, 0
    ck = os.path.join(a.run, "decoder.pt")
    os.makedirs(a.run, exist_ok=True)
    if os.path.exists(ck):
        st = torch.load(ck)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, steps = st["step"], st["steps"]
    t0 = time.time()
    model.encoder.eval()
    model.decoder.train()
    while step < steps and not (a.max_minutes and time.time() - t0 > 60 * a.max_minutes):
        rng = np.random.default_rng([a.seed, step])
        x = to_input(data[np.sort(rng.choice(len(data), a.batch, replace=False))])
        if rng.random() < 0.5:
            x = x.flip(3)
        for g in opt.param_groups:   # cosine to 0 after 50 warm-up steps
            g["lr"] = a.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + np.cos(np.pi * step / steps))
        with torch.no_grad(), torch.autocast("cpu", enabled=False):
            zq, _, _ = model.quantize(model.encode_z(x))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            y = model.decoder(model.post_quant_conv(zq)).float()
        loss = F.mse_loss(y, x) + 0.2 * F.l1_loss(y, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0 or step == steps:
            print(f"step {step}/{steps} loss {loss.item():.5f} psnr(batch) "
                  f"{psnr(to_pixels(y[:8].detach()), to_pixels(x[:8])):.2f} {time.time() - t0:.0f}s", flush=True)
            save_tmp = ck + ".tmp"
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "steps": steps}, save_tmp)
            os.replace(save_tmp, ck)
    model.eval()
    out = os.path.join(a.run, "loom-tiny-vq.gguf")
    export_gguf(model, out)
    print(f"step {step}/{steps}; wrote {out}", flush=True)


def load_model(run):
    st = torch.load(os.path.join(run, "ckpt.pt"))
    model = VQModel(VQConfig.from_dict(st["cfg"]))
    model.load_state_dict(st["model"])
    return model.eval()


def evaluate(a):
    torch.set_num_threads(a.threads)
    # a training run's checkpoint, else a codec file (--base: the bundled one by default)
    model = load_model(a.run) if os.path.exists(os.path.join(a.run, "ckpt.pt")) else load_gguf(a.base).eval()
    imgs = np.ascontiguousarray(load_split(a.data, a.split))
    recs, codes = [], []
    t = time.time()
    with torch.no_grad():
        for i in range(0, len(imgs), 100):
            y, c, _ = model(to_input(imgs[i:i + 100]))
            recs.append(to_pixels(y))
            codes.append(c.numpy())
    recs = np.concatenate(recs)
    codes = np.concatenate(codes)
    used = len(np.unique(codes))
    n = model.cfg.codebook_size
    p = psnr(recs, imgs)
    print(f"VQ eval on {a.split} ({len(imgs)} scenes, {time.time() - t:.1f}s): "
          f"PSNR {p:.2f} dB, codebook use {used}/{n} = {100 * used / n:.1f}%")
    k = 16
    pair = np.stack([imgs[:k], recs[:k]], 1).reshape(-1, *imgs.shape[1:])
    os.makedirs("docs", exist_ok=True)
    write_png(a.png, grid(pair, 8, scale=2))
    print(f"wrote {a.png} (pairs: original | reconstruction)")
    return p, used / n


def export(a):
    model = load_model(a.run)
    out = os.path.join(a.run, "loom-tiny-vq.gguf")
    export_gguf(model, out)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["train", "eval", "export", "decoder"])
    ap.add_argument("--base", default="models/loom-tiny-vq.gguf", help="`decoder`: the codec whose codes stay")
    ap.add_argument("--data", default="data/scenes")
    ap.add_argument("--run", default="runs/vq")
    ap.add_argument("--steps", type=int, default=0, help="total steps (default 2500; on resume: change the schedule)")
    ap.set_defaults(default_steps=2500)
    ap.add_argument("--batch", type=int, default=16, help="full-image batch")
    ap.add_argument("--crop-batch", type=int, default=32, help="32x32-crop batch")
    ap.add_argument("--full-frac", type=float, default=0.8,
                    help="fraction of steps on crops before switching to full images")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ch", type=int, default=32)
    ap.add_argument("--codebook", type=int, default=1024)
    ap.add_argument("--dead-thresh", type=float, default=0.03)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-minutes", type=float, default=0)
    ap.add_argument("--no-bf16", dest="bf16", action="store_false")
    ap.add_argument("--split", default="test")
    ap.add_argument("--png", default="docs/vq_samples.png")
    a = ap.parse_args(argv)
    {"train": train, "eval": evaluate, "export": export, "decoder": train_decoder}[a.cmd](a)


if __name__ == "__main__":
    main()
