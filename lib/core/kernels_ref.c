/*
 * Portable reference kernels: the plain-C truth every fast kernel is tested against, and
 * the path taken on CPUs without AVX2. Sums run in float, left to right, like the scalar
 * loops in ggml; conv is computed directly (no im2col) so it checks the GEMM path.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/kernels.h"
#include "lib/core/kernels_impl.h"

static float dot_f32_ref(const void *wv, const float *x, int64_t n)
{
    const float *w = wv;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += w[i] * x[i];
    return s;
}

static float dot_f16_ref(const void *wv, const float *x, int64_t n)
{
    const uint16_t *w = wv;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += lm_f16_to_f32(w[i]) * x[i];
    return s;
}

static float dot_bf16_ref(const void *wv, const float *x, int64_t n)
{
    const uint16_t *w = wv;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += lm_bf16_to_f32(w[i]) * x[i];
    return s;
}

/* Per block: d · Σ q·x, the grouping a dequantize-then-dot would give up to rounding. */
static float dot_q8_0_ref(const void *wv, const float *x, int64_t n)
{
    const lm_block_q8_0 *b = wv;
    float s = 0.0f;
    for (int64_t i = 0; i < n / LM_QK8_0; i++) {
        float bs = 0.0f;
        for (int j = 0; j < LM_QK8_0; j++) bs += (float)b[i].qs[j] * x[i * LM_QK8_0 + j];
        s += lm_f16_to_f32(b[i].d) * bs;
    }
    return s;
}

#define DEFINE_REF_ROWS(name, dotfn)                                                         \
    static void name(const uint8_t *w, size_t row_bytes, const float *x, float *y,          \
                     int64_t n_rows, int64_t n)                                              \
    {                                                                                        \
        for (int64_t r = 0; r < n_rows; r++) y[r] = dotfn(w + (size_t)r * row_bytes, x, n);  \
    }
DEFINE_REF_ROWS(rows_f32_ref, dot_f32_ref)
DEFINE_REF_ROWS(rows_f16_ref, dot_f16_ref)
DEFINE_REF_ROWS(rows_bf16_ref, dot_bf16_ref)
DEFINE_REF_ROWS(rows_q8_0_ref, dot_q8_0_ref)

/* Q8_0 × q8 activations as ggml's scalar vec_dot_q8_0_q8_0: an exact int32 per block, then
 * s += sumi · (dw·dx). */
static void rows_q8_ref(const uint8_t *w, size_t row_bytes, const int8_t *xq, const float *xd, float *y,
                        int64_t n_rows, int64_t n)
{
    for (int64_t r = 0; r < n_rows; r++) {
        const lm_block_q8_0 *b = (const lm_block_q8_0 *)(w + (size_t)r * row_bytes);
        float s = 0.0f;
        for (int64_t i = 0; i < n / LM_QK8_0; i++) {
            int32_t sumi = 0;
            for (int j = 0; j < LM_QK8_0; j++) sumi += (int32_t)b[i].qs[j] * xq[i * LM_QK8_0 + j];
            s += (float)sumi * (lm_f16_to_f32(b[i].d) * xd[i]);
        }
        y[r] = s;
    }
}

/* ggml's x86 quantize_row_q8_0: id = 127/amax, round half to even, scale through f16. */
void lm_quantize_q8_ref(const float *x, int64_t n, int8_t *xq, float *xd)
{
    for (int64_t b = 0; b < n / LM_QK8_0; b++) {
        const float *xb = x + b * LM_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < LM_QK8_0; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        xd[b] = lm_f16_to_f32(lm_f32_to_f16(amax / 127.0f));
        for (int j = 0; j < LM_QK8_0; j++) xq[b * LM_QK8_0 + j] = (int8_t)nearbyintf(xb[j] * id);
    }
}

#define DEFINE_REF_TO_F32(name, type)                                                        \
    static void name(const void *w, float *dst, int64_t n) { lm_row_to_f32(type, w, dst, n); }
DEFINE_REF_TO_F32(to_f32_f32_ref, LOOM_TYPE_F32)
DEFINE_REF_TO_F32(to_f32_f16_ref, LOOM_TYPE_F16)
DEFINE_REF_TO_F32(to_f32_bf16_ref, LOOM_TYPE_BF16)
DEFINE_REF_TO_F32(to_f32_q8_0_ref, LOOM_TYPE_Q8_0)
#define DEFINE_REF_FROM_F32(name, type)                                                      \
    static void name(const float *src, void *w, int64_t n) { lm_row_from_f32(type, src, w, n); }
DEFINE_REF_FROM_F32(from_f32_f16_ref, LOOM_TYPE_F16)
DEFINE_REF_FROM_F32(from_f32_bf16_ref, LOOM_TYPE_BF16)
DEFINE_REF_FROM_F32(from_f32_q8_0_ref, LOOM_TYPE_Q8_0)

