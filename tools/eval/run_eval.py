"""Evaluate a unified model through the `loom` command on the synthetic test splits, and time
each job against the PyTorch model on the same inputs.

    /usr/bin/python3 tools/eval/run_eval.py [--loom build/loom] [--model models/loom-tiny.gguf]
                                            [--n 200] [--n-video 600] [--jobs caption,vqa,t2i,...,text]
                                            [--bench 10 --run runs/tiny] [--md out.md]
    /usr/bin/python3 tools/eval/run_eval.py --check-ceilings [--n 200] [--split val]

Prints a table (and writes it as Markdown with --md). --check-ceilings instead scores the media
metrics on the data itself and on its codec round trips (what exact codes would score). Metrics:
  caption     per-attribute exact match (shape, colour, size, position, count) of every object
              in the parsed caption, and whole-caption exact match (the canonical caption, or
              the same led by its count: "two shapes: …"), on test scenes (held-out
              colour×shape / position×count compositions); shape also on the objects of the
              held-out colour×shape pairs alone (test only)
  vqa         `loom caption -p QUESTION` on test scenes (one of each scene's questions about a
              colour, shape, size, position, count or presence): answer exact, and per kind
  t2i         the scene detector (tools/eval/scenes_metrics.py) on `loom imagine` outputs for
              the canonical captions of test scenes: per attribute (shape also on held-out
              colour×shape pairs), and all objects right
  transcribe  word error rate on the held-out voices, also on the sentences never spoken in
              training alone (those not in --data's speech/train.jsonl: pass the tree the
              model was trained on)
  long        (not in the default --jobs) WER on recordings of 25 s and more (the split's
              utterances joined), which `loom transcribe` cuts at pauses, against the same
              cut blindly every --long-window seconds
  robust      (not in the default --jobs) WER with 0.5 s of digital silence before and after
              each recording, and with each recording 20 dB quieter
  video       event, moving object, full main clause and whole description exact, on test clips
              (the MP4 files, decoded by loom); moving object also on the clips whose event ×
              shape, and on those whose moving colour × shape, is held out (test only)
  tts         WER of loom's own transcription of `loom speak` output (or --judge MODEL's)
  t2v         the scene detector on the first and last frame of `loom animate` outputs for test
              clip descriptions: each frame's objects (colour, shape, position, count), the
              event (the main object moved / grew / shrank / changed colour / (dis)appeared
              between them), and all three right
  draw_tell   `loom chat -p "Draw: CAPTION Then tell me what you drew."` (an interleaved reply):
              a picture was written, text follows it ("I drew ..."), that text is exactly
              "I drew CAPTION.", and the detector on
              the picture (all objects right)
  say_write   `loom chat -p "Say: TEXT Then write it down."`: a clip was written, WER of the
              written words against TEXT, and WER of loom's transcription of the clip
  text        plain text: `loom chat -p "Picture this: CAPTION. QUESTION"` for the visual
              questions of test scenes, answer exact match
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools.loompy.malloc import env_without_tcmalloc, rerun_peer_with_tcmalloc  # noqa: E402
from tools.eval import scenes_metrics as S  # noqa: E402
from tools.data import videos as V  # noqa: E402
from tools.loompy import gguf, png  # noqa: E402


def read_png(path):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(64, 64, 3)


def wer_counts(ref, hyp):
    r, h = ref.split(), hyp.split()
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(h)], len(r)


def norm_text(s):
    return re.sub(r"[^a-z0-9' ]+", " ", s.lower()).strip()


def loom(a, *args, model=None):
    t = time.time()
    p = subprocess.run([a.loom, *args, "-m", model or a.model, "-q", "-t", str(a.threads)], capture_output=True, text=True,
                       env=env_without_tcmalloc())
    if p.returncode != 0:
        raise RuntimeError(f"loom {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout, time.time() - t


# loom caption / transcribe / describe's default -b (examples/cmd_understand.c); describe's is 1
# (the clip and its mirror image read together) on a model with loom.mirror.token_pairs
CLI_BEAMS = {"caption": 1, "transcribe": 4, "video": 4}


def has_key(a, key):
    """Whether the model file (--model) holds metadata key `key`."""
    if not hasattr(a, "_keys"):
        a._keys = set(gguf.read(a.model)[0])
    return key in a._keys


def two_views(a):
    """Whether loom describe reads two views: greedy, on a model with loom.mirror.token_pairs
    (and, with loom.describe.mover, opens with the object that changes)."""
    return has_key(a, "loom.mirror.token_pairs") and (a.beams or 1) == 1


def beams(a, job):
    return a.beams or (1 if job == "video" and two_views(a) else CLI_BEAMS[job])


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def inputs(a, kind, n=None):
    """The split's records that a job reads: --n (or n) of them after the first --skip."""
    return records(os.path.join(a.data, kind, f"{a.split}.jsonl"))[a.skip:a.skip + (a.n if n is None else n)]


