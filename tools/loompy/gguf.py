"""GGUF v3 writer and reader (numpy), the Python twin of lib/core/gguf.c.

Tensor types use ggml's ids and layouts, so files interchange with llama.cpp:
F32 0, F16 1, Q8_0 8 (blocks of 32: f16 scale + 32 int8), BF16 30.
Shapes are given numpy-style (slowest first); GGUF stores them reversed (ne0 fastest).
"""
import struct

import numpy as np

MAGIC = 0x46554747
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
T_F32, T_F16, T_Q8_0, T_BF16 = 0, 1, 8, 30
QK8_0 = 32

_SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
           BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}
_NP = {U8: np.uint8, I8: np.int8, U16: np.uint16, I16: np.int16, U32: np.uint32,
       I32: np.int32, F32: np.float32, BOOL: np.bool_, U64: np.uint64, I64: np.int64,
       F64: np.float64}


def f32_to_bf16(x):
    """Round-to-nearest-even float32 → bfloat16 bits (uint16), as ggml does."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    r = ((u + (0x7FFF + ((u >> 16) & 1))) >> 16).astype(np.uint16)
    r[nan] = ((u[nan] >> 16) | 64).astype(np.uint16)
    return r


def quantize_q8_0(x):
    """ggml's quantize_row_q8_0_ref over the last axis; returns raw bytes per row."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    assert x.shape[-1] % QK8_0 == 0, "Q8_0 rows must be a multiple of 32"
    blocks = x.reshape(-1, QK8_0)
    amax = np.abs(blocks).max(axis=1)
    d = (amax / 127.0).astype(np.float32)
    inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)
    v = blocks * inv[:, None]  # roundf: half away from zero (np.round would go to even)
    q = (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int8)
    out = np.empty(len(blocks), dtype=[("d", "<f2"), ("qs", "i1", (QK8_0,))])
    out["d"] = d.astype(np.float16)
    out["qs"] = q
    return out.tobytes()


