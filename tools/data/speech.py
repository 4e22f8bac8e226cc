"""Synthetic speech: grammar sentences spoken by espeak-ng, degraded with sox reverb and noise.

Deterministic from a seed (given the same espeak-ng / sox builds; sox -R seeds its dither, which
without it differs by up to 2 LSB from run to run). 16 kHz mono 16-bit WAV.
Splits: train and val use the TRAIN_VOICES; test uses the held-out TEST_VOICES only.
Each voice is combined with a random variant (`-v en-us+f3`), speed and pitch.
`--accents N` adds a training-only split "accents": sentences whose espeak-ng phonemes, as one
training voice's dictionary spells them, are changed by a random set of ACCENT_RULES (sound
changes found across English accents and learners' English) and spoken by another training
voice, so transcription meets pronunciations none of the six voices has.
`--voice N` adds a training-only split "voice": sentences spoken by one voice (TTS_VOICE), at one
speed and pitch, without reverb and with faint white noise: the targets text-to-speech learns, so
that the codes it writes follow from the words alone (stop 45).

    /usr/bin/python3 tools/data/speech.py --out data/speech --train 4000 --val 200 --test 400
writes data/speech/{split}/{id}.wav and data/speech/{split}.jsonl
({"id", "wav", "text", "voice", "variant", "speed", "pitch", "reverb", "snr_db", "seconds"}).
"""
import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import wave
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data import scenes  # noqa: E402

SR = 16000
TRAIN_VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-us-nyc"]
TEST_VOICES = ["en-029", "en-gb-x-gbcwmd"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "Alex",
            "Annie", "adam", "anika", "aunty", "belinda", "benjamin", "david", "edward",
            "john", "linda", "max", "michel", "paul", "robert", "steph", "travis", "victor"]

# Sound changes of English accents and learners' English, on espeak-ng's phoneme mnemonics
# (`espeak-ng -x`): each a regular expression on one word and its replacement. They are generic
# (none copies a test voice); an accents utterance applies each with probability ACCENT_P.
ACCENT_RULES = {
    "th-stopping": [(r"T", "t"), (r"D", "d")],
    "th-fronting": [(r"T", "f"), (r"D", "v")],
    "th-alveolar": [(r"T", "s"), (r"D", "z")],
    "h-dropping": [(r"(?<![tdsSzZ])h", "")],
    "final-devoicing": [(r"b$", "p"), (r"(?<![tn])d$", "t"), (r"g$", "k"), (r"v$", "f"), (r"(?<!d)z$", "s")],
    "g-dropping": [(r"IN$", "In"), (r"N$", "n")],
    "cluster-reduction": [(r"st$", "s"), (r"nd$", "n"), (r"kt$", "k"), (r"ld$", "l"), (r"ts$", "s")],
    "kit-fleece": [(r"(?<![aOe])I[#2]?", "i:")],
    "foot-goose": [(r"(?<![aoA])U(?![@:])", "u:")],
    "strut-lot": [(r"V", "0")],
    "trap-bath": [(r"(?<!a)a(?![aI#U])", "aa")],
    "non-rhotic": [(r"3(?!:)", "@")],
    "w-v": [(r"^([^aeiouAEIOUV0@3]*)w", r"\1v")],
    "face-monophthong": [(r"eI", "e:")],
    "goat-monophthong": [(r"oU", "o:")],
    "full-schwa": [(r"(?<![eiUAO3])@(?![L25-])", "a")],
}
ACCENT_P = 0.3


def accent_phonemes(phonemes, rules):
    """espeak-ng phoneme words (`-x` output) with the named ACCENT_RULES applied to each word."""
    out = []
    for word in phonemes.split():
        for name in rules:
            for pat, rep in ACCENT_RULES[name]:
                word = re.sub(pat, rep, word)
        out.append(word)
    return " ".join(out)


