#!/usr/bin/env python3
"""Write tests/data/vision/: random-weight vision encoders (GGUF), input PNGs, and what the
PyTorch reference (tools/loompy/vision.py) computes from them, as raw little-endian f32.

    /usr/bin/python3 -m tools.parity.make_vision_fixtures     (from the repository root)

Files (tests/test_vit_parity.c reads them with the same case list):
  vit_mlp.gguf    S=32 p=8 d=32 ff=64 2 layers 4 heads, pre+post LN, biases, F32, pad/bicubic,
                  q/k/v weights back to back (loom's fused QKV path)
  vit_merge.gguf  same sizes, 2x2 merge, no pre-LN, no biases, F16 matrices, crop/bilinear,
                  tensors interleaved as llama.cpp converters write them (three QKV GEMMs)
  img_wide.png    45x30 RGB; img_tall.png 20x50 RGB
  pre_<model>_<img>.f32   preprocessed CHW [3][32][32] (model's fit/filter/mean/std)
  emb_<model>_<img>.f32   encoder output [n_tok][n_embd_out] from that CHW
  resize_<filter>_<img>.f32  plain resize to 17x64 (h x w), 0..255 scale, CHW
"""
import os

import numpy as np
import torch

from tools.fixtures.make_image_fixtures import png_bytes
from tools.loompy import gguf, vision

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "vision")


def image(h, w, seed):
    """Smooth gradients plus texture, so both resize filters have something to do."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([x / w * 255, y / h * 255, (x + y) / (w + h) * 255], -1)
    return np.clip(base * 0.6 + rng.uniform(0, 100, (h, w, 3)), 0, 255).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    imgs = {"wide": image(30, 45, 1), "tall": image(50, 20, 2)}
    for name, rgb in imgs.items():
        with open(os.path.join(OUT, f"img_{name}.png"), "wb") as f:
            f.write(png_bytes(rgb, 2, 8))
        for filt in vision.FILTERS:
            vision.resize(rgb, 17, 64, filt).numpy().astype("<f4").tofile(os.path.join(OUT, f"resize_{filt}_{name}.f32"))
    small = dict(image_size=32, patch_size=8, n_embd=32, n_ff=64, n_layer=2, n_head=4, eps=1e-5,
                 n_mm_hidden=48, n_embd_out=40)
    models = {
        "mlp": (vision.VisionConfig(**small, mean=(0.48, 0.46, 0.41), std=(0.27, 0.26, 0.28), fit="pad",
                                    filter="bicubic"), gguf.T_F32, 10, True),
        "merge": (vision.VisionConfig(**small, merge=2, pre_ln=False, bias=False, fit="crop", filter="bilinear"),
                  gguf.T_F16, 11, False),
    }
    for mname, (cfg, tt, seed, adjacent) in models.items():
        model = vision.randomize(vision.VisionEncoder(cfg), seed)
        path = os.path.join(OUT, f"vit_{mname}.gguf")
        vision.export_gguf(model, path, tt, qkv_adjacent=adjacent)
        model = vision.load_gguf(path)        # exactly what the file holds
        for iname, rgb in imgs.items():
            chw = vision.preprocess(rgb, cfg.image_size, cfg.filter, cfg.fit, mean=cfg.mean, std=cfg.std)
            chw.numpy().astype("<f4").tofile(os.path.join(OUT, f"pre_{mname}_{iname}.f32"))
            with torch.no_grad():
                emb = model(chw[None])[0]
            emb.numpy().astype("<f4").tofile(os.path.join(OUT, f"emb_{mname}_{iname}.f32"))
            print(mname, iname, tuple(emb.shape), f"max|emb| {emb.abs().max():.3f}")


if __name__ == "__main__":
    main()
