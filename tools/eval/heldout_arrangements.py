"""Where the test split's caption drop comes from: captions scored separately on the test
scenes that hold a held-out position x count pair (an object in a cell that scenes with that
many objects never use in training; tools/data/scenes.py, HELDOUT_POS_COUNT) and on the
others, beside what the training-only attribute head reads from the same image rows.

    /usr/bin/python3 tools/eval/heldout_arrangements.py [--model models/loom-tiny.gguf]
                                                        [--run runs/v21] [--n 200] [--scan] [--cells]
                                                        [--confusion] [--ask-count] [--by-pair] [--split val]

Captions come from `loom caption` on --model. The attribute head needs --run: a training run
directory whose ckpt.pt holds it (the GGUF files do not carry it). Without --run only the
caption rows print. --scan also asks the run's PyTorch model for the `scan` task's answer
(tools/train/train.py: every cell in reading order, its object or "nothing") and scores it
the same way; --cells asks it about each of the nine cells on its own (the `cell` task: "what
is in the top left?" → an object or "nothing"). --confusion prints which shape the captions
name for which; --ask-count asks loom "how many shapes are there?" about each picture; --by-pair
splits the held-out pictures by the pair they hold and counts the objects their captions name. Results and their reading are in docs/MODEL.md ("It cannot, yet").
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools.eval import scenes_metrics as S  # noqa: E402
from tools.eval.run_eval import loom, records  # noqa: E402
from tools.loompy import png  # noqa: E402

ATTRS = ("position", "count", "colour", "size", "shape", "shape, count right")


def group_of(m):
    return "with a held-out position x count pair" if m["heldout"]["pos_count"] else "with none"


def caption_scores(a, imgs, meta):
    """group → {attribute: [right, total]} from loom's captions, plus "shape, count right" (the
    shapes of scenes whose caption has the right number of objects) and "confusion" (true
    shape → predicted shape → objects; None: no object left to pair with)."""
    paths = []
    for i in range(len(meta)):
        paths.append(os.path.join(a.tmp, f"scene_{i:04d}.png"))
        png.write_png(paths[-1], np.asarray(imgs[i]))
    text, _ = loom(a, "caption", "--json", *paths)
    out = {}
    for line, m in zip(text.strip().splitlines(), meta):
        d = out.setdefault(group_of(m), {"images": 0, "confusion": {}})
        d["images"] += 1
        pred, truth = S.parse_caption(json.loads(line)["text"]), S.label_objects(m)
        for k, (h, n) in S.match_scores(pred, truth).items():
            d.setdefault(k, [0, 0])
            d[k][0] += h
            d[k][1] += n
        for t, p in S.pair_objects(pred, truth):
            row = d["confusion"].setdefault(t[2], {})
            row[p[2]] = row.get(p[2], 0) + 1
            if len(pred) == len(truth):
                d.setdefault("shape, count right", [0, 0])
                d["shape, count right"][0] += p[2] == t[2]
                d["shape, count right"][1] += 1
    return out


def heldout_pairs(m):
    """The held-out (cell, count) pairs a scene holds, as text: "((0, 0), 2)"."""
    cells = {(o["row"], o["col"]) for o in m["objects"]}
    return " + ".join(str(p) for p in sorted(S.scenes.HELDOUT_POS_COUNT) if p[1] == m["count"] and p[0] in cells)


def by_pair(a, meta):
    """held-out pair(s) → [images, count right, {objects named: captions}], from the captions
    caption_scores had loom write (read again: `loom caption` is deterministic)."""
    paths = [os.path.join(a.tmp, f"scene_{i:04d}.png") for i in range(len(meta))]
    text, _ = loom(a, "caption", "--json", *paths)
    out = {}
    for line, m in zip(text.strip().splitlines(), meta):
        if not m["heldout"]["pos_count"]:
            continue
        named = len(S.parse_caption(json.loads(line)["text"]))
        d = out.setdefault(heldout_pairs(m), [0, 0, {}])
        d[0] += 1
        d[1] += named == m["count"]
        d[2][named] = d[2].get(named, 0) + 1
    return out


def count_answers(a, meta):
    """group → [images, right]: loom's answers to "how many shapes are there?" (a `vqa` question),
    on the pictures caption_scores wrote."""
    paths = [os.path.join(a.tmp, f"scene_{i:04d}.png") for i in range(len(meta))]
    text, _ = loom(a, "caption", "--json", "-p", "how many shapes are there?", *paths)
    out = {}
    for line, m in zip(text.strip().splitlines(), meta):
        d = out.setdefault(group_of(m), [0, 0])
        d[0] += 1
        d[1] += json.loads(line)["text"].strip().rstrip(".") == S.scenes.NUMBERS[m["count"]]
    return out


def print_confusion(g, conf):
    cols = [sh for sh in S.scenes.SHAPES] + [None]
    print(f"\nshape confusion, test pictures {g} (rows: the true shape, columns: the caption's):")
    print("| true \\ caption | " + " | ".join(str(c) if c else "none" for c in cols) + " | right |")
    for sh in S.scenes.SHAPES:
        row = conf.get(sh, {})
        n = sum(row.values())
        print(f"| {sh} | " + " | ".join(str(row.get(c, 0)) for c in cols) +
              (f" | {100 * row.get(sh, 0) / n:.1f} % |" if n else " | - |"))


def head_scores(a, imgs, meta):
    """group → images, all nine cells' occupancy right, count right, shape of occupied cells."""
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
    import unified as U
    from train import load
    torch.set_num_threads(1)
    model = load(a.run)
    empty = len(U.SCENE_ATTRS[0][1])
    out = {}
    with torch.no_grad():
        for b0 in range(0, len(meta), 50):
            idx = range(b0, min(b0 + 50, len(meta)))
            shape = model.attr_logits(model.image_rows(np.stack([imgs[i] for i in idx])))[0].argmax(-1)
            for j, i in enumerate(idx):
                t = U.scene_targets(meta[i])
                occ_true, occ_pred = t[:, 0] < empty, shape[j] < empty
                d = out.setdefault(group_of(meta[i]), [0, 0, 0, 0, 0])
                d[0] += 1
                d[1] += bool((occ_true == occ_pred).all())
                d[2] += int(occ_pred.sum()) == int(occ_true.sum())
                d[3] += int((shape[j][occ_true] == t[occ_true, 0]).sum())
                d[4] += int(occ_true.sum())
    return out


