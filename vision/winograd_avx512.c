/* Winograd F(2×2, 3×3) convolution with AVX-512 (see winograd.h; the portable version is
 * lm_winograd3x3_conv_ref in winograd.c, and tests compare the two).
 *
 * The tiles (p = i·tw + j, row-major) are cut into blocks of 32; each block runs all three
 * steps while its data is in L1/L2 (blocks are split across the pool):
 *   1. input:  Vb[ξ][c][32] = (Bᵀ d B)[ξ] straight from x (no padded copy: masked loads read
 *              zeros outside the image), 16 tiles of a tile row per zmm; the even/odd input
 *              columns come from unaligned loads and a permute, so the 4×4 transform stays in
 *              registers. A block is 1–2 such runs per tile row it touches;
 *   2. GEMM:   Mb[ξ][o][32] = Σ_c U[ξ][o][c] Vb[ξ][c][32], an 8 × 32 register block
 *              (16 named accumulators, U broadcast from memory, no packing);
 *   3. output: y = Aᵀ Mb A + b, even/odd output columns interleaved by a permute, stores
 *              masked at the right edge.
 * A block's Vb and Mb (16·(cin + cout)·32 floats, plus XI_PAD per plane) are contiguous in
 * the scratch.
 * (The first version ran each step over the whole image with V, M as [16][c][P] planes;
 * the 2 MB planes of a 64×64 × 32-channel conv fell out of L2 between the steps.) */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "vision/winograd.h"

#define BLK 32   /* tiles per block: two zmm columns of the GEMM */
/* Floats between the ξ planes of a block beyond their c·BLK: with 32 channels the planes
 * would lie exactly 4 KiB apart, and the 16 stores (loads) of one tile column would all hit
 * the same L1 set (measured: the input transform ran at a third of its speed). */
#define XI_PAD 16

typedef struct wg_task {
    int64_t      cin, cout, H, W, th, tw, P;   /* tiles th×tw = P */
    const float *x, *u, *b;
    float       *V, *M, *y;                    /* scratch: [nb][16][cin][BLK], [nb][16][cout][BLK] */
} wg_task;

