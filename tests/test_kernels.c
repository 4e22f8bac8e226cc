/*
 * Kernels: every fast kernel set this CPU runs (avx512, avx2) against the reference on
 * random data, odd shapes, every weight type, pools of 1 and 2 threads and NULL; RoPE
 * against a direct double-precision formula; conv against the naive reference; norms and
 * activations against direct formulas or known values.
 *
 * Tolerances (stated once):
 *   dot / matvec / matmul:  |fast - ref| <= 2e-5 · Σ|w_i·x_i| + 1e-6 per output
 *                           (float sums in a different order; bound scales with magnitude)
 *   conv:                   |fast - ref| <= 1e-5 · (1 + Σ|w·x| over the window)  (sgemm order)
 *   RoPE:                   |fast - direct| <= (2e-6 + 2e-7·pos) · max|x|  (float theta)
 *   norms, activations:     1e-5 relative, 1e-6 absolute
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/kernels.h"
#include "lib/core/kernels_impl.h"
#include "tests/check.h"

/* ---- deterministic random numbers ----------------------------------------------------- */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void)
{
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float rng_uniform(void) { return (float)((rng_next() >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; }
static void fill_random(float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = rng_uniform() * scale;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        printf("out of memory\n");
        exit(2);
    }
    return p;
}

/* A random typed matrix [n_out][n_in] with the given row stride (>= the packed row). */
static lm_matrix make_matrix(int type, int64_t n_in, int64_t n_out, size_t extra_stride, float **f32_out)
{
    lm_matrix W = {.type = type, .n_in = n_in, .n_out = n_out};
    W.row_bytes = lm_row_bytes(type, n_in) + extra_stride;
    uint8_t *data = xmalloc(W.row_bytes * (size_t)n_out);
    float *row = xmalloc((size_t)n_in * sizeof(float));
    memset(data, 0xAB, W.row_bytes * (size_t)n_out);   /* stride padding must be ignored */
    for (int64_t r = 0; r < n_out; r++) {
        fill_random(row, n_in, 1.0f);
        lm_row_from_f32(type, row, data + (size_t)r * W.row_bytes, n_in);
    }
    free(row);
    W.data = data;
    if (f32_out) {   /* the exact values the typed rows hold */
        *f32_out = xmalloc((size_t)(n_in * n_out) * sizeof(float));
        for (int64_t r = 0; r < n_out; r++) lm_row_to_f32(type, data + (size_t)r * W.row_bytes, *f32_out + r * n_in, n_in);
    }
    return W;
}

/* Σ|w_i x_i| for row r: the scale a rounding error of the dot is measured against. */
static double abs_dot(const float *wf, const float *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)wf[i] * x[i]);
    return s;
}

static const int k_types[] = {LOOM_TYPE_F32, LOOM_TYPE_F16, LOOM_TYPE_BF16, LOOM_TYPE_Q8_0};
static const char *const k_sets[] = {"avx512", "avx2", "ref"};

/* ---- dot and matvec --------------------------------------------------------------------- */
static float f32_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Float rows rounded to each type by the set's from_f32 equal types.c's scalar rounding byte
 * for byte, on random values of every magnitude and on the hard cases: NaNs (any payload,
 * either sign), infinities, signed zeros, f16 subnormals and overflow, ties of each rounding,
 * q8_0 blocks holding an inf, a NaN, 1e38 or only subnormals. Widening back (to_f32) gives
 * the same floats (NaNs stay NaN). */
static void test_row_convert(const char *set)
{
    enum { N = 32 * 24 + 5 };  /* f16/bf16 rows get a scalar tail; q8_0 uses the whole blocks */
    static float x[N], back_fast[N], back_ref[N];
    static uint8_t fast[N * 4], ref[N * 4];
    const uint32_t special[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fbfffffu, 0xff812345u,
                                0x7f800000u, 0xff800000u, 0x00000000u, 0x80000000u, 0x00000001u,
                                0x33800000u, 0x33000000u, 0x387fc000u, 0x477fe000u, 0x477ff000u,
                                0x477fefffu, 0x3f801000u, 0x3f803000u, 0x3f808000u, 0x3f818000u,
                                0x7f7fffffu, 0xff7f8000u, 0x3f7fffffu, 0x00800000u};
    for (int i = 0; i < N; i++) {
        const int e = (int)(rng_next() % 80) - 40;      /* magnitudes 2^-40 .. 2^40 */
        x[i] = ldexpf(rng_uniform(), e);
    }
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) x[3 * i + 1] = f32_of(special[i]);
    /* q8_0 blocks 4..15 (values 128..511): ties at scale 1, an inf, a NaN, a huge value, subnormals; the NaN in the last
     * eight, where a max that lets NaN through would keep it */
    for (int j = 0; j < 32; j++) {
        x[128 + j] = (j == 0) ? 127.0f : (float)(j % 7) - 3.5f;     /* d = 1: x.5 ties */
        x[160 + j] = (j == 5) ? INFINITY : rng_uniform();
        x[192 + j] = (j == 29) ? NAN : rng_uniform() * 3.0f;
        x[224 + j] = (j == 31) ? 1e38f : rng_uniform();
        x[256 + j] = f32_of(1u + (uint32_t)j * 977u) * ((j & 1) ? -1.0f : 1.0f);
        x[288 + j] = (j == 3) ? -127.0f : (float)j * 0.5f - 8.0f;   /* more halves, negative amax */
        x[320 + j] = 0.0f;
    }
    const int types[] = {LOOM_TYPE_F16, LOOM_TYPE_BF16, LOOM_TYPE_Q8_0, LOOM_TYPE_F32};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const int type = types[t];
        const int64_t n = type == LOOM_TYPE_Q8_0 ? N / 32 * 32 : N;
        const size_t bytes = lm_row_bytes(type, n);
        memset(fast, 0xAB, sizeof fast);
        memset(ref, 0xCD, sizeof ref);
        lm_row_from_f32_fast(type, x, fast, n);
        lm_row_from_f32(type, x, ref, n);
        size_t first = bytes;
        for (size_t b = 0; b < bytes && first == bytes; b++)
            if (fast[b] != ref[b]) first = b;
        CHECK(first == bytes, "[%s] %s from_f32 differs from the scalar rounding at byte %zu of %zu",
              set, loom_type_name(type), first, bytes);
        lm_row_to_f32_fast(type, ref, back_fast, n);
        lm_row_to_f32(type, ref, back_ref, n);
        int64_t bad = -1;
        for (int64_t i = 0; i < n && bad < 0; i++)
            if (isnan(back_ref[i]) ? !isnan(back_fast[i]) : memcmp(&back_fast[i], &back_ref[i], 4) != 0) bad = i;
        CHECK(bad < 0, "[%s] %s to_f32 differs from the scalar widening at value %lld", set,
              loom_type_name(type), (long long)bad);
    }
}

