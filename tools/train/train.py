"""Train loom-tiny (the unified model) on the synthetic worlds, multi-task, on a CPU.

    /usr/bin/python3 tools/train/train.py train [--minutes 90] [--tasks caption,vqa,...]
    /usr/bin/python3 tools/train/train.py audio [--minutes 20]   (the audio encoder alone, by CTC)
    /usr/bin/python3 tools/train/train.py vision [--minutes 20]  (the vision encoder alone, by attributes)
    /usr/bin/python3 tools/train/train.py export [--out models/loom-tiny]
    /usr/bin/python3 tools/train/train.py import --gguf models/loom-tiny --run runs/next  (go on from a bundled model)
    /usr/bin/python3 tools/train/train.py soup --from models/loom-tiny,runs/v31 --run runs/soup  (average weights)

Resumable: runs/tiny/ckpt.pt is written every 3 minutes and at the end; `train` continues
from it (the schedule is by wall time: --minutes is the total budget, counted across
resumes). Each step is one task's batch; tasks are drawn by weight so every task learns.
"""
import argparse
import json
import math
import os
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if __name__ == "__main__":
    from tools.loompy.malloc import rerun_with_tcmalloc
    rerun_with_tcmalloc()    # training runs under tcmalloc where installed (docs/MODEL.md)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tools.data import scenes  # noqa: E402
from tools.train import unified as U  # noqa: E402

# task: (weight, batch size)
TASKS = {"caption": (3, 24), "vqa": (2, 24), "t2i": (3, 6), "transcribe": (3, 12), "tts": (2, 8),
         "video": (2, 8), "t2v": (1, 2), "draw_tell": (0, 6), "say_write": (0, 8), "text": (0, 24),
         "scan": (0, 24), "cell": (0, 24)}
DROP_PROMPT = 0.1   # text-to-media prompts dropped for classifier-free guidance


def scan_answer(meta):
    """The `scan` task's answer: the nine cells in reading order, each with its object or
    "nothing" ("top left: a small green cross; top: nothing; …")."""
    from tools.data.scenes import POS_NAMES
    cell = {(o["row"], o["col"]): f"a {o['size']} {o['colour']} {o['shape']}" for o in meta["objects"]}
    return "; ".join(f"{POS_NAMES[r][c]}: {cell.get((r, c), 'nothing')}" for r in range(3) for c in range(3))


def cell_question(meta, r, c):
    """The `cell` task's question and answer about one grid cell: ("what is in the top left?",
    "a small green cross" or "nothing")."""
    return scenes.REGION_QUESTION.replace("{}", scenes.pos_phrase(r, c)), scenes.region_answers(meta)[3 * r + c]


def npz_member_mmap(path, name):
    """Array <name> of an uncompressed .npz, mapped read-only rather than read: the training
    processes then share one copy in the page cache (data/big200's mels are 7.8 GB)."""
    import zipfile
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(name + ".npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)                                  # the zip local file header
        start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") \
            + int.from_bytes(local[28:30], "little")
        f.seek(start)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}[np.lib.format.read_magic(f)]
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran else "C")


def load_speech(folder, split):
    """<folder>/<split>_feats.npz (tools/train/prep.py) and its transcripts, or None."""
    p = os.path.join(folder, f"{split}_feats.npz")
    if not os.path.exists(p):
        return None
    z = np.load(p)
    mel = npz_member_mmap(p, "mel")
    return dict(mel=z["mel"] if mel is None else mel, mo=np.concatenate([[0], np.cumsum(z["mel_len"])]), codes=z["codes"],
                co=np.concatenate([[0], np.cumsum(z["codes_len"])]),
                step=float(z["mel_step"]) if "mel_step" in z else 0.0,
                meta=[json.loads(l) for l in open(os.path.join(folder, f"{split}.jsonl"))])


