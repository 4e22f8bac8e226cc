/* GEMM through OpenBLAS, loaded at first use with a kernel core that fits this CPU (blas.h). */
#include "lib/core/blas.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "include/loom.h"
#include "lib/core/error.h"
#include "lib/core/kernels.h"
#include "lib/core/threadpool.h"

/* The CBLAS ABI (cblas.h): enum values every implementation shares. */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int, const double *, int,
                         double, double *, int);

/* RTLD_DEEPBIND: OpenBLAS's many references to its own symbols resolve in its own scope first
 * instead of after every library loom links: 12 ms less per process while FFmpeg's many were
 * linked, 0.6 ms since FFmpeg is loaded at first use (ffmpeg.h).
 * AddressSanitizer refuses it, so sanitizer builds load it plainly. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LM_BLAS_NO_DEEPBIND 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(LM_BLAS_NO_DEEPBIND)
#define LM_BLAS_DLOPEN_FLAGS (RTLD_LAZY | RTLD_LOCAL)
#else
#define LM_BLAS_DLOPEN_FLAGS (RTLD_LAZY | RTLD_LOCAL | RTLD_DEEPBIND)
#endif

static struct {
    sgemm_fn sgemm;
    dgemm_fn dgemm;
    void (*set_threads)(int);
    char name[64];
} g_blas;
static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;

const char *lm_blas_core_for_cpu(void)
{
    const lm_cpu_caps *c = lm_cpu_caps_get();
    if (c->avx512f && c->avx512bw && c->avx512dq && c->avx512vl) return "SkylakeX";
    if (c->avx2 && c->fma) return "Haswell";
    return NULL;
}

static void blas_load(void)
{
    /* OpenBLAS reads these once, in its constructor, during dlopen; a core the user set wins.
     * NUM_THREADS=1: loom shares products out across its own pool (lm_sgemm_pool), so OpenBLAS
     * starts no threads of its own (they spun beside the pool's and took its cores); a count
     * the user set is overridden below, after the load. */
    struct { const char *name, *value; } env[] = {
        {"OPENBLAS_CORETYPE", lm_blas_core_for_cpu()},
        {"OPENBLAS_NUM_THREADS", "1"},
    };
    int set[2] = {0};
    for (int i = 0; i < 2; i++)
        if (env[i].value && !getenv(env[i].name)) set[i] = setenv(env[i].name, env[i].value, 0) == 0;
    void *h = dlopen("libopenblas.so.0", LM_BLAS_DLOPEN_FLAGS);
    if (!h) h = dlopen("libopenblas.so", LM_BLAS_DLOPEN_FLAGS);
    for (int i = 0; i < 2; i++)
        if (set[i]) unsetenv(env[i].name);
    const char *why = h ? NULL : dlerror();
    if (h) {
        g_blas.sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
        g_blas.dgemm = (dgemm_fn)dlsym(h, "cblas_dgemm");
        g_blas.set_threads = (void (*)(int))dlsym(h, "openblas_set_num_threads");
        const char *(*corename)(void) = (const char *(*)(void))dlsym(h, "openblas_get_corename");
        if (!g_blas.sgemm || !g_blas.dgemm) {
            g_blas.sgemm = NULL, g_blas.dgemm = NULL, g_blas.set_threads = NULL;
            why = "cblas_sgemm or cblas_dgemm missing";
        } else {
            if (g_blas.set_threads) g_blas.set_threads(1);
            snprintf(g_blas.name, sizeof g_blas.name, "OpenBLAS %s", corename ? corename() : "");
            lm_log(LOOM_LOG_DEBUG, "matrix products: %s", g_blas.name);
        }
    }
    if (!g_blas.sgemm) {
        snprintf(g_blas.name, sizeof g_blas.name, "reference");
        lm_log(LOOM_LOG_WARN, "OpenBLAS (libopenblas.so.0) could not be loaded (%s): matrix products use "
               "loom's reference GEMM, which is much slower; install libopenblas0", why ? why : "?");
    }
}

static void blas_ready(void) { pthread_once(&g_blas_once, blas_load); }

const char *lm_blas_name(void)
{
    blas_ready();
    return g_blas.name;
}

const char *loom_blas_name(void) { return lm_blas_name(); }

void lm_blas_set_threads(int n)
{
    blas_ready();
    if (g_blas.set_threads) g_blas.set_threads(n);
}

