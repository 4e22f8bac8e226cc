/* ViT encoder + MLP projector (see vit.h). All matrix products go through lm_matmul over
 * every patch of every image in the batch at once; attention runs per (image, head) as two
 * GEMMs (also lm_matmul) with the softmax rows split across the pool. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vision/vit.h"

#define VIT_MAX_LAYERS 256
#define VIT_MAX_OWNED  (8 + VIT_MAX_LAYERS * 12)

typedef struct vit_layer {
    const float *ln1_w, *ln1_b;   /* [d]                        */
    lm_matrix    wq, wk, wv, wo;  /* {d, d}                     */
    lm_matrix    wqkv;            /* {d, 3d}: wq, wk, wv when they lie back to back in the
                                     file (same type), so one GEMM computes all three    */
    int          fused;           /* wqkv is valid                                        */
    const float *bq, *bk, *bv, *bo; /* [d] or NULL              */
    const float *ln2_w, *ln2_b;   /* [d]                        */
    lm_matrix    up;              /* {d, ff}                    */
    const float *up_b;            /* [ff] or NULL               */
    lm_matrix    down;            /* {ff, d}                    */
    const float *down_b;          /* [d] or NULL                */
} vit_layer;

struct lm_vit {
    lm_vit_hparams hp;
    lm_preprocess  pre;
    lm_matrix      patch_w;           /* {3·p·p, d}: PyTorch conv weight [d][3][p][p]  */
    const float   *patch_b;           /* [d] or NULL                                   */
    const float   *pos;               /* [n_patches][d]                                */
    const float   *pre_ln_w, *pre_ln_b;   /* [d] or NULL                               */
    const float   *post_ln_w, *post_ln_b; /* [d] or NULL                               */
    vit_layer     *layers;            /* [n_layer], owned                              */
    lm_matrix      mm0;               /* {d·merge², n_mm_hidden}                       */
    const float   *mm0_b;             /* [n_mm_hidden] or NULL                         */
    lm_matrix      mm2;               /* {n_mm_hidden, n_embd_out}                     */
    const float   *mm2_b;             /* [n_embd_out] or NULL                          */
    float         *owned[VIT_MAX_OWNED]; /* F32 copies of non-F32 vectors, owned       */
    int            n_owned;
};

struct lm_vit_ctx {
    const lm_vit *model;
    int    max_batch;
    float *patches;   /* [B·P][3·p·p]  im2col rows                       */
    float *x;         /* [B·P][d]      residual stream                   */
    float *h;         /* [B·P][d]      normalised input of a sub-block   */
    float *qkv;       /* [B·P][3d] fused, or three [B·P][d] blocks          */
    float *att;       /* [B·P][d]      attention output before wo        */
    float *ff;        /* [B·P][ff]                                       */
    float *merged;    /* [B·P/m²][d·m²] (only when merge > 1)            */
    float *mm_h;      /* [B·P/m²][n_mm_hidden]                           */
    float *qh;        /* [P][dh]       one head's scaled queries         */
    float *vt;        /* [dh][P]       one head's values, transposed     */
    float *oh;        /* [P][dh]       one head's output                 */
    float *scores;    /* [P][P]        one head's attention weights      */
};

/* --------------------------------------------------------------------------------------- */

static int keep_owned(lm_vit *v, float *p, lm_error *err)
{
    if (v->n_owned >= VIT_MAX_OWNED) {
        free(p);
        return lm_fail(err, LOOM_ERR_LIMIT, "vision encoder: more than %d converted tensors", VIT_MAX_OWNED);
    }
    v->owned[v->n_owned++] = p;
    return 0;
}

/* A tensor of exactly n floats: the mapping itself when F32, else an owned F32 copy. */
static int get_floats(lm_vit *v, const lm_gguf *g, const char *name, int n_dims, const int64_t *ne,
                      int required, const float **out, lm_error *err)
{
    *out = NULL;
    if (!required && !lm_gguf_find_tensor(g, name)) return 0;
    const lm_gguf_tensor *t;
    int rc = lm_gguf_get_tensor(g, name, n_dims, ne, &t, err);
    if (rc < 0) return rc;
    int64_t n = 1;
    for (int i = 0; i < n_dims; i++) n *= t->ne[i];
    if (t->type == LOOM_TYPE_F32) {
        *out = t->data;
        return 0;
    }
    if (n % lm_type_block_len(t->type) != 0)
        return lm_fail(err, LOOM_ERR_TYPE, "tensor '%s': %lld values are not whole blocks of %s", name,
                       (long long)n, loom_type_name(t->type));
    float *f = malloc(sizeof *f * (size_t)n);
    if (!f) return lm_fail(err, LOOM_ERR_NO_MEMORY, "tensor '%s': no memory to convert", name);
    lm_row_to_f32(t->type, t->data, f, n);
    if ((rc = keep_owned(v, f, err)) < 0) return rc;
    *out = f;
    return 0;
}

