/* Shared weight loading and layer helpers for the media codecs (see codec_common.h). */
#include "lib/core/codec_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/kernels.h"
#include "lib/core/types.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

void lm_wstore_free(lm_wstore *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->p[i]);
    free(s->p);
    memset(s, 0, sizeof *s);
}

float *lm_wstore_alloc(lm_wstore *s, size_t n_floats)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        float **p = realloc(s->p, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        s->p = p;
        s->cap = cap;
    }
    float *buf = malloc(n_floats * sizeof(float));
    if (buf) s->p[s->n++] = buf;
    return buf;
}

int lm_wload_init(lm_wload *ld, const lm_gguf *g, lm_wstore *store, lm_error *err)
{
    memset(ld, 0, sizeof *ld);
    ld->g = g;
    ld->err = err;
    ld->store = store;
    int64_t n = lm_gguf_n_tensors(g);
    ld->taken = calloc(n > 0 ? (size_t)n : 1, 1);
    return ld->taken ? 0 : lm_fail(err, LOOM_ERR_NO_MEMORY, "out of memory");
}

void lm_wload_done(lm_wload *ld)
{
    free(ld->taken);
    ld->taken = NULL;
}

int lm_wload_tensor(lm_wload *ld, const char *name, int n_dims, const int64_t *dims, float **out)
{
    int64_t ne[LM_GGUF_MAX_DIMS];
    if (n_dims < 1 || n_dims > LM_GGUF_MAX_DIMS)
        return lm_fail(ld->err, LOOM_ERR_INVALID_ARG, "tensor '%s': %d dims", name, n_dims);
    for (int d = 0; d < n_dims; d++) ne[d] = dims[n_dims - 1 - d];   /* numpy order → ggml */
    const lm_gguf_tensor *t;
    int rc = lm_gguf_get_tensor(ld->g, name, n_dims, ne, &t, ld->err);
    if (rc < 0) return rc;
    int64_t rows = 1;
    for (int d = 1; d < LM_GGUF_MAX_DIMS; d++) rows *= t->ne[d];
    const int64_t n = rows * t->ne[0];
    const size_t row_bytes = lm_row_bytes(t->type, t->ne[0]);
    if (row_bytes == 0 || (uint64_t)rows * row_bytes > t->n_bytes)
        return lm_fail(ld->err, LOOM_ERR_FORMAT, "tensor '%s': %lld values of type %s do not fit its %llu bytes",
                       name, (long long)n, loom_type_name(t->type), (unsigned long long)t->n_bytes);
    float *buf = lm_wstore_alloc(ld->store, (size_t)n);
    if (!buf) return lm_fail(ld->err, LOOM_ERR_NO_MEMORY, "tensor '%s': out of memory for %lld floats", name, (long long)n);
    for (int64_t r = 0; r < rows; r++)
        lm_row_to_f32(t->type, (const char *)t->data + r * row_bytes, buf + r * t->ne[0], t->ne[0]);
    ld->taken[t - lm_gguf_tensor_at(ld->g, 0)] = 1;
    *out = buf;
    return 0;
}

int lm_wload_u32(lm_wload *ld, const char *key, uint32_t lo, uint32_t hi, uint32_t *out)
{
    int rc = lm_gguf_get_u32(ld->g, key, out, ld->err);
    if (rc < 0) return rc;
    if (*out < lo || *out > hi)
        return lm_fail(ld->err, LOOM_ERR_FORMAT, "key '%s' = %u is outside [%u, %u]", key, *out, lo, hi);
    return 0;
}

int lm_wload_f32(lm_wload *ld, const char *key, float lo, float hi, float *out)
{
    int rc = lm_gguf_get_f32(ld->g, key, out, ld->err);
    if (rc < 0) return rc;
    if (!(*out >= lo && *out <= hi))
        return lm_fail(ld->err, LOOM_ERR_FORMAT, "key '%s' = %g is outside [%g, %g]", key, (double)*out,
                       (double)lo, (double)hi);
    return 0;
}

