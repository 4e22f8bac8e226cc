"""Synthetic videos: T frames (default 8) of 64x64 where one shape moves, grows, shrinks,
changes colour, appears or disappears, optionally beside a static shape; with descriptions.

Deterministic from a seed. Writes data/videos/{split}.npy (uint8 [N,T,64,64,3], the frames
used for training), {split}.jsonl (labels + descriptions) and {split}/{id}.mp4 (H.264 yuv420p
via the ffmpeg tool, 8 fps). Test holds compositions never seen in train/val: the event x shape
pairs in HELDOUT_EVENT_SHAPE and the scene's held-out colour x shape pairs.

    /usr/bin/python3 tools/data/videos.py --out data/videos --counts 5100,600,1200 --seed 1
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data import scenes  # noqa: E402

EVENTS = ["move", "grow", "shrink", "change colour", "appear", "disappear"]
HELDOUT_EVENT_SHAPE = {("move", "hexagon"), ("grow", "star"), ("shrink", "circle"),
                       ("change colour", "diamond"), ("appear", "cross"), ("disappear", "ring")}
FPS = 8
COUNTS = "5100,600,1200"   # train, val, test: what loom-tiny v10+ trained and is scored on


def _obj(rng, r, c, colours, shape=None, colour=None, size=None):
    cx, cy = scenes.cell_centre(r, c)
    return {"shape": shape or str(rng.choice(scenes.SHAPES)),
            "colour": colour or str(rng.choice(colours)),
            "size": size or str(rng.choice(list(scenes.SIZES))), "row": r, "col": c,
            "pos": scenes.pos_name(r, c), "x": round(float(cx), 2), "y": round(float(cy), 2)}


def is_heldout(lab):
    m = lab["object"]
    objs = [m] + lab["static"]
    cs = any((o["colour"], o["shape"]) in scenes.HELDOUT_COLOUR_SHAPE for o in objs)
    if lab["event"] == "change colour":
        cs = cs or (lab["to_colour"], m["shape"]) in scenes.HELDOUT_COLOUR_SHAPE
    return cs or (lab["event"], m["shape"]) in HELDOUT_EVENT_SHAPE


def sample_label(rng, want_heldout):
    while True:
        bg = str(rng.choice(list(scenes.BACKGROUNDS)))
        colours = [c for c in scenes.COLOURS if not (bg == "beige" and c == "white")]
        event = str(rng.choice(EVENTS))
        cells = [int(v) for v in rng.permutation(9)]
        r, c = divmod(cells[0], 3)
        size = {"grow": "small", "shrink": "large"}.get(event)
        main = _obj(rng, r, c, colours, size=size)
        lab = {"bg": bg, "event": event, "object": main, "static": []}
        if event == "move":
            nb = [(r + dr, c + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                  if (dr or dc) and 0 <= r + dr < 3 and 0 <= c + dc < 3]
            tr, tc = nb[int(rng.integers(len(nb)))]
            lab["to_row"], lab["to_col"], lab["to_pos"] = tr, tc, scenes.pos_name(tr, tc)
            cells = [x for x in cells if x != tr * 3 + tc]
        if event == "change colour":
            lab["to_colour"] = str(rng.choice([x for x in colours if x != main["colour"]]))
        if rng.random() < 0.5:
            sr, sc = divmod(cells[1], 3)
            lab["static"].append(_obj(rng, sr, sc, colours))
        if is_heldout(lab) == want_heldout:
            lab["heldout"] = want_heldout
            lab["description"] = describe(lab)
            return lab


def describe(lab):
    m = lab["object"]
    e = lab["event"]
    what = f"{m['colour']} {m['shape']}"
    where = scenes.pos_phrase(m["row"], m["col"])
    if e == "move":
        s = f"a {m['size']} {what} moves from the {m['pos']} to the {lab['to_pos']}"
    elif e == "grow":
        s = f"a {what} {where} grows from small to large"
    elif e == "shrink":
        s = f"a {what} {where} shrinks from large to small"
    elif e == "change colour":
        s = f"a {m['size']} {what} {where} changes colour to {lab['to_colour']}"
    elif e == "appear":
        s = f"a {m['size']} {what} appears {where}"
    else:
        s = f"a {m['size']} {what} disappears from the {m['pos']}"
    for o in lab["static"]:
        s += f" while a {o['size']} {o['colour']} {o['shape']} stays {scenes.pos_phrase(o['row'], o['col'])}"
    return s + f", on a {lab['bg']} background"


def frames(lab, T):
    out = np.empty((T, scenes.SIZE, scenes.SIZE, 3), np.uint8)
    m = lab["object"]
    for t in range(T):
        a = t / (T - 1)
        o = dict(m)
        visible = True
        if lab["event"] == "move":
            tx, ty = scenes.cell_centre(lab["to_row"], lab["to_col"])
            o["x"] = m["x"] + a * (tx - m["x"])
            o["y"] = m["y"] + a * (ty - m["y"])
        elif lab["event"] in ("grow", "shrink"):
            r0, r1 = scenes.SIZES["small"], scenes.SIZES["large"]
            if lab["event"] == "shrink":
                r0, r1 = r1, r0
            o["r"] = r0 + a * (r1 - r0)
        elif lab["event"] == "change colour":
            if t >= T // 2:
                o["colour"] = lab["to_colour"]
        elif lab["event"] == "appear":
            visible = t >= T // 2
        elif lab["event"] == "disappear":
            visible = t < T // 2
        objs = list(lab["static"]) + ([o] if visible else [])
        out[t] = scenes.render({"bg": lab["bg"], "objects": objs})
    return out


ENCODE_CHUNK = 32


def write_mp4s(jobs, fps=FPS):
    """Encode each (path, uint8 [T,H,W,3] RGB frames) pair to H.264 (yuv420p), all with one
    ffmpeg process: one input and one libx264 output per clip. The files are byte for byte
    those of a process per clip (checked on the first 160 clips of the three splits) at a tenth of the time: such a process
    spends most of it starting."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["ffmpeg", "-loglevel", "error", "-y"]
        for i, (_, fr) in enumerate(jobs):
            raw = os.path.join(tmp, f"{i}.rgb")
            np.ascontiguousarray(fr).tofile(raw)
            cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{fr.shape[2]}x{fr.shape[1]}", "-r", str(fps), "-i", raw]
        for i, (path, _) in enumerate(jobs):
            cmd += ["-map", str(i), "-c:v", "libx264", "-preset", "fast", "-crf", "18", "-pix_fmt", "yuv420p", path]
        subprocess.run(cmd, check=True, capture_output=True)


