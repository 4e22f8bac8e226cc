"""What the two codec trainers (train_vq.py, train_audio.py) share: the resumable run, the
learning-rate schedule, the codebook's k-means start and dead-code restarts, and each step's
bookkeeping (code usage, the log line, checkpoints, the time budget).

A run is <run>/ckpt.pt (config, model, optimiser, step, total steps, code usage) plus
<run>/train.log; `train` resumes from the checkpoint, and --steps on a resume changes the
schedule from there on.
"""
import math
import os
import time

import torch
import torch.nn.functional as F


def save(path, **state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def _rows(z):
    """[b,d,...] -> L2-normalised rows [n,d]."""
    d = z.shape[1]
    return F.normalize(z.detach().float().movedim(1, -1).reshape(-1, d), dim=1)


def restart_dead_codes(quantizer, z, usage, thresh):
    """Codes whose usage EMA fell below thresh take random encoder outputs of this batch."""
    dead = (usage < thresh).nonzero().flatten()
    if len(dead) == 0:
        return 0
    zf = _rows(z)
    pick = zf[torch.randint(len(zf), (len(dead),))]
    with torch.no_grad():
        quantizer.embedding.weight[dead] = pick + 0.01 * torch.randn_like(pick)
    usage[dead] = thresh * 2
    return len(dead)


def kmeans_init(quantizer, z, iters=10):
    """Codebook <- spherical k-means of encoder outputs z [b,d,...] (the first batches)."""
    with torch.no_grad():
        zf = _rows(z)
        k = quantizer.embedding.weight.shape[0]
        c = zf[torch.randperm(len(zf))[:k]].clone()
        for _ in range(iters):
            a = torch.argmax(zf @ c.t(), 1)
            s = torch.zeros_like(c).index_add_(0, a, zf)
            n = torch.bincount(a, minlength=k)
            c = torch.where(n[:, None] > 0, F.normalize(s, dim=1), c)
        quantizer.embedding.weight.copy_(c)


class Run:
    """One codec's training run. `a` holds the trainers' common options: run, lr, seed, steps,
    default_steps, dead_thresh, max_minutes.

        r = Run(a, CfgClass, ModelClass, fresh_cfg, first_z)   # resumes or starts
        while r.step < r.steps:
            r.set_lr()
            ... z = encoder(x); zq, codes, qloss = r.model.quantize(z); loss.backward(); r.opt.step()
            if r.end_step(z, codes, lambda: f"loss {loss.item():.4f} ..."):
                break
    """

    def __init__(self, a, cfg_cls, model_cls, fresh_cfg, first_z):
        """first_z(model): encoder outputs of a first batch, for a fresh codebook's k-means."""
        self.a = a
        os.makedirs(a.run, exist_ok=True)
        self.ck = os.path.join(a.run, "ckpt.pt")
        self.resumed = os.path.exists(self.ck)
        if self.resumed:
            st = torch.load(self.ck)
            self.cfg = cfg_cls.from_dict(st["cfg"])
            self.model = model_cls(self.cfg)
            self.model.load_state_dict(st["model"])
            self.opt = torch.optim.Adam(self.model.parameters(), lr=a.lr, betas=(0.9, 0.99))
            self.opt.load_state_dict(st["opt"])
            self.step, self.usage, self.steps = st["step"], st["usage"], st["steps"]
            if a.steps and a.steps != self.steps:  # a shorter/longer schedule from here on
                print(f"schedule changed from {self.steps} to {a.steps} steps", flush=True)
                self.steps = a.steps
            print(f"resumed at step {self.step}/{self.steps}", flush=True)
        else:
            torch.manual_seed(a.seed)
            self.cfg = fresh_cfg
            self.model = model_cls(self.cfg)
            self.opt = torch.optim.Adam(self.model.parameters(), lr=a.lr, betas=(0.9, 0.99))
            self.step, self.steps = 0, a.steps or a.default_steps
            self.usage = torch.ones(self.cfg.codebook_size)
            with torch.no_grad():
                z0 = first_z(self.model)
            kmeans_init(self.model.quantize, z0)
        self.log = open(os.path.join(a.run, "train.log"), "a")
        self.t0 = self.last_save = time.time()
        self.lr = a.lr

    def set_lr(self):
        """100 warm-up steps, then a cosine down to 5 % of --lr."""
        warm = min(1.0, (self.step + 1) / 100)
        self.lr = self.a.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * self.step / self.steps)))
        for g in self.opt.param_groups:
            g["lr"] = self.lr

    def end_step(self, z, codes, losses):
        """After the optimiser step: usage EMA, dead-code restarts (not in the last 20 %), the log
        line every 25 steps (losses() gives its middle), the checkpoint every 2 minutes and at the
        end. True when --max-minutes has run out (the checkpoint is written)."""
        a = self.a
        cnt = torch.bincount(codes.flatten(), minlength=self.cfg.codebook_size).float()
        self.usage.mul_(0.99).add_(cnt * 0.01)
        self.step += 1
        nrest = 0
        if self.step % 50 == 0 and self.step < self.steps * 0.8:
            nrest = restart_dead_codes(self.model.quantize, z, self.usage, a.dead_thresh)
        if self.step % 25 == 0 or self.step == self.steps:
            msg = (f"step {self.step}/{self.steps} {losses()} live {int((self.usage > a.dead_thresh).sum())} "
                   f"restarted {nrest} lr {self.lr:.2e} {time.time() - self.t0:.0f}s")
            print(msg, flush=True)
            self.log.write(msg + "\n")
            self.log.flush()
        stop = a.max_minutes and time.time() - self.t0 > a.max_minutes * 60
        if time.time() - self.last_save > 120 or self.step == self.steps or stop:
            save(self.ck, cfg=self.cfg.to_dict(), model=self.model.state_dict(), opt=self.opt.state_dict(),
                 step=self.step, steps=self.steps, usage=self.usage)
            self.last_save = time.time()
        if stop:
            print(f"time budget reached at step {self.step}; run again to resume", flush=True)
        return bool(stop)
