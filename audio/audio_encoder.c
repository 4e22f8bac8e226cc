/*
 * Whisper-style audio encoder + voxtral-style projector; see audio_encoder.h and
 * docs/FORMAT.md. Every product is batched over the frames: conv1d via im2col + sgemm,
 * projections via lm_matmul, attention per head as two lm_matmul calls (Q·Kᵀ with K read
 * in place through a strided lm_matrix, then P·V against a transposed copy of V).
 */
#include "audio/audio_encoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/kernels.h"

typedef struct enc_layer {
    const float *ln1_w, *ln1_b;  /* [d]                       */
    lm_matrix    wq, wk, wv, wo; /* {d, d}                    */
    const float *bq, *bv, *bo;   /* [d] (attn_k has no bias)  */
    const float *ln2_w, *ln2_b;  /* [d]                       */
    lm_matrix    up;             /* {d, n_ff}                 */
    const float *b_up;           /* [n_ff]                    */
    lm_matrix    down;           /* {n_ff, d}                 */
    const float *b_down;         /* [d]                       */
} enc_layer;

struct lm_audio_encoder {
    lm_audio_hparams hp;
    const float *conv1_w;   /* [d][n_mel][3] (ggml {3, n_mel, d}) */
    const float *conv1_b;   /* [d]                                 */
    const float *conv2_w;   /* [d][d][3]                           */
    const float *conv2_b;   /* [d]                                 */
    const float *pos;       /* [n_pos][d]                          */
    enc_layer   *layers;    /* [n_layer]                           */
    const float *post_w, *post_b;   /* [d]                         */
    lm_matrix    mlp1;      /* {stack·d, d_proj}                   */
    const float *mlp1_b;    /* [d_proj] or NULL                    */
    lm_matrix    mlp2;      /* {d_proj, d_proj}                    */
    const float *mlp2_b;    /* [d_proj] or NULL                    */

    float **owned;          /* F32 copies of non-F32 vectors, freed with the encoder */
    int     n_owned, cap_owned;

    /* Workspace for the longest input (T = 2·n_pos mel frames, T2 = n_pos). */
    float *c1;      /* [d][T]                          conv1 output         */
    float *col;     /* [max(n_mel·3·T, d·3·T2)]         im2col scratch       */
    float *c2;      /* [d][T2]                         conv2 output         */
    float *x;       /* [T2 padded to stack][d]         residual stream      */
    float *h;       /* [T2][d]                         normed input         */
    float *q, *k, *v, *ao; /* [T2][d]                  attention            */
    float *qh;      /* [T2][hd]                        scaled head queries  */
    float *vt;      /* [hd][T2]                        head values, transposed */
    float *att;     /* [T2][T2]                        scores / probabilities */
    float *oh;      /* [T2][hd]                        head output          */
    float *ff;      /* [T2][max(n_ff, d_proj)]         FFN / projector hidden */
};

/* ---- loading ---------------------------------------------------------------------------- */

static int get_dim(const lm_gguf *g, const char *key, int lo, int hi, int *out, lm_error *err)
{
    uint32_t v = 0;
    int rc = lm_gguf_get_u32(g, key, &v, err);
    if (rc < 0) return rc;
    if (v < (uint32_t)lo || v > (uint32_t)hi)
        return lm_fail(err, LOOM_ERR_FORMAT, "audio encoder: %s = %u outside %d..%d", key, v, lo, hi);
    *out = (int)v;
    return 0;
}

