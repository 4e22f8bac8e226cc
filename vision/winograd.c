/* Winograd F(2×2, 3×3) convolution (see winograd.h): the portable version (OpenBLAS for the
 * 16 GEMMs) and the dispatch to the AVX-512 one (winograd_avx512.c). */
#include "vision/winograd.h"

#include "lib/core/blas.h"
#include <string.h>

#include "lib/core/kernels.h"

void lm_winograd3x3_weights(float *u, const float *w, int64_t cout, int64_t cin)
{
    for (int64_t o = 0; o < cout; o++)
        for (int64_t i = 0; i < cin; i++) {
            const float *g = w + (o * cin + i) * 9;
            double t[4][3], r[4][4];
            for (int c = 0; c < 3; c++) {   /* t = G g */
                t[0][c] = g[c];
                t[1][c] = 0.5 * ((double)g[c] + g[3 + c] + g[6 + c]);
                t[2][c] = 0.5 * ((double)g[c] - g[3 + c] + g[6 + c]);
                t[3][c] = g[6 + c];
            }
            for (int a = 0; a < 4; a++) {   /* r = t Gᵀ */
                r[a][0] = t[a][0];
                r[a][1] = 0.5 * (t[a][0] + t[a][1] + t[a][2]);
                r[a][2] = 0.5 * (t[a][0] - t[a][1] + t[a][2]);
                r[a][3] = t[a][2];
            }
            for (int xi = 0; xi < 16; xi++) u[(xi * cout + o) * cin + i] = (float)r[xi / 4][xi % 4];
        }
}

typedef struct wg_dims {
    int64_t cin, cout, H, W, th, tw, P, Hp, Wp;   /* tiles th×tw = P; padded input Hp×Wp */
} wg_dims;

static wg_dims dims_of(int64_t cin, int64_t cout, int64_t H, int64_t W)
{
    wg_dims d = {cin, cout, H, W, (H + 1) / 2, (W + 1) / 2, 0, 0, 0};
    d.P = d.th * d.tw;
    d.Hp = 2 * d.th + 2;
    d.Wp = 2 * d.tw + 2;
    return d;
}

size_t lm_winograd3x3_scratch(int64_t cin, int64_t cout, int64_t H, int64_t W)
{
    wg_dims d = dims_of(cin, cout, H, W);
    const int64_t ps = lm_winograd3x3_padded_tiles(d.P);   /* ≥ P: enough for either layout */
    /* + 32·ps: the AVX-512 version's 16-float pad per plane of a 32-tile block, for V and M;
     * + 16: room to align its blocks to 64 bytes */
    return (size_t)(cin * d.Hp * d.Wp + 16 * cin * ps + 16 * cout * ps + 32 * ps + 16);
}

typedef struct wg_task {
    wg_dims      d;
    const float *x, *b;
    float       *xp, *V, *M, *y;
} wg_task;

/* Both transforms work on a tile row at a time with j (the tile column) innermost, so every
 * loop below is a contiguous, vectorisable run; the 16 ξ planes are each read or written as
 * one run per tile row (they lie cin·P floats apart, often a multiple of 4 KiB, and touching
 * all 16 per tile would make them fight over the same cache sets). */
#define CHUNK 64

/* Input tiles need padded columns 2j .. 2j+3: kept as even/odd planes E[h][j] = xp[h][2j],
 * O[h][j] = xp[h][2j + 1] (tw + 1 each), so columns 2j+2, 2j+3 are E[j+1], O[j+1].
 * V[ξ][c][p] = (Bᵀ d B)[ξ]; channels split across threads. */
static void input_part(void *arg, int ith, int nth)
{
    const wg_task *t = arg;
    const wg_dims d = t->d;
    const int64_t hw = d.tw + 1;   /* even/odd plane width */
    long long lo, hi;
    lm_split(d.cin, ith, nth, &lo, &hi);
    float q[4][4][CHUNK];
    for (long long c = lo; c < hi; c++) {
        float *E = t->xp + c * d.Hp * d.Wp, *O = E + d.Hp * hw;
        memset(E, 0, sizeof(float) * d.Hp * d.Wp);
        for (int64_t h = 0; h < d.H; h++) {
            const float *xr = t->x + (c * d.H + h) * d.W;
            float *er = E + (h + 1) * hw, *orow = O + (h + 1) * hw;
            /* input column w is padded column w + 1: even w → O[w/2], odd w → E[(w+1)/2] */
            for (int64_t k = 0; 2 * k < d.W; k++) orow[k] = xr[2 * k];
            for (int64_t k = 0; 2 * k + 1 < d.W; k++) er[k + 1] = xr[2 * k + 1];
        }
        float *V = t->V + c * d.P;
        const int64_t vs = d.cin * d.P;
        for (int64_t i = 0; i < d.th; i++)
            for (int64_t j0 = 0; j0 < d.tw; j0 += CHUNK) {
                const int64_t nj = d.tw - j0 < CHUNK ? d.tw - j0 : CHUNK;
                for (int r = 0; r < 4; r++) {   /* columns: row r of d · B */
                    const float *e = E + (2 * i + r) * hw + j0, *o = O + (2 * i + r) * hw + j0;
                    for (int64_t j = 0; j < nj; j++) {
                        q[r][0][j] = e[j] - e[j + 1];
                        q[r][1][j] = o[j] + e[j + 1];
                        q[r][2][j] = e[j + 1] - o[j];
                        q[r][3][j] = o[j] - o[j + 1];
                    }
                }
                for (int k = 0; k < 4; k++) {   /* rows: Bᵀ · */
                    float *v0 = V + (0 + k) * vs + i * d.tw + j0, *v1 = V + (4 + k) * vs + i * d.tw + j0;
                    float *v2 = V + (8 + k) * vs + i * d.tw + j0, *v3 = V + (12 + k) * vs + i * d.tw + j0;
                    for (int64_t j = 0; j < nj; j++) {
                        v0[j] = q[0][k][j] - q[2][k][j];
                        v1[j] = q[1][k][j] + q[2][k][j];
                        v2[j] = q[2][k][j] - q[1][k][j];
                        v3[j] = q[1][k][j] - q[3][k][j];
                    }
                }
            }
    }
}

