/* Winograd F(2×2, 3×3) convolution with AVX-512 (see winograd.h; the portable version is
 * lm_winograd3x3_conv_ref in winograd.c, and tests compare the two).
 *
 * Same three steps as the portable version, each vectorised over 16 tiles of a tile row (one
 * zmm holds one value of 16 neighbouring tiles):
 *   1. input:  V[ξ][c][p] = (Bᵀ d B)[ξ] straight from x (no padded copy: masked loads read
 *              zeros outside the image); the even/odd columns of a tile row come from
 *              unaligned loads and a permute, so the 4×4 transform stays in registers;
 *   2. GEMM:   M[ξ][o][p] = Σ_c U[ξ][o][c] V[ξ][c][p], an 8 × 32 register block
 *              (16 accumulators, U broadcast from memory), no packing: V's 32-column block
 *              (cin × 128 B) stays in L1 across the output-channel blocks. Rows of V and M
 *              are lm_winograd3x3_row_stride(P) floats apart, not P: with P = 1024 every row
 *              of the block would fall in the same L1 sets (4 KiB apart) and evict the others;
 *   3. output: y = Aᵀ M A + b, even/odd output columns interleaved by a permute, stores
 *              masked at the right edge.
 * Input channels, (ξ, column block) pairs and output channels are split across the pool.
 * (Running all three steps per chunk of tile rows, to keep V and M in L2, measured slower.) */
#include <immintrin.h>
#include <string.h>

#include "vision/winograd.h"

typedef struct wg_dims {
    int64_t cin, cout, H, W, th, tw, P, Hp, Wp;   /* tiles th×tw = P; padded input Hp×Wp */
    int64_t Ps;                                   /* row stride of V and M (see scratch)   */
} wg_dims;

typedef struct wg_task {
    wg_dims      d;
    const float *x, *u, *b;
    float       *xp, *V, *M, *y;
} wg_task;

/* Bits 0..n−1 set (n clamped to [0, 16]). */
static inline __mmask16 first_n(int64_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* V[ξ][c][p] for input channels [c_lo, c_hi), every tile. Tile (i, j) reads input rows
 * 2i−1 .. 2i+2 and columns 2j−1 .. 2j+2 (zero outside the image): the 34 columns of 16 tiles
 * come from four masked loads (lanes outside [0, W) masked off), split into even and odd
 * columns by permutes. */
static void input_part(void *arg, int ith, int nth)
{
    const wg_task *t = arg;
    long long c_lo, c_hi;
    lm_split(t->d.cin, ith, nth, &c_lo, &c_hi);
    const wg_dims d = t->d;
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    const int64_t vs = d.cin * d.Ps;
    for (long long c = c_lo; c < c_hi; c++) {
        const float *xc = t->x + c * d.H * d.W;
        float *V = t->V + c * d.Ps;
        for (int64_t i = 0; i < d.th; i++)
            for (int64_t j0 = 0; j0 < d.tw; j0 += 16) {
                const int64_t nj = d.tw - j0 < 16 ? d.tw - j0 : 16, c0 = 2 * j0 - 1;   /* first column */
                /* lanes l of a load at column c0 + o: valid if 0 <= c0 + o + l < W */
                const __mmask16 ma = (__mmask16)(first_n(d.W - c0) & (j0 ? 0xFFFF : 0xFFFE));
                const __mmask16 mb = first_n(d.W - c0 - 16), ma2 = first_n(d.W - c0 - 2), mb2 = first_n(d.W - c0 - 18);
                __m512 q[4][4];
                for (int r = 0; r < 4; r++) {   /* columns 2j..2j+3 of padded row 2i+r, times B */
                    const int64_t h = 2 * i + r - 1;
                    __m512 a = _mm512_setzero_ps(), b = a, a2 = a, b2 = a;
                    if (h >= 0 && h < d.H) {
                        const float *row = xc + h * d.W + c0;   /* c0 = −1 only with lane 0 masked */
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
                const __mmask16 m = first_n(nj);
                float *v = V + i * d.tw + j0;
                for (int k = 0; k < 4; k++) {   /* rows: Bᵀ · */
                    _mm512_mask_storeu_ps(v + (0 + k) * vs, m, _mm512_sub_ps(q[0][k], q[2][k]));
                    _mm512_mask_storeu_ps(v + (4 + k) * vs, m, _mm512_add_ps(q[1][k], q[2][k]));
                    _mm512_mask_storeu_ps(v + (8 + k) * vs, m, _mm512_sub_ps(q[2][k], q[1][k]));
                    _mm512_mask_storeu_ps(v + (12 + k) * vs, m, _mm512_sub_ps(q[1][k], q[3][k]));
                }
            }
    }
}

/* M[r][p0..p0+32) = U[r][:] · V[:][p0..p0+32) for r < 8 (rows strided by cin in U, by Ps in V
 * and M); columns masked by m0, m1. Accumulators are named registers (arrays of __m512 get
 * spilled to the stack by GCC). */
static inline void gemm_block_8(const float *U, const float *V, float *M, int64_t cin, int64_t Ps, __mmask16 m0,
                                __mmask16 m1)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, b6 = a0, b7 = a0;
    for (int64_t c = 0; c < cin; c++) {
        const __m512 v0 = _mm512_maskz_loadu_ps(m0, V + c * Ps), v1 = _mm512_maskz_loadu_ps(m1, V + c * Ps + 16);
        const float *w = U + c;
#define ROW(r)                                                                                                     \
    {                                                                                                              \
        const __m512 s = _mm512_set1_ps(w[r * cin]);                                                               \
        a##r = _mm512_fmadd_ps(s, v0, a##r);                                                                       \
        b##r = _mm512_fmadd_ps(s, v1, b##r);                                                                       \
    }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
#undef ROW
    }
#define PUT(r)                                                                                                     \
    _mm512_mask_storeu_ps(M + r * Ps, m0, a##r);                                                                   \
    _mm512_mask_storeu_ps(M + r * Ps + 16, m1, b##r);
    PUT(0) PUT(1) PUT(2) PUT(3) PUT(4) PUT(5) PUT(6) PUT(7)
#undef PUT
}

/* The same for one row. */
static inline void gemm_block_1(const float *U, const float *V, float *M, int64_t cin, int64_t Ps, __mmask16 m0,
                                __mmask16 m1)
{
    __m512 a = _mm512_setzero_ps(), b = a;
    for (int64_t c = 0; c < cin; c++) {
        const __m512 s = _mm512_set1_ps(U[c]);
        a = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m0, V + c * Ps), a);
        b = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m1, V + c * Ps + 16), b);
    }
    _mm512_mask_storeu_ps(M, m0, a);
    _mm512_mask_storeu_ps(M + 16, m1, b);
}

