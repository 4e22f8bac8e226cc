/* VQ image codec: load, decode (codes → image), encode (image → codes). See vq.h. */
#include "vision/vq.h"

#include "lib/core/blas.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/codec_common.h"
#include "lib/core/gguf.h"
#include "lib/core/kernels.h"
#include "vision/winograd.h"

#define VQ_MAX_LEVELS 8   /* len(ch_mult)              */
#define VQ_MAX_RES    16  /* ResBlocks per stage       */

typedef struct vq_conv {
    const float *w;   /* [cout][cin][k][k] */
    const float *b;   /* [cout]            */
    const float *u;   /* [16][cout][cin] Winograd-domain weights (3×3 only), else NULL */
    int cin, cout, k;
} vq_conv;

typedef lm_norm_w vq_norm;   /* GroupNorm affine */

typedef struct vq_res {
    vq_norm norm1, norm2;
    vq_conv conv1, conv2;   /* 3×3 cin→cout, cout→cout        */
    vq_conv nin;            /* 1×1 cin→cout; w == NULL if none */
} vq_res;

typedef struct vq_attn {
    vq_norm norm;
    vq_conv q, k, v, proj;  /* 1×1 C→C */
} vq_attn;

typedef struct vq_stage {
    vq_res  res[VQ_MAX_RES];
    vq_attn attn[VQ_MAX_RES];   /* one per ResBlock in the attention stage            */
    int     n_res, has_attn;
    vq_conv resample;           /* encoder: 3×3 stride 2; decoder: 3×3 after ×2; w NULL if none */
} vq_stage;

typedef struct vq_half {        /* encoder or decoder */
    vq_conv  conv_in;
    vq_stage stage[VQ_MAX_LEVELS];
    vq_res   mid_res1, mid_res2;
    vq_attn  mid_attn;
    vq_norm  norm_out;
    vq_conv  conv_out;
} vq_half;

struct lm_vq {
    lm_vq_info info;
    int   n_levels;                  /* len(ch_mult)                      */
    int   ch, z_channels, groups;
    float eps;
    vq_half enc, dec;
    vq_conv quant_conv;              /* 1×1 Z→D */
    vq_conv post_quant_conv;         /* 1×1 D→Z */
    const float *codebook;           /* [K][D], unit rows */
    lm_wstore weights;               /* owns every weight buffer above */

    /* scratch, planned once at load by a dry run of both directions */
    float *arena;                    /* owned; everything below points into it      */
    float *buf[4];                   /* [act] activations                           */
    float *col;                      /* [col] im2col                                */
    float *att;                      /* [att] attention scores N×N                  */
    size_t n_act, n_col, n_att;
    lm_error err;
};

/* ---------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------- */

static int load_conv(lm_wload *ld, const char *prefix, int cin, int cout, int k, vq_conv *c)
{
    char name[160];
    float *w, *b;
    snprintf(name, sizeof name, "%.120s.weight", prefix);
    int rc = lm_wload_tensor(ld, name, 4, (int64_t[]){cout, cin, k, k}, &w);
    if (rc < 0) return rc;
    snprintf(name, sizeof name, "%.120s.bias", prefix);
    if ((rc = lm_wload_tensor(ld, name, 1, (int64_t[]){cout}, &b)) < 0) return rc;
    float *u = NULL;
    if (k == 3) {
        if (!(u = lm_wstore_alloc(ld->store, (size_t)16 * cout * cin)))
            return lm_fail(ld->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", prefix);
        lm_winograd3x3_weights(u, w, cout, cin);
    }
    *c = (vq_conv){w, b, u, cin, cout, k};
    return 0;
}

static int load_res(lm_wload *ld, const char *prefix, int cin, int cout, int groups, vq_res *r)
{
    char p[160];
    int rc;
    memset(r, 0, sizeof *r);
    snprintf(p, sizeof p, "%.120s.norm1", prefix);
    if ((rc = lm_wload_groupnorm(ld, p, cin, groups, &r->norm1)) < 0) return rc;
    snprintf(p, sizeof p, "%.120s.conv1", prefix);
    if ((rc = load_conv(ld, p, cin, cout, 3, &r->conv1)) < 0) return rc;
    snprintf(p, sizeof p, "%.120s.norm2", prefix);
    if ((rc = lm_wload_groupnorm(ld, p, cout, groups, &r->norm2)) < 0) return rc;
    snprintf(p, sizeof p, "%.120s.conv2", prefix);
    if ((rc = load_conv(ld, p, cout, cout, 3, &r->conv2)) < 0) return rc;
    if (cin != cout) {
        snprintf(p, sizeof p, "%.120s.nin_shortcut", prefix);
        if ((rc = load_conv(ld, p, cin, cout, 1, &r->nin)) < 0) return rc;
    }
    return 0;
}

static int load_attn(lm_wload *ld, const char *prefix, int c, int groups, vq_attn *a)
{
    char p[160];
    int rc;
    static const char *names[4] = {"q", "k", "v", "proj_out"};
    vq_conv *convs[4] = {&a->q, &a->k, &a->v, &a->proj};
    snprintf(p, sizeof p, "%.120s.norm", prefix);
    if ((rc = lm_wload_groupnorm(ld, p, c, groups, &a->norm)) < 0) return rc;
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%.120s.%s", prefix, names[i]);
        if ((rc = load_conv(ld, p, c, c, 1, convs[i])) < 0) return rc;
    }
    return 0;
}