/* y = Aᵀ M A + b for every tile, cropped to H×W; output channels split across threads. */
static void output_part(void *arg, int ith, int nth)
{
    const wg_task *t = arg;
    const wg_dims d = t->d;
    long long lo, hi;
    lm_split(d.cout, ith, nth, &lo, &hi);
    const int64_t ms = d.cout * d.P;
    float u[2][4][CHUNK], y0[CHUNK], y1[CHUNK];
    for (long long o = lo; o < hi; o++) {
        const float *M = t->M + o * d.P;
        const float bias = t->b ? t->b[o] : 0.0f;
        float *y = t->y + o * d.H * d.W;
        for (int64_t i = 0; i < d.th; i++)
            for (int64_t j0 = 0; j0 < d.tw; j0 += CHUNK) {
                const int64_t nj = d.tw - j0 < CHUNK ? d.tw - j0 : CHUNK;
                for (int k = 0; k < 4; k++) {   /* u = Aᵀ m */
                    const float *m0 = M + (0 + k) * ms + i * d.tw + j0, *m1 = M + (4 + k) * ms + i * d.tw + j0;
                    const float *m2 = M + (8 + k) * ms + i * d.tw + j0, *m3 = M + (12 + k) * ms + i * d.tw + j0;
                    for (int64_t j = 0; j < nj; j++) {
                        u[0][k][j] = m0[j] + m1[j] + m2[j];
                        u[1][k][j] = m1[j] - m2[j] - m3[j];
                    }
                }
                for (int a = 0; a < 2; a++) {   /* y = u A + b */
                    const int64_t h = 2 * i + a;
                    if (h >= d.H) break;
                    for (int64_t j = 0; j < nj; j++) {
                        y0[j] = u[a][0][j] + u[a][1][j] + u[a][2][j] + bias;
                        y1[j] = u[a][1][j] - u[a][2][j] - u[a][3][j] + bias;
                    }
                    float *yr = y + h * d.W + 2 * j0;
                    const int64_t n_out = d.W - 2 * j0 < 2 * nj ? d.W - 2 * j0 : 2 * nj;
                    for (int64_t j = 0; j < n_out / 2; j++) {
                        yr[2 * j] = y0[j];
                        yr[2 * j + 1] = y1[j];
                    }
                    if (n_out % 2) yr[n_out - 1] = y0[n_out / 2];
                }
            }
    }
}

void lm_winograd3x3_conv_ref(float *y, const float *x, const float *u, const float *b, int64_t cin, int64_t cout,
                             int64_t H, int64_t W, float *scratch, lm_pool *pool)
{
    wg_task t = {dims_of(cin, cout, H, W), x, b, scratch, NULL, NULL, y};
    t.V = t.xp + cin * t.d.Hp * t.d.Wp;
    t.M = t.V + 16 * cin * t.d.P;
    lm_pool_run(pool, input_part, &t);
    for (int xi = 0; xi < 16; xi++)
        lm_sgemm_pool(pool, LM_NO_TRANS, LM_NO_TRANS, (int)cout, (int)t.d.P, (int)cin, 1.0f,
                      u + (int64_t)xi * cout * cin, (int)cin, t.V + (int64_t)xi * cin * t.d.P, (int)t.d.P, 0.0f,
                      t.M + (int64_t)xi * cout * t.d.P, (int)t.d.P);
    lm_pool_run(pool, output_part, &t);
}

void lm_winograd3x3_conv(float *y, const float *x, const float *u, const float *b, int64_t cin, int64_t cout,
                         int64_t H, int64_t W, float *scratch, lm_pool *pool)
{
    if (!strcmp(lm_kernels_name(), "avx512")) lm_winograd3x3_conv_avx512(y, x, u, b, cin, cout, H, W, scratch, pool);
    else lm_winograd3x3_conv_ref(y, x, u, b, cin, cout, H, W, scratch, pool);
}
