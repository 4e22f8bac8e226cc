/*
 * Row-major GEMM for the whole library: C[m][n] = alpha · op(A) · op(B) + beta · C.
 *
 * OpenBLAS does the work. It is loaded at the first call (dlopen, not linked) because it
 * picks its kernels once, when it loads, from OPENBLAS_CORETYPE or its own CPU detection,
 * and Debian's 0.3.21 detects some AVX-512 CPUs (AMD Zen 4 among them) as "Prescott": SSE3
 * kernels, 2–7× slower than its AVX2 or AVX-512 ones. So when OPENBLAS_CORETYPE is unset,
 * loom sets it for the load from its own CPU detection (AVX-512 F/BW/DQ/VL: SkylakeX;
 * AVX2 + FMA: Haswell) and unsets it again; a value the user set is kept. OpenBLAS runs
 * each call on the calling thread alone (OPENBLAS_NUM_THREADS=1 for the load, then
 * openblas_set_num_threads(1)): loom's parallel work is all on its own pools. Without
 * OpenBLAS the products run on lm_sgemm_ref (correct, slow), with a warning in the log.
 */
#ifndef LM_BLAS_H
#define LM_BLAS_H

#include <stddef.h>

typedef enum lm_trans { LM_NO_TRANS = 0, LM_TRANS = 1 } lm_trans;

/* op(A) is [m][k] (A is [k][m] when ta is LM_TRANS), op(B) is [k][n]; lda/ldb/ldc are row
 * strides. beta 0 ignores C's old contents (NaN included), as BLAS does. */
void lm_sgemm(lm_trans ta, lm_trans tb, int m, int n, int k, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
void lm_dgemm(lm_trans ta, lm_trans tb, int m, int n, int k, double alpha, const double *A, int lda,
              const double *B, int ldb, double beta, double *C, int ldc);
/* The portable versions the fallback uses (and tests compare against). */
void lm_sgemm_ref(lm_trans ta, lm_trans tb, int m, int n, int k, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
void lm_dgemm_ref(lm_trans ta, lm_trans tb, int m, int n, int k, double alpha, const double *A, int lda,
                  const double *B, int ldb, double beta, double *C, int ldc);

/* lm_sgemm shared out across a pool (NULL: the caller alone): each thread multiplies a
 * run of blocks of C's rows or columns, whichever dimension is larger (so the operand every
 * thread repacks whole is the smaller one), one single-threaded OpenBLAS call per block. The
 * blocks depend on the shape alone, so C has the same bits on a pool of any size. Each
 * element of C is the same sum as lm_sgemm's up to rounding (OpenBLAS picks its
 * small-product kernels by the size of each call). OpenBLAS's own threads and the pool's took each other's cores: a
 * 512-token prefill gained 12 % from a second thread that way, 34 % this way. */
struct lm_pool;
/* The width of the blocks lm_sgemm_pool cuts a dimension of dim into (whole 16-wide kernel
 * blocks, the last may be short; dim itself when one block): a function of the shape
 * alone. OpenBLAS rounds a sum differently with the size of the call it is in, so cutting
 * by thread count made `-t 1` and `-t 2` outputs differ (the audio codec's Griffin-Lim grew
 * last-bit differences into different samples; guided video codes parted). */
int  lm_sgemm_block_width(int dim);
void lm_sgemm_pool(struct lm_pool *pool, lm_trans ta, lm_trans tb, int m, int n, int k, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Threads OpenBLAS may use for one product (no-op without it). loom keeps 1; benchmarks
 * raise it to time OpenBLAS's own threading as a peer. */
void lm_blas_set_threads(int n);
/* "OpenBLAS <core>" (e.g. "OpenBLAS SkylakeX") or "reference" when it could not be loaded;
 * loads it if not yet done. */
const char *lm_blas_name(void);
/* The OPENBLAS_CORETYPE loom picks for this CPU when the variable is unset, or NULL
 * (leave it to OpenBLAS). */
const char *lm_blas_core_for_cpu(void);

#endif
