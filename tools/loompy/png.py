"""Minimal PNG writer and reader (zlib + struct, no PIL): 8-bit RGB or gray."""
import struct
import zlib

import numpy as np


def _chunk(tag, data):
    c = struct.pack(">I", len(data)) + tag + data
    return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def write_png(path, img):
    """img: uint8 [H,W,3] or [H,W]."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w = img.shape[:2]
    ctype = 2 if img.ndim == 3 else 0
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))
    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)


def read_png(path):
    """What write_png writes → uint8 [H,W,3] or [H,W]: 8-bit RGB or gray, not interlaced, every
    row unfiltered (filter type 0); other PNGs raise ValueError."""
    d = open(path, "rb").read()
    if d[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    p, idat, hdr = 8, b"", None
    while p + 12 <= len(d):
        n, tag = struct.unpack(">I", d[p:p + 4])[0], d[p + 4:p + 8]
        if tag == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", d[p + 8:p + 21])
        elif tag == b"IDAT":
            idat += d[p + 8:p + 8 + n]
        p += 12 + n
    if not hdr or hdr[2] != 8 or hdr[3] not in (0, 2) or hdr[6] != 0:
        raise ValueError(f"{path}: only 8-bit RGB or gray, not interlaced")
    w, h, c = hdr[0], hdr[1], 3 if hdr[3] == 2 else 1
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w * c + 1)
    if rows[:, 0].any():
        raise ValueError(f"{path}: filtered rows")
    img = rows[:, 1:].reshape(h, w, c)
    return img if c == 3 else img[:, :, 0]


def grid(images, cols, pad=2, scale=1, bg=255):
    """Tile uint8 [N,H,W,3] images into one image, optionally upscaled (nearest)."""
    images = np.asarray(images, np.uint8)
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    n, h, w, c = images.shape
    rows = (n + cols - 1) // cols
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), bg, np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = images[i]
    return out
