"""Fixtures that pin loom's whole media-in path (mmproj → prompt → decoder → greedy text) to
the PyTorch unified model (tools/train/unified.py + infer.py), on random weights.

Writes tests/data/unified/tiny.gguf + tiny-mmproj.gguf (F32, a narrow loom-tiny) and
expected.txt: one line per job, "job input token,token,…" — the greedy answers (up to 24
tokens) for captioning examples/media/scene1.png, a question about scene2.png, transcribing
examples/media/speech.wav and describing the 8 frames of examples/media/video.mp4 (decoded
by the ffmpeg command line and saved as video_frames.rgb, which the C test reads: FFmpeg's
YUV→RGB settings differ between the CLI and loom, and this test is about the model path).

    /usr/bin/python3 tools/parity/make_unified_fixtures.py
"""
import math
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.loompy import decoder, gguf, mel, vision  # noqa: E402
from tools.train import infer, unified as U  # noqa: E402

OUT = "tests/data/unified"
MEDIA = "examples/media"


def config():
    return U.Config(
        dec=decoder.DecoderConfig(n_vocab=U.N_VOCAB, n_embd=64, n_layer=2, n_head=2, kv_lora=32, n_nope=16,
                                  n_rope=8, n_v=16, n_ff=128, n_ff_exp=64, n_expert=4, n_expert_used=2, n_ctx=512),
        vis=vision.VisionConfig(image_size=64, patch_size=8, n_embd=32, n_ff=64, n_layer=1, n_head=2, merge=2,
                                n_mm_hidden=64, n_embd_out=64, eps=1e-6),
        aud=dict(n_mel=80, d=32, n_head=2, n_ff=64, n_layer=1, n_pos=300, stack=4, d_proj=64, eps=1e-5))


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_((1.0 if name.endswith("norm") or "ln" in name else 0.0) + 0.1 * torch.randn(p.shape, generator=g))
            else:
                fan = p[0].numel() if p.dim() < 3 else p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan))
    return model


def decode_rgb(path):
    """Every frame of an image or video as uint8 [N,64,64,3] (the ffmpeg command line)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 64, 64, 3)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    model = randomize(U.Unified(config()), 3).eval()
    U.export(model, "models/loom-tiny-vocab.gguf", f"{OUT}/tiny", gguf.T_F32)
    tok = U.Tok("models/loom-tiny-vocab.gguf")
    img1 = decode_rgb(f"{MEDIA}/scene1.png")[0]
    img2 = decode_rgb(f"{MEDIA}/scene2.png")[0]
    wav = mel.read_wav16(f"{MEDIA}/speech.wav")
    frames = decode_rgb(f"{MEDIA}/video.mp4")
    assert len(frames) == 8
    frames.tofile(f"{OUT}/video_frames.rgb")   # the C test feeds these same pixels
    jobs = [
        ("caption", "scene1.png", [("ctl", "<|image|>"), ("image", img1), ("ctl", "<|/image|>"), ("text", "Describe the image.")]),
        ("ask", "scene2.png", [("ctl", "<|image|>"), ("image", img2), ("ctl", "<|/image|>"), ("text", "what colour is the square?")]),
        ("transcribe", "speech.wav", [("ctl", "<|audio|>"), ("audio", mel.log_mel(wav, 80)), ("ctl", "<|/audio|>"), ("text", "Transcribe the audio.")]),
        ("describe", "video.mp4", [("ctl", "<|video|>"), ("video", frames), ("ctl", "<|/video|>"), ("text", "Describe the video.")]),
    ]
    with open(f"{OUT}/expected.txt", "w") as f:
        for job, name, user in jobs:
            ids = infer.answer_ids(model, tok, user, n_max=24)
            f.write(f"{job} {name} {','.join(map(str, ids)) or '-'}\n")
            print(job, name, ids)


if __name__ == "__main__":
    main()
