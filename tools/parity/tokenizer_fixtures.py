#!/usr/bin/env python3
"""Tokenizer fixtures: synthesize a training text, train loom's BPE vocabulary on it, and
write the test corpus for the llama.cpp comparison.

    /usr/bin/python3 tools/parity/tokenizer_fixtures.py vocab  OUT_DIR   # vocab GGUFs + dump
    /usr/bin/python3 tools/parity/tokenizer_fixtures.py corpus OUT_FILE  # parity strings
    /usr/bin/python3 tools/parity/tokenizer_fixtures.py model  VOCAB.gguf OUT.gguf [PRE]
        (a llama-architecture model GGUF with that vocabulary, no tensors: llama.cpp loads it
         with vocab_only, which is all tokenization needs)

Everything is deterministic (fixed seeds), so re-running reproduces the committed files.
"""
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from loompy import bpe, gguf  # noqa: E402

WORDS = """the of and to in is was that for it with as his on be at by he this had not are
but from or have an they which one you were her all she there would their we him been has
when who will more no if out so said what up its about into than them can only other new
some could time these two may then do first any my now such like our over man me even most
made after also did many before must through back years where much your way well down
should because each just those people how too little state good very make world still own
see men work long get here between both life being under never day same another know while
last might us great old year off come since against go came right used take three model
token image audio video frame decoder encoder sample tensor matrix vector layer weight
attention expert router kernel thread memory cache context sequence prompt reply question
answer system user assistant write read open close file path value error status result
""".split()
ACCENTED = "café naïve Über façade niño São Paulo Zürich crème brûlée déjà vu résumé coöperate " \
           "Ångström Łódź Dvořák Šťastný señor mañana ça va élève garçon fiancée".split()
CJK = "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着" \
      "事其里所去行过家十用发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从"
KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん" \
       "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンー・ヴ"
HANGUL = "한국어 안녕하세요 감사합니다 사랑 학교 컴퓨터".split()
CYRILLIC = "привет мир Москва спасибо хорошо язык".split()
GREEK = "γειά σου κόσμε αλφάβητο Ελλάδα λόγος".split()
EMOJI = ["😀", "😂", "👍", "🎉", "❤️", "🚀", "👩‍💻", "👨‍👩‍👧", "🇫🇷", "🇯🇵", "👋🏽", "1️⃣", "✨", "🔥", "🤖"]
PUNCT = list(".,;:!?-()[]{}\"'/\\@#$%^&*_+=<>|~`") + ["...", "—", "–", "«", "»", "“", "”", "’", "…", "、", "。", "！", "？", "（", "）"]
SPACES = [" ", "  ", "\t", "\n", "\n\n", "\r\n", " \n", "\u00a0", "\u3000", "\u2003", "   ", "\t\t"]


def word(rng):
    r = rng.random()
    if r < 0.70:
        w = rng.choice(WORDS)
        if rng.random() < 0.1:
            w = w.capitalize()
        if rng.random() < 0.02:
            w = w.upper()
        return w
    if r < 0.76:
        return rng.choice(ACCENTED)
    if r < 0.82:
        return "".join(rng.choice(CJK) for _ in range(rng.randint(1, 6)))
    if r < 0.85:
        return "".join(rng.choice(KANA) for _ in range(rng.randint(1, 6)))
    if r < 0.87:
        return rng.choice(HANGUL)
    if r < 0.89:
        return rng.choice(CYRILLIC + GREEK)
    if r < 0.91:
        return rng.choice(EMOJI)
    if r < 0.97:
        return str(rng.choice([rng.randint(0, 99), rng.randint(0, 99999), 1900 + rng.randint(0, 130)]))
    return rng.choice(["don't", "it's", "we'll", "they're", "I've", "she'd", "I'm", "IT'S"])