int lm_wload_u32_arr(lm_wload *ld, const char *key, int max_n, uint32_t lo, uint32_t hi,
                     uint32_t *out, int *n)
{
    const lm_gguf_array *a;
    int rc = lm_gguf_get_arr(ld->g, key, &a, ld->err);
    if (rc < 0) return rc;
    const int type = lm_gguf_arr_type(a);
    const uint64_t len = lm_gguf_arr_len(a);
    if (type != LM_GGUF_U32 && type != LM_GGUF_I32)
        return lm_fail(ld->err, LOOM_ERR_TYPE, "key '%s': array of %s, expected u32", key, lm_gguf_vtype_name(type));
    if (len < 1 || len > (uint64_t)max_n)
        return lm_fail(ld->err, LOOM_ERR_FORMAT, "key '%s': %llu elements, expected 1..%d", key,
                       (unsigned long long)len, max_n);
    const unsigned char *d = lm_gguf_arr_data(a);
    for (uint64_t i = 0; i < len; i++) {
        int32_t v;
        memcpy(&v, d + 4 * i, 4);
        uint32_t u = (uint32_t)v;
        if ((type == LM_GGUF_I32 && v < 0) || u < lo || u > hi)
            return lm_fail(ld->err, LOOM_ERR_FORMAT, "key '%s'[%llu] = %lld is outside [%u, %u]", key,
                           (unsigned long long)i, type == LM_GGUF_I32 ? (long long)v : (long long)u, lo, hi);
        out[i] = u;
    }
    *n = (int)len;
    return 0;
}

int lm_wload_arch(lm_wload *ld, const char *arch)
{
    const char *s;
    int rc = lm_gguf_get_str(ld->g, "general.architecture", &s, ld->err);
    if (rc < 0) return rc;
    if (strcmp(s, arch) != 0)
        return lm_fail(ld->err, LOOM_ERR_UNSUPPORTED, "general.architecture is '%s', expected '%s'", s, arch);
    return 0;
}

int lm_wload_finish(lm_wload *ld)
{
    for (int64_t i = 0; i < lm_gguf_n_tensors(ld->g); i++)
        if (!ld->taken[i])
            return lm_fail(ld->err, LOOM_ERR_FORMAT, "unexpected tensor '%s' (not part of this model)",
                           lm_gguf_tensor_at(ld->g, i)->name);
    return 0;
}

/* --- layer helpers ------------------------------------------------------------------- */

typedef struct norm_task {
    float *y;
    const float *x, *w, *b;
    int64_t C, n, G;
    float eps;
    int swish, avx512;
} norm_task;

/* Σ x and Σ (x − m)² over n floats: 8 independent float lanes per block of 512 (vectorisable
 * without reassociation), blocks summed in double. */
static double sum_f(const float *x, int64_t n, double m, int centred)
{
    double total = 0.0;
    const float mf = (float)m;
    for (int64_t i0 = 0; i0 < n; i0 += 512) {
        const int64_t e = n - i0 < 512 ? n - i0 : 512;
        float acc[8] = {0};
        int64_t i = 0;
        for (; i + 8 <= e; i += 8)
            for (int l = 0; l < 8; l++) {
                const float v = centred ? x[i0 + i + l] - mf : x[i0 + i + l];
                acc[l] += centred ? v * v : v;
            }
        double blk = 0.0;
        for (int l = 0; l < 8; l++) blk += acc[l];
        for (; i < e; i++) {
            const double v = centred ? (double)x[i0 + i] - m : x[i0 + i];
            blk += centred ? v * v : v;
        }
        total += blk;
    }
    return total;
}

/* e^x, |rel err| ~ 2e-7: x = n·ln2 + r, |r| <= ln2/2, degree-6 polynomial (Cephes expf
 * coefficients), 2^n built in the exponent bits. Branch-free so loops over it vectorise. */
