"""Byte-level BPE: trainer, reference encoder and GGUF export for loom's tokenizer.

The pre-tokenizer is loom's ("loom" = llama.cpp's "llama3" rules, see docs/FORMAT.md
§Tokenizer), reproduced step by step from llama.cpp's hand-written splitter so that the
Python reference encoder, lib/core/tokenizer.c and llama.cpp agree token for token.
DeepSeek-V3's split is here too (reference only).

    python3 -m tools.loompy.bpe train --text corpus.txt --vocab 2048 --out vocab.gguf
    python3 -m tools.loompy.bpe encode --gguf vocab.gguf "some text"
"""
import argparse
import heapq
import sys
import unicodedata
from collections import Counter, defaultdict

try:
    from . import gguf
except ImportError:  # run as a plain script
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gguf

# llama.cpp token types
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# Control tokens of loom's unified model, in id order after the text tokens.
# <|bos|> starts a document, <|eos|> ends one, <|pad|> fills batches; <|user|> /
# <|assistant|> open turns and <|end|> closes one; media blocks are <|image|>…<|/image|>,
# <|audio|>…<|/audio|>, <|video|>…<|/video|> with <|frame|> between video frames.
CONTROL_TOKENS = ["<|bos|>", "<|eos|>", "<|pad|>", "<|user|>", "<|assistant|>", "<|end|>",
                  "<|image|>", "<|/image|>", "<|audio|>", "<|/audio|>", "<|video|>",
                  "<|/video|>", "<|frame|>"]


# ---- GPT-2 byte <-> unicode mapping ------------------------------------------------------
def bytes_to_unicode():
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, n = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    return table


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def map_bytes(b):
    return "".join(BYTE_TO_CHAR[x] for x in b)


def unmap_text(s):
    return bytes(CHAR_TO_BYTE[c] for c in s)


# ---- code point classes (llama.cpp's grouping of Unicode categories) ---------------------
_L, _N, _WS = 1, 2, 4
_WS_SET = set(range(0x09, 0x0E)) | set(range(0x2000, 0x200B)) | {
    0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000}


def _flags(cp):
    cat = unicodedata.category(chr(cp))
    f = 0
    if cat[0] == "L":
        f |= _L
    elif cat[0] == "N":
        f |= _N
    if cp in _WS_SET:
        f |= _WS
    return f


def decode_utf8_llama(data):
    """Bytes → code points as llama.cpp decodes them: a byte that does not start a
    well-formed sequence (no overlong/surrogate checks) becomes U+FFFD."""
    out, i, n = [], 0, len(data)
    while i < n:
        b = data[i]
        if b < 0x80:
            out.append(b)
            i += 1
            continue
        need = (0 if not b & 0x40 else 1 if not b & 0x20 else 2 if not b & 0x10
                else 3 if not b & 0x08 else 0)
        if need and i + need < n and all((data[i + k] & 0xC0) == 0x80 for k in range(1, need + 1)):
            v = b & (0x7F >> (need + 1))
            for k in range(1, need + 1):
                v = (v << 6) | (data[i + k] & 0x3F)
            if v <= 0x10FFFF:
                out.append(v)
                i += need + 1
                continue
        out.append(0xFFFD)
        i += 1
    return out


def _cp_utf8(cp):
    if 0xD800 <= cp <= 0xDFFF:  # surrogates pass through as 3 bytes, like llama.cpp
        return bytes([0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F)])
    return chr(cp).encode("utf-8")


def split_llama3(cps):
    """llama.cpp's unicode_regex_split_custom_llama3 on one code point list → piece lengths."""
    n = len(cps)
    out = []
    prev = [0]

    def cp_at(p):
        return cps[p] if 0 <= p < n else -1

    def fl(p):
        return _flags(cps[p]) | 8 if 0 <= p < n else 0   # bit 8: "in range"

    def add(end):
        ln = end - prev[0]
        if ln > 0:
            out.append(ln)
        prev[0] = end
        return ln

    pos = 0
    while pos < n:
        cp, f = cp_at(pos), fl(pos)
        if cp == 0x27 and pos + 1 < n:
            a = cp_at(pos + 1)
            a = a + 32 if 0x41 <= a <= 0x5A else a
            if a in (0x73, 0x74, 0x6D, 0x64):
                pos += add(pos + 2); continue
            if pos + 2 < n:
                b = cp_at(pos + 2)
                b = b + 32 if 0x41 <= b <= 0x5A else b
                if (a, b) in ((0x72, 0x65), (0x76, 0x65), (0x6C, 0x6C)):
                    pos += add(pos + 3); continue
        if not (cp in (0x0D, 0x0A) or f & _N):
            if f & _L or fl(pos + 1) & _L:
                pos += 1
                while fl(pos) & _L:
                    pos += 1
                add(pos); continue
        if f & _N:
            ini = pos
            while fl(pos) & _N:
                pos += 1
                if pos - ini >= 3:
                    add(pos); ini = pos
            add(pos); continue
        f2 = fl(pos + 1) if cp == 0x20 else f
        if not (f2 & (_WS | _L | _N)) and f:
            pos += cp == 0x20
            while not (f2 & (_WS | _L | _N)) and f2:
                pos += 1
                f2 = fl(pos)
            while cp_at(pos) in (0x0D, 0x0A):
                pos += 1
            add(pos); continue
        nws, last_rn = 0, 0
        while fl(pos + nws) & _WS:
            if cp_at(pos + nws) in (0x0D, 0x0A):
                last_rn = pos + nws + 1
            nws += 1
        if last_rn > 0:
            pos = last_rn; add(pos); continue
        if nws > 1 and cp_at(pos + nws) != -1:
            pos += nws - 1; add(pos); continue
        if nws > 0:
            pos += nws; add(pos); continue
        pos += 1
        add(pos)
    return out