def training_text(n_bytes=1_500_000, seed=1):
    rng = random.Random(seed)
    out, size = [], 0
    while size < n_bytes:
        s = " ".join(word(rng) for _ in range(rng.randint(3, 18)))
        s = s[0].upper() + s[1:] + rng.choice([".", ".", ".", "?", "!", ":", ";", ","])
        if rng.random() < 0.05:
            s = "    " + s.replace(" ", "_") + "()"
        s += rng.choice(["\n", " ", " ", "\n\n"])
        out.append(s)
        size += len(s.encode())
    return "".join(out).encode()


def write_vocab(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    tokens, merges = bpe.train(training_text(), 2000, log=lambda m: print(m, file=sys.stderr))
    toks, types, mstr, ids = bpe.build_vocab(tokens, merges)
    for pre in ("llama3", "deepseek-v3"):
        w = gguf.Writer()
        w.add_str("general.architecture", "loom-tokenizer")
        w.add_str("general.name", "loom test vocabulary")
        bpe.add_tokenizer_kv(w, toks, types, mstr, ids, pre)
        name = "loom" if pre == "llama3" else pre
        w.write(os.path.join(out_dir, f"vocab-{name}.gguf"))
    # Plain dump for C tests that run before the GGUF reader exists:
    # "T <type> <hex text>" per token, then "M <hex merge>" per merge, then "S key value".
    with open(os.path.join(out_dir, "vocab.txt"), "w") as f:
        for t, ty in zip(toks, types):
            f.write(f"T {ty} {t.encode().hex()}\n")
        for m in mstr:
            f.write(f"M {m.encode().hex()}\n")
        f.write(f"S bos {ids['<|bos|>']}\nS eos {ids['<|eos|>']}\nS pad {ids['<|pad|>']}\n")
    print(f"{len(toks)} tokens, {len(mstr)} merges", file=sys.stderr)


def corpus(seed=7):
    """≥ 500 (bytes, parse_special) cases: generated text plus targeted edge cases."""
    rng = random.Random(seed)
    cases = []
    fixed = ["", " ", "  ", "\n", "\r\n", "\t", " \n \n", "a", "A", "0", "00", "000", "0000",
             "1234567890123", "3.14159", "1,000,000", "-42", "v1.2.3", "x=y+z*2", "a  b   c",
             "hello world", "Hello World!", "HELLO", "don't", "DON'T", "I'LL", "we'Re", "'s",
             "'", "''", "it's'", "rock'n'roll", "x'y", "'ll'll", "...", "?!", "!!!\n\n",
             "(a)", "[x]", "{\"k\": [1, 2]}", "<html><body>", "a\u00a0b", "\u3000x", "x\u2003 y",
             "e\u0301", "\u0301", "Ångström", "naïve café", "Ελλάδα", "Москва", "עברית", "العربية",
             "हिन्दी", "ไทย", "日本語のテキスト", "中文字符", "カタカナー・ヴ", "ひらがな゛", "한국어",
             "𠀀𠀁", "😀", "👩‍💻", "🇫🇷🇯🇵", "👋🏽", "1️⃣", "a😀b", "😀😀😀", "€100", "£5", "¥", "∑x²",
             "½ ¾", "①②③", "Ⅻ", "٣٤٥", "१२३", "x\u200bz", "\u200d", "\ufeffBOM", "\x00", "a\x00b",
             "\x01\x02\x03", "\x7f", "\x1c\x1d", "tab\there", "line\nline", "cr\rcr",
             "   leading", "trailing   ", "  both  ", "\n\n\nx", "x\n\n\n", " \t\n\r\x0b\x0c",
             "<|user|>hi<|end|>", "<|image|><|/image|>", "<|bos|>", "<|eos|>x", "x<|pad|>",
             "<|user|>", "<|assistant|> ok", "<|video|><|frame|><|frame|><|/video|>", "<|audio|>",
             "<|end|<|end|>", "<<|user|>>", "<|unknown|>", "<|", "|>", "<|image|>猫<|/image|>"]
    for s in fixed:
        for sp in (0, 1):
            cases.append((s.encode(), sp))
    bad = [b"\xff", b"\xfe\xfe", b"\x80", b"a\x80b", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(",
           b"\xf0\x9f\x98", b"\xf0\x9f\x98x", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80",
           b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80",
           b"hello\xffworld", b"\xff\xfe\xfd", b"caf\xe9", b"\x80\x80\x80", b"\xc3\xa9\xa9",
           b"\xe6\x97\xa5\xe6\x9c", b"abc\xf0", b" \xff ", b"12\x8034", b"\xef\xbf\xbd",
           b"<|user|>\xff<|end|>", b"\xf4\x8f\xbf\xbf", b"\xf0\x90\x80\x80"]
    for b in bad:
        cases.append((b, 0))
        cases.append((b, 1))
    while len(cases) < 620:
        r = rng.random()
        n = rng.randint(1, 14)
        parts = []
        for _ in range(n):
            q = rng.random()
            if q < 0.55:
                parts.append(word(rng))
            elif q < 0.75:
                parts.append(rng.choice(SPACES))
            elif q < 0.9:
                parts.append(rng.choice(PUNCT))
            elif q < 0.95:
                parts.append(rng.choice(bpe.CONTROL_TOKENS))
            else:
                parts.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9))))
        sep = "" if r < 0.4 else " "
        s = sep.join(parts).encode()
        if rng.random() < 0.08:  # sprinkle a bad byte
            k = rng.randint(0, len(s))
            s = s[:k] + bytes([rng.choice([0x80, 0xbf, 0xc3, 0xe2, 0xf0, 0xff])]) + s[k:]
        cases.append((s, rng.randint(0, 1)))
    # one long mixed line
    cases.append(((" ".join(word(rng) for _ in range(400))).encode(), 1))
    return cases