static int get_vec(lm_vit *v, const lm_gguf *g, const char *name, int64_t n, int required,
                   const float **out, lm_error *err)
{
    return get_floats(v, g, name, 1, &n, required, out, err);
}

/* A weight matrix of n_out rows of n_in values. `n_dims`/`ne` give the file shape to check
 * (the conv weight is 4-D), which must flatten to {n_in, n_out}. */
static int get_matrix_shaped(const lm_gguf *g, const char *name, int n_dims, const int64_t *ne,
                             int64_t n_in, int64_t n_out, lm_matrix *m, lm_error *err)
{
    const lm_gguf_tensor *t;
    int rc = lm_gguf_get_tensor(g, name, n_dims, ne, &t, err);
    if (rc < 0) return rc;
    size_t rb = lm_row_bytes(t->type, n_in);
    if (rb == 0)
        return lm_fail(err, LOOM_ERR_TYPE, "tensor '%s': rows of %lld values are not whole %s blocks",
                       name, (long long)n_in, loom_type_name(t->type));
    m->type = t->type;
    m->n_in = n_in;
    m->n_out = n_out;
    m->row_bytes = rb;
    m->data = t->data;
    return 0;
}

static int get_matrix(const lm_gguf *g, const char *name, int64_t n_in, int64_t n_out, lm_matrix *m,
                      lm_error *err)
{
    int64_t ne[2] = {n_in, n_out};
    return get_matrix_shaped(g, name, 2, ne, n_in, n_out, m, err);
}

static int get_pos_int(const lm_gguf *g, const char *key, int lo, int hi, int *out, lm_error *err)
{
    uint32_t u;
    int rc = lm_gguf_get_u32(g, key, &u, err);
    if (rc < 0) return rc;
    if (u < (uint32_t)lo || u > (uint32_t)hi)
        return lm_fail(err, LOOM_ERR_FORMAT, "key '%s' = %u is outside %d..%d", key, u, lo, hi);
    *out = (int)u;
    return 0;
}

static int get_f32x3(const lm_gguf *g, const char *key, float out[3], lm_error *err)
{
    if (lm_gguf_find_kv(g, key) < 0) return 0;   /* optional: keep the default */
    const lm_gguf_array *a;
    int rc = lm_gguf_get_arr(g, key, &a, err);
    if (rc < 0) return rc;
    if (lm_gguf_arr_type(a) != LM_GGUF_F32 || lm_gguf_arr_len(a) != 3)
        return lm_fail(err, LOOM_ERR_TYPE, "key '%s' must be an array of 3 f32", key);
    memcpy(out, lm_gguf_arr_data(a), 3 * sizeof(float));
    return 0;
}

