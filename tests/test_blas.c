/* GEMM (lib/core/blas.c): OpenBLAS is loaded with the kernel core loom picks for this CPU
 * (unless OPENBLAS_CORETYPE was set), the variables loom sets for the load are left as they
 * were, and every transpose combination, stride, alpha and beta agrees with the reference
 * GEMM; the reference itself is checked on a product worked by hand. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/core/blas.h"
#include "lib/core/threadpool.h"
#include "tests/check.h"

static double frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (double)(*s >> 8) / (1u << 24) - 0.5;
}

/* op(A) [m][k], op(B) [k][n], C [m][n], each with a padded row stride. */
static void compare(lm_trans ta, lm_trans tb, int m, int n, int k, double alpha, double beta)
{
    int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
    int ra = ta ? k : m, rb = tb ? n : k;
    size_t na = (size_t)ra * lda, nb = (size_t)rb * ldb, nc = (size_t)m * ldc;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4), *R = malloc(nc * 4);
    double *Ad = malloc(na * 8), *Bd = malloc(nb * 8), *Cd = malloc(nc * 8), *Rd = malloc(nc * 8);
    unsigned s = 7u + (unsigned)(m * 31 + n * 7 + k + ta * 2 + tb);
    for (size_t i = 0; i < na; i++) Ad[i] = A[i] = (float)frand(&s);
    for (size_t i = 0; i < nb; i++) Bd[i] = B[i] = (float)frand(&s);
    for (size_t i = 0; i < nc; i++) {
        /* beta 0 must ignore what C held, NaN included */
        Cd[i] = Rd[i] = C[i] = R[i] = beta == 0 ? NAN : (float)frand(&s);
    }
    lm_sgemm(ta, tb, m, n, k, (float)alpha, A, lda, B, ldb, (float)beta, C, ldc);
    lm_sgemm_ref(ta, tb, m, n, k, (float)alpha, A, lda, B, ldb, (float)beta, R, ldc);
    lm_dgemm(ta, tb, m, n, k, alpha, Ad, lda, Bd, ldb, beta, Cd, ldc);
    lm_dgemm_ref(ta, tb, m, n, k, alpha, Ad, lda, Bd, ldb, beta, Rd, ldc);
    double es = 0, ed = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            size_t at = (size_t)i * ldc + j;
            double d = fabs((double)C[at] - R[at]), dd = fabs(Cd[at] - Rd[at]);
            es = d > es || d != d ? d : es;
            ed = dd > ed || dd != dd ? dd : ed;
        }
    CHECK(es < 2e-5, "sgemm ta %d tb %d %dx%dx%d alpha %g beta %g: max |diff| %g", ta, tb, m, n, k, alpha, beta, es);
    CHECK(ed < 1e-12, "dgemm ta %d tb %d %dx%dx%d alpha %g beta %g: max |diff| %g", ta, tb, m, n, k, alpha, beta, ed);
    free(A), free(B), free(C), free(R), free(Ad), free(Bd), free(Cd), free(Rd);
}

/* lm_sgemm_pool on a 2-thread pool agrees with lm_sgemm, every element, to within float
 * rounding of its sum (2e-6·Σ|a·b|): the split (rows when m > n, else columns, in blocks
 * of whole 16-wide kernel blocks) only chooses who computes an element, but OpenBLAS picks
 * its small-product kernels by the size of each call, so sums may round differently. */
static void compare_pool(lm_pool *pool, lm_trans ta, lm_trans tb, int m, int n, int k)
{
    int lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 3, ldc = n + 4;
    size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4), *R = malloc(nc * 4), *C0 = malloc(nc * 4);
    unsigned s = 11u + (unsigned)(m * 3 + n * 5 + k);
    for (size_t i = 0; i < na; i++) A[i] = (float)frand(&s);
    for (size_t i = 0; i < nb; i++) B[i] = (float)frand(&s);
    for (size_t i = 0; i < nc; i++) C0[i] = C[i] = R[i] = (float)frand(&s);
    lm_sgemm_pool(pool, ta, tb, m, n, k, 0.5f, A, lda, B, ldb, 1.5f, C, ldc);
    lm_sgemm(ta, tb, m, n, k, 0.5f, A, lda, B, ldb, 1.5f, R, ldc);
    int bad = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double mag = 1.5 * fabs(C0[(size_t)i * ldc + j]);
            for (int p = 0; p < k; p++)
                mag += 0.5 * fabs((double)(ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p]) *
                                  (tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j]));
            const double d = fabs((double)C[(size_t)i * ldc + j] - R[(size_t)i * ldc + j]);
            bad += !(d <= 2e-6 * mag);
        }
    CHECK(bad == 0, "pooled sgemm ta %d tb %d %dx%dx%d: %d elements off lm_sgemm's", ta, tb, m, n, k, bad);
    /* columns past n (the padding of each row of C) are untouched */
    int pad = 0;
    for (int i = 0; i < m; i++) pad += memcmp(C + (size_t)i * ldc + n, R + (size_t)i * ldc + n, 4 * sizeof(float)) != 0;
    CHECK(pad == 0, "pooled sgemm wrote %d rows' padding", pad);
    free(A), free(B), free(C), free(R), free(C0);
}

