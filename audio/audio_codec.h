/*
 * Audio codec, the C twin of tools/loompy/audiocodec.py (file layout: docs/FORMAT.md
 * "Audio codec").
 *
 *   decode: codes [n] → codebook rows → conv1d decoder → normalised log-mel x [80][T]
 *           (T = n · 2^n_down frames of 10 ms) → vocoder → PCM [T · hop] at sample_rate
 *   vocoder: P = 10^(x·scale − offset); NNLS mel inversion (float64, multiplicative updates);
 *           A = sqrt(S); optional linear time upsampling; fast Griffin-Lim (momentum α, phase 0
 *           start, fixed iterations) with torch.stft/istft conventions (centred, reflect pad
 *           n_fft/2, periodic Hann, window-sum-normalised overlap-add); pad to T·hop; peak 0.9.
 *   encode: PCM → log-mel (same STFT, power, Slaney filters, log10 floor) → pad frames to a
 *           multiple of 2^n_down with the floor value → conv1d encoder → cosine argmax codes.
 *
 * FFTs are audio/rfft.c real DFTs of n_fft points, planned at load (one plan per pool thread,
 * made on the first call with a larger pool; STFT frames, iSTFT frames and overlap-add ranges
 * are split across the pool). Scratch grows to the longest input seen and is reused: calls of
 * a length (and pool size) already seen never allocate.
 * One lm_audio_codec serves one caller at a time.
 */
#ifndef LM_AUDIO_CODEC_H
#define LM_AUDIO_CODEC_H

#include <stdint.h>

#include "lib/core/error.h"
#include "lib/core/threadpool.h"

typedef struct lm_audio_codec lm_audio_codec;

typedef struct lm_audio_codec_info {
    int   sample_rate;       /* 16000                                   */
    int   hop;               /* samples per mel frame (160)             */
    int   n_mels;            /* 80                                      */
    int   frames_per_code;   /* 2^n_down (4)                            */
    int   codebook_size;     /* K                                       */
    int   embed_dim;         /* D                                       */
    float codes_per_second;  /* sample_rate / hop / frames_per_code     */
    int   gl_iters;          /* Griffin-Lim iterations from the file    */
} lm_audio_codec_info;

/* Longest input accepted, in mel frames (10 minutes at 100 frames/s). */
#define LM_AC_MAX_FRAMES (100 * 600)

int  lm_audio_codec_open(const char *path, lm_audio_codec **out, lm_error *err);
void lm_audio_codec_free(lm_audio_codec **ac);
lm_audio_codec_info lm_audio_codec_get_info(const lm_audio_codec *ac);

/* codes [n] → x [n_mels][n · frames_per_code] (the learned decoder's output). */
int lm_audio_codec_decode_mel(lm_audio_codec *ac, const int32_t *codes, int64_t n, float *x, lm_pool *pool,
                              lm_error *err);
/* x [n_mels][T] → pcm [T · hop]. gl_iters < 0 uses the file's count (tests pass 0 or 1 to
 * check the stages before the iterations). mag, if not NULL, receives A [n_fft/2+1][T]. */
int lm_audio_codec_vocode(lm_audio_codec *ac, const float *x, int64_t T, int gl_iters, float *pcm, float *mag,
                          lm_pool *pool, lm_error *err);
/* Both: codes [n] → pcm [n · frames_per_code · hop]. */
int lm_audio_codec_decode(lm_audio_codec *ac, const int32_t *codes, int64_t n, float *pcm, lm_pool *pool,
                          lm_error *err);

/* Codes that n_samples of PCM encode to: ceil((n_samples / hop + 1) / frames_per_code). */
int64_t lm_audio_codec_n_codes(const lm_audio_codec *ac, int64_t n_samples);
/* pcm [n_samples] (> n_fft/2) → codes [lm_audio_codec_n_codes]; mel (may be NULL) receives
 * the log-mel [n_mels][n_samples / hop + 1], z (may be NULL) the encoder output [D][n_codes]. */
int lm_audio_codec_encode(lm_audio_codec *ac, const float *pcm, int64_t n_samples, int32_t *codes, float *mel,
                          float *z, lm_pool *pool, lm_error *err);

#endif
