/* Fit, antialiased separable resize and normalisation (see preprocess.h for the contract). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vision/preprocess.h"

lm_preprocess lm_preprocess_default(void)
{
    lm_preprocess p;
    memset(&p, 0, sizeof p);
    p.size   = 224;
    p.filter = LM_RESIZE_BICUBIC;
    p.fit    = LM_FIT_PAD;
    for (int c = 0; c < 3; c++) {
        p.pad_rgb[c] = 127;
        p.mean[c]    = 0.5f;
        p.std[c]     = 0.5f;
    }
    return p;
}

static double filter_eval(int filter, double x)
{
    x = fabs(x);
    if (filter == LM_RESIZE_BILINEAR) return x < 1.0 ? 1.0 - x : 0.0;
    const double a = -0.5;   /* Keys; what Pillow and torch's antialiased bicubic use */
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* Per-output filter taps over the real pixels of one axis. */
typedef struct axis_taps {
    int64_t  n;       /* outputs                                   */
    int      k;       /* taps per output (max support)             */
    int64_t *first;   /* [n] first real source index               */
    int     *count;   /* [n] real taps used                        */
    float   *w;       /* [n][k] weights of the real taps           */
    float   *wfill;   /* [n] total weight that falls on padding    */
} axis_taps;

static void taps_free(axis_taps *t)
{
    free(t->first);
    free(t->count);
    free(t->w);
    free(t->wfill);
    memset(t, 0, sizeof *t);
}

static int taps_plan(const lm_resample_axis *a, int filter, axis_taps *t, lm_error *err)
{
    memset(t, 0, sizeof *t);
    if (a->padded <= 0 || a->len <= 0 || a->offset < 0 || a->offset + a->len > a->padded ||
        a->out_full <= 0 || a->out_first < 0 || a->out_count <= 0 ||
        a->out_first + a->out_count > a->out_full || a->out_full > (1 << 20) || a->padded > (1 << 30))
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "resize: bad axis geometry (padded %lld, image "
                       "[%lld,+%lld), out %lld [%lld,+%lld))", (long long)a->padded, (long long)a->offset,
                       (long long)a->len, (long long)a->out_full, (long long)a->out_first,
                       (long long)a->out_count);
    const double scale   = (double)a->padded / (double)a->out_full;
    const double half    = filter == LM_RESIZE_BILINEAR ? 1.0 : 2.0;   /* interp_size / 2 */
    const double support = scale >= 1.0 ? half * scale : half;
    const double inv     = scale >= 1.0 ? 1.0 / scale : 1.0;
    t->n     = a->out_count;
    t->k     = (int)ceil(support) * 2 + 1;
    t->first = calloc((size_t)t->n, sizeof *t->first);
    t->count = calloc((size_t)t->n, sizeof *t->count);
    t->w     = calloc((size_t)t->n * (size_t)t->k, sizeof *t->w);
    t->wfill = calloc((size_t)t->n, sizeof *t->wfill);
    if (!t->first || !t->count || !t->w || !t->wfill) {
        taps_free(t);
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "resize: no memory for filter taps");
    }
    double *raw = malloc(sizeof *raw * (size_t)t->k);
    if (!raw) {
        taps_free(t);
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "resize: no memory for filter taps");
    }
    for (int64_t o = 0; o < t->n; o++) {
        const double center = scale * ((double)(a->out_first + o) + 0.5);
        int64_t lo = (int64_t)(center - support + 0.5);   /* truncation, as torch */
        int64_t hi = (int64_t)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > a->padded) hi = a->padded;
        if (hi - lo > t->k) hi = lo + t->k;               /* cannot happen; keeps bounds */
        double total = 0.0;
        for (int64_t j = lo; j < hi; j++) total += raw[j - lo] = filter_eval(filter, ((double)j - center + 0.5) * inv);
        if (total == 0.0) total = 1.0;
        /* split: taps on real pixels vs. on padding */
        int64_t rlo = lo > a->offset ? lo : a->offset;
        int64_t rhi = hi < a->offset + a->len ? hi : a->offset + a->len;
        double fill = 0.0;
        for (int64_t j = lo; j < hi; j++)
            if (j < rlo || j >= rhi) fill += raw[j - lo];
        t->first[o] = rlo < rhi ? rlo - a->offset : 0;
        t->count[o] = rlo < rhi ? (int)(rhi - rlo) : 0;
        for (int i = 0; i < t->count[o]; i++) t->w[o * t->k + i] = (float)(raw[rlo - lo + i] / total);
        t->wfill[o] = (float)(fill / total);
    }
    free(raw);
    return 0;
}

