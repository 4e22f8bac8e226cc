"""Precompute what training reads besides pixels: VQ codes of every scene (text-to-image
targets), Whisper log-mels of every utterance (transcription inputs), audio-codec codes of
every utterance (text-to-speech targets), where the words of loom's own voice begin among its
codes, and the training clips' frames as decoded from their MP4s (what loom reads), pictures
and speech in two processes. Resumable: finished files are kept.

    /usr/bin/python3 tools/train/prep.py [--data data] [--models models]
"""
import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.loompy import audiocodec, mel, vq  # noqa: E402

SPLITS = ("train", "val", "test")


def read_wav(path):
    return mel.read_wav16(path)


def scene_codes(data, models):
    model = None
    for split in SPLITS:
        out = os.path.join(data, "scenes", f"{split}_codes.npy")
        if os.path.exists(out):
            continue
        model = model or vq.load_gguf(os.path.join(models, "loom-tiny-vq.gguf"))
        imgs = np.load(os.path.join(data, "scenes", f"{split}.npy"))
        codes = []
        with torch.no_grad():
            for i in range(0, len(imgs), 64):
                codes.append(model.encode(vq.to_input(imgs[i:i + 64])).numpy().astype(np.int16))
        np.save(out, np.concatenate(codes))
        print(f"scenes/{split}: {len(imgs)} images coded", flush=True)


def video_codes(data, models):
    """VQ codes of the frames a generated video has: every other of the 8 (4 frames at 4 fps)."""
    model = None
    for split in SPLITS:
        out = os.path.join(data, "videos", f"{split}_codes.npy")
        if os.path.exists(out):
            continue
        model = model or vq.load_gguf(os.path.join(models, "loom-tiny-vq.gguf"))
        vids = np.load(os.path.join(data, "videos", f"{split}.npy"), mmap_mode="r")
        codes = []
        with torch.no_grad():
            for i in range(0, len(vids), 16):
                v = np.asarray(vids[i:i + 16, ::2])                     # [b,4,64,64,3]
                c = model.encode(vq.to_input(v.reshape(-1, *v.shape[2:])))
                codes.append(c.numpy().astype(np.int16).reshape(len(v), v.shape[1], *c.shape[1:]))
        np.save(out, np.concatenate(codes))
        print(f"videos/{split}: {len(vids)} clips coded", flush=True)


DECODE_CHUNK = 500


