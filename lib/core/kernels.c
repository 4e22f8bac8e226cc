/*
 * Kernel dispatch and the kernels that are the same on every CPU.
 *
 * - lm_dot / lm_matvec pick the row kernels of the best set this CPU runs (AVX-512, AVX2,
 *   reference); matvec splits rows across the pool.
 * - lm_matmul goes through OpenBLAS (blas.h), shared out across the pool: F32 weights by
 *   lm_sgemm_pool; other types by blocks of W's rows chosen by the shape alone, each thread
 *   dequantizing its blocks into its own scratch buffer (only ever grown) and multiplying
 *   them there. Either way the result does not depend on the pool's size.
 * - Norms, activations, RoPE, GroupNorm, upsampling: portable C (not hot enough to need
 *   SIMD versions); sums run in double like ggml's ggml_float accumulators.
 * - conv1d/conv2d: im2col (split across the pool) + one lm_sgemm_pool.
 */
#include "lib/core/kernels.h"

#include "lib/core/blas.h"
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/kernels_impl.h"

/* ---------------------------------------------------------------------------------------
 * Choosing the kernel set
 * ------------------------------------------------------------------------------------- */

static _Atomic(const lm_kernel_set *) g_active;

static int set_available(const lm_kernel_set *s)
{
    const lm_cpu_caps *c = lm_cpu_caps_get();
    int avx2 = c->avx2 && c->fma && c->f16c;
    if (s == &lm_kernels_avx512_set) return avx2 && c->avx512f && c->avx512bw && c->avx512vl;
    if (s == &lm_kernels_avx2_set) return avx2;
    return s == &lm_kernels_ref_set;
}

static const lm_kernel_set *best_set(void)
{
    if (set_available(&lm_kernels_avx512_set)) return &lm_kernels_avx512_set;
    if (set_available(&lm_kernels_avx2_set)) return &lm_kernels_avx2_set;
    return &lm_kernels_ref_set;
}

const lm_kernel_set *lm_kernels_active(void)
{
    const lm_kernel_set *s = atomic_load_explicit(&g_active, memory_order_acquire);
    if (!s) {
        s = best_set();
        atomic_store_explicit(&g_active, s, memory_order_release);
    }
    return s;
}

int lm_kernels_select(const char *name)
{
    const lm_kernel_set *s;
    if (!name || !strcmp(name, "auto")) s = best_set();
    else if (!strcmp(name, "ref")) s = &lm_kernels_ref_set;
    else if (!strcmp(name, "avx2")) s = &lm_kernels_avx2_set;
    else if (!strcmp(name, "avx512")) s = &lm_kernels_avx512_set;
    else return LOOM_ERR_INVALID_ARG;
    if (!set_available(s)) return LOOM_ERR_UNSUPPORTED;
    atomic_store_explicit(&g_active, s, memory_order_release);
    return 0;
}

void lm_kernels_force_ref(int on) { lm_kernels_select(on ? "ref" : "auto"); }

const char *lm_kernels_name(void) { return lm_kernels_active()->name; }

/* ---------------------------------------------------------------------------------------
 * Per-thread scratch: grown on demand, kept for the next call, freed at thread exit
 * (pthread key destructor) or by lm_kernels_scratch_release().
 * ------------------------------------------------------------------------------------- */

static _Thread_local struct { float *p; size_t n; } tl_scratch; /* p: [n] floats, owned */
static pthread_key_t  g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;
static int            g_scratch_key_ok;

static void scratch_key_init(void) { g_scratch_key_ok = pthread_key_create(&g_scratch_key, free) == 0; }

void lm_kernels_scratch_release(void)
{
    free(tl_scratch.p);
    tl_scratch.p = NULL;
    tl_scratch.n = 0;
    pthread_once(&g_scratch_once, scratch_key_init);
    if (g_scratch_key_ok) pthread_setspecific(g_scratch_key, NULL);
}

/* A buffer of at least n floats (64-byte aligned), or NULL if memory is short. Owned by
 * the thread; valid until the next call on this thread. */