int lm_resample_rgb8(const uint8_t *src, size_t stride, const lm_resample_axis *ax,
                     const lm_resample_axis *ay, int filter, const uint8_t fill[3], float *dst,
                     lm_error *err)
{
    if (filter != LM_RESIZE_BILINEAR && filter != LM_RESIZE_BICUBIC)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "resize: unknown filter %d", filter);
    axis_taps tx, ty;
    int rc = taps_plan(ax, filter, &tx, err);
    if (rc < 0) return rc;
    if ((rc = taps_plan(ay, filter, &ty, err)) < 0) {
        taps_free(&tx);
        return rc;
    }
    const int64_t W = ax->len, H = ay->len, OW = tx.n, OH = ty.n;
    const float fc[3] = {fill[0], fill[1], fill[2]};
    /* Pass order: the one with the smaller intermediate (bounded for any aspect ratio). */
    const int rows_first = H * OW <= W * OH;
    size_t tmp_n = rows_first ? (size_t)H * (size_t)OW * 3 : (size_t)OH * (size_t)W * 3;
    float *tmp = malloc(sizeof *tmp * tmp_n);
    if (!tmp) {
        taps_free(&tx);
        taps_free(&ty);
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "resize: no memory for %zu floats", tmp_n);
    }
    if (rows_first) {
        /* tmp[y][ox][c] = Σ wx · src[y][x][c] */
        for (int64_t y = 0; y < H; y++) {
            const uint8_t *row = src + (size_t)y * stride;
            for (int64_t o = 0; o < OW; o++) {
                const float *w = tx.w + o * tx.k;
                const uint8_t *s = row + tx.first[o] * 3;
                float a0 = tx.wfill[o] * fc[0], a1 = tx.wfill[o] * fc[1], a2 = tx.wfill[o] * fc[2];
                for (int i = 0; i < tx.count[o]; i++) {
                    a0 += w[i] * s[3 * i];
                    a1 += w[i] * s[3 * i + 1];
                    a2 += w[i] * s[3 * i + 2];
                }
                float *t = tmp + ((size_t)y * OW + o) * 3;
                t[0] = a0; t[1] = a1; t[2] = a2;
            }
        }
        /* dst[c][oy][ox] = Σ wy · tmp[y][ox][c] */
        for (int64_t oy = 0; oy < OH; oy++) {
            const float *w = ty.w + oy * ty.k;
            for (int64_t ox = 0; ox < OW; ox++) {
                float a[3] = {ty.wfill[oy] * fc[0], ty.wfill[oy] * fc[1], ty.wfill[oy] * fc[2]};
                for (int i = 0; i < ty.count[oy]; i++) {
                    const float *t = tmp + ((size_t)(ty.first[oy] + i) * OW + ox) * 3;
                    a[0] += w[i] * t[0];
                    a[1] += w[i] * t[1];
                    a[2] += w[i] * t[2];
                }
                for (int c = 0; c < 3; c++) dst[((size_t)c * OH + oy) * OW + ox] = a[c];
            }
        }
    } else {
        /* tmp[oy][x][c] = Σ wy · src[y][x][c] */
        for (int64_t oy = 0; oy < OH; oy++) {
            const float *w = ty.w + oy * ty.k;
            float *t = tmp + (size_t)oy * W * 3;
            for (int64_t x = 0; x < W; x++) {
                t[3 * x] = ty.wfill[oy] * fc[0];
                t[3 * x + 1] = ty.wfill[oy] * fc[1];
                t[3 * x + 2] = ty.wfill[oy] * fc[2];
            }
            for (int i = 0; i < ty.count[oy]; i++) {
                const uint8_t *s = src + (size_t)(ty.first[oy] + i) * stride;
                for (int64_t x = 0; x < 3 * W; x++) t[x] += w[i] * s[x];
            }
        }
        /* dst[c][oy][ox] = Σ wx · tmp[oy][x][c] */
        for (int64_t oy = 0; oy < OH; oy++) {
            const float *t = tmp + (size_t)oy * W * 3;
            for (int64_t o = 0; o < OW; o++) {
                const float *w = tx.w + o * tx.k;
                const float *s = t + tx.first[o] * 3;
                float a[3] = {tx.wfill[o] * fc[0], tx.wfill[o] * fc[1], tx.wfill[o] * fc[2]};
                for (int i = 0; i < tx.count[o]; i++) {
                    a[0] += w[i] * s[3 * i];
                    a[1] += w[i] * s[3 * i + 1];
                    a[2] += w[i] * s[3 * i + 2];
                }
                for (int c = 0; c < 3; c++) dst[((size_t)c * OH + oy) * OW + o] = a[c];
            }
        }
    }
    free(tmp);
    taps_free(&tx);
    taps_free(&ty);
    return 0;
}

