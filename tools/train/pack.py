"""Move a training run to a lent GPU machine and back, within its transfer limits (64 MiB
there, 16 MiB per file back).

    pack    data/ train split + runs/tiny weights → a compact bundle (xz; mels rounded to a grid)
    unpack  bundle → a data/ tree and a run folder that train.py reads (weights only, fresh optimizer)
    merge   weight shards written by `train.py --snap DIR` → a run folder's ckpt.pt

    /usr/bin/python3 tools/train/pack.py pack   --data data --run runs/tiny --out .dev/bundle
    /usr/bin/python3 tools/train/pack.py unpack --bundle .dev/bundle --data /tmp/data --run /tmp/run
    /usr/bin/python3 tools/train/pack.py merge  --snap DIR --run runs/gpu

Rounded mels carry their grid step (`mel_step`); train.py dithers them back by ±step/2.
The whole training split no longer fits: 1 000 utterances' mels take 6.5 MB at a 0.1 grid, and
the call's 64 MiB holds the working tree too. Stage 42 (docs/MODEL.md) packed `--speech-n 3000
--mel-step 0.1` (51 MiB), named `.dev/bundle` in the call's carry, and kept `models/` and
`tests/data/` out of the tree for the call (`git rm -r --cached` them and list them in
`.git/info/exclude`; `git reset -- models tests/data` and removing the list restore them).
Stage 44 packed the next 3 000 (`--speech-from 3000 --speech-n 3000`), so that a second GPU stage
hears other utterances than the first.
"""
import argparse
import io
import json
import lzma
import os
import shutil

import numpy as np
import torch

SHARD_BYTES = 15 << 20
# small files that travel as they are (when data/ has them): loom's own voice for --tts-voice/--tts-words
EXTRA = ("speech/voice_feats.npz", "speech/voice_units.npz", "speech/voice.jsonl")


def _save_xz(path, arr):
    with lzma.open(path, "wb", preset=6) as f:
        np.save(f, arr)


def _load_xz(path):
    with lzma.open(path, "rb") as f:
        return np.load(io.BytesIO(f.read()))


