"""Synthetic scenes: 64x64 RGB images of 1-3 coloured shapes on a 3x3 grid.

Deterministic from a seed. Each scene has a structured label, captions in several
phrasings and VQA pairs. Splits: train / val share one distribution; test holds every
scene that uses a held-out composition (a colour x shape pair, or a position x count
pair, listed in HELDOUT_*), which never occurs in train or val.

    /usr/bin/python3 tools/data/scenes.py --out data/scenes --n 20000 --seed 1
writes data/scenes/{train,val,test}.npy (uint8 [N,64,64,3]) and {split}.jsonl.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

SIZE = 64
SS = 4  # supersampling factor for antialiasing

SHAPES = ["circle", "square", "triangle", "star", "cross", "diamond", "hexagon", "ring"]
COLOURS = {
    "red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 90, 230),
    "yellow": (240, 220, 40), "orange": (250, 140, 20), "purple": (150, 60, 200),
    "pink": (250, 130, 190), "cyan": (40, 210, 220), "brown": (130, 80, 40),
    "white": (245, 245, 245),
}
BACKGROUNDS = {"black": (16, 16, 16), "gray": (100, 100, 100), "beige": (225, 215, 185)}
SIZES = {"small": 5.0, "medium": 7.5, "large": 10.0}  # radius in pixels
ROWS = ["top", "middle", "bottom"]
COLS = ["left", "center", "right"]
POS_NAMES = [["top left", "top", "top right"], ["left", "center", "right"],
             ["bottom left", "bottom", "bottom right"]]
NUMBERS = ["zero", "one", "two", "three", "four", "five"]

# Compositions never seen in train/val (test holds them).
HELDOUT_COLOUR_SHAPE = {("red", "star"), ("green", "triangle"), ("blue", "hexagon"),
                        ("yellow", "cross"), ("purple", "circle"), ("orange", "square"),
                        ("cyan", "diamond"), ("pink", "ring")}
HELDOUT_POS_COUNT = {((1, 1), 3), ((0, 0), 2), ((2, 2), 1), ((0, 2), 3)}


def pos_name(r, c):
    return POS_NAMES[r][c]


def pos_phrase(r, c):
    n = pos_name(r, c)
    if n == "center":
        return "in the center"
    if n in ("top", "bottom"):
        return f"at the {n}"
    if n in ("left", "right"):
        return f"on the {n}"
    return f"in the {n}"


def plural(shape):
    return {"cross": "crosses"}.get(shape, shape + "s")


# ---------------------------------------------------------------- rendering

def _grid():
    t = (np.arange(SIZE * SS, dtype=np.float32) + 0.5) / SS
    return np.meshgrid(t, t)  # x, y in pixel units


_GX, _GY = _grid()


def _polygon_mask(x, y, pts):
    """Even-odd point-in-polygon over a grid; pts [K,2]."""
    inside = np.zeros(x.shape, bool)
    k = len(pts)
    for i in range(k):
        x0, y0 = pts[i]
        x1, y1 = pts[(i + 1) % k]
        cond = (y0 > y) != (y1 > y)
        xi = (x1 - x0) * (y - y0) / (y1 - y0 + 1e-12) + x0
        inside ^= cond & (x < xi)
    return inside


def _regular(cx, cy, r, n, phase, r_inner=None):
    pts = []
    m = 2 * n if r_inner else n
    for i in range(m):
        a = phase + 2 * np.pi * i / m
        rr = r if (r_inner is None or i % 2 == 0) else r_inner
        pts.append((cx + rr * np.cos(a), cy + rr * np.sin(a)))
    return np.array(pts, np.float32)


def shape_mask(shape, cx, cy, r):
    """Boolean mask at SS x resolution."""
    x, y = _GX, _GY
    dx, dy = x - cx, y - cy
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "ring":
        d2 = dx * dx + dy * dy
        return (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)
    if shape == "square":
        s = r * 0.85
        return (np.abs(dx) <= s) & (np.abs(dy) <= s)
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= r
    if shape == "cross":
        w = r * 0.35
        return ((np.abs(dx) <= w) & (np.abs(dy) <= r)) | ((np.abs(dy) <= w) & (np.abs(dx) <= r))
    if shape == "triangle":
        return _polygon_mask(x, y, _regular(cx, cy + r * 0.15, r * 1.1, 3, -np.pi / 2))
    if shape == "hexagon":
        return _polygon_mask(x, y, _regular(cx, cy, r, 6, 0.0))
    if shape == "star":
        return _polygon_mask(x, y, _regular(cx, cy, r * 1.1, 5, -np.pi / 2, r * 0.45))
    raise ValueError(shape)


def render(label):
    """label -> uint8 [64,64,3], antialiased by SS x SS box filtering."""
    img = np.empty((SIZE * SS, SIZE * SS, 3), np.float32)
    img[:] = BACKGROUNDS[label["bg"]]
    for o in label["objects"]:
        m = shape_mask(o["shape"], o["x"], o["y"], o.get("r", SIZES[o["size"]]))
        img[m] = COLOURS[o["colour"]]
    img = img.reshape(SIZE, SS, SIZE, SS, 3).mean(axis=(1, 3))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- sampling

def cell_centre(r, c):
    cell = SIZE / 3.0
    return (c + 0.5) * cell, (r + 0.5) * cell


def heldout_kind(objs, n):
    cs = any((o["colour"], o["shape"]) in HELDOUT_COLOUR_SHAPE for o in objs)
    pc = any(((o["row"], o["col"]), n) in HELDOUT_POS_COUNT for o in objs)
    return cs, pc


def sample_label(rng, want_heldout):
    """Rejection-sample a scene whose held-out status equals want_heldout."""
    while True:
        n = int(rng.integers(1, 4))
        bg = str(rng.choice(list(BACKGROUNDS)))
        colours = [c for c in COLOURS if not (bg == "beige" and c == "white")]
        cells = rng.permutation(9)[:n]
        same = n > 1 and rng.random() < 0.3  # a group of identical shapes ("two blue squares")
        objs = []
        for i, cell in enumerate(cells):
            r, c = divmod(int(cell), 3)
            if same and i > 0:
                shape, colour, size = objs[0]["shape"], objs[0]["colour"], objs[0]["size"]
            else:
                shape = str(rng.choice(SHAPES))
                colour = str(rng.choice(colours))
                size = str(rng.choice(list(SIZES)))
            cx, cy = cell_centre(r, c)
            jit = 1.5
            objs.append({"shape": shape, "colour": colour, "size": size, "row": r, "col": c,
                         "pos": pos_name(r, c),
                         "x": round(float(cx + rng.uniform(-jit, jit)), 2),
                         "y": round(float(cy + rng.uniform(-jit, jit)), 2)})
        cs, pc = heldout_kind(objs, n)
        if (cs or pc) == want_heldout:
            objs.sort(key=lambda o: (o["row"], o["col"]))
            return {"bg": bg, "count": n, "objects": objs,
                    "heldout": {"colour_shape": cs, "pos_count": pc}}


# ---------------------------------------------------------------- language

def describe_object(o, rng, style):
    if style == 0:
        return f"a {o['size']} {o['colour']} {o['shape']} {pos_phrase(o['row'], o['col'])}"
    if style == 1:
        return f"a {o['colour']} {o['shape']} {pos_phrase(o['row'], o['col'])}"
    return f"{pos_phrase(o['row'], o['col'])} there is a {o['size']} {o['colour']} {o['shape']}"


def groups(label):
    """Objects grouped by (size, colour, shape) in order of first appearance."""
    g = {}
    for o in label["objects"]:
        g.setdefault((o["size"], o["colour"], o["shape"]), []).append(o)
    return list(g.items())


def join(parts):
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def captions(label, rng):
    """Several phrasings; the first is the canonical one (full attributes)."""
    objs = label["objects"]
    gs = groups(label)
    # canonical: group identical objects ("two large blue squares in the top left and the center")
    parts = []
    for (size, colour, shape), os_ in gs:
        if len(os_) == 1:
            parts.append(describe_object(os_[0], rng, 0))
        else:
            where = join([pos_phrase(o["row"], o["col"]).split(" ", 1)[1] for o in os_])
            parts.append(f"{NUMBERS[len(os_)]} {size} {colour} {plural(shape)}: {where}")
    caps = [join(parts)]
    caps.append(f"{NUMBERS[label['count']]} shape{'s' if label['count'] > 1 else ''} on a "
                f"{label['bg']} background: " + join([describe_object(o, rng, 1) for o in objs]))
    caps.append("; ".join(describe_object(o, rng, 2) for o in objs))
    caps.append(f"a picture of {join([describe_object(o, rng, 0) for o in objs])} "
                f"on {label['bg']}")
    return caps


def counted_caption(rec):
    """A scene record's canonical caption led by its number of objects ("two shapes: a small
    green cross in the top left and …"): train.py --count-first's caption target, so that the
    number is read off the picture before any object is written (docs/MODEL.md)."""
    n = rec["count"]
    return f"{NUMBERS[n]} shape{'s' if n > 1 else ''}: {rec['captions'][0]}"


# Captions by region (docs/FORMAT.md): REGION_QUESTION with {} → one of CAPTION_REGIONS is
# answered "a SIZE COLOUR SHAPE" or REGION_EMPTY (train.py's `cell` task); `loom caption`
# asks every region and composes the answers as region_caption does.
CAPTION_REGIONS = [pos_phrase(r, c) for r in range(3) for c in range(3)]
REGION_QUESTION, REGION_EMPTY = "what is {}?", "nothing"
# Every shape is its own mirror image left to right and the cells are centred, so a scene's
# mirror image is the scene of the mirrored label: region i lands on REGION_MIRROR[i].
REGION_MIRROR = [3 * r + (2 - c) for r in range(3) for c in range(3)]
# ... and an answer about the mirror image says "right" where the picture's says "left"
# (loom.mirror.token_pairs: `loom describe` reads a clip and its mirror image together).
MIRROR_WORDS = [(" left", " right")]


def region_answers(rec):
    """A scene record's answer about each region, in CAPTION_REGIONS' order."""
    cell = {(o["row"], o["col"]): f"a {o['size']} {o['colour']} {o['shape']}" for o in rec["objects"]}
    return [cell.get((r, c), REGION_EMPTY) for r in range(3) for c in range(3)]


def region_caption(answers):
    """The caption made of the regions' answers, as loom_caption_compose makes it: "a small
    red star in the top left and a large blue ring at the bottom"; REGION_EMPTY when all are."""
    parts = [f"{a} {p}" for a, p in zip(answers, CAPTION_REGIONS) if a != REGION_EMPTY]
    if not parts:
        return REGION_EMPTY
    return join(parts)