def scan_scores(a, imgs, meta):
    """group → images, all nine cells' occupancy right, count right, objects whose cell names
    exactly their size, colour and shape, from the run's greedy answers to the scan prompt."""
    import torch
    from tools.train import infer, unified as U
    from tools.train.train import load, scan_answer
    torch.set_num_threads(1)
    model = load(a.run)
    tok = U.Tok(os.path.join(os.path.dirname(a.model), "loom-tiny-vocab.gguf"))
    out, shown = {}, 0
    for i, m in enumerate(meta):
        user = [("ctl", "<|image|>"), ("image", np.asarray(imgs[i])), ("ctl", "<|/image|>"),
                ("text", U.PROMPTS["scan"])]
        text = tok.decode(infer.answer_ids(model, tok, user))
        got = cells_of(text)
        want = cells_of(scan_answer(m))
        occ = [got.get(c, "?") != "nothing" for c in want]
        d = out.setdefault(group_of(m), [0, 0, 0, 0, 0])
        d[0] += 1
        d[1] += all(o == (want[c] != "nothing") for o, c in zip(occ, want))
        d[2] += sum(occ) == len(m["objects"])
        d[3] += sum(got.get(c) == w for c, w in want.items() if w != "nothing")
        d[4] += len(m["objects"])
        if m["heldout"]["pos_count"] and got != want and shown < 3:
            shown += 1
            print(f"  scan, test {i}: {scan_answer(m)}\n     →  {text}")
    return out


def cell_scores(a, imgs, meta):
    """As scan_scores, from nine separate questions per picture (no other cell in the context)."""
    import torch
    from tools.train import infer, unified as U
    from tools.train.train import cell_question, load
    torch.set_num_threads(1)
    model = load(a.run)
    tok = U.Tok(os.path.join(os.path.dirname(a.model), "loom-tiny-vocab.gguf"))
    out = {}
    for i, m in enumerate(meta):
        img = np.asarray(imgs[i])
        right_occ = right_obj = n_occ = 0
        for r in range(3):
            for c in range(3):
                q, want = cell_question(m, r, c)
                user = [("ctl", "<|image|>"), ("image", img), ("ctl", "<|/image|>"), ("text", q)]
                got = tok.decode(infer.answer_ids(model, tok, user, n_max=16)).strip()
                right_occ += (got != "nothing") == (want != "nothing")
                right_obj += want != "nothing" and got == want
                n_occ += got != "nothing"
        d = out.setdefault(group_of(m), [0, 0, 0, 0, 0])
        d[0] += 1
        d[1] += right_occ == 9
        d[2] += n_occ == len(m["objects"])
        d[3] += right_obj
        d[4] += len(m["objects"])
    return out


