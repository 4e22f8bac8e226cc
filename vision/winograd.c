/* Winograd F(2×2, 3×3) convolution (see winograd.h). */
#include "vision/winograd.h"

#include <cblas.h>
#include <string.h>

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
    return (size_t)(cin * d.Hp * d.Wp + 16 * cin * d.P + 16 * cout * d.P);
}

typedef struct wg_task {
    wg_dims      d;
    const float *x, *b;
    float       *xp, *V, *M, *y;
} wg_task;

/* The 16 ξ planes lie cin·P (or cout·P) floats apart, often a multiple of 4 KiB, so touching
 * all 16 per tile would make them fight over the same cache sets. Tiles are therefore
 * transformed in runs of CHUNK along a tile row through a small local buffer, and each plane
 * is read or written as one contiguous run. */
#define CHUNK 64

/* Zero-padded copy of the input (1 pixel each side, rounded up to whole tiles), then
 * V[ξ][c][p] = (Bᵀ d B)[ξ] for every 4×4 tile d; channels split across threads. */
static void input_part(void *arg, int ith, int nth)
{
    const wg_task *t = arg;
    const wg_dims d = t->d;
    long long lo, hi;
    lm_split(d.cin, ith, nth, &lo, &hi);
    float buf[16][CHUNK];
    for (long long c = lo; c < hi; c++) {
        float *xp = t->xp + c * d.Hp * d.Wp;
        memset(xp, 0, sizeof(float) * d.Hp * d.Wp);
        for (int64_t h = 0; h < d.H; h++) memcpy(xp + (h + 1) * d.Wp + 1, t->x + (c * d.H + h) * d.W, sizeof(float) * d.W);
        float *V = t->V + c * d.P;
        const int64_t vs = d.cin * d.P;   /* stride between the 16 ξ planes */
        for (int64_t i = 0; i < d.th; i++)
            for (int64_t j0 = 0; j0 < d.tw; j0 += CHUNK) {
                const int64_t nj = d.tw - j0 < CHUNK ? d.tw - j0 : CHUNK;
                for (int64_t jj = 0; jj < nj; jj++) {
                    const float *s = xp + 2 * i * d.Wp + 2 * (j0 + jj);
                    float q[4][4];
                    for (int r = 0; r < 4; r++) {   /* columns: row r of d · B */
                        const float *row = s + r * d.Wp;
                        q[r][0] = row[0] - row[2];
                        q[r][1] = row[1] + row[2];
                        q[r][2] = row[2] - row[1];
                        q[r][3] = row[1] - row[3];
                    }
                    for (int k = 0; k < 4; k++) {   /* rows: Bᵀ · */
                        buf[0 * 4 + k][jj] = q[0][k] - q[2][k];
                        buf[1 * 4 + k][jj] = q[1][k] + q[2][k];
                        buf[2 * 4 + k][jj] = q[2][k] - q[1][k];
                        buf[3 * 4 + k][jj] = q[1][k] - q[3][k];
                    }
                }
                for (int xi = 0; xi < 16; xi++) memcpy(V + xi * vs + i * d.tw + j0, buf[xi], sizeof(float) * nj);
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
    float buf[16][CHUNK];
    for (long long o = lo; o < hi; o++) {
        const float *M = t->M + o * d.P;
        const float bias = t->b ? t->b[o] : 0.0f;
        float *y = t->y + o * d.H * d.W;
        for (int64_t i = 0; i < d.th; i++)
            for (int64_t j0 = 0; j0 < d.tw; j0 += CHUNK) {
                const int64_t nj = d.tw - j0 < CHUNK ? d.tw - j0 : CHUNK;
                for (int xi = 0; xi < 16; xi++) memcpy(buf[xi], M + xi * ms + i * d.tw + j0, sizeof(float) * nj);
                for (int64_t jj = 0; jj < nj; jj++) {
                    const int64_t j = j0 + jj;
                    float u[2][4];
                    for (int k = 0; k < 4; k++) {
                        u[0][k] = buf[k][jj] + buf[4 + k][jj] + buf[8 + k][jj];
                        u[1][k] = buf[4 + k][jj] - buf[8 + k][jj] - buf[12 + k][jj];
                    }
                    for (int a = 0; a < 2; a++) {
                        const int64_t h = 2 * i + a;
                        if (h >= d.H) break;
                        y[h * d.W + 2 * j] = u[a][0] + u[a][1] + u[a][2] + bias;
                        if (2 * j + 1 < d.W) y[h * d.W + 2 * j + 1] = u[a][1] - u[a][2] - u[a][3] + bias;
                    }
                }
            }
    }
}

void lm_winograd3x3_conv(float *y, const float *x, const float *u, const float *b, int64_t cin, int64_t cout,
                         int64_t H, int64_t W, float *scratch, lm_pool *pool)
{
    wg_task t = {dims_of(cin, cout, H, W), x, b, scratch, NULL, NULL, y};
    t.V = t.xp + cin * t.d.Hp * t.d.Wp;
    t.M = t.V + 16 * cin * t.d.P;
    lm_pool_run(pool, input_part, &t);
    for (int xi = 0; xi < 16; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cout, (int)t.d.P, (int)cin, 1.0f,
                    u + (int64_t)xi * cout * cin, (int)cin, t.V + (int64_t)xi * cin * t.d.P, (int)t.d.P, 0.0f,
                    t.M + (int64_t)xi * cout * t.d.P, (int)t.d.P);
    lm_pool_run(pool, output_part, &t);
}