int lm_image_preprocess(const loom_image *img, const lm_preprocess *p, float *chw, lm_error *err)
{
    if (!img || !img->rgb || img->width <= 0 || img->height <= 0)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "preprocess: the image is empty");
    if (p->size <= 0 || p->size > 8192)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "preprocess: output size %d not in 1..8192", p->size);
    for (int c = 0; c < 3; c++)
        if (!(p->std[c] > 0.0f))
            return lm_fail(err, LOOM_ERR_INVALID_ARG, "preprocess: std[%d] = %g must be > 0", c, p->std[c]);
    const int64_t w = img->width, h = img->height, S = p->size;
    lm_resample_axis ax = {w, 0, w, S, 0, S}, ay = {h, 0, h, S, 0, S};
    switch (p->fit) {
    case LM_FIT_PAD: {
        int64_t side = w > h ? w : h;
        ax.padded = ay.padded = side;
        ax.offset = (side - w) / 2;    /* PIL expand2square: paste at ((side-w)//2, (side-h)//2) */
        ay.offset = (side - h) / 2;
        break;
    }
    case LM_FIT_CROP: {
        /* torchvision Resize(S) + CenterCrop(S): short side to S, long = int(S*long/short),
         * crop offset round((long - S)/2) */
        if (w <= h) {
            ay.out_full  = (int64_t)((double)S * (double)h / (double)w);
            ay.out_first = (int64_t)llround((double)(ay.out_full - S) / 2.0);
        } else {
            ax.out_full  = (int64_t)((double)S * (double)w / (double)h);
            ax.out_first = (int64_t)llround((double)(ax.out_full - S) / 2.0);
        }
        break;
    }
    case LM_FIT_STRETCH: break;
    default: return lm_fail(err, LOOM_ERR_INVALID_ARG, "preprocess: unknown fit policy %d", p->fit);
    }
    int rc = lm_resample_rgb8(img->rgb, (size_t)w * 3, &ax, &ay, p->filter, p->pad_rgb, chw, err);
    if (rc < 0) return rc;
    for (int c = 0; c < 3; c++) {
        /* (v/255 - mean)/std, written as one multiply-add per value */
        const float scale = 1.0f / (255.0f * p->std[c]), shift = -p->mean[c] / p->std[c];
        float *x = chw + (size_t)c * S * S;
        for (int64_t i = 0; i < S * S; i++) x[i] = x[i] * scale + shift;
    }
    return 0;
}