class Data:
    def __init__(self, root, split, speech_augment=0.0, video_mp4=0.0, speech_tempo=0.0, speech_accents=0.0,
                 speech_shift=0.0, speech_gain=0.0, tts_voice=0.0, tts_words=False):
        self.split = split
        self.speech_augment = speech_augment   # share of transcription mels given mel_augmented()
        self.speech_tempo = speech_tempo       # mel_augmented() also stretches time by up to ± this
        self.max_mel_frames = None             # the audio encoder's limit (its position table), set by the trainer
        self.video_mp4 = video_mp4             # share of description clips read as decoded MP4 frames
        self.count_first = False               # caption targets led by the number of objects (--count-first)
        s = os.path.join(root, "scenes")
        self.scenes = np.load(os.path.join(s, f"{split}.npy"), mmap_mode="r")
        self.scene_meta = [json.loads(l) for l in open(os.path.join(s, f"{split}.jsonl"))]
        p = os.path.join(s, f"{split}_codes.npy")
        self.scene_codes = np.load(p) if os.path.exists(p) else None
        self.speech = load_speech(os.path.join(root, "speech"), split)
        self.speech_accents = speech_accents   # share of transcription turns from the accents split
        self.speech_shift = speech_shift       # half the transcription clips: speech moved by up to this (s)
        self.speech_gain = speech_gain         # half the transcription clips: up to this many dB quieter
        self.accents = load_speech(os.path.join(root, "speech"), "accents") if speech_accents > 0 else None
        if speech_accents > 0 and self.accents is None:
            sys.exit("--speech-accents: data/speech/accents_feats.npz is missing; run tools/data/speech.py "
                     "--accents N, then tools/train/prep.py")
        self.tts_voice = tts_voice             # share of text-to-speech / say_write turns in loom's own voice
        self.voice = load_speech(os.path.join(root, "speech"), "voice") if tts_voice > 0 else None
        if tts_voice > 0 and self.voice is None:
            sys.exit("--tts-voice: data/speech/voice_feats.npz is missing; run tools/data/speech.py "
                     "--voice N, then tools/train/prep.py")
        self.units = None                      # --tts-words: [(first word, first code)] per voice utterance
        if tts_words:
            p = os.path.join(root, "speech", "voice_units.npz")
            if self.voice is None or not os.path.exists(p):
                sys.exit("--tts-words: needs --tts-voice and data/speech/voice_units.npz (tools/train/prep.py)")
            z = np.load(p)
            uo = np.concatenate([[0], np.cumsum(z["unit_len"])])
            self.units = [list(zip(z["unit_word"][a:b].tolist(), z["unit_code"][a:b].tolist()))
                          for a, b in zip(uo[:-1], uo[1:])]
        v = os.path.join(root, "videos", f"{split}.npy")
        self.videos = np.load(v, mmap_mode="r") if os.path.exists(v) else None
        self.video_meta = [json.loads(l) for l in open(os.path.join(root, "videos", f"{split}.jsonl"))] \
            if self.videos is not None else None
        p = os.path.join(root, "videos", f"{split}_codes.npy")
        self.video_codes = np.load(p) if os.path.exists(p) else None
        p = os.path.join(root, "videos", f"{split}_mp4.npy")          # tools/train/prep.py
        self.videos_mp4 = np.load(p, mmap_mode="r") if os.path.exists(p) else None
        if video_mp4 > 0 and self.videos_mp4 is None:
            sys.exit(f"--video-mp4: {p} is missing; run tools/train/prep.py")
        if self.videos_mp4 is not None and len(self.videos_mp4) != len(self.videos):
            sys.exit(f"{p}: {len(self.videos_mp4)} clips, {v}: {len(self.videos)}; delete it and run tools/train/prep.py")

    def available(self, task):
        if task in ("caption", "vqa", "text", "scan", "cell"):
            return True
        if task in ("t2i", "draw_tell"):
            return self.scene_codes is not None
        if task in ("transcribe", "tts", "say_write"):
            return self.speech is not None
        if task == "video":
            return self.videos is not None
        if task == "t2v":
            return self.video_codes is not None
        return False

    def mel(self, i, s=None):
        s = s or self.speech
        m = s["mel"][:, s["mo"][i]:s["mo"][i + 1]].astype(np.float32)
        if s["step"]:   # packed mels were rounded to a grid (tools/train/pack.py): dither it away
            m += np.random.uniform(-s["step"] / 2, s["step"] / 2, m.shape).astype(np.float32)
        return m

    def mel_shifted(self, x, rng):
        """x with its speech moved in the clip: each end loses up to 8 frames (the 0.1 s of quiet
        every recording starts and ends with) or gains up to --speech-shift seconds of frames drawn
        from those quiet ends, or (half the time, since stop 44's stage 37) of digital silence. Without it the transcriber learnt where speech starts: v34 heard
        "okay open the door" as "paul hid the door" after 0.24 s of silence was put before it."""
        n = int(100 * self.speech_shift)
        lead, trail = rng.randint(-8, n), rng.randint(-8, n)
        if self.max_mel_frames:
            room = self.max_mel_frames - x.shape[1]
            lead, trail = min(lead, max(room, 0)), min(trail, max(room - max(lead, 0), 0))
        head, tail = x[:, :8], x[:, -8:]
        if rng.random() < 0.5:   # digital silence instead: log-mel's floor, 8 below the clip's max (2 normalised)
            head = tail = np.full((x.shape[0], 1), x.max() - 2.0, x.dtype)
        if lead < 0:
            x = x[:, -lead:]
        if trail < 0:
            x = x[:, :trail]
        parts = [head[:, [rng.randrange(head.shape[1]) for _ in range(lead)]]] if lead > 0 else []
        parts.append(x)
        if trail > 0:
            parts.append(tail[:, [rng.randrange(tail.shape[1]) for _ in range(trail)]])
        return np.concatenate(parts, axis=1) if len(parts) > 1 else x

    def mel_augmented(self, i, rng, s=None):
        """A training log-mel with the changes another voice or room would make: shifted by up to
        3 of 80 bins (formants and pitch), 2 bands and 2 spans masked (SpecAugment), and with
        --speech-tempo r its frames resampled to a length 1 ± r times theirs (a faster or slower
        speaker; linear interpolation between frames)."""
        x = self.mel(i, s)
        if self.speech_tempo > 0:
            T = x.shape[1]
            n = max(8, int(round(T * (1 + rng.uniform(-self.speech_tempo, self.speech_tempo)))))
            if self.max_mel_frames:   # never stretched past what the encoder's positions cover
                n = min(n, max(T, self.max_mel_frames))
            src = np.linspace(0, T - 1, n)
            i0 = np.floor(src).astype(np.int64)
            i1 = np.minimum(i0 + 1, T - 1)
            w = (src - i0).astype(np.float32)
            x = x[:, i0] * (1 - w) + x[:, i1] * w
        k = rng.randint(-3, 3)
        if k > 0:
            x = np.concatenate([np.repeat(x[:1], k, 0), x[:-k]])
        elif k < 0:
            x = np.concatenate([x[-k:], np.repeat(x[-1:], -k, 0)])
        fill = float(x.mean())
        for _ in range(2):
            w = rng.randint(0, 8)
            f0 = rng.randint(0, x.shape[0] - w)
            x[f0:f0 + w] = fill
            w = rng.randint(0, min(20, x.shape[1] // 8))
            t0 = rng.randint(0, x.shape[1] - w)
            x[:, t0:t0 + w] = fill
        return x

    def spoken(self, i, rng):
        """(text, audio codes, word units or None) of a text-to-speech target: utterance i, or
        with probability --tts-voice a random one of loom's own voice (the "voice" split), whose
        word units (prep.py speech_units) come with it under --tts-words."""
        s, units = self.speech, None
        if self.voice is not None and rng.random() < self.tts_voice:
            s = self.voice
            i = rng.randrange(len(s["meta"]))
            units = self.units[i] if self.units else None
        return s["meta"][i]["text"], s["codes"][s["co"][i]:s["co"][i + 1]], units or None

    def sample(self, task, i, rng):
        """One chat turn for `task` on item i → (segments, answer_from)."""
        if task == "caption":
            m = self.scene_meta[i]
            return U.turn([("ctl", "<|image|>"), ("image", self.scenes[i]), ("ctl", "<|/image|>"),
                           ("text", U.PROMPTS["caption"])],
                          [("text", scenes.counted_caption(m) if self.count_first else m["captions"][0])])
        if task == "scan":          # every cell of the grid in turn: a readout no layout prior can skip
            return U.turn([("ctl", "<|image|>"), ("image", self.scenes[i]), ("ctl", "<|/image|>"),
                           ("text", U.PROMPTS["scan"])], [("text", scan_answer(self.scene_meta[i]))])
        if task == "cell":          # one grid cell, asked with no other cell in the context
            m = self.scene_meta[i]   # half the time a cell that holds an object: 7 in 9 cells are empty
            o = m["objects"][rng.randrange(len(m["objects"]))] if m["objects"] and rng.random() < 0.5 else None
            q, a = cell_question(m, *((o["row"], o["col"]) if o else (rng.randrange(3), rng.randrange(3))))
            return U.turn([("ctl", "<|image|>"), ("image", self.scenes[i]), ("ctl", "<|/image|>"),
                           ("text", q)], [("text", a)])
        if task == "vqa":
            m = self.scene_meta[i]
            qa = m["vqa"][rng.randrange(len(m["vqa"]))]
            return U.turn([("ctl", "<|image|>"), ("image", self.scenes[i]), ("ctl", "<|/image|>"),
                           ("text", qa["q"])], [("text", qa["a"])])
        if task == "text":          # plain text: the same questions about a scene told in words
            m = self.scene_meta[i]
            qa = m["vqa"][rng.randrange(len(m["vqa"]))]
            cap = m["captions"][rng.randrange(len(m["captions"]))]
            return U.turn([("text", U.text_question(cap, qa["q"]))], [("text", qa["a"])])
        if task == "t2i":
            m = self.scene_meta[i]
            user = [] if rng.random() < DROP_PROMPT else \
                [("text", U.PROMPTS["t2i"] + m["captions"][rng.randrange(len(m["captions"]))])]
            return U.turn(user, [("ctl", "<|image|>"), ("codes", U.IMAGE_START, self.scene_codes[i].reshape(-1)),
                                 ("ctl", "<|/image|>")])
        if task == "draw_tell":     # interleaved reply: the picture, then words about it
            cap = self.scene_meta[i]["captions"][rng.randrange(len(self.scene_meta[i]["captions"]))]
            return U.turn([("text", U.PROMPTS["t2i"] + cap + U.PROMPTS["draw_tell"])],
                          [("ctl", "<|image|>"), ("codes", U.IMAGE_START, self.scene_codes[i].reshape(-1)),
                           ("ctl", "<|/image|>"), ("text", "I drew " + cap + ".")])
        if task == "say_write":     # interleaved reply: speech, then the same words as text
            text, codes, _ = self.spoken(i, rng)
            return U.turn([("text", U.PROMPTS["tts"] + text + U.PROMPTS["say_write"])],
                          [("ctl", "<|audio|>"), ("codes", U.AUDIO_START, codes),
                           ("ctl", "<|/audio|>"), ("text", text)])
        if task == "transcribe":
            s = self.speech
            if self.accents is not None and rng.random() < self.speech_accents:
                s = self.accents
                i = rng.randrange(len(s["meta"]))
            while self.max_mel_frames and s["mo"][i + 1] - s["mo"][i] > self.max_mel_frames:
                i = rng.randrange(len(s["meta"]))     # longer than the encoder's window (2 of 70 000 in data/big)
            mel = self.mel_augmented(i, rng, s) if rng.random() < self.speech_augment else self.mel(i, s)
            if self.speech_shift > 0 and rng.random() < 0.5:
                mel = self.mel_shifted(mel, rng)
            if self.speech_gain > 0 and rng.random() < 0.5:   # quieter: power x g^2 adds log10(g) / 2
                mel = mel + np.float32(rng.uniform(-self.speech_gain, 0) / 40)
            text = s["meta"][i]["text"]
            return U.turn([("ctl", "<|audio|>"), ("audio", mel, text), ("ctl", "<|/audio|>"),
                           ("text", U.PROMPTS["transcribe"])], [("text", text)])
        if task == "tts":
            text, codes, units = self.spoken(i, rng)
            user = [] if rng.random() < DROP_PROMPT else [("text", U.PROMPTS["tts"] + text)]
            return U.turn(user, [("ctl", "<|audio|>")] + U.speech_body(text, codes, units) + [("ctl", "<|/audio|>")])
        if task == "video":
            frames = self.videos_mp4[i] if self.video_mp4 and rng.random() < self.video_mp4 else self.videos[i]
            return U.turn([("ctl", "<|video|>"), ("video", frames), ("ctl", "<|/video|>"),
                           ("text", U.PROMPTS["video"])], [("text", self.video_meta[i]["description"])])
        if task == "t2v":
            user = [] if rng.random() < DROP_PROMPT else [("text", U.PROMPTS["t2v"] + self.video_meta[i]["description"])]
            frames = []
            for f in self.video_codes[i]:
                frames += [("ctl", "<|frame|>"), ("codes", U.IMAGE_START, f.reshape(-1))]
            return U.turn(user, [("ctl", "<|video|>")] + frames + [("ctl", "<|/video|>")])
        raise ValueError(task)

    def size(self, task):
        if task in ("t2i", "draw_tell"):      # image codes may cover only the first scenes
            return len(self.scene_codes)
        if task in ("caption", "vqa", "text"):
            return len(self.scene_meta)
        if task in ("transcribe", "tts", "say_write"):
            return len(self.speech["meta"])
        if task == "t2v":                     # frame codes may cover only the first clips
            return len(self.video_codes)
        return len(self.video_meta)


def lr_at(frac, peak):
    warm = 0.03
    if frac < warm:
        return peak * frac / warm
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (frac - warm) / (1 - warm)))))