static float *scratch_floats(size_t n)
{
    if (tl_scratch.n >= n) return tl_scratch.p;
    pthread_once(&g_scratch_once, scratch_key_init);
    if (!g_scratch_key_ok || n > SIZE_MAX / sizeof(float) - 16) return NULL;
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (!p) return NULL;
    free(tl_scratch.p);
    tl_scratch.p = p;
    tl_scratch.n = bytes / sizeof(float);
    pthread_setspecific(g_scratch_key, p);
    return p;
}

/* ---------------------------------------------------------------------------------------
 * Dot, matvec, matmul
 * ------------------------------------------------------------------------------------- */

/* 1 if W describes a matrix loom can read: supported type, whole blocks, stride >= row. */
static int matrix_ok(const lm_matrix *W)
{
    if (!W || !W->data || lm_kt_index(W->type) < 0 || W->n_in < 0 || W->n_out < 0) return 0;
    size_t rb = lm_row_bytes(W->type, W->n_in);
    return (rb != 0 || W->n_in == 0) && W->row_bytes >= rb;
}

static void fill_nan(float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = NAN;
}

float lm_dot(int type, const void *w, const float *x, int64_t n)
{
    int k = lm_kt_index(type);
    if (k < 0 || n < 0 || n % lm_type_block_len(type)) return NAN;
    return lm_kernels_active()->dot[k](w, x, n);
}

typedef struct matvec_task {
    lm_rows_fn     rows;      /* float x, or                                   */
    lm_rows_q8_fn  rows_q8;   /* q8 x (then xq, xd)                            */
    const uint8_t *w;         /* [n_out] rows of row_bytes */
    size_t         row_bytes;
    const float   *x;         /* [n_in]  */
    const int8_t  *xq;        /* [n_in]  */
    const float   *xd;        /* [n_in / 32] */
    float         *y;         /* [n_out] */
    int64_t        n_out, n_in;
} matvec_task;

static void matvec_part(void *arg, int ith, int nth)
{
    const matvec_task *t = arg;
    long long lo, hi;
    lm_split(t->n_out, ith, nth, &lo, &hi);
    if (hi <= lo) return;
    const uint8_t *w = t->w + (size_t)lo * t->row_bytes;
    if (t->rows_q8) t->rows_q8(w, t->row_bytes, t->xq, t->xd, t->y + lo, hi - lo, t->n_in);
    else t->rows(w, t->row_bytes, t->x, t->y + lo, hi - lo, t->n_in);
}

/* Below this many weight bytes a matvec runs on the caller alone: waking the pool costs
 * more than it saves. */
#define LM_MATVEC_MIN_PARALLEL_BYTES (64 * 1024)

static void matvec_run(const matvec_task *t, lm_pool *pool)
{
    if ((size_t)t->n_out * t->row_bytes < LM_MATVEC_MIN_PARALLEL_BYTES || lm_pool_size(pool) == 1)
        matvec_part((void *)t, 0, 1);
    else
        lm_pool_run(pool, matvec_part, (void *)t);
}

void lm_matvec(const lm_matrix *W, const float *x, float *y, lm_pool *pool)
{
    if (!matrix_ok(W)) {
        if (W && W->n_out > 0) fill_nan(y, W->n_out);
        return;
    }
    matvec_task t = {
        .rows = lm_kernels_active()->rows[lm_kt_index(W->type)], .w = W->data,
        .row_bytes = W->row_bytes, .x = x, .y = y, .n_out = W->n_out, .n_in = W->n_in,
    };
    matvec_run(&t, pool);
}

/* The VNNI variant when the active set has one and the CPU runs it. */
static lm_rows_q8_fn rows_q8_kernel(void)
{
    const lm_kernel_set *k = lm_kernels_active();
    return k->rows_q8_vnni && lm_cpu_caps_get()->avx512vnni ? k->rows_q8_vnni : k->rows_q8;
}

void lm_row_to_f32_fast(int type, const void *src, float *dst, int64_t n)
{
    const int k = lm_kt_index(type);
    if (k >= 0) lm_kernels_active()->to_f32[k](src, dst, n);
}

void lm_row_from_f32_fast(int type, const float *src, void *dst, int64_t n)
{
    const int k = lm_kt_index(type);
    if (k >= 0) lm_kernels_active()->from_f32[k](src, dst, n);
}

