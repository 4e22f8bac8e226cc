"""Parity fixtures for the bundled loom-tiny: the PyTorch model's greedy outputs on 20 test
inputs of every job, which tests/test_tiny_parity.c asks loom's C pipeline to reproduce.

    /usr/bin/python3 tools/parity/make_tiny_fixtures.py [--run runs/tiny] [--n 20]

First re-exports the checkpoint and checks the files are byte-identical to models/ (so the
reference really is the bundled model), then writes tests/data/tiny/:
  img_NN.png          test scenes                       (caption; region: the question about
                      one region, in two views, on a model with loom.caption.*)
  speech_NN.flac      held-out-voice utterances (lossless copies of the WAVs)  (transcribe)
  video_NN.png        8 test video frames stacked vertically ([8·64][64][3]) (describe)
  prompts.txt         "t2i TEXT" / "tts TEXT" lines; "region K": the region asked of picture i
  expected.txt        "job index id,id,…" greedy answers / codes (cfg 3 for media; tts of a
                      loom.audio.words model: the block's token ids, its words spelt in it)
  margins.txt         "job index m,m,…" PyTorch's top-2 logit gap at each of those steps: where
                      loom's F16 arithmetic may break a near-tie the other way
  beam.txt            "transcribe index id,id,… gap" the same utterances' transcripts by beam
                      search (4 beams) and the smallest score gap of its decisions, then
                      "transcribe_ctc …" the same with the CTC head's scores (weight 0.3, as
                      loom transcribe)
  scores.txt          "job i j logprob gap": log p(input j's greedy answer + <|end|> | input
                      i's turn), for j = i and the next input (loom_session_score, --best-of),
                      and the smallest routing gap of that forward (k-th vs next expert score)

`--scores-only` writes scores.txt alone, from the bundled files and the fixtures already in
tests/data/tiny (no checkpoint needed).
"""
import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.loompy import mel, png  # noqa: E402
from tools.train import infer, train, unified as U  # noqa: E402

OUT = "tests/data/tiny"
BEAMS = 4


def read_rgb(path):
    """A PNG fixture → uint8 [h][w][3] (ffmpeg; the width is 64)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 64, 3)


def fixture_turn(job, i):
    """Input i's user turn for a text job, from the fixture files (what test_tiny_parity.c reads)."""
    if job == "caption":
        return [("ctl", "<|image|>"), ("image", read_rgb(f"{OUT}/img_{i:02d}.png")), ("ctl", "<|/image|>"),
                ("text", U.PROMPTS["caption"])]
    if job == "describe":
        return [("ctl", "<|video|>"), ("video", read_rgb(f"{OUT}/video_{i:02d}.png").reshape(-1, 64, 64, 3)),
                ("ctl", "<|/video|>"), ("text", U.PROMPTS["video"])]
    with tempfile.TemporaryDirectory() as d:
        wav = os.path.join(d, "a.wav")
        subprocess.run(["ffmpeg", "-v", "error", "-i", f"{OUT}/speech_{i:02d}.flac", wav], check=True)
        m = mel.log_mel(mel.read_wav16(wav), 80)
    return [("ctl", "<|audio|>"), ("audio", m), ("ctl", "<|/audio|>"), ("text", U.PROMPTS["transcribe"])]