static int load_hparams(lm_vit *v, const lm_gguf *g, lm_error *err)
{
    lm_vit_hparams *hp = &v->hp;
    int rc;
    if ((rc = get_pos_int(g, "clip.vision.image_size", 1, 8192, &hp->image_size, err)) < 0 ||
        (rc = get_pos_int(g, "clip.vision.patch_size", 1, 1024, &hp->patch_size, err)) < 0 ||
        (rc = get_pos_int(g, "clip.vision.embedding_length", 1, 1 << 16, &hp->n_embd, err)) < 0 ||
        (rc = get_pos_int(g, "clip.vision.feed_forward_length", 1, 1 << 18, &hp->n_ff, err)) < 0 ||
        (rc = get_pos_int(g, "clip.vision.block_count", 0, VIT_MAX_LAYERS, &hp->n_layer, err)) < 0 ||
        (rc = get_pos_int(g, "clip.vision.attention.head_count", 1, 1024, &hp->n_head, err)) < 0 ||
        (rc = get_pos_int(g, "clip.vision.projection_dim", 1, 1 << 18, &hp->n_embd_out, err)) < 0)
        return rc;
    if ((rc = lm_gguf_get_f32(g, "clip.vision.attention.layer_norm_epsilon", &hp->eps, err)) < 0) return rc;
    if (!(hp->eps > 0.0f && hp->eps < 1.0f))
        return lm_fail(err, LOOM_ERR_FORMAT, "clip.vision.attention.layer_norm_epsilon = %g is not in (0, 1)", hp->eps);
    uint32_t merge = 1;
    if ((rc = lm_gguf_opt_u32(g, "clip.vision.spatial_merge_size", &merge, err)) < 0) return rc;
    if (merge != 1 && merge != 2)
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "clip.vision.spatial_merge_size = %u (loom supports 1 and 2)", merge);
    hp->merge = (int)merge;
    const char *proj = NULL;
    int64_t ki = lm_gguf_find_kv(g, "clip.projector_type") >= 0 ? 0 : -1;
    rc = lm_gguf_get_str(g, ki == 0 ? "clip.projector_type" : "clip.vision.projector_type", &proj, err);
    if (rc < 0) return rc;
    if (strcmp(proj, "mlp") != 0)
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "projector type '%s' (loom supports 'mlp', with "
                       "clip.vision.spatial_merge_size 1 or 2)", proj);
    if (hp->n_embd % hp->n_head)
        return lm_fail(err, LOOM_ERR_FORMAT, "embedding_length %d is not a multiple of head_count %d",
                       hp->n_embd, hp->n_head);
    if (hp->image_size % hp->patch_size)
        return lm_fail(err, LOOM_ERR_FORMAT, "image_size %d is not a multiple of patch_size %d",
                       hp->image_size, hp->patch_size);
    hp->n_patch_side = hp->image_size / hp->patch_size;
    if (hp->n_patch_side % hp->merge)
        return lm_fail(err, LOOM_ERR_FORMAT, "%d patches per side do not merge in %dx%d groups",
                       hp->n_patch_side, hp->merge, hp->merge);
    hp->n_patches    = hp->n_patch_side * hp->n_patch_side;
    hp->n_tokens_out = hp->n_patches / (hp->merge * hp->merge);
    if (lm_gguf_find_tensor(g, "v.class_embd"))
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "v.class_embd: encoders with a class token are not supported");

    /* preprocessing: image_mean/std from the file, fit and filter from loom.* keys */
    v->pre      = lm_preprocess_default();
    v->pre.size = hp->image_size;
    if ((rc = get_f32x3(g, "clip.vision.image_mean", v->pre.mean, err)) < 0 ||
        (rc = get_f32x3(g, "clip.vision.image_std", v->pre.std, err)) < 0)
        return rc;
    const char *s;
    if (lm_gguf_find_kv(g, "loom.vision.fit") >= 0) {
        if ((rc = lm_gguf_get_str(g, "loom.vision.fit", &s, err)) < 0) return rc;
        if (!strcmp(s, "pad")) v->pre.fit = LM_FIT_PAD;
        else if (!strcmp(s, "crop")) v->pre.fit = LM_FIT_CROP;
        else if (!strcmp(s, "stretch")) v->pre.fit = LM_FIT_STRETCH;
        else return lm_fail(err, LOOM_ERR_UNSUPPORTED, "loom.vision.fit = '%s' (pad, crop or stretch)", s);
    }
    if (lm_gguf_find_kv(g, "loom.vision.resize") >= 0) {
        if ((rc = lm_gguf_get_str(g, "loom.vision.resize", &s, err)) < 0) return rc;
        if (!strcmp(s, "bicubic")) v->pre.filter = LM_RESIZE_BICUBIC;
        else if (!strcmp(s, "bilinear")) v->pre.filter = LM_RESIZE_BILINEAR;
        else return lm_fail(err, LOOM_ERR_UNSUPPORTED, "loom.vision.resize = '%s' (bicubic or bilinear)", s);
    }
    return 0;
}