def cpu_has_bf16():
    """AVX-512 (oneDNN's bf16 path; earlier stages ran there at ~55 steps a minute) or native bf16."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return any(f in flags for f in ("avx512bw", "avx512_bf16", "amx_bf16"))


def average_grads(params, world):
    """Data parallel: every process ends the step with the mean of all processes' gradients.
    A parameter no process touched keeps grad None, so AdamW skips it as it would alone."""
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32)
    dist.all_reduce(has)
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
    dist.all_reduce(flat)
    flat /= world
    at = 0
    for p, h in zip(params, has.tolist()):
        n = p.numel()
        p.grad = flat[at:at + n].view_as(p).clone() if h else None
        at += n


def train_worker(rank, a, addr, parent):
    """One of --procs data-parallel trainers: same weights and task draws, own samples."""
    # A worker ends with its parent, so stopping `train` cannot leave one training on unseen
    # (two stray workers once went on writing the same run's checkpoints). Linux's PR_SET_PDEATHSIG.
    import ctypes
    import signal
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        sys.exit("train: the parent process ended before this worker started")
    dist.init_process_group("gloo", init_method=addr, rank=rank, world_size=a.procs)
    torch.set_num_threads(max(1, a.threads // a.procs))
    try:
        train(a, rank)
    finally:
        dist.destroy_process_group()


def train_parallel(a):
    import socket
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        addr = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    mp.spawn(train_worker, args=(a, addr, os.getpid()), nprocs=a.procs)


def train(a, rank=0):
    ck = os.path.join(a.run, "ckpt.pt")
    if not dist.is_initialized() and not a.new_schedule and os.path.exists(ck):
        spent = torch.load(ck, map_location="cpu")["elapsed"] / 60
        if spent >= a.minutes:   # e.g. a stage's copied start checkpoint, resumed before it saved its own
            sys.exit(f"train: {ck} is {spent:.1f} minutes into its schedule, whose --minutes {a.minutes:g} "
                     "are spent; --new-schedule starts a fresh one")
    if a.procs > 1 and not dist.is_initialized():
        return train_parallel(a)
    world = a.procs
    lead = rank == 0
    if not lead:
        sys.stdout = open(os.devnull, "w")
    torch.manual_seed(a.seed)
    run = a.run
    os.makedirs(run, exist_ok=True)
    tok = U.Tok(a.vocab)
    data = Data(a.data, "train", a.speech_augment, a.video_mp4, a.speech_tempo, a.speech_accents, a.speech_shift,
                a.speech_gain, a.tts_voice, a.tts_words)
    data.count_first = a.count_first
    tasks = [t for t in a.tasks.split(",") if data.available(t)]
    print("tasks:", tasks, flush=True)
    ck = os.path.join(run, "ckpt.pt")
    dev = torch.device(a.device)
    if os.path.exists(ck):
        st = torch.load(ck, map_location="cpu")
        model = U.Unified(U.config_from(st["config"]))
        missing, unexpected = model.load_state_dict({k: v.float() for k, v in st["model"].items()}, strict=False)
        assert not unexpected and all(k.startswith("aux") for k in missing), (missing, unexpected)
        model.to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.05)
        if "opt" in st:       # a packed checkpoint (tools/train/pack.py) carries weights only
            sd, n_now = st["opt"], sum(1 for _ in model.parameters())
            ids = sd["param_groups"][0]["params"]
            if len(ids) < n_now:  # a training-only head was added (registered last): fresh state for it
                print(f"optimizer: {n_now - len(ids)} new parameters start fresh ({missing})", flush=True)
                ids += list(range(max(ids) + 1, max(ids) + 1 + n_now - len(ids)))
            opt.load_state_dict(sd)
        step, elapsed = st["step"], (0.0 if a.new_schedule else st["elapsed"])
        print(f"resumed at step {step}, {elapsed / 60:.1f} min into this schedule", flush=True)
    else:
        model = U.Unified(U.Config()).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.05)
        step, elapsed = 0, 0.0
    if a.tts_words:
        model.c.speech_words = True      # exported as loom.audio.words: `loom speak` spells the words
    data.max_mel_frames = 2 * model.aud.pos.shape[0]   # conv2 halves the frames (tools/loompy/audio.py)
    # the draws go on from the step: a resumed run does not replay the samples it began with.
    # Data-parallel processes draw the same tasks (steps take alike long) but their own samples.
    rng = random.Random(a.seed + 1_000_003 * step)
    task_rng = rng if world == 1 else random.Random(a.seed + 1_000_003 * step + 1)
    if world > 1:
        rng = random.Random(a.seed + 1_000_003 * step + 7_919 * (rank + 2))
        for p in model.parameters():      # one start: rank 0's weights
            dist.broadcast(p.data, 0)
        print(f"data parallel: {world} processes, {torch.get_num_threads()} thread(s) each", flush=True)
    # bf16 autocast only where the CPU multiplies bf16 natively: on an AVX2-only EPYC a bf16
    # linear took 0.58 s against 0.010 s in float32 (57x slower). On a GPU: float32 with TF32.
    bf16 = a.bf16 and dev.type == "cpu" and cpu_has_bf16()
    print(f"autocast: {'bf16' if bf16 else 'off (float32)'}", flush=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params / 1e6:.2f} M", flush=True)
    wmap = dict((kv.split("=")[0], float(kv.split("=")[1])) for kv in a.weights.split(",") if kv)
    weights = [wmap.get(t, TASKS[t][0]) for t in tasks]
    print("task weights:", dict(zip(tasks, weights)), flush=True)
    if dict(zip(tasks, weights)).get("cell", 0) > 0:
        model.c.caption_regions = True   # exported as loom.caption.*: `loom caption` asks each cell
    word_w = answer_word_weights(tok, a.shape_weight)
    if word_w is not None:
        word_w = word_w.to(dev)
    swap = [(ids, p) for ids, p in ((colour_ids(tok), a.colour_swap), (position_ids(tok), a.position_swap),
                                    *((ids, a.count_swap) for ids in count_ids(tok)),
                                    (torch.arange(U.AUDIO_START, U.AUDIO_START + U.AUDIO_COUNT), a.code_swap)) if p > 0]
    budget = a.minutes * 60
    t_start, t_save = time.time() - elapsed, time.time()
    hist = {t: [] for t in tasks}
    log = open(os.path.join(run, "train.log") if lead else os.devnull, "a")

    keep = [(int(elapsed / 60 // a.keep_every) + 1) * a.keep_every if a.keep_every else 0]

    def save():
        torch.save({"config": U.config_dict(model.c), "model": model.state_dict(), "opt": opt.state_dict(),
                    "step": step, "elapsed": time.time() - t_start}, ck + ".tmp")
        os.replace(ck + ".tmp", ck)
        done = (time.time() - t_start) / 60
        if a.keep_every and done >= keep[0]:     # a copy to evaluate later: runs/R/ckpt-30m.pt
            shutil.copyfile(ck, os.path.join(run, f"ckpt-{int(done)}m.pt"))
            keep[0] = (int(done // a.keep_every) + 1) * a.keep_every
        if a.snap:            # weights only, in shards small enough to copy off a lent machine
            from tools.train import pack
            pack.save_weights(model, U.config_dict(model.c), step, a.snap)

    for part in filter(None, a.frozen.split(",")):
        if part not in ("vis", "aud"):
            raise SystemExit(f"--frozen: unknown part '{part}' (use vis, aud)")
        for p in getattr(model, part).parameters():
            p.requires_grad_(False)      # no gradient: AdamW leaves it (and its decay) alone
    params = [p for p in model.parameters() if p.requires_grad]
    print(f"trained: {sum(p.numel() for p in params) / 1e6:.2f} M parameters", flush=True)
    moe = [L for L in model.dec.layers if L.moe]
    for L in model.dec.layers:
        L.drop = a.dropout
    model.train()
    while True:
        frac = (time.time() - t_start) / budget
        if world > 1:       # rank 0's clock rules: all stop together, on one schedule
            t = torch.tensor([frac])
            dist.broadcast(t, 0)
            frac = t.item()
        if frac >= 1:
            break
        # --mix draws: one padded batch, each draw's loss the mean over its own answer tokens
        draws, samples = [], []
        for _ in range(a.mix):
            task = task_rng.choices(tasks, weights)[0]
            bs = max(1, round(TASKS[task][1] * a.batch_mult))
            draws.append((task, len(samples), len(samples) + bs))
            samples += [data.sample(task, rng.randrange(data.size(task)), rng) for _ in range(bs)]
        for g in opt.param_groups:
            g["lr"] = lr_at(frac, a.lr)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            X, Y = U.build(model, tok, samples, swap)
            answer = Y != -100
            logits = model.dec(X, rows=answer)      # [N,V]: the output head on answer tokens only
        y, row = Y[answer], answer.nonzero()[:, 0]  # each answer token's target and sample
        nll = F.cross_entropy(logits.float(), y, reduction="none")
        if word_w is not None:
            nll = nll * word_w[y]
        task_loss = [nll[(row >= b0) & (row < b1)].sum() / ((row >= b0) & (row < b1)).sum().clamp(min=1)
                     for _, b0, b1 in draws]
        loss = torch.stack(task_loss).mean()
        attr = attribute_batch(model, data, rng, a.attr_batch) if a.attr > 0 else torch.zeros(())
        aux = model.aux_loss()
        ctc = model.ctc_loss() if a.ctc > 0 else torch.zeros(())
        model.aux_ctc_items = []
        loss_all = loss + a.aux * aux + a.ctc * ctc + a.attr * attr
        opt.zero_grad(set_to_none=True)
        loss_all.backward()
        if world > 1:
            average_grads(params, world)
            load = torch.stack([L.load for L in moe])
            dist.all_reduce(load)
            for L, l in zip(moe, load / world):
                L.load = l
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        model.dec.update_bias(1e-3)
        step += 1
        for (task, _, _), l in zip(draws, task_loss):
            hist[task].append(l.item())
        if aux.item() > 0:
            hist.setdefault("aux", []).append(aux.item())
        if ctc.item() > 0:
            hist.setdefault("ctc", []).append(ctc.item())
        if attr.item() > 0:
            hist.setdefault("attr", []).append(attr.item())
        if step % 25 == 0:
            msg = f"step {step} {(time.time() - t_start) / 60:.1f} min lr {lr_at(frac, a.lr):.2e} " + \
                " ".join(f"{t} {np.mean(h[-20:]):.3f}" for t, h in hist.items() if h)
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
        if lead and time.time() - t_save > a.save_every:
            save()
            t_save = time.time()
    if world > 1:       # the processes must end with bit-equal weights, or the averaging was wrong
        c = torch.stack([p.detach().double().sum() for p in params])
        lo, hi = c.clone(), c.clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        if not torch.equal(lo, hi):
            raise RuntimeError("data-parallel processes ended with different weights")
        print("data parallel: the processes' weights agree bit for bit", flush=True)
    if not lead:
        return
    save()
    print(f"done: {step} steps, {(time.time() - t_start) / 60:.1f} min; last losses " +
          " ".join(f"{t} {np.mean(h[-20:]):.3f}" for t, h in hist.items() if h), flush=True)
    if a.attr > 0:
        acc = attribute_accuracy(model, Data(a.data, "val"))
        print("attribute head on val: shape / colour / size %.1f / %.1f / %.1f %%" % tuple(acc[:3]), flush=True)


def answer_word_weights(tok, shape_weight):
    """A weight per vocabulary id for the answer tokens' loss: the shape words (" circle",
    " circles", ...) get shape_weight, every other token 1; None when shape_weight is 1. Shapes
    are the attribute the decoder learns last (docs/MODEL.md), one token among ~10 per caption."""
    if shape_weight == 1.0:
        return None
    from tools.data import scenes
    w = torch.ones(U.N_VOCAB)
    for s in scenes.SHAPES:
        for form in (" " + s, " " + s + "s", " " + s + "es"):
            ids = tok.text(form)
            if len(ids) == 1:
                w[ids[0]] = shape_weight
    return w


def colour_ids(tok):
    """The colour words' token ids (" red", ...): the words --colour-swap shuffles in answers."""
    from tools.data import scenes
    ids = [tok.text(" " + c) for c in scenes.COLOURS]
    assert all(len(i) == 1 for i in ids), ids
    return torch.tensor([i[0] for i in ids])