const lm_kernel_set lm_kernels_ref_set = {
    .name = "ref",
    .dot = {[LM_KT_F32] = dot_f32_ref, [LM_KT_F16] = dot_f16_ref,
            [LM_KT_BF16] = dot_bf16_ref, [LM_KT_Q8_0] = dot_q8_0_ref},
    .rows = {[LM_KT_F32] = rows_f32_ref, [LM_KT_F16] = rows_f16_ref,
             [LM_KT_BF16] = rows_bf16_ref, [LM_KT_Q8_0] = rows_q8_0_ref},
    .to_f32 = {[LM_KT_F32] = to_f32_f32_ref, [LM_KT_F16] = to_f32_f16_ref,
               [LM_KT_BF16] = to_f32_bf16_ref, [LM_KT_Q8_0] = to_f32_q8_0_ref},
    .from_f32 = {[LM_KT_F32] = lm_from_f32_f32, [LM_KT_F16] = from_f32_f16_ref,
                 [LM_KT_BF16] = from_f32_bf16_ref, [LM_KT_Q8_0] = from_f32_q8_0_ref},
    .rows_q8 = rows_q8_ref,
    .quantize_q8 = lm_quantize_q8_ref,
};

float lm_dot_ref(int type, const void *w, const float *x, int64_t n)
{
    int k = lm_kt_index(type);
    return k < 0 ? 0.0f : lm_kernels_ref_set.dot[k](w, x, n);
}

void lm_matvec_ref(const lm_matrix *W, const float *x, float *y)
{
    int k = lm_kt_index(W->type);
    if (k < 0) return;
    for (int64_t r = 0; r < W->n_out; r++)
        y[r] = lm_kernels_ref_set.dot[k]((const uint8_t *)W->data + (size_t)r * W->row_bytes, x, W->n_in);
}

void lm_matvec_q8_ref(const lm_matrix *W, const int8_t *xq, const float *xd, float *y)
{
    if (W->type != LOOM_TYPE_Q8_0) return;
    rows_q8_ref(W->data, W->row_bytes, xq, xd, y, W->n_out, W->n_in);
}

void lm_matmul_ref(const lm_matrix *W, const float *X, int64_t n_tok, float *Y)
{
    for (int64_t t = 0; t < n_tok; t++) lm_matvec_ref(W, X + t * W->n_in, Y + t * W->n_out);
}

void lm_matmul_bf16_ref(const lm_matrix *W, const float *X, int64_t n_tok, float *Y)
{
    const int k = lm_kt_index(W->type);
    float *w = k >= 0 ? malloc((size_t)W->n_in * sizeof *w) : NULL;
    for (int64_t r = 0; w && r < W->n_out; r++) {
        lm_kernels_ref_set.to_f32[k]((const uint8_t *)W->data + (size_t)r * W->row_bytes, w, W->n_in);
        for (int64_t i = 0; i < W->n_in; i++) w[i] = lm_bf16_to_f32(lm_f32_to_bf16(w[i]));
        for (int64_t t = 0; t < n_tok; t++) {
            double s = 0;
            for (int64_t i = 0; i < W->n_in; i++) s += (double)w[i] * lm_bf16_to_f32(lm_f32_to_bf16(X[t * W->n_in + i]));
            Y[t * W->n_out + r] = (float)s;
        }
    }
    free(w);
}

void lm_conv1d_ref(float *y, const float *x, const float *w, const float *b,
                   int64_t C_in, int64_t L, int64_t C_out, int64_t K, int64_t s, int64_t p)
{
    lm_conv1d_dilated_ref(y, x, w, b, C_in, L, C_out, K, s, p, 1);
}

void lm_conv1d_dilated_ref(float *y, const float *x, const float *w, const float *b,
                           int64_t C_in, int64_t L, int64_t C_out, int64_t K, int64_t s, int64_t p, int64_t d)
{
    int64_t L_out = (L + 2 * p - (K - 1) * d - 1) / s + 1;
    for (int64_t co = 0; co < C_out; co++)
        for (int64_t o = 0; o < L_out; o++) {
            float acc = b ? b[co] : 0.0f;
            for (int64_t ci = 0; ci < C_in; ci++)
                for (int64_t k = 0; k < K; k++) {
                    int64_t li = o * s - p + k * d;
                    if (li >= 0 && li < L) acc += w[(co * C_in + ci) * K + k] * x[ci * L + li];
                }
            y[co * L_out + o] = acc;
        }
}

void lm_conv2d_ref(float *y, const float *x, const float *w, const float *b,
                   int64_t C_in, int64_t H, int64_t W, int64_t C_out, int64_t K, int64_t s, int64_t p)
{
    int64_t H_out = (H + 2 * p - K) / s + 1, W_out = (W + 2 * p - K) / s + 1;
    for (int64_t co = 0; co < C_out; co++)
        for (int64_t oh = 0; oh < H_out; oh++)
            for (int64_t ow = 0; ow < W_out; ow++) {
                float acc = b ? b[co] : 0.0f;
                for (int64_t ci = 0; ci < C_in; ci++)
                    for (int64_t kh = 0; kh < K; kh++) {
                        int64_t ih = oh * s - p + kh;
                        if (ih < 0 || ih >= H) continue;
                        for (int64_t kw = 0; kw < K; kw++) {
                            int64_t iw = ow * s - p + kw;
                            if (iw < 0 || iw >= W) continue;
                            acc += w[((co * C_in + ci) * K + kh) * K + kw] * x[(ci * H + ih) * W + iw];
                        }
                    }
                y[(co * H_out + oh) * W_out + ow] = acc;
            }
}