int lm_vit_load(const lm_gguf *g, lm_vit **out, lm_error *err)
{
    *out = NULL;
    lm_vit *v = calloc(1, sizeof *v);
    if (!v) return lm_fail(err, LOOM_ERR_NO_MEMORY, "vision encoder: no memory");
    int rc = load_hparams(v, g, err);
    if (rc < 0) goto fail;
    const lm_vit_hparams *hp = &v->hp;
    const int64_t d = hp->n_embd, p = hp->patch_size, ff = hp->n_ff;
    {
        int64_t ne[4] = {p, p, 3, d};
        if ((rc = get_matrix_shaped(g, "v.patch_embd.weight", 4, ne, 3 * p * p, d, &v->patch_w, err)) < 0) goto fail;
    }
    {
        int64_t ne[2] = {d, hp->n_patches};
        if ((rc = get_floats(v, g, "v.position_embd.weight", 2, ne, 1, &v->pos, err)) < 0) goto fail;
    }
    if ((rc = get_vec(v, g, "v.patch_embd.bias", d, 0, &v->patch_b, err)) < 0 ||
        (rc = get_vec(v, g, "v.pre_ln.weight", d, 0, &v->pre_ln_w, err)) < 0 ||
        (rc = get_vec(v, g, "v.pre_ln.bias", d, 0, &v->pre_ln_b, err)) < 0 ||
        (rc = get_vec(v, g, "v.post_ln.weight", d, 0, &v->post_ln_w, err)) < 0 ||
        (rc = get_vec(v, g, "v.post_ln.bias", d, 0, &v->post_ln_b, err)) < 0)
        goto fail;
    v->layers = calloc((size_t)(hp->n_layer ? hp->n_layer : 1), sizeof *v->layers);
    if (!v->layers) { rc = lm_fail(err, LOOM_ERR_NO_MEMORY, "vision encoder: no memory"); goto fail; }
    for (int il = 0; il < hp->n_layer; il++) {
        vit_layer *L = &v->layers[il];
        char n[96];
#define NAME(s) (snprintf(n, sizeof n, "v.blk.%d.%s", il, s), n)
        if ((rc = get_vec(v, g, NAME("ln1.weight"), d, 1, &L->ln1_w, err)) < 0 ||
            (rc = get_vec(v, g, NAME("ln1.bias"), d, 1, &L->ln1_b, err)) < 0 ||
            (rc = get_vec(v, g, NAME("ln2.weight"), d, 1, &L->ln2_w, err)) < 0 ||
            (rc = get_vec(v, g, NAME("ln2.bias"), d, 1, &L->ln2_b, err)) < 0 ||
            (rc = get_matrix(g, NAME("attn_q.weight"), d, d, &L->wq, err)) < 0 ||
            (rc = get_matrix(g, NAME("attn_k.weight"), d, d, &L->wk, err)) < 0 ||
            (rc = get_matrix(g, NAME("attn_v.weight"), d, d, &L->wv, err)) < 0 ||
            (rc = get_matrix(g, NAME("attn_out.weight"), d, d, &L->wo, err)) < 0 ||
            (rc = get_matrix(g, NAME("ffn_up.weight"), d, ff, &L->up, err)) < 0 ||
            (rc = get_matrix(g, NAME("ffn_down.weight"), ff, d, &L->down, err)) < 0 ||
            (rc = get_vec(v, g, NAME("attn_q.bias"), d, 0, &L->bq, err)) < 0 ||
            (rc = get_vec(v, g, NAME("attn_k.bias"), d, 0, &L->bk, err)) < 0 ||
            (rc = get_vec(v, g, NAME("attn_v.bias"), d, 0, &L->bv, err)) < 0 ||
            (rc = get_vec(v, g, NAME("attn_out.bias"), d, 0, &L->bo, err)) < 0 ||
            (rc = get_vec(v, g, NAME("ffn_up.bias"), ff, 0, &L->up_b, err)) < 0 ||
            (rc = get_vec(v, g, NAME("ffn_down.bias"), d, 0, &L->down_b, err)) < 0)
            goto fail;
        {
            const char *q = L->wq.data, *k = L->wk.data, *vv = L->wv.data;
            const size_t sz = (size_t)d * L->wq.row_bytes;
            if (L->wq.type == L->wk.type && L->wq.type == L->wv.type && k == q + sz && vv == k + sz) {
                L->wqkv = L->wq;
                L->wqkv.n_out = 3 * d;
                L->fused = 1;
            }
        }
        if (lm_gguf_find_tensor(g, NAME("ffn_gate.weight"))) {
            rc = lm_fail(err, LOOM_ERR_UNSUPPORTED, "%s: gated MLP blocks are not supported", n);
            goto fail;
        }
#undef NAME
    }
    /* projector: mm.0 {d·m², hidden}, GELU, mm.2 {hidden, projection_dim} */
    {
        const lm_gguf_tensor *t = lm_gguf_find_tensor(g, "mm.0.weight");
        if (!t || t->n_dims != 2) {
            rc = lm_fail(err, t ? LOOM_ERR_TYPE : LOOM_ERR_NOT_FOUND, "tensor 'mm.0.weight' %s",
                         t ? "must be 2-D" : "is missing (mlp projector)");
            goto fail;
        }
        if (t->ne[1] <= 0 || t->ne[1] > (1 << 18)) {
            rc = lm_fail(err, LOOM_ERR_FORMAT, "tensor 'mm.0.weight': %lld outputs", (long long)t->ne[1]);
            goto fail;
        }
        v->hp.n_mm_hidden = (int)t->ne[1];
        const int64_t m2 = (int64_t)hp->merge * hp->merge;
        if ((rc = get_matrix(g, "mm.0.weight", d * m2, hp->n_mm_hidden, &v->mm0, err)) < 0 ||
            (rc = get_vec(v, g, "mm.0.bias", hp->n_mm_hidden, 0, &v->mm0_b, err)) < 0 ||
            (rc = get_matrix(g, "mm.2.weight", hp->n_mm_hidden, hp->n_embd_out, &v->mm2, err)) < 0 ||
            (rc = get_vec(v, g, "mm.2.bias", hp->n_embd_out, 0, &v->mm2_b, err)) < 0)
            goto fail;
    }
    *out = v;
    return 0;
fail:
    lm_vit_free(&v);
    return rc;
}

