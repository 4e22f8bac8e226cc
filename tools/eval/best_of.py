"""How well `--best-of N` ranks: the candidates of `loom imagine` / `loom speak` scored outside
the command, so that the ranking can be compared with other scores and with readers the
ranking does not use (docs/MODEL.md, "Best of N").

    /usr/bin/python3 tools/eval/best_of.py t2i [--n 100] [--N 8] [--split val]
    /usr/bin/python3 tools/eval/best_of.py tts [--n 200] [--N 8] [--split test]

t2i: N pictures per prompt from `loom imagine --seed i+k` (the seeds `--best-of N --seed i`
     makes); each is read back by the PyTorch twin of the bundled model (log p of the prompt's
     tokens + <|end|> in the caption turn, per token). Several scores pick a candidate: the
     full sum (what loom uses), without <|end|>, without the shape words, the worst token; the
     scene detector scores each pick, the first candidate and the detector's own best (the
     ceiling of any ranking).
tts: one clip (`--best-of 1`) and the kept one of N (`--best-of N`) per prompt, transcribed by
     the CTC head alone, greedily: a reader the ranking (the decoder's score) does not use.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools.eval import scenes_metrics as S  # noqa: E402
from tools.eval.run_eval import norm_text, read_png, records, wer_counts  # noqa: E402
from tools.loompy import mel  # noqa: E402
from tools.train import infer, unified as U  # noqa: E402

SHAPES = ("circle", "square", "triangle", "star", "cross", "heart", "diamond", "hexagon", "ring", "pentagon")
KEYS = ("shape", "colour", "position", "count")


def loom(a, *args):
    subprocess.run([a.loom, *args, "-m", a.model, "-q", "-t", "1"], check=True)


@torch.no_grad()
def caption_logprobs(model, tok, img, text):
    """Per-token log p of text + <|end|> as img's caption → (log-probs, token ids)."""
    X, Y = U.build(model, tok, [U.turn([("ctl", "<|image|>"), ("image", img), ("ctl", "<|/image|>"),
                                        ("text", U.PROMPTS["caption"])], [("text", text)])])
    lp = model.dec(X)[0].double().log_softmax(-1)
    y = Y[0][Y[0] != -100]
    return lp[Y[0] != -100].gather(-1, y[:, None])[:, 0].numpy(), y.numpy()


def t2i(a, model, tok, tmp):
    meta = records(os.path.join(a.data, "scenes", f"{a.split}.jsonl"))[:a.n]
    shape_ids = {i for w in SHAPES for i in tok.text(" " + w) + tok.text(w)}
    scores = {
        "full (loom's)": lambda lp, y: lp.sum(),
        "without <|end|>": lambda lp, y: lp[:-1].sum(),
        "without shape words": lambda lp, y: sum(v for v, t in zip(lp, y) if t not in shape_ids),
        "worst token": lambda lp, y: lp.min(),
    }
    picks = ["first candidate"] + list(scores) + ["detector's best (ceiling)"]
    tot = {p: {k: [0, 0] for k in KEYS + ("all",)} for p in picks}

    def add(p, sc):
        for k in KEYS:
            h, n = sc.get(k, (0, 0))
            tot[p][k][0] += h
            tot[p][k][1] += n
        tot[p]["all"][0] += all(h == n for k, (h, n) in sc.items() if k != "size")
        tot[p]["all"][1] += 1

    for i, m in enumerate(meta):
        cands = []
        for k in range(a.N):
            path = os.path.join(tmp, f"{i}_{k}.png")
            loom(a, "imagine", "-p", m["captions"][0], "-o", path, "--seed", str(i + k))
            img = read_png(path)
            cands.append((caption_logprobs(model, tok, img, m["captions"][0]),
                          S.match_scores(S.detect(img)[1], S.label_objects(m))))
        add("first candidate", cands[0][1])
        for name, f in scores.items():
            add(name, cands[max(range(a.N), key=lambda k: f(*cands[k][0]))][1])
        add("detector's best (ceiling)", max((c[1] for c in cands),
                                             key=lambda sc: sum(h for k, (h, _) in sc.items() if k in KEYS)))
    print(f"text to image, {len(meta)} {a.split} prompts, {a.N} candidates each: colour / shape / position / count / all")
    for p in picks:
        t = tot[p]
        print(f"  {p:28s}", " / ".join(f"{100 * t[k][0] / max(t[k][1], 1):.1f}" for k in ("colour", "shape", "position",
                                                                                          "count", "all")), "%")


def tts(a, model, tok, tmp):
    meta = records(os.path.join(a.data, "speech", f"{a.split}.jsonl"))[:a.n]
    for N in (1, a.N):
        err = words = 0
        for i, r in enumerate(meta):
            wav = os.path.join(tmp, f"{N}_{i}.wav")
            loom(a, "speak", "-p", r["text"], "-o", wav, "--seed", str(i), "--best-of", str(N))
            lp = infer.ctc_logprobs(model, mel.log_mel(mel.read_wav16(wav), 80))
            path = lp.argmax(-1)
            blank = lp.shape[1] - 1
            ids = [int(t) for k, t in enumerate(path) if t != blank and (k == 0 or t != path[k - 1])]
            e, n = wer_counts(norm_text(r["text"]), norm_text(tok.decode(ids)))
            err += e
            words += n
        print(f"text to speech, {len(meta)} {a.split} prompts, --best-of {N}: WER of the CTC head's greedy "
              f"transcripts {100 * err / words:.1f} %", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("job", choices=("t2i", "tts"))
    ap.add_argument("--loom", default=os.path.join(ROOT, "build", "loom"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "loom-tiny.gguf"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data"))
    ap.add_argument("--split", default=None, help="default: val for t2i, test for tts")
    ap.add_argument("--n", type=int, default=None, help="prompts (default: 100 for t2i, 200 for tts)")
    ap.add_argument("--N", type=int, default=8, help="candidates per prompt")
    a = ap.parse_args()
    a.split = a.split or ("val" if a.job == "t2i" else "test")
    a.n = a.n or (100 if a.job == "t2i" else 200)
    torch.set_num_threads(1)
    stem = a.model[:-5] if a.model.endswith(".gguf") else a.model
    model = U.load_gguf(stem)
    model.eval()
    tok = U.Tok(os.path.join(os.path.dirname(a.model), "loom-tiny-vocab.gguf"))
    with tempfile.TemporaryDirectory() as tmp:
        (t2i if a.job == "t2i" else tts)(a, model, tok, tmp)


if __name__ == "__main__":
    main()