static void test_dot_matvec(const char *set, lm_pool *pools[3])
{
    static const int64_t n_float[] = {1, 7, 15, 16, 17, 33, 63, 64, 65, 100, 257, 1000, 4096};
    static const int64_t n_q8[] = {32, 64, 96, 160, 1024, 4096};
    static const int64_t n_outs[] = {1, 3, 17, 67};
    for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
        const int type = k_types[ti];
        const int64_t *ns = type == LOOM_TYPE_Q8_0 ? n_q8 : n_float;
        const size_t nn = type == LOOM_TYPE_Q8_0 ? sizeof n_q8 / sizeof n_q8[0] : sizeof n_float / sizeof n_float[0];
        for (size_t a = 0; a < nn; a++)
            for (size_t b = 0; b < sizeof n_outs / sizeof n_outs[0]; b++) {
                const int64_t n_in = ns[a], n_out = n_outs[b];
                float *wf;
                lm_matrix W = make_matrix(type, n_in, n_out, (a + b) % 3 == 0 ? 64 : 0, &wf);
                float *x = xmalloc((size_t)n_in * sizeof(float));
                float *y_ref = xmalloc((size_t)n_out * sizeof(float));
                float *y = xmalloc((size_t)n_out * sizeof(float));
                fill_random(x, n_in, 2.0f);
                lm_matvec_ref(&W, x, y_ref);

                int bad_dot = 0;
                for (int64_t r = 0; r < n_out; r++) {
                    const void *row = (const uint8_t *)W.data + (size_t)r * W.row_bytes;
                    double tol = 2e-5 * abs_dot(wf + r * n_in, x, n_in) + 1e-6;
                    float d = lm_dot(type, row, x, n_in), dr = lm_dot_ref(type, row, x, n_in);
                    if (!(fabs((double)d - dr) <= tol) || dr != y_ref[r]) bad_dot++;
                }
                CHECK(bad_dot == 0, "[%s] dot %s n=%lld: %d rows off", set, loom_type_name(type), (long long)n_in, bad_dot);

                for (int pi = 0; pi < 3; pi++) {
                    for (int64_t r = 0; r < n_out; r++) y[r] = NAN;
                    lm_matvec(&W, x, y, pools[pi]);
                    int bad = 0;
                    double worst = 0.0;
                    for (int64_t r = 0; r < n_out; r++) {
                        double err = fabs((double)y[r] - y_ref[r]);
                        double tol = 2e-5 * abs_dot(wf + r * n_in, x, n_in) + 1e-6;
                        if (!(err <= tol)) bad++;
                        if (err > worst) worst = err;
                    }
                    CHECK(bad == 0, "[%s] matvec %s %lldx%lld threads=%d: %d rows off (worst %g)", set,
                          loom_type_name(type), (long long)n_out, (long long)n_in, lm_pool_size(pools[pi]), bad, worst);
                }
                free(x); free(y); free(y_ref); free(wf); free((void *)W.data);
            }
    }
}

/* ---- Q8_0 × q8 activations (int8 dots) --------------------------------------------------
 * The quantizer is bit-exact with the reference (and x - d·q within 0.57 steps: the f16 scale); the int8
 * rows (every variant the set has: AVX-512 BW and VNNI) match the reference within the
 * float tolerance above, and the reference matches the float matvec on the dequantized x. */
static void check_rows_q8(const char *set, const char *variant, lm_rows_q8_fn rows, const lm_matrix *W,
                          const int8_t *xq, const float *xd, const float *y_ref, const float *wf, const float *xdq)
{
    float *y = xmalloc((size_t)W->n_out * sizeof(float));
    for (int64_t r = 0; r < W->n_out; r++) y[r] = NAN;
    rows(W->data, W->row_bytes, xq, xd, y, W->n_out, W->n_in);
    int bad = 0;
    for (int64_t r = 0; r < W->n_out; r++)
        if (!(fabs((double)y[r] - y_ref[r]) <= 2e-5 * abs_dot(wf + r * W->n_in, xdq, W->n_in) + 1e-6)) bad++;
    CHECK(bad == 0, "[%s] q8 rows (%s) %lldx%lld: %d rows off", set, variant, (long long)W->n_out, (long long)W->n_in, bad);
    free(y);
}

static void test_q8_int8(const char *set, lm_pool *pools[3])
{
    static const int64_t n_ins[] = {32, 64, 96, 128, 160, 256, 288, 480, 1024, 4096};
    static const int64_t n_outs[] = {1, 3, 17, 67};
    const lm_kernel_set *ks = lm_kernels_active();
    for (size_t a = 0; a < sizeof n_ins / sizeof n_ins[0]; a++)
        for (size_t b = 0; b < sizeof n_outs / sizeof n_outs[0]; b++) {
            const int64_t n_in = n_ins[a], n_out = n_outs[b], nb = n_in / 32;
            float *wf;
            lm_matrix W = make_matrix(LOOM_TYPE_Q8_0, n_in, n_out, (a + b) % 3 == 0 ? 64 : 0, &wf);
            if (a == 2) { /* extreme weights: |q| = 128 must not saturate the int16 pair sums */
                lm_block_q8_0 *blk = (lm_block_q8_0 *)W.data;
                for (int j = 0; j < 32; j++) blk[0].qs[j] = j % 2 ? -128 : 127;
                lm_row_to_f32(LOOM_TYPE_Q8_0, W.data, wf, n_in);
            }
            float *x = xmalloc((size_t)n_in * sizeof(float)), *xdq = xmalloc((size_t)n_in * sizeof(float));
            float *xd = xmalloc((size_t)nb * sizeof(float)), *xd_ref = xmalloc((size_t)nb * sizeof(float));
            int8_t *xq = xmalloc((size_t)n_in), *xq_ref = xmalloc((size_t)n_in);
            float *y_ref = xmalloc((size_t)n_out * sizeof(float)), *y_f = xmalloc((size_t)n_out * sizeof(float));
            float *y = xmalloc((size_t)n_out * sizeof(float));
            fill_random(x, n_in, 2.0f);
            if (nb > 1) memset(x + 32, 0, 32 * sizeof(float));       /* an all-zero block: d = 0 */
            if (a == 2) for (int j = 0; j < 32; j++) x[j] = j % 2 ? -3.0f : 3.0f; /* q = ±127 */
            lm_quantize_q8(x, n_in, xq, xd);
            lm_quantize_q8_ref(x, n_in, xq_ref, xd_ref);
            CHECK(!memcmp(xq, xq_ref, (size_t)n_in) && !memcmp(xd, xd_ref, (size_t)nb * sizeof(float)),
                  "[%s] quantize_q8 n=%lld differs from the reference", set, (long long)n_in);
            int off_grid = 0;
            for (int64_t i = 0; i < n_in; i++) {
                xdq[i] = xd_ref[i / 32] * xq_ref[i];
                if (!(fabsf(x[i] - xdq[i]) <= 0.57f * xd_ref[i / 32])) off_grid++; /* f16 scale: +127·2^-11 step */
            }
            CHECK(off_grid == 0, "[%s] quantize_q8 n=%lld: %d values more than half a step off", set, (long long)n_in,
                  off_grid);
            lm_matvec_q8_ref(&W, xq_ref, xd_ref, y_ref);
            lm_matvec_ref(&W, xdq, y_f);
            int bad = 0;
            for (int64_t r = 0; r < n_out; r++)
                if (!(fabs((double)y_f[r] - y_ref[r]) <= 2e-5 * abs_dot(wf + r * n_in, xdq, n_in) + 1e-6)) bad++;
            CHECK(bad == 0, "q8 int8 reference vs float matvec on dequantized x %lldx%lld: %d rows off", (long long)n_out,
                  (long long)n_in, bad);
            check_rows_q8(set, "base", ks->rows_q8, &W, xq, xd, y_ref, wf, xdq);
            if (ks->rows_q8_vnni && lm_cpu_caps_get()->avx512vnni)
                check_rows_q8(set, "vnni", ks->rows_q8_vnni, &W, xq, xd, y_ref, wf, xdq);
            for (int pi = 0; pi < 3; pi++) {
                for (int64_t r = 0; r < n_out; r++) y[r] = NAN;
                lm_matvec_q8(&W, xq, xd, y, pools[pi]);
                int bad_mv = 0;
                for (int64_t r = 0; r < n_out; r++)
                    if (!(fabs((double)y[r] - y_ref[r]) <= 2e-5 * abs_dot(wf + r * n_in, xdq, n_in) + 1e-6)) bad_mv++;
                CHECK(bad_mv == 0, "[%s] matvec_q8 %lldx%lld threads=%d: %d rows off", set, (long long)n_out,
                      (long long)n_in, lm_pool_size(pools[pi]), bad_mv);
            }
            free(x); free(xdq); free(xd); free(xd_ref); free(xq); free(xq_ref);
            free(y_ref); free(y_f); free(y); free(wf); free((void *)W.data);
        }
}

