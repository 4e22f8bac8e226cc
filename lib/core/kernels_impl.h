/*
 * Internal to the kernels: the per-instruction-set row kernels the dispatcher in kernels.c
 * chooses between. kernels_avx2.c / kernels_avx512.c are compiled with those ISA flags and
 * are only called after lm_cpu_caps_get() said the CPU has them.
 */
#ifndef LM_KERNELS_IMPL_H
#define LM_KERNELS_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/core/kernels.h"
#include "lib/core/types.h"

/* Dense index of the supported weight types in the tables below. */
enum { LM_KT_F32, LM_KT_F16, LM_KT_BF16, LM_KT_Q8_0, LM_KT_COUNT };

/* Σ w[i]·x[i] over one typed row of n values. */
typedef float (*lm_dot_fn)(const void *w, const float *x, int64_t n);
/* y[r] = Σ_i row_r[i]·x[i] for r in [0, n_rows); row r starts at w + r*row_bytes. */
typedef void (*lm_rows_fn)(const uint8_t *w, size_t row_bytes, const float *x, float *y,
                           int64_t n_rows, int64_t n);
/* dst[0..n) = the n values of one typed row as floats. */
typedef void (*lm_to_f32_fn)(const void *w, float *dst, int64_t n);
/* The reverse: n floats rounded into one typed row, as types.c's lm_row_from_f32 rounds them. */
typedef void (*lm_from_f32_fn)(const float *src, void *w, int64_t n);
static inline void lm_from_f32_f32(const float *src, void *w, int64_t n) { memcpy(w, src, (size_t)n * sizeof(float)); }

/* y[r] = Σ_b dw_rb·xd[b]·Σ_j q_rbj·xq[32b+j] for Q8_0 rows r in [0, n_rows). */
typedef void (*lm_rows_q8_fn)(const uint8_t *w, size_t row_bytes, const int8_t *xq, const float *xd,
                              float *y, int64_t n_rows, int64_t n);

/* The same for nx inputs at once, x_j = x + j·ldx (Q8: xq_j = xq + j·n, xd_j = xd + j·n/32),
 * y[j][r]: each weight row is walked once per four inputs, and every y[j][r] equals what
 * rows() gives on x_j alone, bit for bit. NULL in a set: rows() on each input. */
typedef void (*lm_rows_multi_fn)(const uint8_t *w, size_t row_bytes, const float *x, int64_t ldx,
                                 float *const *y, int nx, int64_t n_rows, int64_t n);
typedef void (*lm_rows_q8_multi_fn)(const uint8_t *w, size_t row_bytes, const int8_t *xq, const float *xd,
                                    float *const *y, int nx, int64_t n_rows, int64_t n);

/* The row loops on a kernel DOTS(w, x, ldx, out, NX, n) that computes NX (1..4) dots of one
 * weight row at once: name##_dot (lm_dot_fn), name##_rows (lm_rows_fn) and name##_rows_multi
 * (lm_rows_multi_fn, inputs G at a time, each group walking all rows while its inputs stay
 * in L1: G = 4 where 32 vector registers hold the accumulators, 2 with AVX2's 16). */
#define LM_DEFINE_ROWS_FROM_DOTS(name, DOTS, G)                                               \
    static float name##_dot(const void *w, const float *x, int64_t n)                        \
    {                                                                                        \
        float o;                                                                             \
        DOTS(w, x, 0, &o, 1, n);                                                             \
        return o;                                                                            \
    }                                                                                        \
    static void name##_rows(const uint8_t *w, size_t row_bytes, const float *x, float *y,   \
                            int64_t n_rows, int64_t n)                                       \
    {                                                                                        \
        for (int64_t r = 0; r < n_rows; r++) DOTS(w + (size_t)r * row_bytes, x, 0, y + r, 1, n); \
    }                                                                                        \
    static void name##_rows_multi(const uint8_t *w, size_t row_bytes, const float *x, int64_t ldx, \
                                  float *const *y, int nx, int64_t n_rows, int64_t n)        \
    {                                                                                        \
        for (int j0 = 0; j0 < nx; j0 += (G)) {                                               \
            const int m = nx - j0 < (G) ? nx - j0 : (G);                                     \
            const float *xj = x + j0 * ldx;                                                  \
            for (int64_t r = 0; r < n_rows; r++) {                                           \
                const uint8_t *wr = w + (size_t)r * row_bytes;                               \
                float o[4];                                                                  \
                if (m >= 4) DOTS(wr, xj, ldx, o, 4, n);                                      \
                else if (m == 3) DOTS(wr, xj, ldx, o, 3, n);                                 \
                else if (m == 2) DOTS(wr, xj, ldx, o, 2, n);                                 \
                else DOTS(wr, xj, ldx, o, 1, n);                                             \
                for (int j = 0; j < m; j++) y[j0 + j][r] = o[j];                             \
            }                                                                                \
        }                                                                                    \
    }