def split_array(a, kind, suffix=""):
    """The split's pictures or codes (`{split}{suffix}.npy`), row i beside inputs()[i]."""
    return np.load(os.path.join(a.data, kind, f"{a.split}{suffix}.npy"), mmap_mode="r")[a.skip:]


def eval_caption(a, tmp):
    imgs = split_array(a, "scenes", "")
    meta = inputs(a, "scenes")
    paths = []
    for i in range(len(meta)):
        paths.append(os.path.join(tmp, f"scene_{i:04d}.png"))
        png.write_png(paths[-1], np.asarray(imgs[i]))
    out, dt = loom(a, "caption", "--json", *paths, "-b", str(beams(a, "caption")))
    tot = {k: [0, 0] for k in ("shape", "colour", "size", "position", "count", S.HELDOUT_SHAPE)}
    exact = 0
    for line, m in zip(out.strip().splitlines(), meta):
        text = json.loads(line)["text"]
        # any form: canonical, led by its count (train.py --count-first), by region (loom.caption.*)
        exact += text in (m["captions"][0], S.scenes.counted_caption(m), S.scenes.region_caption(S.scenes.region_answers(m)))
        for k, (h, n) in S.match_scores(S.parse_caption(text), S.label_objects(m)).items():
            tot[k][0] += h
            tot[k][1] += n
    res = {k: h / n for k, (h, n) in tot.items() if n}   # val has no held-out pairs
    res["exact caption"] = exact / len(meta)
    return res, dt / len(meta)


def eval_vqa(a, tmp):
    imgs = split_array(a, "scenes", "")
    meta = inputs(a, "scenes")
    tot, dts = {"answer exact": [0, 0]}, []
    for i, m in enumerate(meta):
        path = os.path.join(tmp, f"vqa_{i:04d}.png")
        png.write_png(path, np.asarray(imgs[i]))
        qa = m["vqa"][i % len(m["vqa"])]   # the same question per scene as the text job asks
        out, dt = loom(a, "caption", "-p", qa["q"], path)
        dts.append(dt)
        ok = norm_text(out) == norm_text(qa["a"])
        kind = "answer exact, " + " ".join(qa["q"].split()[:2]) + " …"
        for k in ("answer exact", kind):
            tot.setdefault(k, [0, 0])
            tot[k][0] += ok
            tot[k][1] += 1
    return {k: h / n for k, (h, n) in tot.items()}, float(np.mean(dts))


def eval_t2i(a, tmp):
    meta = inputs(a, "scenes")
    tot = {k: [0, 0] for k in ("shape", "colour", "size", "position", "count", S.HELDOUT_SHAPE)}
    allok, dts = 0, []
    for i, m in enumerate(meta):
        path = os.path.join(tmp, f"gen_{i:04d}.png")
        _, dt = loom(a, "imagine", "-p", m["captions"][0], "-o", path, "--seed", str(i), *a.imagine_args.split())
        dts.append(dt)
        sc = S.match_scores(S.detect(read_png(path))[1], S.label_objects(m))
        for k, (h, n) in sc.items():
            tot[k][0] += h
            tot[k][1] += n
        allok += all(h == n for k, (h, n) in sc.items() if k != "size")
    res = {k: h / n for k, (h, n) in tot.items() if n}   # val has no held-out pairs
    res["all objects right (colour, shape, position, count)"] = allok / len(meta)
    return res, float(np.mean(dts))