# ---------------------------------------------------------------- vocabulary
W = lambda s: s.split()  # noqa: E731
ANIMALS = W("cat dog horse cow sheep goat pig duck goose chicken rabbit mouse fox wolf bear lion "
            "tiger zebra monkey whale dolphin shark frog snake bird owl eagle turtle camel deer")
FOODS = W("apple banana orange grape lemon cherry bread cheese butter egg rice soup salad "
          "carrot potato tomato onion pepper cookie cake pie sandwich noodle pizza candy")
THINGS = W("book pen pencil cup plate bowl spoon fork knife chair table door window lamp clock "
           "phone camera bottle basket bag box key ring coin hat shoe sock shirt coat umbrella "
           "ball kite drum guitar piano bell bike car bus train boat plane rocket truck")
PLACES = W("kitchen garden park school library station market forest river beach mountain "
           "village city street bridge farm office museum hospital airport island desert lake")
PEOPLE = W("teacher doctor farmer baker driver pilot artist singer writer student child friend "
           "neighbour sister brother mother father uncle aunt captain nurse chef")
NAMES = W("anna ben clara david emma frank grace henry iris jack kate leo maria nina oscar paul "
          "rosa sam tom vera")
ADJS = W("happy sad tall short old young quick slow bright dark quiet loud warm cold soft hard "
         "heavy light clean dirty empty full new tiny huge smart brave kind funny strange busy "
         "lazy hungry tired rich poor sweet sour fresh dry wet")
ADVS = W("slowly quickly quietly loudly carefully happily suddenly gently finally always often "
         "never sometimes today tomorrow yesterday soon again")
VERBS = {  # base: (third person, past)
    "see": ("sees", "saw"), "find": ("finds", "found"), "take": ("takes", "took"),
    "bring": ("brings", "brought"), "carry": ("carries", "carried"), "watch": ("watches", "watched"),
    "paint": ("paints", "painted"), "clean": ("cleans", "cleaned"), "open": ("opens", "opened"),
    "close": ("closes", "closed"), "push": ("pushes", "pushed"), "pull": ("pulls", "pulled"),
    "hold": ("holds", "held"), "buy": ("buys", "bought"), "sell": ("sells", "sold"),
    "cook": ("cooks", "cooked"), "eat": ("eats", "ate"), "drink": ("drinks", "drank"),
    "throw": ("throws", "threw"), "catch": ("catches", "caught"), "hide": ("hides", "hid"),
    "follow": ("follows", "followed"), "visit": ("visits", "visited"), "draw": ("draws", "drew"),
    "build": ("builds", "built"), "break": ("breaks", "broke"), "fix": ("fixes", "fixed"),
    "wash": ("washes", "washed"), "lift": ("lifts", "lifted"), "drop": ("drops", "dropped"),
    "count": ("counts", "counted"), "move": ("moves", "moved"), "need": ("needs", "needed"),
    "want": ("wants", "wanted"), "like": ("likes", "liked"), "love": ("loves", "loved"),
    "forget": ("forgets", "forgot"), "remember": ("remembers", "remembered"),
}
INTRANS = {"run": ("runs", "ran"), "walk": ("walks", "walked"), "sleep": ("sleeps", "slept"),
           "sing": ("sings", "sang"), "dance": ("dances", "danced"), "swim": ("swims", "swam"),
           "jump": ("jumps", "jumped"), "wait": ("waits", "waited"), "laugh": ("laughs", "laughed"),
           "cry": ("cries", "cried"), "fly": ("flies", "flew"), "sit": ("sits", "sat"),
           "stand": ("stands", "stood"), "work": ("works", "worked"), "play": ("plays", "played"),
           "rest": ("rests", "rested"), "shout": ("shouts", "shouted"), "smile": ("smiles", "smiled")}