def position_ids(tok):
    """The position words' token ids (" top", " left", …): the words --position-swap shuffles."""
    ids = [tok.text(" " + w) for w in ("top", "bottom", "left", "right", "center")]
    assert all(len(i) == 1 for i in ids), ids
    return torch.tensor([i[0] for i in ids])


def count_ids(tok):
    """The group count words' token ids, as two groups: at the start of an answer ("two") and
    after a space (" two"); --count-swap shuffles each within itself."""
    words = ("two", "three", "four", "five")
    groups = [[tok.text(w) for w in words], [tok.text(" " + w) for w in words]]
    assert all(len(i) == 1 for g in groups for i in g), groups
    return [torch.tensor([i[0] for i in g]) for g in groups]


def ctc_greedy(model, tok, mel):
    """The CTC head's best path over one log-mel, as text (repeats merged, blanks dropped)."""
    best = model.aux_ctc(model.aud(torch.from_numpy(mel))).argmax(-1).tolist()
    return tok.decode([t for k, t in enumerate(best) if t != U.N_TEXT and (k == 0 or t != best[k - 1])])


def ctc_wer(model, tok, data, n):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from eval.run_eval import norm_text, wer_counts
    model.eval()
    e = w = 0
    with torch.no_grad():
        for i in range(min(n, data.size("transcribe"))):
            de, dn = wer_counts(norm_text(data.speech["meta"][i]["text"]), norm_text(ctc_greedy(model, tok, data.mel(i))))
            e, w = e + de, w + dn
    model.train()
    return 100.0 * e / max(1, w)