void lm_vit_free(lm_vit **pv)
{
    if (!pv || !*pv) return;
    lm_vit *v = *pv;
    for (int i = 0; i < v->n_owned; i++) free(v->owned[i]);
    free(v->layers);
    free(v);
    *pv = NULL;
}

const lm_vit_hparams *lm_vit_hparams_of(const lm_vit *v) { return &v->hp; }
int lm_vit_n_tokens(const lm_vit *v) { return v->hp.n_tokens_out; }
int lm_vit_n_embd_out(const lm_vit *v) { return v->hp.n_embd_out; }
lm_preprocess lm_vit_preprocess_params(const lm_vit *v) { return v->pre; }

int lm_vit_n_fused_qkv(const lm_vit *v)
{
    int n = 0;
    for (int il = 0; il < v->hp.n_layer; il++) n += v->layers[il].fused;
    return n;
}

/* --------------------------------------------------------------------------------------- */

int lm_vit_ctx_create(const lm_vit *v, int max_batch, lm_vit_ctx **out, lm_error *err)
{
    *out = NULL;
    if (max_batch < 1 || max_batch > 4096)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "vision context: max_batch %d not in 1..4096", max_batch);
    const lm_vit_hparams *hp = &v->hp;
    lm_vit_ctx *c = calloc(1, sizeof *c);
    if (!c) return lm_fail(err, LOOM_ERR_NO_MEMORY, "vision context: no memory");
    c->model = v;
    c->max_batch = max_batch;
    const size_t N = (size_t)max_batch * (size_t)hp->n_patches, d = (size_t)hp->n_embd;
    const size_t pp3 = 3 * (size_t)hp->patch_size * (size_t)hp->patch_size;
    const size_t Nm = N / ((size_t)hp->merge * hp->merge);
    struct { float **p; size_t n; } plan[] = {
        {&c->patches, N * pp3}, {&c->x, N * d}, {&c->h, N * d}, {&c->qkv, 3 * N * d},
        {&c->att, N * d}, {&c->ff, N * (size_t)hp->n_ff},
        {&c->merged, hp->merge > 1 ? N * d : 0}, {&c->mm_h, Nm * (size_t)hp->n_mm_hidden},
        {&c->qh, (size_t)hp->n_patches * (d / hp->n_head)}, {&c->vt, (size_t)hp->n_patches * (d / hp->n_head)},
        {&c->oh, (size_t)hp->n_patches * (d / hp->n_head)},
        {&c->scores, (size_t)hp->n_patches * (size_t)hp->n_patches},
    };
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        if (plan[i].n == 0) continue;
        *plan[i].p = aligned_alloc(64, (plan[i].n * sizeof(float) + 63) & ~(size_t)63);
        if (!*plan[i].p) {
            lm_vit_ctx_free(&c);
            return lm_fail(err, LOOM_ERR_NO_MEMORY, "vision context: no memory for %zu floats", plan[i].n);
        }
    }
    *out = c;
    return 0;
}

