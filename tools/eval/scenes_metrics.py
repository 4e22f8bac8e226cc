"""Scoring for the synthetic scenes: parse canonical captions back into objects, and detect
the objects drawn in an image (colour, shape, size, position, count) by connected components
and template matching against the scene renderer's own shapes.
"""
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data"))
import scenes  # noqa: E402

POS_OF = {scenes.pos_name(r, c): (r, c) for r in range(3) for c in range(3)}
NUM = {n: i for i, n in enumerate(scenes.NUMBERS)}
PLURAL = {scenes.plural(s): s for s in scenes.SHAPES}


def _pos(phrase):
    p = phrase.strip()
    for pre in ("in the ", "at the ", "on the ", "the "):
        if p.startswith(pre):
            p = p[len(pre):]
            break
    return POS_OF.get(p)


def parse_caption(text):
    """Canonical caption (or one led by its count) → list of (size, colour, shape, (row, col)); None parts when unreadable."""
    text = text.strip()
    # a count-led caption (train.py --count-first: "two shapes: …") lists the same objects after it
    text = re.sub(r"^(?:zero|one|two|three|four|five) shapes?: ", "", text)
    # split "A, B and C" at the top level; group parts contain ": x and y" which we protect
    parts, groups = [], []
    where = r"the (?:top left|top right|bottom left|bottom right|top|bottom|left|right|center)"
    for m in re.finditer(rf"(\w+) (small|medium|large) (\w+) (\w+): ({where}(?:(?:, | and ){where})*)", text):
        groups.append(m.group(0))
    protected = text
    for i, g in enumerate(groups):
        protected = protected.replace(g, f"@{i}@", 1)
    for piece in re.split(r", | and ", protected):
        piece = piece.strip()
        if not piece:
            continue
        m = re.fullmatch(r"@(\d+)@", piece)
        if m:
            g = groups[int(m.group(1))]
            gm = re.match(r"(\w+) (small|medium|large) (\w+) (\w+): (.*)", g)
            n, size, colour, shapes_ = gm.group(1), gm.group(2), gm.group(3), gm.group(4)
            wheres = re.split(r", | and ", gm.group(5))
            for w in wheres:
                parts.append((size, colour, PLURAL.get(shapes_), _pos(w)))
            continue
        m = re.fullmatch(r"an? (small|medium|large) (\w+) (\w+) (.*)", piece)
        if m:
            parts.append((m.group(1), m.group(2), m.group(3), _pos(m.group(4))))
        else:
            parts.append((None, None, None, None))
    return parts


def label_objects(label):
    return [(o["size"], o["colour"], o["shape"], (o["row"], o["col"])) for o in label["objects"]]


HELDOUT_SHAPE = "shape, held-out colour × shape pairs"


def pair_objects(pred, truth):
    """Each true object with the predicted object at the same position (else the
    best-overlapping remaining one; (None,) * 4 when none is left): [(true, predicted)]."""
    left, pairs = list(pred), []
    for t in truth:
        best, bi = -1, None
        for i, p in enumerate(left):
            s = sum(a == b for a, b in zip(p, t)) + (2 if p[3] == t[3] else 0)
            if s > best:
                best, bi = s, i
        pairs.append((t, left.pop(bi) if bi is not None else (None, None, None, None)))
    return pairs


def match_scores(pred, truth):
    """Per-attribute hits for one scene, objects paired by pair_objects. Returns a dict of
    attribute → (hits, total), count → (0/1, 1) and HELDOUT_SHAPE → the shape hits of the true
    objects whose colour × shape pair training never shows (total 0 on train / val scenes)."""
    out = {k: [0, 0] for k in ("shape", "colour", "size", "position", HELDOUT_SHAPE)}
    for t, p in pair_objects(pred, truth):
        for k, j in (("size", 0), ("colour", 1), ("shape", 2), ("position", 3)):
            out[k][0] += p[j] == t[j]
            out[k][1] += 1
        if (t[1], t[2]) in scenes.HELDOUT_COLOUR_SHAPE:
            out[HELDOUT_SHAPE][0] += p[2] == t[2]
            out[HELDOUT_SHAPE][1] += 1
    out["count"] = [int(len(pred) == len(truth)), 1]
    return out