void lm_quantize_q8(const float *x, int64_t n, int8_t *xq, float *xd)
{
    lm_kernels_active()->quantize_q8(x, n, xq, xd);
}

void lm_matvec_q8(const lm_matrix *W, const int8_t *xq, const float *xd, float *y, lm_pool *pool)
{
    if (!matrix_ok(W) || W->type != LOOM_TYPE_Q8_0) {
        if (W && W->n_out > 0) fill_nan(y, W->n_out);
        return;
    }
    matvec_task t = {
        .rows_q8 = rows_q8_kernel(), .w = W->data, .row_bytes = W->row_bytes,
        .xq = xq, .xd = xd, .y = y, .n_out = W->n_out, .n_in = W->n_in,
    };
    matvec_run(&t, pool);
}

void lm_matvec_multi(const lm_matrix *W, const float *x, int64_t ldx, float *const *y, int nx)
{
    if (!matrix_ok(W)) {
        for (int j = 0; W && W->n_out > 0 && j < nx; j++) fill_nan(y[j], W->n_out);
        return;
    }
    const lm_kernel_set *k = lm_kernels_active();
    const int t = lm_kt_index(W->type);
    if (k->rows_multi[t]) k->rows_multi[t](W->data, W->row_bytes, x, ldx, y, nx, W->n_out, W->n_in);
    else
        for (int j = 0; j < nx; j++) k->rows[t](W->data, W->row_bytes, x + j * ldx, y[j], W->n_out, W->n_in);
}

void lm_matvec_q8_multi(const lm_matrix *W, const int8_t *xq, const float *xd, float *const *y, int nx)
{
    if (!matrix_ok(W) || W->type != LOOM_TYPE_Q8_0) {
        for (int j = 0; W && W->n_out > 0 && j < nx; j++) fill_nan(y[j], W->n_out);
        return;
    }
    const lm_kernel_set *k = lm_kernels_active();
    const int vnni = k->rows_q8_vnni && lm_cpu_caps_get()->avx512vnni;
    const lm_rows_q8_multi_fn multi = vnni ? k->rows_q8_vnni_multi : k->rows_q8_multi;
    const int64_t n = W->n_in;
    if (multi) multi(W->data, W->row_bytes, xq, xd, y, nx, W->n_out, n);
    else
        for (int j = 0; j < nx; j++)
            rows_q8_kernel()(W->data, W->row_bytes, xq + j * n, xd + j * (n / LM_QK8_0), y[j], W->n_out, n);
}

/* Up to this many tokens, matmul is n_tok matvecs: each weight byte is still read from
 * memory once per token, but no dequantized tile is written and read back. */
#define LM_MATMUL_MATVEC_MAX_TOK 4
/* Dequantized tile size in floats (16 MiB). Each sgemm call repacks all of X, so few
 * large tiles beat many cache-sized ones (estimate: with 512 tokens × 4096 inputs, repacking X
 * costs ~8 % of a 128-row tile's FLOP time); the tile is written once and read once by sgemm's own packing. */
#define LM_MATMUL_TILE_FLOATS (4096 * 1024)

/* X · Wᵀ by blocks of W's rows, a function of the shape alone (lm_sgemm_block_width, made
 * smaller to fit a tile), so Y's bits do not depend on the pool's size: each thread
 * dequantizes its run of blocks, one at a time, into its own scratch, and multiplies each
 * with one single-threaded sgemm. */
typedef struct tiled_task {
    const lm_matrix *W;
    lm_to_f32_fn     to_f32;
    const float     *X;      /* [n_tok][n_in] */
    float           *Y;      /* [n_tok][n_out] */
    int64_t          n_tok;
    int64_t          blk;    /* rows of W per block */
} tiled_task;