/* Stage layout shared by both halves: stage i of `n` has `n_res` ResBlocks ending at `cout`,
 * attention after each when `attn`, then a resample conv unless it is the last stage. */
static int load_stage(lm_wload *ld, const char *half, const char *kind, int i, int n, int *cin, int cout,
                      int n_res, int attn, int groups, vq_stage *st)
{
    char p[160];
    int rc;
    st->n_res = n_res;
    st->has_attn = attn;
    for (int j = 0; j < n_res; j++) {
        snprintf(p, sizeof p, "vq.%s.%s.%d.res.%d", half, kind, i, j);
        if ((rc = load_res(ld, p, *cin, cout, groups, &st->res[j])) < 0) return rc;
        *cin = cout;
        if (attn) {
            snprintf(p, sizeof p, "vq.%s.%s.%d.attn.%d", half, kind, i, j);
            if ((rc = load_attn(ld, p, cout, groups, &st->attn[j])) < 0) return rc;
        }
    }
    st->resample.w = NULL;
    if (i < n - 1) {
        snprintf(p, sizeof p, "vq.%s.%s.%d.%s", half, kind, i, kind[0] == 'd' ? "downsample" : "upsample");
        if ((rc = load_conv(ld, p, cout, cout, 3, &st->resample)) < 0) return rc;
    }
    return 0;
}

static int load_mid(lm_wload *ld, const char *half, int c, int groups, vq_half *h)
{
    char p[160];
    int rc;
    snprintf(p, sizeof p, "vq.%s.mid_res1", half);
    if ((rc = load_res(ld, p, c, c, groups, &h->mid_res1)) < 0) return rc;
    snprintf(p, sizeof p, "vq.%s.mid_attn", half);
    if ((rc = load_attn(ld, p, c, groups, &h->mid_attn)) < 0) return rc;
    snprintf(p, sizeof p, "vq.%s.mid_res2", half);
    return load_res(ld, p, c, c, groups, &h->mid_res2);
}