def refit_audio_aux(model, data, rng, n=400):
    """Least-squares fit of the audio-row reconstruction head to the encoder's new rows: left fit
    to the old rows, its loss started at 4.2 (0.015 before) and pulled the new rows back."""
    with torch.no_grad():       # (in training mode: audio_rows keeps its rows for the aux losses)
        for _ in range(n):
            model.audio_rows(data.mel(rng.randrange(data.size("transcribe"))))
        rows, mels = zip(*model.aux_audio)
        model.aux_audio = []
        k = 2 * model.c.aud["stack"]
        X, Y = [], []
        for r, m in zip(rows, mels):
            t = min(r.shape[0], m.shape[1] // k)
            X.append(r[:t])
            Y.append(m[:, :t * k].reshape(m.shape[0], t, k).mean(-1).t())
        X, Y = torch.cat(X), torch.cat(Y)
        X1 = torch.cat([X, torch.ones(len(X), 1)], 1)
        W = torch.linalg.lstsq(X1, Y, driver="gelsd").solution       # [d_proj+1, n_mel]
        model.aux_a.weight.copy_(W[:-1].t())
        model.aux_a.bias.copy_(W[-1])
        print(f"audio-row reconstruction head refit: loss {F.mse_loss(X1 @ W, Y).item():.4f}", flush=True)


def train_audio(a):
    """The audio encoder and the CTC head alone: each transcript's tokens read off its audio rows,
    no decoder, ~10× more clips per minute than in the unified model. Writes the run's checkpoint
    back with the new encoder (`write_back`).
    --freeze trains the head alone (after `import`, where it starts at zero)."""
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    ck = os.path.join(a.run, "ckpt.pt")
    st = torch.load(ck, map_location="cpu")
    model = load(a.run).train()
    tok = U.Tok(a.vocab)
    data, val, test = Data(a.data, "train", speech_tempo=a.speech_tempo), Data(a.data, "val"), Data(a.data, "test")
    data.max_mel_frames = 2 * model.aud.pos.shape[0]
    params = ([] if a.freeze else list(model.aud.parameters())) + list(model.aux_ctc.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.98), weight_decay=0.01)
    print(f"{'the CTC head alone' if a.freeze else 'audio encoder alone'}, {a.minutes} min; "
          f"val CTC WER at start {ctc_wer(model, tok, val, 100):.1f} %", flush=True)
    t0, t_eval, step, hist = time.time(), time.time(), 0, []
    while time.time() - t0 < a.minutes * 60:
        for g in opt.param_groups:
            g["lr"] = lr_at((time.time() - t0) / (a.minutes * 60), a.lr)
        for _ in range(a.ctc_batch):
            i = rng.randrange(data.size("transcribe"))
            mel = data.mel_augmented(i, rng) if a.augment else data.mel(i)
            with torch.set_grad_enabled(not a.freeze):
                rows = model.audio_rows(mel)
            model.aux_ctc_items.append((rows, tok.text(data.speech["meta"][i]["text"])))
        model.aux_audio = []
        loss = model.ctc_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        hist.append(loss.item())
        if step % 50 == 0:
            print(f"step {step} {(time.time() - t0) / 60:.1f} min ctc {np.mean(hist[-50:]):.3f}", flush=True)
        if time.time() - t_eval > 300:
            print(f"  val CTC WER {ctc_wer(model, tok, val, 100):.1f} %", flush=True)
            t_eval = time.time()
    print(f"done: {step} steps; CTC WER val {ctc_wer(model, tok, val, 200):.1f} %, "
          f"test (held-out voices) {ctc_wer(model, tok, test, 200):.1f} %", flush=True)
    refit_audio_aux(model, data, rng)
    write_back(ck, st, model)