def eval_transcribe(a, tmp):
    meta = inputs(a, "speech")
    # the grammar repeats short sentences: a quarter of val / test is also spoken in training
    heard = {r["text"] for r in records(os.path.join(a.data, "speech", "train.jsonl"))}
    e, n, eu, nu = [0] * 4
    exact, dts = 0, []
    per_voice = {}   # voice -> [errors, words]: which held-out accent is harder
    for r in meta:
        out, dt = loom(a, "transcribe", os.path.join(a.data, "speech", r["wav"]), "-b", str(beams(a, "transcribe")),
                      *a.transcribe_args.split())
        dts.append(dt)
        de, dn = wer_counts(norm_text(r["text"]), norm_text(out))
        e, n = e + de, n + dn
        if r["text"] not in heard:
            eu, nu = eu + de, nu + dn
        v = per_voice.setdefault(r["voice"], [0, 0])
        v[0], v[1] = v[0] + de, v[1] + dn
        exact += de == 0
    res = {"WER": e / n, "exact transcript": exact / len(meta)}
    if nu:
        res["WER, sentences never spoken in training"] = eu / nu
    if len(per_voice) > 1:
        for voice, (ve, vn) in sorted(per_voice.items()):
            res[f"WER, voice {voice}"] = ve / max(vn, 1)
    return res, float(np.mean(dts))


def eval_long(a, tmp):
    """Long recordings: consecutive utterances of the split joined into clips of 25 s or more,
    transcribed by `loom transcribe` whole (it cuts them at pauses near each window's end,
    loom_audio_cut), and, for comparison, as consecutive pieces of the encoder's window cut
    blindly (what `loom transcribe` did before stop 44), each transcribed alone."""
    from tools.loompy import mel
    meta = inputs(a, "speech")
    groups, cur = [], []
    for r in meta:
        cur.append(r)
        if sum(x["seconds"] for x in cur) >= 25:
            groups.append(cur)
            cur = []
    win = 16000 * a.long_window
    e = np.zeros(2)
    n = 0
    dts = []
    for g, rs in enumerate(groups):
        pcm = np.concatenate([mel.read_wav16(os.path.join(a.data, "speech", r["wav"])) for r in rs])
        path = os.path.join(tmp, f"long_{g:03d}.wav")
        mel.write_wav16(path, pcm)
        out, dt = loom(a, "transcribe", path)
        dts.append(dt)
        pieces = []
        for k, at in enumerate(range(0, len(pcm), win)):
            if len(pcm) - at < 1600 and at:    # the CLI's rule: under 0.1 s left, nothing to say
                break
            piece = os.path.join(tmp, f"long_{g:03d}_{k:02d}.wav")
            mel.write_wav16(piece, pcm[at:at + win])
            pieces.append(piece)
        blind = " ".join(line.split("\t", 1)[-1] for line in loom(a, "transcribe", *pieces)[0].splitlines()) \
            if len(pieces) > 1 else loom(a, "transcribe", *pieces)[0]
        ref = norm_text(" ".join(r["text"] for r in rs))
        for j, hyp in enumerate((out, blind)):
            de, dn = wer_counts(ref, norm_text(hyp))
            e[j] += de
        n += dn
    return {"WER, recordings of 25 s and more, cut at pauses": e[0] / n,
            f"WER, the same cut blindly every {a.long_window} s": e[1] / n}, float(np.mean(dts))


def eval_robust(a, tmp):
    """The split's recordings as a user's could differ from the data's, which all begin with 0.1 s
    of padding and peak at 0.7-0.95: with 0.5 s of digital silence before and after, and 20 dB
    quieter (a transcriber can learn both)."""
    from tools.loompy import mel
    meta = inputs(a, "speech")
    pad = np.zeros(8000, np.float32)
    kinds = {"WER, 0.5 s of digital silence before and after each recording": lambda x: np.concatenate([pad, x, pad]),
             "WER, each recording 20 dB quieter": lambda x: x * 0.1}
    res, dts = {}, []
    for k, (name, change) in enumerate(kinds.items()):
        e = n = 0
        for i, r in enumerate(meta):
            path = os.path.join(tmp, f"robust_{k}_{i:04d}.wav")
            mel.write_wav16(path, change(mel.read_wav16(os.path.join(a.data, "speech", r["wav"]))))
            out, dt = loom(a, "transcribe", path)
            dts.append(dt)
            de, dn = wer_counts(norm_text(r["text"]), norm_text(out))
            e, n = e + de, n + dn
        res[name] = e / n
    return res, float(np.mean(dts))


