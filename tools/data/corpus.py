"""Collect the text of the synthetic worlds (scene captions and VQA, speech transcripts,
video descriptions; train splits only) into one file for the BPE trainer.

    /usr/bin/python3 tools/data/corpus.py --data data --out data/corpus.txt
    /usr/bin/python3 tools/loompy/bpe.py train --text data/corpus.txt --vocab 2048 \
        --out models/loom-tiny-vocab.gguf
"""
import argparse
import json
import os


def lines(path):
    with open(path) as f:
        for line in f:
            yield json.loads(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data")
    ap.add_argument("--out", default="data/corpus.txt")
    a = ap.parse_args()
    out, n = [], 0
    for rec in lines(os.path.join(a.data, "scenes", "train.jsonl")):
        out += rec["captions"]
        out += [q["q"] + " " + q["a"] for q in rec.get("vqa", [])]
    for rec in lines(os.path.join(a.data, "speech", "train.jsonl")):
        out.append(rec["text"])
    for rec in lines(os.path.join(a.data, "videos", "train.jsonl")):
        out.append(rec["description"])
    with open(a.out, "w") as f:
        for s in out:
            f.write(s + "\n")
            n += len(s) + 1
    print(f"corpus: {len(out)} lines, {n} bytes -> {a.out}")


if __name__ == "__main__":
    main()