PREPS = W("in near behind under beside inside outside across through around")
COMMANDS = [
    "turn left", "turn right", "go forward", "go back", "stop", "start", "wait here",
    "come back", "open the door", "close the window", "turn on the light", "turn off the light",
    "play some music", "pause the music", "next song", "volume up", "volume down",
    "take a picture", "show me the map", "call home", "cancel that", "say hello", "read the news",
    "check the weather", "clear the screen", "save the file", "undo", "repeat that",
    "zoom in", "zoom out", "scroll down", "scroll up", "select all", "copy this", "paste it",
]
UNITS = W("minutes hours seconds days weeks steps meters miles dollars points")
TIME_WORDS = W("morning afternoon evening night monday tuesday wednesday thursday friday "
               "saturday sunday january february march april may june july august september "
               "october november december")
DIRS = W("north south east west up down left right")
PLURAL = {"mouse": "mice", "sheep": "sheep", "deer": "deer", "goose": "geese", "fox": "foxes",
          "box": "boxes", "potato": "potatoes", "tomato": "tomatoes", "cherry": "cherries",
          "candy": "candies", "knife": "knives", "bus": "buses", "sandwich": "sandwiches",
          "fish": "fish", "child": "children", "library": "libraries", "city": "cities",
          "peach": "peaches", "glass": "glasses", "brush": "brushes", "watch": "watches",
          "church": "churches", "dress": "dresses", "lunch": "lunches", "beach": "beaches",
          "class": "classes", "cross": "crosses", "match": "matches", "wolf": "wolves"}

ONES = W("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen")
TENS = W("_ _ twenty thirty forty fifty sixty seventy eighty ninety")


def plural(n):
    return PLURAL.get(n, n + "s")