static void tiled_part(void *arg, int ith, int nth)
{
    const tiled_task *t = arg;
    const lm_matrix *W = t->W;
    const int64_t n_in = W->n_in, n_out = W->n_out;
    long long b0, b1;
    lm_split((n_out + t->blk - 1) / t->blk, ith, nth, &b0, &b1);
    if (b0 >= b1) return;
    float *buf = (size_t)t->blk <= SIZE_MAX / sizeof(float) / (size_t)n_in ? scratch_floats((size_t)(t->blk * n_in)) : NULL;
    const int64_t lo = b0 * t->blk, hi = b1 * t->blk < n_out ? b1 * t->blk : n_out;
    if (!buf) {   /* out of memory: the slower path that needs none */
        const lm_matrix sub = {.type = W->type, .n_in = n_in, .n_out = hi - lo, .row_bytes = W->row_bytes,
                               .data = (const uint8_t *)W->data + (size_t)lo * W->row_bytes};
        for (int64_t i = 0; i < t->n_tok; i++) lm_matvec(&sub, t->X + i * n_in, t->Y + i * n_out + lo, NULL);
        return;
    }
    for (int64_t r0 = lo; r0 < hi; r0 += t->blk) {
        const int64_t nr = hi - r0 < t->blk ? hi - r0 : t->blk;
        const uint8_t *w = (const uint8_t *)W->data + (size_t)r0 * W->row_bytes;
        for (int64_t r = 0; r < nr; r++) t->to_f32(w + (size_t)r * W->row_bytes, buf + r * n_in, n_in);
        lm_sgemm(LM_NO_TRANS, LM_TRANS, (int)t->n_tok, (int)nr, (int)n_in, 1.0f,
                 t->X, (int)n_in, buf, (int)n_in, 0.0f, t->Y + r0, (int)n_out);
    }
}

/* One scratch of the calling thread holds the rounded X, shared, and each thread's part. */
typedef struct bf16_run {
    lm_bf16_task t;
    uint16_t    *A;        /* lm_bf16_a_floats                       */
    float       *parts;    /* [nth][lm_bf16_part_floats]             */
    size_t       part;
} bf16_run;

static void bf16_round_x(void *arg, int ith, int nth)
{
    bf16_run *r = arg;
    long long lo, hi;
    lm_split((r->t.n_tok + 31) / 32 * 32, ith, nth, &lo, &hi);
    lm_matmul_bf16_amx_round_x(&r->t, r->A, lo, hi);
}

static void bf16_part(void *arg, int ith, int nth)
{
    bf16_run *r = arg;
    lm_matmul_bf16_amx_part(&r->t, r->A, r->parts + (size_t)ith * r->part, ith, nth);
}

int lm_matmul_bf16(const lm_matrix *W, const float *X, int64_t n_tok, float *Y, lm_pool *pool)
{
    if (!lm_cpu_caps_get()->amx_bf16 || lm_kernels_active() != &lm_kernels_avx512_set) return LOOM_ERR_UNSUPPORTED;
    if (n_tok <= 0) return 0;
    if (!matrix_ok(W) || W->n_in > INT32_MAX / 64 || n_tok > INT32_MAX / 64) return LOOM_ERR_INVALID_ARG;
    bf16_run r = {.t = {.W = W, .to_f32 = lm_kernels_active()->to_f32[lm_kt_index(W->type)], .X = X,
                        .n_tok = n_tok, .Y = Y},
                  .part = lm_bf16_part_floats(W->n_in)};
    const size_t a = lm_bf16_a_floats(n_tok, W->n_in), nth = (size_t)lm_pool_size(pool);
    float *buf = r.part <= (SIZE_MAX / sizeof(float) - a) / nth ? scratch_floats(a + nth * r.part) : NULL;
    if (!buf) return LOOM_ERR_NO_MEMORY;
    r.A = (uint16_t *)buf;
    r.parts = buf + a;
    lm_pool_run(pool, bf16_round_x, &r);
    lm_pool_run(pool, bf16_part, &r);
    return 0;
}

