/*
 * AVX2 + FMA + F16C row kernels (compiled with -mavx2 -mfma -mf16c; called only after
 * lm_cpu_caps_get() reported all three). References: the *_ref kernels in kernels_ref.c.
 * Q8_0 × float x dequantizes int8 → float in registers and FMAs; Q8_0 × q8 activations
 * (lm_matvec_q8) uses integer dots.
 */
#include <immintrin.h>

#include "lib/core/kernels_impl.h"
#include "lib/core/kernels_q8.h"

static inline __m256 load_f16x8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

static inline __m256 load_bf16x8(const uint16_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static inline __m256 load_f32x8(const float *p) { return _mm256_loadu_ps(p); }

/* Σ w·x_j for NX (1..4) inputs x_j = x + j·ldx at once: each weight vector is loaded and
 * widened once for all of them. Per input: four independent 8-lane accumulators hide the
 * FMA latency and the tail is scalar, in an order that does not depend on NX, so every
 * result equals the lone dot's (NX = 1) bit for bit. */
#define DEFINE_DOTS_FLOATLIKE(name, T, LOAD, SCALAR)                                         \
    static inline __attribute__((always_inline)) void name(const void *wv, const float *x,  \
                                                           int64_t ldx, float *out, const int NX, int64_t n) \
    {                                                                                        \
        const T *w = wv;                                                                     \
        __m256 a[4][4];                                                                      \
        for (int j = 0; j < NX; j++) a[j][0] = a[j][1] = a[j][2] = a[j][3] = _mm256_setzero_ps(); \
        int64_t i = 0;                                                                       \
        for (; i + 32 <= n; i += 32)                                                         \
            for (int k = 0; k < 4; k++) {                                                    \
                const __m256 wk = LOAD(w + i + 8 * k);                                       \
                for (int j = 0; j < NX; j++)                                                 \
                    a[j][k] = _mm256_fmadd_ps(wk, _mm256_loadu_ps(x + j * ldx + i + 8 * k), a[j][k]); \
            }                                                                                \
        for (; i + 8 <= n; i += 8) {                                                         \
            const __m256 wk = LOAD(w + i);                                                   \
            for (int j = 0; j < NX; j++) a[j][0] = _mm256_fmadd_ps(wk, _mm256_loadu_ps(x + j * ldx + i), a[j][0]); \
        }                                                                                    \
        for (int j = 0; j < NX; j++) {                                                       \
            float s = lm_hsum8(_mm256_add_ps(_mm256_add_ps(a[j][0], a[j][1]), _mm256_add_ps(a[j][2], a[j][3]))); \
            for (int64_t t = i; t < n; t++) s += SCALAR(w[t]) * x[j * ldx + t];              \
            out[j] = s;                                                                      \
        }                                                                                    \
    }

static inline float f32_id(float v) { return v; }
DEFINE_DOTS_FLOATLIKE(dots_f32_avx2, float, load_f32x8, f32_id)
DEFINE_DOTS_FLOATLIKE(dots_f16_avx2, uint16_t, load_f16x8, lm_f16_to_f32)
DEFINE_DOTS_FLOATLIKE(dots_bf16_avx2, uint16_t, load_bf16x8, lm_bf16_to_f32)
LM_DEFINE_ROWS_FROM_DOTS(f32_avx2, dots_f32_avx2, 2)
LM_DEFINE_ROWS_FROM_DOTS(f16_avx2, dots_f16_avx2, 2)
LM_DEFINE_ROWS_FROM_DOTS(bf16_avx2, dots_bf16_avx2, 2)

/* 8 int8 at p → 8 floats. */
static inline __m256 load_i8x8(const int8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

static float dot_q8_0_avx2(const void *wv, const float *x, int64_t n)
{
    const lm_block_q8_0 *b = wv;
    const int64_t nb = n / LM_QK8_0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i < nb; i++) {
        const float *xb = x + i * LM_QK8_0;
        __m256 t = _mm256_mul_ps(load_i8x8(b[i].qs), _mm256_loadu_ps(xb));
        t = _mm256_fmadd_ps(load_i8x8(b[i].qs + 8), _mm256_loadu_ps(xb + 8), t);
        __m256 u = _mm256_mul_ps(load_i8x8(b[i].qs + 16), _mm256_loadu_ps(xb + 16));
        u = _mm256_fmadd_ps(load_i8x8(b[i].qs + 24), _mm256_loadu_ps(xb + 24), u);
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(b[i].d));
        acc0 = _mm256_fmadd_ps(t, d, acc0);
        acc1 = _mm256_fmadd_ps(u, d, acc1);
    }
    return lm_hsum8(_mm256_add_ps(acc0, acc1));
}