def number_words(n):
    """0..999999 in words (no 'and'), e.g. 1204 -> 'one thousand two hundred four'."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        return ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    return (number_words(n // 1000) + " thousand"
            + ("" if n % 1000 == 0 else " " + number_words(n % 1000)))


def art(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


# ---------------------------------------------------------------- grammar

def _num(rng):
    r = rng.random()
    if r < 0.5:
        return int(rng.integers(0, 20))
    if r < 0.8:
        return int(rng.integers(20, 100))
    if r < 0.95:
        return int(rng.integers(100, 1000))
    return int(rng.integers(1000, 100000))


def sentence(rng):
    c = lambda xs: str(xs[int(rng.integers(len(xs)))])  # noqa: E731
    kind = int(rng.integers(12))
    if kind == 0:  # a scene caption
        lab = scenes.sample_label(rng, want_heldout=False)
        return scenes.captions(lab, rng)[int(rng.integers(4))].replace(":", "").replace(";", "").replace(",", "")
    if kind == 1:  # drawing command
        n = int(rng.integers(1, 4))
        shape = c(scenes.SHAPES)
        obj = (f"{art(c(list(scenes.SIZES)))} {c(list(scenes.COLOURS))} {shape}" if n == 1 else
               f"{number_words(n)} {c(list(scenes.COLOURS))} {scenes.plural(shape)}")
        pos = scenes.pos_phrase(int(rng.integers(3)), int(rng.integers(3)))
        return f"{c(['draw', 'please draw', 'show me', 'make', 'paint'])} {obj} {pos}"
    if kind == 2:  # VQA-style question
        return c([f"what colour is the {c(scenes.SHAPES)}",
                  f"how many {scenes.plural(c(scenes.SHAPES))} are there",
                  f"where is the {c(list(scenes.COLOURS))} {c(scenes.SHAPES)}",
                  f"is there {art(c(scenes.SHAPES))} {scenes.pos_phrase(int(rng.integers(3)), int(rng.integers(3)))}"])
    if kind == 3:  # device commands
        s = c(COMMANDS)
        return s if rng.random() < 0.6 else f"{c(['please', 'now', 'okay'])} {s}"
    if kind == 4:  # numbers and units
        return c([f"set a timer for {number_words(_num(rng))} {c(UNITS)}",
                  f"move {number_words(int(rng.integers(1, 50)))} {c(UNITS)} {c(DIRS)}",
                  f"the answer is {number_words(_num(rng))}",
                  f"it costs {number_words(_num(rng))} dollars"])
    if kind == 5:  # arithmetic
        a, b = int(rng.integers(0, 50)), int(rng.integers(0, 50))
        if rng.random() < 0.5:
            return f"{number_words(a)} plus {number_words(b)} is {number_words(a + b)}"
        return f"{number_words(a)} times {number_words(b % 10)} is {number_words(a * (b % 10))}"
    if kind in (6, 7):  # transitive statement
        subj = c([f"the {c(ADJS)} {c(ANIMALS)}", f"the {c(PEOPLE)}", c(NAMES), f"my {c(PEOPLE)}"])
        v = c(list(VERBS))
        obj = c([f"the {c(THINGS)}", f"{art(c(ADJS))} {c(FOODS)}",
                 f"{number_words(int(rng.integers(2, 13)))} {plural(c(THINGS + FOODS))}"])
        tense = int(rng.integers(2))
        verb = VERBS[v][tense]
        tail = c(["", f" {c(PREPS)} the {c(PLACES)}", f" {c(ADVS)}"])
        return f"{subj} {verb} {obj}{tail}"
    if kind == 8:  # intransitive
        subj = c([f"the {c(ADJS)} {c(ANIMALS)}", f"{c(NAMES)}", f"the {c(PEOPLE)}"])
        v = c(list(INTRANS))
        return f"{subj} {INTRANS[v][int(rng.integers(2))]} {c(PREPS)} the {c(PLACES)} {c(ADVS)}"
    if kind == 9:  # questions
        return c([f"where is the {c(THINGS)}", f"can you {c(list(VERBS))} the {c(THINGS)}",
                  f"how many {plural(c(ANIMALS))} live {c(PREPS)} the {c(PLACES)}",
                  f"did {c(NAMES)} {c(list(INTRANS))} {c(ADVS)}",
                  f"what time is the {c(PEOPLE)} coming"])
    if kind == 10:  # time and plans
        return c([f"see you on {c(TIME_WORDS[4:11])} {c(TIME_WORDS[:4])}",
                  f"we will go to the {c(PLACES)} in {c(TIME_WORDS[11:])}",
                  f"call {c(NAMES)} at {number_words(int(rng.integers(1, 13)))} in the {c(TIME_WORDS[:3])}",
                  f"remind me to buy {c(FOODS)} {c(['today', 'tomorrow', 'tonight'])}"])
    return c([f"the {c(THINGS)} is {c(ADJS)}", f"this {c(FOODS)} tastes {c(ADJS)}",
              f"{c(NAMES)} is {art(c(ADJS))} {c(PEOPLE)}",
              f"there are {number_words(int(rng.integers(2, 20)))} {plural(c(ANIMALS))} on the {c(['farm', 'hill', 'road', 'beach'])}"])


def vocabulary():
    words = set()
    for lst in (ANIMALS, FOODS, THINGS, PLACES, PEOPLE, NAMES, ADJS, ADVS, PREPS, UNITS,
                TIME_WORDS, DIRS, ONES, TENS[2:], scenes.SHAPES, list(scenes.COLOURS),
                list(scenes.SIZES), list(VERBS), list(INTRANS)):
        words.update(lst)
    for v in list(VERBS.values()) + list(INTRANS.values()):
        words.update(v)
    for c in COMMANDS:
        words.update(c.split())
    words.update(plural(n) for n in ANIMALS + FOODS + THINGS)
    return words


# ---------------------------------------------------------------- synthesis

def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


def write_wav(path, x, sr=SR):
    """Written whole or not at all: generate() resumes by skipping the wavs that exist, and a
    run cut off mid-write must not leave a short one behind."""
    y = np.clip(np.round(np.asarray(x) * 32767), -32768, 32767).astype(np.int16)
    tmp = path + ".tmp"
    with wave.open(tmp, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(y.tobytes())
    os.replace(tmp, path)


def synth(job):
    """job: dict with text, voice, variant, speed, pitch, reverb, snr_db, seed, path."""
    say = job["text"]
    if "rules" in job:   # the accents split: another voice's phonemes, changed, spoken as phonemes
        ph = subprocess.run(["espeak-ng", "-q", "-x", "-v", job["dict_voice"], job["text"]],
                            check=True, capture_output=True, text=True).stdout
        say = "[[" + accent_phonemes(ph, job["rules"]) + "]]"
    with tempfile.TemporaryDirectory() as td:
        raw = os.path.join(td, "raw.wav")
        subprocess.run(["espeak-ng", "-v", f"{job['voice']}+{job['variant']}", "-s",
                        str(job["speed"]), "-p", str(job["pitch"]), "-w", raw, say],
                       check=True, capture_output=True)
        clean = os.path.join(td, "clean.wav")     # the noisy result alone reaches job["path"]:
        cmd = ["sox", "-R", raw, "-r", str(SR), "-c", "1", "-b", "16", clean]   # a resumed run
        if job["reverb"]:                          # skips any wav that exists
            cmd += ["reverb", str(job["reverb"]), "50", str(job["room"])]
        cmd += ["pad", "0.1", "0.1", "norm", "-3"]
        subprocess.run(cmd, check=True, capture_output=True)
        x = read_wav(clean)
    rng = np.random.default_rng(job["seed"])
    noise = rng.standard_normal(len(x)).astype(np.float32)
    if job["pink"]:  # crude 1/f tilt: leaky integration
        noise = np.convolve(noise, 0.9 ** np.arange(32), mode="same").astype(np.float32)
    p = float(np.mean(x ** 2)) + 1e-9
    noise *= np.sqrt(p / 10 ** (job["snr_db"] / 10) / (np.mean(noise ** 2) + 1e-12))
    y = x + noise
    y *= min(1.0, 0.95 / (np.abs(y).max() + 1e-9))
    write_wav(job["path"], y)
    return len(y) / SR


class _Event(ctypes.Structure):      # espeak_EVENT (speak_lib.h)
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_ESPEAK = {}


def word_starts(text, voice):
    """Where the words of `text` begin in the clip synth() writes for `voice` (a TTS_VOICE-like
    dict without reverb): [(index of the first word, seconds)], one per word espeak-ng reports
    (it speaks some short words with the next, "in the", as one), or None when its words do not
    start where the text's do. espeak-ng's library speaks the samples its command writes (a
    prefix of them: the command adds trailing silence) and reports each word's first sample;
    sox then pads 0.1 s in front."""
    if not _ESPEAK:
        lib = ctypes.CDLL("libespeak-ng.so.1")
        cb_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
        _ESPEAK.update(lib=lib, rate=lib.espeak_Initialize(2, 0, None, 0), events=[])  # AUDIO_OUTPUT_SYNCHRONOUS

        def on_audio(_wav, _n, ev):
            i = 0
            while ev[i].type != 0:                     # espeakEVENT_LIST_TERMINATED
                if ev[i].type == 1 and ev[i].text_position > 0:   # espeakEVENT_WORD (some clips end with one at 0)
                    _ESPEAK["events"].append((ev[i].text_position, ev[i].sample))
                i += 1
            return 0
        _ESPEAK["cb"] = cb_type(on_audio)              # kept alive as long as the library may call it
        lib.espeak_SetSynthCallback(_ESPEAK["cb"])
    lib, events = _ESPEAK["lib"], _ESPEAK["events"]
    events.clear()
    lib.espeak_SetVoiceByName(f"{voice['voice']}+{voice['variant']}".encode())
    lib.espeak_SetParameter(1, int(voice["speed"]), 0)     # espeakRATE
    lib.espeak_SetParameter(3, int(voice["pitch"]), 0)     # espeakPITCH
    b = text.encode()
    if lib.espeak_Synth(b, len(b) + 1, 0, 1, 0, 0, None, None) != 0:   # POS_CHARACTER, espeakCHARS_AUTO
        return None
    starts = {m.start() + 1: k for k, m in enumerate(re.finditer(r"\S+", text))}   # espeak counts from 1
    if not events or events[0][0] != 1 or any(p not in starts for p, _ in events):
        return None
    return [(starts[p], 0.1 + sample / _ESPEAK["rate"]) for p, sample in events]


# loom's own voice (the "voice" split): a training voice, clean; white noise at 40 dB SNR, the
# quietest the transcriber trained on, so its silences are not the digital silence it never heard
TTS_VOICE = {"voice": "en-us", "variant": "m3", "speed": 165, "pitch": 50, "reverb": 0, "room": 0,
             "snr_db": 40.0, "pink": False}


def make_jobs(out, split, n, seed, voices):
    rng = np.random.default_rng([seed, {"train": 0, "val": 1, "test": 2, "accents": 3, "voice": 4}[split]])
    jobs = []
    for i in range(n):
        text = sentence(rng)
        reverb = int(rng.integers(10, 50)) if rng.random() < 0.5 else 0
        jobs.append({"id": f"{split}-{i:05d}", "text": text,
                     "voice": voices[int(rng.integers(len(voices)))],
                     "variant": VARIANTS[int(rng.integers(len(VARIANTS)))],
                     "speed": int(rng.integers(130, 210)), "pitch": int(rng.integers(25, 75)),
                     "reverb": reverb, "room": int(rng.integers(10, 60)),
                     "snr_db": round(float(rng.uniform(15, 40)), 1), "pink": bool(rng.random() < 0.5),
                     "seed": [seed, i, len(split)],
                     "path": os.path.join(out, split, f"{split}-{i:05d}.wav")})
        if split == "accents":
            rules = [r for r in ACCENT_RULES if rng.random() < ACCENT_P]
            jobs[-1]["rules"] = rules or [list(ACCENT_RULES)[int(rng.integers(len(ACCENT_RULES)))]]
            jobs[-1]["dict_voice"] = voices[int(rng.integers(len(voices)))]
        if split == "voice":
            jobs[-1].update(TTS_VOICE)
    return jobs


def generate(out, counts, seed, procs=2):
    stats = {}
    for split, n in counts.items():
        os.makedirs(os.path.join(out, split), exist_ok=True)
        jobs = make_jobs(out, split, n, seed, TEST_VOICES if split == "test" else TRAIN_VOICES)
        todo = [j for j in jobs if not os.path.exists(j["path"])]  # resumable
        with Pool(procs) as pool:
            list(pool.imap_unordered(synth, todo, chunksize=8))
        total = 0.0
        with open(os.path.join(out, f"{split}.jsonl"), "w") as f:
            for j in jobs:
                with wave.open(j["path"]) as w:
                    secs = w.getnframes() / SR
                total += secs
                rec = {k: j[k] for k in ("id", "text", "voice", "variant", "speed", "pitch",
                                         "reverb", "snr_db", "dict_voice", "rules") if k in j}
                rec["wav"] = os.path.relpath(j["path"], out)
                rec["seconds"] = round(secs, 3)
                f.write(json.dumps(rec) + "\n")
        stats[split] = (n, round(total / 60, 1))
    return stats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/speech")
    ap.add_argument("--train", type=int, default=4000)
    ap.add_argument("--val", type=int, default=200)
    ap.add_argument("--test", type=int, default=400)
    ap.add_argument("--accents", type=int, default=0, help="training utterances with changed pronunciations")
    ap.add_argument("--voice", type=int, default=0, help="training utterances in loom's one clean voice")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--vocab", action="store_true", help="print vocabulary size and exit")
    a = ap.parse_args(argv)
    if a.vocab:
        print(len(vocabulary()))
        return
    t = time.time()
    counts = {"train": a.train, "val": a.val, "test": a.test, "accents": a.accents, "voice": a.voice}
    stats = generate(a.out, {k: n for k, n in counts.items() if n}, a.seed, a.procs)
    print(f"speech: {{split: (utterances, minutes)}} {stats} -> {a.out} in {time.time() - t:.1f} s",
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