/* ---- several inputs at once ------------------------------------------------------------
 * lm_matvec_multi / lm_matvec_q8_multi (and each Q8 variant of the set directly) against
 * lm_matvec / lm_matvec_q8 on each input alone: equal bit for bit, for 1..8 inputs (groups
 * of four and the rest), rows with and without tails, strided rows. */
static int count_unequal(float *const *y, const float *y1, int nx, int64_t n_out)
{
    int bad = 0;
    for (int j = 0; j < nx; j++)
        for (int64_t r = 0; r < n_out; r++)
            if (memcmp(&y[j][r], &y1[(size_t)j * n_out + r], sizeof(float))) bad++;
    return bad;
}

static void test_matvec_multi(const char *set)
{
    static const int64_t n_float[] = {7, 16, 17, 63, 64, 100, 257, 1000};
    static const int64_t n_q8[] = {32, 96, 256, 288, 1024};
    enum { NX = 8, N_OUT = 19 };
    const lm_kernel_set *ks = lm_kernels_active();
    for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
        const int type = k_types[ti];
        const int64_t *ns = type == LOOM_TYPE_Q8_0 ? n_q8 : n_float;
        const size_t nn = type == LOOM_TYPE_Q8_0 ? sizeof n_q8 / sizeof n_q8[0] : sizeof n_float / sizeof n_float[0];
        for (size_t a = 0; a < nn; a++) {
            const int64_t n_in = ns[a], ldx = n_in + 5, nb = n_in / 32;
            lm_matrix W = make_matrix(type, n_in, N_OUT, a % 2 ? 64 : 0, NULL);
            float *x = xmalloc((size_t)(NX * ldx) * sizeof(float));
            float *y1 = xmalloc((size_t)(NX * N_OUT) * sizeof(float)), *ys = xmalloc((size_t)(NX * N_OUT) * sizeof(float));
            float *y[NX];
            for (int j = 0; j < NX; j++) y[j] = ys + (size_t)j * N_OUT;
            fill_random(x, NX * ldx, 2.0f);
            for (int j = 0; j < NX; j++) lm_matvec(&W, x + j * ldx, y1 + (size_t)j * N_OUT, NULL);
            for (int nx = 1; nx <= NX; nx++) {
                for (int i = 0; i < NX * N_OUT; i++) ys[i] = NAN;
                lm_matvec_multi(&W, x, ldx, y, nx);
                CHECK(count_unequal(y, y1, nx, N_OUT) == 0, "[%s] matvec_multi %s n=%lld nx=%d: differs from matvec",
                      set, loom_type_name(type), (long long)n_in, nx);
            }
            if (type == LOOM_TYPE_Q8_0) {
                int8_t *xq = xmalloc((size_t)(NX * n_in));
                float *xd = xmalloc((size_t)(NX * nb) * sizeof(float));
                for (int j = 0; j < NX; j++) {
                    lm_quantize_q8(x + j * ldx, n_in, xq + j * n_in, xd + j * nb);
                    lm_matvec_q8(&W, xq + j * n_in, xd + j * nb, y1 + (size_t)j * N_OUT, NULL);
                }
                for (int nx = 1; nx <= NX; nx++) {
                    for (int i = 0; i < NX * N_OUT; i++) ys[i] = NAN;
                    lm_matvec_q8_multi(&W, xq, xd, y, nx);
                    CHECK(count_unequal(y, y1, nx, N_OUT) == 0, "[%s] matvec_q8_multi n=%lld nx=%d: differs from matvec_q8",
                          set, (long long)n_in, nx);
                }
                /* each variant against its own lone rows */
                const lm_rows_q8_fn lone[2] = {ks->rows_q8, lm_cpu_caps_get()->avx512vnni ? ks->rows_q8_vnni : NULL};
                const lm_rows_q8_multi_fn multi[2] = {ks->rows_q8_multi, lone[1] ? ks->rows_q8_vnni_multi : NULL};
                for (int v = 0; v < 2; v++) {
                    if (!lone[v] || !multi[v]) continue;
                    for (int j = 0; j < NX; j++)
                        lone[v](W.data, W.row_bytes, xq + j * n_in, xd + j * nb, y1 + (size_t)j * N_OUT, N_OUT, n_in);
                    multi[v](W.data, W.row_bytes, xq, xd, y, NX, N_OUT, n_in);
                    CHECK(count_unequal(y, y1, NX, N_OUT) == 0, "[%s] q8 rows %s multi n=%lld: differs from its lone rows",
                          set, v ? "vnni" : "base", (long long)n_in);
                }
                free(xq); free(xd);
            }
            free(x); free(y1); free(ys); free((void *)W.data);
        }
    }
    /* a matrix the kernels cannot read: every output NaN, as lm_matvec gives */
    float x[64] = {0}, ya[2] = {0}, yb[2] = {0};
    float *y2[2] = {ya, yb};
    const lm_matrix bad = {.type = 99, .n_in = 32, .n_out = 2, .row_bytes = 128, .data = x};
    lm_matvec_multi(&bad, x, 32, y2, 2);
    CHECK(isnan(ya[0]) && isnan(ya[1]) && isnan(yb[0]) && isnan(yb[1]), "[%s] matvec_multi on a bad type: not NaN", set);
    const lm_matrix f32m = {.type = LOOM_TYPE_F32, .n_in = 32, .n_out = 2, .row_bytes = 128, .data = x};
    int8_t xq[64] = {0};
    float xd[2] = {0};
    ya[0] = ya[1] = yb[0] = yb[1] = 0.0f;
    lm_matvec_q8_multi(&f32m, xq, xd, y2, 2);
    CHECK(isnan(ya[0]) && isnan(yb[1]), "[%s] matvec_q8_multi on f32 weights: not NaN", set);
}