void lm_vit_ctx_free(lm_vit_ctx **pc)
{
    if (!pc || !*pc) return;
    lm_vit_ctx *c = *pc;
    float *bufs[] = {c->patches, c->x, c->h, c->qkv, c->att, c->ff, c->merged, c->mm_h, c->qh, c->vt, c->oh, c->scores};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(c);
    *pc = NULL;
}

/* --- row-parallel elementwise work ------------------------------------------------------ */

typedef enum { ROW_LAYERNORM, ROW_BIAS, ROW_BIAS_GELU, ROW_BIAS_RESIDUAL, ROW_BIAS_QKV } row_op;

typedef struct row_task {
    row_op       op;
    float       *y;        /* [n_rows][n]                                   */
    const float *x;        /* [n_rows][n] input (layernorm / residual add)  */
    const float *w, *b;    /* [n]                                           */
    const float *b3[3];    /* ROW_BIAS_QKV: biases of the three thirds of a row, or NULL */
    int64_t      n_rows, n;
    float        eps;
} row_task;

static void row_part(void *arg, int ith, int nth)
{
    const row_task *t = arg;
    long long lo, hi;
    lm_split(t->n_rows, ith, nth, &lo, &hi);
    for (long long r = lo; r < hi; r++) {
        float *y = t->y + r * t->n;
        const float *x = t->x ? t->x + r * t->n : NULL;
        switch (t->op) {
        case ROW_LAYERNORM: lm_layernorm(y, x, t->w, t->b, t->n, t->eps); break;
        case ROW_BIAS:
            for (int64_t i = 0; i < t->n; i++) y[i] += t->b[i];
            break;
        case ROW_BIAS_GELU: lm_bias_gelu_erf_fast(y, t->b, t->n); break;
        case ROW_BIAS_QKV:
            for (int part = 0; part < 3; part++)
                if (t->b3[part])
                    for (int64_t i = 0; i < t->n / 3; i++) y[part * (t->n / 3) + i] += t->b3[part][i];
            break;
        case ROW_BIAS_RESIDUAL:   /* y = x + y (+ b): the residual stream is y's partner */
            if (t->b) for (int64_t i = 0; i < t->n; i++) y[i] += t->b[i] + x[i];
            else for (int64_t i = 0; i < t->n; i++) y[i] += x[i];
            break;
        }
    }
}

static void rows_run(lm_pool *pool, row_op op, float *y, const float *x, const float *w, const float *b,
                     int64_t n_rows, int64_t n, float eps)
{
    if (op == ROW_BIAS && !b) return;
    row_task t = {op, y, x, w, b, {NULL, NULL, NULL}, n_rows, n, eps};
    lm_pool_run(pool, row_part, &t);
}

/* Y = X·Wᵀ + b */
static void linear(lm_pool *pool, const lm_matrix *W, const float *b, const float *X, int64_t n_tok, float *Y)
{
    lm_matmul(W, X, n_tok, Y, pool);
    rows_run(pool, ROW_BIAS, Y, NULL, NULL, b, n_tok, W->n_out, 0.0f);
}

/* --- patch extraction -------------------------------------------------------------------- */

typedef struct im2col_task {
    const float *chw;      /* [B][3][S][S]       */
    float       *patches;  /* [B·P][3·p·p]        */
    int          B, S, p, side;
} im2col_task;

static void im2col_part(void *arg, int ith, int nth)
{
    const im2col_task *t = arg;
    const int64_t P = (int64_t)t->side * t->side, total = (int64_t)t->B * P;
    long long lo, hi;
    lm_split(total, ith, nth, &lo, &hi);
    for (long long r = lo; r < hi; r++) {
        const int64_t b = r / P, pi = r % P, py = pi / t->side, px = pi % t->side;
        float *dst = t->patches + r * 3 * t->p * t->p;
        for (int c = 0; c < 3; c++)
            for (int ky = 0; ky < t->p; ky++) {
                const float *src = t->chw + (((size_t)b * 3 + c) * t->S + (size_t)(py * t->p + ky)) * t->S + px * t->p;
                memcpy(dst, src, sizeof(float) * (size_t)t->p);
                dst += t->p;
            }
    }
}