static int load_model(lm_vq *vq, lm_wload *ld)
{
    uint32_t S, g, K, D, Z, ch, enc_res, dec_res, G, mult[VQ_MAX_LEVELS];
    int L, rc;
    if ((rc = lm_wload_arch(ld, "loom-vq")) < 0) return rc;
    if ((rc = lm_wload_u32(ld, "loom.vq.image_size", 1, 4096, &S)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.vq.grid", 1, 4096, &g)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.vq.codebook_size", 1, 1u << 20, &K)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.vq.embed_dim", 1, 4096, &D)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.vq.z_channels", 1, 4096, &Z)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.vq.ch", 1, 4096, &ch)) < 0 ||
        (rc = lm_wload_u32_arr(ld, "loom.vq.ch_mult", VQ_MAX_LEVELS, 1, 64, mult, &L)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.vq.enc_res_blocks", 1, VQ_MAX_RES, &enc_res)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.vq.dec_res_blocks", 1, VQ_MAX_RES, &dec_res)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.vq.norm_groups", 1, 4096, &G)) < 0 ||
        (rc = lm_wload_f32(ld, "loom.vq.norm_eps", 0.0f, 1.0f, &vq->eps)) < 0)
        return rc;
    if ((uint64_t)g << (L - 1) != S)
        return lm_fail(ld->err, LOOM_ERR_FORMAT,
                       "loom.vq.grid = %u does not match image_size %u / 2^(len(ch_mult) - 1) with %d levels", g, S, L);
    for (int i = 0; i < L; i++)
        if ((uint64_t)ch * mult[i] > 16384)
            return lm_fail(ld->err, LOOM_ERR_FORMAT, "loom.vq.ch × ch_mult[%d] = %llu channels is too many", i,
                           (unsigned long long)ch * mult[i]);
    vq->info = (lm_vq_info){(int)S, (int)g, (int)K, (int)D};
    vq->n_levels = L;
    vq->ch = (int)ch;
    vq->z_channels = (int)Z;
    vq->groups = (int)G;

    /* encoder */
    int cin = (int)ch;
    if ((rc = load_conv(ld, "vq.enc.conv_in", 3, cin, 3, &vq->enc.conv_in)) < 0) return rc;
    for (int i = 0; i < L; i++)
        if ((rc = load_stage(ld, "enc", "down", i, L, &cin, (int)(ch * mult[i]), (int)enc_res, i == L - 1, (int)G,
                             &vq->enc.stage[i])) < 0)
            return rc;
    if ((rc = load_mid(ld, "enc", cin, (int)G, &vq->enc)) < 0) return rc;
    if ((rc = lm_wload_groupnorm(ld, "vq.enc.norm_out", cin, (int)G, &vq->enc.norm_out)) < 0 ||
        (rc = load_conv(ld, "vq.enc.conv_out", cin, (int)Z, 3, &vq->enc.conv_out)) < 0 ||
        (rc = load_conv(ld, "vq.quant_conv", (int)Z, (int)D, 1, &vq->quant_conv)) < 0)
        return rc;

    /* quantizer */
    float *cb;
    if ((rc = lm_wload_tensor(ld, "vq.codebook", 2, (int64_t[]){K, D}, &cb)) < 0) return rc;
    vq->codebook = cb;

    /* decoder: stages over reversed ch_mult */
    cin = (int)(ch * mult[L - 1]);
    if ((rc = load_conv(ld, "vq.post_quant_conv", (int)D, (int)Z, 1, &vq->post_quant_conv)) < 0 ||
        (rc = load_conv(ld, "vq.dec.conv_in", (int)Z, cin, 3, &vq->dec.conv_in)) < 0 ||
        (rc = load_mid(ld, "dec", cin, (int)G, &vq->dec)) < 0)
        return rc;
    for (int i = 0; i < L; i++)
        if ((rc = load_stage(ld, "dec", "up", i, L, &cin, (int)(ch * mult[L - 1 - i]), (int)dec_res, i == 0, (int)G,
                             &vq->dec.stage[i])) < 0)
            return rc;
    if ((rc = lm_wload_groupnorm(ld, "vq.dec.norm_out", cin, (int)G, &vq->dec.norm_out)) < 0 ||
        (rc = load_conv(ld, "vq.dec.conv_out", cin, 3, 3, &vq->dec.conv_out)) < 0)
        return rc;
    return lm_wload_finish(ld);
}

/* ---------------------------------------------------------------------------------------
 * Forward pass. Every op also runs in "plan" mode (vq->arena == NULL): it only records the
 * scratch it would need, so the sizes come from the same code that uses them.
 * ------------------------------------------------------------------------------------- */

typedef struct vq_run {
    lm_vq   *vq;
    lm_pool *pool;
    int      plan;
    int      avx512;   /* the active kernel set is "avx512": 1×1 convs and qᵀk by lm_sgemm_avx512 */
} vq_run;

static void need(size_t *have, size_t n)
{
    if (n > *have) *have = n;
}