#define DEFINE_ROWS(name, dotfn)                                                             \
    static void name(const uint8_t *w, size_t row_bytes, const float *x, float *y,          \
                     int64_t n_rows, int64_t n)                                              \
    {                                                                                        \
        for (int64_t r = 0; r < n_rows; r++) y[r] = dotfn(w + (size_t)r * row_bytes, x, n);  \
    }
DEFINE_ROWS(rows_q8_0_avx2, dot_q8_0_avx2)

/* --- Q8_0 × q8 activations: int8 dots ----------------------------------------------------
 * Per block: vpmaddubsw(|w|, sign(x, w)) gives 16 int16 pair sums (|w| <= 128, |x| <= 127:
 * no saturation), vpmaddwd with ones makes 8 exact int32, then one FMA by dw·dx (the row
 * loop is in kernels_q8.h). */

/* Σ_j w[j]·x[j] over one block of 32, as 8 float partial sums (exact integers). */
static inline __m256 q8_block_dot(__m256i vw, const int8_t *x)
{
    const __m256i vx = _mm256_loadu_si256((const __m256i *)x);
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(vw, vw), _mm256_sign_epi8(vx, vw));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

LM_DEFINE_DOTS_Q8(dots_q8_avx2, q8_block_dot)
LM_DEFINE_ROWS_Q8(, lm_rows_q8_avx2, dots_q8_avx2, 2)

/* The 32 floats at x into v[0..3], and their largest |x|; NaNs are skipped (fmaxf's rule:
 * max_ps returns its second operand when either is NaN). */
static inline float load_block_amax(const float *x, __m256 v[4])
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        m = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), m);
    }
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    return _mm_cvtss_f32(m4);
}

/* ggml's x86 quantize_row_q8_0 (id = 127/amax, round to nearest even), scales kept as
 * floats (rounded through f16). */
void lm_quantize_q8_avx2(const float *x, int64_t n, int8_t *xq, float *xd)
{
    for (int64_t b = 0; b < n / LM_QK8_0; b++) {
        __m256 v[4];
        const float amax = load_block_amax(x + b * LM_QK8_0, v);
        xd[b] = lm_f16_to_f32(lm_f32_to_f16(amax / 127.0f));
        const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
        __m256i q[4];
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        /* packs interleave 128-bit lanes: restore the order with one permute */
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)(xq + b * LM_QK8_0),
                            _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
}

static void to_f32_f32_avx2(const void *w, float *dst, int64_t n) { lm_row_to_f32(LOOM_TYPE_F32, w, dst, n); }

#define DEFINE_TO_F32_FLOATLIKE(name, LOAD, SCALAR)                                          \
    static void name(const void *wv, float *dst, int64_t n)                                 \
    {                                                                                        \
        const uint16_t *w = wv;                                                              \
        int64_t i = 0;                                                                       \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, LOAD(w + i));                   \
        for (; i < n; i++) dst[i] = SCALAR(w[i]);                                            \
    }
DEFINE_TO_F32_FLOATLIKE(to_f32_f16_avx2, load_f16x8, lm_f16_to_f32)
DEFINE_TO_F32_FLOATLIKE(to_f32_bf16_avx2, load_bf16x8, lm_bf16_to_f32)

static void to_f32_q8_0_avx2(const void *wv, float *dst, int64_t n)
{
    const lm_block_q8_0 *b = wv;
    for (int64_t i = 0; i < n / LM_QK8_0; i++) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(b[i].d));
        for (int j = 0; j < LM_QK8_0; j += 8)
            _mm256_storeu_ps(dst + i * LM_QK8_0 + j, _mm256_mul_ps(load_i8x8(b[i].qs + j), d));
    }
}

/* Float rows rounded to F16, BF16 and Q8_0 exactly as types.c's scalar lm_row_from_f32
 * rounds them (round to nearest even; ggml's NaN forms), eight values at a time. */
void lm_from_f32_f16_avx2(const float *src, void *wv, int64_t n)
{
    uint16_t *w = wv;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(src + i);
        _mm_storeu_si128((__m128i *)(w + i), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        /* F16C keeps a NaN's payload; ggml's scalar conversion (and loom's) writes 0x7e00 */
        if (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)))
            for (int k = 0; k < 8; k++) w[i + k] = lm_f32_to_f16(src[i + k]);
    }
    for (; i < n; i++) w[i] = lm_f32_to_f16(src[i]);
}

