/*
 * The Q8_0 × q8-activation row loop shared by kernels_avx2.c and kernels_avx512.c (include
 * it only from files compiled with AVX2 + FMA + F16C). Each file supplies the per-block
 * integer dot: 32 int8 weights × 32 int8 activations → 8 float partial sums (exact
 * integers). The loop converts the f16 scales of 8 blocks at once (one vcvtph2ps, times
 * the activations' float scales) and picks each block's with a permute; four accumulators.
 */
#ifndef LM_KERNELS_Q8_H
#define LM_KERNELS_Q8_H

#include <immintrin.h>

#include "lib/core/kernels_impl.h"

/* dw·dx of one block. */
static inline float q8_scale1(const lm_block_q8_0 *b, const float *xd) { return _cvtsh_ss(b->d) * *xd; }

/* dw[k]·xd[k] for the 8 blocks b[0..8). */
static inline __m256 q8_scales8(const lm_block_q8_0 *b, const float *xd)
{
    uint64_t lo = 0, hi = 0;
    for (int k = 0; k < 4; k++) {
        lo |= (uint64_t)b[k].d << (16 * k);
        hi |= (uint64_t)b[k + 4].d << (16 * k);
    }
    return _mm256_mul_ps(_mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo)), _mm256_loadu_ps(xd));
}

/* Σ of the 8 lanes. */
static inline float lm_hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* An lm_rows_q8_fn named `name` on the block dot BLOCK_DOT(const int8_t *w, const int8_t *x). */
#define LM_DEFINE_ROWS_Q8(name, BLOCK_DOT)                                                     \
    void name(const uint8_t *w, size_t row_bytes, const int8_t *xq, const float *xd, float *y,  \
              int64_t n_rows, int64_t n)                                                      \
    {                                                                                        \
        const int64_t nb = n / LM_QK8_0;                                                     \
        for (int64_t r = 0; r < n_rows; r++) {                                               \
            const lm_block_q8_0 *b = (const lm_block_q8_0 *)(w + (size_t)r * row_bytes);     \
            __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}; \
            int64_t i = 0;                                                                   \
            for (; i + 8 <= nb; i += 8) {                                                    \
                const __m256 sc = q8_scales8(b + i, xd + i);                                 \
                for (int k = 0; k < 8; k++) /* unrolled by the compiler */                   \
                    a[k & 3] = _mm256_fmadd_ps(BLOCK_DOT(b[i + k].qs, xq + (i + k) * LM_QK8_0), \
                                               _mm256_permutevar8x32_ps(sc, _mm256_set1_epi32(k)), a[k & 3]); \
            }                                                                                \
            for (; i < nb; i++)                                                              \
                a[0] = _mm256_fmadd_ps(BLOCK_DOT(b[i].qs, xq + i * LM_QK8_0),                 \
                                       _mm256_set1_ps(q8_scale1(b + i, xd + i)), a[0]);      \
            y[r] = lm_hsum8(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]))); \
        }                                                                                    \
    }

#endif
