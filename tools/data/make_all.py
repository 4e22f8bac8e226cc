"""Generate every synthetic data set (scenes, speech, videos) with timings; resumable:
a data set whose test split already exists is skipped (delete its folder to redo it).

    /usr/bin/python3 tools/data/make_all.py [--out data] [--small]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data import scenes, speech, videos  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--small", action="store_true", help="tiny sizes, for a smoke test")
    ap.add_argument("--videos", default=videos.COUNTS, help="train,val,test video clips")
    a = ap.parse_args(argv)
    # 20 000 training utterances since loom-tiny v9 (v1-v8, the codecs and the tokenizer: the first 4 000)
    n_scenes, n_speech, n_videos, n_accents, n_voice = (20000, (20000, 200, 400), a.videos, 8000, 12000)
    if a.small:
        n_scenes, n_speech, n_videos, n_accents, n_voice = (200, (40, 4, 8), "34,2,4", 8, 8)
    total = time.time()
    stages = [
        ("scenes", os.path.join(a.out, "scenes", "test.npy"),
         lambda d: scenes.generate(d, n_scenes, a.seed)),
        ("speech", os.path.join(a.out, "speech", "test.jsonl"),
         lambda d: speech.generate(d, dict(zip(("train", "val", "test"), n_speech)), a.seed, a.procs)),
        # training voices with generic accent sound changes (speech.py --accents; stop 44)
        ("speech/accents", os.path.join(a.out, "speech", "accents.jsonl"),
         lambda d: speech.generate(os.path.join(a.out, "speech"), {"accents": n_accents}, a.seed, a.procs)),
        # loom's own clean voice, text-to-speech's targets (speech.py --voice; stop 45)
        ("speech/voice", os.path.join(a.out, "speech", "voice.jsonl"),
         lambda d: speech.generate(os.path.join(a.out, "speech"), {"voice": n_voice}, a.seed, a.procs)),
        ("videos", os.path.join(a.out, "videos", "test.npy"),
         lambda d: videos.generate(d, n_videos, a.seed, 8, a.procs)),
    ]
    for name, marker, fn in stages:
        d = os.path.join(a.out, name)
        if os.path.exists(marker):
            print(f"{name}: exists ({d}), skipped", flush=True)
            continue
        t = time.time()
        stats = fn(d)
        print(f"{name}: {stats} in {time.time() - t:.1f} s", flush=True)
    print(f"data total {time.time() - total:.1f} s", flush=True)


if __name__ == "__main__":
    main()