void lm_from_f32_bf16_avx2(const float *src, void *wv, int64_t n)
{
    uint16_t *w = wv;
    const __m256i one = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7fff);
    const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_loadu_si256((const __m256i *)(src + i));
        /* (u + 0x7fff + ((u >> 16) & 1)) >> 16, or (u >> 16) | 64 (a quiet NaN) */
        const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
        const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(half, odd)), 16);
        const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs), inf);
        const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
        const __m256i h = _mm256_blendv_epi8(r, q, nan);                   /* 8 × u32 <= 0xffff */
        _mm_storeu_si128((__m128i *)(w + i), _mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
    }
    for (; i < n; i++) w[i] = lm_f32_to_bf16(src[i]);
}

/* types.c's round_q8 on eight lanes: truncate, then step away from zero on a fraction of
 * at least one half; |v| >= 2^31 and NaN give 0; the int8 is the low byte. */
static inline __m256i round_q8x8(__m256 v)
{
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC), f = _mm256_sub_ps(v, t);
    __m256i i = _mm256_cvttps_epi32(v);
    i = _mm256_sub_epi32(i, _mm256_castps_si256(_mm256_cmp_ps(f, _mm256_set1_ps(0.5f), _CMP_GE_OQ)));
    i = _mm256_add_epi32(i, _mm256_castps_si256(_mm256_cmp_ps(f, _mm256_set1_ps(-0.5f), _CMP_LE_OQ)));
    const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
    const __m256 ok = _mm256_cmp_ps(a, _mm256_set1_ps(2147483648.0f), _CMP_LT_OQ);
    return _mm256_and_si256(_mm256_and_si256(i, _mm256_castps_si256(ok)), _mm256_set1_epi32(0xff));
}

void lm_from_f32_q8_0_avx2(const float *src, void *wv, int64_t n)
{
    lm_block_q8_0 *b = wv;
    for (int64_t k = 0; k < n / LM_QK8_0; k++) {
        __m256 v[4];
        const float d = load_block_amax(src + k * LM_QK8_0, v) / 127.0f, id = d ? 1.0f / d : 0.0f;
        b[k].d = lm_f32_to_f16(d);
        __m256i q[4];
        for (int j = 0; j < 4; j++) q[j] = round_q8x8(_mm256_mul_ps(v[j], _mm256_set1_ps(id)));
        /* bytes 0..255 in 32-bit lanes: the unsigned packs never saturate; then lane order */
        const __m256i p = _mm256_packus_epi16(_mm256_packus_epi32(q[0], q[1]), _mm256_packus_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)b[k].qs, _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
}

const lm_kernel_set lm_kernels_avx2_set = {
    .name = "avx2",
    .dot = {[LM_KT_F32] = f32_avx2_dot, [LM_KT_F16] = f16_avx2_dot,
            [LM_KT_BF16] = bf16_avx2_dot, [LM_KT_Q8_0] = dot_q8_0_avx2},
    .rows = {[LM_KT_F32] = f32_avx2_rows, [LM_KT_F16] = f16_avx2_rows,
             [LM_KT_BF16] = bf16_avx2_rows, [LM_KT_Q8_0] = rows_q8_0_avx2},
    .rows_multi = {[LM_KT_F32] = f32_avx2_rows_multi, [LM_KT_F16] = f16_avx2_rows_multi,
                   [LM_KT_BF16] = bf16_avx2_rows_multi},
    .to_f32 = {[LM_KT_F32] = to_f32_f32_avx2, [LM_KT_F16] = to_f32_f16_avx2,
               [LM_KT_BF16] = to_f32_bf16_avx2, [LM_KT_Q8_0] = to_f32_q8_0_avx2},
    .from_f32 = {[LM_KT_F32] = lm_from_f32_f32, [LM_KT_F16] = lm_from_f32_f16_avx2,
                 [LM_KT_BF16] = lm_from_f32_bf16_avx2, [LM_KT_Q8_0] = lm_from_f32_q8_0_avx2},
    .rows_q8 = lm_rows_q8_avx2,
    .rows_q8_multi = lm_rows_q8_avx2_multi,
    .quantize_q8 = lm_quantize_q8_avx2,
};