def write_corpus(path):
    with open(path, "w") as f:
        for b, sp in corpus():
            f.write(f"{sp} {b.hex()}\n")


def write_model(vocab_path, out_path, pre=None):
    kv, _ = gguf.read(vocab_path)
    if pre:
        kv["tokenizer.ggml.pre"] = pre
    w = gguf.Writer()
    w.add_str("general.architecture", "llama")
    w.add_str("general.name", "loom tokenizer parity")
    for k, v in {"context_length": 256, "embedding_length": 64, "block_count": 1,
                 "feed_forward_length": 128, "attention.head_count": 4,
                 "attention.head_count_kv": 4}.items():
        w.add_u32(f"llama.{k}", v)
    w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_u32("llama.vocab_size", len(kv["tokenizer.ggml.tokens"]))
    for k, v in kv.items():
        if not k.startswith("tokenizer."):
            continue
        if isinstance(v, list):
            et = gguf.STRING if isinstance(v[0], str) else gguf.I32
            w.add_arr(k, et, v)
        elif isinstance(v, bool):
            w.add_bool(k, v)
        elif isinstance(v, int):
            w.add_u32(k, v)
        else:
            w.add_str(k, v)
    import numpy as np
    rng = np.random.default_rng(0)
    n_vocab, d, ff = len(kv["tokenizer.ggml.tokens"]), 64, 128

    def rnd(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)
    w.add_tensor("token_embd.weight", rnd(n_vocab, d))
    w.add_tensor("output_norm.weight", np.ones(d, np.float32))
    w.add_tensor("output.weight", rnd(n_vocab, d))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(d, np.float32))
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        w.add_tensor(f"blk.0.{name}.weight", rnd(d, d))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(d, np.float32))
    w.add_tensor("blk.0.ffn_gate.weight", rnd(ff, d))
    w.add_tensor("blk.0.ffn_up.weight", rnd(ff, d))
    w.add_tensor("blk.0.ffn_down.weight", rnd(d, ff))
    w.write(out_path)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "vocab":
        write_vocab(sys.argv[2])
    elif cmd == "corpus":
        write_corpus(sys.argv[2])
    elif cmd == "model":
        write_model(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        sys.exit(__doc__)
