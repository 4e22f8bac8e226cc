/*
 * Whisper's log-mel spectrogram (internal).
 *
 * Definition (the same as whisper's Python `log_mel_spectrogram(audio, padding=0)`, and as
 * tools/loompy/mel.py):
 *   - 16 kHz input x[n]; N_FFT 400, HOP 160; periodic Hann w[i] = 0.5·(1 − cos(2πi/400)).
 *   - Framing (torch.stft center=True, pad_mode="reflect", last frame dropped):
 *     frame t (0 ≤ t < n/160, integer division) covers samples t·160 − 200 … t·160 + 199;
 *     indices outside [0, n) reflect about the ends without repeating the edge sample
 *     (x[−1] = x[1], x[n] = x[n−2]), repeatedly if needed (numpy's "reflect").
 *     So n_frames = n / 160, e.g. 30 s = 480000 samples → 3000 frames.
 *   - power[k] = |Σ_i w[i]·x_t[i]·e^{−2πi·ik/400}|², k = 0 … 200.
 *   - mel[m] = Σ_k F[m][k]·power[k] with F the Slaney filterbank (librosa.filters.mel with
 *     htk=False, norm="slaney", fmin 0, fmax 8000), computed here in double precision.
 *   - L = log10(max(mel, 1e-10)); then L = max(L, max(L) − 8) over the whole spectrogram;
 *     out = (L + 4) / 4.
 * Output layout is whisper's: out[m·n_frames + t] (mel-major, [n_mels][n_frames]).
 *
 * Whisper's transcribe pads the audio with 30 s of zeros first and llama.cpp's mtmd pads
 * to ≥ 31 s; that padding is the caller's job (the windowing), not part of this transform.
 * Long audio: lm_mel_log() of consecutive chunks (each with its own reflected edges) plus
 * lm_mel_normalize() per window lets a caller stream without holding hours of mel.
 */
#ifndef LM_MEL_H
#define LM_MEL_H

#include <stdint.h>

#include "lib/core/error.h"
#include "lib/core/threadpool.h"

#define LM_MEL_N_FFT 400
#define LM_MEL_HOP   160
#define LM_MEL_N_BINS (LM_MEL_N_FFT / 2 + 1)   /* 201 */

typedef struct lm_mel lm_mel;

/* Plan for n_mels bins (1..256; whisper uses 80, large-v3 128) and up to n_threads
 * concurrent workers (scratch for each). */
int  lm_mel_create(int n_mels, int n_threads, lm_mel **out, lm_error *err);
void lm_mel_free(lm_mel **m);
int  lm_mel_n_mels(const lm_mel *m);

/* The filterbank F, [n_mels][201] row-major; owned by m. */
const float *lm_mel_filters(const lm_mel *m);

static inline int64_t lm_mel_n_frames(int64_t n_samples) { return n_samples > 0 ? n_samples / LM_MEL_HOP : 0; }

/* log10(max(mel, 1e-10)) of pcm[n] into out[n_mels][n_frames] (no clamp or scaling).
 * Frames are split across the pool (which must have at most n_threads threads). */
int lm_mel_log(lm_mel *m, const float *pcm, int64_t n, float *out, lm_pool *pool, lm_error *err);
/* Whisper's normalisation in place over x[n]: clamp to max − 8, then (x + 4) / 4. */
void lm_mel_normalize(float *x, int64_t n);
/* Both: the full log-mel spectrogram. */
int lm_mel_compute(lm_mel *m, const float *pcm, int64_t n, float *out, lm_pool *pool, lm_error *err);

/* Straightforward version for tests: direct DFT in double, dense filterbank. */
int lm_mel_compute_ref(int n_mels, const float *pcm, int64_t n, float *out, lm_error *err);

#endif