# ---------------------------------------------------------------- image detector

_TEMPLATES = {}


def _template(shape, size):
    key = (shape, size)
    if key not in _TEMPLATES:
        lab = {"bg": "black", "objects": [{"shape": shape, "colour": "white", "size": size, "x": 32.0, "y": 32.0}]}
        m = scenes.render(lab)[..., 0] > 128
        ys, xs = np.nonzero(m)
        _TEMPLATES[key] = (m, ys.mean(), xs.mean())
    return _TEMPLATES[key]


def _components(mask):
    """4-connected components of a boolean mask → list of index arrays."""
    h, w = mask.shape
    seen = np.zeros_like(mask)
    comps = []
    for y in range(h):
        for x in range(w):
            if mask[y, x] and not seen[y, x]:
                stack, pts = [(y, x)], []
                seen[y, x] = True
                while stack:
                    cy, cx = stack.pop()
                    pts.append((cy, cx))
                    for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                        if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                            seen[ny, nx] = True
                            stack.append((ny, nx))
                comps.append(np.array(pts))
    return comps


def detect(img):
    """uint8 [64,64,3] → (background name, [(size, colour, shape, (row, col))])."""
    img = img.astype(np.float32)
    names = list(scenes.COLOURS)
    pal = np.array([scenes.COLOURS[n] for n in names], np.float32)
    bgs = list(scenes.BACKGROUNDS)
    bgp = np.array([scenes.BACKGROUNDS[n] for n in bgs], np.float32)
    corners = np.concatenate([img[:4, :4].reshape(-1, 3), img[-4:, -4:].reshape(-1, 3),
                              img[:4, -4:].reshape(-1, 3), img[-4:, :4].reshape(-1, 3)])
    bg = bgs[int(np.argmin(((bgp[None] - np.median(corners, 0)[None]) ** 2).sum(-1)))]
    dist_bg = np.sqrt(((img - np.array(scenes.BACKGROUNDS[bg], np.float32)) ** 2).sum(-1))
    d = np.sqrt(((img[:, :, None, :] - pal[None, None]) ** 2).sum(-1))     # [64,64,10]
    colour_idx = d.argmin(-1)
    solid = (dist_bg > 60) & (d.min(-1) < 60)
    objs = []
    for ci in range(len(names)):
        for pts in _components(solid & (colour_idx == ci)):
            if len(pts) < 12:
                continue
            cy, cx = pts.mean(0)
            col = pal[ci]
            bgc = np.array(scenes.BACKGROUNDS[bg], np.float32)
            cov = np.clip(((img - bgc) @ (col - bgc)) / max(1.0, float((col - bgc) @ (col - bgc))), 0, 1)
            y0, y1 = max(0, int(cy) - 14), min(64, int(cy) + 15)
            x0, x1 = max(0, int(cx) - 14), min(64, int(cx) + 15)
            keep = np.zeros((64, 64), bool)
            keep[y0:y1, x0:x1] = True
            best, arg = None, None
            for shape in scenes.SHAPES:
                for size in scenes.SIZES:
                    _, ty, tx = _template(shape, size)
                    lab = {"bg": "black", "objects": [{"shape": shape, "colour": "white", "size": size,
                                                       "x": float(cx - (tx - 32.0)), "y": float(cy - (ty - 32.0))}]}
                    t = scenes.render(lab)[..., 0].astype(np.float32) / 255.0
                    err = np.abs(t - cov)[keep & ((t > 0.02) | (colour_idx == ci))].sum()
                    if best is None or err < best:
                        best, arg = err, (size, shape)
            r, c = min(2, int(cy // (64 / 3))), min(2, int(cx // (64 / 3)))
            objs.append((arg[0], names[ci], arg[1], (r, c)))
    return bg, objs