typedef struct lm_kernel_set {
    const char *name;                /* "ref", "avx2", "avx512"                        */
    lm_dot_fn   dot[LM_KT_COUNT];
    lm_rows_fn  rows[LM_KT_COUNT];
    lm_to_f32_fn to_f32[LM_KT_COUNT];
    lm_from_f32_fn from_f32[LM_KT_COUNT];
    lm_rows_q8_fn rows_q8;           /* Q8_0 × q8 activations, this set's base ISA      */
    lm_rows_q8_fn rows_q8_vnni;      /* the same with AVX-512 VNNI, or NULL              */
    lm_rows_multi_fn    rows_multi[LM_KT_COUNT];   /* NULL: rows[] on each input          */
    lm_rows_q8_multi_fn rows_q8_multi, rows_q8_vnni_multi;
    void (*quantize_q8)(const float *x, int64_t n, int8_t *xq, float *xd);
} lm_kernel_set;

extern const lm_kernel_set lm_kernels_ref_set;
extern const lm_kernel_set lm_kernels_avx2_set;
extern const lm_kernel_set lm_kernels_avx512_set;

/* The AVX2 activation quantizer and int8 rows (kernels_avx2.c), shared by the AVX-512 set. */
void lm_quantize_q8_avx2(const float *x, int64_t n, int8_t *xq, float *xd);
void lm_rows_q8_avx2(const uint8_t *w, size_t row_bytes, const int8_t *xq, const float *xd, float *y,
                     int64_t n_rows, int64_t n);
void lm_rows_q8_avx2_multi(const uint8_t *w, size_t row_bytes, const int8_t *xq, const float *xd,
                           float *const *y, int nx, int64_t n_rows, int64_t n);

/* The AVX2 rounding of float rows to F16, BF16 and Q8_0 (kernels_avx2.c), shared by the
 * AVX-512 set: they are bound by memory, not by vector width. */
void lm_from_f32_f16_avx2(const float *src, void *w, int64_t n);
void lm_from_f32_bf16_avx2(const float *src, void *w, int64_t n);
void lm_from_f32_q8_0_avx2(const float *src, void *w, int64_t n);

/* lm_matmul_bf16 on AMX (matmul_bf16_amx.c). X is first rounded to bf16 rows (A, shared:
 * [Mp][Kp], n_tok and n_in rounded up to multiples of 32, zero-padded) by every thread for
 * its share of rows; then thread ith of nth computes its share of Y's LM_BF16_NC-column
 * blocks with its own scratch (lm_bf16_part_floats floats). */
#define LM_BF16_NC 128
typedef struct lm_bf16_task {
    const lm_matrix *W;
    lm_to_f32_fn     to_f32;     /* W's rows as floats                              */
    const float     *X;          /* [n_tok][W->n_in]                                */
    int64_t          n_tok;
    float           *Y;          /* [n_tok][W->n_out]                               */
} lm_bf16_task;
static inline size_t lm_bf16_a_floats(int64_t n_tok, int64_t n_in)
{
    return (size_t)(n_tok + 31) / 32 * 32 * ((size_t)(n_in + 31) / 32 * 32) / 2;
}
static inline size_t lm_bf16_part_floats(int64_t n_in)
{
    return (size_t)LM_BF16_NC * ((size_t)(n_in + 31) / 32 * 32) + (size_t)n_in + 32 * 32;
}
void lm_matmul_bf16_amx_round_x(const lm_bf16_task *t, uint16_t *A, int64_t lo, int64_t hi);
void lm_matmul_bf16_amx_part(const lm_bf16_task *t, const uint16_t *A, float *scratch, int ith, int nth);

/* The AVX2+FMA forms behind lm_softmax_fast, lm_bias_gelu_erf_fast and lm_swiglu_fast
 * (activations_avx2.c). */
void lm_softmax_avx2(float *x, int64_t n);
void lm_bias_gelu_erf_avx2(float *y, const float *b, int64_t n);
void lm_swiglu_avx2(float *y, const float *gate, const float *up, int64_t n);

/* The set lm_dot/lm_matvec use now (reference when forced or when the CPU lacks the ISA). */
const lm_kernel_set *lm_kernels_active(void);

/* LM_KT_* for a loom type, -1 if unsupported. */
static inline int lm_kt_index(int type)
{
    switch (type) {
    case LOOM_TYPE_F32:  return LM_KT_F32;
    case LOOM_TYPE_F16:  return LM_KT_F16;
    case LOOM_TYPE_BF16: return LM_KT_BF16;
    case LOOM_TYPE_Q8_0: return LM_KT_Q8_0;
    default:             return -1;
    }
}

#endif