/* ---- attention's weighted sum of cached rows ---------------------------------------------
 * lm_attn_sum_rows_avx2 (decoder_avx2.c) against the decoder's portable loop: o = 0, then
 * o += p_j·row_j in order: equal bit for bit (no FMA on either side), with a column tail. */
void lm_attn_sum_rows_avx2(float *o, const float *p, const float *kv, int64_t n_kv, int64_t R, int64_t n);

static void test_attn_sum_rows(void)
{
    if (!lm_cpu_caps_get()->avx2) {
        printf("note: no AVX2: lm_attn_sum_rows_avx2 not run\n");
        return;
    }
    static const int64_t shapes[][3] = {{1, 80, 64}, {37, 80, 64}, {300, 80, 64}, {5, 140, 128}, {9, 76, 70}, {4, 8, 3}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int64_t n_kv = shapes[si][0], R = shapes[si][1], n = shapes[si][2];
        float *kv = xmalloc((size_t)(n_kv * R) * sizeof(float)), *p = xmalloc((size_t)n_kv * sizeof(float));
        float *o = xmalloc((size_t)n * sizeof(float)), *want = xmalloc((size_t)n * sizeof(float));
        fill_random(kv, n_kv * R, 3.0f);
        fill_random(p, n_kv, 1.0f);
        for (int64_t i = 0; i < n; i++) want[i] = 0.0f;
        for (int64_t j = 0; j < n_kv; j++)
            for (int64_t i = 0; i < n; i++) want[i] += p[j] * kv[j * R + i];
        lm_attn_sum_rows_avx2(o, p, kv, n_kv, R, n);
        CHECK(!memcmp(o, want, (size_t)n * sizeof(float)), "attn sum rows %lldx%lld (row %lld): differs from the portable loop",
              (long long)n_kv, (long long)n, (long long)R);
        free(kv); free(p); free(o); free(want);
    }
}

/* ---- matmul ------------------------------------------------------------------------------ */
static void check_matmul(const char *set, int type, int64_t n_in, int64_t n_out, int64_t n_tok, lm_pool *pool)
{
    float *wf;
    lm_matrix W = make_matrix(type, n_in, n_out, n_tok % 2 ? 0 : 32, &wf);
    float *X = xmalloc((size_t)(n_tok * n_in) * sizeof(float));
    float *Y = xmalloc((size_t)(n_tok * n_out) * sizeof(float));
    float *Yr = xmalloc((size_t)(n_tok * n_out) * sizeof(float));
    fill_random(X, n_tok * n_in, 1.5f);
    lm_matmul_ref(&W, X, n_tok, Yr);
    for (int64_t i = 0; i < n_tok * n_out; i++) Y[i] = NAN;
    lm_matmul(&W, X, n_tok, Y, pool);
    int bad = 0;
    double worst = 0.0;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t r = 0; r < n_out; r++) {
            double err = fabs((double)Y[t * n_out + r] - Yr[t * n_out + r]);
            double tol = 2e-5 * abs_dot(wf + r * n_in, X + t * n_in, n_in) + 1e-6;
            if (!(err <= tol)) bad++;
            if (err > worst) worst = err;
        }
    CHECK(bad == 0, "[%s] matmul %s %lldx%lld n_tok=%lld threads=%d: %d values off (worst %g)", set,
          loom_type_name(type), (long long)n_out, (long long)n_in, (long long)n_tok, lm_pool_size(pool), bad, worst);
    free(X); free(Y); free(Yr); free(wf); free((void *)W.data);
}

static void test_matmul(const char *set, lm_pool *pools[3], int multi_tile)
{
    for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
        const int type = k_types[ti];
        const int64_t n_in = type == LOOM_TYPE_Q8_0 ? 96 : 100;
        for (int64_t n_tok = 1; n_tok <= 37; n_tok++) check_matmul(set, type, n_in, 33, n_tok, pools[n_tok % 3]);
        /* One large tile, n_out odd. */
        check_matmul(set, type, 4096, 301, 9, pools[2]);
        /* Several dequantized tiles (16 MiB = 64 rows of 65536), the last one partial. The
         * tiling is the same code for every set, so the first set that runs covers it. */
        if (multi_tile) check_matmul(set, type, 65536, 150, 5, pools[2]);
    }
}

/* lm_matmul's bits do not depend on the pool's size: products are cut into blocks by their
 * shape alone (`loom … -t 1` and `-t 2` write the same output). Before, guided video codes
 * parted between one and two threads. Shapes: three blocks of W's rows, and 16 MiB tiles
 * smaller than a block (n_in 65536). */
static void test_matmul_any_threads(void)
{
    lm_pool *more[3] = {lm_pool_create(2), lm_pool_create(3), lm_pool_create(4)};
    static const int64_t shapes[][3] = {{256, 1000, 40}, {65536, 150, 5}};   /* n_in, n_out, n_tok */
    for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++)
        for (size_t si = 0; si < 2; si++) {
            const int64_t n_in = shapes[si][0], n_out = shapes[si][1], n_tok = shapes[si][2];
            if (si == 1 && k_types[ti] != LOOM_TYPE_F16) continue;   /* the tiling is the same for every type */
            float *wf;
            lm_matrix W = make_matrix(k_types[ti], n_in, n_out, 0, &wf);
            float *X = xmalloc((size_t)(n_tok * n_in) * sizeof(float));
            float *Y0 = xmalloc((size_t)(n_tok * n_out) * sizeof(float)), *Y = xmalloc((size_t)(n_tok * n_out) * sizeof(float));
            fill_random(X, n_tok * n_in, 1.5f);
            lm_matmul(&W, X, n_tok, Y0, NULL);
            int differ = 0;
            for (int p = 0; p < 3; p++) {
                lm_matmul(&W, X, n_tok, Y, more[p]);
                differ += memcmp(Y, Y0, (size_t)(n_tok * n_out) * sizeof(float)) != 0;
            }
            CHECK(differ == 0, "matmul %s %lldx%lld n_tok=%lld: %d of 3 pool sizes differ from no pool in some bit",
                  loom_type_name(k_types[ti]), (long long)n_out, (long long)n_in, (long long)n_tok, differ);
            free(X); free(Y0); free(Y); free(wf); free((void *)W.data);
        }
    for (int p = 0; p < 3; p++) lm_pool_free(&more[p]);
}