static inline float exp_fast(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;   /* round to nearest */
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;              /* x − n·ln2, two parts */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#ifdef __SSE2__
/* exp_fast, four lanes (SSE2 is baseline on x86-64). */
static inline __m128 exp_ps(__m128 z)
{
    z = _mm_min_ps(_mm_max_ps(z, _mm_set1_ps(-87.0f)), _mm_set1_ps(88.0f));
    const __m128 k = _mm_sub_ps(_mm_add_ps(_mm_mul_ps(z, _mm_set1_ps(1.44269504088896341f)), _mm_set1_ps(12582912.0f)),
                                _mm_set1_ps(12582912.0f));
    const __m128 r = _mm_add_ps(_mm_sub_ps(z, _mm_mul_ps(k, _mm_set1_ps(0.693359375f))),
                                _mm_mul_ps(k, _mm_set1_ps(2.12194440e-4f)));
    __m128 p = _mm_set1_ps(1.9875691500e-4f);
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.3981999507e-3f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(8.3334519073e-3f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(4.1665795894e-2f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.6666665459e-1f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(5.0000001201e-1f));
    p = _mm_add_ps(_mm_add_ps(_mm_mul_ps(_mm_mul_ps(p, r), r), r), _mm_set1_ps(1.0f));
    const __m128i bits = _mm_slli_epi32(_mm_add_epi32(_mm_cvtps_epi32(k), _mm_set1_epi32(127)), 23);
    return _mm_mul_ps(p, _mm_castsi128_ps(bits));
}
#endif

/* y[i] = swish((x[i] − m)·a + b) = v / (1 + e^−v). */
static void affine_swish(float *y, const float *x, int64_t n, float a, float b, float m)
{
    int64_t i = 0;
#ifdef __SSE2__
    const __m128 va = _mm_set1_ps(a), vb = _mm_set1_ps(b), vm = _mm_set1_ps(m), one = _mm_set1_ps(1.0f);
    for (; i + 4 <= n; i += 4) {
        const __m128 v = _mm_add_ps(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(x + i), vm), va), vb);
        _mm_storeu_ps(y + i, _mm_div_ps(v, _mm_add_ps(one, exp_ps(_mm_sub_ps(_mm_setzero_ps(), v)))));
    }
#endif
    for (; i < n; i++) {
        const float v = (x[i] - m) * a + b;
        y[i] = v / (1.0f + exp_fast(-v));
    }
}

static int use_avx512(void)
{
    return !strcmp(lm_kernels_name(), "avx512");
}

void lm_codec_softmax_scaled(float *x, int64_t n, float div)
{
    if (use_avx512()) lm_codec_softmax_scaled_avx512(x, n, div);
    else lm_codec_softmax_scaled_ref(x, n, div);
}

void lm_codec_softmax_scaled_ref(float *x, int64_t n, float div)
{
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        x[i] /= div;
        mx = x[i] > mx ? x[i] : mx;
    }
    double sum = 0.0;
    int64_t i = 0;
#ifdef __SSE2__
    const __m128 vmx = _mm_set1_ps(mx);
    __m128 acc = _mm_setzero_ps();
    for (; i + 4 <= n; i += 4) {
        const __m128 e = exp_ps(_mm_sub_ps(_mm_loadu_ps(x + i), vmx));
        _mm_storeu_ps(x + i, e);
        acc = _mm_add_ps(acc, e);
    }
    float lanes[4];
    _mm_storeu_ps(lanes, acc);
    sum = (double)lanes[0] + lanes[1] + lanes[2] + lanes[3];
#endif
    for (; i < n; i++) {
        x[i] = exp_fast(x[i] - mx);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t k = 0; k < n; k++) x[k] *= inv;
}

/* Groups are contiguous [C/G][n] slabs, so each is normalised independently: statistics in
 * double (as lm_groupnorm), then y = x·a_c + b_c and swish fused in one pass. */