/* One body for both precisions; (i, p) of op(A) and (p, j) of op(B) by the transpose flags. */
#define LM_GEMM_REF(T)                                                                          \
    for (int i = 0; i < m; i++)                                                                 \
        for (int j = 0; j < n; j++) {                                                           \
            T s = 0;                                                                            \
            for (int p = 0; p < k; p++)                                                         \
                s += (ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p]) *                   \
                     (tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j]);                    \
            T *c = &C[(size_t)i * ldc + j];                                                     \
            *c = alpha * s + (beta == 0 ? 0 : beta * *c);                                       \
        }

void lm_sgemm_ref(lm_trans ta, lm_trans tb, int m, int n, int k, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc)
{
    LM_GEMM_REF(float)
}

void lm_dgemm_ref(lm_trans ta, lm_trans tb, int m, int n, int k, double alpha, const double *A, int lda,
                  const double *B, int ldb, double beta, double *C, int ldc)
{
    LM_GEMM_REF(double)
}

static int cblas_trans(lm_trans t) { return t == LM_TRANS ? CBLAS_TRANS : CBLAS_NO_TRANS; }

void lm_sgemm(lm_trans ta, lm_trans tb, int m, int n, int k, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc)
{
    blas_ready();
    if (g_blas.sgemm)
        g_blas.sgemm(CBLAS_ROW_MAJOR, cblas_trans(ta), cblas_trans(tb), m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        lm_sgemm_ref(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

typedef struct sgemm_task {
    lm_trans     ta, tb;
    int          m, n, k, lda, ldb, ldc, by_rows, blk;
    float        alpha, beta;
    const float *A, *B;
    float       *C;
} sgemm_task;

/* About 384 wide: each block's call repacks the other operand whole, and 1-thread products
 * stayed within 8 % of one call (docs/BENCHMARKS.md); blocks of 64 lost up to 30 %. */
int lm_sgemm_block_width(int dim)
{
    int n_blocks = (dim + 383) / 384;
    if (n_blocks > 64) n_blocks = 64;
    const int per = (dim + n_blocks - 1) / n_blocks;
    return (per + 15) / 16 * 16;
}

/* Whole blocks shared out in near-equal runs, one OpenBLAS call per block. */
static void sgemm_part(void *arg, int ith, int nth)
{
    const sgemm_task *t = arg;
    const int dim = t->by_rows ? t->m : t->n;
    long long b0, b1;
    lm_split((dim + t->blk - 1) / t->blk, ith, nth, &b0, &b1);
    for (long long b = b0; b < b1; b++) {
        const long long lo = b * t->blk;
        const int len = (int)(lo + t->blk < dim ? t->blk : dim - lo);
        if (t->by_rows) {   /* rows lo… of op(A): A's rows, or A's columns when transposed */
            const float *A = t->ta == LM_TRANS ? t->A + lo : t->A + lo * t->lda;
            lm_sgemm(t->ta, t->tb, len, t->n, t->k, t->alpha, A, t->lda, t->B, t->ldb, t->beta, t->C + lo * t->ldc, t->ldc);
        } else {            /* columns lo… of op(B): B's columns, or B's rows when transposed */
            const float *B = t->tb == LM_TRANS ? t->B + lo * t->ldb : t->B + lo;
            lm_sgemm(t->ta, t->tb, t->m, len, t->k, t->alpha, t->A, t->lda, B, t->ldb, t->beta, t->C + lo, t->ldc);
        }
    }
}

/* Below this many multiply-adds (or in one block) a product is one call on the caller:
 * waking the pool costs more. A choice by shape alone, as the blocks are. */
#define LM_SGEMM_POOL_MIN_MACS (1 << 18)

void lm_sgemm_pool(struct lm_pool *pool, lm_trans ta, lm_trans tb, int m, int n, int k, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    const int by_rows = m > n, dim = by_rows ? m : n;
    if (lm_sgemm_block_width(dim) >= dim || (double)m * n * k < LM_SGEMM_POOL_MIN_MACS) {
        lm_sgemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    sgemm_task t = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc,
                    .by_rows = by_rows, .blk = lm_sgemm_block_width(dim), .alpha = alpha, .beta = beta,
                    .A = A, .B = B, .C = C};
    lm_pool_run(pool, sgemm_part, &t);
}

void lm_dgemm(lm_trans ta, lm_trans tb, int m, int n, int k, double alpha, const double *A, int lda,
              const double *B, int ldb, double beta, double *C, int ldc)
{
    blas_ready();
    if (g_blas.dgemm)
        g_blas.dgemm(CBLAS_ROW_MAJOR, cblas_trans(ta), cblas_trans(tb), m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        lm_dgemm_ref(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
