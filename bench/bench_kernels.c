/*
 * Kernel benchmark: memory bandwidth (stream-like read and copy), GEMV per weight type
 * against it, and GEMM against OpenBLAS's own sgemm, all measured in the same run.
 *
 *   OPENBLAS_CORETYPE=Haswell build/bench/bench_kernels [reps [gemv|cache|multi|gemm|blocks]]
 *
 * reps (default 10): passes over each working set; the optional last word runs only that
 * section (bandwidth is always measured: the other sections are reported against it).
 *
 * blocks: lm_sgemm_pool (a product cut into blocks by its shape alone, one OpenBLAS call
 * each, so results do not depend on the thread count) against one OpenBLAS call on as
 * many of OpenBLAS's own threads, on the shapes of loom's prefill, encoders and codecs.
 *
 * GEMV working sets cycle through copies of the matrix totalling >= 512 MiB so every call
 * reads its weights from DRAM, not from a cache. Times are per call: median and best of
 * all calls. The machine is shared, so the median is the honest number and the best shows
 * what the kernel does when it has the memory system to itself.
 */
#include "lib/core/blas.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/core/kernels.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct { double median, best; } timing;

static timing summarize(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return (timing){t[n / 2], t[0]};
}

static void *xalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static uint64_t g_rng = 88172645463325252ull;
static float frand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* Give every 4 KiB of a buffer distinct contents. The host of this VM may merge identical
 * pages (KSM); merged pages would be read from cache and inflate "DRAM" numbers. */
static void fill_unique(uint64_t *p, size_t n_words)
{
    for (size_t i = 0; i < n_words; i++) p[i] = (i + 1) * 0x9E3779B97F4A7C15ull;
}

/* Make copy c of a typed matrix differ from the other copies at least every 1 KiB while
 * keeping every value valid (finite floats, in-range int8). */
static void perturb_copy(uint8_t *m, int type, int64_t n_in, int64_t n_out, int c)
{
    const size_t rb = lm_row_bytes(type, n_in);
    for (int64_t r = 0; r < n_out; r++) {
        uint8_t *row = m + (size_t)r * rb;
        const float v = (float)((c * 131 + r) % 1000) * 1e-3f;
        if (type == LOOM_TYPE_F32)
            for (int64_t i = 0; i < n_in; i += 256) ((float *)row)[i] = v;
        else if (type == LOOM_TYPE_F16 || type == LOOM_TYPE_BF16)
            for (int64_t i = 0; i < n_in; i += 512)
                ((uint16_t *)row)[i] = type == LOOM_TYPE_F16 ? lm_f32_to_f16(v) : lm_f32_to_bf16(v);
        else if (type == LOOM_TYPE_Q8_0)
            for (int64_t b = 0; b < n_in / LM_QK8_0; b += 16) ((lm_block_q8_0 *)row)[b].qs[0] = (int8_t)((c * 37 + r) % 127);
    }
}

/* ---- bandwidth -------------------------------------------------------------------------- */
typedef struct {
    const uint64_t *src;
    uint64_t       *dst;
    size_t          n;         /* uint64 words */
    uint64_t        sink[64];  /* per-thread result so the reads are not optimized away */
} bw_task;

/* The read stream with 64-byte loads when the CPU has AVX-512 (the kernels use them too,
 * and a scalar loop would measure the core, not the memory). */
#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static uint64_t read_avx512(const uint64_t *p, long long lo, long long hi)
{
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    long long i = lo;
    for (; i + 32 <= hi; i += 32) {
        a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(p + i));
        a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(p + i + 8));
        a2 = _mm512_add_epi64(a2, _mm512_loadu_si512(p + i + 16));
        a3 = _mm512_add_epi64(a3, _mm512_loadu_si512(p + i + 24));
    }
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
}
#endif