def dequantize_q8_0(raw, n):
    b = np.frombuffer(raw, dtype=[("d", "<f2"), ("qs", "i1", (QK8_0,))], count=n // QK8_0)
    return (b["d"].astype(np.float32)[:, None] * b["qs"].astype(np.float32)).reshape(-1)


def tensor_bytes(arr, ttype):
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if ttype == T_F32:
        return arr.tobytes()
    if ttype == T_F16:
        return arr.astype(np.float16).tobytes()
    if ttype == T_BF16:
        return f32_to_bf16(arr).tobytes()
    if ttype == T_Q8_0:
        return quantize_q8_0(arr)
    raise ValueError(f"unsupported tensor type {ttype}")


class Writer:
    """w = Writer(); w.add_u32("k", 1); w.add_tensor("t", arr, T_F16); w.write(path)"""

    def __init__(self, alignment=32):
        self.kv = []          # (key, vtype, value, elem_type)
        self.tensors = []     # (name, shape (numpy order), ttype, bytes)
        self.alignment = alignment
        if alignment != 32:
            self.add_u32("general.alignment", alignment)

    def add(self, key, vtype, value, elem_type=None):
        self.kv = [e for e in self.kv if e[0] != key]
        self.kv.append((key, vtype, value, elem_type))

    def add_u32(self, k, v): self.add(k, U32, int(v))
    def add_i32(self, k, v): self.add(k, I32, int(v))
    def add_u64(self, k, v): self.add(k, U64, int(v))
    def add_f32(self, k, v): self.add(k, F32, float(v))
    def add_bool(self, k, v): self.add(k, BOOL, bool(v))
    def add_str(self, k, v): self.add(k, STRING, str(v))
    def add_arr(self, k, elem_type, values): self.add(k, ARRAY, list(values), elem_type)

    def add_tensor(self, name, arr, ttype=T_F32):
        arr = np.asarray(arr)
        self.tensors.append((name, arr.shape, ttype, tensor_bytes(arr, ttype)))

    @staticmethod
    def _str(s):
        b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
        return struct.pack("<Q", len(b)) + b

    def _value(self, vtype, value, elem_type):
        if vtype == STRING:
            return self._str(value)
        if vtype == ARRAY:
            out = struct.pack("<IQ", elem_type, len(value))
            if elem_type == STRING:
                return out + b"".join(self._str(s) for s in value)
            if elem_type == ARRAY:
                raise ValueError("nested arrays: write them with the C writer")
            return out + np.asarray(value, dtype=_NP[elem_type]).tobytes()
        return struct.pack(_SCALAR[vtype], value)

    def write(self, path):
        head = struct.pack("<IIQQ", MAGIC, 3, len(self.tensors), len(self.kv))
        kv = b"".join(self._str(k) + struct.pack("<I", t) + self._value(t, v, e)
                      for k, t, v, e in self.kv)
        infos, offset, data = [], 0, []
        for name, shape, ttype, raw in self.tensors:
            pad = (-offset) % self.alignment
            data.append(b"\0" * pad)
            offset += pad
            dims = list(reversed(shape)) or [1]
            infos.append(self._str(name) + struct.pack("<I", len(dims)) +
                         struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", ttype, offset))
            data.append(raw)
            offset += len(raw)
        meta = head + kv + b"".join(infos)
        meta += b"\0" * ((-len(meta)) % self.alignment)
        with open(path, "wb") as f:
            f.write(meta)
            f.write(b"".join(data))


def value_type(v):
    """(GGUF value type, array element type or None) for a value as read() returns it, so a
    file's keys can be copied: ints as u32, floats as f32 (loom's keys use no other widths)."""
    if isinstance(v, bool):
        return BOOL, None
    if isinstance(v, int):
        return U32, None
    if isinstance(v, float):
        return F32, None
    if isinstance(v, str):
        return STRING, None
    e = v[0] if len(v) else 0
    return ARRAY, (STRING if isinstance(e, str) else F32 if isinstance(e, float) else U32)


def to_array(shape, ttype, raw):
    """A tensor from read() as float32 numpy in numpy order (F32, F16, BF16 or Q8_0)."""
    if ttype == T_F32:
        a = np.frombuffer(raw, np.float32)
    elif ttype == T_F16:
        a = np.frombuffer(raw, np.float16).astype(np.float32)
    elif ttype == T_BF16:
        a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
    elif ttype == T_Q8_0:
        a = dequantize_q8_0(raw, int(np.prod(shape)))
    else:
        raise ValueError(f"tensor type {ttype}")
    return a.reshape(shape)


def read(path):
    """Minimal reader for tests: returns (kv dict, {name: (numpy-order shape, ttype, bytes)})."""
    buf = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string():
        nonlocal pos
        n = take("<Q")
        s = buf[pos:pos + n]
        pos += n
        return s.decode("utf-8", "replace")

    def value(t):
        if t == STRING:
            return string()
        if t == ARRAY:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        return take(_SCALAR[t])

    magic, version, n_t, n_kv = take("<IIQQ")
    assert magic == MAGIC and version == 3
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("<I"))
    align = kv.get("general.alignment", 32)
    infos = []
    for _ in range(n_t):
        name = string()
        nd = take("<I")
        dims = [take("<Q") for _ in range(nd)]
        ttype, off = take("<I"), take("<Q")
        infos.append((name, tuple(reversed(dims)), ttype, off))
    start = pos + (-pos) % align
    tensors = {}
    for name, shape, ttype, off in infos:
        n = int(np.prod(shape))
        size = {T_F32: 4 * n, T_F16: 2 * n, T_BF16: 2 * n, T_Q8_0: n // 32 * 34}[ttype]
        tensors[name] = (shape, ttype, buf[start + off:start + off + size])
    return kv, tensors