void lm_matmul(const lm_matrix *W, const float *X, int64_t n_tok, float *Y, lm_pool *pool)
{
    if (n_tok <= 0) return;
    if (!matrix_ok(W)) {
        if (W && W->n_out > 0 && n_tok <= INT64_MAX / W->n_out) fill_nan(Y, n_tok * W->n_out);
        return;
    }
    const int64_t n_in = W->n_in, n_out = W->n_out;
    int fits_blas = n_tok <= INT_MAX && n_in <= INT_MAX && n_out <= INT_MAX && n_in > 0 && n_out > 0;
    if (n_tok >= LM_MATMUL_BF16_MIN_TOK && lm_pool_matmul_bf16(pool) && lm_matmul_bf16(W, X, n_tok, Y, pool) == 0)
        return;
    if (n_tok <= LM_MATMUL_MATVEC_MAX_TOK || !fits_blas) {
        for (int64_t t = 0; t < n_tok; t++) lm_matvec(W, X + t * n_in, Y + t * n_out, pool);
        return;
    }
    if (W->type == LOOM_TYPE_F32 && W->row_bytes % sizeof(float) == 0 &&
        W->row_bytes / sizeof(float) <= INT_MAX) {
        lm_sgemm_pool(pool, LM_NO_TRANS, LM_TRANS, (int)n_tok, (int)n_out, (int)n_in, 1.0f,
                      X, (int)n_in, W->data, (int)(W->row_bytes / sizeof(float)), 0.0f, Y, (int)n_out);
        return;
    }
    int64_t blk = lm_sgemm_block_width((int)n_out), fit = LM_MATMUL_TILE_FLOATS / n_in / 16 * 16;
    if (blk > fit) blk = fit > 16 ? fit : 16;
    tiled_task t = {.W = W, .to_f32 = lm_kernels_active()->to_f32[lm_kt_index(W->type)], .X = X, .Y = Y,
                    .n_tok = n_tok, .blk = blk};
    lm_pool_run(blk < n_out ? pool : NULL, tiled_part, &t);
}

/* ---------------------------------------------------------------------------------------
 * Norms and activations
 * ------------------------------------------------------------------------------------- */

void lm_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    if (n <= 0) return;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) y[i] = w ? (x[i] * scale) * w[i] : x[i] * scale;
}

void lm_layernorm(float *y, const float *x, const float *w, const float *b, int64_t n, float eps)
{
    if (n <= 0) return;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)x[i];
    const float mean = (float)(sum / (double)n);
    double sum2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float d = x[i] - mean;
        sum2 += (double)(d * d);
    }
    const float scale = 1.0f / sqrtf((float)(sum2 / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) {
        float v = (x[i] - mean) * scale;
        if (w) v *= w[i];
        if (b) v += b[i];
        y[i] = v;
    }
}

void lm_softmax(float *x, int64_t n)
{
    if (n <= 0) return;
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY) {   /* everything masked: uniform rather than 0/0 */
        for (int64_t i = 0; i < n; i++) x[i] = 1.0f / (float)n;
        return;
    }
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += (double)x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

static inline float silu1(float v) { return v / (1.0f + expf(-v)); }

void lm_silu(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = silu1(x[i]);
}

void lm_gelu_tanh(float *y, const float *x, int64_t n)
{
    const float c = 0.79788456080286535588f; /* sqrt(2/pi) */
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(c * v * (1.0f + 0.044715f * v * v)));
    }
}

void lm_gelu_erf(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752440f));
}

static int fast_activations(void)
{
    const lm_cpu_caps *c = lm_cpu_caps_get();
    return c->avx2 && c->fma && lm_kernels_active() != &lm_kernels_ref_set;
}

void lm_softmax_fast(float *x, int64_t n)
{
    if (fast_activations()) lm_softmax_avx2(x, n);
    else lm_softmax(x, n);
}

void lm_bias_gelu_erf_fast(float *y, const float *b, int64_t n)
{
    if (fast_activations()) {
        lm_bias_gelu_erf_avx2(y, b, n);
        return;
    }
    if (b) for (int64_t i = 0; i < n; i++) y[i] += b[i];
    lm_gelu_erf(y, y, n);
}

void lm_swiglu(float *y, const float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = silu1(gate[i]) * up[i];
}

void lm_swiglu_fast(float *y, const float *gate, const float *up, int64_t n)
{
    if (fast_activations()) lm_swiglu_avx2(y, gate, up, n);
    else lm_swiglu(y, gate, up, n);
}

/* ---------------------------------------------------------------------------------------
 * RoPE, with ggml's rope_yarn arithmetic: theta_i = pos · base^(-2i/n_dims) built by
 * repeated float multiplication, YaRN ramp between corr_dims, mscale on cos/sin.
 * ------------------------------------------------------------------------------------- */