/* M[ξ][:][p0..p0+32) for this thread's share of the (ξ, 32-tile block) pairs. */
static void gemm_part(void *arg, int ith, int nth)
{
    const wg_task *t = arg;
    const wg_dims d = t->d;
    const int64_t nb = (d.P + 31) / 32;
    long long lo, hi;
    lm_split(16 * nb, ith, nth, &lo, &hi);
    for (long long job = lo; job < hi; job++) {
        const int64_t xi = job / nb, p0 = (job % nb) * 32;
        const __mmask16 m0 = first_n(d.P - p0), m1 = first_n(d.P - p0 - 16);
        const float *U = t->u + xi * d.cout * d.cin, *V = t->V + xi * d.cin * d.Ps + p0;
        float *M = t->M + xi * d.cout * d.Ps + p0;
        int64_t o = 0;
        for (; o + 8 <= d.cout; o += 8) gemm_block_8(U + o * d.cin, V, M + o * d.Ps, d.cin, d.Ps, m0, m1);
        for (; o < d.cout; o++) gemm_block_1(U + o * d.cin, V, M + o * d.Ps, d.cin, d.Ps, m0, m1);
    }
}

/* y = Aᵀ M A + b for this thread's output channels. */
static void output_part(void *arg, int ith, int nth)
{
    const wg_task *t = arg;
    const wg_dims d = t->d;
    long long o_lo, o_hi;
    lm_split(d.cout, ith, nth, &o_lo, &o_hi);
    const int64_t ms = d.cout * d.Ps;
    /* interleave y0 (even columns) and y1 (odd columns): lanes 0..15 and 16..31 */
    const __m512i il = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i ih = _mm512_add_epi32(il, _mm512_set1_epi32(8));
    for (long long o = o_lo; o < o_hi; o++) {
        const float *M = t->M + o * d.Ps;
        const __m512 bias = _mm512_set1_ps(t->b ? t->b[o] : 0.0f);
        float *y = t->y + o * d.H * d.W;
        for (int64_t i = 0; i < d.th; i++)
            for (int64_t j0 = 0; j0 < d.tw; j0 += 16) {
                const __mmask16 m = first_n(d.tw - j0);
                const float *mp = M + i * d.tw + j0;
                __m512 u[2][4];
                for (int k = 0; k < 4; k++) {   /* u = Aᵀ m */
                    const __m512 m0 = _mm512_maskz_loadu_ps(m, mp + (0 + k) * ms);
                    const __m512 m1 = _mm512_maskz_loadu_ps(m, mp + (4 + k) * ms);
                    const __m512 m2 = _mm512_maskz_loadu_ps(m, mp + (8 + k) * ms);
                    const __m512 m3 = _mm512_maskz_loadu_ps(m, mp + (12 + k) * ms);
                    u[0][k] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                    u[1][k] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
                }
                const int64_t n_out = d.W - 2 * j0 < 32 ? d.W - 2 * j0 : 32;
                for (int a = 0; a < 2; a++) {   /* y = u A + b */
                    const int64_t h = 2 * i + a;
                    if (h >= d.H) break;
                    const __m512 y0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(u[a][0], u[a][1]), u[a][2]), bias);
                    const __m512 y1 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(u[a][1], u[a][2]), u[a][3]), bias);
                    float *yr = y + h * d.W + 2 * j0;
                    _mm512_mask_storeu_ps(yr, first_n(n_out), _mm512_permutex2var_ps(y0, il, y1));
                    _mm512_mask_storeu_ps(yr + 16, first_n(n_out - 16), _mm512_permutex2var_ps(y0, ih, y1));
                }
            }
    }
}

void lm_winograd3x3_conv_avx512(float *y, const float *x, const float *u, const float *b, int64_t cin,
                                int64_t cout, int64_t H, int64_t W, float *scratch, lm_pool *pool)
{
    wg_task t = {{cin, cout, H, W, (H + 1) / 2, (W + 1) / 2, 0, 0, 0, 0}, x, u, b, scratch, NULL, NULL, y};
    t.d.P = t.d.th * t.d.tw;
    t.d.Ps = lm_winograd3x3_row_stride(t.d.P);
    t.d.Hp = 2 * t.d.th + 2;
    t.d.Wp = 2 * t.d.tw + 2;
    t.V = t.xp + cin * t.d.Hp * t.d.Wp;
    t.M = t.V + 16 * cin * t.d.Ps;
    lm_pool_run(pool, input_part, &t);
    lm_pool_run(pool, gemm_part, &t);
    lm_pool_run(pool, output_part, &t);
}