/* Bits 0..n−1 set (n clamped to [0, 16]). */
static inline __mmask16 first_n(int64_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* One run of n ≤ 16 tiles (i, j..j+n) of the block, at lanes off..off+n of Vb: for every input
 * channel, tile (i, j) reads input rows 2i−1 .. 2i+2 and columns 2j−1 .. 2j+2. */
static void input_run(const wg_task *t, float *Vb, int64_t i, int64_t j, int64_t n, int64_t off)
{
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    const int64_t W = t->W, c0 = 2 * j - 1, vs = t->cin * BLK + XI_PAD;   /* first input column; ξ stride */
    /* lanes l of a load at column c0 + o: valid if 0 <= c0 + o + l < W */
    const __mmask16 ma = (__mmask16)(first_n(W - c0) & (j ? 0xFFFF : 0xFFFE));
    const __mmask16 mb = first_n(W - c0 - 16), ma2 = first_n(W - c0 - 2), mb2 = first_n(W - c0 - 18);
    const __mmask16 m = first_n(n);
    for (int64_t c = 0; c < t->cin; c++) {
        const float *xc = t->x + c * t->H * W;
        __m512 q[4][4];
        for (int r = 0; r < 4; r++) {   /* columns 2j..2j+3 of padded row 2i+r, times B */
            const int64_t h = 2 * i + r - 1;
            __m512 a = _mm512_setzero_ps(), b = a, a2 = a, b2 = a;
            if (h >= 0 && h < t->H) {
                const float *row = xc + h * W + c0;   /* c0 = −1 only with lane 0 masked */
                a = _mm512_maskz_loadu_ps(ma, row);
                b = _mm512_maskz_loadu_ps(mb, row + 16);
                a2 = _mm512_maskz_loadu_ps(ma2, row + 2);
                b2 = _mm512_maskz_loadu_ps(mb2, row + 18);
            }
            const __m512 e0 = _mm512_permutex2var_ps(a, ev, b), o0 = _mm512_permutex2var_ps(a, od, b);
            const __m512 e1 = _mm512_permutex2var_ps(a2, ev, b2), o1 = _mm512_permutex2var_ps(a2, od, b2);
            q[r][0] = _mm512_sub_ps(e0, e1);
            q[r][1] = _mm512_add_ps(o0, e1);
            q[r][2] = _mm512_sub_ps(e1, o0);
            q[r][3] = _mm512_sub_ps(o0, o1);
        }
        float *v = Vb + c * BLK + off;
        for (int k = 0; k < 4; k++) {   /* rows: Bᵀ · */
            _mm512_mask_storeu_ps(v + (0 + k) * vs, m, _mm512_sub_ps(q[0][k], q[2][k]));
            _mm512_mask_storeu_ps(v + (4 + k) * vs, m, _mm512_add_ps(q[1][k], q[2][k]));
            _mm512_mask_storeu_ps(v + (8 + k) * vs, m, _mm512_sub_ps(q[2][k], q[1][k]));
            _mm512_mask_storeu_ps(v + (12 + k) * vs, m, _mm512_sub_ps(q[1][k], q[3][k]));
        }
    }
}

/* M[r][0..32) = Σ_k U[r·us + k·uk] · V[k·vs + 0..32) for r < 8, k < K (+ bias[r] if bias);
 * columns masked by m0, m1 (masked-off lanes of V read as 0, of M are not stored).
 * Accumulators are named registers (arrays of __m512 get spilled to the stack by GCC). */
static inline void gemm_block_8(const float *U, int64_t us, int64_t uk, const float *V, int64_t vs, float *M,
                                int64_t ms, int64_t K, const float *bias, __mmask16 m0, __mmask16 m1)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, b6 = a0, b7 = a0;
    for (int64_t k = 0; k < K; k++) {
        const __m512 v0 = _mm512_maskz_loadu_ps(m0, V + k * vs), v1 = _mm512_maskz_loadu_ps(m1, V + k * vs + 16);
        const float *w = U + k * uk;
#define ROW(r)                                                                                                     \
    {                                                                                                              \
        const __m512 s = _mm512_set1_ps(w[r * us]);                                                                \
        a##r = _mm512_fmadd_ps(s, v0, a##r);                                                                       \
        b##r = _mm512_fmadd_ps(s, v1, b##r);                                                                       \
    }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
#undef ROW
    }
#define PUT(r)                                                                                                     \
    {                                                                                                              \
        const __m512 bb = _mm512_set1_ps(bias ? bias[r] : 0.0f);                                                   \
        _mm512_mask_storeu_ps(M + r * ms, m0, bias ? _mm512_add_ps(a##r, bb) : a##r);                              \
        _mm512_mask_storeu_ps(M + r * ms + 16, m1, bias ? _mm512_add_ps(b##r, bb) : b##r);                         \
    }
    PUT(0) PUT(1) PUT(2) PUT(3) PUT(4) PUT(5) PUT(6) PUT(7)
#undef PUT
}

/* The same for one row. */
static inline void gemm_block_1(const float *U, int64_t uk, const float *V, int64_t vs, float *M, int64_t K,
                                const float *bias, __mmask16 m0, __mmask16 m1)
{
    __m512 a = _mm512_setzero_ps(), b = a;
    for (int64_t k = 0; k < K; k++) {
        const __m512 s = _mm512_set1_ps(U[k * uk]);
        a = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m0, V + k * vs), a);
        b = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m1, V + k * vs + 16), b);
    }
    if (bias) {
        a = _mm512_add_ps(a, _mm512_set1_ps(*bias));
        b = _mm512_add_ps(b, _mm512_set1_ps(*bias));
    }
    _mm512_mask_storeu_ps(M, m0, a);
    _mm512_mask_storeu_ps(M + 16, m1, b);
}

/* Rows [0, R) of a 32-column block: M = U · V (+ bias). */
static void gemm_rows(const float *U, int64_t us, int64_t uk, const float *V, int64_t vs, float *M, int64_t ms,
                      int64_t R, int64_t K, const float *bias, __mmask16 m0, __mmask16 m1)
{
    int64_t r = 0;
    for (; r + 8 <= R; r += 8)
        gemm_block_8(U + r * us, us, uk, V, vs, M + r * ms, ms, K, bias ? bias + r : NULL, m0, m1);
    for (; r < R; r++) gemm_block_1(U + r * us, uk, V, vs, M + r * ms, K, bias ? bias + r : NULL, m0, m1);
}

typedef struct gemm_task {
    float       *M;
    const float *U, *V, *bias;
    int64_t      ms, us, uk, vs, R, K, N;
} gemm_task;

static void gemm_part(void *arg, int ith, int nth)
{
    const gemm_task *g = arg;
    long long lo, hi;
    lm_split((g->N + 31) / 32, ith, nth, &lo, &hi);
    for (long long bk = lo; bk < hi; bk++) {
        const int64_t p0 = bk * 32;
        gemm_rows(g->U, g->us, g->uk, g->V + p0, g->vs, g->M + p0, g->ms, g->R, g->K, g->bias, first_n(g->N - p0),
                  first_n(g->N - p0 - 16));
    }
}

void lm_sgemm_avx512(float *M, int64_t ms, const float *U, int64_t us, int64_t uk, const float *V, int64_t vs,
                     int64_t R, int64_t K, int64_t N, const float *bias, lm_pool *pool)
{
    gemm_task g = {M, U, V, bias, ms, us, uk, vs, R, K, N};
    lm_pool_run(N > 32 ? pool : NULL, gemm_part, &g);
}