def video_clauses(d):
    main = d.split(" while ")[0].split(", on a ")[0]
    ev = next((v for v in ("moves", "grows", "shrinks", "changes colour", "disappears", "appears") if f" {v}" in main), None)
    obj = re.match(r"a (?:(?:small|medium|large) )?(\w+ \w+)", main)
    return main, ev, obj.group(1) if obj else None


def eval_video(a, tmp):
    meta = inputs(a, "videos", a.n_video)
    # test clips hold an event × shape or a colour × shape pair never seen in training: score
    # the moving object on each kind apart (val has neither)
    ev_held = "moving object, clips whose event × shape is held out"
    cs_held = "moving object, clips whose moving colour × shape is held out"
    # a second object that stays still is where the object goes wrong (docs/MODEL.md, stop 67)
    alone, with_still = "moving object, clips of that object alone", "moving object, clips with an object that stays still"
    hits = {k: [0, 0] for k in ("event", "moving object (colour + shape)", "main clause exact",
                                "whole description exact", ev_held, cs_held, alone, with_still)}
    dts = []
    for r in meta:
        out, dt = loom(a, "describe", os.path.join(a.data, "videos", r["mp4"]), "-b", str(beams(a, "video")))
        dts.append(dt)
        got, ref = out.strip(), r["description"]
        g, t = video_clauses(got), video_clauses(ref)
        m = r["object"]
        for k, ok, counts in (("event", g[1] == t[1], True), ("moving object (colour + shape)", g[2] == t[2], True),
                              ("main clause exact", g[0] == t[0], True), ("whole description exact", got == ref, True),
                              (ev_held, g[2] == t[2], (r["event"], m["shape"]) in V.HELDOUT_EVENT_SHAPE),
                              (cs_held, g[2] == t[2], (m["colour"], m["shape"]) in S.scenes.HELDOUT_COLOUR_SHAPE),
                              (alone, g[2] == t[2], not r["static"]), (with_still, g[2] == t[2], bool(r["static"]))):
            if counts:
                hits[k][0] += ok
                hits[k][1] += 1
    return {k: h / n for k, (h, n) in hits.items() if n}, float(np.mean(dts))


SIZE_ORDER = {"small": 0, "medium": 1, "large": 2}


def t2v_expected(lab, first):
    """Objects of the first or last generated frame of clip `lab` (frames 0 and 6 of the 8 the
    training clips have; the generated 4 are every other one): [(colour, shape, (row, col))]."""
    m, e = lab["object"], lab["event"]
    objs = [(o["colour"], o["shape"], (o["row"], o["col"])) for o in lab["static"]]
    here = (m["row"], m["col"])
    if e == "move" and not first:
        here = (lab["to_row"], lab["to_col"])
    colour = lab["to_colour"] if e == "change colour" and not first else m["colour"]
    if not (e == "appear" and first) and not (e == "disappear" and not first):
        objs.append((colour, m["shape"], here))
    return objs


def t2v_scores(lab, d0, d1):
    """Detections d0 / d1 of the first / last frame ([(size, colour, shape, (row, col))]) →
    (first frame right, last frame right, event right)."""
    def same(det, want):
        got = sorted((c, s, p) for _, c, s, p in det)
        return got == sorted(want)
    m, e = lab["object"], lab["event"]
    def find(det, colour, cell):
        return [o for o in det if o[1] == colour and o[2] == m["shape"] and o[3] == cell]
    at0, c0 = (m["row"], m["col"]), m["colour"]
    if e == "move":
        ok = bool(find(d0, c0, at0)) and bool(find(d1, c0, (lab["to_row"], lab["to_col"]))) and not find(d1, c0, at0)
    elif e in ("grow", "shrink"):
        a, b = find(d0, c0, at0), find(d1, c0, at0)
        ok = bool(a and b) and (SIZE_ORDER[b[0][0]] - SIZE_ORDER[a[0][0]]) * (1 if e == "grow" else -1) > 0
    elif e == "change colour":
        ok = bool(find(d0, c0, at0)) and bool(find(d1, lab["to_colour"], at0)) and not find(d1, c0, at0)
    elif e == "appear":
        ok = not find(d0, c0, at0) and bool(find(d1, c0, at0))
    else:
        ok = bool(find(d0, c0, at0)) and not find(d1, c0, at0)
    return same(d0, t2v_expected(lab, True)), same(d1, t2v_expected(lab, False)), ok