/* ---- RoPE ---------------------------------------------------------------------------------- */
/* Direct formula in double: pair j has frequency base^(-2j/n_dims); YaRN blends the
 * interpolated and extrapolated angle by a linear ramp over [low, high] pair indices. */
static void rope_direct(const lm_rope *r, const float *x, float *y, int64_t pos)
{
    const int n = r->n_dims;
    int yarn = r->ext_factor != 0.0f && r->n_ctx_orig > 0;
    double low = 0, high = 0, mscale = r->attn_factor;
    if (yarn) {
        double cd_fast = n * log(r->n_ctx_orig / (r->beta_fast * 2 * M_PI)) / (2 * log(r->freq_base));
        double cd_slow = n * log(r->n_ctx_orig / (r->beta_slow * 2 * M_PI)) / (2 * log(r->freq_base));
        low = fmax(0.0, floor(cd_fast));
        high = fmin(n - 1.0, ceil(cd_slow));
        mscale *= 1.0 + 0.1 * log(1.0 / r->freq_scale);
    }
    memcpy(y, x, (size_t)n * sizeof(float));
    for (int j = 0; j < n / 2; j++) {
        double extrap = (double)pos * pow(r->freq_base, -2.0 * j / n);
        double theta = r->freq_scale * extrap;
        if (yarn) {
            double ramp = 1.0 - fmin(1.0, fmax(0.0, (j - low) / fmax(0.001, high - low)));
            double mix = ramp * r->ext_factor;
            theta = theta * (1 - mix) + extrap * mix;
        }
        int a = r->mode == LM_ROPE_NEOX ? j : 2 * j, b = r->mode == LM_ROPE_NEOX ? j + n / 2 : 2 * j + 1;
        double c = cos(theta) * mscale, s = sin(theta) * mscale;
        y[a] = (float)(x[a] * c - x[b] * s);
        y[b] = (float)(x[a] * s + x[b] * c);
    }
}

static void test_rope(void)
{
    static const int64_t positions[] = {0, 1, 7, 123, 1000, 4097};
    for (int mode = 0; mode <= 2; mode += 2)
        for (int yarn = 0; yarn < 2; yarn++)
            for (int nd = 0; nd < 3; nd++) {
                lm_rope r = {.mode = mode, .n_dims = nd == 0 ? 64 : nd == 1 ? 128 : 6, .freq_base = 10000.0f,
                             .freq_scale = 1.0f, .attn_factor = 1.0f, .beta_fast = 32.0f, .beta_slow = 1.0f};
                if (yarn) {
                    r.freq_scale = 0.25f;
                    r.n_ctx_orig = 4096;
                    r.ext_factor = 1.0f;
                    r.attn_factor = 0.9f;
                }
                float x[128], y[128], want[128];
                for (size_t pi = 0; pi < sizeof positions / sizeof positions[0]; pi++) {
                    int64_t pos = positions[pi];
                    fill_random(x, r.n_dims, 1.0f);
                    memcpy(y, x, sizeof x);
                    lm_rope_apply(&r, y, pos);
                    rope_direct(&r, x, want, pos);
                    double tol = 2e-6 + 2e-7 * (double)pos, worst = 0;
                    for (int i = 0; i < r.n_dims; i++) worst = fmax(worst, fabs((double)y[i] - want[i]));
                    CHECK(worst <= tol, "rope mode=%d yarn=%d n_dims=%d pos=%lld: worst %g > %g", mode, yarn,
                          r.n_dims, (long long)pos, worst, tol);
                    /* Second head, same position: served from the per-thread cos/sin cache. */
                    fill_random(x, r.n_dims, 1.0f);
                    memcpy(y, x, sizeof x);
                    lm_rope_apply(&r, y, pos);
                    rope_direct(&r, x, want, pos);
                    worst = 0;
                    for (int i = 0; i < r.n_dims; i++) worst = fmax(worst, fabs((double)y[i] - want[i]));
                    CHECK(worst <= tol, "rope (cached) mode=%d yarn=%d pos=%lld: worst %g", mode, yarn, (long long)pos, worst);
                }
            }
    /* Pairing: at pos 1 with n_dims 4, NORM mixes x0 with x1, NEOX mixes x0 with x2. */
    lm_rope r = {.mode = LM_ROPE_NORM, .n_dims = 4, .freq_base = 10000.0f, .freq_scale = 1.0f, .attn_factor = 1.0f};
    float v[4] = {1, 0, 0, 0};
    lm_rope_apply(&r, v, 1);
    CHECK(fabsf(v[0] - cosf(1)) < 1e-6f && fabsf(v[1] - sinf(1)) < 1e-6f && v[2] == 0 && v[3] == 0,
          "NORM pairing: %g %g %g %g", v[0], v[1], v[2], v[3]);
    r.mode = LM_ROPE_NEOX;
    float u[4] = {1, 0, 0, 0};
    lm_rope_apply(&r, u, 1);
    CHECK(fabsf(u[0] - cosf(1)) < 1e-6f && u[1] == 0 && fabsf(u[2] - sinf(1)) < 1e-6f && u[3] == 0,
          "NEOX pairing: %g %g %g %g", u[0], u[1], u[2], u[3]);
}

