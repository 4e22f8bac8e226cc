"""Whisper's log-mel spectrogram in NumPy: the reference for audio/mel.c.

Definition (identical to audio/mel.h):
  16 kHz input; N_FFT 400, HOP 160, periodic Hann; torch.stft(center=True,
  pad_mode="reflect") framing with the last frame dropped, i.e. n_frames = n // 160 and
  frame t covers x[t*160-200 : t*160+200] under numpy "reflect" padding; power over 201
  bins; Slaney mel filterbank (librosa htk=False, norm="slaney", fmin 0, fmax 8000);
  log10(max(., 1e-10)); clamp to max-8; (x+4)/4. Output [n_mels][n_frames].

    python3 -m tools.loompy.mel --fixtures tests/data/audio/mel   (re)makes the test fixtures
"""
import argparse
import os
import subprocess
import tempfile
import wave

import numpy as np

SAMPLE_RATE, N_FFT, HOP = 16000, 400, 160


def hz_to_mel(hz):
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    hz = np.asarray(hz, dtype=np.float64)
    return np.where(hz < min_log_hz, hz / f_sp,
                    min_log_mel + np.log(np.maximum(hz, 1e-300) / min_log_hz) / logstep)


def mel_to_hz(mel):
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel < min_log_mel, f_sp * mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)))


def mel_filters(n_mels, sr=SAMPLE_RATE, n_fft=N_FFT):
    """librosa.filters.mel(sr, n_fft, n_mels, htk=False, norm="slaney") as float32."""
    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    pts = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(pts)
    ramps = pts[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (pts[2:] - pts[:-2]))[:, None]
    return w.astype(np.float32)


def log_mel(audio, n_mels=80):
    """The full log-mel spectrogram of float audio (16 kHz), float64 arithmetic."""
    x = np.asarray(audio, dtype=np.float64)
    n_frames = len(x) // HOP
    if n_frames == 0:
        return np.zeros((n_mels, 0), dtype=np.float32)
    xp = np.pad(x, (N_FFT // 2, N_FFT // 2), mode="reflect")
    window = 0.5 * (1 - np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT))
    idx = np.arange(n_frames)[:, None] * HOP + np.arange(N_FFT)[None, :]
    spec = np.fft.rfft(xp[idx] * window, axis=1)              # [n_frames][201]
    power = spec.real ** 2 + spec.imag ** 2
    mel = mel_filters(n_mels).astype(np.float64) @ power.T    # [n_mels][n_frames]
    logm = np.log10(np.maximum(mel, 1e-10))
    logm = np.maximum(logm, logm.max() - 8.0)
    return ((logm + 4.0) / 4.0).astype(np.float32)


def log_mel_torch(audio, n_mels=80):
    """Whisper's own code path (torch.stft), to show log_mel() is the same definition."""
    import torch
    a = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    stft = torch.stft(a, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    mags = stft[..., :-1].abs() ** 2
    mel = torch.from_numpy(mel_filters(n_mels)) @ mags
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).numpy()


def read_wav16(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == SAMPLE_RATE
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def write_wav16(path, x):
    q = np.clip(np.round(np.asarray(x) * 32767), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(q.tobytes())


def make_fixtures(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1234)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    write_wav16(os.path.join(out, "silence.wav"), np.zeros(SAMPLE_RATE))
    write_wav16(os.path.join(out, "tone.wav"), 0.5 * np.sin(2 * np.pi * 1000.0 * t))
    write_wav16(os.path.join(out, "noise_clipped.wav"), np.clip(rng.normal(0, 0.8, SAMPLE_RATE + 123), -1, 1))
    with tempfile.TemporaryDirectory() as td:
        raw = os.path.join(td, "speech.wav")
        subprocess.run(["espeak-ng", "-v", "en-us+f3", "-s", "170", "-w", raw,
                        "The quick brown fox jumps over the lazy dog."], check=True)
        subprocess.run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16",
                        os.path.join(out, "speech.wav"), "trim", "0", "1.6"], check=True)
    for name, n_mels in [("silence", 80), ("tone", 80), ("noise_clipped", 80), ("speech", 80), ("speech", 128)]:
        x = read_wav16(os.path.join(out, name + ".wav"))
        ref = log_mel(x, n_mels)
        tor = log_mel_torch(x, n_mels)
        diff = float(np.abs(ref - tor).max())
        assert diff < 1e-4, f"{name}: numpy and torch definitions differ by {diff}"
        ref.astype("<f4").tofile(os.path.join(out, f"{name}.mel{n_mels}.f32"))
        print(f"{name}: {len(x)} samples -> mel {ref.shape}, numpy vs torch.stft max diff {diff:.2e}")
    mel_filters(80).astype("<f4").tofile(os.path.join(out, "filters80.f32"))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", metavar="DIR", help="write the mel test fixtures into DIR")
    a = ap.parse_args()
    if a.fixtures:
        make_fixtures(a.fixtures)