def read_mp4(path, side=64):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-s", f"{side}x{side}", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, side, side, 3)


def eval_t2v(a, tmp):
    meta = inputs(a, "videos")
    hits = np.zeros(4)
    dts = []
    for i, r in enumerate(meta):
        path = os.path.join(tmp, f"anim_{i:04d}.mp4")
        _, dt = loom(a, "animate", "-p", r["description"], "-o", path, "--seed", str(i), "--size", "64",
                     *a.animate_args.split())
        dts.append(dt)
        fr = read_mp4(path)
        f0, f1, ev = t2v_scores(r, S.detect(fr[0])[1], S.detect(fr[-1])[1])
        hits += (f0, f1, ev, f0 and f1 and ev)
    names = ("first frame: all objects right", "last frame: all objects right", "event right",
             "all right (both frames and the event)")
    return dict(zip(names, hits / len(meta))), float(np.mean(dts))


def check_ceilings(a, tmp):
    """What the media metrics give on the data itself, before and after the codec round trip: the
    best a model that writes exactly the codes of the data could score. Text to image and text to
    video: the detector on the originals and on their VQ codes decoded; text to speech: loom's
    transcription of the original WAVs and of their audio-codec codes rendered."""
    import torch
    from tools.loompy import audiocodec, mel, vq
    models = os.path.join(os.path.dirname(a.model))
    vqm = vq.load_gguf(os.path.join(models, "loom-tiny-vq.gguf"))
    acm = audiocodec.load_gguf(os.path.join(models, "loom-tiny-audiocodec.gguf"))

    def decode(codes):
        with torch.no_grad():
            return vq.to_pixels(vqm.decode_codes(torch.as_tensor(np.array(codes), dtype=torch.long)))

    imgs = split_array(a, "scenes", "")
    meta = inputs(a, "scenes")
    rec = decode(split_array(a, "scenes", "_codes")[:len(meta)])
    for name, pics in (("originals", imgs), ("VQ round trip", rec)):
        ok = 0
        for i, m in enumerate(meta):
            sc = S.match_scores(S.detect(np.asarray(pics[i]))[1], S.label_objects(m))
            ok += all(h == n for k, (h, n) in sc.items() if k != "size")
        print(f"t2i metric (all objects right) on the scenes' {name}: {100 * ok / len(meta):.1f} %", flush=True)

    vids = split_array(a, "videos", "")
    vmeta = inputs(a, "videos")
    vcodes = split_array(a, "videos", "_codes")
    for name, first_last in (("own frames", lambda i: (vids[i, 0], vids[i, 6])),
                             ("VQ round trip", lambda i: tuple(decode(vcodes[i, [0, 3]])))):
        hits = np.zeros(4)
        for i, r in enumerate(vmeta):
            f0, f1 = first_last(i)
            s0, s1, ev = t2v_scores(r, S.detect(np.asarray(f0))[1], S.detect(np.asarray(f1))[1])
            hits += (s0, s1, ev, s0 and s1 and ev)
        print(f"t2v metric (first, last, event, all) on the clips' {name}:",
              " ".join(f"{100 * h / len(vmeta):.1f} %" for h in hits), flush=True)

    # the split's own speech, and loom's voice (the text-to-speech targets since stop 45)
    for split, name in ((a.split, "WAVs"), ("voice", "WAVs in loom's voice (the voice split)")):
        if not os.path.exists(os.path.join(a.data, "speech", f"{split}_feats.npz")):
            continue
        smeta = records(os.path.join(a.data, "speech", f"{split}.jsonl"))[:a.n]
        feats = np.load(os.path.join(a.data, "speech", f"{split}_feats.npz"))
        ends = np.cumsum(feats["codes_len"])
        e = np.zeros(2)
        n = 0
        for i, r in enumerate(smeta):
            codes = feats["codes"][ends[i] - feats["codes_len"][i]:ends[i]]
            with torch.no_grad():
                x = acm.decode_codes(torch.as_tensor(codes, dtype=torch.long)[None])[0]
            wav = os.path.join(tmp, f"codec_{i:04d}.wav")
            mel.write_wav16(wav, audiocodec.vocode(x, acm.cfg).numpy())
            for j, path in enumerate((os.path.join(a.data, "speech", r["wav"]), wav)):
                de, dn = wer_counts(norm_text(r["text"]), norm_text(loom(a, "transcribe", path)[0]))
                e[j] += de
            n += dn
        print(f"tts metric (WER of loom's transcription) on the original {name}: {100 * e[0] / n:.1f} %, "
              f"on their audio-codec codes rendered: {100 * e[1] / n:.1f} %", flush=True)


