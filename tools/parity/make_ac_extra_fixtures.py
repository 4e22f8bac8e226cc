"""Extra audio-codec parity fixtures for loom's C codec (encoder half and vocoder stages),
on the same random-weight model that make_vq_fixtures.py writes (tests/data/audio_codec/tiny_ac.gguf).

    /usr/bin/python3 tools/parity/make_ac_extra_fixtures.py [--dir tests/data/audio_codec]

writes ac_extra.gguf, all F32:
  wav_in     [8000]      0.5 s test signal (two chirps + an AR(1) noise bed, seed 2)
  mel_in     [80,51]     log_mel(wav_in) (normalised log-mel, 8000 // 160 + 1 frames)
  enc_z      [1,8,13]    encoder output for pad_frames(mel_in, 4)
  codes_out  [1,13]      codes of wav_in (cosine argmax)
  codes_gap  [1,13]      best-minus-second cosine per position (near-ties may differ)
  mag        [201,48]    A = sqrt(NNLS linear power) for ac_io.gguf's dec_out[0]
  wav_gl0    [7680]      vocode(dec_out[0]) with 0 Griffin-Lim iterations (iSTFT of A, phase 0)
  wav_gl1    [7680]      the same with 1 iteration
  wav_up2    [7680]      vocode(dec_out[0]) with gl_upsample 2 (hop 80 Griffin-Lim), 2 iterations
"""
import argparse
import dataclasses
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from loompy import gguf  # noqa: E402
from loompy import audiocodec as ac  # noqa: E402
from loompy.gguf import to_array  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="tests/data/audio_codec")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = ac.load_gguf(os.path.join(a.dir, "tiny_ac.gguf"))
    cfg = model.cfg
    _, io = gguf.read(os.path.join(a.dir, "ac_io.gguf"))
    dec = torch.from_numpy(to_array(*io["dec_out"]).copy())[0]

    rng = np.random.default_rng(2)
    n = 8000
    t = np.arange(n) / ac.SR
    wav = 0.3 * np.sin(2 * np.pi * (200 * t + 1200 * t * t)) + 0.2 * np.sin(2 * np.pi * (3000 * t - 2000 * t * t))
    noise = np.zeros(n)
    e = rng.standard_normal(n) * 0.02
    for i in range(1, n):
        noise[i] = 0.9 * noise[i - 1] + e[i]
    wav = (wav + noise).astype(np.float32)

    with torch.no_grad():
        mel = ac.log_mel(torch.from_numpy(wav))
        xp = ac.pad_frames(mel[None], 2 ** cfg.n_down)
        z = model.encoder(xp)
        codes = model.quantize.codes(z)
        zf = torch.nn.functional.normalize(z.transpose(1, 2).reshape(-1, cfg.embed_dim), dim=1)
        top2 = torch.topk(zf @ model.quantize.codebook().t(), 2, dim=1).values
        gap = (top2[:, 0] - top2[:, 1]).reshape(codes.shape)
        P = 10.0 ** (dec * ac.MEL_SCALE - ac.MEL_OFFSET)
        mag = torch.sqrt(ac.mel_to_linear_power(P, cfg.nnls_iters))
        gl0 = ac.vocode(dec, dataclasses.replace(cfg, gl_iters=0))
        gl1 = ac.vocode(dec, dataclasses.replace(cfg, gl_iters=1))
        up2 = ac.vocode(dec, dataclasses.replace(cfg, gl_iters=2, gl_upsample=2))

    w = gguf.Writer()
    w.add_str("general.architecture", "loom-fixture")
    w.add_str("fixture.model", "tiny_ac.gguf")
    w.add_f32("fixture.min_margin", float(gap.min()))
    w.add_tensor("wav_in", wav)
    w.add_tensor("mel_in", mel.numpy())
    w.add_tensor("enc_z", z.numpy())
    w.add_tensor("codes_out", codes.numpy().astype(np.float32))
    w.add_tensor("codes_gap", gap.numpy())
    w.add_tensor("mag", mag.numpy())
    w.add_tensor("wav_gl0", gl0.numpy())
    w.add_tensor("wav_gl1", gl1.numpy())
    w.add_tensor("wav_up2", up2.numpy())
    path = os.path.join(a.dir, "ac_extra.gguf")
    w.write(path)
    print(f"{path}: {os.path.getsize(path)} bytes; codes {codes.tolist()}, min gap {float(gap.min()):.4g}")


if __name__ == "__main__":
    main()