def decode_mp4s(paths, clip_shape):
    """The clips' RGB frames [n, *clip_shape]: one ffmpeg process reads them all through the
    concat demuxer (40x faster than a process per clip; the frames are the same bytes, checked
    on 200 clips), or, if that does not give exactly n clips' bytes, a process per clip."""
    want = int(np.prod(clip_shape))
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.writelines(f"file '{p}'\n" for p in paths)
        f.flush()
        raw = subprocess.run(["ffmpeg", "-v", "error", "-f", "concat", "-safe", "0", "-i", f.name,
                              "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                             capture_output=True).stdout
    if len(raw) == want * len(paths):
        return np.frombuffer(raw, np.uint8).reshape(len(paths), *clip_shape)
    return np.stack([np.frombuffer(subprocess.run(["ffmpeg", "-v", "error", "-i", p, "-f", "rawvideo",
                                                   "-pix_fmt", "rgb24", "-"], capture_output=True,
                                                  check=True).stdout, np.uint8).reshape(clip_shape)
                     for p in paths])


def video_decoded(data):
    """videos/train_mp4.npy: each training clip's frames after the H.264 round trip, decoded
    by ffmpeg to RGB. Training renders are exact; users' clips and the evaluation's are MP4s."""
    out = os.path.join(data, "videos", "train_mp4.npy")
    if os.path.exists(out):
        return
    recs = [json.loads(line) for line in open(os.path.join(data, "videos", "train.jsonl"))]
    shape = np.load(os.path.join(data, "videos", "train.npy"), mmap_mode="r").shape
    frames = np.lib.format.open_memmap(out + ".tmp.npy", "w+", np.uint8, shape)
    paths = [os.path.abspath(os.path.join(data, "videos", r["mp4"])) for r in recs]
    for i in range(0, len(paths), DECODE_CHUNK):
        frames[i:i + DECODE_CHUNK] = decode_mp4s(paths[i:i + DECODE_CHUNK], shape[1:])
    frames.flush()
    del frames
    os.replace(out + ".tmp.npy", out)
    print(f"videos/train: {len(recs)} clips decoded from their MP4s", flush=True)


# what each speech split is used for: log-mels (transcription inputs), codes (text-to-speech targets)
SPEECH_SPLITS = {"train": (True, True), "val": (True, True), "test": (True, True),
                 "accents": (True, False),   # tools/data/speech.py --accents: transcription only
                 "voice": (False, True)}     # --voice: loom's own voice, text-to-speech only


def utterance_features(folder, recs, with_mels, with_codes, models):
    """The log-mels and audio-codec codes of the utterances `recs` (speech.py's records, wavs under
    `folder`), each only where asked (the other is empty): the arrays of a <split>_feats.npz."""
    if with_codes:
        ac = audiocodec.load_gguf(os.path.join(models, "loom-tiny-audiocodec.gguf"))
        k = 2 ** ac.cfg.n_down
    mels, codes = [], []
    with torch.no_grad():
        for r in recs:
            wav = read_wav(os.path.join(folder, r["wav"]))
            mels.append(mel.log_mel(wav, 80).astype(np.float16) if with_mels else np.zeros((80, 0), np.float16))
            if with_codes:
                x = audiocodec.log_mel(torch.from_numpy(np.asarray(wav, np.float32)))
                codes.append(ac.encode(audiocodec.pad_frames(x[None], k))[0].numpy().astype(np.int16))
            else:
                codes.append(np.zeros(0, np.int16))
    return dict(mel=np.concatenate(mels, axis=1), mel_len=np.array([m.shape[1] for m in mels]),
                codes=np.concatenate(codes), codes_len=np.array([len(c) for c in codes]))


def speech_features(data, models):
    """<split>_feats.npz: utterance_features() of every utterance of each split SPEECH_SPLITS names."""
    for split, (with_mels, with_codes) in SPEECH_SPLITS.items():
        out = os.path.join(data, "speech", f"{split}_feats.npz")
        src = os.path.join(data, "speech", f"{split}.jsonl")
        if os.path.exists(out) or not os.path.exists(src):
            continue
        with open(src) as f:
            recs = [json.loads(line) for line in f]
        np.savez(out, **utterance_features(os.path.join(data, "speech"), recs, with_mels, with_codes, models))
        print(f"speech/{split}: {len(recs)} utterances", flush=True)


def speech_units(data, models):
    """speech/voice_units.npz: where each word of loom's own voice's utterances begins among its
    audio codes, as espeak-ng reports it (tools/data/speech.py word_starts): per utterance a list
    of units (first word, first code), the first at code 0 (the clip's lead-in silence is its
    first word's). `train.py --tts-words` interleaves the words with their codes. An utterance
    whose words espeak-ng does not report gets no units (unit_len 0)."""
    out = os.path.join(data, "speech", "voice_units.npz")
    src = os.path.join(data, "speech", "voice_feats.npz")
    if os.path.exists(out) or not os.path.exists(src):
        return
    from tools.data import speech as speech_data
    rate = audiocodec.load_gguf(os.path.join(models, "loom-tiny-audiocodec.gguf")).cfg.codes_per_second
    codes_len = np.load(src)["codes_len"]
    recs = [json.loads(line) for line in open(os.path.join(data, "speech", "voice.jsonl"))]
    words, codes, lens = [], [], []
    for r, n in zip(recs, codes_len):
        units = speech_data.word_starts(r["text"], r)
        if units is None:
            lens.append(0)
            continue
        c = [0] + [min(int(n), int(round(t * rate))) for _, t in units[1:]]
        words += [w for w, _ in units]
        codes += list(np.maximum.accumulate(c))
        lens.append(len(units))
    np.savez(out, unit_word=np.array(words, np.int16), unit_code=np.array(codes, np.int32),
             unit_len=np.array(lens, np.int32))
    print(f"speech/voice: {sum(1 for n in lens if n)} of {len(recs)} utterances split into words", flush=True)


def pictures(data, models):
    torch.set_num_threads(1)
    scene_codes(data, models)
    if os.path.exists(os.path.join(data, "videos", "test.npy")):
        video_codes(data, models)
        video_decoded(data)


def speech(data, models):
    torch.set_num_threads(1)
    if os.path.exists(os.path.join(data, "speech", "test.jsonl")):
        speech_features(data, models)
        speech_units(data, models)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data")
    ap.add_argument("--models", default="models")
    a = ap.parse_args()
    t = time.time()
    # the pictures and the speech side by side, one thread each (the 2-core machine's cores)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for job in [pool.submit(f, a.data, a.models) for f in (pictures, speech)]:
            job.result()
    print(f"prep done in {time.time() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