/* A tensor as floats: in place when F32, else converted into an owned copy. */
static int get_f32(lm_audio_encoder *e, const lm_gguf *g, const char *name, int n_dims,
                   const int64_t *ne, int optional, const float **out, lm_error *err)
{
    *out = NULL;
    if (optional && !lm_gguf_find_tensor(g, name)) return 0;
    const lm_gguf_tensor *t = NULL;
    int rc = lm_gguf_get_tensor(g, name, n_dims, ne, &t, err);
    if (rc < 0) return rc;
    int64_t n = 1;
    for (int i = 0; i < LM_GGUF_MAX_DIMS; i++) n *= t->ne[i];   /* validated by the reader */
    if (t->type == LOOM_TYPE_F32) {
        *out = t->data;
        return 0;
    }
    if (n % lm_type_block_len(t->type) != 0)
        return lm_fail(err, LOOM_ERR_TYPE, "audio encoder: tensor '%s' (%s) has %lld values, not whole blocks",
                       name, loom_type_name(t->type), (long long)n);
    if (e->n_owned == e->cap_owned) {
        int cap = e->cap_owned ? 2 * e->cap_owned : 16;
        float **o = realloc(e->owned, (size_t)cap * sizeof *o);
        if (!o) return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio encoder: out of memory");
        e->owned = o;
        e->cap_owned = cap;
    }
    float *f = malloc((size_t)n * sizeof *f);
    if (!f) return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio encoder: out of memory for '%s'", name);
    lm_row_to_f32(t->type, t->data, f, n);
    e->owned[e->n_owned++] = f;
    *out = f;
    return 0;
}

static int get_vec(lm_audio_encoder *e, const lm_gguf *g, const char *name, int64_t n, int optional,
                   const float **out, lm_error *err)
{
    return get_f32(e, g, name, 1, &n, optional, out, err);
}

/* A weight matrix {n_in, n_out}, used in place in any type the kernels compute with. */
static int get_mat(const lm_gguf *g, const char *name, int64_t n_in, int64_t n_out, lm_matrix *m, lm_error *err)
{
    const int64_t ne[2] = {n_in, n_out};
    const lm_gguf_tensor *t = NULL;
    int rc = lm_gguf_get_tensor(g, name, 2, ne, &t, err);
    if (rc < 0) return rc;
    size_t rb = lm_row_bytes(t->type, n_in);
    if (rb == 0)
        return lm_fail(err, LOOM_ERR_TYPE, "audio encoder: tensor '%s': rows of %lld values do not fit type %s",
                       name, (long long)n_in, loom_type_name(t->type));
    *m = (lm_matrix){.type = t->type, .n_in = n_in, .n_out = n_out, .row_bytes = rb, .data = t->data};
    return 0;
}

static int load_layer(lm_audio_encoder *e, const lm_gguf *g, int il, enc_layer *L, lm_error *err)
{
    const int64_t d = e->hp.d, ff = e->hp.n_ff;
    char n[96];
    int rc = 0;
#define NAME(s) (snprintf(n, sizeof n, "a.blk.%d.%s", il, s), n)
    if (!rc) rc = get_vec(e, g, NAME("ln1.weight"), d, 0, &L->ln1_w, err);
    if (!rc) rc = get_vec(e, g, NAME("ln1.bias"), d, 0, &L->ln1_b, err);
    if (!rc) rc = get_mat(g, NAME("attn_q.weight"), d, d, &L->wq, err);
    if (!rc) rc = get_vec(e, g, NAME("attn_q.bias"), d, 0, &L->bq, err);
    if (!rc) rc = get_mat(g, NAME("attn_k.weight"), d, d, &L->wk, err);
    if (!rc) rc = get_mat(g, NAME("attn_v.weight"), d, d, &L->wv, err);
    if (!rc) rc = get_vec(e, g, NAME("attn_v.bias"), d, 0, &L->bv, err);
    if (!rc) rc = get_mat(g, NAME("attn_out.weight"), d, d, &L->wo, err);
    if (!rc) rc = get_vec(e, g, NAME("attn_out.bias"), d, 0, &L->bo, err);
    if (!rc) rc = get_vec(e, g, NAME("ln2.weight"), d, 0, &L->ln2_w, err);
    if (!rc) rc = get_vec(e, g, NAME("ln2.bias"), d, 0, &L->ln2_b, err);
    if (!rc) rc = get_mat(g, NAME("ffn_up.weight"), d, ff, &L->up, err);
    if (!rc) rc = get_vec(e, g, NAME("ffn_up.bias"), ff, 0, &L->b_up, err);
    if (!rc) rc = get_mat(g, NAME("ffn_down.weight"), ff, d, &L->down, err);
    if (!rc) rc = get_vec(e, g, NAME("ffn_down.bias"), d, 0, &L->b_down, err);
#undef NAME
    return rc;
}