def pretokenize(data):
    """UTF-8 bytes → list of words (bytes) by loom's pre-tokenizer."""
    cps = decode_utf8_llama(data)
    words, at = [], 0
    for ln in split_llama3(cps):
        words.append(b"".join(_cp_utf8(c) for c in cps[at:at + ln]))
        at += ln
    return words


# ---- training ----------------------------------------------------------------------------
def train(text_bytes, vocab_size, min_count=2, log=None):
    """Learn merges until the text vocabulary (256 bytes + merges) reaches vocab_size.
    Returns (tokens as bytes, merges as (left bytes, right bytes)). Ties between equally
    frequent pairs go to the lexicographically smallest (left, right) byte strings."""
    counts = Counter()
    for line in text_bytes.split(b"\n"):
        counts.update(pretokenize(line + b"\n"))
    words = [[bytes([b]) for b in w] for w in counts]
    freq = list(counts.values())
    tokens = [bytes([b]) for b in range(256)]
    merges = []
    pair_count = Counter()
    where = defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[(a, b)] += freq[i]
            where[(a, b)].add(i)
    # lazy max-heap of (-count, pair); stale entries are skipped
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    while len(tokens) < vocab_size and heap:
        c, p = heapq.heappop(heap)
        if pair_count.get(p, 0) != -c:
            continue
        if -c < min_count:
            break
        a, b = p
        ab = a + b
        merges.append((a, b))
        tokens.append(ab)
        touched = Counter()
        for i in list(where.pop(p, ())):
            w, f = words[i], freq[i]
            for x, y in zip(w, w[1:]):      # remove the word's old pairs
                pair_count[(x, y)] -= f
                touched[(x, y)] += 0
            j, nw = 0, []
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    nw.append(ab); j += 2
                else:
                    nw.append(w[j]); j += 1
            words[i] = nw
            for x, y in zip(nw, nw[1:]):    # add the new ones
                pair_count[(x, y)] += f
                where[(x, y)].add(i)
                touched[(x, y)] += 0
        pair_count.pop(p, None)
        for q in touched:
            cq = pair_count.get(q, 0)
            if cq > 0:
                heapq.heappush(heap, (-cq, q))
            else:
                pair_count.pop(q, None)
        if log and len(merges) % 500 == 0:
            log(f"{len(merges)} merges, last {map_bytes(a)!r} + {map_bytes(b)!r} ({-c})")
    return tokens, merges


