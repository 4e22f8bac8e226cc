/*
 * Real FFT of any even size n (mixed radix 4, 2, 3, 5, then generic odd factors), planned
 * once. Needed because the libavutil in Debian 12 (57.28) has no fast path for n = 400
 * (it falls back to an O(n²) transform that calls sincos per term: ~1.6 ms per frame).
 *
 * Conventions (those of numpy / torch.fft.rfft and irfft):
 *   forward: X[k] = Σ_j x[j] e^{-2πijk/n}, k = 0..n/2, unnormalised
 *   inverse: x[j] = (1/n) Σ_k X[k] e^{+2πijk/n} over the Hermitian extension; the imaginary
 *            parts of X[0] and X[n/2] are ignored (as a c2r transform does)
 * A plan is read-only after creation except for its work buffer: one plan per thread.
 */
#ifndef LM_RFFT_H
#define LM_RFFT_H

#include <stdint.h>

typedef struct lm_rfft lm_rfft;

/* NULL if n is not even and >= 2, or out of memory. */
lm_rfft *lm_rfft_create(int n);
void     lm_rfft_free(lm_rfft **p);
/* x [n] → X [n/2 + 1][2] (re, im interleaved). */
void lm_rfft_forward(lm_rfft *p, const float *x, float *X);
/* X [n/2 + 1][2] → x [n]. X is not modified. */
void lm_rfft_inverse(lm_rfft *p, const float *X, float *x);
/* Transforms per batch of lm_rfft_forward_many / lm_rfft_inverse_many. */
#define LM_RFFT_LANES 16
/* count transforms at once, LM_RFFT_LANES in the lanes of AVX-512 registers (the same
 * butterflies as lm_rfft_forward, lane-parallel; results equal to it bit for bit):
 * X + i·Xs [n/2 + 1][2] = rfft(x + i·xs [n] ⊙ win) for i < count (win may be NULL).
 * AVX-512 F only (rfft_avx512.c): callers check the CPU (lm_kernels_name() == "avx512"). */
void lm_rfft_forward_many_avx512(lm_rfft *p, int count, const float *x, int64_t xs, const float *win, float *X,
                                 int64_t Xs);
/* x + i·xs [n] = irfft(X + i·Xs) ⊙ win, as lm_rfft_inverse then × win. */
void lm_rfft_inverse_many_avx512(lm_rfft *p, int count, const float *X, int64_t Xs, const float *win, float *x,
                                 int64_t xs);
/* Reference: direct O(n²) DFT in float64, same conventions (tests). */
void lm_rfft_forward_ref(int n, const float *x, float *X);
void lm_rfft_inverse_ref(int n, const float *X, float *x);

#endif