/* --- attention ---------------------------------------------------------------------------
 * Per (image, head), as two GEMMs through lm_matmul:
 *   scores[T][T] = (scale·Q_h)[T][dh] · K_hᵀ      (K_h read in place: rows of stride d)
 *   O_h[T][dh]   = softmax(scores) · V_h           (V_h copied transposed to [dh][T])
 * Q_h is gathered contiguous (and pre-scaled) because lm_matmul takes dense activations. */

typedef struct gather_task {
    const float *src;   /* [T][d], head slice at column h*dh */
    float       *dst;   /* [T][dh] (or [dh][T] when transposed) */
    int64_t      T, d, dh, col;
    float        scale;
    int          transpose, scatter;  /* scatter: dst→src direction (write O_h back) */
} gather_task;

static void gather_part(void *arg, int ith, int nth)
{
    const gather_task *t = arg;
    long long lo, hi;
    lm_split(t->T, ith, nth, &lo, &hi);
    for (long long i = lo; i < hi; i++) {
        const float *s = t->src + i * t->d + t->col;
        if (t->scatter) {
            memcpy((float *)s, t->dst + i * t->dh, sizeof(float) * (size_t)t->dh);
        } else if (t->transpose) {
            for (int64_t e = 0; e < t->dh; e++) t->dst[e * t->T + i] = s[e];
        } else {
            for (int64_t e = 0; e < t->dh; e++) t->dst[i * t->dh + e] = s[e] * t->scale;
        }
    }
}

static void softmax_part(void *arg, int ith, int nth)
{
    const row_task *t = arg;
    long long lo, hi;
    lm_split(t->n_rows, ith, nth, &lo, &hi);
    for (long long r = lo; r < hi; r++) lm_softmax_fast(t->y + r * t->n, t->n);
}

/* q, k, v: [B·T] rows of stride ld (3d when fused, else d). */
static void attention(lm_vit_ctx *c, const float *q, const float *k, const float *v, int64_t ld, int n_img,
                      lm_pool *pool)
{
    const lm_vit_hparams *hp = &c->model->hp;
    const int64_t T = hp->n_patches, d = hp->n_embd, dh = d / hp->n_head;
    const float scale = 1.0f / sqrtf((float)dh);
    for (int b = 0; b < n_img; b++) {
        const size_t base = (size_t)b * T * ld;
        for (int h = 0; h < hp->n_head; h++) {
            const int64_t col = (int64_t)h * dh;
            gather_task gq = {(float *)q + base, c->qh, T, ld, dh, col, scale, 0, 0};
            lm_pool_run(pool, gather_part, &gq);
            gather_task gv = {(float *)v + base, c->vt, T, ld, dh, col, 1.0f, 1, 0};
            lm_pool_run(pool, gather_part, &gv);
            lm_matrix K = {LOOM_TYPE_F32, dh, T, sizeof(float) * (size_t)ld, k + base + col};
            lm_matmul(&K, c->qh, T, c->scores, pool);
            row_task sm = {ROW_BIAS, c->scores, NULL, NULL, NULL, {NULL, NULL, NULL}, T, T, 0.0f};
            lm_pool_run(pool, softmax_part, &sm);
            lm_matrix Vt = {LOOM_TYPE_F32, T, dh, sizeof(float) * (size_t)T, c->vt};
            lm_matmul(&Vt, c->scores, T, c->oh, pool);
            gather_task go = {c->att + (size_t)b * T * d, c->oh, T, d, dh, col, 1.0f, 0, 1};
            lm_pool_run(pool, gather_part, &go);
        }
    }
}

/* --- the forward pass -------------------------------------------------------------------- */

