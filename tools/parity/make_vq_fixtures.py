"""Parity fixtures for loom's C VQ image codec and audio-codec decoder (random weights).

    /usr/bin/python3 tools/parity/make_vq_fixtures.py [--out tests/data]

writes
  tests/data/vq/tiny_vq.gguf      a small random-weight VQ codec in loom's format (docs/FORMAT.md)
  tests/data/vq/vq_io.gguf        fixed inputs and PyTorch outputs, all F32 tensors:
      image_in   [2,32,32,3]  input pixels (0..255, HWC) — two rendered scenes, 2x box-downsampled
      enc_z      [2,8,8,8]    quant_conv output z [b, embed_dim, h, w] for image_in
      codes_out  [2,8,8]      codes of image_in (cosine argmax)
      codes_gap  [2,8,8]      cosine gap between the best and second-best code at each position:
                              a C test may accept a different code only where the gap < 1e-4
      codes_in   [2,8,8]      decoder input codes (random, seed 0)
      dec_out    [2,3,32,32]  decoder output x (before the pixel mapping) for codes_in
      pixels_out [2,32,32,3]  clip(round((x + 1) / 2 * 255)) as 0..255 values, HWC
  tests/data/audio_codec/tiny_ac.gguf  a small random-weight audio codec
  tests/data/audio_codec/ac_io.gguf:
      codes_in   [1,12]       decoder input codes
      dec_out    [1,80,48]    decoder output (normalised log-mel) for codes_in
      wav_out    [480*... ]   vocoder output for dec_out[0] (float32 samples, 48*160)
All computation is float32 PyTorch on the CPU; suggested tolerances are stored as
fixture.* keys (max abs error).
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from loompy import gguf  # noqa: E402
from loompy import vq  # noqa: E402
from loompy import audiocodec as ac  # noqa: E402
from data import scenes  # noqa: E402


def jitter_norms(model, g):
    """Random GroupNorm affine params so the C side cannot pass by ignoring them."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))


def vq_fixtures(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    cfg = vq.VQConfig(ch=8, ch_mult=(1, 1, 2), enc_res=1, dec_res=2, z_channels=8,
                      embed_dim=8, codebook_size=64, norm_groups=4, image_size=32)
    model = vq.VQModel(cfg).eval()
    jitter_norms(model, g)
    vq.export_gguf(model, os.path.join(out, "tiny_vq.gguf"))

    rng = np.random.default_rng(0)
    imgs = np.stack([scenes.render(scenes.sample_label(rng, False)) for _ in range(2)])
    imgs = imgs.astype(np.float32).reshape(2, 32, 2, 32, 2, 3).mean(axis=(2, 4))
    imgs = np.round(imgs).astype(np.uint8)
    with torch.no_grad():
        z = model.encode_z(vq.to_input(imgs))
        codes = model.quantize.codes(z)
        zf = torch.nn.functional.normalize(z.permute(0, 2, 3, 1).reshape(-1, cfg.embed_dim), dim=1)
        top2 = torch.topk(zf @ model.quantize.codebook().t(), 2, dim=1).values
        gap = (top2[:, 0] - top2[:, 1]).reshape(codes.shape)
        margin = float(gap.min())
        codes_in = torch.randint(0, cfg.codebook_size, (2, cfg.grid, cfg.grid), generator=g)
        dec = model.decode_codes(codes_in)
        pix = vq.to_pixels(dec)
    w = gguf.Writer()
    w.add_str("general.architecture", "loom-fixture")
    w.add_str("fixture.model", "tiny_vq.gguf")
    w.add_f32("fixture.min_margin", margin)
    w.add_f32("fixture.tol_enc_z", 1e-4)
    w.add_f32("fixture.tol_dec_out", 1e-4)
    w.add_f32("fixture.tol_pixels", 1.0)
    w.add_tensor("image_in", imgs.astype(np.float32))
    w.add_tensor("enc_z", z.numpy())
    w.add_tensor("codes_out", codes.numpy().astype(np.float32))
    w.add_tensor("codes_gap", gap.numpy())
    w.add_tensor("codes_in", codes_in.numpy().astype(np.float32))
    w.add_tensor("dec_out", dec.numpy())
    w.add_tensor("pixels_out", pix.astype(np.float32))
    w.write(os.path.join(out, "vq_io.gguf"))
    print(f"vq fixtures -> {out}: codes margin {margin:.4f}, dec_out range "
          f"[{float(dec.min()):.3f}, {float(dec.max()):.3f}]")


def ac_fixtures(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(1)
    cfg = ac.ACConfig(ch=16, embed_dim=8, codebook_size=64, n_down=2, n_res=3, norm_groups=4,
                      nnls_iters=20, gl_iters=8)
    model = ac.AudioCodec(cfg).eval()
    jitter_norms(model, g)
    ac.export_gguf(model, os.path.join(out, "tiny_ac.gguf"))
    codes_in = torch.randint(0, cfg.codebook_size, (1, 12), generator=g)
    with torch.no_grad():
        dec = model.decode_codes(codes_in)
        wav = ac.vocode(dec[0], cfg)
    w = gguf.Writer()
    w.add_str("general.architecture", "loom-fixture")
    w.add_str("fixture.model", "tiny_ac.gguf")
    w.add_f32("fixture.tol_dec_out", 1e-4)
    w.add_f32("fixture.tol_wav", 1e-2)
    w.add_tensor("codes_in", codes_in.numpy().astype(np.float32))
    w.add_tensor("dec_out", dec.numpy())
    w.add_tensor("wav_out", wav.numpy())
    w.write(os.path.join(out, "ac_io.gguf"))
    print(f"audio codec fixtures -> {out}: dec_out range [{float(dec.min()):.3f}, "
          f"{float(dec.max()):.3f}], wav {len(wav)} samples peak {float(wav.abs().max()):.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    vq_fixtures(os.path.join(a.out, "vq"))
    ac_fixtures(os.path.join(a.out, "audio_codec"))
    for d in ("vq", "audio_codec"):
        for f in sorted(os.listdir(os.path.join(a.out, d))):
            print(f"  {d}/{f}: {os.path.getsize(os.path.join(a.out, d, f))} bytes")


if __name__ == "__main__":
    main()