@torch.no_grad()
def write_scores(model, tok, n):
    """scores.txt: each input's own greedy answer and the next input's, scored under its turn."""
    model.eval()
    answers = {}
    with open(f"{OUT}/expected.txt") as f:
        for line in f:
            job, i, ids = line.split()
            answers[job, int(i)] = [] if ids == "-" else [int(t) for t in ids.split(",")]
    end = tok.ctl["<|end|>"]
    out = []
    for job in ("caption", "transcribe", "describe"):
        for i in range(n):
            X = infer._prefix(model, tok, fixture_turn(job, i))
            for j in (i, (i + 1) % n):
                ids = answers[job, j] + [end]
                Y = torch.cat([X, model.dec.token_embd[ids[:-1]][None]], 1)
                lp = model.dec(Y)[0, X.shape[1] - 1:].double().log_softmax(-1)
                out.append(f"{job} {i} {j} {float(lp.gather(-1, torch.tensor(ids)[:, None]).sum()):.6f} "
                           f"{infer.route_gap(model):.4g}")
    with open(f"{OUT}/scores.txt", "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {len(out)} scores to {OUT}/scores.txt")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="runs/tiny")
    ap.add_argument("--data", default="data")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--cfg", type=float, default=3.0)
    ap.add_argument("--scores-only", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.scores_only:
        write_scores(U.load_gguf("models/loom-tiny"), U.Tok("models/loom-tiny-vocab.gguf"), a.n)
        return
    model = train.load(a.run)
    with tempfile.TemporaryDirectory() as d:
        U.export(model, "models/loom-tiny-vocab.gguf", os.path.join(d, "loom-tiny"))   # rounds weights
        for f in ("loom-tiny.gguf", "loom-tiny-mmproj.gguf"):
            assert filecmp.cmp(os.path.join(d, f), os.path.join("models", f), shallow=False), \
                f"models/{f} is not this checkpoint's export"
    tok = U.Tok("models/loom-tiny-vocab.gguf")
    os.makedirs(OUT, exist_ok=True)
    test = train.Data(a.data, "test")
    lines, prompts, gaps, rgaps, beams, ctc_beams = [], [], [], [], [], []
    n = a.n

    def add(job, i, ids, margins, route):
        lines.append(f"{job} {i} {','.join(map(str, ids)) or '-'}")
        gaps.append(f"{job} {i} {','.join(f'{g:.4g}' for g in margins)}")
        rgaps.append(f"{job} {i} {','.join(f'{g:.4g}' for g in route)}")

    for i in range(n):
        img = np.asarray(test.scenes[i])
        png.write_png(f"{OUT}/img_{i:02d}.png", img)
        g, r = [], []
        add("caption", i, infer.answer_ids(model, tok, [("ctl", "<|image|>"), ("image", img), ("ctl", "<|/image|>"),
                                                        ("text", U.PROMPTS["caption"])], margins=g, route_margins=r), g, r)
    for i in range(n):
        rec = test.speech["meta"][i]
        wav = os.path.join(a.data, "speech", rec["wav"])
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", wav, "-c:a", "flac", f"{OUT}/speech_{i:02d}.flac"], check=True)
        m = mel.log_mel(mel.read_wav16(wav), 80)
        g, r = [], []
        user = [("ctl", "<|audio|>"), ("audio", m), ("ctl", "<|/audio|>"), ("text", U.PROMPTS["transcribe"])]
        add("transcribe", i, infer.answer_ids(model, tok, user, margins=g, route_margins=r), g, r)
        g = []
        ids = infer.beam_ids(model, tok, user, BEAMS, margins=g)
        beams.append(f"transcribe {i} {','.join(map(str, ids)) or '-'} {min(g):.4g}")
        g = []
        ids = infer.beam_ids(model, tok, user, BEAMS, margins=g, ctc=infer.ctc_logprobs(model, m), ctc_weight=0.3)
        ctc_beams.append(f"transcribe_ctc {i} {','.join(map(str, ids)) or '-'} {min(g):.4g}")
    for i in range(n):
        frames = np.asarray(test.videos[i])
        png.write_png(f"{OUT}/video_{i:02d}.png", frames.reshape(-1, frames.shape[2], 3))
        g, r = [], []
        # as loom describe: the clip and its mirror image, opening with the object that changes (the
        # export writes loom.mirror.token_pairs and loom.describe.mover with the caption regions)
        add("describe", i, infer.video_answer_ids(model, tok, frames, mirror=model.c.caption_regions,
                                                  mover=model.c.caption_regions, margins=g, route_margins=r), g, r)
    if model.c.caption_regions:   # one region question per test scene, as loom caption asks it: of
        for i in range(n):        # the picture and of its mirror image. The region: one whose answer
            img = np.asarray(test.scenes[i])   # the second view changes, else one holding an object
            one, two = infer.region_answer_ids(model, tok, img, mirror=False), infer.region_answer_ids(model, tok, img)
            cands = ([k for k in range(len(one)) if one[k] != two[k]] or
                     [k for k in range(len(one)) if tok.decode(one[k]) != U.REGION_EMPTY] or list(range(len(one))))
            k = cands[i % len(cands)]
            prompts.append(f"region {k}")
            g, r = [], []
            add("region", i, infer.region_answer_ids(model, tok, img, regions=[k], margins=g, route_margins=r)[0], g, r)
    for i in range(n):
        text = test.scene_meta[i]["captions"][0]
        prompts.append(f"t2i {text}")
        g, r = [], []
        add("t2i", i, infer.generate_codes(model, tok, [("text", U.PROMPTS["t2i"] + text)], "<|image|>",
                                           U.IMAGE_START, U.IMAGE_START + U.IMAGE_COUNT, U.GRID * U.GRID, cfg=a.cfg,
                                           margins=g, route_margins=r), g, r)
    for i in range(n):
        text = test.speech["meta"][i]["text"]
        prompts.append(f"tts {text}")
        g, r, block = [], [], []
        codes = infer.generate_codes(model, tok, [("text", U.PROMPTS["tts"] + text)], "<|audio|>",
                                     U.AUDIO_START, U.AUDIO_START + U.AUDIO_COUNT, 250, cfg=a.cfg,
                                     close=tok.ctl["<|/audio|>"], margins=g, route_margins=r,
                                     words=text if model.c.speech_words else None, block=block)
        # a loom.audio.words model's line is the whole block (token ids, its words spelt in it)
        add("tts", i, block if model.c.speech_words else codes, g, r)
        print(f"tts {i} done", flush=True)
    with open(f"{OUT}/expected.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(f"{OUT}/margins.txt", "w") as f:
        f.write("\n".join(gaps) + "\n")
    with open(f"{OUT}/route_margins.txt", "w") as f:
        f.write("\n".join(rgaps) + "\n")
    with open(f"{OUT}/beam.txt", "w") as f:
        f.write("\n".join(beams + ctc_beams) + "\n")
    with open(f"{OUT}/prompts.txt", "w") as f:
        f.write("\n".join(prompts) + "\n")
    print(f"wrote {len(lines)} expectations to {OUT}")
    write_scores(model, tok, n)


if __name__ == "__main__":
    main()
