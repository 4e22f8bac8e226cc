/*
 * AVX-512 (F, BW, VL) row kernels, compiled with the AVX-512 flags and called only after
 * lm_cpu_caps_get() reported avx512f+bw+vl. References: the *_ref kernels in kernels_ref.c.
 *
 * Q8_0 × float x (lm_matvec): weights are dequantized int8 → float in registers and FMA'd
 * against float x. Q8_0 × q8 activations (lm_matvec_q8, what the decoder uses, as
 * llama.cpp does): int8 dots, VNNI when the CPU has it (bench_kernels "cache" compares
 * the two paths).
 * BF16: weights are widened by a 16-bit shift (exact) rather than using vdpbf16ps, which
 * would need x rounded to bf16; the loop runs ~4x faster than DRAM in cache either way.
 */
#include <immintrin.h>

#include "lib/core/kernels_impl.h"
#include "lib/core/kernels_q8.h"

static inline __m512 load_f32x16(const float *p) { return _mm512_loadu_ps(p); }
static inline __m512 load_f16x16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline __m512 load_bf16x16(const uint16_t *p)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

/* Masked tails: the first m (< 16) values. */
static inline __m512 tail_f32(const float *p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
static inline __m512 tail_f16(const uint16_t *p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
static inline __m512 tail_bf16(const uint16_t *p, __mmask16 m)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

/* Σ w·x_j for NX (1..4) inputs x_j = x + j·ldx at once: each weight vector is loaded and
 * widened once for all of them. Per input: four independent 16-lane accumulators hide the
 * FMA latency, the tail is one masked step, and the order does not depend on NX, so every
 * result equals the lone dot's (NX = 1) bit for bit. */
#define DEFINE_DOTS_FLOATLIKE(name, T, LOAD, TAIL)                                           \
    static inline __attribute__((always_inline)) void name(const void *wv, const float *x,  \
                                                           int64_t ldx, float *out, const int NX, int64_t n) \
    {                                                                                        \
        const T *w = wv;                                                                     \
        __m512 a[4][4];                                                                      \
        for (int j = 0; j < NX; j++) a[j][0] = a[j][1] = a[j][2] = a[j][3] = _mm512_setzero_ps(); \
        int64_t i = 0;                                                                       \
        for (; i + 64 <= n; i += 64)                                                         \
            for (int k = 0; k < 4; k++) {                                                    \
                const __m512 wk = LOAD(w + i + 16 * k);                                      \
                for (int j = 0; j < NX; j++)                                                 \
                    a[j][k] = _mm512_fmadd_ps(wk, _mm512_loadu_ps(x + j * ldx + i + 16 * k), a[j][k]); \
            }                                                                                \
        for (; i + 16 <= n; i += 16) {                                                       \
            const __m512 wk = LOAD(w + i);                                                   \
            for (int j = 0; j < NX; j++) a[j][0] = _mm512_fmadd_ps(wk, _mm512_loadu_ps(x + j * ldx + i), a[j][0]); \
        }                                                                                    \
        if (i < n) {                                                                         \
            const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);                            \
            const __m512 wk = TAIL(w + i, m);                                                \
            for (int j = 0; j < NX; j++)                                                     \
                a[j][1] = _mm512_fmadd_ps(wk, _mm512_maskz_loadu_ps(m, x + j * ldx + i), a[j][1]); \
        }                                                                                    \
        for (int j = 0; j < NX; j++)                                                         \
            out[j] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a[j][0], a[j][1]), _mm512_add_ps(a[j][2], a[j][3]))); \
    }

DEFINE_DOTS_FLOATLIKE(dots_f32_avx512, float, load_f32x16, tail_f32)
DEFINE_DOTS_FLOATLIKE(dots_f16_avx512, uint16_t, load_f16x16, tail_f16)
DEFINE_DOTS_FLOATLIKE(dots_bf16_avx512, uint16_t, load_bf16x16, tail_bf16)
LM_DEFINE_ROWS_FROM_DOTS(f32_avx512, dots_f32_avx512, 4)
LM_DEFINE_ROWS_FROM_DOTS(f16_avx512, dots_f16_avx512, 4)
LM_DEFINE_ROWS_FROM_DOTS(bf16_avx512, dots_bf16_avx512, 4)