def attribute_accuracy(model, data, n=1000, bs=100):
    """Per attribute: how often the attribute head names each occupied slot's attribute right (%),
    then shape on the objects whose colour × shape pair training never shows (nan on train / val)."""
    from tools.data import scenes
    right, total, held = np.zeros(len(U.SCENE_ATTRS)), 0, [0, 0]
    was = model.training
    model.eval()
    with torch.no_grad():
        for b0 in range(0, min(n, data.size("caption")), bs):
            idx = range(b0, min(b0 + bs, n, data.size("caption")))
            pred = [o.argmax(-1) for o in model.attr_logits(model.image_rows(np.stack([data.scenes[i] for i in idx])))]
            for j, i in enumerate(idx):
                t = U.scene_targets(data.scene_meta[i])
                full = t[:, 0] < len(U.SCENE_ATTRS[0][1])
                for k in range(len(U.SCENE_ATTRS)):
                    right[k] += (pred[k][j][full] == t[full, k]).sum().item()
                for ob in data.scene_meta[i]["objects"]:
                    if (ob["colour"], ob["shape"]) in scenes.HELDOUT_COLOUR_SHAPE:
                        s = ob["row"] * 3 + ob["col"]
                        held[0] += pred[0][j][s].item() == t[s, 0].item()
                        held[1] += 1
                total += full.sum().item()
    model.train(was)
    return np.append(100.0 * right / max(1, total), 100.0 * held[0] / held[1] if held[1] else float("nan"))