void lm_audio_encoder_free(lm_audio_encoder **pe)
{
    if (!pe || !*pe) return;
    lm_audio_encoder *e = *pe;
    for (int i = 0; i < e->n_owned; i++) free(e->owned[i]);
    free(e->owned);
    free(e->layers);
    float *ws[] = {e->c1, e->col, e->c2, e->x, e->h, e->q, e->k, e->v, e->ao, e->qh, e->vt, e->att, e->oh, e->ff};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) free(ws[i]);
    free(e);
    *pe = NULL;
}

static float *alloc_floats(int64_t n)
{
    return n > 0 && (uint64_t)n <= SIZE_MAX / sizeof(float) ? malloc((size_t)n * sizeof(float)) : NULL;
}

static int alloc_workspace(lm_audio_encoder *e, lm_error *err)
{
    const int64_t d = e->hp.d, T2 = e->hp.n_pos, T = 2 * T2, hd = d / e->hp.n_head;
    const int64_t T2s = (T2 + e->hp.stack - 1) / e->hp.stack * e->hp.stack;
    const int64_t col = e->hp.n_mel * 3 * T > d * 3 * T2 ? e->hp.n_mel * 3 * T : d * 3 * T2;
    const int64_t wide = e->hp.n_ff > e->hp.d_proj ? e->hp.n_ff : e->hp.d_proj;
    e->c1 = alloc_floats(d * T);
    e->col = alloc_floats(col);
    e->c2 = alloc_floats(d * T2);
    e->x = alloc_floats(T2s * d);
    e->h = alloc_floats(T2 * d);
    e->q = alloc_floats(T2 * d);
    e->k = alloc_floats(T2 * d);
    e->v = alloc_floats(T2 * d);
    e->ao = alloc_floats(T2 * d);
    e->qh = alloc_floats(T2 * hd);
    e->vt = alloc_floats(hd * T2);
    e->att = alloc_floats(T2 * T2);
    e->oh = alloc_floats(T2 * hd);
    e->ff = alloc_floats(T2 * wide);
    if (!e->c1 || !e->col || !e->c2 || !e->x || !e->h || !e->q || !e->k || !e->v || !e->ao || !e->qh ||
        !e->vt || !e->att || !e->oh || !e->ff)
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio encoder: out of memory for the workspace (n_pos %lld, d %lld)",
                       (long long)T2, (long long)d);
    return 0;
}