#define LM_ROPE_MAX_CACHE 1024   /* dims whose cos/sin the per-thread cache can hold */

static float rope_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base)
{
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot * 2.0f * (float)M_PI)) / (2.0f * logf(base));
}

static float rope_ramp(float low, float high, int i0)
{
    float y = ((float)(i0 / 2) - low) / fmaxf(0.001f, high - low);
    return 1.0f - fminf(1.0f, fmaxf(0.0f, y));
}

/* cs[2j] = cos, cs[2j+1] = sin of the pairs i0 = i_begin + 2j < i_end (i_begin even). */
static void rope_cos_sin(const lm_rope *r, int64_t pos, int i_begin, int i_end, float *cs)
{
    const int n_dims = r->n_dims;
    const float theta_scale = powf(r->freq_base, -2.0f / (float)n_dims);
    /* n_ctx_orig == 0 means no YaRN: ext_factor is ignored then (no ramp, no mscale). */
    const float ext = r->n_ctx_orig > 0 ? r->ext_factor : 0.0f;
    float corr[2] = {0.0f, 0.0f};
    if (ext != 0.0f) {
        float start = floorf(rope_corr_dim(n_dims, r->n_ctx_orig, r->beta_fast, r->freq_base));
        float end = ceilf(rope_corr_dim(n_dims, r->n_ctx_orig, r->beta_slow, r->freq_base));
        corr[0] = fmaxf(0.0f, start);
        corr[1] = fminf((float)(n_dims - 1), end);
    }
    float mscale = r->attn_factor;
    if (ext != 0.0f) mscale *= 1.0f + 0.1f * logf(1.0f / r->freq_scale);
    float theta_extrap = (float)pos;
    for (int i0 = 0; i0 < i_begin; i0 += 2) theta_extrap *= theta_scale; /* same rounding as a full pass */
    for (int i0 = i_begin; i0 < i_end; i0 += 2) {
        float theta = r->freq_scale * theta_extrap;
        if (ext != 0.0f) {
            float mix = rope_ramp(corr[0], corr[1], i0) * ext;
            theta = theta * (1.0f - mix) + theta_extrap * mix;
        }
        cs[i0 - i_begin] = cosf(theta) * mscale;
        cs[i0 - i_begin + 1] = sinf(theta) * mscale;
        theta_extrap *= theta_scale;
    }
}

/* Every head of a token uses the same cos/sin: keep the last table per thread. */
static _Thread_local struct {
    lm_rope key;
    int64_t pos;
    int     valid;
    float   cs[LM_ROPE_MAX_CACHE];
} tl_rope;

/* Rotate the pairs i0 in [i_begin, i_end) with their cos/sin in cs. */
static void rope_rotate(const lm_rope *r, float *x, int i_begin, int i_end, const float *cs)
{
    const int half = r->n_dims / 2;
    for (int i0 = i_begin; i0 < i_end; i0 += 2) {
        const float c = cs[i0 - i_begin], s = cs[i0 - i_begin + 1];
        float *a = r->mode == LM_ROPE_NEOX ? &x[i0 / 2] : &x[i0];
        float *b = r->mode == LM_ROPE_NEOX ? &x[i0 / 2 + half] : &x[i0 + 1];
        const float x0 = *a, x1 = *b;
        *a = x0 * c - x1 * s;
        *b = x0 * s + x1 * c;
    }
}

void lm_rope_apply(const lm_rope *r, float *x, int64_t pos)
{
    const int n_dims = r->n_dims;
    if (n_dims <= 0 || n_dims % 2) return;
    if (n_dims <= LM_ROPE_MAX_CACHE) {
        if (!tl_rope.valid || tl_rope.pos != pos || memcmp(&tl_rope.key, r, sizeof *r)) {
            rope_cos_sin(r, pos, 0, n_dims, tl_rope.cs);
            memcpy(&tl_rope.key, r, sizeof *r);
            tl_rope.pos = pos;
            tl_rope.valid = 1;
        }
        rope_rotate(r, x, 0, n_dims, tl_rope.cs);
        return;
    }
    float cs[256];   /* very wide heads: no cache, chunks of 128 pairs */
    for (int i = 0; i < n_dims; i += 256) {
        int end = n_dims - i < 256 ? n_dims : i + 256;
        rope_cos_sin(r, pos, i, end, cs);
        rope_rotate(r, x, i, end, cs);
    }
}