/* y[cout][Ho][Wo] = conv(x[cin][H][W]); padding k/2. */
static void op_conv(vq_run *r, const vq_conv *c, float *y, const float *x, int H, int W, int stride)
{
    const int p = c->k / 2, Ho = (H + 2 * p - c->k) / stride + 1, Wo = (W + 2 * p - c->k) / stride + 1;
    const int winograd = c->u && stride == 1;   /* 3×3, stride 1, padding 1 */
    if (r->plan) {
        need(&r->vq->n_act, (size_t)c->cin * H * W);
        need(&r->vq->n_act, (size_t)c->cout * Ho * Wo);
        if (winograd) need(&r->vq->n_col, lm_winograd3x3_scratch(c->cin, c->cout, H, W));
        else if (c->k > 1 || stride > 1) need(&r->vq->n_col, (size_t)c->cin * c->k * c->k * Ho * Wo);
        return;
    }
    if (winograd) lm_winograd3x3_conv(y, x, c->u, c->b, c->cin, c->cout, H, W, r->vq->col, r->pool);
    else if (c->k == 1 && stride == 1 && r->avx512)   /* y [cout][HW] = w [cout][cin] · x [cin][HW] + b */
        lm_sgemm_avx512(y, Ho * Wo, c->w, c->cin, 1, x, Ho * Wo, c->cout, c->cin, Ho * Wo, c->b, r->pool);
    else lm_conv2d(y, x, c->w, c->b, c->cin, H, W, c->cout, c->k, stride, p, r->vq->col, r->pool);
}

static void op_norm(vq_run *r, const vq_norm *n, float *y, const float *x, int HW, int swish)
{
    if (r->plan) return;
    lm_codec_norm(y, x, n->w, n->b, n->c, HW, r->vq->groups, r->vq->eps, swish, r->pool);
}

/* a[cin][HW] → a[cout][HW]; t1, t2 scratch. */
static void op_res(vq_run *r, const vq_res *b, float *a, float *t1, float *t2, int H, int W)
{
    const int HW = H * W;
    op_norm(r, &b->norm1, t1, a, HW, 1);
    op_conv(r, &b->conv1, t2, t1, H, W, 1);
    op_norm(r, &b->norm2, t2, t2, HW, 1);
    op_conv(r, &b->conv2, t1, t2, H, W, 1);
    if (b->nin.w) {
        op_conv(r, &b->nin, t2, a, H, W, 1);
        if (!r->plan) memcpy(a, t2, (size_t)b->nin.cout * HW * sizeof(float));
    }
    if (!r->plan) lm_codec_add(a, t1, (int64_t)b->conv2.cout * HW);
}

/* a[C][N] += proj(softmax_j(q_i·k_j / sqrt(C)) v); t1..t3 scratch. */
static void op_attn(vq_run *r, const vq_attn *b, float *a, float *t1, float *t2, float *t3, int H, int W)
{
    const int C = b->norm.c, N = H * W;
    if (r->plan) need(&r->vq->n_att, (size_t)N * N);
    float *att = r->vq->att;
    op_norm(r, &b->norm, t1, a, N, 0);
    op_conv(r, &b->q, t2, t1, H, W, 1);
    op_conv(r, &b->k, t3, t1, H, W, 1);
    if (!r->plan) {
        if (r->avx512) lm_sgemm_avx512(att, N, t2, 1, N, t3, N, N, C, N, NULL, r->pool);   /* qᵀ k */
        else lm_sgemm_pool(r->pool, LM_TRANS, LM_NO_TRANS, N, N, C, 1.0f, t2, N, t3, N, 0.0f, att, N);
        const float scale = sqrtf((float)C);   /* PyTorch divides after bmm */
        for (int i = 0; i < N; i++) lm_codec_softmax_scaled(att + (int64_t)i * N, N, scale);
    }
    op_conv(r, &b->v, t2, t1, H, W, 1);
    if (!r->plan)   /* o[c][i] = Σ_j v[c][j] A[i][j] */
        lm_sgemm_pool(r->pool, LM_NO_TRANS, LM_TRANS, C, N, N, 1.0f, t2, N, att, N, 0.0f, t3, N);
    op_conv(r, &b->proj, t1, t3, H, W, 1);
    if (!r->plan) lm_codec_add(a, t1, (int64_t)C * N);
}

static void swap(float **a, float **b)
{
    float *t = *a;
    *a = *b;
    *b = t;
}

static void op_mid(vq_run *r, const vq_half *h, float *b[4], int H, int W)
{
    op_res(r, &h->mid_res1, b[0], b[1], b[2], H, W);
    op_attn(r, &h->mid_attn, b[0], b[1], b[2], b[3], H, W);
    op_res(r, &h->mid_res2, b[0], b[1], b[2], H, W);
}