def eval_tts(a, tmp):
    meta = inputs(a, "speech")
    e = n = failed = 0
    dts = []
    for i, r in enumerate(meta):
        wav = os.path.join(tmp, f"tts_{i:04d}.wav")
        try:
            _, dt = loom(a, "speak", "-p", r["text"], "-o", wav, "--seed", str(i), *a.speak_args.split())
            dts.append(dt)
            out, _ = loom(a, "transcribe", wav, model=a.judge)
        except RuntimeError as err:   # e.g. the model closed the clip at once: counts as nothing heard
            print(f"tts {i}: {err}", flush=True)
            failed += 1
            out = ""
        de, dn = wer_counts(norm_text(r["text"]), norm_text(out))
        e, n = e + de, n + dn
    return {"WER of loom's transcription": e / n, "no audio written": failed / len(meta)}, float(np.mean(dts) if dts else 0)


def chat_reply(a, prompt, tmp, seed):
    """Run one `loom chat` message; return (its text, the media files it wrote)."""
    d = tempfile.mkdtemp(dir=tmp)
    out, dt = loom(a, "chat", "-p", prompt, "-o", d, "--seed", str(seed))
    media = re.findall(r"^\[(?:image|audio|video): (\S+?)[,\]]", out, re.M)
    text = " ".join(l for l in out.splitlines() if not re.match(r"^\[(image|audio|video): ", l))
    return text.strip(), media, dt


def eval_draw_tell(a, tmp):
    from tools.train import unified as U
    meta = inputs(a, "scenes")
    drew = replied = said = allok = 0
    dts = []
    for i, m in enumerate(meta):
        cap = m["captions"][0]
        text, media, dt = chat_reply(a, U.PROMPTS["t2i"] + cap + U.PROMPTS["draw_tell"], tmp, i)
        dts.append(dt)
        replied += norm_text(text).startswith("i drew ")
        said += norm_text(text) == norm_text("I drew " + cap)
        pngs = [p for p in media if p.endswith(".png")]
        if pngs:
            drew += 1
            sc = S.match_scores(S.detect(read_png(pngs[0]))[1], S.label_objects(m))
            allok += all(h == n for k, (h, n) in sc.items() if k != "size")
    n = len(meta)
    return {"picture written": drew / n, "a reply after it (\"I drew ...\")": replied / n,
            "text is \"I drew CAPTION.\"": said / n,
            "picture: all objects right": allok / n}, float(np.mean(dts))


def eval_say_write(a, tmp):
    from tools.train import unified as U
    meta = inputs(a, "speech")
    spoke = 0
    ew = nw = ea = na = 0
    dts = []
    for i, r in enumerate(meta):
        text, media, dt = chat_reply(a, U.PROMPTS["tts"] + r["text"] + U.PROMPTS["say_write"], tmp, i)
        dts.append(dt)
        de, dn = wer_counts(norm_text(r["text"]), norm_text(text))
        ew, nw = ew + de, nw + dn
        wavs = [p for p in media if p.endswith(".wav")]
        heard = ""
        if wavs:
            spoke += 1
            heard, _ = loom(a, "transcribe", wavs[0], model=a.judge)
        de, dn = wer_counts(norm_text(r["text"]), norm_text(heard))
        ea, na = ea + de, na + dn
    return {"clip written": spoke / len(meta), "WER of the written words": ew / nw,
            "WER of loom's transcription of the clip": ea / na}, float(np.mean(dts))


