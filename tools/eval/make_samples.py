"""Sample outputs of the bundled model for docs/: a grid of `loom imagine` pictures (prompts
printed), the same prompts with `--best-of 8`, one `loom speak` WAV and one `loom animate` MP4,
all from test-split prompts.

    /usr/bin/python3 tools/eval/make_samples.py [--loom build/loom] [--model models/loom-tiny.gguf]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools.eval.run_eval import read_png, records  # noqa: E402
from tools.loompy import png  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loom", default=os.path.join(ROOT, "build", "loom"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "loom-tiny.gguf"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs"))
    ap.add_argument("--n", type=int, default=8)
    a = ap.parse_args()
    run = lambda *args: subprocess.run([a.loom, *args, "-m", a.model, "-q"], check=True, capture_output=True, text=True)
    scenes = records(os.path.join(a.data, "scenes", "test.jsonl"))[:a.n]
    for best_of, name in ((1, "tiny_imagine_samples.png"), (8, "tiny_imagine_best_of_8.png")):
        with tempfile.TemporaryDirectory() as tmp:
            tiles = []
            for i, m in enumerate(scenes):
                p = os.path.join(tmp, f"{i}.png")
                run("imagine", "-p", m["captions"][0], "-o", p, "--seed", str(i), "--best-of", str(best_of))
                tiles.append(read_png(p))
                if best_of == 1:
                    print(f"{i}: {m['captions'][0]}")
            grid = np.full((64 * 2 + 2, 64 * ((a.n + 1) // 2) + (a.n + 1) // 2 - 1, 3), 255, np.uint8)
            for i, t in enumerate(tiles):
                y, x = divmod(i, (a.n + 1) // 2)
                grid[y * 66:y * 66 + 64, x * 65:x * 65 + 64] = t
            png.write_png(os.path.join(a.out, name), grid)
    text = records(os.path.join(a.data, "speech", "test.jsonl"))[0]["text"]
    run("speak", "-p", text, "-o", os.path.join(a.out, "tiny_speak.wav"), "--seed", "0")
    heard = run("transcribe", os.path.join(a.out, "tiny_speak.wav")).stdout.strip()
    print(f"speak: {text!r} → loom hears {heard!r}")
    clip = records(os.path.join(a.data, "videos", "test.jsonl"))[0]["description"]
    run("animate", "-p", clip, "-o", os.path.join(a.out, "tiny_animate.mp4"), "--seed", "0")
    print(f"animate: {clip}")


if __name__ == "__main__":
    main()