int lm_audio_encoder_load(const lm_gguf *g, lm_audio_encoder **out, lm_error *err)
{
    if (!out) return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio encoder: out is NULL");
    *out = NULL;
    if (!g) return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio encoder: no model file");
    lm_audio_encoder *e = calloc(1, sizeof *e);
    if (!e) return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio encoder: out of memory");
    lm_audio_hparams *hp = &e->hp;
    int rc = 0;
    if (!rc) rc = get_dim(g, "clip.audio.num_mel_bins", 1, 256, &hp->n_mel, err);
    if (!rc) rc = get_dim(g, "clip.audio.embedding_length", 1, 16384, &hp->d, err);
    if (!rc) rc = get_dim(g, "clip.audio.feed_forward_length", 1, 65536, &hp->n_ff, err);
    if (!rc) rc = get_dim(g, "clip.audio.block_count", 0, 256, &hp->n_layer, err);
    if (!rc) rc = get_dim(g, "clip.audio.attention.head_count", 1, 1024, &hp->n_head, err);
    if (!rc) rc = get_dim(g, "clip.audio.projector.stack_factor", 1, 64, &hp->stack, err);
    if (!rc) rc = get_dim(g, "clip.audio.projection_dim", 1, 65536, &hp->d_proj, err);
    hp->eps = 1e-5f;
    if (!rc) rc = lm_gguf_opt_f32(g, "clip.audio.attention.layer_norm_epsilon", &hp->eps, err);
    if (!rc && !(hp->eps > 0 && hp->eps < 1))
        rc = lm_fail(err, LOOM_ERR_FORMAT, "audio encoder: layer_norm_epsilon %g outside (0, 1)", hp->eps);
    if (!rc && hp->d % hp->n_head != 0)
        rc = lm_fail(err, LOOM_ERR_FORMAT, "audio encoder: embedding_length %d not divisible by head_count %d",
                     hp->d, hp->n_head);
    const char *ptype = NULL;
    if (!rc && lm_gguf_find_kv(g, "clip.audio.projector_type") >= 0) {
        rc = lm_gguf_get_str(g, "clip.audio.projector_type", &ptype, err);
        if (!rc && strcmp(ptype, "voxtral") != 0)
            rc = lm_fail(err, LOOM_ERR_UNSUPPORTED, "audio encoder: projector type '%s' (loom implements 'voxtral')", ptype);
    }
    const int64_t d = hp->d, n_mel = hp->n_mel;
    if (!rc) {
        const int64_t ne[3] = {3, n_mel, d};
        rc = get_f32(e, g, "a.conv1d.1.weight", 3, ne, 0, &e->conv1_w, err);
    }
    if (!rc) rc = get_vec(e, g, "a.conv1d.1.bias", d, 0, &e->conv1_b, err);
    if (!rc) {
        const int64_t ne[3] = {3, d, d};
        rc = get_f32(e, g, "a.conv1d.2.weight", 3, ne, 0, &e->conv2_w, err);
    }
    if (!rc) rc = get_vec(e, g, "a.conv1d.2.bias", d, 0, &e->conv2_b, err);
    if (!rc) {
        const lm_gguf_tensor *t = lm_gguf_find_tensor(g, "a.position_embd.weight");
        if (!t) rc = lm_fail(err, LOOM_ERR_NOT_FOUND, "audio encoder: tensor 'a.position_embd.weight' missing");
        else if (t->ne[1] < 1 || t->ne[1] > 8192)
            rc = lm_fail(err, LOOM_ERR_FORMAT, "audio encoder: a.position_embd.weight has %lld positions (1..8192)",
                         (long long)t->ne[1]);
        else {
            hp->n_pos = (int)t->ne[1];
            const int64_t ne[2] = {d, hp->n_pos};
            rc = get_f32(e, g, "a.position_embd.weight", 2, ne, 0, &e->pos, err);
        }
    }
    if (!rc) {
        e->layers = calloc((size_t)(hp->n_layer ? hp->n_layer : 1), sizeof *e->layers);
        if (!e->layers) rc = lm_fail(err, LOOM_ERR_NO_MEMORY, "audio encoder: out of memory");
    }
    for (int il = 0; !rc && il < hp->n_layer; il++) rc = load_layer(e, g, il, &e->layers[il], err);
    if (!rc) rc = get_vec(e, g, "a.post_ln.weight", d, 0, &e->post_w, err);
    if (!rc) rc = get_vec(e, g, "a.post_ln.bias", d, 0, &e->post_b, err);
    if (!rc) rc = get_mat(g, "mm.a.mlp.1.weight", d * hp->stack, hp->d_proj, &e->mlp1, err);
    if (!rc) rc = get_vec(e, g, "mm.a.mlp.1.bias", hp->d_proj, 1, &e->mlp1_b, err);
    if (!rc) rc = get_mat(g, "mm.a.mlp.2.weight", hp->d_proj, hp->d_proj, &e->mlp2, err);
    if (!rc) rc = get_vec(e, g, "mm.a.mlp.2.bias", hp->d_proj, 1, &e->mlp2_b, err);
    if (!rc) rc = alloc_workspace(e, err);
    if (rc < 0) {
        lm_audio_encoder_free(&e);
        return rc;
    }
    *out = e;
    return 0;
}

