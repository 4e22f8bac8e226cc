"""More training scenes, clips and utterances than make_all.py makes, linked with the rest of
data/ into one folder for `train.py --data` (loom-tiny stage 47 on: 100 000 scenes, 20 000 clips;
stage 50 on also 50 000 training utterances and 20 000 accented ones):

    /usr/bin/python3 tools/train/more_data.py [--data data] [--out data/big] [--scenes 100000] [--videos 20000]
        [--speech 50000] [--accents 20000]

Each split draws from its own seeded stream, so the first training scenes and clips are
data/'s own; that is checked, not assumed. Val, test, speech and every code file are data/'s,
linked: text to image and text to video keep training on the items prep.py coded (the first
ones, Data.size), captions, questions, plain text and video description read them all.
The new clips' decoded MP4s (`--video-mp4`) are data/'s for the first clips (the same MP4
bytes) and decoded for the rest. The speech splits work alike: data/'s utterances come first
(their wavs hard-linked, their features copied), the others are synthesised (tools/data/speech.py)
and featured (prep.py) here; --scenes 0, --videos 0, --speech 0 and --accents 0 keep data/'s. A larger set starts from
the largest one an earlier run made (data/speech_N_M) up to the size asked, not from data/'s: its
utterances linked and its features reused (a split of the same size is linked whole, so
`--speech 50000 --accents 20000` after `--speech 50000` synthesises only the accents), the result the same (checked: 20 020 made from 20 010 and from data/'s
20 000 have equal records and features). Clips alike: a larger set links the MP4s of the
largest earlier one (data/videos_N; data/'s own otherwise) and takes its decoded frames, and
encodes and decodes only the clips after them. Resumable: a finished step is skipped.
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
from tools.data import speech  # noqa: E402
from tools.train.prep import DECODE_CHUNK, SPEECH_SPLITS, decode_mp4s, utterance_features  # noqa: E402


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


def largest_start(small, big, split, n, finished=("{}.jsonl", "{}_feats.npz")):
    """The folder to start big/'s split from: small (data/'s speech or clips) or the larger set
    of an earlier run (small_N_M, small_N) with the most finished items of that split up to n
    (finished: the files a finished set has). Each split is one seeded stream, so its first
    items are the same in every set; the caller checks that."""
    best, most = small, sum(1 for _ in open(os.path.join(small, f"{split}.jsonl")))
    parent, stem = os.path.split(small)
    for name in sorted(os.listdir(parent or ".")):
        d = os.path.join(parent, name)
        done = all(os.path.exists(os.path.join(d, f.format(split))) for f in finished)
        if not name.startswith(stem + "_") or os.path.abspath(d) == os.path.abspath(big) or not done:
            continue
        k = sum(1 for _ in open(os.path.join(d, f"{split}.jsonl")))
        if most < k <= n:
            best, most = d, k
    return best


def more_speech(small, big, counts, seed, procs, models):
    """big/: for each {split: n} of counts, n utterances whose first are small's (speech.py draws
    each split from its own seeded stream) and their <split>_feats.npz. An earlier, smaller
    set's utterances and features are reused (largest_start), not made again."""
    for split, n in counts.items():
        base = largest_start(small, big, split, n)
        old = [json.loads(line) for line in open(os.path.join(base, f"{split}.jsonl"))]
        if n < len(old):
            sys.exit(f"speech/{split}: asked for {n} utterances, but {base} already has {len(old)}")
        print(f"speech/{split}: the first {len(old)} from {base}", flush=True)
        os.makedirs(os.path.join(big, split), exist_ok=True)
        for r in old:                   # speech.generate() skips a wav that exists
            if not os.path.exists(os.path.join(big, r["wav"])):
                os.link(os.path.join(base, r["wav"]), os.path.join(big, r["wav"]))
        if n == len(old):               # an earlier run made this split whole (another --accents)
            for f in (f"{split}.jsonl", f"{split}_feats.npz"):
                if not os.path.exists(os.path.join(big, f)):
                    os.link(os.path.join(base, f), os.path.join(big, f))
            continue
        if not os.path.exists(os.path.join(big, f"{split}.jsonl")):
            t = time.time()
            speech.generate(big, {split: n}, seed, procs)
            print(f"speech/{split}: {n - len(old)} utterances synthesised in {time.time() - t:.0f} s", flush=True)
        new = [json.loads(line) for line in open(os.path.join(big, f"{split}.jsonl"))]
        if new[:len(old)] != old:
            sys.exit(f"speech/{split}: {big} does not begin with {base}'s utterances (another --seed?)")
        out = os.path.join(big, f"{split}_feats.npz")
        if os.path.exists(out):
            continue
        t = time.time()
        a = np.load(os.path.join(base, f"{split}_feats.npz"))
        b = utterance_features(big, new[len(old):], *SPEECH_SPLITS[split], models)
        np.savez(out + ".tmp.npz", mel=np.concatenate([a["mel"], b["mel"]], axis=1),
                 **{k: np.concatenate([a[k], b[k]]) for k in ("mel_len", "codes", "codes_len")})
        os.replace(out + ".tmp.npz", out)
        print(f"speech/{split}: {n - len(old)} utterances featured in {time.time() - t:.0f} s", flush=True)


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
    ap.add_argument("--scenes", type=int, default=100000, help="training scenes (0: data/'s)")
    ap.add_argument("--videos", type=int, default=20000, help="training clips (0: data/'s)")
    ap.add_argument("--speech", type=int, default=0, help="training utterances (0: data/'s)")
    ap.add_argument("--accents", type=int, default=0, help="accented training utterances (0: data/'s)")
    ap.add_argument("--models", default="models", help="the audio codec prep.py codes speech with")
    ap.add_argument("--seed", type=int, default=1, help="make_all.py's --seed")
    ap.add_argument("--procs", type=int, default=2)
    a = ap.parse_args(argv)
    t0 = time.time()
    sd, vd = os.path.join(a.data, "scenes"), os.path.join(a.data, "videos")
    for need in (os.path.join(sd, "train_codes.npy"), os.path.join(vd, "train_mp4.npy")):
        if not os.path.exists(need):
            sys.exit(f"{need} is missing: run tools/data/make_all.py and tools/train/prep.py first")
    big_s = f"{sd}_{a.scenes}" if a.scenes else sd
    big_v = f"{vd}_{a.videos}" if a.videos else vd
    base_v = largest_start(vd, big_v, "train", a.videos, ("{}.jsonl", "{}_mp4.npy")) if a.videos else vd
    if not os.path.exists(os.path.join(big_s, "train.npy")):
        t = time.time()
        scenes.generate(big_s, 0, a.seed, {"train": a.scenes})
        print(f"scenes: {a.scenes} training scenes in {time.time() - t:.0f} s", flush=True)
    same_start("scenes", sd, big_s)
    if not os.path.exists(os.path.join(big_v, "train.npy")):
        t = time.time()
        os.makedirs(os.path.join(big_v, "train"), exist_ok=True)
        for r in map(json.loads, open(os.path.join(base_v, "train.jsonl"))):   # generate() skips an MP4 that exists
            if not os.path.exists(os.path.join(big_v, r["mp4"])):
                os.link(os.path.join(base_v, r["mp4"]), os.path.join(big_v, r["mp4"]))
        videos.generate(big_v, str(a.videos), a.seed, 8, a.procs)
        print(f"videos: {a.videos} training clips in {time.time() - t:.0f} s, the MP4s of the first "
              f"from {base_v}", flush=True)
    same_start("videos", vd, big_v)
    if base_v != vd:
        same_start("videos", base_v, big_v)   # the MP4s linked from base_v are its clips'
    t = time.time()
    decoded_mp4s(base_v, big_v)
    print(f"videos: MP4s decoded in {time.time() - t:.0f} s", flush=True)
    for kind, small, big, own in (("scenes", sd, big_s, ("train.npy", "train.jsonl")),
                                  ("videos", vd, big_v, ("train.npy", "train.jsonl", "train", "train_mp4.npy"))):
        os.makedirs(os.path.join(a.out, kind), exist_ok=True)
        for name in sorted(os.listdir(small)):
            link(os.path.join(big if name in own else small, name), os.path.join(a.out, kind, name))
    spd, counts = os.path.join(a.data, "speech"), {k: n for k, n in (("train", a.speech), ("accents", a.accents)) if n}
    if not counts:
        link(spd, os.path.join(a.out, "speech"))
    else:
        big_sp = f"{spd}_{a.speech or 'data'}_{a.accents or 'data'}"
        more_speech(spd, big_sp, counts, a.seed, a.procs, a.models)
        out = os.path.join(a.out, "speech")
        if os.path.islink(out):         # data/'s speech, linked by an earlier run
            os.remove(out)
        os.makedirs(out, exist_ok=True)
        own = {f"{s}{x}" for s in counts for x in ("", ".jsonl", "_feats.npz")}
        for name in sorted(os.listdir(spd)):
            link(os.path.join(big_sp if name in own else spd, name), os.path.join(out, name))
    print(f"{a.out}: scenes {a.scenes or 'of data/'}, clips {a.videos or 'of data/'}, speech {counts or 'of data/'}; "
          f"{time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