int lm_vit_encode(lm_vit_ctx *c, const float *chw, int n_img, float *out, lm_pool *pool, lm_error *err)
{
    const lm_vit *v = c->model;
    const lm_vit_hparams *hp = &v->hp;
    if (n_img < 1 || n_img > c->max_batch)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "vision encode: %d images, context holds 1..%d",
                       n_img, c->max_batch);
    const int64_t T = hp->n_patches, N = (int64_t)n_img * T, d = hp->n_embd;
    const float eps = hp->eps;

    /* patch embedding: im2col rows · Wᵀ, then + bias + position */
    im2col_task ic = {chw, c->patches, n_img, hp->image_size, hp->patch_size, hp->n_patch_side};
    lm_pool_run(pool, im2col_part, &ic);
    lm_matmul(&v->patch_w, c->patches, N, c->x, pool);
    for (int b = 0; b < n_img; b++)
        rows_run(pool, ROW_BIAS_RESIDUAL, c->x + (size_t)b * T * d, v->pos, NULL, v->patch_b, T, d, 0.0f);
    if (v->pre_ln_w) rows_run(pool, ROW_LAYERNORM, c->x, c->x, v->pre_ln_w, v->pre_ln_b, N, d, eps);

    for (int il = 0; il < hp->n_layer; il++) {
        const vit_layer *L = &v->layers[il];
        rows_run(pool, ROW_LAYERNORM, c->h, c->x, L->ln1_w, L->ln1_b, N, d, eps);
        if (L->fused) {
            lm_matmul(&L->wqkv, c->h, N, c->qkv, pool);
            if (L->bq || L->bk || L->bv) {
                row_task t = {ROW_BIAS_QKV, c->qkv, NULL, NULL, NULL, {L->bq, L->bk, L->bv}, N, 3 * d, 0.0f};
                lm_pool_run(pool, row_part, &t);
            }
            attention(c, c->qkv, c->qkv + d, c->qkv + 2 * d, 3 * d, n_img, pool);
        } else {
            float *q = c->qkv, *k = q + (size_t)N * d, *vv = k + (size_t)N * d;
            linear(pool, &L->wq, L->bq, c->h, N, q);
            linear(pool, &L->wk, L->bk, c->h, N, k);
            linear(pool, &L->wv, L->bv, c->h, N, vv);
            attention(c, q, k, vv, d, n_img, pool);
        }
        lm_matmul(&L->wo, c->att, N, c->h, pool);
        rows_run(pool, ROW_BIAS_RESIDUAL, c->x, c->h, NULL, L->bo, N, d, 0.0f);   /* x += h + bo */

        rows_run(pool, ROW_LAYERNORM, c->h, c->x, L->ln2_w, L->ln2_b, N, d, eps);
        lm_matmul(&L->up, c->h, N, c->ff, pool);
        rows_run(pool, ROW_BIAS_GELU, c->ff, NULL, NULL, L->up_b, N, hp->n_ff, 0.0f);
        lm_matmul(&L->down, c->ff, N, c->h, pool);
        rows_run(pool, ROW_BIAS_RESIDUAL, c->x, c->h, NULL, L->down_b, N, d, 0.0f);
    }
    if (v->post_ln_w) rows_run(pool, ROW_LAYERNORM, c->x, c->x, v->post_ln_w, v->post_ln_b, N, d, eps);

    /* projector input: the tokens themselves, or 2×2 groups concatenated in the order
     * (y,x), (y,x+1), (y+1,x), (y+1,x+1) */
    const float *pin = c->x;
    const int m = hp->merge;
    const int64_t Nm = N / (m * m);
    if (m > 1) {
        const int side = hp->n_patch_side, ms = side / m;
        for (int b = 0; b < n_img; b++)
            for (int my = 0; my < ms; my++)
                for (int mx = 0; mx < ms; mx++) {
                    float *dst = c->merged + (((size_t)b * ms + my) * ms + mx) * (size_t)(d * m * m);
                    for (int dy = 0; dy < m; dy++)
                        for (int dx = 0; dx < m; dx++) {
                            const size_t tok = (size_t)b * T + (size_t)(my * m + dy) * side + (mx * m + dx);
                            memcpy(dst, c->x + tok * d, sizeof(float) * (size_t)d);
                            dst += d;
                        }
                }
        pin = c->merged;
    }
    lm_matmul(&v->mm0, pin, Nm, c->mm_h, pool);
    rows_run(pool, ROW_BIAS_GELU, c->mm_h, NULL, NULL, v->mm0_b, Nm, hp->n_mm_hidden, 0.0f);
    linear(pool, &v->mm2, v->mm2_b, c->mm_h, Nm, out);
    return 0;
}