int main(void)
{
    /* The load: done by the first call, here. */
    const char *user = getenv("OPENBLAS_CORETYPE"), *threads = getenv("OPENBLAS_NUM_THREADS");
    char *user_copy = user ? strdup(user) : NULL, *threads_copy = threads ? strdup(threads) : NULL;
    const char *pick = lm_blas_core_for_cpu();
    const char *name = lm_blas_name();
    printf("matrix products: %s (loom's pick for this CPU: %s; OPENBLAS_CORETYPE %s)\n", name,
           pick ? pick : "none", user_copy ? user_copy : "unset");
    CHECK(strncmp(name, "OpenBLAS ", 9) == 0, "OpenBLAS not loaded: %s", name);
    const char *want = user_copy ? user_copy : pick;
    if (want) CHECK(strcasecmp(name + 9, want) == 0, "OpenBLAS runs core %s, wanted %s", name + 9, want);
    const char *after = getenv("OPENBLAS_CORETYPE");
    CHECK(user_copy ? after && !strcmp(after, user_copy) : after == NULL,
          "OPENBLAS_CORETYPE changed: %s -> %s", user_copy ? user_copy : "unset", after ? after : "unset");
    after = getenv("OPENBLAS_NUM_THREADS");
    CHECK(threads_copy ? after && !strcmp(after, threads_copy) : after == NULL, "OPENBLAS_NUM_THREADS changed");
    free(user_copy);
    free(threads_copy);

    /* The reference on a product worked by hand: [1 2; 3 4]·[5 6; 7 8]ᵀ = [17 23; 39 53]. */
    float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, c[4] = {1, 1, 1, 1};
    lm_sgemm_ref(LM_NO_TRANS, LM_TRANS, 2, 2, 2, 2.0f, a, 2, b, 2, -1.0f, c, 2);
    CHECK(c[0] == 33 && c[1] == 45 && c[2] == 77 && c[3] == 105, "reference: %g %g %g %g", c[0], c[1], c[2], c[3]);

    static const int shapes[][3] = {{1, 1, 1}, {7, 13, 35}, {64, 48, 96}, {130, 3, 257}};
    for (int t = 0; t < 4; t++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            compare(t & 1, t >> 1, shapes[i][0], shapes[i][1], shapes[i][2], 1.0, 0.0);
            compare(t & 1, t >> 1, shapes[i][0], shapes[i][1], shapes[i][2], 0.5, 2.0);
        }
    lm_blas_set_threads(2);
    compare(LM_NO_TRANS, LM_TRANS, 200, 150, 300, 1.0, 0.0);

    lm_pool *pool = lm_pool_create(2);   /* sets OpenBLAS back to one thread */
    CHECK(pool != NULL, "pool");
    static const int pshapes[][3] = {{300, 70, 129}, {70, 301, 129}, {33, 500, 64}, {517, 517, 17}, {8, 8, 8}};
    for (int t = 0; pool && t < 4; t++)
        for (size_t i = 0; i < sizeof pshapes / sizeof pshapes[0]; i++)
            compare_pool(pool, t & 1, t >> 1, pshapes[i][0], pshapes[i][1], pshapes[i][2]);
    lm_pool_free(&pool);

    /* The same bits on a pool of any size, NULL included: the blocks are chosen by the shape
     * alone (`loom … -t 1` and `-t 2` write the same output). The shapes span both splits, a
     * short last block, transposes and the audio codec's convolutions. */
    static const int ishapes[][4] = {{300, 70, 129, 0}, {70, 301, 129, 3}, {64, 368, 192, 0}, {256, 368, 768, 0},
                                     {517, 517, 17, 1}, {96, 2944, 64, 2}, {4000, 40, 40, 0}};
    for (size_t i = 0; i < sizeof ishapes / sizeof ishapes[0]; i++) {
        const int m = ishapes[i][0], n = ishapes[i][1], k = ishapes[i][2], ta = ishapes[i][3] & 1, tb = ishapes[i][3] >> 1;
        const int lda = ta ? m : k, ldb = tb ? k : n;
        float *A = malloc((size_t)m * k * 4), *B = malloc((size_t)k * n * 4), *C[5];
        unsigned s = 7u + (unsigned)i;
        for (size_t j = 0; j < (size_t)m * k; j++) A[j] = (float)frand(&s);
        for (size_t j = 0; j < (size_t)k * n; j++) B[j] = (float)frand(&s);
        int differ = 0;
        for (int th = 0; th < 5; th++) {   /* th 0: no pool */
            lm_pool *p = th ? lm_pool_create(th) : NULL;
            C[th] = malloc((size_t)m * n * 4);
            for (size_t j = 0; j < (size_t)m * n; j++) C[th][j] = 0.25f;
            lm_sgemm_pool(p, ta, tb, m, n, k, 1.0f, A, lda, B, ldb, 1.0f, C[th], n);
            if (th) differ += memcmp(C[th], C[0], (size_t)m * n * 4) != 0;
            lm_pool_free(&p);
        }
        CHECK(differ == 0, "pooled sgemm %dx%dx%d (ta %d tb %d): %d of 4 pool sizes differ from no pool in some bit",
              m, n, k, ta, tb, differ);
        for (int th = 0; th < 5; th++) free(C[th]);
        free(A), free(B);
    }
    return finish();
}