def _job(chunk):
    todo = [(path, fr) for path, fr in chunk if not os.path.exists(path)]
    if todo:
        write_mp4s(todo)


def generate(out, counts, seed, T=8, procs=2):
    """counts: "train,val,test" clips. Each split draws from its own seeded stream, so larger
    counts keep every clip of smaller ones (the first clips are the same)."""
    counts = dict(zip(("train", "val", "test"), map(int, counts.split(","))))
    for si, (split, k) in enumerate(counts.items()):
        os.makedirs(os.path.join(out, split), exist_ok=True)
        rng = np.random.default_rng([seed, si])
        arr = np.empty((k, T, scenes.SIZE, scenes.SIZE, 3), np.uint8)
        jobs = []
        with open(os.path.join(out, f"{split}.jsonl"), "w") as f:
            for i in range(k):
                lab = sample_label(rng, split == "test")
                arr[i] = frames(lab, T)
                vid = f"{split}-{i:05d}"
                rec = {"id": vid, "mp4": f"{split}/{vid}.mp4", "frames": T, "fps": FPS, **lab}
                f.write(json.dumps(rec) + "\n")
                jobs.append((os.path.join(out, split, vid + ".mp4"), arr[i]))
        np.save(os.path.join(out, f"{split}.npy"), arr)
        with Pool(procs) as pool:
            list(pool.imap_unordered(_job, [jobs[i:i + ENCODE_CHUNK] for i in range(0, len(jobs), ENCODE_CHUNK)]))
    return counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/videos")
    ap.add_argument("--counts", default=COUNTS, help="train,val,test clips")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--procs", type=int, default=2)
    a = ap.parse_args(argv)
    t = time.time()
    counts = generate(a.out, a.counts, a.seed, a.frames, a.procs)
    print(f"videos: {counts} x {a.frames} frames -> {a.out} in {time.time() - t:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