/* y for the run of n tiles (i, j..j+n) at lanes off.. of Mb, every output channel. */
static void output_run(const wg_task *t, const float *Mb, int64_t i, int64_t j, int64_t n, int64_t off)
{
    /* interleave y0 (even columns) and y1 (odd columns): lanes 0..15 and 16..31 */
    const __m512i il = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i ih = _mm512_add_epi32(il, _mm512_set1_epi32(8));
    const int64_t ms = t->cout * BLK + XI_PAD, n_out = t->W - 2 * j < 2 * n ? t->W - 2 * j : 2 * n;
    const __mmask16 m = first_n(n), s0 = first_n(n_out), s1 = first_n(n_out - 16);
    for (int64_t o = 0; o < t->cout; o++) {
        const float *mp = Mb + o * BLK + off;
        const __m512 bias = _mm512_set1_ps(t->b ? t->b[o] : 0.0f);
        __m512 u[2][4];
        for (int k = 0; k < 4; k++) {   /* u = Aᵀ m */
            const __m512 m0 = _mm512_maskz_loadu_ps(m, mp + (0 + k) * ms);
            const __m512 m1 = _mm512_maskz_loadu_ps(m, mp + (4 + k) * ms);
            const __m512 m2 = _mm512_maskz_loadu_ps(m, mp + (8 + k) * ms);
            const __m512 m3 = _mm512_maskz_loadu_ps(m, mp + (12 + k) * ms);
            u[0][k] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
            u[1][k] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
        }
        for (int a = 0; a < 2; a++) {   /* y = u A + b */
            const int64_t h = 2 * i + a;
            if (h >= t->H) break;
            const __m512 y0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(u[a][0], u[a][1]), u[a][2]), bias);
            const __m512 y1 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(u[a][1], u[a][2]), u[a][3]), bias);
            float *yr = t->y + (o * t->H + h) * t->W + 2 * j;
            _mm512_mask_storeu_ps(yr, s0, _mm512_permutex2var_ps(y0, il, y1));
            _mm512_mask_storeu_ps(yr + 16, s1, _mm512_permutex2var_ps(y0, ih, y1));
        }
    }
}

/* The runs of block [p0, p1): at most 16 tiles each, never across a tile row. */
#define FOR_RUNS(t, p0, p1, BODY)                                                                                  \
    for (int64_t p_ = (p0); p_ < (p1);) {                                                                          \
        const int64_t i = p_ / (t)->tw, j = p_ % (t)->tw, off = p_ - (p0);                                         \
        int64_t n = (t)->tw - j;                                                                                   \
        if (n > 16) n = 16;                                                                                        \
        if (n > (p1) - p_) n = (p1) - p_;                                                                          \
        BODY;                                                                                                      \
        p_ += n;                                                                                                   \
    }

static void block_part(void *arg, int ith, int nth)
{
    const wg_task *t = arg;
    const int64_t nb = (t->P + BLK - 1) / BLK;
    long long lo, hi;
    lm_split(nb, ith, nth, &lo, &hi);
    for (long long bk = lo; bk < hi; bk++) {
        const int64_t p0 = bk * BLK, p1 = p0 + BLK < t->P ? p0 + BLK : t->P;
        float *Vb = t->V + bk * 16 * (t->cin * BLK + XI_PAD), *Mb = t->M + bk * 16 * (t->cout * BLK + XI_PAD);
        FOR_RUNS(t, p0, p1, input_run(t, Vb, i, j, n, off))
        const __mmask16 m0 = first_n(p1 - p0), m1 = first_n(p1 - p0 - 16);
        for (int xi = 0; xi < 16; xi++) {
            gemm_rows(t->u + xi * t->cout * t->cin, t->cin, 1, Vb + xi * (t->cin * BLK + XI_PAD), BLK,
                      Mb + xi * (t->cout * BLK + XI_PAD), BLK, t->cout, t->cin, NULL, m0, m1);
        }
        FOR_RUNS(t, p0, p1, output_run(t, Mb, i, j, n, off))
    }
}

void lm_winograd3x3_conv_avx512(float *y, const float *x, const float *u, const float *b, int64_t cin,
                                int64_t cout, int64_t H, int64_t W, float *scratch, lm_pool *pool)
{
    const int64_t th = (H + 1) / 2, tw = (W + 1) / 2, P = th * tw, nb = (P + BLK - 1) / BLK;
    /* 64-byte aligned, so every 16-float row of a block is one cache line (scratch has the slack) */
    float *V = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    wg_task t = {cin, cout, H, W, th, tw, P, x, u, b, V, V + nb * 16 * (cin * BLK + XI_PAD), y};
    lm_pool_run(pool, block_part, &t);
}