/* ---------------------------------------------------------------------------------------
 * GroupNorm, upsampling
 * ------------------------------------------------------------------------------------- */

void lm_groupnorm(float *y, const float *x, const float *w, const float *b,
                  int64_t C, int64_t HW, int64_t G, float eps)
{
    if (C <= 0 || HW <= 0 || G <= 0 || C % G) return;
    const int64_t cg = C / G, n = cg * HW;
    for (int64_t g = 0; g < G; g++) {
        const float *xg = x + g * n;
        float *yg = y + g * n;
        double sum = 0.0, sum2 = 0.0;
        for (int64_t i = 0; i < n; i++) sum += (double)xg[i];
        const double mean = sum / (double)n;
        for (int64_t i = 0; i < n; i++) {
            double d = (double)xg[i] - mean;
            sum2 += d * d;
        }
        const float scale = (float)(1.0 / sqrt(sum2 / (double)n + (double)eps));
        const float fmean = (float)mean;
        for (int64_t c = 0; c < cg; c++) {
            const int64_t ch = g * cg + c;
            const float wc = w ? w[ch] : 1.0f, bc = b ? b[ch] : 0.0f;
            for (int64_t i = 0; i < HW; i++) yg[c * HW + i] = (xg[c * HW + i] - fmean) * scale * wc + bc;
        }
    }
}

void lm_upsample_nearest2x(float *y, const float *x, int64_t C, int64_t H, int64_t W)
{
    for (int64_t c = 0; c < C; c++)
        for (int64_t h = 0; h < H; h++) {
            const float *xr = x + (c * H + h) * W;
            float *y0 = y + (c * 2 * H + 2 * h) * 2 * W, *y1 = y0 + 2 * W;
            for (int64_t w = 0; w < W; w++) y0[2 * w] = y0[2 * w + 1] = xr[w];
            memcpy(y1, y0, (size_t)(2 * W) * sizeof(float));
        }
}

/* ---------------------------------------------------------------------------------------
 * Convolution: im2col rows split across the pool, then one sgemm
 * ------------------------------------------------------------------------------------- */

typedef struct im2col_task {
    const float *x;          /* [C_in][H][W] (H = 1 for conv1d) */
    float       *col;        /* [C_in*KH*KW][H_out*W_out] */
    int64_t      C_in, H, W, KH, KW, sh, sw, ph, pw, H_out, W_out;
    int64_t      dh, dw;     /* dilation (1 = none) */
} im2col_task;

static void im2col_part(void *arg, int ith, int nth)
{
    const im2col_task *t = arg;
    const int64_t n_rows = t->C_in * t->KH * t->KW, n_cols = t->H_out * t->W_out;
    long long lo, hi;
    lm_split(n_rows, ith, nth, &lo, &hi);
    for (long long row = lo; row < hi; row++) {
        const int64_t kw = row % t->KW, kh = (row / t->KW) % t->KH, ci = row / (t->KW * t->KH);
        const float *xc = t->x + ci * t->H * t->W;
        float *dst = t->col + row * n_cols;
        /* output columns whose input column iw = ow·sw + off lies inside [0, W): [ow_lo, ow_hi) */
        const int64_t off = kw * t->dw - t->pw;
        int64_t ow_lo = off >= 0 ? 0 : (-off + t->sw - 1) / t->sw;
        int64_t ow_hi = t->W - 1 - off < 0 ? 0 : (t->W - 1 - off) / t->sw + 1;
        if (ow_lo > t->W_out) ow_lo = t->W_out;
        if (ow_hi > t->W_out) ow_hi = t->W_out;
        if (ow_hi < ow_lo) ow_hi = ow_lo;
        for (int64_t oh = 0; oh < t->H_out; oh++) {
            const int64_t ih = oh * t->sh - t->ph + kh * t->dh;
            float *d = dst + oh * t->W_out;
            if (ih < 0 || ih >= t->H) {
                memset(d, 0, (size_t)t->W_out * sizeof(float));
                continue;
            }
            const float *xr = xc + ih * t->W + off;
            for (int64_t ow = 0; ow < ow_lo; ow++) d[ow] = 0.0f;
            if (t->sw == 1) memcpy(d + ow_lo, xr + ow_lo, (size_t)(ow_hi - ow_lo) * sizeof(float));
            else
                for (int64_t ow = ow_lo; ow < ow_hi; ow++) d[ow] = xr[ow * t->sw];
            for (int64_t ow = ow_hi; ow < t->W_out; ow++) d[ow] = 0.0f;
        }
    }
}