def vqa(label, rng):
    objs = label["objects"]
    qa = []
    shapes = [o["shape"] for o in objs]
    for o in objs:
        if shapes.count(o["shape"]) == 1:
            qa.append((f"what colour is the {o['shape']}?", o["colour"]))
            qa.append((f"where is the {o['shape']}?", o["pos"]))
            qa.append((f"what size is the {o['shape']}?", o["size"]))
        qa.append((f"what shape is {pos_phrase(o['row'], o['col'])}?", o["shape"]))
        qa.append((f"what colour is the shape {pos_phrase(o['row'], o['col'])}?", o["colour"]))
    s = str(rng.choice(SHAPES))
    qa.append((f"how many {plural(s)} are there?", NUMBERS[shapes.count(s)]))
    qa.append(("how many shapes are there?", NUMBERS[label["count"]]))
    c = str(rng.choice(list(COLOURS)))
    has = any(o["colour"] == c for o in objs)
    qa.append((f"is there anything {c}?", "yes" if has else "no"))
    qa.append(("what colour is the background?", label["bg"]))
    occupied = {(o["row"], o["col"]) for o in objs}
    free = [(r, cc) for r in range(3) for cc in range(3) if (r, cc) not in occupied]
    if free:
        r, cc = free[int(rng.integers(len(free)))]
        qa.append((f"what shape is {pos_phrase(r, cc)}?", "nothing"))
    return [{"q": q, "a": a} for q, a in qa]


