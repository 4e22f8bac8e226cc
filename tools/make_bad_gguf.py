#!/usr/bin/python3
"""Generate the GGUF test fixtures (deterministic; re-run to regenerate, then commit):

  tests/data/gguf/tiny.gguf          a small valid file (every tensor type, long string array)
  tests/data/gguf_bad/*.gguf         malformed files, one defect each
  tests/data/gguf_bad/MANIFEST       file <TAB> expected status <TAB> message substring
                                     [<TAB> tensor: open must succeed, get_tensor must fail]
  fuzz/corpus/gguf/                  fuzzing seeds (valid files + a few bad ones)

Bad files are packed by hand with struct so each defect is exactly the one named.
Usage: tools/make_bad_gguf.py [REPO_ROOT]
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

from loompy import gguf  # noqa: E402

MAGIC = gguf.MAGIC
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
T_F32, T_F16, T_Q8_0, T_BF16 = gguf.T_F32, gguf.T_F16, gguf.T_Q8_0, gguf.T_BF16
T_Q4_K = 12  # a real ggml type loom does not compute with


def s(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b


def header(n_t, n_kv, version=3, magic=MAGIC):
    return struct.pack("<IIQQ", magic, version, n_t, n_kv)


def kv(key, vtype, payload):
    return s(key) + struct.pack("<I", vtype) + payload


def kv_u32(key, v):
    return kv(key, U32, struct.pack("<I", v))


def kv_str(key, v):
    return kv(key, STRING, s(v))


def tinfo(name, dims, ttype, offset):
    return (s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) +
            struct.pack("<IQ", ttype, offset))


def gguf_file(kvs=(), tinfos=(), data=b"", align=32, n_t=None, n_kv=None, version=3, magic=MAGIC):
    """Header + kv + tensor infos, padded to `align`, then `data` (the data section)."""
    meta = header(len(tinfos) if n_t is None else n_t, len(kvs) if n_kv is None else n_kv,
                  version, magic) + b"".join(kvs) + b"".join(tinfos)
    meta += b"\0" * ((-len(meta)) % align)
    return meta + data


F32_64 = np.arange(64, dtype=np.float32).tobytes()  # 256 bytes of f32 data
BASE_KV = [kv_str("general.architecture", "bad")]


def good():
    """A small valid file with one f32 tensor; several bad files are cuts of it."""
    return gguf_file(BASE_KV, [tinfo("t", [64], T_F32, 0)], F32_64)


def nested(depth):
    """An array nested `depth` levels deep, innermost holding one u8."""
    body = struct.pack("<IQ", U8, 1) + b"\x07"
    for _ in range(depth - 1):
        body = struct.pack("<IQ", ARRAY, 1) + body
    return body


def bad_cases():
    """(file name, bytes, status, message substring, tensor to get or '')"""
    g = good()
    F = "LOOM_ERR_FORMAT"
    U = "LOOM_ERR_UNSUPPORTED"
    return [
        ("empty.gguf", b"", F, "too short for a GGUF header", ""),
        ("truncated_header.gguf", g[:20], F, "too short for a GGUF header", ""),
        ("truncated_kv.gguf", gguf_file(BASE_KV)[:40], F, "key length 20 runs past end of file", ""),
        ("truncated_tensor_info.gguf", gguf_file(BASE_KV, [tinfo("t", [64], T_F32, 0)])[:-60], F,
         "runs past end of file", ""),
        ("wrong_magic.gguf", gguf_file(BASE_KV, magic=0x46554746), F, "not a GGUF file", ""),
        ("version1.gguf", gguf_file(BASE_KV, version=1), U, "version 1 is not supported", ""),
        ("version2.gguf", gguf_file(BASE_KV, version=2), U, "version 2 is not supported", ""),
        ("version4.gguf", gguf_file(BASE_KV, version=4), U, "version 4 is not supported", ""),
        ("big_endian.gguf", gguf_file(BASE_KV, version=0x03000000), U, "big-endian", ""),
        ("huge_tensor_count.gguf", gguf_file(BASE_KV, n_t=1 << 62), F, "tensor count 4611686018427387904", ""),
        ("huge_kv_count.gguf", gguf_file(BASE_KV, n_kv=(1 << 64) - 1), F, "key count 18446744073709551615", ""),
        ("key_len_past_end.gguf", header(0, 1) + struct.pack("<Q", 1000) + b"general", F,
         "key length 1000 runs past end of file", ""),
        ("string_value_past_end.gguf", header(0, 1) + s("general.name") + struct.pack("<IQ", STRING, 500) + b"abc",
         F, "string value length 500 runs past end of file", ""),
        ("bad_value_type.gguf", gguf_file([kv("general.x", 13, struct.pack("<I", 0))]), F,
         "unknown value type 13", ""),
        ("bad_array_elem_type.gguf", gguf_file([kv("general.x", ARRAY, struct.pack("<IQ", 99, 1))]), F,
         "unknown array element type 99", ""),
        ("array_count_overflow.gguf", gguf_file([kv("general.x", ARRAY, struct.pack("<IQ", U32, 1 << 62))]), F,
         "array of 4611686018427387904 u32 runs past end of file", ""),
        ("string_array_count_huge.gguf",
         gguf_file([kv("tokenizer.ggml.tokens", ARRAY, struct.pack("<IQ", STRING, (1 << 64) - 1))]), F,
         "strings runs past end of file", ""),
        ("nested_array_truncated.gguf",
         header(0, 1) + s("general.x") + struct.pack("<I", ARRAY) + struct.pack("<IQ", ARRAY, 2) +
         struct.pack("<IQ", U16, 2) + b"\1\0\2\0" + struct.pack("<IQ", U16, 3) + b"\1\0", F,
         "array of 3 u16 runs past end of file", ""),
        ("nesting_too_deep.gguf", gguf_file([kv("general.x", ARRAY, nested(9))]), "LOOM_ERR_LIMIT",
         "nested deeper than 8", ""),
        ("key_with_nul.gguf", gguf_file([kv_str("general\0name", "x")]), F, "contains a NUL byte", ""),
        ("duplicate_key.gguf", gguf_file(BASE_KV + [kv_str("general.name", "a"), kv_str("general.name", "b")]), F,
         "('general.name'): duplicate key", ""),
        ("alignment_zero.gguf", gguf_file(BASE_KV + [kv_u32("general.alignment", 0)]), F,
         "general.alignment 0 is not a nonzero power of two", ""),
        ("alignment_48.gguf", gguf_file(BASE_KV + [kv_u32("general.alignment", 48)], align=48), F,
         "general.alignment 48 is not a nonzero power of two", ""),
        ("alignment_u64.gguf", gguf_file(BASE_KV + [kv("general.alignment", U64, struct.pack("<Q", 32))]), F,
         "general.alignment has type u64, must be u32", ""),
        ("ndims0.gguf", gguf_file(BASE_KV, [tinfo("t", [], T_F32, 0)], F32_64), F, "n_dims 0 is not in 1..4", ""),
        ("ndims5.gguf", gguf_file(BASE_KV, [tinfo("t", [1, 1, 1, 1, 64], T_F32, 0)], F32_64), F,
         "n_dims 5 is not in 1..4", ""),
        ("dim_product_overflow.gguf", gguf_file(BASE_KV, [tinfo("t", [1 << 32, 1 << 32], T_F32, 0)], F32_64), F,
         "('t'): element count overflows 64 bits", ""),
        ("byte_size_overflow.gguf", gguf_file(BASE_KV, [tinfo("t", [1 << 62], T_F32, 0)], F32_64), F,
         "('t'): byte size overflows 64 bits", ""),
        ("negative_dim.gguf", gguf_file(BASE_KV, [tinfo("t", [(1 << 64) - 1, 4], T_F32, 0)], F32_64), F,
         "dimension 0 is negative (-1)", ""),
        ("q8_0_partial_block.gguf", gguf_file(BASE_KV, [tinfo("q", [33], T_Q8_0, 0)], b"\0" * 64), F,
         "row of 33 q8_0 values is not a multiple of the block size 32", ""),
        ("tensor_type_huge.gguf", gguf_file(BASE_KV, [tinfo("t", [4], 0x80000000, 0)], F32_64), F,
         "type id 2147483648 out of range", ""),
        ("offset_past_end.gguf", gguf_file(BASE_KV, [tinfo("t", [64], T_F32, 1 << 40)], F32_64), F,
         "('t'): data [1099511627776, +256) runs past end of file", ""),
        ("misaligned_offset.gguf", gguf_file(BASE_KV, [tinfo("t", [16], T_F32, 4)], F32_64), F,
         "('t'): offset 4 is not a multiple of alignment 32", ""),
        ("data_past_eof.gguf", gguf_file(BASE_KV, [tinfo("t", [64], T_F32, 0)], F32_64[:100]), F,
         "('t'): data [0, +256) runs past end of file (data section is 100 bytes)", ""),
        ("data_section_past_eof.gguf",
         header(1, 0) + tinfo("empty", [0], T_F32, 0), F, "data section starts at", ""),
        ("duplicate_tensor.gguf",
         gguf_file(BASE_KV, [tinfo("blk.0.w", [32], T_F32, 0), tinfo("blk.0.w", [32], T_F32, 128)], F32_64), F,
         "tensor 1 ('blk.0.w'): duplicate tensor name", ""),
        ("unknown_tensor_type.gguf",
         gguf_file(BASE_KV, [tinfo("t", [64], T_F32, 0), tinfo("blk.q4k", [256], T_Q4_K, 256)], F32_64 + b"\0" * 144),
         U, "tensor 'blk.q4k' has type id 12, which loom cannot compute with", "blk.q4k"),
    ]


def tiny(path):
    """Valid fixture for `loom info` and reader tests: every loom tensor type, a long vocab."""
    w = gguf.Writer()
    w.add_str("general.architecture", "tiny")
    w.add_str("general.name", "loom tiny fixture")
    w.add_u32("tiny.context_length", 128)
    w.add_f32("tiny.rope.freq_base", 10000.0)
    w.add_bool("tiny.use_parallel_residual", True)
    w.add_arr("tokenizer.ggml.tokens", STRING, [f"tok{i}" for i in range(1000)])
    w.add_arr("tokenizer.ggml.scores", F32, [float(-i) for i in range(1000)])
    x = (np.arange(64 * 4, dtype=np.float32).reshape(4, 64) - 100.0) / 16.0
    w.add_tensor("token_embd.weight", x, gguf.T_F16)
    w.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32), gguf.T_F32)
    w.add_tensor("blk.0.attn_q.weight", x, gguf.T_BF16)
    w.add_tensor("blk.0.ffn_up.weight", x, gguf.T_Q8_0)
    w.write(path)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    good_dir = os.path.join(root, "tests/data/gguf")
    bad_dir = os.path.join(root, "tests/data/gguf_bad")
    seed_dir = os.path.join(root, "fuzz/corpus/gguf")
    for d in (good_dir, bad_dir, seed_dir):
        os.makedirs(d, exist_ok=True)
    tiny(os.path.join(good_dir, "tiny.gguf"))
    lines = ["# file\texpected status\tmessage substring\t[tensor passed to lm_gguf_get_tensor]"]
    cases = bad_cases()
    for name, data, status, msg, tensor in cases:
        with open(os.path.join(bad_dir, name), "wb") as f:
            f.write(data)
        lines.append("\t".join([name, status, msg] + ([tensor] if tensor else [])))
    with open(os.path.join(bad_dir, "MANIFEST"), "w") as f:
        f.write("\n".join(lines) + "\n")
    # Fuzzing seeds: the valid files and a few structurally interesting bad ones.
    seeds = {"tiny.gguf": open(os.path.join(good_dir, "tiny.gguf"), "rb").read(), "good.gguf": good(),
             "nested.gguf": gguf_file([kv("general.x", ARRAY, nested(3))])}
    for name, data, *_ in cases:
        if name in ("unknown_tensor_type.gguf", "duplicate_key.gguf", "nested_array_truncated.gguf",
                    "misaligned_offset.gguf", "string_array_count_huge.gguf"):
            seeds[name] = data
    for name, data in seeds.items():
        with open(os.path.join(seed_dir, name), "wb") as f:
            f.write(data)
    print(f"wrote tiny.gguf, {len(cases)} bad files + MANIFEST, {len(seeds)} fuzz seeds")


if __name__ == "__main__":
    main()