# ---- reference encoder -------------------------------------------------------------------
class Vocab:
    def __init__(self, tokens, types, merges, bos=None, eos=None, pad=None, add_bos=True,
                 pre="llama3"):
        self.tokens, self.types, self.pre = tokens, types, pre    # tokens: mapped strings
        self.id_of = {t: i for i, t in enumerate(tokens)}
        self.rank = {}
        for r, m in enumerate(merges):
            k = m.find(" ", 1)
            if k > 0:
                self.rank.setdefault((m[:k], m[k + 1:]), r)
        self.bos, self.eos, self.pad, self.add_bos = bos, eos, pad, add_bos
        specials = [i for i, ty in enumerate(types) if ty in (CONTROL, USER_DEFINED, UNKNOWN)]
        self.specials = sorted(specials, key=lambda i: (-len(tokens[i].encode()), i))

    def _bpe(self, word):
        m = map_bytes(word)
        if self.pre in ("llama3", "loom") and m in self.id_of:   # ignore_merges
            return [self.id_of[m]]
        syms = list(m)
        while len(syms) > 1:
            best = None
            for i in range(len(syms) - 1):
                r = self.rank.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            syms[i:i + 2] = [syms[i] + syms[i + 1]]
        out = []
        for s in syms:
            if s in self.id_of:
                out.append(self.id_of[s])
            else:
                out.extend(self.id_of[ch] for ch in s.encode("utf-8").decode("latin-1")
                           if ch in self.id_of)
        return out

    def encode(self, data, add_bos=False, parse_special=False):
        """Bytes → ids, as llama_tokenize(add_special=add_bos, parse_special)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        frags = [data] if data else []
        for sid in self.specials:
            if not parse_special and self.types[sid] != USER_DEFINED:
                continue
            st = self.tokens[sid].encode("utf-8")
            nf = []
            for f in frags:
                if isinstance(f, int):
                    nf.append(f); continue
                parts = f.split(st)
                for k, part in enumerate(parts):
                    if part:
                        nf.append(part)
                    if k + 1 < len(parts):
                        nf.append(sid)
            frags = nf
        out = [self.bos] if add_bos and self.bos is not None else []
        for f in frags:
            if isinstance(f, int):
                out.append(f)
            else:
                for w in pretokenize(f):
                    out.extend(self._bpe(w))
        return out

    def decode(self, ids):
        out = b""
        for i in ids:
            if self.types[i] == NORMAL:
                out += unmap_text(self.tokens[i])
            elif self.types[i] == USER_DEFINED:
                out += self.tokens[i].encode("utf-8")
        return out

    @staticmethod
    def from_gguf(path):
        kv = gguf.read(path)[0]
        return Vocab(list(kv["tokenizer.ggml.tokens"]), list(kv["tokenizer.ggml.token_type"]),
                     list(kv["tokenizer.ggml.merges"]), kv.get("tokenizer.ggml.bos_token_id"),
                     kv.get("tokenizer.ggml.eos_token_id"),
                     kv.get("tokenizer.ggml.padding_token_id"),
                     kv.get("tokenizer.ggml.add_bos_token", False),
                     kv.get("tokenizer.ggml.pre", "default"))


def build_vocab(tokens, merges, pre="llama3"):
    """Text tokens + merges from train() → (mapped token strings, types, merge strings,
    special ids) with loom's control tokens appended after the text tokens."""
    toks = [map_bytes(t) for t in tokens] + CONTROL_TOKENS
    types = [NORMAL] * len(tokens) + [CONTROL] * len(CONTROL_TOKENS)
    mstr = [map_bytes(a) + " " + map_bytes(b) for a, b in merges]
    n_text = len(tokens)
    ids = {name: n_text + i for i, name in enumerate(CONTROL_TOKENS)}
    return toks, types, mstr, ids


def add_tokenizer_kv(w, toks, types, mstr, ids, pre="llama3"):
    """All tokenizer.ggml.* keys (plus loom.vocab.* ranges) on a gguf.Writer."""
    n_text = len(toks) - len(CONTROL_TOKENS)
    w.add_str("tokenizer.ggml.model", "gpt2")
    w.add_str("tokenizer.ggml.pre", pre)
    w.add_arr("tokenizer.ggml.tokens", gguf.STRING, toks)
    w.add_arr("tokenizer.ggml.token_type", gguf.I32, types)
    w.add_arr("tokenizer.ggml.merges", gguf.STRING, mstr)
    w.add_u32("tokenizer.ggml.bos_token_id", ids["<|bos|>"])
    w.add_u32("tokenizer.ggml.eos_token_id", ids["<|eos|>"])
    w.add_u32("tokenizer.ggml.padding_token_id", ids["<|pad|>"])
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_bool("tokenizer.ggml.add_eos_token", False)
    w.add_u32("loom.vocab.text_end", n_text)
    w.add_u32("loom.vocab.control_end", len(toks))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--text", required=True, nargs="+")
    t.add_argument("--vocab", type=int, default=2048, help="text tokens (bytes + merges)")
    t.add_argument("--pre", default="llama3")
    t.add_argument("--out", required=True)
    e = sub.add_parser("encode")
    e.add_argument("--gguf", required=True)
    e.add_argument("--special", action="store_true")
    e.add_argument("text")
    a = ap.parse_args(argv)
    if a.cmd == "train":
        data = b"".join(open(p, "rb").read() for p in a.text)
        tokens, merges = train(data, a.vocab, log=lambda m: print(m, file=sys.stderr))
        toks, types, mstr, ids = build_vocab(tokens, merges)
        w = gguf.Writer()
        w.add_str("general.architecture", "loom-tokenizer")
        add_tokenizer_kv(w, toks, types, mstr, ids, a.pre)
        w.write(a.out)
        print(f"{a.out}: {len(toks)} tokens, {len(mstr)} merges", file=sys.stderr)
    else:
        v = Vocab.from_gguf(a.gguf)
        print(v.encode(a.text.encode(), parse_special=a.special))


if __name__ == "__main__":
    main()