const lm_audio_hparams *lm_audio_encoder_hparams(const lm_audio_encoder *e) { return e ? &e->hp : NULL; }

int64_t lm_audio_encoder_max_frames(const lm_audio_encoder *e) { return e ? 2 * (int64_t)e->hp.n_pos : 0; }

int64_t lm_audio_encoder_n_tokens(const lm_audio_encoder *e, int64_t T)
{
    if (!e || T < 1) return 0;
    const int64_t T2 = (T - 1) / 2 + 1;
    return (T2 + e->hp.stack - 1) / e->hp.stack;
}

/* ---- encoding ---------------------------------------------------------------------------- */

typedef struct rows_job {
    float       *x;       /* [n_rows][n] */
    const float *w, *b;   /* layernorm affine (or unused) */
    int64_t      n_rows, n;
    float        eps;
} rows_job;

static void softmax_rows(void *arg, int ith, int nth)
{
    rows_job *j = arg;
    long long lo, hi;
    lm_split(j->n_rows, ith, nth, &lo, &hi);
    for (long long r = lo; r < hi; r++) lm_softmax_fast(j->x + r * j->n, j->n);
}

static void gelu_rows(void *arg, int ith, int nth)
{
    rows_job *j = arg;
    long long lo, hi;
    lm_split(j->n_rows, ith, nth, &lo, &hi);
    lm_bias_gelu_erf_fast(j->x + lo * j->n, NULL, (hi - lo) * j->n);
}

static void run_rows(lm_task_fn fn, float *x, int64_t n_rows, int64_t n, lm_pool *pool)
{
    rows_job j = {.x = x, .n_rows = n_rows, .n = n};
    lm_pool_run(pool, fn, &j);
}

/* y[t][:] += b for t < n_rows (b may be NULL). */
static void add_bias(float *y, const float *b, int64_t n_rows, int64_t n)
{
    if (!b) return;
    for (int64_t t = 0; t < n_rows; t++)
        for (int64_t i = 0; i < n; i++) y[t * n + i] += b[i];
}

static void layernorm_rows(float *y, const float *x, const float *w, const float *b, int64_t n_rows,
                           int64_t n, float eps)
{
    for (int64_t t = 0; t < n_rows; t++) lm_layernorm(y + t * n, x + t * n, w, b, n, eps);
}

/* h = LN1(x); ao = MHA(h); x += Wo·ao + bo. */
static void attention(lm_audio_encoder *e, const enc_layer *L, int64_t T2, lm_pool *pool)
{
    const int64_t d = e->hp.d, H = e->hp.n_head, hd = d / H;
    const float scale = 1.0f / sqrtf((float)hd);
    layernorm_rows(e->h, e->x, L->ln1_w, L->ln1_b, T2, d, e->hp.eps);
    lm_matmul(&L->wq, e->h, T2, e->q, pool);
    add_bias(e->q, L->bq, T2, d);
    lm_matmul(&L->wk, e->h, T2, e->k, pool);
    lm_matmul(&L->wv, e->h, T2, e->v, pool);
    add_bias(e->v, L->bv, T2, d);
    for (int64_t h = 0; h < H; h++) {
        for (int64_t t = 0; t < T2; t++)
            for (int64_t i = 0; i < hd; i++) {
                e->qh[t * hd + i] = e->q[t * d + h * hd + i] * scale;
                e->vt[i * T2 + t] = e->v[t * d + h * hd + i];
            }
        /* scores[t][s] = qh[t] · k[s][h·hd : (h+1)·hd], K read in place (stride d). */
        const lm_matrix K = {.type = LOOM_TYPE_F32, .n_in = hd, .n_out = T2,
                             .row_bytes = (size_t)d * sizeof(float), .data = e->k + h * hd};
        lm_matmul(&K, e->qh, T2, e->att, pool);
        run_rows(softmax_rows, e->att, T2, T2, pool);
        const lm_matrix V = {.type = LOOM_TYPE_F32, .n_in = T2, .n_out = hd,
                             .row_bytes = (size_t)T2 * sizeof(float), .data = e->vt};
        lm_matmul(&V, e->att, T2, e->oh, pool);
        for (int64_t t = 0; t < T2; t++) memcpy(e->ao + t * d + h * hd, e->oh + t * hd, (size_t)hd * sizeof(float));
    }
    lm_matmul(&L->wo, e->ao, T2, e->h, pool);
    add_bias(e->h, L->bo, T2, d);
    for (int64_t i = 0; i < T2 * d; i++) e->x[i] += e->h[i];
}