static void read_part(void *arg, int ith, int nth)
{
    bw_task *t = arg;
    long long lo, hi;
    lm_split((long long)t->n, ith, nth, &lo, &hi);
#if defined(__x86_64__)
    if (lm_cpu_caps_get()->avx512f) {
        t->sink[ith] = read_avx512(t->src, lo, hi);
        return;
    }
#endif
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (long long i = lo; i + 8 <= hi; i += 8) {
        s0 += t->src[i]; s1 += t->src[i + 1]; s2 += t->src[i + 2]; s3 += t->src[i + 3];
        s4 += t->src[i + 4]; s5 += t->src[i + 5]; s6 += t->src[i + 6]; s7 += t->src[i + 7];
    }
    t->sink[ith] = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

static void copy_part(void *arg, int ith, int nth)
{
    bw_task *t = arg;
    long long lo, hi;
    lm_split((long long)t->n, ith, nth, &lo, &hi);
    memcpy(t->dst + lo, t->src + lo, (size_t)(hi - lo) * sizeof(uint64_t));
}

/* GB/s (1e9) for read (bytes read) and copy (bytes read + written, as STREAM counts),
 * timed per 16 MiB chunk while cycling through 512 MiB: the same method and about the
 * same call length as the GEMV timings below, so the two share the same noise. */
static void bandwidth(lm_pool *pool, int passes, timing *rd, timing *cp)
{
    const size_t bytes = (size_t)512 << 20, chunk = (size_t)16 << 20;
    const int n_chunks = (int)(bytes / chunk);
    uint64_t *a = xalloc(bytes), *b = xalloc(bytes);
    fill_unique(a, bytes / sizeof(uint64_t));
    fill_unique(b, bytes / sizeof(uint64_t));
    for (size_t i = 0; i < bytes / sizeof(uint64_t); i++) b[i] = ~b[i];
    bw_task t = {.n = chunk / sizeof(uint64_t)};
    int n = passes * n_chunks;
    double *tr = xalloc((size_t)n * sizeof(double)), *tc = xalloc((size_t)n * sizeof(double));
    for (int i = -n_chunks; i < n; i++) {   /* first pass warms up */
        size_t off = (size_t)((i + n_chunks) % n_chunks) * (chunk / sizeof(uint64_t));
        t.src = a + off;
        t.dst = b + off;
        double t0 = now_s();
        lm_pool_run(pool, read_part, &t);
        double t1 = now_s();
        t.src = b + off;   /* copy from the other buffer so the source is not cached */
        t.dst = a + off;
        lm_pool_run(pool, copy_part, &t);
        double t2 = now_s();
        if (i >= 0) {
            tr[i] = -(double)chunk / (t1 - t0) / 1e9;   /* negated: summarize sorts ascending */
            tc[i] = -2.0 * (double)chunk / (t2 - t1) / 1e9;
        }
    }
    *rd = summarize(tr, n);
    *cp = summarize(tc, n);
    rd->median = -rd->median; rd->best = -rd->best;
    cp->median = -cp->median; cp->best = -cp->best;
    free(tr); free(tc); free(a); free(b);
}

/* ---- GEMV --------------------------------------------------------------------------------- */
static const int k_types[] = {LOOM_TYPE_F32, LOOM_TYPE_F16, LOOM_TYPE_BF16, LOOM_TYPE_Q8_0};

typedef struct {
    uint8_t *data;      /* n_copies consecutive matrices */
    size_t   mat_bytes;
    int      n_copies;
} weight_set;

static weight_set make_weights(int type, int64_t n_in, int64_t n_out, size_t min_total)
{
    weight_set ws;
    size_t rb = lm_row_bytes(type, n_in);
    ws.mat_bytes = rb * (size_t)n_out;
    ws.n_copies = (int)((min_total + ws.mat_bytes - 1) / ws.mat_bytes);
    if (ws.n_copies < 1) ws.n_copies = 1;
    ws.data = xalloc(ws.mat_bytes * (size_t)ws.n_copies);
    float *row = xalloc((size_t)n_in * sizeof(float));
    for (int64_t r = 0; r < n_out; r++) {
        for (int64_t i = 0; i < n_in; i++) row[i] = frand();
        lm_row_from_f32(type, row, ws.data + (size_t)r * rb, n_in);
    }
    for (int c = 1; c < ws.n_copies; c++) {
        memcpy(ws.data + (size_t)c * ws.mat_bytes, ws.data, ws.mat_bytes);
        perturb_copy(ws.data + (size_t)c * ws.mat_bytes, type, n_in, n_out, c);
    }
    free(row);
    return ws;
}

/* The read-stream buffer the GEMV timings are paired with (512 MiB, never cached). */
static uint64_t *g_stream;
static size_t    g_stream_words, g_stream_pos;

/* Seconds to read `bytes` of the stream buffer with the pool (the next region each call). */
static double time_read(lm_pool *pool, size_t bytes)
{
    bw_task t = {.n = bytes / sizeof(uint64_t)};
    if (g_stream_pos + t.n > g_stream_words) g_stream_pos = 0;
    t.src = g_stream + g_stream_pos;
    g_stream_pos += t.n;
    double t0 = now_s();
    lm_pool_run(pool, read_part, &t);
    return now_s() - t0;
}

typedef struct {
    timing gemv_s;      /* seconds per GEMV                          */
    double read_gbs;    /* median GB/s of the paired reads           */
    double ratio;       /* median of (read time / GEMV time) per pair */
} gemv_result;

/* Each GEMV call is followed by a read of as many bytes from the stream buffer on the same
 * threads: the pair sees the same load from the rest of the machine, so the median ratio
 * "GEMV GB/s ÷ read GB/s" is stable even when absolute times are not. */
static gemv_result time_gemv(const weight_set *ws, int type, int64_t n_in, int64_t n_out, lm_pool *pool,
                             int passes, int paired)
{
    float *x = xalloc((size_t)n_in * sizeof(float)), *y = xalloc((size_t)n_out * sizeof(float));
    for (int64_t i = 0; i < n_in; i++) x[i] = frand();
    lm_matrix W = {.type = type, .n_in = n_in, .n_out = n_out, .row_bytes = lm_row_bytes(type, n_in)};
    int n = passes * ws->n_copies;
    double *t = xalloc((size_t)n * sizeof(double)), *rg = xalloc((size_t)n * sizeof(double));
    double *ratio = xalloc((size_t)n * sizeof(double));
    for (int c = 0; c < ws->n_copies; c++) {   /* warm-up pass */
        W.data = ws->data + (size_t)c * ws->mat_bytes;
        lm_matvec(&W, x, y, pool);
    }
    for (int i = 0; i < n; i++) {
        W.data = ws->data + (size_t)(i % ws->n_copies) * ws->mat_bytes;
        double t0 = now_s();
        lm_matvec(&W, x, y, pool);
        t[i] = now_s() - t0;
        double tr = paired ? time_read(pool, ws->mat_bytes) : t[i];
        rg[i] = ws->mat_bytes / tr / 1e9;
        ratio[i] = tr / t[i];
    }
    gemv_result r = {.gemv_s = summarize(t, n), .read_gbs = summarize(rg, n).median,
                     .ratio = summarize(ratio, n).median};
    free(t); free(rg); free(ratio); free(x); free(y);
    return r;
}

/* ---- pool overhead ------------------------------------------------------------------------ */
static void empty_task(void *arg, int ith, int nth) { (void)arg; (void)ith; (void)nth; }

/* Median and best seconds of one lm_pool_run of an empty task, back to back. */
static timing time_pool_round_trip(lm_pool *pool)
{
    enum { RUNS = 20000 };
    double *t = xalloc(RUNS * sizeof(double));
    for (int k = 0; k < RUNS; k++) {
        double t0 = now_s();
        lm_pool_run(pool, empty_task, NULL);
        t[k] = now_s() - t0;
    }
    timing r = summarize(t, RUNS);
    free(t);
    return r;
}

/* ---- Q8_0 × q8 activations (lm_matvec_q8, what the decoder's decode steps use) ------------
 * llama.cpp's way: x quantized once to int8 blocks, then integer dots (VNNI vpdpbusd or
 * vpmaddubsw) and one float FMA per block pair. Timed on the same in-cache matrix as the
 * float-x kernel (x quantization not timed: once per GEMV, amortized over all rows). */
static double time_q8_int8_in_cache(void)
{
    const int64_t n_in = 1024, n_out = 256;
    weight_set ws = make_weights(LOOM_TYPE_Q8_0, n_in, n_out, 0);
    const lm_matrix W = {.type = LOOM_TYPE_Q8_0, .n_in = n_in, .n_out = n_out,
                         .row_bytes = lm_row_bytes(LOOM_TYPE_Q8_0, n_in), .data = ws.data};
    float x[1024], y[256], xd[32];
    int8_t xq[1024];
    for (int i = 0; i < n_in; i++) x[i] = frand();
    lm_quantize_q8(x, n_in, xq, xd);
    enum { RUNS = 2000 };
    double *t = xalloc(RUNS * sizeof(double));
    for (int k = 0; k < RUNS; k++) {
        double t0 = now_s();
        lm_matvec_q8(&W, xq, xd, y, NULL);
        t[k] = now_s() - t0;
    }
    double gb = ws.mat_bytes / summarize(t, RUNS).median / 1e9;
    free(t);
    free(ws.data);
    return gb;
}

/* ---- several inputs at once (decode rows of guided pairs, beams, best-of candidates) --------
 * In cache (256 x 1024, 1 thread): nx inputs as nx lone matvecs (lm_matvec / lm_matvec_q8 on
 * int8 activations) and as one lm_matvec_multi / lm_matvec_q8_multi call, alternating, median of
 * each. The results are equal bit for bit (tests/test_kernels.c); the multi call widens each
 * weight block once per four inputs. */
static void time_multi(int type, int int8, int nx, double *lone_s, double *multi_s)
{
    enum { N_IN = 1024, N_OUT = 256, NX_MAX = 8, RUNS = 1000 };
    weight_set ws = make_weights(type, N_IN, N_OUT, 0);
    const lm_matrix W = {.type = type, .n_in = N_IN, .n_out = N_OUT, .row_bytes = lm_row_bytes(type, N_IN), .data = ws.data};
    static float x[NX_MAX * N_IN], ys[NX_MAX * N_OUT], xd[NX_MAX * N_IN / 32];
    static int8_t xq[NX_MAX * N_IN];
    float *y[NX_MAX];
    for (int i = 0; i < NX_MAX * N_IN; i++) x[i] = frand();
    for (int j = 0; j < NX_MAX; j++) {
        y[j] = ys + j * N_OUT;
        lm_quantize_q8(x + j * N_IN, N_IN, xq + j * N_IN, xd + j * (N_IN / 32));
    }
    double *tl = xalloc(RUNS * sizeof(double)), *tm = xalloc(RUNS * sizeof(double));
    for (int k = 0; k < RUNS; k++) {
        double t0 = now_s();
        for (int j = 0; j < nx; j++) {
            if (int8) lm_matvec_q8(&W, xq + j * N_IN, xd + j * (N_IN / 32), y[j], NULL);
            else lm_matvec(&W, x + j * N_IN, y[j], NULL);
        }
        double t1 = now_s();
        if (int8) lm_matvec_q8_multi(&W, xq, xd, y, nx);
        else lm_matvec_multi(&W, x, N_IN, y, nx);
        tl[k] = t1 - t0;
        tm[k] = now_s() - t1;
    }
    *lone_s = summarize(tl, RUNS).median;
    *multi_s = summarize(tm, RUNS).median;
    free(tl);
    free(tm);
    free(ws.data);
}

/* ---- GEMM ---------------------------------------------------------------------------------- */
typedef struct {
    const lm_matrix *W;
    const float     *X;
    float           *Y;
    int64_t          n_tok;
    lm_pool         *pool;
} gemm_args;

static void run_sgemm(void *p)
{
    gemm_args *a = p;
    lm_sgemm(LM_NO_TRANS, LM_TRANS, (int)a->n_tok, (int)a->W->n_out, (int)a->W->n_in, 1.0f,
                a->X, (int)a->W->n_in, a->W->data, (int)a->W->n_in, 0.0f, a->Y, (int)a->W->n_out);
}

static void run_matmul(void *p)
{
    gemm_args *a = p;
    lm_matmul(a->W, a->X, a->n_tok, a->Y, a->pool);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;
    const char *only = argc > 2 ? argv[2] : NULL;
#define SECTION(name) (!only || !strcmp(only, name))
    char model[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) snprintf(model, sizeof model, "%s", c + 2);
                model[strcspn(model, "\n")] = 0;
                break;
            }
        fclose(f);
    }
    printf("cpu: %s, %d cpus, features: %s, kernels: %s\n", model, loom_cpu_count(), lm_cpu_features(), lm_kernels_name());

    lm_pool *pools[2] = {lm_pool_create(1), lm_pool_create(2)};
    if (!pools[0] || !pools[1]) return 1;

    timing rd[2], cp[2];
    for (int p = 0; p < 2; p++) bandwidth(pools[p], reps, &rd[p], &cp[p]);
    printf("\n## memory bandwidth (16 MiB chunks cycling through 512 MiB, GB/s = 1e9 B/s, median / best)\n");
    printf("| threads | read GB/s | copy GB/s (r+w) |\n|---|---|---|\n");
    for (int p = 0; p < 2; p++)
        printf("| %d | %.1f / %.1f | %.1f / %.1f |\n", p + 1, rd[p].median, rd[p].best, cp[p].median, cp[p].best);

    const int64_t N = 4096;
    if (SECTION("gemv")) {
    timing rt = time_pool_round_trip(pools[1]);
    printf("\npool round trip (empty task, 2 threads, back to back): median %.1f us, best %.1f us\n",
           rt.median * 1e6, rt.best * 1e6);
    g_stream_words = ((size_t)512 << 20) / sizeof(uint64_t);
    g_stream = xalloc(g_stream_words * sizeof(uint64_t));
    fill_unique(g_stream, g_stream_words);
    printf("\n## GEMV %lldx%lld, weights cycled through >= 512 MiB; each call paired with a read of the same bytes\n",
           (long long)N, (long long)N);
    printf("| type | threads | weight MB | ms median | ms best | GB/s median | GB/s best | paired read GB/s | GEMV / read (median of pairs) |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
        int type = k_types[ti];
        weight_set ws = make_weights(type, N, N, (size_t)512 << 20);
        for (int p = 0; p < 2; p++) {
            gemv_result r = time_gemv(&ws, type, N, N, pools[p], reps, 1);
            printf("| %s | %d | %.1f | %.3f | %.3f | %.1f | %.1f | %.1f | %.0f %% |\n", loom_type_name(type), p + 1,
                   ws.mat_bytes / 1e6, r.gemv_s.median * 1e3, r.gemv_s.best * 1e3, ws.mat_bytes / r.gemv_s.median / 1e9,
                   ws.mat_bytes / r.gemv_s.best / 1e9, r.read_gbs, 100 * r.ratio);
        }
        free(ws.data);
    }
    free(g_stream);
    }

    /* In-cache GEMV (256 x 1024, repeated): the kernels' compute throughput, to show
     * whether DRAM or arithmetic is the limit. */
    if (SECTION("cache")) {
    printf("\n## GEMV in cache (256x1024, same matrix repeated, 1 thread): compute limit\n");
    printf("| type | GB/s of weights (median) | x DRAM read BW (1 thread, median) |\n|---|---|---|\n");
    for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
        int type = k_types[ti];
        weight_set ws = make_weights(type, 1024, 256, 0);
        gemv_result r = time_gemv(&ws, type, 1024, 256, pools[0], 2000, 0);
        double gb = ws.mat_bytes / r.gemv_s.median / 1e9;
        printf("| %s | %.1f | %.1fx |\n", loom_type_name(type), gb, gb / rd[0].median);
        free(ws.data);
    }
    double i8 = time_q8_int8_in_cache();
    printf("| q8_0 x q8 activations, int8 dots (lm_matvec_q8) | %.1f | %.1fx |\n", i8, i8 / rd[0].median);
    }

    if (SECTION("multi")) {
    printf("\n## GEMV of several inputs in cache (256x1024, 1 thread): nx lone calls vs one multi call, median us\n");
    printf("| weights | nx | lone calls us | multi us | speed-up |\n|---|---|---|---|---|\n");
    for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0] + 1; ti++) {
        const int int8 = ti == sizeof k_types / sizeof k_types[0], type = int8 ? LOOM_TYPE_Q8_0 : k_types[ti];
        static const int nxs[] = {2, 4, 8};
        for (int i = 0; i < 3; i++) {
            double lone, multi;
            time_multi(type, int8, nxs[i], &lone, &multi);
            printf("| %s%s | %d | %.1f | %.1f | %.2fx |\n", loom_type_name(type), int8 ? " x q8 activations" : "",
                   nxs[i], lone * 1e6, multi * 1e6, lone / multi);
        }
    }
    }

    /* GEMM: M = 512 tokens, N = 4096 outputs, K = 4096 inputs. */
    if (SECTION("gemm")) {
    const int64_t M = 512;
    float *X = xalloc((size_t)(M * N) * sizeof(float)), *Y = xalloc((size_t)(M * N) * sizeof(float));
    for (int64_t i = 0; i < M * N; i++) X[i] = frand();
    const double flop = 2.0 * (double)M * (double)N * (double)N;
    const int rounds = reps > 5 ? 5 : reps;
    printf("\n## GEMM %lld tokens x %lld in x %lld out, 2 threads (OpenBLAS threads = 2), best of %d interleaved rounds\n",
           (long long)M, (long long)N, (long long)N, rounds);
    /* Peer and every loom type run in turn each round, so all see the same machine load. */
    weight_set ws[5];
    lm_matrix  W[5];
    for (int k = 0; k < 5; k++) {
        int type = k == 0 ? LOOM_TYPE_F32 : k_types[k - 1];
        ws[k] = make_weights(type, N, N, 0);
        W[k] = (lm_matrix){.type = type, .n_in = N, .n_out = N, .row_bytes = lm_row_bytes(type, N), .data = ws[k].data};
    }
    /* k 5..8: the same four types in bf16 on AMX (a pool that asks for it), where the CPU has it */
    lm_pool *bf16_pool = lm_pool_create(2);
    lm_pool_set_matmul_bf16(bf16_pool, 1);
    const int n_k = lm_cpu_caps_get()->amx_bf16 && bf16_pool ? 9 : 5;
    double best[9];
    for (int k = 0; k < n_k; k++) best[k] = 1e30;
    for (int r = -1; r < rounds; r++)   /* round -1 warms up */
        for (int k = 0; k < n_k; k++) {
            gemm_args ga = {.W = &W[k < 5 ? k : k - 4], .X = X, .Y = Y, .n_tok = M, .pool = k < 5 ? pools[1] : bf16_pool};
            if (k == 0) lm_blas_set_threads(2);   /* the peer on OpenBLAS's own two threads */
            double t0 = now_s();
            if (k == 0) run_sgemm(&ga);
            else run_matmul(&ga);
            double dt = now_s() - t0;
            if (k == 0) lm_blas_set_threads(1);   /* loom's pools share products out themselves */
            if (r >= 0 && dt < best[k]) best[k] = dt;
        }
    const double peak = flop / best[0] / 1e9;
    printf("| kernel | GFLOP/s | ratio to OpenBLAS sgemm |\n|---|---|---|\n");
    printf("| %s sgemm (f32, peer) | %.1f | 1.00 |\n", lm_blas_name(), peak);
    for (int k = 1; k < 5; k++)
        printf("| loom lm_matmul %s | %.1f | %.2f |\n", loom_type_name(W[k].type), flop / best[k] / 1e9,
               flop / best[k] / 1e9 / peak);
    for (int k = 5; k < n_k; k++)
        printf("| loom lm_matmul %s, bf16 products (AMX) | %.1f | %.2f |\n", loom_type_name(W[k - 4].type),
               flop / best[k] / 1e9, flop / best[k] / 1e9 / peak);
    if (n_k == 5) printf("(no AMX bf16 on this CPU: no bf16 rows)\n");
    lm_pool_free(&bf16_pool);
    for (int k = 0; k < 5; k++) free(ws[k].data);
    free(X);
    free(Y);
    }
    /* Pooled sgemm by blocks against one OpenBLAS call: M x N x K (C is M x N). */
    if (SECTION("blocks")) {
    static const int shapes[][3] = {{600, 256, 256}, {600, 1024, 256}, {600, 256, 1024}, {128, 4096, 1152},
                                    {64, 4096, 576}, {256, 768, 192}, {64, 368, 192}, {2048, 2048, 2048}};
    const int rounds = reps > 5 ? 5 : reps;
    printf("\n## lm_sgemm_pool (blocks by shape) against one OpenBLAS call, best of %d interleaved rounds\n", rounds);
    printf("| M x N x K | threads | OpenBLAS GFLOP/s (peer) | lm_sgemm_pool GFLOP/s | ratio |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int m = shapes[i][0], n = shapes[i][1], k = shapes[i][2];
        float *A = xalloc((size_t)m * k * sizeof(float)), *B = xalloc((size_t)k * n * sizeof(float)),
              *C = xalloc((size_t)m * n * sizeof(float));
        for (size_t j = 0; j < (size_t)m * k; j++) A[j] = frand();
        for (size_t j = 0; j < (size_t)k * n; j++) B[j] = frand();
        const double flop = 2.0 * m * n * k;
        const int calls = (int)(4e9 / flop) + 1;   /* about 20 ms of work per timing */
        for (int p = 0; p < 2; p++) {
            double best[2] = {1e30, 1e30};
            for (int r = -1; r < rounds; r++)   /* round -1 warms up */
                for (int w = 0; w < 2; w++) {
                    if (w == 0) lm_blas_set_threads(p + 1);
                    const double t0 = now_s();
                    for (int c = 0; c < calls; c++)
                        if (w == 0) lm_sgemm(LM_NO_TRANS, LM_NO_TRANS, m, n, k, 1.0f, A, k, B, n, 0.0f, C, n);
                        else lm_sgemm_pool(pools[p], LM_NO_TRANS, LM_NO_TRANS, m, n, k, 1.0f, A, k, B, n, 0.0f, C, n);
                    const double dt = (now_s() - t0) / calls;
                    if (w == 0) lm_blas_set_threads(1);
                    if (r >= 0 && dt < best[w]) best[w] = dt;
                }
            printf("| %d x %d x %d | %d | %.1f | %.1f | %.2f |\n", m, n, k, p + 1, flop / best[0] / 1e9,
                   flop / best[1] / 1e9, best[0] / best[1]);
        }
        free(A), free(B), free(C);
    }
    }
    lm_pool_free(&pools[0]);
    lm_pool_free(&pools[1]);
    lm_kernels_scratch_release();
    return 0;
}