/* ---- convolution ----------------------------------------------------------------------- */
static void test_conv(lm_pool *pools[3])
{
    static const int64_t cfg[][3] = {{3, 1, 1}, {3, 2, 0}, {1, 1, 0}, {5, 2, 2}, {4, 3, 1}, {2, 1, 0}};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++)
        for (int pi = 0; pi < 3; pi++) {
            const int64_t K = cfg[c][0], s = cfg[c][1], p = cfg[c][2];
            const int64_t C_in = 5, C_out = 7, L = 37, H = 11, W = 9;
            const int use_bias = (c + pi) % 2 == 0;
            float b[7];
            fill_random(b, C_out, 1.0f);
            /* conv1d */
            int64_t L_out = (L + 2 * p - K) / s + 1;
            float *x = xmalloc((size_t)(C_in * L) * sizeof(float)), *w = xmalloc((size_t)(C_out * C_in * K) * sizeof(float));
            float *y = xmalloc((size_t)(C_out * L_out) * sizeof(float)), *yr = xmalloc((size_t)(C_out * L_out) * sizeof(float));
            float *scr = xmalloc((size_t)(C_in * K * L_out) * sizeof(float));
            fill_random(x, C_in * L, 1.0f);
            fill_random(w, C_out * C_in * K, 1.0f);
            lm_conv1d(y, x, w, use_bias ? b : NULL, C_in, L, C_out, K, s, p, scr, pools[pi]);
            lm_conv1d_ref(yr, x, w, use_bias ? b : NULL, C_in, L, C_out, K, s, p);
            double worst = 0;
            for (int64_t i = 0; i < C_out * L_out; i++) worst = fmax(worst, fabs((double)y[i] - yr[i]));
            CHECK(worst <= 1e-5 * (1 + C_in * K), "conv1d K=%lld s=%lld p=%lld threads=%d: worst %g", (long long)K,
                  (long long)s, (long long)p, lm_pool_size(pools[pi]), worst);
            free(x); free(w); free(y); free(yr); free(scr);
            /* conv2d */
            int64_t Ho = (H + 2 * p - K) / s + 1, Wo = (W + 2 * p - K) / s + 1;
            x = xmalloc((size_t)(C_in * H * W) * sizeof(float));
            w = xmalloc((size_t)(C_out * C_in * K * K) * sizeof(float));
            y = xmalloc((size_t)(C_out * Ho * Wo) * sizeof(float));
            yr = xmalloc((size_t)(C_out * Ho * Wo) * sizeof(float));
            scr = xmalloc((size_t)(C_in * K * K * Ho * Wo) * sizeof(float));
            fill_random(x, C_in * H * W, 1.0f);
            fill_random(w, C_out * C_in * K * K, 1.0f);
            lm_conv2d(y, x, w, use_bias ? b : NULL, C_in, H, W, C_out, K, s, p, scr, pools[pi]);
            lm_conv2d_ref(yr, x, w, use_bias ? b : NULL, C_in, H, W, C_out, K, s, p);
            worst = 0;
            for (int64_t i = 0; i < C_out * Ho * Wo; i++) worst = fmax(worst, fabs((double)y[i] - yr[i]));
            CHECK(worst <= 1e-5 * (1 + C_in * K * K), "conv2d K=%lld s=%lld p=%lld threads=%d: worst %g", (long long)K,
                  (long long)s, (long long)p, lm_pool_size(pools[pi]), worst);
            free(x); free(w); free(y); free(yr); free(scr);
        }
    /* Naive reference itself on a hand-computed case: x=[1,2,3], w=[1,-1] (K=2), p=1, b=0.5:
     * padded [0,1,2,3,0] → [0-1, 1-2, 2-3, 3-0] + 0.5 = [-0.5, -0.5, -0.5, 3.5]. */
    float x1[3] = {1, 2, 3}, w1[2] = {1, -1}, b1 = 0.5f, y1[4], s1[8];
    lm_conv1d_ref(y1, x1, w1, &b1, 1, 3, 1, 2, 1, 1);
    CHECK(y1[0] == -0.5f && y1[1] == -0.5f && y1[2] == -0.5f && y1[3] == 3.5f, "conv1d_ref known values");
    lm_conv1d(y1, x1, w1, &b1, 1, 3, 1, 2, 1, 1, s1, NULL);
    CHECK(y1[0] == -0.5f && y1[1] == -0.5f && y1[2] == -0.5f && y1[3] == 3.5f, "conv1d known values");
}

/* ---- norms, activations, groupnorm, upsample ---------------------------------------------- */
static int close_f(float a, double b, double rel) { return fabs((double)a - b) <= rel * fabs(b) + 1e-6; }