def attribute_batch(model, data, rng, n):
    """The attribute head's loss on n random training scenes (their rows also join aux_loss)."""
    idx = [rng.randrange(data.size("caption")) for _ in range(n)]
    rows = model.image_rows(np.stack([data.scenes[i] for i in idx]))
    return model.attr_loss(rows, torch.stack([U.scene_targets(data.scene_meta[i]) for i in idx]).to(rows.device))


def train_vision(a):
    """The vision encoder alone: a linear head (training only) names the shape, colour and size
    in each of the 9 grid slots from the image's rows, by cross-entropy, next to the row
    reconstruction loss. No decoder: thousands of pictures a minute. --freeze trains the head
    alone (a probe of what the rows already hold) and writes nothing."""
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    ck = os.path.join(a.run, "ckpt.pt")
    st = torch.load(ck, map_location="cpu")
    model = load(a.run).train()
    if a.freeze:          # a probe: a fresh head on the rows as they are
        torch.nn.init.zeros_(model.aux_attr.weight)
        torch.nn.init.zeros_(model.aux_attr.bias)
    head = model.aux_attr
    data, val, test = Data(a.data, "train"), Data(a.data, "val"), Data(a.data, "test")
    params = list(head.parameters()) + ([] if a.freeze else list(model.vis.parameters()) + list(model.aux.parameters()))
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.98), weight_decay=0.01)
    t0, t_eval, step, hist = time.time(), time.time(), 0, []
    while time.time() - t0 < a.minutes * 60:
        for g in opt.param_groups:
            g["lr"] = lr_at((time.time() - t0) / (a.minutes * 60), a.lr)
        if time.time() - t_eval > 300:
            print("  val shape / colour / size %.1f / %.1f / %.1f %%" % tuple(attribute_accuracy(model, val, 300)[:3]),
                  flush=True)
            t_eval = time.time()
        loss = attribute_batch(model, data, rng, a.vis_batch)
        aux = model.aux_loss()
        opt.zero_grad(set_to_none=True)
        (loss + (0 if a.freeze else a.aux * aux)).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        hist.append(loss.item())
        if step % 100 == 0:
            print(f"step {step} {(time.time() - t0) / 60:.1f} min attributes {np.mean(hist[-100:]):.3f} "
                  f"rows {aux.item():.4f}", flush=True)
    for name, d in (("val", val), ("test (held-out compositions)", test)):
        acc = attribute_accuracy(model, d)
        print(f"done: {step} steps; {name}: shape {acc[0]:.1f} %, colour {acc[1]:.1f} %, size {acc[2]:.1f} %"
              + (f"; shape of held-out colour × shape pairs {acc[3]:.1f} %" if acc[3] == acc[3] else ""), flush=True)
    if a.freeze:
        return
    write_back(ck, st, model)


def write_back(ck, st, model):
    """An encoder stage's weights back into the run's checkpoint, without optimizer state and with
    the schedule's clock at zero: the next `train` starts a fresh optimizer on a fresh schedule
    (warm-up included) and, resumed after an interruption, keeps to that schedule."""
    st = {k: v for k, v in st.items() if k != "opt"}
    st["model"], st["elapsed"] = model.state_dict(), 0.0
    torch.save(st, ck + ".tmp")
    os.replace(ck + ".tmp", ck)


def load(run):
    st = torch.load(os.path.join(run, "ckpt.pt"), map_location="cpu")
    model = U.Unified(U.config_from(st["config"]))
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in st["model"].items()}, strict=False)
    assert not unexpected and all(k.startswith("aux") for k in missing), (missing, unexpected)
    return model.eval()


def import_gguf(a):
    """A bundled model (<--gguf>.gguf + -mmproj.gguf) → <run>/ckpt.pt, weights only (a fresh
    optimizer), so `train` goes on from it."""
    ck = os.path.join(a.run, "ckpt.pt")
    if os.path.exists(ck):
        sys.exit(f"import: {ck} exists; choose another --run")
    model = U.load_gguf(a.gguf)
    os.makedirs(a.run, exist_ok=True)
    torch.save({"config": U.config_dict(model.c), "model": model.state_dict(), "step": 0, "elapsed": 0.0}, ck)
    print(f"{a.gguf}.gguf → {ck}")


def soup(a):
    """<run>/ckpt.pt = the mean of the weights of --from's models (run folders, whose ckpt.pt is
    read, or GGUF stems), weights only: checkpoints of one lineage (a run going on from another)
    average into one model ("model soup"), which can generalize better than either."""
    ck = os.path.join(a.run, "ckpt.pt")
    if os.path.exists(ck):
        sys.exit(f"soup: {ck} exists; choose another --run")
    srcs = [s for s in a.soup_from.split(",") if s]
    if len(srcs) < 2:
        sys.exit("soup: --from needs two or more models")
    states, config, words, regions = [], None, False, False
    for src in srcs:
        if os.path.isdir(src):
            m = load(src)
        else:
            m = U.load_gguf(src)
        arch = {k: v for k, v in U.config_dict(m.c).items() if k not in ("speech_words", "caption_regions")}
        config = config or arch
        if arch != config:
            sys.exit(f"soup: {src} has another architecture than {srcs[0]}")
        words = words or m.c.speech_words       # the mean spells speech if one of them learnt to
        regions = regions or m.c.caption_regions   # and reads captions by region
        states.append(m.state_dict())
    mean = {k: sum(st[k].float() for st in states) / len(states) if states[0][k].is_floating_point() else states[0][k]
            for k in states[0]}
    os.makedirs(a.run, exist_ok=True)
    torch.save({"config": dict(config, speech_words=words, caption_regions=regions), "model": mean, "step": 0, "elapsed": 0.0}, ck)
    print(f"mean of {len(srcs)} models ({', '.join(srcs)}) → {ck}")