/* 16 int8 at p → 16 floats. */
static inline __m512 load_i8x16(const int8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

/* d · Σ q·x for one block into acc. */
static inline __m512 q8_0_block(const lm_block_q8_0 *b, const float *xb, __m512 acc)
{
    __m512 t = _mm512_mul_ps(load_i8x16(b->qs), _mm512_loadu_ps(xb));
    t = _mm512_fmadd_ps(load_i8x16(b->qs + 16), _mm512_loadu_ps(xb + 16), t);
    return _mm512_fmadd_ps(t, _mm512_set1_ps(_cvtsh_ss(b->d)), acc);
}

static float dot_q8_0_avx512(const void *wv, const float *x, int64_t n)
{
    const lm_block_q8_0 *b = wv;
    const int64_t nb = n / LM_QK8_0;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    /* Four blocks per step into separate accumulators: independent dependency chains. */
    for (; i + 4 <= nb; i += 4) {
        a0 = q8_0_block(b + i, x + i * LM_QK8_0, a0);
        a1 = q8_0_block(b + i + 1, x + (i + 1) * LM_QK8_0, a1);
        a2 = q8_0_block(b + i + 2, x + (i + 2) * LM_QK8_0, a2);
        a3 = q8_0_block(b + i + 3, x + (i + 3) * LM_QK8_0, a3);
    }
    for (; i < nb; i++) a0 = q8_0_block(b + i, x + i * LM_QK8_0, a0);
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* --- Q8_0 × q8 activations with VNNI ------------------------------------------------------
 * The AVX2 loop (kernels_avx2.c) with vpdpbusd replacing vpmaddubsw + vpmaddwd. Measured
 * in cache (Xeon with AVX-512): this 256-bit loop and the AVX2 one run at ~30 GB/s of
 * weights, a 512-bit version with two blocks per register (vpabsb, vpmovb2m-masked negate,
 * vpdpbusd, one permuted scale per pair) at ~29: the vector ALU ports are the limit (abs,
 * sign, dot, int→float, FMA per block), not the width. */

/* Σ_j w[j]·x[j] over one block of 32, as 8 float partial sums (exact integers). */
static inline __m256 q8_block_vnni256(__m256i vw, const int8_t *x)
{
    const __m256i vx = _mm256_loadu_si256((const __m256i *)x);
    return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(vw), _mm256_sign_epi8(vx, vw)));
}

LM_DEFINE_DOTS_Q8(dots_q8_vnni256, q8_block_vnni256)
LM_DEFINE_ROWS_Q8(static, rows_q8_vnni256, dots_q8_vnni256, 2)

#define DEFINE_ROWS(name, dotfn)                                                             \
    static void name(const uint8_t *w, size_t row_bytes, const float *x, float *y,          \
                     int64_t n_rows, int64_t n)                                              \
    {                                                                                        \
        for (int64_t r = 0; r < n_rows; r++) y[r] = dotfn(w + (size_t)r * row_bytes, x, n);  \
    }
DEFINE_ROWS(rows_q8_0_avx512, dot_q8_0_avx512)

static void to_f32_f32_avx512(const void *w, float *dst, int64_t n) { lm_row_to_f32(LOOM_TYPE_F32, w, dst, n); }

#define DEFINE_TO_F32_FLOATLIKE(name, LOAD, TAIL)                                            \
    static void name(const void *wv, float *dst, int64_t n)                                 \
    {                                                                                        \
        const uint16_t *w = wv;                                                              \
        int64_t i = 0;                                                                       \
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, LOAD(w + i));                 \
        if (i < n) {                                                                         \
            const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);                            \
            _mm512_mask_storeu_ps(dst + i, m, TAIL(w + i, m));                               \
        }                                                                                    \
    }
DEFINE_TO_F32_FLOATLIKE(to_f32_f16_avx512, load_f16x16, tail_f16)
DEFINE_TO_F32_FLOATLIKE(to_f32_bf16_avx512, load_bf16x16, tail_bf16)

static void to_f32_q8_0_avx512(const void *wv, float *dst, int64_t n)
{
    const lm_block_q8_0 *b = wv;
    for (int64_t i = 0; i < n / LM_QK8_0; i++) {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(b[i].d));
        _mm512_storeu_ps(dst + i * LM_QK8_0, _mm512_mul_ps(load_i8x16(b[i].qs), d));
        _mm512_storeu_ps(dst + i * LM_QK8_0 + 16, _mm512_mul_ps(load_i8x16(b[i].qs + 16), d));
    }
}

const lm_kernel_set lm_kernels_avx512_set = {
    .name = "avx512",
    .dot = {[LM_KT_F32] = f32_avx512_dot, [LM_KT_F16] = f16_avx512_dot,
            [LM_KT_BF16] = bf16_avx512_dot, [LM_KT_Q8_0] = dot_q8_0_avx512},
    .rows = {[LM_KT_F32] = f32_avx512_rows, [LM_KT_F16] = f16_avx512_rows,
             [LM_KT_BF16] = bf16_avx512_rows, [LM_KT_Q8_0] = rows_q8_0_avx512},
    .rows_multi = {[LM_KT_F32] = f32_avx512_rows_multi, [LM_KT_F16] = f16_avx512_rows_multi,
                   [LM_KT_BF16] = bf16_avx512_rows_multi},
    .to_f32 = {[LM_KT_F32] = to_f32_f32_avx512, [LM_KT_F16] = to_f32_f16_avx512,
               [LM_KT_BF16] = to_f32_bf16_avx512, [LM_KT_Q8_0] = to_f32_q8_0_avx512},
    .from_f32 = {[LM_KT_F32] = lm_from_f32_f32, [LM_KT_F16] = lm_from_f32_f16_avx2,
                 [LM_KT_BF16] = lm_from_f32_bf16_avx2, [LM_KT_Q8_0] = lm_from_f32_q8_0_avx2},
    .rows_q8 = lm_rows_q8_avx2,
    .rows_q8_vnni = rows_q8_vnni256,
    .rows_q8_multi = lm_rows_q8_avx2_multi,
    .rows_q8_vnni_multi = rows_q8_vnni256_multi,
    .quantize_q8 = lm_quantize_q8_avx2,
};