static void op_stage_blocks(vq_run *r, const vq_stage *st, float *b[4], int H, int W)
{
    for (int j = 0; j < st->n_res; j++) {
        op_res(r, &st->res[j], b[0], b[1], b[2], H, W);
        if (st->has_attn) op_attn(r, &st->attn[j], b[0], b[1], b[2], b[3], H, W);
    }
}

/* codes → x [3][S][S] */
static void run_decode(vq_run *r, const int32_t *codes, float *x)
{
    lm_vq *vq = r->vq;
    const int g = vq->info.grid, D = vq->info.embed_dim, n = g * g;
    float *b[4] = {vq->buf[0], vq->buf[1], vq->buf[2], vq->buf[3]};
    if (r->plan) need(&vq->n_act, (size_t)D * n);
    else
        for (int p = 0; p < n; p++)
            for (int d = 0; d < D; d++) b[0][(size_t)d * n + p] = vq->codebook[(size_t)codes[p] * D + d];
    op_conv(r, &vq->post_quant_conv, b[1], b[0], g, g, 1);
    op_conv(r, &vq->dec.conv_in, b[0], b[1], g, g, 1);
    int H = g;
    op_mid(r, &vq->dec, b, H, H);
    for (int i = 0; i < vq->n_levels; i++) {
        const vq_stage *st = &vq->dec.stage[i];
        op_stage_blocks(r, st, b, H, H);
        if (st->resample.w) {
            if (r->plan) need(&vq->n_act, (size_t)st->resample.cin * 4 * H * H);
            else lm_upsample_nearest2x(b[1], b[0], st->resample.cin, H, H);
            H *= 2;
            op_conv(r, &st->resample, b[0], b[1], H, H, 1);
        }
    }
    op_norm(r, &vq->dec.norm_out, b[1], b[0], H * H, 1);
    op_conv(r, &vq->dec.conv_out, x, b[1], H, H, 1);
}

/* rgb → z [D][g][g] (into buf[0] when z is NULL) */
static void run_encode_z(vq_run *r, const uint8_t *rgb, float **z_out)
{
    lm_vq *vq = r->vq;
    const int S = vq->info.image_size;
    float *b[4] = {vq->buf[0], vq->buf[1], vq->buf[2], vq->buf[3]};
    if (r->plan) need(&vq->n_act, (size_t)3 * S * S);
    else
        for (int p = 0; p < S * S; p++)
            for (int c = 0; c < 3; c++) b[0][(size_t)c * S * S + p] = (float)rgb[(size_t)p * 3 + c] / 127.5f - 1.0f;
    op_conv(r, &vq->enc.conv_in, b[1], b[0], S, S, 1);
    swap(&b[0], &b[1]);
    int H = S;
    for (int i = 0; i < vq->n_levels; i++) {
        const vq_stage *st = &vq->enc.stage[i];
        op_stage_blocks(r, st, b, H, H);
        if (st->resample.w) {
            op_conv(r, &st->resample, b[1], b[0], H, H, 2);
            swap(&b[0], &b[1]);
            H = (H + 2 - 3) / 2 + 1;
        }
    }
    op_mid(r, &vq->enc, b, H, H);
    op_norm(r, &vq->enc.norm_out, b[1], b[0], H * H, 1);
    op_conv(r, &vq->enc.conv_out, b[2], b[1], H, H, 1);
    op_conv(r, &vq->quant_conv, b[0], b[2], H, H, 1);
    *z_out = b[0];
}

static int plan_scratch(lm_vq *vq, lm_error *err)
{
    vq_run r = {vq, NULL, 1, 0};
    float *z;
    run_decode(&r, NULL, NULL);
    run_encode_z(&r, NULL, &z);
    /* every buffer starts on a 64-byte line (16 floats): rows of 16·k floats then load whole */
    vq->n_act = (vq->n_act + 15) / 16 * 16;
    vq->n_col = (vq->n_col + 15) / 16 * 16;
    const size_t total = 4 * vq->n_act + vq->n_col + vq->n_att;
    vq->arena = aligned_alloc(64, (total * sizeof(float) + 63) / 64 * 64);
    if (!vq->arena)
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "VQ scratch: out of memory for %zu floats", total);
    float *p = vq->arena;
    for (int i = 0; i < 4; i++, p += vq->n_act) vq->buf[i] = p;
    vq->col = p;
    vq->att = p + vq->n_col;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Public (library-internal) entry points
 * ------------------------------------------------------------------------------------- */

