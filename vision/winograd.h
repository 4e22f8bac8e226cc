/*
 * 3×3, stride 1, padding 1 convolution by Winograd F(2×2, 3×3) (Lavin & Gray 2015): each
 * 2×2 output tile costs 16 multiplies per input/output channel pair instead of 36, so the
 * GEMM work is 2.25× smaller than im2col's. Transforms:
 *   U = G g Gᵀ (weights, once at load), V = Bᵀ d B (4×4 input tiles), Y = Aᵀ (U ⊙ V) A
 * with the element-wise products summed over input channels as 16 GEMMs
 * M[ξ][cout][tiles] = U[ξ][cout][cin] · V[ξ][cin][tiles].
 * Reference: lm_conv2d_ref (lib/core/kernels.h); tests compare the two.
 */
#ifndef LM_WINOGRAD_H
#define LM_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>

#include "lib/core/threadpool.h"

/* w [cout][cin][3][3] → u [16][cout][cin]. */
void lm_winograd3x3_weights(float *u, const float *w, int64_t cout, int64_t cin);
/* P tiles rounded up to the 32-tile blocks of the AVX-512 version. */
static inline int64_t lm_winograd3x3_padded_tiles(int64_t P) { return (P + 31) / 32 * 32; }
/* Floats of scratch lm_winograd3x3_conv needs for these sizes (either version). */
size_t lm_winograd3x3_scratch(int64_t cin, int64_t cout, int64_t H, int64_t W);
/* y [cout][H][W] = conv3x3(x [cin][H][W]) + b (b may be NULL); u from lm_winograd3x3_weights.
 * Runs the AVX-512 version when the active kernel set (lm_kernels_name) is "avx512", else
 * the portable one. */
void lm_winograd3x3_conv(float *y, const float *x, const float *u, const float *b, int64_t cin, int64_t cout,
                         int64_t H, int64_t W, float *scratch, lm_pool *pool);
/* The portable version: plain C transforms, OpenBLAS for the 16 GEMMs. */
void lm_winograd3x3_conv_ref(float *y, const float *x, const float *u, const float *b, int64_t cin,
                             int64_t cout, int64_t H, int64_t W, float *scratch, lm_pool *pool);
/* AVX-512 F (winograd_avx512.c); only call when the CPU has it. Same scratch. */
void lm_winograd3x3_conv_avx512(float *y, const float *x, const float *u, const float *b, int64_t cin,
                                int64_t cout, int64_t H, int64_t W, float *scratch, lm_pool *pool);

/* M[r][p] = Σ_k U[r·us + k·uk] · V[k·vs + p] (+ bias[r] if bias), r < R, k < K, p < N; M's rows
 * ms floats apart. U may be transposed (us = 1, uk = rows). AVX-512 F, register-blocked 8 × 32
 * without packing (winograd_avx512.c; the VQ codec's 1×1 convs and attention scores, whose
 * K is small); 32-column blocks split across the pool. */
void lm_sgemm_avx512(float *M, int64_t ms, const float *U, int64_t us, int64_t uk, const float *V, int64_t vs,
                     int64_t R, int64_t K, int64_t N, const float *bias, lm_pool *pool);

#endif
