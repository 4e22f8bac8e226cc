"""More training scenes and clips than make_all.py makes, linked with the rest of data/ into
one folder for `train.py --data` (loom-tiny stage 47 on: 100 000 scenes, 20 000 clips):

    /usr/bin/python3 tools/train/more_data.py [--data data] [--out data/big] [--scenes 100000] [--videos 20000]

Each split draws from its own seeded stream, so the first training scenes and clips are
data/'s own; that is checked, not assumed. Val, test, speech and every code file are data/'s,
linked: text to image and text to video keep training on the items prep.py coded (the first
ones, Data.size), captions, questions, plain text and video description read them all.
The new clips' decoded MP4s (`--video-mp4`) are data/'s for the first clips (the same MP4
bytes) and decoded for the rest. Resumable: a finished step is skipped.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from data import scenes, videos  # noqa: E402
from tools.train.prep import DECODE_CHUNK, decode_mp4s  # noqa: E402


def same_start(kind, small, big):
    """Stop unless data/'s training items are the first of the larger set."""
    a = np.load(os.path.join(small, "train.npy"), mmap_mode="r")
    b = np.load(os.path.join(big, "train.npy"), mmap_mode="r")
    with open(os.path.join(small, "train.jsonl")) as f, open(os.path.join(big, "train.jsonl")) as g:
        meta = all(x == y for x, y in zip(f, g))
    n = len(a)
    if len(b) < n or not meta or not all(np.array_equal(a[i:i + 1000], b[i:min(i + 1000, n)])
                                         for i in range(0, n, 1000)):
        sys.exit(f"{kind}: {big} does not begin with {small}'s training items (another --seed?)")


def decoded_mp4s(small, big):
    """big/train_mp4.npy: small's decoded frames for its clips, ffmpeg's for the others."""
    out = os.path.join(big, "train_mp4.npy")
    if os.path.exists(out):
        return
    recs = [json.loads(line) for line in open(os.path.join(big, "train.jsonl"))]
    shape = np.load(os.path.join(big, "train.npy"), mmap_mode="r").shape
    old = np.load(os.path.join(small, "train_mp4.npy"), mmap_mode="r")
    frames = np.lib.format.open_memmap(out + ".tmp.npy", "w+", np.uint8, shape)
    frames[:len(old)] = old
    paths = [os.path.abspath(os.path.join(big, r["mp4"])) for r in recs]
    for i in range(len(old), len(paths), DECODE_CHUNK):
        frames[i:i + DECODE_CHUNK] = decode_mp4s(paths[i:i + DECODE_CHUNK], shape[1:])
    frames.flush()
    del frames
    os.replace(out + ".tmp.npy", out)


def link(target, name):
    """name -> target, relative, replaced if it exists."""
    rel = os.path.relpath(os.path.abspath(target), os.path.dirname(os.path.abspath(name)))
    if os.path.islink(name):
        os.remove(name)
    os.symlink(rel, name)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data", help="make_all.py's and prep.py's folder")
    ap.add_argument("--out", default="data/big")
    ap.add_argument("--scenes", type=int, default=100000, help="training scenes")
    ap.add_argument("--videos", type=int, default=20000, help="training clips")
    ap.add_argument("--seed", type=int, default=1, help="make_all.py's --seed")
    ap.add_argument("--procs", type=int, default=2)
    a = ap.parse_args(argv)
    t0 = time.time()
    sd, vd = os.path.join(a.data, "scenes"), os.path.join(a.data, "videos")
    for need in (os.path.join(sd, "train_codes.npy"), os.path.join(vd, "train_mp4.npy")):
        if not os.path.exists(need):
            sys.exit(f"{need} is missing: run tools/data/make_all.py and tools/train/prep.py first")
    big_s, big_v = f"{sd}_{a.scenes}", f"{vd}_{a.videos}"
    if not os.path.exists(os.path.join(big_s, "train.npy")):
        t = time.time()
        scenes.generate(big_s, 0, a.seed, {"train": a.scenes})
        print(f"scenes: {a.scenes} training scenes in {time.time() - t:.0f} s", flush=True)
    same_start("scenes", sd, big_s)
    if not os.path.exists(os.path.join(big_v, "train.npy")):
        t = time.time()
        videos.generate(big_v, str(a.videos), a.seed, 8, a.procs)
        print(f"videos: {a.videos} training clips in {time.time() - t:.0f} s", flush=True)
    same_start("videos", vd, big_v)
    t = time.time()
    decoded_mp4s(vd, big_v)
    print(f"videos: MP4s decoded in {time.time() - t:.0f} s", flush=True)
    for kind, small, big, own in (("scenes", sd, big_s, ("train.npy", "train.jsonl")),
                                  ("videos", vd, big_v, ("train.npy", "train.jsonl", "train", "train_mp4.npy"))):
        os.makedirs(os.path.join(a.out, kind), exist_ok=True)
        for name in sorted(os.listdir(small)):
            link(os.path.join(big if name in own else small, name), os.path.join(a.out, kind, name))
    link(os.path.join(a.data, "speech"), os.path.join(a.out, "speech"))
    print(f"{a.out}: {a.scenes} scenes, {a.videos} clips, data/'s speech; {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