/* y[C_out][H_out*W_out] = w[C_out][C_in*KH*KW] · im2col(x) + b. Shapes the public wrappers
 * reject (non-positive sizes, kernel larger than the padded input, > INT_MAX for BLAS)
 * leave y untouched. */
static void conv_gemm(float *y, const float *x, const float *w, const float *b, const im2col_task *shape,
                      int64_t C_out, float *scratch, lm_pool *pool)
{
    im2col_task t = *shape;
    if (t.C_in <= 0 || C_out <= 0 || t.KH <= 0 || t.KW <= 0 || t.sh <= 0 || t.sw <= 0 || t.ph < 0 || t.pw < 0 ||
        t.dh <= 0 || t.dw <= 0)
        return;
    const int64_t span_h = (t.KH - 1) * t.dh + 1, span_w = (t.KW - 1) * t.dw + 1;
    if (t.H + 2 * t.ph < span_h || t.W + 2 * t.pw < span_w) return;
    t.H_out = (t.H + 2 * t.ph - span_h) / t.sh + 1;
    t.W_out = (t.W + 2 * t.pw - span_w) / t.sw + 1;
    const int64_t n_cols = t.H_out * t.W_out, k = t.C_in * t.KH * t.KW;
    if (n_cols > INT_MAX || k > INT_MAX || C_out > INT_MAX) return;
    const float *col = x;   /* a 1×1 stride-1 unpadded conv is already a GEMM on x */
    if (!(t.KH == 1 && t.KW == 1 && t.sh == 1 && t.sw == 1 && t.ph == 0 && t.pw == 0)) {
        t.x = x;
        t.col = scratch;
        lm_pool_run(pool, im2col_part, &t);
        col = scratch;
    }
    float beta = 0.0f;
    if (b) {
        for (int64_t co = 0; co < C_out; co++)
            for (int64_t i = 0; i < n_cols; i++) y[co * n_cols + i] = b[co];
        beta = 1.0f;
    }
    lm_sgemm_pool(pool, LM_NO_TRANS, LM_NO_TRANS, (int)C_out, (int)n_cols, (int)k, 1.0f,
                  w, (int)k, col, (int)n_cols, beta, y, (int)n_cols);
}

void lm_conv1d(float *y, const float *x, const float *w, const float *b,
               int64_t C_in, int64_t L, int64_t C_out, int64_t K, int64_t s, int64_t p,
               float *scratch, lm_pool *pool)
{
    lm_conv1d_dilated(y, x, w, b, C_in, L, C_out, K, s, p, 1, scratch, pool);
}

void lm_conv1d_dilated(float *y, const float *x, const float *w, const float *b,
                       int64_t C_in, int64_t L, int64_t C_out, int64_t K, int64_t s, int64_t p, int64_t d,
                       float *scratch, lm_pool *pool)
{
    im2col_task t = {.C_in = C_in, .H = 1, .W = L, .KH = 1, .KW = K, .sh = 1, .sw = s, .ph = 0, .pw = p,
                     .dh = 1, .dw = d};
    conv_gemm(y, x, w, b, &t, C_out, scratch, pool);
}

void lm_conv2d(float *y, const float *x, const float *w, const float *b,
               int64_t C_in, int64_t H, int64_t W, int64_t C_out, int64_t K, int64_t s, int64_t p,
               float *scratch, lm_pool *pool)
{
    im2col_task t = {.C_in = C_in, .H = H, .W = W, .KH = K, .KW = K, .sh = s, .sw = s, .ph = p, .pw = p,
                     .dh = 1, .dw = 1};
    conv_gemm(y, x, w, b, &t, C_out, scratch, pool);
}