static void test_elementwise(void)
{
    enum { N = 67 };
    float x[N], w[N], bb[N], y[N];
    fill_random(x, N, 3.0f);
    fill_random(w, N, 1.0f);
    fill_random(bb, N, 1.0f);

    /* rmsnorm: x / sqrt(mean(x²) + eps) · w */
    double ss = 0;
    for (int i = 0; i < N; i++) ss += (double)x[i] * x[i];
    double inv = 1.0 / sqrt(ss / N + 1e-6);
    lm_rmsnorm(y, x, w, N, 1e-6f);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += !close_f(y[i], x[i] * inv * w[i], 1e-5);
    CHECK(bad == 0, "rmsnorm: %d off", bad);
    memcpy(y, x, sizeof y);
    lm_rmsnorm(y, y, NULL, N, 1e-6f);   /* in place, no weight */
    bad = 0;
    for (int i = 0; i < N; i++) bad += !close_f(y[i], x[i] * inv, 1e-5);
    CHECK(bad == 0, "rmsnorm in place: %d off", bad);

    /* layernorm: (x - mean) / sqrt(var + eps) · w + b */
    double mean = 0, var = 0;
    for (int i = 0; i < N; i++) mean += x[i];
    mean /= N;
    for (int i = 0; i < N; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= N;
    lm_layernorm(y, x, w, bb, N, 1e-5f);
    bad = 0;
    for (int i = 0; i < N; i++) bad += !close_f(y[i], (x[i] - mean) / sqrt(var + 1e-5) * w[i] + bb[i], 1e-5);
    CHECK(bad == 0, "layernorm: %d off", bad);

    /* softmax known values and robustness */
    float s3[3] = {1, 2, 3};
    lm_softmax(s3, 3);
    CHECK(close_f(s3[0], 0.09003057317, 1e-6) && close_f(s3[1], 0.24472847105, 1e-6) && close_f(s3[2], 0.66524095577, 1e-6),
          "softmax [1,2,3] = %g %g %g", s3[0], s3[1], s3[2]);
    float big[2] = {1000, 1001};
    lm_softmax(big, 2);
    CHECK(close_f(big[0], 0.26894142137, 1e-6) && close_f(big[1], 0.73105857863, 1e-6), "softmax large inputs");
    float masked[3] = {-INFINITY, 0.5f, -INFINITY};
    lm_softmax(masked, 3);
    CHECK(masked[0] == 0 && masked[1] == 1 && masked[2] == 0, "softmax with -inf mask");

    /* activations: known values, then the direct formulas on random inputs */
    float k[3] = {1.0f, -1.0f, 0.0f}, o[3];
    lm_gelu_erf(o, k, 3);
    CHECK(close_f(o[0], 0.8413447461, 1e-6) && close_f(o[1], -0.1586552539, 1e-5) && o[2] == 0, "gelu_erf known values");
    lm_gelu_tanh(o, k, 3);
    CHECK(close_f(o[0], 0.8411919906, 1e-6) && close_f(o[1], -0.1588080094, 1e-5) && o[2] == 0, "gelu_tanh known values");
    lm_silu(o, k, 3);
    CHECK(close_f(o[0], 0.7310585786, 1e-6) && close_f(o[1], -0.2689414214, 1e-6) && o[2] == 0, "silu known values");
    lm_gelu_erf(y, x, N);
    bad = 0;
    for (int i = 0; i < N; i++) bad += !close_f(y[i], 0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0))), 1e-5);
    CHECK(bad == 0, "gelu_erf formula: %d off", bad);
    lm_gelu_tanh(y, x, N);
    bad = 0;
    for (int i = 0; i < N; i++) {
        double v = x[i];
        bad += !close_f(y[i], 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))), 1e-5);
    }
    CHECK(bad == 0, "gelu_tanh formula: %d off", bad);
    lm_swiglu(y, x, w, N);
    bad = 0;
    for (int i = 0; i < N; i++) bad += !close_f(y[i], x[i] / (1 + exp(-(double)x[i])) * w[i], 1e-5);
    CHECK(bad == 0, "swiglu formula: %d off", bad);

    /* the polynomial-exp forms (AVX2 where the CPU has it) against the same formulas, on
     * inputs from -100 to 100 so that exp's clamps and the scalar tail are both reached */
    float wide[N], yf[N];
    for (int i = 0; i < N; i++) wide[i] = -100.0f + 200.0f * (float)i / (N - 1);
    lm_swiglu_fast(yf, wide, w, N);
    bad = 0;
    for (int i = 0; i < N; i++) bad += !close_f(yf[i], wide[i] / (1 + exp(-(double)wide[i])) * w[i], 1e-6);
    CHECK(bad == 0, "swiglu_fast formula: %d off", bad);
    memcpy(yf, x, sizeof x);
    for (int i = 0; i < N; i++) yf[i] *= 10.0f;
    lm_softmax_fast(yf, N);
    double z = 0.0, mx = -1e30;
    for (int i = 0; i < N; i++) mx = fmax(mx, 10.0 * x[i]);
    for (int i = 0; i < N; i++) z += exp(10.0 * x[i] - mx);
    bad = 0;
    for (int i = 0; i < N; i++) bad += !close_f(yf[i], exp(10.0 * x[i] - mx) / z, 1e-6);
    CHECK(bad == 0, "softmax_fast formula: %d off", bad);
    memcpy(yf, wide, sizeof wide);
    lm_bias_gelu_erf_fast(yf, w, N);
    bad = 0;
    for (int i = 0; i < N; i++) {
        const double v = (double)wide[i] + w[i];
        bad += !close_f(yf[i], 0.5 * v * (1 + erf(v / sqrt(2.0))), 1e-6);
    }
    CHECK(bad == 0, "bias_gelu_erf_fast formula: %d off", bad);

    /* groupnorm: known values (one group of [1,2,3,4]: mean 2.5, var 1.25) */
    float g4[4] = {1, 2, 3, 4}, gy[4];
    lm_groupnorm(gy, g4, NULL, NULL, 2, 2, 1, 0.0f);
    const double s = 1 / sqrt(1.25);
    CHECK(close_f(gy[0], -1.5 * s, 1e-6) && close_f(gy[1], -0.5 * s, 1e-6) && close_f(gy[2], 0.5 * s, 1e-6) &&
          close_f(gy[3], 1.5 * s, 1e-6), "groupnorm known values");
    /* groupnorm: direct formula, 6 channels in 3 groups, 10 positions, weight and bias */
    enum { C = 6, HW = 10, G = 3 };
    float gx[C * HW], gout[C * HW], gw[C], gb[C];
    fill_random(gx, C * HW, 2.0f);
    fill_random(gw, C, 1.0f);
    fill_random(gb, C, 1.0f);
    lm_groupnorm(gout, gx, gw, gb, C, HW, G, 1e-5f);
    bad = 0;
    for (int g = 0; g < G; g++) {
        const int n = C / G * HW;
        double m = 0, v = 0;
        for (int i = 0; i < n; i++) m += gx[g * n + i];
        m /= n;
        for (int i = 0; i < n; i++) v += (gx[g * n + i] - m) * (gx[g * n + i] - m);
        v /= n;
        for (int i = 0; i < n; i++) {
            int ch = g * (C / G) + i / HW;
            bad += !close_f(gout[g * n + i], (gx[g * n + i] - m) / sqrt(v + 1e-5) * gw[ch] + gb[ch], 1e-5);
        }
    }
    CHECK(bad == 0, "groupnorm formula: %d off", bad);

    /* nearest ×2 upsampling */
    float ux[2 * 2 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, uy[2 * 4 * 6];
    lm_upsample_nearest2x(uy, ux, 2, 2, 3);
    bad = 0;
    for (int c = 0; c < 2; c++)
        for (int h = 0; h < 4; h++)
            for (int w2 = 0; w2 < 6; w2++) bad += uy[(c * 4 + h) * 6 + w2] != ux[(c * 2 + h / 2) * 3 + w2 / 2];
    CHECK(bad == 0, "upsample nearest2x: %d off", bad);
}

/* ---- dispatch and bad input ------------------------------------------------------------- */
static void test_dispatch(void)
{
    lm_kernels_force_ref(1);
    CHECK(!strcmp(lm_kernels_name(), "ref"), "force_ref(1) gives %s", lm_kernels_name());
    lm_kernels_force_ref(0);
    const lm_cpu_caps *c = lm_cpu_caps_get();
    const char *want = c->avx512f && c->avx512bw && c->avx512vl && c->avx2 && c->fma && c->f16c ? "avx512"
                       : c->avx2 && c->fma && c->f16c                                            ? "avx2"
                                                                                                 : "ref";
    CHECK(!strcmp(lm_kernels_name(), want), "auto picked %s, want %s", lm_kernels_name(), want);
    CHECK(lm_kernels_select("nonsense") == LOOM_ERR_INVALID_ARG, "unknown set name accepted");

    /* An unsupported type or a too-short stride fills y with NaN rather than reading past rows. */
    float x[32] = {0}, y[2] = {0, 0};
    uint8_t data[128] = {0};
    lm_matrix bad = {.type = 2 /* q4_0: not computed by loom */, .n_in = 32, .n_out = 2, .row_bytes = 18, .data = data};
    lm_matvec(&bad, x, y, NULL);
    CHECK(isnan(y[0]) && isnan(y[1]), "unsupported type did not give NaN");
    lm_matrix shortrow = {.type = LOOM_TYPE_F32, .n_in = 32, .n_out = 2, .row_bytes = 64, .data = data};
    y[0] = y[1] = 0;
    lm_matvec(&shortrow, x, y, NULL);
    CHECK(isnan(y[0]) && isnan(y[1]), "short row stride did not give NaN");
    CHECK(isnan(lm_dot(LOOM_TYPE_Q8_0, data, x, 31)), "q8_0 dot with a partial block accepted");
    int8_t xq[32] = {0};
    float xd[1] = {1.0f};
    lm_matrix f32m = {.type = LOOM_TYPE_F32, .n_in = 32, .n_out = 2, .row_bytes = 128, .data = data};
    y[0] = y[1] = 0;
    lm_matvec_q8(&f32m, xq, xd, y, NULL);
    CHECK(isnan(y[0]) && isnan(y[1]), "matvec_q8 on f32 weights did not give NaN");
}