def save_weights(model, config, step, out, dtype=torch.float32):
    """Model weights as shards of at most SHARD_BYTES: out/weights-K.pt (+ meta.json)."""
    os.makedirs(out, exist_ok=True)
    shards, cur, size = [], {}, 0
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype)
        b = v.numel() * v.element_size()
        if cur and size + b > SHARD_BYTES:
            shards.append(cur)
            cur, size = {}, 0
        cur[k], size = v, size + b
    shards.append(cur)
    for i, sh in enumerate(shards):
        torch.save(sh, os.path.join(out, f"weights-{i}.pt.tmp"))
        os.replace(os.path.join(out, f"weights-{i}.pt.tmp"), os.path.join(out, f"weights-{i}.pt"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump({"config": config, "step": step, "shards": len(shards)}, f)


def load_weights(src):
    meta = json.load(open(os.path.join(src, "meta.json")))
    model = {}
    for i in range(meta["shards"]):
        model.update(torch.load(os.path.join(src, f"weights-{i}.pt"), map_location="cpu"))
    return {"config": meta["config"], "model": {k: v.float() if v.is_floating_point() else v
                                                for k, v in model.items()},
            "step": meta["step"], "elapsed": 0.0}


def write_ckpt(st, run):
    os.makedirs(run, exist_ok=True)
    torch.save(st, os.path.join(run, "ckpt.pt"))


def pack(a):
    d, o = a.data, a.out
    os.makedirs(o, exist_ok=True)
    st = torch.load(os.path.join(a.run, "ckpt.pt"), map_location="cpu")
    from tools.train import unified as U

    class M:      # what save_weights reads
        def state_dict(self):
            return st["model"]
    save_weights(M(), st["config"], st["step"], os.path.join(o, "weights"), torch.float16)
    for kind in ("scenes", "videos"):
        for name in ("train.npy", "train_codes.npy"):
            _save_xz(os.path.join(o, f"{kind}_{name}.xz"), np.load(os.path.join(d, kind, name)))
        shutil.copyfile(os.path.join(d, kind, "train.jsonl"), os.path.join(o, f"{kind}_train.jsonl"))
    z = np.load(os.path.join(d, "speech", "train_feats.npz"))
    total_n = len(z["mel_len"])
    k = min(a.speech_from, total_n)                                  # utterances k … k+n-1 travel
    n = min(a.speech_n or total_n, total_n - k)
    m0, c0 = int(z["mel_len"][:k].sum()), int(z["codes_len"][:k].sum())
    m1, c1 = m0 + int(z["mel_len"][k:k + n].sum()), c0 + int(z["codes_len"][k:k + n].sum())
    lo = float(z["mel"].min())
    q = np.clip(np.round((z["mel"][:, m0:m1].astype(np.float32) - lo) / a.mel_step), 0, 255).astype(np.uint8)
    _save_xz(os.path.join(o, "speech_mel_q.npy.xz"), q)
    np.savez(os.path.join(o, "speech_rest.npz"), mel_lo=lo, mel_step=a.mel_step, mel_len=z["mel_len"][k:k + n],
             codes=z["codes"][c0:c1], codes_len=z["codes_len"][k:k + n])
    with open(os.path.join(d, "speech", "train.jsonl")) as src, open(os.path.join(o, "speech_train.jsonl"), "w") as dst:
        dst.writelines(line for i, line in zip(range(k + n), src) if i >= k)
    shutil.copyfile(a.vocab, os.path.join(o, "vocab.gguf"))
    for name in EXTRA:
        if os.path.exists(os.path.join(d, name)):
            shutil.copyfile(os.path.join(d, name), os.path.join(o, name.replace("/", "__")))
    for f in os.listdir(o):
        if f.endswith(".jsonl"):
            with open(os.path.join(o, f), "rb") as src, lzma.open(os.path.join(o, f + ".xz"), "wb") as dst:
                dst.write(src.read())
            os.remove(os.path.join(o, f))
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(o) for f in fs)
    print(f"bundle {o}: {total / 2**20:.1f} MiB (mel grid {a.mel_step}, {U.N_VOCAB} vocab)")


def unpack(a):
    b, d = a.bundle, a.data
    for kind in ("scenes", "videos", "speech"):
        os.makedirs(os.path.join(d, kind), exist_ok=True)
        with lzma.open(os.path.join(b, f"{kind}_train.jsonl.xz")) as src, \
                open(os.path.join(d, kind, "train.jsonl"), "wb") as dst:
            dst.write(src.read())
    for kind in ("scenes", "videos"):
        for name in ("train.npy", "train_codes.npy"):
            np.save(os.path.join(d, kind, name), _load_xz(os.path.join(b, f"{kind}_{name}.xz")))
    r = np.load(os.path.join(b, "speech_rest.npz"))
    q = _load_xz(os.path.join(b, "speech_mel_q.npy.xz"))
    mel = (q.astype(np.float32) * float(r["mel_step"]) + float(r["mel_lo"])).astype(np.float16)
    np.savez(os.path.join(d, "speech", "train_feats.npz"), mel=mel, mel_len=r["mel_len"], codes=r["codes"],
             codes_len=r["codes_len"], mel_step=r["mel_step"])
    for name in EXTRA:
        src = os.path.join(b, name.replace("/", "__"))
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(d, name))
        elif os.path.exists(src + ".xz"):
            with lzma.open(src + ".xz") as f, open(os.path.join(d, name), "wb") as dst:
                dst.write(f.read())
    write_ckpt(load_weights(os.path.join(b, "weights")), a.run)
    print(f"unpacked {b} → {d}, {a.run}/ckpt.pt")


def merge(a):
    write_ckpt(load_weights(a.snap), a.run)
    print(f"{a.snap} → {a.run}/ckpt.pt")


def main():
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=["pack", "unpack", "merge"])
    ap.add_argument("--data", default="data")
    ap.add_argument("--run", default="runs/tiny")
    ap.add_argument("--out", default=".dev/bundle")
    ap.add_argument("--bundle", default=".dev/bundle")
    ap.add_argument("--snap", default="")
    ap.add_argument("--vocab", default="models/loom-tiny-vocab.gguf")
    ap.add_argument("--mel-step", type=float, default=0.05, help="grid of the rounded mels")
    ap.add_argument("--speech-n", type=int, default=0, help="pack only N speech utterances (0: all)")
    ap.add_argument("--speech-from", type=int, default=0, help="the first utterance packed (with --speech-n)")
    a = ap.parse_args()
    {"pack": pack, "unpack": unpack, "merge": merge}[a.cmd](a)


if __name__ == "__main__":
    main()
