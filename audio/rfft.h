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
/* Reference: direct O(n²) DFT in float64, same conventions (tests). */
void lm_rfft_forward_ref(int n, const float *x, float *X);
void lm_rfft_inverse_ref(int n, const float *X, float *x);

#endif