/* ---- matmul in bf16 (AMX) ------------------------------------------------------------------ */
/* Against lm_matmul_bf16_ref (the same roundings, sums in double): 2e-5 · Σ|x·w| + 1e-6, the
 * f32-summation bound above; an f32 product would miss it by the rounding of the inputs. */
static void check_matmul_bf16(int type, int64_t n_in, int64_t n_out, int64_t n_tok, lm_pool *pool)
{
    float *wf;
    lm_matrix W = make_matrix(type, n_in, n_out, n_tok % 2 ? 0 : 32, &wf);
    float *X = xmalloc((size_t)(n_tok * n_in) * sizeof(float));
    float *Y = xmalloc((size_t)(n_tok * n_out) * sizeof(float));
    float *Yr = xmalloc((size_t)(n_tok * n_out) * sizeof(float));
    float *Yf = xmalloc((size_t)(n_tok * n_out) * sizeof(float));
    fill_random(X, n_tok * n_in, 1.5f);
    lm_matmul_bf16_ref(&W, X, n_tok, Yr);
    lm_matmul_ref(&W, X, n_tok, Yf);
    for (int64_t i = 0; i < n_tok * n_out; i++) Y[i] = NAN;
    const int rc = lm_matmul_bf16(&W, X, n_tok, Y, pool);
    int bad = 0, far = 0, differ = 0;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t r = 0; r < n_out; r++) {
            const double y = Y[t * n_out + r], s = abs_dot(wf + r * n_in, X + t * n_in, n_in);
            if (!(fabs(y - Yr[t * n_out + r]) <= 2e-5 * s + 1e-6)) bad++;
            if (!(fabs(y - Yf[t * n_out + r]) <= 0x1p-7 * s + 1e-6)) far++;   /* bf16: 8 bits */
            differ += y != Yf[t * n_out + r];
        }
    CHECK(rc == 0 && bad == 0 && far == 0, "matmul_bf16 %s %lldx%lld n_tok=%lld threads=%d: rc %d, %d values off the "
          "bf16 reference, %d off f32 by more than 2^-7", loom_type_name(type), (long long)n_out, (long long)n_in,
          (long long)n_tok, lm_pool_size(pool), rc, bad, far);
    CHECK(n_in < 32 || differ > 0, "matmul_bf16 %s: every value equal to f32's (not rounded?)", loom_type_name(type));
    free(X); free(Y); free(Yr); free(Yf); free(wf); free((void *)W.data);
}

static void test_matmul_bf16(lm_pool *pools[3])
{
    float *wf;
    lm_matrix W = make_matrix(LOOM_TYPE_F16, 64, 48, 0, &wf);
    float *X = xmalloc(40 * 64 * sizeof(float)), *Y = xmalloc(40 * 48 * sizeof(float));
    float *Yb = xmalloc(40 * 48 * sizeof(float));
    fill_random(X, 40 * 64, 1.0f);
    if (!lm_cpu_caps_get()->amx_bf16) {
        CHECK(lm_matmul_bf16(&W, X, 40, Y, NULL) == LOOM_ERR_UNSUPPORTED, "matmul_bf16 without AMX: unsupported");
        printf("note: no AMX bf16 on this CPU: the bf16 products are not run\n");
    } else {
        for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
            const int type = k_types[ti];
            const int64_t n_in = type == LOOM_TYPE_Q8_0 ? 96 : 100;   /* 100: k padded to 128 */
            const int64_t toks[] = {1, 16, 17, 31, 32, 33, 70};
            for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++)
                check_matmul_bf16(type, n_in, 33, toks[i], pools[i % 3]);
            check_matmul_bf16(type, 384, 64, 196, pools[2]);          /* whole 32×32 blocks */
            check_matmul_bf16(type, 1536, 301, 45, pools[1]);
        }
        /* lm_matmul takes the path when the pool asks, from LM_MATMUL_BF16_MIN_TOK rows on */
        lm_pool_set_matmul_bf16(pools[2], 1);
        CHECK(lm_pool_matmul_bf16(pools[2]) == 1 && lm_pool_matmul_bf16(pools[1]) == 0 && lm_pool_matmul_bf16(NULL) == 0,
              "the pool's setting");
        for (int n = LM_MATMUL_BF16_MIN_TOK - 1; n <= LM_MATMUL_BF16_MIN_TOK + 24; n += 25) {
            lm_matmul(&W, X, n, Y, pools[2]);
            lm_matmul_bf16(&W, X, n, Yb, pools[1]);
            const int same = !memcmp(Y, Yb, (size_t)(n * 48) * sizeof *Y);
            CHECK(same == (n >= LM_MATMUL_BF16_MIN_TOK), "lm_matmul on a bf16 pool, %d rows: %s bf16's", n,
                  same ? "equal to" : "not");
        }
        lm_pool_set_matmul_bf16(pools[2], 0);
        lm_matmul(&W, X, 40, Y, pools[2]);
        CHECK(memcmp(Y, Yb, 16 * 48 * sizeof *Y) != 0, "lm_matmul back on f32");
        lm_kernels_select("ref");
        CHECK(lm_matmul_bf16(&W, X, 40, Y, NULL) == LOOM_ERR_UNSUPPORTED, "matmul_bf16 with the reference kernels forced");
        lm_kernels_select("auto");
    }
    free(X); free(Y); free(Yb); free(wf); free((void *)W.data);
}

int main(void)
{
    lm_pool *p1 = lm_pool_create(1), *p2 = lm_pool_create(2);
    lm_pool *pools[3] = {NULL, p1, p2};
    if (!p1 || !p2) {
        printf("pool creation failed\n0 passed, 1 failed\n");
        return 1;
    }
    test_dispatch();
    int n_sets = 0;
    for (size_t i = 0; i < sizeof k_sets / sizeof k_sets[0]; i++) {
        if (lm_kernels_select(k_sets[i]) != 0) {
            printf("note: kernel set %s not available on this CPU, skipped\n", k_sets[i]);
            continue;
        }
        n_sets++;
        test_dot_matvec(k_sets[i], pools);
        test_q8_int8(k_sets[i], pools);
        test_row_convert(k_sets[i]);
        test_matvec_multi(k_sets[i]);
        test_matmul(k_sets[i], pools, n_sets == 1);
    }
    lm_kernels_select("auto");
    CHECK(n_sets >= 1, "no kernel set ran");
    test_matmul_bf16(pools);
    test_matmul_any_threads();
    test_attn_sum_rows();
    test_rope();
    test_conv(pools);
    test_elementwise();
    lm_pool_free(&p1);
    lm_pool_free(&p2);
    lm_kernels_scratch_release();
    return finish();
}