def export(a):
    model = load(a.run)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    U.export(model, a.vocab, a.out)
    print("wrote", a.out + ".gguf", a.out + "-mmproj.gguf")
    # the media codecs are trained apart (tools/loompy/vq.py, audiocodec.py): copy the bundled
    # ones beside the export, where `loom imagine / speak / animate / chat` look for them
    for suffix in ("-vq.gguf", "-audiocodec.gguf"):
        src, dst = os.path.join(os.path.dirname(a.vocab), "loom-tiny" + suffix), a.out + suffix
        if os.path.exists(src) and not os.path.exists(dst):
            shutil.copyfile(src, dst)
            print("copied", src, "to", dst)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=["train", "audio", "vision", "export", "import", "soup"])
    ap.add_argument("--data", default="data")
    ap.add_argument("--run", default="runs/tiny")
    ap.add_argument("--vocab", default="models/loom-tiny-vocab.gguf")
    ap.add_argument("--out", default="runs/tiny/loom-tiny")
    ap.add_argument("--gguf", default="models/loom-tiny", help="`import`: the model to go on from (stem)")
    ap.add_argument("--from", dest="soup_from", default="",
                    help="`soup`: comma-separated run folders or GGUF stems whose weights are averaged into --run")
    ap.add_argument("--minutes", type=float, default=90)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weights", default="", help="task=weight,... overriding the defaults in TASKS")
    ap.add_argument("--aux", type=float, default=1.0, help="weight of the image-row reconstruction loss")
    ap.add_argument("--ctc", type=float, default=0.0, help="weight of the transcripts' CTC loss on audio rows")
    ap.add_argument("--attr", type=float, default=0.0,
                    help="`train`: weight of the attribute head's loss (shape, colour, size per grid slot "
                         "from the image rows, as in `vision`), on --attr-batch more scenes a step")
    ap.add_argument("--attr-batch", type=int, default=32, help="scenes per step of the --attr loss")
    ap.add_argument("--dropout", type=float, default=0.0,
                    help="dropout on the decoder's attention and FFN outputs while training (the exported model has none)")
    ap.add_argument("--shape-weight", type=float, default=1.0,
                    help="loss weight of the shape words in every answer (1: like any other token)")
    ap.add_argument("--colour-swap", type=float, default=0.0,
                    help="probability that a colour word in an answer is fed back as a random colour "
                         "(its label stays): shapes must come from the picture, not from the colour")
    ap.add_argument("--position-swap", type=float, default=0.0,
                    help="probability that a position word (top, bottom, left, right, center) in an "
                         "answer is fed back as a random one (its label stays): where the next object "
                         "is must come from the picture, not from the layout written so far")
    ap.add_argument("--count-swap", type=float, default=0.0,
                    help="the same for the count words two … five: how many places follow must come "
                         "from the picture, not from the number written before them")
    ap.add_argument("--count-first", action="store_true",
                    help="caption targets start with the number of objects (\"two shapes: …\"; a probe)")
    ap.add_argument("--code-swap", type=float, default=0.0,
                    help="probability that an audio code of an answer (text to speech, say_write) is fed "
                         "back as a random code (its label stays): the next code must lean on the words, "
                         "not only on the codes so far (sampled speech drifts: its first words right, "
                         "then another sentence of the world)")
    ap.add_argument("--ctc-batch", type=int, default=16, help="clips per step of `audio`")
    ap.add_argument("--no-augment", dest="augment", action="store_false",
                    help="`audio`: train on the clips as they are (no shifted or masked log-mels)")
    ap.add_argument("--speech-augment", type=float, default=0.0,
                    help="`train`: share of transcription clips whose log-mel is shifted and masked as in `audio`")
    ap.add_argument("--speech-tempo", type=float, default=0.0,
                    help="`train`, `audio`: augmented log-mels are also stretched in time by up to "
                         "± this share (0.15: 85–115 %% of their length)")
    ap.add_argument("--speech-accents", type=float, default=0.0,
                    help="`train`: share of transcription turns drawn from the accents split "
                         "(tools/data/speech.py --accents: the training voices with changed pronunciations)")
    ap.add_argument("--speech-shift", type=float, default=0.0,
                    help="`train`: half the transcription clips start and end with between -0.08 s and this many "
                         "seconds of their own quiet ends, so that speech need not start where the data's does")
    ap.add_argument("--speech-gain", type=float, default=0.0,
                    help="`train`: half the transcription clips are up to this many dB quieter (the data's all peak at 0.70)")
    ap.add_argument("--tts-voice", type=float, default=0.0,
                    help="`train`: share of text-to-speech and say_write turns whose target is loom's own clean "
                         "voice (tools/data/speech.py --voice) instead of the transcription data's many voices")
    ap.add_argument("--tts-words", action="store_true",
                    help="`train`: text-to-speech targets in loom's own voice (--tts-voice) written as each word "
                         "followed by its codes (prep.py's voice_units.npz), so the model says the words in turn")
    ap.add_argument("--video-mp4", type=float, default=0.0,
                    help="`train`: share of video-description clips read as their MP4s decode "
                         "(videos/train_mp4.npy from prep.py) instead of the exact renders")
    ap.add_argument("--frozen", default="",
                    help="`train`: parts whose weights stay as they are, comma-separated: vis (the vision encoder "
                         "and its projector), aud (the audio encoder and its projector)")
    ap.add_argument("--vis-batch", type=int, default=64, help="pictures per step of `vision`")
    ap.add_argument("--freeze", action="store_true", help="`vision`: train the attribute head alone (a probe, writes nothing); "
                         "`audio`: train the CTC head alone on the frozen encoder")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-bf16", dest="bf16", action="store_false")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda on a machine with a GPU")
    ap.add_argument("--mix", type=int, default=1,
                    help="tasks drawn per step, trained as one padded batch (fewer, larger steps: for a GPU)")
    ap.add_argument("--procs", type=int, default=1,
                    help="`train`: data-parallel processes sharing --threads (each draws its own samples; "
                         "the gradients are averaged, so a step trains procs x the batch)")
    ap.add_argument("--batch-mult", type=float, default=1.0, help="scale every task's batch size")
    ap.add_argument("--new-schedule", action="store_true",
                    help="resume the weights but start a fresh --minutes learning-rate schedule")
    ap.add_argument("--save-every", type=float, default=180, help="seconds between checkpoints")
    ap.add_argument("--keep-every", type=float, default=0,
                    help="minutes between checkpoints also kept as ckpt-<minutes>m.pt (0: none)")
    ap.add_argument("--snap", default="", help="also write weight shards here at every checkpoint")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    {"train": train, "audio": train_audio, "vision": train_vision, "export": export,
     "import": import_gguf, "soup": soup}[a.cmd](a)


if __name__ == "__main__":
    main()