def print_cells(res):
    print("| test pictures | images | all nine cells' occupancy | count | objects named exactly in their cell |")
    for g, d in sorted(res.items(), reverse=True):
        print(f"| {g} | {d[0]} | {100 * d[1] / d[0]:.1f} % | {100 * d[2] / d[0]:.1f} % | {100 * d[3] / d[4]:.1f} % |")


def cells_of(answer):
    """'top left: nothing; top: a small red circle; …' → {cell: content}."""
    return dict(p.split(": ", 1) for p in answer.strip().rstrip(".").split("; ") if ": " in p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loom", default=os.path.join(ROOT, "build", "loom"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "loom-tiny.gguf"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data"))
    ap.add_argument("--run", default=None, help="training run whose attribute head to read")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--scan", action="store_true", help="also score the run's answers to the scan prompt")
    ap.add_argument("--cells", action="store_true", help="also score its answers about each cell alone")
    ap.add_argument("--confusion", action="store_true", help="also print which shapes the captions take for which")
    ap.add_argument("--ask-count", action="store_true", help="also ask loom \"how many shapes are there?\"")
    ap.add_argument("--by-pair", action="store_true",
                    help="also split the held-out pictures by their pair ((cell), count) and count the objects named")
    ap.add_argument("--split", default="test", help="test, or val (the training distribution: no held-out pairs)")
    a = ap.parse_args()
    a.threads = 1
    a.tmp = tempfile.mkdtemp()
    imgs = np.load(os.path.join(a.data, "scenes", f"{a.split}.npy"), mmap_mode="r")
    meta = records(os.path.join(a.data, "scenes", f"{a.split}.jsonl"))[:a.n]

    print(f"captions by `loom caption` ({os.path.basename(a.model)}), first {len(meta)} {a.split} pictures:")
    print(f"| {a.split} pictures | images | {' | '.join(ATTRS)} |")
    caps = caption_scores(a, imgs, meta)
    for g, d in sorted(caps.items(), reverse=True):
        cells = [f"{100 * d[k][0] / d[k][1]:.1f} %" if d.get(k, [0, 0])[1] else "-" for k in ATTRS]
        print(f"| {g} | {d['images']} | {' | '.join(cells)} |")
    if a.ask_count:
        print("\nanswers to \"how many shapes are there?\" on the same pictures:")
        for g, (n, right) in sorted(count_answers(a, meta).items(), reverse=True):
            print(f"| {g} | {n} | {100 * right / n:.1f} % |")
    if a.by_pair:
        print("\ncaptions of the held-out pictures by the pair they hold ((row, column), objects in the scene):")
        print("| held-out pair | images | count right | captions naming 1 / 2 / 3 / 4 objects |")
        for g, (n, right, named) in sorted(by_pair(a, meta).items()):
            print(f"| {g} | {n} | {100 * right / n:.1f} % | {' / '.join(str(named.get(k, 0)) for k in range(1, 5))} |")
    if a.confusion:
        for g, d in sorted(caps.items(), reverse=True):
            print_confusion(g, d["confusion"])
    if a.run:
        print(f"\nthe attribute head of {a.run} on the same pictures' image rows:")
        print("| test pictures | images | all nine cells' occupancy | count | shape of occupied cells |")
        for g, d in sorted(head_scores(a, imgs, meta).items(), reverse=True):
            print(f"| {g} | {d[0]} | {100 * d[1] / d[0]:.1f} % | {100 * d[2] / d[0]:.1f} % | {100 * d[3] / d[4]:.1f} % |")
    if a.run and a.scan:
        print(f"\n{a.run}'s answers to \"List every cell of the grid.\" on the same pictures:")
        res = scan_scores(a, imgs, meta)
        print_cells(res)
    if a.run and a.cells:
        print(f"\n{a.run}'s answers to \"what is in the top left?\" and the like, nine per picture:")
        print_cells(cell_scores(a, imgs, meta))


if __name__ == "__main__":
    main()
