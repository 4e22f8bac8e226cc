"""Self-checks for loom-tiny 1/2 (cheap; no training needed).

    /usr/bin/python3 tools/tiny1/check.py [--data data]

1. generators are deterministic from the seed (scenes, videos, speech sentences);
2. held-out compositions: none in train/val, one in every test item (on data/ if present);
   test speech voices are disjoint from train/val voices; speech vocabulary >= 500 words;
3. the committed parity fixtures are reproduced by a model loaded back from their GGUF
   (proves the export names every tensor the decoder needs).
Prints one line per check and `N passed, M failed`; exits non-zero on failure.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data import scenes, speech, videos  # noqa: E402
from loompy import gguf, vq, audiocodec as ac  # noqa: E402
from loompy.gguf import to_array  # noqa: E402

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}")


def jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data")
    ap.add_argument("--fixtures", default="tests/data")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as td:
        scenes.generate(os.path.join(td, "a"), 60, 7)
        scenes.generate(os.path.join(td, "b"), 60, 7)
        same = all(np.array_equal(np.load(os.path.join(td, "a", f"{s}.npy")),
                                  np.load(os.path.join(td, "b", f"{s}.npy")))
                   for s in ("train", "val", "test"))
        check("scenes deterministic", same)
    r1 = [speech.sentence(np.random.default_rng(3)) for _ in range(3)]
    r2 = [speech.sentence(np.random.default_rng(3)) for _ in range(3)]
    check("speech sentences deterministic", r1 == r2)
    nv = len(speech.vocabulary())
    check("speech vocabulary >= 500 words", nv >= 500, f"({nv})")
    la = videos.sample_label(np.random.default_rng(5), False)
    lb = videos.sample_label(np.random.default_rng(5), False)
    check("video labels deterministic", la == lb and
          np.array_equal(videos.frames(la, 8), videos.frames(lb, 8)))

    d = os.path.join(a.data, "scenes")
    if os.path.exists(os.path.join(d, "test.jsonl")):
        for split in ("train", "val", "test"):
            recs = jsonl(os.path.join(d, f"{split}.jsonl"))
            held = [any(scenes.heldout_kind(r["objects"], r["count"])) for r in recs]
            want = split == "test"
            check(f"scenes/{split}: held-out compositions {'in every' if want else 'in no'} item",
                  all(h == want for h in held), f"({len(recs)} items)")
    d = os.path.join(a.data, "videos")
    if os.path.exists(os.path.join(d, "test.jsonl")):
        for split in ("train", "val", "test"):
            recs = jsonl(os.path.join(d, f"{split}.jsonl"))
            want = split == "test"
            check(f"videos/{split}: held-out compositions {'in every' if want else 'in no'} item",
                  all(videos.is_heldout(r) == want for r in recs), f"({len(recs)} items)")
    d = os.path.join(a.data, "speech")
    if os.path.exists(os.path.join(d, "test.jsonl")):
        tv = {r["voice"] for r in jsonl(os.path.join(d, "test.jsonl"))}
        trv = {r["voice"] for s in ("train", "val") for r in jsonl(os.path.join(d, f"{s}.jsonl"))}
        check("speech: test voices held out", not (tv & trv), f"(test {sorted(tv)})")
        if os.path.exists(os.path.join(d, "accents.jsonl")):   # speech.py --accents: training voices only
            av = {r[k] for r in jsonl(os.path.join(d, "accents.jsonl")) for k in ("voice", "dict_voice")}
            check("speech: test voices held out of the accents split", not (tv & av), f"(accents {sorted(av)})")
        if os.path.exists(os.path.join(d, "voice.jsonl")):     # speech.py --voice: loom's one training voice
            vv = {(r["voice"], r["variant"], r["speed"], r["reverb"]) for r in jsonl(os.path.join(d, "voice.jsonl"))}
            check("speech: the voice split is one clean training voice", len(vv) == 1 and
                  next(iter(vv))[0] in trv and not (tv & {v[0] for v in vv}), f"({sorted(vv)[:3]})")

    def fixture(path):
        _, t = gguf.read(path)
        return {k: torch.from_numpy(to_array(*v).copy()) for k, v in t.items()}

    fx = os.path.join(a.fixtures, "vq")
    if os.path.exists(os.path.join(fx, "vq_io.gguf")):
        m = vq.load_gguf(os.path.join(fx, "tiny_vq.gguf"))
        f = fixture(os.path.join(fx, "vq_io.gguf"))
        with torch.no_grad():
            dec = m.decode_codes(f["codes_in"].long())
            z = m.encode_z(vq.to_input(f["image_in"].numpy().astype(np.uint8)))
            codes = m.quantize.codes(z)
        e = float((dec - f["dec_out"]).abs().max())
        check("vq fixture: decoder from GGUF reproduces dec_out", e < 1e-4, f"(max err {e:.2e})")
        e = float((z - f["enc_z"]).abs().max())
        check("vq fixture: encoder from GGUF reproduces enc_z", e < 1e-4, f"(max err {e:.2e})")
        bad = ((codes != f["codes_out"].long()) & (f["codes_gap"] >= 1e-4)).sum()
        check("vq fixture: codes reproduced", int(bad) == 0)
    fx = os.path.join(a.fixtures, "audio_codec")
    if os.path.exists(os.path.join(fx, "ac_io.gguf")):
        m = ac.load_gguf(os.path.join(fx, "tiny_ac.gguf"))
        f = fixture(os.path.join(fx, "ac_io.gguf"))
        with torch.no_grad():
            dec = m.decode_codes(f["codes_in"].long())
            wav = ac.vocode(dec[0], m.cfg)
        e = float((dec - f["dec_out"]).abs().max())
        check("audio fixture: decoder from GGUF reproduces dec_out", e < 1e-4, f"(max err {e:.2e})")
        e = float((wav - f["wav_out"]).abs().max())
        check("audio fixture: vocoder reproduces wav_out", e < 1e-3, f"(max err {e:.2e})")

    n_ok = sum(results)
    print(f"{n_ok} passed, {len(results) - n_ok} failed")
    return 0 if n_ok == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