# ---------------------------------------------------------------- splits

SPLIT_FRACTIONS = {"train": 0.9, "val": 0.05}


def split_counts(n):
    """train / val / test sizes of an n-scene set (train 90 %, val 5 %, test 5 %)."""
    return {"train": int(n * SPLIT_FRACTIONS["train"]), "val": int(n * SPLIT_FRACTIONS["val"]),
            "test": max(1, n // 20)}


def generate(out, n, seed, counts=None):
    """counts {split: size} overrides the sizes from n. Each split draws from its own seeded
    stream, so a larger count keeps every scene of a smaller one (the same first scenes)."""
    os.makedirs(out, exist_ok=True)
    counts = counts or split_counts(n)
    stats = {}
    for si, (split, k) in enumerate(counts.items()):
        rng = np.random.default_rng([seed, si])
        imgs = np.empty((k, SIZE, SIZE, 3), np.uint8)
        with open(os.path.join(out, f"{split}.jsonl"), "w") as f:
            for i in range(k):
                lab = sample_label(rng, want_heldout=(split == "test"))
                imgs[i] = render(lab)
                rec = {"id": f"{split}-{i:06d}", **lab, "captions": captions(lab, rng),
                       "vqa": vqa(lab, rng)}
                f.write(json.dumps(rec) + "\n")
        np.save(os.path.join(out, f"{split}.npy"), imgs)
        stats[split] = k
    return stats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/scenes")
    ap.add_argument("--n", type=int, default=20000, help="train+val+test size (train 90%%)")
    ap.add_argument("--counts", default="",
                    help="TRAIN,VAL,TEST sizes instead of --n's split (e.g. 100000,1000,1000: more "
                         "training scenes; val and test, and the first training scenes, stay the same)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    t = time.time()
    counts = dict(zip(("train", "val", "test"), map(int, a.counts.split(",")))) if a.counts else None
    stats = generate(a.out, a.n, a.seed, counts)
    print(f"scenes: {stats} -> {a.out} in {time.time() - t:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
