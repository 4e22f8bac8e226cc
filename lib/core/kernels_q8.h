/*
 * The Q8_0 × q8-activation row loop shared by kernels_avx2.c and kernels_avx512.c (include
 * it only from files compiled with AVX2 + FMA + F16C). Each file supplies the per-block
 * integer dot: 32 int8 weights × 32 int8 activations → 8 float partial sums (exact
 * integers). The loop converts the f16 scales of 8 blocks at once (one vcvtph2ps, times
 * the activations' float scales) and picks each block's with a permute; four accumulators
 * per input.
 */
#ifndef LM_KERNELS_Q8_H
#define LM_KERNELS_Q8_H

#include <immintrin.h>

#include "lib/core/kernels_impl.h"

/* The 8 blocks' f16 scales dw[k] of b[0..8) as floats (one vcvtph2ps). */
static inline __m256 q8_wscales8(const lm_block_q8_0 *b)
{
    uint64_t lo = 0, hi = 0;
    for (int k = 0; k < 4; k++) {
        lo |= (uint64_t)b[k].d << (16 * k);
        hi |= (uint64_t)b[k + 4].d << (16 * k);
    }
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
}

/* Σ of the 8 lanes. */
static inline float lm_hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* `name`(b, xq, xd, out, NX, n): NX (1..4) dots of one Q8_0 row b with the q8 inputs
 * xq + j·n, xd + j·n/32, on the block dot BLOCK_DOT(__m256i w, const int8_t *x). Each
 * weight block is loaded (and its scales widened) once for all inputs; per input the same
 * accumulators and order whatever NX, so each result equals the lone dot's bit for bit. */
#define LM_DEFINE_DOTS_Q8(name, BLOCK_DOT)                                                     \
    static inline __attribute__((always_inline)) void name(const lm_block_q8_0 *b, const int8_t *xq, \
                                                           const float *xd, float *out, const int NX, int64_t n) \
    {                                                                                        \
        const int64_t nb = n / LM_QK8_0;                                                     \
        __m256 a[4][4];                                                                      \
        for (int j = 0; j < NX; j++) a[j][0] = a[j][1] = a[j][2] = a[j][3] = _mm256_setzero_ps(); \
        int64_t i = 0;                                                                       \
        for (; i + 8 <= nb; i += 8) {                                                        \
            const __m256 dw = q8_wscales8(b + i);                                            \
            __m256 sc[4];                                                                    \
            for (int j = 0; j < NX; j++) sc[j] = _mm256_mul_ps(dw, _mm256_loadu_ps(xd + j * nb + i)); \
            for (int k = 0; k < 8; k++) {                                                    \
                const __m256i vw = _mm256_loadu_si256((const __m256i *)b[i + k].qs);         \
                for (int j = 0; j < NX; j++)                                                 \
                    a[j][k & 3] = _mm256_fmadd_ps(BLOCK_DOT(vw, xq + j * n + (i + k) * LM_QK8_0), \
                                                  _mm256_permutevar8x32_ps(sc[j], _mm256_set1_epi32(k)), a[j][k & 3]); \
            }                                                                                \
        }                                                                                    \
        for (; i < nb; i++) {                                                                \
            const __m256i vw = _mm256_loadu_si256((const __m256i *)b[i].qs);                 \
            const float dw = _cvtsh_ss(b[i].d);                                              \
            for (int j = 0; j < NX; j++)                                                     \
                a[j][0] = _mm256_fmadd_ps(BLOCK_DOT(vw, xq + j * n + i * LM_QK8_0),          \
                                          _mm256_set1_ps(dw * xd[j * nb + i]), a[j][0]);     \
        }                                                                                    \
        for (int j = 0; j < NX; j++)                                                         \
            out[j] = lm_hsum8(_mm256_add_ps(_mm256_add_ps(a[j][0], a[j][1]), _mm256_add_ps(a[j][2], a[j][3]))); \
    }

/* An lm_rows_q8_fn `name` and an lm_rows_q8_multi_fn `name##_multi` (inputs G at a time,
 * each group walking all rows) on a LM_DEFINE_DOTS_Q8 kernel; LINK is `static` or empty.
 * G = 2 on both sets: with 4 the VNNI loop ran slower than lone rows (bench_kernels multi). */
#define LM_DEFINE_ROWS_Q8(LINK, name, DOTS, G)                                                 \
    LINK void name(const uint8_t *w, size_t row_bytes, const int8_t *xq, const float *xd, float *y, \
                   int64_t n_rows, int64_t n)                                                \
    {                                                                                        \
        for (int64_t r = 0; r < n_rows; r++)                                                 \
            DOTS((const lm_block_q8_0 *)(w + (size_t)r * row_bytes), xq, xd, y + r, 1, n);   \
    }                                                                                        \
    LINK void name##_multi(const uint8_t *w, size_t row_bytes, const int8_t *xq, const float *xd, \
                           float *const *y, int nx, int64_t n_rows, int64_t n)               \
    {                                                                                        \
        const int64_t nb = n / LM_QK8_0;                                                     \
        for (int j0 = 0; j0 < nx; j0 += (G)) {                                               \
            const int m = nx - j0 < (G) ? nx - j0 : (G);                                     \
            const int8_t *q = xq + j0 * n;                                                   \
            const float *d = xd + j0 * nb;                                                   \
            for (int64_t r = 0; r < n_rows; r++) {                                           \
                const lm_block_q8_0 *b = (const lm_block_q8_0 *)(w + (size_t)r * row_bytes); \
                float o[4];                                                                  \
                if (m >= 4) DOTS(b, q, d, o, 4, n);                                          \
                else if (m == 3) DOTS(b, q, d, o, 3, n);                                     \
                else if (m == 2) DOTS(b, q, d, o, 2, n);                                     \
                else DOTS(b, q, d, o, 1, n);                                                 \
                for (int j = 0; j < m; j++) y[j0 + j][r] = o[j];                             \
            }                                                                                \
        }                                                                                    \
    }

#endif