static void norm_part(void *arg, int ith, int nth)
{
    const norm_task *t = arg;
    double (*sum)(const float *, int64_t, double, int) = t->avx512 ? lm_codec_sum_avx512 : sum_f;
    void (*swish)(float *, const float *, int64_t, float, float, float) =
        t->avx512 ? lm_codec_affine_swish_avx512 : affine_swish;
    const int64_t cg = t->C / t->G, slab = cg * t->n;
    long long lo, hi;
    lm_split(t->G, ith, nth, &lo, &hi);
    for (long long g = lo; g < hi; g++) {
        const float *x = t->x + g * slab;
        float *y = t->y + g * slab;
        const double mean = sum(x, slab, 0.0, 0) / (double)slab;
        const double var = sum(x, slab, mean, 1) / (double)slab;
        const float inv = (float)(1.0 / sqrt(var + (double)t->eps)), fm = (float)mean;
        for (int64_t c = 0; c < cg; c++) {
            const int64_t ch = g * cg + c;
            const float a = inv * (t->w ? t->w[ch] : 1.0f), b = t->b ? t->b[ch] : 0.0f;
            const float *xc = x + c * t->n;
            float *yc = y + c * t->n;
            if (t->swish) swish(yc, xc, t->n, a, b, fm);
            else
                for (int64_t i = 0; i < t->n; i++) yc[i] = (xc[i] - fm) * a + b;
        }
    }
}

void lm_codec_norm(float *y, const float *x, const float *w, const float *b, int64_t C, int64_t n,
                   int64_t G, float eps, int swish, lm_pool *pool)
{
    lm_codec_norm_with(y, x, w, b, C, n, G, eps, swish, use_avx512(), pool);
}

void lm_codec_norm_with(float *y, const float *x, const float *w, const float *b, int64_t C, int64_t n,
                        int64_t G, float eps, int swish, int avx512, lm_pool *pool)
{
    if (G <= 0 || C % G) return;   /* loaders check C % G == 0 */
    norm_task t = {y, x, w, b, C, n, G, eps, swish, avx512};
    lm_pool_run(G > 1 ? pool : NULL, norm_part, &t);
}

void lm_codec_add(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void lm_codec_argmax_cosine(const float *cb, int64_t K, int64_t D, const float *z, int64_t n, int32_t *codes)
{
    for (int64_t p = 0; p < n; p++) {
        /* F.normalize: z / max(‖z‖, 1e-12), then the dot with each unit row */
        float ss = 0.0f;
        for (int64_t d = 0; d < D; d++) ss += z[d * n + p] * z[d * n + p];
        const float inv = 1.0f / fmaxf(sqrtf(ss), 1e-12f);
        int32_t best = 0;
        float best_v = -INFINITY;
        for (int64_t k = 0; k < K; k++) {
            float dot = 0.0f;
            for (int64_t d = 0; d < D; d++) dot += cb[k * D + d] * (z[d * n + p] * inv);
            if (dot > best_v) {   /* strict: ties keep the lowest index */
                best_v = dot;
                best = (int32_t)k;
            }
        }
        codes[p] = best;
    }
}

int lm_wload_groupnorm(lm_wload *ld, const char *prefix, int c, int groups, lm_norm_w *n)
{
    char name[160];
    float *w, *b;
    if (groups <= 0 || c % groups)
        return lm_fail(ld->err, LOOM_ERR_FORMAT, "%s: %d channels are not divisible into %d GroupNorm groups",
                       prefix, c, groups);
    snprintf(name, sizeof name, "%.120s.weight", prefix);
    int rc = lm_wload_tensor(ld, name, 1, (int64_t[]){c}, &w);
    if (rc < 0) return rc;
    snprintf(name, sizeof name, "%.120s.bias", prefix);
    if ((rc = lm_wload_tensor(ld, name, 1, (int64_t[]){c}, &b)) < 0) return rc;
    *n = (lm_norm_w){w, b, c};
    return 0;
}