def eval_text(a, tmp):
    from tools.train import unified as U
    meta = inputs(a, "scenes")
    right, dts = 0, []
    for i, m in enumerate(meta):
        qa = m["vqa"][i % len(m["vqa"])]
        text, _, dt = chat_reply(a, U.text_question(m["captions"][i % len(m["captions"])], qa["q"]), tmp, i)
        dts.append(dt)
        right += norm_text(text) == norm_text(qa["a"])
    return {"answer exact": right / len(meta)}, float(np.mean(dts))


def bench_pytorch(a, jobs):
    """Mean seconds per job for the PyTorch model (same inputs, same work: as many beams,
    greedy codes; images and video guided at 3, speech unguided with its words spelt as `loom speak`
    does, so time the loom side with --speak-args "--temp 0": a clip's length is the work)."""
    import torch
    from tools.train import infer, train, unified as U
    from tools.loompy import mel
    torch.set_num_threads(a.threads)
    model = train.load(a.run)
    tok = U.Tok("models/loom-tiny-vocab.gguf")
    test = train.Data(a.data, "test")
    out = {}
    k = a.bench
    def timed(fn):
        t = time.time()
        for i in range(k):
            fn(i)
        return (time.time() - t) / k

    def answer(job, user):
        b = beams(a, job)
        return infer.beam_ids(model, tok, user, b) if b > 1 else infer.answer_ids(model, tok, user)

    def transcript(m):   # as loom transcribe: with the CTC head's scores when the model has one
        user = [("ctl", "<|audio|>"), ("audio", m), ("ctl", "<|/audio|>"), ("text", U.PROMPTS["transcribe"])]
        b = beams(a, "transcribe")
        if b > 1 and model.aux_ctc.weight.abs().max() > 0:
            return infer.beam_ids(model, tok, user, b, ctc=infer.ctc_logprobs(model, m), ctc_weight=0.3)
        return answer("transcribe", user)
    if "caption" in jobs and model.c.caption_regions:   # as loom caption: region by region
        out["caption"] = timed(lambda i: infer.region_answer_ids(model, tok, np.asarray(test.scenes[i])))
    elif "caption" in jobs:
        out["caption"] = timed(lambda i: answer("caption", [("ctl", "<|image|>"), ("image", np.asarray(test.scenes[i])),
                                                            ("ctl", "<|/image|>"), ("text", U.PROMPTS["caption"])]))
    if "transcribe" in jobs:
        out["transcribe"] = timed(lambda i: transcript(mel.log_mel(mel.read_wav16(
            os.path.join(a.data, "speech", test.speech["meta"][i]["wav"])), 80)))
    if "video" in jobs and two_views(a):   # as loom describe: the clip and its mirror image
        mover = has_key(a, "loom.describe.mover")
        out["video"] = timed(lambda i: infer.video_answer_ids(model, tok, np.asarray(test.videos[i]), mover=mover))
    elif "video" in jobs:
        out["video"] = timed(lambda i: answer("video", [("ctl", "<|video|>"), ("video", np.asarray(test.videos[i])),
                                                        ("ctl", "<|/video|>"), ("text", U.PROMPTS["video"])]))
    if "t2i" in jobs:
        out["t2i"] = timed(lambda i: infer.generate_codes(model, tok, [("text", U.PROMPTS["t2i"] + test.scene_meta[i]["captions"][0])],
                                                          "<|image|>", U.IMAGE_START, U.IMAGE_START + U.IMAGE_COUNT, 256, cfg=3.0))
    if "t2v" in jobs:
        out["t2v"] = timed(lambda i: infer.generate_codes(model, tok, [("text", U.PROMPTS["t2v"] + test.video_meta[i]["description"])],
                                                          "<|video|>", U.IMAGE_START, U.IMAGE_START + U.IMAGE_COUNT,
                                                          U.GEN_FRAMES * U.GRID ** 2, cfg=3.0, frame=tok.ctl["<|frame|>"], per_frame=U.GRID ** 2))
    if "tts" in jobs:
        out["tts"] = timed(lambda i: infer.generate_codes(model, tok, [("text", U.PROMPTS["tts"] + test.speech["meta"][i]["text"])],
                                                          "<|audio|>", U.AUDIO_START, U.AUDIO_START + U.AUDIO_COUNT, 250, cfg=1.0,
                                                          close=tok.ctl["<|/audio|>"],
                                                          words=test.speech["meta"][i]["text"] if model.c.speech_words else None))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loom", default=os.path.join(ROOT, "build", "loom"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "loom-tiny.gguf"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--skip", type=int, default=0, help="leave out the first SKIP inputs of each split (e.g. tune a setting on "
                    "--skip 200 --n 200, then score it on the first 200)")
    ap.add_argument("--n-video", type=int, default=600,
                    help="clips the video job scores (descriptions are cheap, and 60 clips were too few to tell versions apart)")
    ap.add_argument("--split", default="test", help="test (held-out compositions and voices) or val (the training distribution)")
    ap.add_argument("--jobs", default="caption,vqa,t2i,transcribe,video,tts,t2v,draw_tell,say_write,text")
    ap.add_argument("--check-ceilings", action="store_true",
                    help="score the media metrics on the data itself and on its codec round trips, and exit")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--imagine-args", default="")
    ap.add_argument("--speak-args", default="")
    ap.add_argument("--transcribe-args", default="", help="more options for loom transcribe in the transcribe job, e.g. \"--ctc 0.5\"")
    ap.add_argument("--judge", default=None,
                    help="tts, say_write: the model whose transcription scores the speech (default: --model itself; "
                         "a fixed judge separates a change in speaking from one in hearing)")
    ap.add_argument("--beams", type=int, default=0, help="beams for caption, transcribe and describe, and for the PyTorch side "
                    "of --bench (0: the loom command's defaults, " + ", ".join(f"{k} {v}" for k, v in CLI_BEAMS.items()) + ")")
    ap.add_argument("--animate-args", default="")
    ap.add_argument("--long-window", type=int, default=10,
                    help="`long`: the audio encoder's window in seconds (loom-tiny: 10), for the blind cuts")
    ap.add_argument("--bench", type=int, default=0, help="also time the PyTorch model on this many inputs per job")
    ap.add_argument("--run", default=os.path.join(ROOT, "runs", "tiny"))
    ap.add_argument("--md", default=None)
    a = ap.parse_args()
    if a.bench:
        rerun_peer_with_tcmalloc()      # a fair PyTorch side (docs/BENCHMARKS.md); loom runs without it
    if a.check_ceilings:
        with tempfile.TemporaryDirectory() as tmp:
            return check_ceilings(a, tmp)
    jobs = a.jobs.split(",")
    fns = {"caption": eval_caption, "vqa": eval_vqa, "t2i": eval_t2i, "transcribe": eval_transcribe, "long": eval_long, "robust": eval_robust, "video": eval_video, "tts": eval_tts,
           "t2v": eval_t2v, "draw_tell": eval_draw_tell, "say_write": eval_say_write,
           "text": eval_text}
    rows, times = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for j in jobs:
            t = time.time()
            res, per = fns[j](a, tmp)
            times[j] = per
            for k, v in res.items():
                rows.append((j, k, v))
                print(f"{j:10s} {k:50s} {100 * v:6.1f} %", flush=True)
            print(f"{j:10s} ({time.time() - t:.0f} s, loom {per:.3f} s per input incl. process start)", flush=True)
    md = ["| job | metric | value |", "|---|---|---|"] + [f"| {j} | {k} | {100 * v:.1f} % |" for j, k, v in rows]
    if a.bench:
        pt = bench_pytorch(a, jobs)
        md += ["", "| job | loom s/input (CLI, incl. load) | PyTorch s/input | speed-up |", "|---|---|---|---|"]
        for j in jobs:
            if j in pt:
                md.append(f"| {j} | {times[j]:.3f} | {pt[j]:.3f} | {pt[j] / times[j]:.1f}× |")
                print(f"{j:10s} loom {times[j]:.3f} s, PyTorch {pt[j]:.3f} s, {pt[j] / times[j]:.1f}x")
    if a.md:
        with open(a.md, "w") as f:
            f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