int lm_vq_open(const char *path, lm_vq **out, lm_error *err)
{
    if (!out || !path) return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_vq_open: NULL argument");
    *out = NULL;
    lm_vq *vq = calloc(1, sizeof *vq);
    if (!vq) return lm_fail(err, LOOM_ERR_NO_MEMORY, "out of memory");
    lm_gguf *g = NULL;
    lm_wload ld = {0};
    int rc = lm_gguf_open(path, &g, err);
    if (rc == 0) rc = lm_wload_init(&ld, g, &vq->weights, err);
    if (rc == 0) rc = load_model(vq, &ld);
    lm_wload_done(&ld);
    lm_gguf_close(&g);
    if (rc == 0) rc = plan_scratch(vq, err);
    if (rc < 0) {
        if (err && strncmp(err->msg, path, strlen(path)) != 0) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            lm_fail(err, rc, "%s: %s", path, msg);
        }
        lm_vq_free(&vq);
        return rc;
    }
    *out = vq;
    return 0;
}

void lm_vq_free(lm_vq **vq)
{
    if (!vq || !*vq) return;
    lm_wstore_free(&(*vq)->weights);
    free((*vq)->arena);
    free(*vq);
    *vq = NULL;
}

lm_vq_info lm_vq_get_info(const lm_vq *vq)
{
    lm_vq_info none = {0};
    return vq ? vq->info : none;
}

int lm_vq_decode(lm_vq *vq, const int32_t *codes, float *x, lm_pool *pool, lm_error *err)
{
    if (!vq || !codes || !x) return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_vq_decode: NULL argument");
    const int n = vq->info.grid * vq->info.grid;
    for (int p = 0; p < n; p++)
        if (codes[p] < 0 || codes[p] >= vq->info.codebook_size)
            return lm_fail(err, LOOM_ERR_INVALID_ARG, "VQ code %d at grid position (%d, %d) is outside [0, %d)",
                           codes[p], p / vq->info.grid, p % vq->info.grid, vq->info.codebook_size);
    vq_run r = {vq, pool, 0, !strcmp(lm_kernels_name(), "avx512")};
    run_decode(&r, codes, x);
    return 0;
}

int lm_vq_decode_rgb8(lm_vq *vq, const int32_t *codes, uint8_t *rgb, lm_pool *pool, lm_error *err)
{
    if (!vq || !rgb) return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_vq_decode_rgb8: NULL argument");
    /* conv_out reads buf[1] and writes x; buf[2] is free then and holds ≥ 3·S² floats (planned) */
    int rc = lm_vq_decode(vq, codes, vq->buf[2], pool, err);
    if (rc == 0) lm_vq_to_rgb8(vq->buf[2], vq->info.image_size, rgb);
    return rc;
}

int lm_vq_encode(lm_vq *vq, const uint8_t *rgb, int32_t *codes, float *z, lm_pool *pool, lm_error *err)
{
    if (!vq || !rgb || !codes) return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_vq_encode: NULL argument");
    vq_run r = {vq, pool, 0, !strcmp(lm_kernels_name(), "avx512")};
    float *zb;
    run_encode_z(&r, rgb, &zb);
    const int n = vq->info.grid * vq->info.grid, D = vq->info.embed_dim;
    lm_codec_argmax_cosine(vq->codebook, vq->info.codebook_size, D, zb, n, codes);
    if (z) memcpy(z, zb, (size_t)D * n * sizeof(float));
    return 0;
}

void lm_vq_to_rgb8(const float *x, int size, uint8_t *rgb)
{
    const size_t n = (size_t)size * size;
    for (size_t p = 0; p < n; p++)
        for (int c = 0; c < 3; c++) {
            float v = (x[c * n + p] + 1.0f) * 127.5f;
            v = v > 0.0f ? (v < 255.0f ? v : 255.0f) : 0.0f;   /* NaN → 0 */
            rgb[p * 3 + c] = (uint8_t)nearbyintf(v);           /* half to even, like torch.round */
        }
}