/* x += W_down·GELU(W_up·LN2(x) + b_up) + b_down. */
static void ffn(lm_audio_encoder *e, const enc_layer *L, int64_t T2, lm_pool *pool)
{
    const int64_t d = e->hp.d, ff = e->hp.n_ff;
    layernorm_rows(e->h, e->x, L->ln2_w, L->ln2_b, T2, d, e->hp.eps);
    lm_matmul(&L->up, e->h, T2, e->ff, pool);
    add_bias(e->ff, L->b_up, T2, ff);
    run_rows(gelu_rows, e->ff, T2, ff, pool);
    lm_matmul(&L->down, e->ff, T2, e->h, pool);
    add_bias(e->h, L->b_down, T2, d);
    for (int64_t i = 0; i < T2 * d; i++) e->x[i] += e->h[i];
}

int lm_audio_encoder_encode(lm_audio_encoder *e, const float *mel, int64_t T, float *out,
                            lm_pool *pool, lm_error *err)
{
    if (!e || !mel || !out) return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio encoder: NULL argument");
    if (T < 1 || T > lm_audio_encoder_max_frames(e))
        return lm_fail(err, LOOM_ERR_LIMIT, "audio encoder: %lld mel frames outside 1..%lld (the position table)",
                       (long long)T, (long long)lm_audio_encoder_max_frames(e));
    const int64_t d = e->hp.d, n_mel = e->hp.n_mel, S = e->hp.stack;
    const int64_t T2 = (T - 1) / 2 + 1, n_tok = (T2 + S - 1) / S;

    /* Convolutions in channel-major layout, then to frame-major with positions added. */
    lm_conv1d(e->c1, mel, e->conv1_w, e->conv1_b, n_mel, T, d, 3, 1, 1, e->col, pool);
    run_rows(gelu_rows, e->c1, d, T, pool);
    lm_conv1d(e->c2, e->c1, e->conv2_w, e->conv2_b, d, T, d, 3, 2, 1, e->col, pool);
    run_rows(gelu_rows, e->c2, d, T2, pool);
    for (int64_t c = 0; c < d; c++)
        for (int64_t t = 0; t < T2; t++) e->x[t * d + c] = e->c2[c * T2 + t] + e->pos[t * d + c];

    for (int il = 0; il < e->hp.n_layer; il++) {
        attention(e, &e->layers[il], T2, pool);
        ffn(e, &e->layers[il], T2, pool);
    }
    layernorm_rows(e->x, e->x, e->post_w, e->post_b, T2, d, e->hp.eps);

    /* Projector: [T2][d] zero-padded to n_tok·S rows is already [n_tok][S·d] in memory. */
    memset(e->x + T2 * d, 0, (size_t)((n_tok * S - T2) * d) * sizeof(float));
    lm_matmul(&e->mlp1, e->x, n_tok, e->ff, pool);
    add_bias(e->ff, e->mlp1_b, n_tok, e->hp.d_proj);
    run_rows(gelu_rows, e->ff, n_tok, e->hp.d_proj, pool);
    lm_matmul(&e->mlp2, e->ff, n_tok, out, pool);
    add_bias(out, e->mlp2_b, n_tok, e->hp.d_proj);
    return 0;
}
