/* deepseek2 decoder: GGUF binding, latent KV cache, forward pass. See decoder.h. */
#include "lib/core/decoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/blas.h"

#define ARCH "deepseek2"
#define LM_MAX_EXPERT_GROUPS 256
#define LM_BATCHED_ATTN_MIN 8   /* chunks this long use the GEMM attention */
/* Up to this many rows, Q8_0 weights multiply activations quantized to int8 blocks
 * (lm_matvec_q8: llama.cpp's q8_0 × q8_0 dot), one row at a time; longer chunks run the
 * GEMM on the same values rounded to floats (round_like). */
#define LM_Q8_INT8_MAX_ROWS 4

/* ---------------------------------------------------------------------------------------
 * Loading: keys
 * ------------------------------------------------------------------------------------- */

/* "deepseek2.<name>" into buf. */
static const char *arch_key(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, ARCH ".%s", name);
    return buf;
}

/* Read an integer key into *out; a missing optional key leaves *out unchanged. Values must
 * fit an int32 and be >= 0. */
static int key_int(const lm_gguf *g, const char *name, int required, int32_t *out, lm_error *err)
{
    char key[128];
    arch_key(key, sizeof key, name);
    uint32_t v = 0;
    int rc;
    if (required) {
        rc = lm_gguf_get_u32(g, key, &v, err);
    } else {
        if (lm_gguf_find_kv(g, key) < 0) return 0;
        rc = lm_gguf_get_u32(g, key, &v, err);
    }
    if (rc < 0) return rc;
    if (v > INT32_MAX) return lm_fail(err, LOOM_ERR_FORMAT, "key '%s': value %u is too large", key, v);
    *out = (int32_t)v;
    return 0;
}

static int key_f32(const lm_gguf *g, const char *name, int required, float *out, lm_error *err)
{
    char key[128];
    arch_key(key, sizeof key, name);
    return required ? lm_gguf_get_f32(g, key, out, err) : lm_gguf_opt_f32(g, key, out, err);
}

static float yarn_get_mscale(float scale, float mscale)
{
    return scale <= 1.0f ? 1.0f : 0.1f * mscale * logf(scale) + 1.0f;
}

/* RoPE / YaRN parameters and kq_scale, with llama.cpp's arithmetic (llama-context.cpp's
 * yarn_attn_factor and deepseek2.cpp's mscale), so scores agree with the peer. */
static int load_rope(const lm_gguf *g, lm_decoder_hparams *hp, lm_error *err)
{
    char key[128];
    float freq_base = 10000.0f, factor = 0.0f, log_mul = 0.0f, rope_attn_factor = 1.0f;
    int32_t n_ctx_orig = hp->n_ctx_train;
    int rc;
    if ((rc = key_f32(g, "rope.freq_base", 0, &freq_base, err)) < 0) return rc;
    if ((rc = key_f32(g, "rope.scaling.factor", 0, &factor, err)) < 0) return rc;
    if (factor == 0.0f && (rc = key_f32(g, "rope.scale_linear", 0, &factor, err)) < 0) return rc;
    if ((rc = key_f32(g, "rope.scaling.yarn_log_multiplier", 0, &log_mul, err)) < 0) return rc;
    log_mul /= 0.1f; /* the converter stores 0.1·mscale_all_dim */
    if ((rc = key_f32(g, "rope.scaling.attn_factor", 0, &rope_attn_factor, err)) < 0) return rc;
    if ((rc = key_int(g, "rope.scaling.original_context_length", 0, &n_ctx_orig, err)) < 0) return rc;

    const char *type = "linear";
    arch_key(key, sizeof key, "rope.scaling.type");
    if (lm_gguf_find_kv(g, key) >= 0 && (rc = lm_gguf_get_str(g, key, &type, err)) < 0) return rc;
    int yarn = 0;
    float freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
    if (!strcmp(type, "none")) freq_scale = 1.0f;
    else if (!strcmp(type, "yarn")) yarn = 1;
    else if (strcmp(type, "linear"))
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "key '%s': rope scaling '%s' is not supported "
                       "(none, linear, yarn)", key, type);
    if (!(freq_base > 0.0f) || !(freq_scale > 0.0f) || !isfinite(freq_scale))
        return lm_fail(err, LOOM_ERR_FORMAT, "rope: freq_base %g / scaling factor %g out of range",
                       freq_base, factor);

    float attn_factor = 1.0f;
    if (yarn) {
        const float f = 1.0f / freq_scale;
        if (log_mul != 0.0f) {
            const float mscale = log_mul != 1.0f ? log_mul : 1.0f;
            attn_factor = yarn_get_mscale(f, mscale) / yarn_get_mscale(f, log_mul);
        } else {
            attn_factor = yarn_get_mscale(f, 1.0f);
        }
        attn_factor *= 1.0f / (1.0f + 0.1f * logf(f)); /* ggml's rope multiplies it back */
    }
    attn_factor *= rope_attn_factor;

    hp->rope = (lm_rope){
        .mode = LM_ROPE_NORM, .n_dims = hp->n_rope, .freq_base = freq_base,
        .freq_scale = freq_scale, .n_ctx_orig = n_ctx_orig, .ext_factor = yarn ? 1.0f : 0.0f,
        .attn_factor = attn_factor, .beta_fast = 32.0f, .beta_slow = 1.0f,
    };
    const float attn_factor_org = attn_factor * (1.0f + 0.1f * logf(1.0f / freq_scale));
    const float mscale = attn_factor_org * (1.0f + 0.1f * log_mul * logf(1.0f / freq_scale));
    hp->kq_scale = mscale * mscale / sqrtf((float)(hp->n_nope + hp->n_rope));
    return 0;
}

static int load_hparams(const lm_gguf *g, lm_decoder_hparams *hp, lm_error *err)
{
    const char *arch = NULL;
    int rc;
    if ((rc = lm_gguf_get_str(g, "general.architecture", &arch, err)) < 0) return rc;
    if (strcmp(arch, ARCH))
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "key 'general.architecture': '%s' is not '" ARCH "'", arch);

    memset(hp, 0, sizeof *hp);
    int32_t n_layer_all = 0, nextn = 0, key_len = 0, val_len = 0, k_mla = 0, v_mla = 0;
    if ((rc = key_int(g, "block_count", 1, &n_layer_all, err)) < 0) return rc;
    if ((rc = key_int(g, "nextn_predict_layers", 0, &nextn, err)) < 0) return rc;
    if ((rc = key_int(g, "context_length", 1, &hp->n_ctx_train, err)) < 0) return rc;
    if ((rc = key_int(g, "embedding_length", 1, &hp->n_embd, err)) < 0) return rc;
    if ((rc = key_int(g, "attention.head_count", 1, &hp->n_head, err)) < 0) return rc;
    if ((rc = key_int(g, "feed_forward_length", 0, &hp->n_ff, err)) < 0) return rc;
    if (hp->n_embd <= 0 || hp->n_head <= 0 || n_layer_all <= nextn)
        return lm_fail(err, LOOM_ERR_FORMAT, "keys '" ARCH ".{embedding_length, attention.head_count, "
                       "block_count}': %d / %d / %d must be positive", hp->n_embd, hp->n_head, n_layer_all);
    hp->n_layer = n_layer_all - nextn;
    key_len = val_len = hp->n_embd / hp->n_head;
    if ((rc = key_int(g, "attention.key_length", 0, &key_len, err)) < 0) return rc;
    if ((rc = key_int(g, "attention.value_length", 0, &val_len, err)) < 0) return rc;
    hp->n_rope = key_len;
    if ((rc = key_int(g, "rope.dimension_count", 0, &hp->n_rope, err)) < 0) return rc;
    if ((rc = key_f32(g, "attention.layer_norm_rms_epsilon", 1, &hp->rms_eps, err)) < 0) return rc;
    if ((rc = key_int(g, "leading_dense_block_count", 0, &hp->n_dense_lead, err)) < 0) return rc;
    /* llama.cpp's "lite" variants (V2-Lite: 26/27 layers) have no q_lora_rank key */
    const int lite = n_layer_all == 26 || n_layer_all == 27;
    if (!lite && (rc = key_int(g, "attention.q_lora_rank", 1, &hp->q_lora, err)) < 0) return rc;
    if ((rc = key_int(g, "attention.kv_lora_rank", 1, &hp->kv_lora, err)) < 0) return rc;
    if ((rc = key_int(g, "attention.key_length_mla", 0, &k_mla, err)) < 0) return rc;
    if ((rc = key_int(g, "attention.value_length_mla", 0, &v_mla, err)) < 0) return rc;
    if ((rc = key_int(g, "expert_feed_forward_length", 1, &hp->n_ff_exp, err)) < 0) return rc;
    if ((rc = key_int(g, "expert_shared_count", 1, &hp->n_expert_shared, err)) < 0) return rc;
    if ((rc = key_int(g, "expert_count", 0, &hp->n_expert, err)) < 0) return rc;
    if ((rc = key_int(g, "expert_used_count", 0, &hp->n_expert_used, err)) < 0) return rc;
    if ((rc = key_int(g, "expert_group_count", 0, &hp->n_group, err)) < 0) return rc;
    if ((rc = key_int(g, "expert_group_used_count", 0, &hp->n_group_used, err)) < 0) return rc;
    if ((rc = key_f32(g, "expert_weights_scale", 0, &hp->weights_scale, err)) < 0) return rc;
    char key[128];
    if ((rc = lm_gguf_opt_bool(g, arch_key(key, sizeof key, "expert_weights_norm"), &hp->weights_norm, err)) < 0)
        return rc;
    if ((rc = key_int(g, "expert_gating_func", 0, &hp->gating, err)) < 0) return rc;
    if (hp->gating == 0) hp->gating = LM_GATING_SOFTMAX; /* V2 files without the key */

    /* Sizes are bounded so every product below fits comfortably in int64/size_t. */
    const int32_t LIM = 1 << 22;
    const struct { const char *key; int32_t value, max; } dims[] = {
        {"embedding_length", hp->n_embd, LIM}, {"attention.head_count", hp->n_head, 4096},
        {"block_count", hp->n_layer, 4096}, {"attention.q_lora_rank", hp->q_lora, LIM},
        {"attention.kv_lora_rank", hp->kv_lora, LIM}, {"attention.key_length", key_len, LIM},
        {"attention.value_length", val_len, LIM}, {"attention.key_length_mla", k_mla, LIM},
        {"attention.value_length_mla", v_mla, LIM}, {"feed_forward_length", hp->n_ff, LIM},
        {"expert_feed_forward_length", hp->n_ff_exp, LIM}, {"expert_count", hp->n_expert, 65536},
        {"expert_shared_count", hp->n_expert_shared, 64},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].value > dims[i].max)
            return lm_fail(err, LOOM_ERR_LIMIT, "key '" ARCH ".%s' is %d, more than loom's limit of %d",
                           dims[i].key, dims[i].value, dims[i].max);

    if ((k_mla == 0) != (v_mla == 0))
        return lm_fail(err, LOOM_ERR_FORMAT, "keys '" ARCH ".attention.key_length_mla' and "
                       "'value_length_mla' must both be present or both absent");
    hp->mla_split = k_mla != 0;
    if (hp->mla_split) {
        if (key_len != hp->kv_lora + hp->n_rope)
            return lm_fail(err, LOOM_ERR_FORMAT, "key '" ARCH ".attention.key_length' = %d, expected "
                           "kv_lora_rank + rope.dimension_count = %d", key_len, hp->kv_lora + hp->n_rope);
        if (val_len != hp->kv_lora)
            return lm_fail(err, LOOM_ERR_FORMAT, "key '" ARCH ".attention.value_length' = %d, expected "
                           "kv_lora_rank = %d", val_len, hp->kv_lora);
        hp->n_nope = k_mla - hp->n_rope;
        hp->n_v = v_mla;
    } else {
        hp->n_nope = key_len - hp->n_rope;
        hp->n_v = val_len;
    }
    if (hp->n_rope <= 0 || hp->n_rope % 2 || hp->n_nope < 1 || hp->n_v < 1 || hp->kv_lora < 1)
        return lm_fail(err, LOOM_ERR_FORMAT, ARCH ": head dims nope %d / rope %d / v %d / kv_lora %d "
                       "are invalid (rope must be even, all positive)", hp->n_nope, hp->n_rope, hp->n_v,
                       hp->kv_lora);
    if (hp->n_dense_lead > hp->n_layer) hp->n_dense_lead = hp->n_layer;
    if (hp->n_dense_lead > 0 && hp->n_ff <= 0)
        return lm_fail(err, LOOM_ERR_NOT_FOUND, "key '" ARCH ".feed_forward_length' is required by "
                       "%d leading dense layers", hp->n_dense_lead);
    if (hp->n_dense_lead < hp->n_layer) {
        if (hp->n_expert <= 0)
            return lm_fail(err, LOOM_ERR_NOT_FOUND, "key '" ARCH ".expert_count' must be > 0 for MoE layers");
        if (hp->n_expert_used <= 0 || hp->n_expert_used > hp->n_expert)
            return lm_fail(err, LOOM_ERR_FORMAT, "key '" ARCH ".expert_used_count' = %d, expected 1..%d",
                           hp->n_expert_used, hp->n_expert);
        if (hp->n_ff_exp <= 0)
            return lm_fail(err, LOOM_ERR_FORMAT, "key '" ARCH ".expert_feed_forward_length' must be > 0");
        if (hp->n_group > 1) {
            if (hp->n_group > LM_MAX_EXPERT_GROUPS || hp->n_expert % hp->n_group || hp->n_group_used <= 0 || hp->n_group_used >= hp->n_group ||
                hp->n_group_used * (hp->n_expert / hp->n_group) < hp->n_expert_used)
                return lm_fail(err, LOOM_ERR_FORMAT, "keys '" ARCH ".expert_group_count' = %d / "
                               "'expert_group_used_count' = %d do not fit %d experts, top-%d",
                               hp->n_group, hp->n_group_used, hp->n_expert, hp->n_expert_used);
        }
    }
    if (hp->gating < LM_GATING_SOFTMAX || hp->gating > LM_GATING_SQRT_SOFTPLUS)
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "key '" ARCH ".expert_gating_func' = %d is not "
                       "1 (softmax), 2 (sigmoid), 3 (softmax_weight) or 4 (sqrt_softplus)", hp->gating);
    return load_rope(g, hp, err);
}

/* ---------------------------------------------------------------------------------------
 * Loading: tensors
 * ------------------------------------------------------------------------------------- */

static int find_checked(const lm_gguf *g, const char *name, int n_dims, int64_t ne0, int64_t ne1,
                        int64_t ne2, const lm_gguf_tensor **t, lm_error *err)
{
    const int64_t ne[3] = {ne0, ne1, ne2};
    int rc = lm_gguf_get_tensor(g, name, n_dims, ne, t, err);
    if (rc < 0) return rc;
    if (!lm_type_supported((*t)->type) || !(*t)->data)
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "tensor '%s': type %d is not supported", name, (*t)->type);
    if (lm_row_bytes((*t)->type, ne0) == 0)
        return lm_fail(err, LOOM_ERR_TYPE, "tensor '%s': rows of %lld values are not whole %s blocks",
                       name, (long long)ne0, loom_type_name((*t)->type));
    return 0;
}

/* A 2-D tensor {n_in, n_out}, or a 3-D one {n_in, n1, n2} seen as n1·n2 rows. */
static int bind_mat(const lm_gguf *g, const char *name, int n_dims, int64_t n_in, int64_t n1,
                    int64_t n2, lm_matrix *m, lm_error *err)
{
    const lm_gguf_tensor *t;
    int rc = find_checked(g, name, n_dims, n_in, n1, n2, &t, err);
    if (rc < 0) return rc;
    *m = (lm_matrix){.type = t->type, .n_in = n_in, .n_out = n1 * (n_dims == 3 ? n2 : 1),
                     .row_bytes = lm_row_bytes(t->type, n_in), .data = t->data};
    return 0;
}

/* Stacked experts {n_in, n_out, E}: *m views expert 0; expert e starts e·stride bytes on. */
static int bind_experts(const lm_gguf *g, const char *name, int64_t n_in, int64_t n_out, int64_t n_exp,
                        lm_matrix *m, size_t *stride, lm_error *err)
{
    int rc = bind_mat(g, name, 3, n_in, n_out, n_exp, m, err);
    if (rc < 0) return rc;
    m->n_out = n_out;
    *stride = m->row_bytes * (size_t)n_out;
    return 0;
}

/* A 1-D F32 vector of n values (norm weights, biases). */
static int bind_vec(const lm_gguf *g, const char *name, int64_t n, const float **v, lm_error *err)
{
    const lm_gguf_tensor *t;
    int rc = find_checked(g, name, 1, n, 1, 1, &t, err);
    if (rc < 0) return rc;
    if (t->type != LOOM_TYPE_F32)
        return lm_fail(err, LOOM_ERR_TYPE, "tensor '%s': type %s, expected f32", name, loom_type_name(t->type));
    *v = t->data;
    return 0;
}

static const char *blk(char *buf, size_t size, int il, const char *what)
{
    snprintf(buf, size, "blk.%d.%s", il, what);
    return buf;
}

static uint64_t mat_bytes(const lm_matrix *m) { return m->data ? (uint64_t)m->row_bytes * (uint64_t)m->n_out : 0; }

/* Legacy attn_kv_b {kv_lora, H·(nope+v)}: head h's k rows are h·(nope+v) + [0, nope). The
 * absorbed form needs them transposed, {nope, kv_lora} per head: dst[h][c][d] = kv_b[h·(nope+v)+d][c]. */
static void transpose_k_b(const lm_decoder_hparams *hp, const lm_matrix *kv_b, float *dst, float *row)
{
    const int64_t nope = hp->n_nope, kvl = hp->kv_lora, per = hp->n_nope + hp->n_v;
    for (int64_t h = 0; h < hp->n_head; h++)
        for (int64_t dd = 0; dd < nope; dd++) {
            lm_row_to_f32(kv_b->type, (const char *)kv_b->data + (size_t)(h * per + dd) * kv_b->row_bytes, row, kvl);
            for (int64_t c = 0; c < kvl; c++) dst[(h * kvl + c) * nope + dd] = row[c];
        }
}

static int load_layer(const lm_gguf *g, lm_decoder *d, int il, float *row, lm_error *err)
{
    const lm_decoder_hparams *hp = &d->hp;
    lm_decoder_layer *L = &d->layers[il];
    const int64_t E = hp->n_embd, H = hp->n_head, dq = hp->n_nope + hp->n_rope;
    char n[96];
    int rc;
#define TRY(x) do { if ((rc = (x)) < 0) return rc; } while (0)
    TRY(bind_vec(g, blk(n, sizeof n, il, "attn_norm.weight"), E, &L->attn_norm, err));
    if (hp->q_lora > 0) {
        TRY(bind_mat(g, blk(n, sizeof n, il, "attn_q_a.weight"), 2, E, hp->q_lora, 1, &L->q_a, err));
        TRY(bind_vec(g, blk(n, sizeof n, il, "attn_q_a_norm.weight"), hp->q_lora, &L->q_a_norm, err));
        TRY(bind_mat(g, blk(n, sizeof n, il, "attn_q_b.weight"), 2, hp->q_lora, H * dq, 1, &L->q_b, err));
    } else {
        TRY(bind_mat(g, blk(n, sizeof n, il, "attn_q.weight"), 2, E, H * dq, 1, &L->q, err));
    }
    TRY(bind_mat(g, blk(n, sizeof n, il, "attn_kv_a_mqa.weight"), 2, E, hp->kv_lora + hp->n_rope, 1, &L->kv_a, err));
    TRY(bind_vec(g, blk(n, sizeof n, il, "attn_kv_a_norm.weight"), hp->kv_lora, &L->kv_a_norm, err));
    if (hp->mla_split) {
        TRY(bind_mat(g, blk(n, sizeof n, il, "attn_k_b.weight"), 3, hp->n_nope, hp->kv_lora, H, &L->k_b, err));
        TRY(bind_mat(g, blk(n, sizeof n, il, "attn_v_b.weight"), 3, hp->kv_lora, hp->n_v, H, &L->v_b, err));
        L->v_b_stride = hp->n_v;
        L->v_b_off = 0;
    } else {
        lm_matrix kv_b;
        TRY(bind_mat(g, blk(n, sizeof n, il, "attn_kv_b.weight"), 2, hp->kv_lora,
                     H * (hp->n_nope + hp->n_v), 1, &kv_b, err));
        float *kb = d->k_b_owned + (size_t)il * (size_t)(H * hp->kv_lora * hp->n_nope);
        transpose_k_b(hp, &kv_b, kb, row);
        L->k_b = (lm_matrix){.type = LOOM_TYPE_F32, .n_in = hp->n_nope, .n_out = H * hp->kv_lora,
                             .row_bytes = (size_t)hp->n_nope * sizeof(float), .data = kb};
        L->v_b = kv_b;
        L->v_b_stride = hp->n_nope + hp->n_v;
        L->v_b_off = hp->n_nope;
    }
    TRY(bind_mat(g, blk(n, sizeof n, il, "attn_output.weight"), 2, H * hp->n_v, E, 1, &L->wo, err));
    TRY(bind_vec(g, blk(n, sizeof n, il, "ffn_norm.weight"), E, &L->ffn_norm, err));
    L->is_moe = il >= hp->n_dense_lead;
    if (!L->is_moe) {
        TRY(bind_mat(g, blk(n, sizeof n, il, "ffn_gate.weight"), 2, E, hp->n_ff, 1, &L->ffn_gate, err));
        TRY(bind_mat(g, blk(n, sizeof n, il, "ffn_up.weight"), 2, E, hp->n_ff, 1, &L->ffn_up, err));
        TRY(bind_mat(g, blk(n, sizeof n, il, "ffn_down.weight"), 2, hp->n_ff, E, 1, &L->ffn_down, err));
        return 0;
    }
    const int64_t X = hp->n_expert, F = hp->n_ff_exp;
    TRY(bind_mat(g, blk(n, sizeof n, il, "ffn_gate_inp.weight"), 2, E, X, 1, &L->gate_inp, err));
    L->exp_probs_b = NULL;
    if (lm_gguf_find_tensor(g, blk(n, sizeof n, il, "exp_probs_b.bias")))
        TRY(bind_vec(g, n, X, &L->exp_probs_b, err));
    if (lm_gguf_find_tensor(g, blk(n, sizeof n, il, "ffn_gate_up_exps.weight"))) {
        /* fused {n_embd, 2·ff, E}: per expert, ff gate rows then ff up rows */
        TRY(bind_experts(g, n, E, 2 * F, X, &L->gate_exps, &L->gate_exp_stride, err));
        L->gate_exps.n_out = F;
        L->up_exps = L->gate_exps;
        L->up_exps.data = (const char *)L->gate_exps.data + (size_t)F * L->gate_exps.row_bytes;
        L->up_exp_stride = L->gate_exp_stride;
    } else {
        TRY(bind_experts(g, blk(n, sizeof n, il, "ffn_gate_exps.weight"), E, F, X, &L->gate_exps,
                         &L->gate_exp_stride, err));
        TRY(bind_experts(g, blk(n, sizeof n, il, "ffn_up_exps.weight"), E, F, X, &L->up_exps,
                         &L->up_exp_stride, err));
    }
    TRY(bind_experts(g, blk(n, sizeof n, il, "ffn_down_exps.weight"), F, E, X, &L->down_exps,
                     &L->down_exp_stride, err));
    if (hp->n_expert_shared > 0) {
        const int64_t FS = F * hp->n_expert_shared;
        TRY(bind_mat(g, blk(n, sizeof n, il, "ffn_gate_shexp.weight"), 2, E, FS, 1, &L->gate_shexp, err));
        TRY(bind_mat(g, blk(n, sizeof n, il, "ffn_up_shexp.weight"), 2, E, FS, 1, &L->up_shexp, err));
        TRY(bind_mat(g, blk(n, sizeof n, il, "ffn_down_shexp.weight"), 2, FS, E, 1, &L->down_shexp, err));
    }
#undef TRY
    return 0;
}

/* Bytes of weights one decode step reads: everything but the unselected experts. */
static uint64_t active_weight_bytes(const lm_decoder *d)
{
    const lm_decoder_hparams *hp = &d->hp;
    uint64_t b = d->tok_embd.row_bytes + mat_bytes(&d->output);
    for (int il = 0; il < hp->n_layer; il++) {
        const lm_decoder_layer *L = &d->layers[il];
        b += mat_bytes(&L->q) + mat_bytes(&L->q_a) + mat_bytes(&L->q_b) + mat_bytes(&L->kv_a) +
             mat_bytes(&L->k_b) + (uint64_t)hp->n_head * hp->n_v * L->v_b.row_bytes + mat_bytes(&L->wo);
        if (!L->is_moe) {
            b += mat_bytes(&L->ffn_gate) + mat_bytes(&L->ffn_up) + mat_bytes(&L->ffn_down);
        } else {
            b += mat_bytes(&L->gate_inp) + mat_bytes(&L->gate_shexp) + mat_bytes(&L->up_shexp) +
                 mat_bytes(&L->down_shexp) +
                 (uint64_t)hp->n_expert_used * (L->gate_exp_stride + L->up_exp_stride + L->down_exp_stride);
        }
    }
    return b;
}

int lm_decoder_load(const lm_gguf *g, lm_decoder **out, lm_error *err)
{
    *out = NULL;
    lm_decoder *d = calloc(1, sizeof *d);
    if (!d) return lm_fail(err, LOOM_ERR_NO_MEMORY, "decoder: out of memory");
    int rc = load_hparams(g, &d->hp, err);
    if (rc < 0) goto fail;
    const lm_decoder_hparams *hp = &d->hp;

    const lm_gguf_tensor *te = lm_gguf_find_tensor(g, "token_embd.weight");
    if (!te) { rc = lm_fail(err, LOOM_ERR_NOT_FOUND, "tensor 'token_embd.weight' is missing"); goto fail; }
    if ((rc = bind_mat(g, "token_embd.weight", 2, hp->n_embd, -1, 1, &d->tok_embd, err)) < 0) goto fail;
    d->tok_embd.n_out = te->ne[1];
    if (te->ne[1] <= 0 || te->ne[1] > INT32_MAX) {
        rc = lm_fail(err, LOOM_ERR_FORMAT, "tensor 'token_embd.weight': %lld rows", (long long)te->ne[1]);
        goto fail;
    }
    d->hp.n_vocab = (int32_t)te->ne[1];
    if ((rc = bind_vec(g, "output_norm.weight", hp->n_embd, &d->output_norm, err)) < 0) goto fail;
    if (lm_gguf_find_tensor(g, "output.weight")) {
        if ((rc = bind_mat(g, "output.weight", 2, hp->n_embd, hp->n_vocab, 1, &d->output, err)) < 0) goto fail;
    } else {
        d->output = d->tok_embd; /* tied embeddings */
    }

    d->layers = calloc((size_t)hp->n_layer, sizeof *d->layers);
    float *row = malloc((size_t)hp->kv_lora * sizeof(float));
    if (!hp->mla_split)
        d->k_b_owned = malloc((size_t)hp->n_layer * (size_t)hp->n_head * (size_t)hp->kv_lora *
                              (size_t)hp->n_nope * sizeof(float));
    if (!d->layers || !row || (!hp->mla_split && !d->k_b_owned)) {
        free(row);
        rc = lm_fail(err, LOOM_ERR_NO_MEMORY, "decoder: out of memory for %d layers", hp->n_layer);
        goto fail;
    }
    for (int il = 0; il < hp->n_layer && rc == 0; il++) rc = load_layer(g, d, il, row, err);
    free(row);
    if (rc < 0) goto fail;
    d->active_bytes = active_weight_bytes(d);
    *out = d;
    return 0;
fail:
    lm_decoder_free(&d);
    return rc;
}

void lm_decoder_free(lm_decoder **d)
{
    if (!d || !*d) return;
    free((*d)->layers);
    free((*d)->k_b_owned);
    free(*d);
    *d = NULL;
}

/* ---------------------------------------------------------------------------------------
 * State: the latent cache and every scratch buffer, planned once
 * ------------------------------------------------------------------------------------- */

struct lm_decoder_state {
    int32_t  n_ctx, n_batch, n_past;
    int64_t  kv_row;        /* kv_lora + rope                                       */
    int64_t  ff_max;        /* max(n_ff, ff_exp·max(1, n_shared))                   */
    float   *kv;            /* [n_layer][n_ctx][kv_row]: [RMSNorm(kv_cmpr) | RoPE(k_pe)] */
    float   *x;             /* [n_batch][n_embd] residual stream                    */
    float   *xn;            /* [n_batch][n_embd] normed input / sublayer output     */
    float   *qa;            /* [n_batch][q_lora]                                    */
    float   *q;             /* [n_batch][H][nope+rope]                              */
    float   *kva;           /* [n_batch][kv_row]                                    */
    float   *attn;          /* [n_batch][H·v] per-head attention outputs            */
    float   *head_q;        /* [H][kv_row] absorbed query of the head being run     */
    float   *head_p;        /* [H][n_ctx] attention weights                         */
    float   *head_o;        /* [H][kv_lora] latent output                           */
    float   *ffn;           /* [n_batch][n_embd] FFN output                         */
    float   *g, *u;         /* [n_batch][ff_max] SwiGLU gate / up                    */
    float   *router;        /* [n_batch][E] router logits                           */
    int32_t *sel;           /* [n_batch][K] chosen experts                          */
    float   *selw;          /* [n_batch][K] their weights                           */
    float   *route_tmp;     /* [2·E]                                                */
    int32_t *exp_start;     /* [E+1] first slot of each expert in exp_tok           */
    int32_t *exp_tok;       /* [n_batch·K] token of each slot, grouped by expert    */
    float   *exp_w;         /* [n_batch·K] weight of each slot                      */
    float   *xe;            /* [n_batch][n_embd] one expert's gathered inputs       */
    float   *de;            /* [n_batch][n_embd] one expert's outputs               */
    int64_t  in_max;        /* widest matrix input (rows of xq)                     */
    float   *xq;            /* [n_batch][in_max] inputs rounded like llama.cpp's    */
    float   *head_x;        /* [H][max(nope, kv_lora)] per-head inputs, rounded     */
    int      q8_int8;       /* Q8_0 matvecs on int8 activations (!q8_float_x)        */
    int      mla_form;      /* prefill attention form: LM_MLA_*                      */
    int8_t  *xq8;           /* [LM_Q8_INT8_MAX_ROWS][in_max] activations as int8    */
    float   *xd8;           /* [LM_Q8_INT8_MAX_ROWS][in_max/32] their block scales  */
    int8_t  *head_q8;       /* [H][max(nope, kv_lora)] per-head inputs as int8      */
    float   *head_d8;       /* [H][max(nope, kv_lora)/32] their block scales        */
    int32_t  qb;            /* query rows per block in batched attention            */
    float   *bq;            /* [qb][kv_row] one head's absorbed queries             */
    float   *bn;            /* [qb][max(nope, kv_lora)] gathered q_nope / latent out */
    float   *bs;            /* [qb][n_ctx] one head's attention weights             */
    float   *bv;            /* [qb][v] one head's outputs                           */
    /* plain MLA form (allocated when n_batch >= LM_BATCHED_ATTN_MIN) */
    float   *cr;            /* [n_ctx][kv_lora] kv_cmpr rows, rounded to v_b's type  */
    float   *pk;            /* [n_ctx][nope] one head's decompressed K_nope          */
    float   *pv;            /* [n_ctx][v] one head's decompressed values             */
    float   *kbf;           /* [kv_lora][nope] one head's k_b as floats              */
    /* stacked decode steps (lm_decoder_forward_multi; allocated when n_batch >= 2) */
    int32_t  n_multi;       /* most sequences one stacked step may carry            */
    float   *ye;            /* [n_multi·K][n_embd] routed expert output per slot    */
    int      rows_apart;    /* the rows are lone decode steps: see mm_rows           */
    lm_logit_limit limit;   /* the next pass's logit ids (lm_decoder_state_limit_logits) */
    void    *block;         /* the single allocation all of the above live in       */
    lm_abort_fn abort_fn;   /* polled between chunks and layers, or NULL             */
    void    *abort_user;
};

typedef struct plan { char *base; size_t used; } plan;

/* Reserve n elements of `size` bytes, 64-byte aligned. With base NULL it only measures. */
static void *take(plan *p, size_t n, size_t size)
{
    size_t off = p->used;
    p->used += (n * size + 63) & ~(size_t)63;
    return p->base ? p->base + off : NULL;
}

static void plan_state(const lm_decoder *d, lm_decoder_state *s, plan *p)
{
    const lm_decoder_hparams *hp = &d->hp;
    const size_t B = (size_t)s->n_batch, E = (size_t)hp->n_embd, H = (size_t)hp->n_head;
    const size_t X = (size_t)(hp->n_expert > 0 ? hp->n_expert : 1);
    const size_t K = (size_t)(hp->n_expert_used > 0 ? hp->n_expert_used : 1);
    s->kv     = take(p, (size_t)hp->n_layer * (size_t)s->n_ctx * (size_t)s->kv_row, sizeof(float));
    s->x      = take(p, B * E, sizeof(float));
    s->xn     = take(p, B * E, sizeof(float));
    s->qa     = take(p, B * (size_t)(hp->q_lora > 0 ? hp->q_lora : 1), sizeof(float));
    s->q      = take(p, B * H * (size_t)(hp->n_nope + hp->n_rope), sizeof(float));
    s->kva    = take(p, B * (size_t)s->kv_row, sizeof(float));
    s->attn   = take(p, B * H * (size_t)hp->n_v, sizeof(float));
    s->head_q = take(p, H * (size_t)s->kv_row, sizeof(float));
    s->head_p = take(p, H * (size_t)s->n_ctx, sizeof(float));
    s->head_o = take(p, H * (size_t)hp->kv_lora, sizeof(float));
    s->ffn    = take(p, B * E, sizeof(float));
    s->g      = take(p, B * (size_t)s->ff_max, sizeof(float));
    s->u      = take(p, B * (size_t)s->ff_max, sizeof(float));
    s->router = take(p, B * X, sizeof(float));
    s->sel    = take(p, B * K, sizeof(int32_t));
    s->selw   = take(p, B * K, sizeof(float));
    s->route_tmp = take(p, 2 * X, sizeof(float));
    s->exp_start = take(p, X + 1, sizeof(int32_t));
    s->exp_tok   = take(p, B * K, sizeof(int32_t));
    s->exp_w     = take(p, B * K, sizeof(float));
    s->xe     = take(p, B * E, sizeof(float));
    s->de     = take(p, B * E, sizeof(float));
    s->xq     = take(p, B * (size_t)s->in_max, sizeof(float));
    const size_t hw = (size_t)(hp->kv_lora > hp->n_nope ? hp->kv_lora : hp->n_nope);
    s->head_x = take(p, H * hw, sizeof(float));
    const size_t q8_rows = (size_t)(s->n_multi > LM_Q8_INT8_MAX_ROWS ? s->n_multi : LM_Q8_INT8_MAX_ROWS);
    s->xq8    = take(p, q8_rows * (size_t)s->in_max, sizeof(int8_t));
    s->xd8    = take(p, q8_rows * ((size_t)s->in_max / LM_QK8_0 + 1), sizeof(float));
    s->head_q8 = take(p, H * hw, sizeof(int8_t));
    s->head_d8 = take(p, H * (hw / LM_QK8_0 + 1), sizeof(float));
    s->bq     = take(p, (size_t)s->qb * (size_t)s->kv_row, sizeof(float));
    s->bn     = take(p, (size_t)s->qb * (size_t)(hp->kv_lora > hp->n_nope ? hp->kv_lora : hp->n_nope), sizeof(float));
    s->bs     = take(p, (size_t)s->qb * (size_t)s->n_ctx, sizeof(float));
    s->bv     = take(p, (size_t)s->qb * (size_t)hp->n_v, sizeof(float));
    if (s->n_batch >= LM_BATCHED_ATTN_MIN) {
        const size_t C = (size_t)s->n_ctx;
        s->cr  = take(p, C * (size_t)hp->kv_lora, sizeof(float));
        s->pk  = take(p, C * (size_t)hp->n_nope, sizeof(float));
        s->pv  = take(p, C * (size_t)hp->n_v, sizeof(float));
        s->kbf = take(p, (size_t)hp->kv_lora * (size_t)hp->n_nope, sizeof(float));
    }
    if (s->n_multi >= 2) s->ye = take(p, (size_t)s->n_multi * K * E, sizeof(float));
}

int lm_decoder_state_create(const lm_decoder *d, int32_t n_ctx, int32_t n_batch,
                            lm_decoder_state **out, lm_error *err)
{
    *out = NULL;
    const lm_decoder_hparams *hp = &d->hp;
    if (n_ctx <= 0 || n_batch <= 0 || n_ctx > (1 << 24) || n_batch > (1 << 16))
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "decoder state: n_ctx %d / n_batch %d out of range "
                       "(1..16M / 1..65536)", n_ctx, n_batch);
    if (n_batch > n_ctx) n_batch = n_ctx;
    lm_decoder_state *s = calloc(1, sizeof *s);
    if (!s) return lm_fail(err, LOOM_ERR_NO_MEMORY, "decoder state: out of memory");
    s->n_ctx = n_ctx;
    s->n_batch = n_batch;
    s->kv_row = hp->kv_lora + hp->n_rope;
    int64_t ff = hp->n_ff;
    int64_t fs = (int64_t)hp->n_ff_exp * (hp->n_expert_shared > 1 ? hp->n_expert_shared : 1);
    s->ff_max = ff > fs ? ff : fs;
    if (s->ff_max < 1) s->ff_max = 1;
    const int64_t ins[] = {hp->n_embd, hp->q_lora, hp->kv_lora, hp->n_nope, (int64_t)hp->n_head * hp->n_v, s->ff_max};
    for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++)
        if (ins[i] > s->in_max) s->in_max = ins[i];
    /* batched attention scores [qb][n_ctx]: at most 256K floats (1 MiB), at least 1 row */
    int64_t qb = ((int64_t)1 << 18) / n_ctx;
    s->qb = (int32_t)(qb < 1 ? 1 : qb > n_batch ? n_batch : qb);
    s->n_multi = n_batch < LM_DECODE_MAX_SEQ ? n_batch : LM_DECODE_MAX_SEQ;
    s->q8_int8 = 1;
    s->mla_form = LM_MLA_AUTO;
    plan p = {0};
    plan_state(d, s, &p);
    s->block = aligned_alloc(64, p.used);
    if (!s->block) {
        free(s);
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "decoder state: cannot allocate %zu bytes for n_ctx %d, "
                       "n_batch %d", p.used, n_ctx, n_batch);
    }
    p = (plan){.base = s->block};
    plan_state(d, s, &p);
    *out = s;
    return 0;
}

void lm_decoder_state_free(lm_decoder_state **s)
{
    if (!s || !*s) return;
    free((*s)->block);
    free(*s);
    *s = NULL;
}

int32_t lm_decoder_state_n_past(const lm_decoder_state *s) { return s->n_past; }
int32_t lm_decoder_state_n_ctx(const lm_decoder_state *s) { return s->n_ctx; }
int32_t lm_decoder_state_n_batch(const lm_decoder_state *s) { return s->n_batch; }

void lm_decoder_state_set_abort(lm_decoder_state *s, lm_abort_fn fn, void *user)
{
    s->abort_fn = fn;
    s->abort_user = user;
}

void lm_decoder_state_set_tuning(lm_decoder_state *s, int mla_form, int q8_float_x)
{
    s->mla_form = mla_form;
    s->q8_int8 = !q8_float_x;
}

static int abort_requested(const lm_decoder_state *s) { return s->abort_fn && s->abort_fn(s->abort_user); }

void lm_decoder_state_truncate(lm_decoder_state *s, int32_t n_past)
{
    if (n_past < 0) n_past = 0;
    if (n_past < s->n_past) s->n_past = n_past;
}

int lm_decoder_state_copy(const lm_decoder *d, lm_decoder_state *dst, const lm_decoder_state *src, lm_error *err)
{
    if (dst == src) return 0;
    if (src->n_past > dst->n_ctx)
        return lm_fail(err, LOOM_ERR_CONTEXT_FULL, "context full: copying %d cached positions into n_ctx %d",
                       src->n_past, dst->n_ctx);
    const size_t row = (size_t)src->kv_row, n = (size_t)src->n_past * row;
    for (int64_t il = 0; il < d->hp.n_layer; il++)
        memcpy(dst->kv + (size_t)il * (size_t)dst->n_ctx * row, src->kv + (size_t)il * (size_t)src->n_ctx * row,
               n * sizeof(float));
    dst->n_past = src->n_past;
    dst->q8_int8 = src->q8_int8;
    dst->mla_form = src->mla_form;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Forward pass
 * ------------------------------------------------------------------------------------- */

void lm_round_f16_avx2(const float *x, int64_t n, float *out); /* decoder_avx2.c */
void lm_round_q8_avx2(const float *x, int64_t n, float *out);  /* decoder_avx2.c */
void lm_attn_sum_rows_avx2(float *o, const float *p, const float *kv, int64_t n_kv, int64_t R, int64_t n);

/* The portable twin of lm_round_q8_avx2: ggml's x86 activation quantizer (id = 127/amax,
 * nearest-even rounding, f16 scale), dequantized. */
void lm_round_q8_ref(const float *x, int64_t n, float *out);
void lm_round_q8_ref(const float *x, int64_t n, float *out)
{
    for (int64_t b = 0; b < n; b += LM_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < LM_QK8_0; j++) amax = fmaxf(amax, fabsf(x[b + j]));
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const float d = lm_f16_to_f32(lm_f32_to_f16(amax / 127.0f));
        for (int j = 0; j < LM_QK8_0; j++) out[b + j] = d * nearbyintf(x[b + j] * id);
    }
}

/* llama.cpp converts a matmul's activations to the weights' "vec_dot" type first: f16 for
 * f16 weights, bf16 for bf16, q8_0 for q8_0 (then multiplies q8_0 × q8_0). Rounding x to
 * that grid (with ggml's own x86 rounding) makes loom's float kernels compute the same
 * products, so logits track the
 * peer's to float rounding instead of to the activations' quantization error (which a
 * random-weight MoE model amplifies through routing flips). x[n] → out[n]. */
static const float *round_like(int type, const float *x, int64_t n, float *out)
{
    switch (type) {
    case LOOM_TYPE_F16:
        if (lm_cpu_caps_get()->f16c && lm_cpu_caps_get()->avx2) {
            lm_round_f16_avx2(x, n, out);
            return out;
        }
        for (int64_t i = 0; i < n; i++) out[i] = lm_f16_to_f32(lm_f32_to_f16(x[i]));
        return out;
    case LOOM_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) out[i] = lm_bf16_to_f32(lm_f32_to_bf16(x[i]));
        return out;
    case LOOM_TYPE_Q8_0:
        if (lm_cpu_caps_get()->avx2) lm_round_q8_avx2(x, n, out);
        else lm_round_q8_ref(x, n, out);
        return out;
    default:
        return x;
    }
}

/* Rows [row0, row0+n_rows) of W as a matrix of their own. */
static lm_matrix rows_of(const lm_matrix *W, int64_t row0, int64_t n_rows, size_t byte_off)
{
    lm_matrix m = *W;
    m.n_out = n_rows;
    m.data = (const char *)W->data + byte_off + (size_t)row0 * W->row_bytes;
    return m;
}

/* A matmul's input prepared for weights of one type: n rows of n_in values either as
 * floats (X itself, or rounded like llama.cpp into s->xq) or, for Q8_0 weights and at most
 * LM_Q8_INT8_MAX_ROWS rows (or rows apart: n <= s->n_multi), as int8 blocks
 * (q [n][n_in], d [n][n_in/32]). Each row is rounded on its own, as a lone row would be. */
typedef struct mm_in {
    const float  *x;
    const int8_t *q;
    const float  *d;
    int64_t       n, n_in;
    int           apart;   /* rows are lone decode steps (mm_rows) */
} mm_in;

typedef struct round_task { int type; const float *x; float *out; int64_t ldx, n_in; } round_task;

static void round_part(void *arg, long long lo, long long hi)
{
    const round_task *t = arg;
    for (int64_t r = lo; r < hi; r++) round_like(t->type, t->x + r * t->ldx, t->n_in, t->out + r * t->n_in);
}

/* round_like on the first n_in values of rows [0, n) of x (rows ldx apart) into out[n][n_in],
 * shared out across the pool. type is not F32. */
static void round_rows(int type, const float *x, int64_t ldx, int64_t n, int64_t n_in, float *out, lm_pool *pool)
{
    round_task t = {.type = type, .x = x, .out = out, .ldx = ldx, .n_in = n_in};
    lm_pool_for(pool, n, 8, round_part, &t);
}

static mm_in prepare(int type, const float *X, int64_t n, int64_t n_in, lm_decoder_state *s, lm_pool *pool)
{
    mm_in in = {.x = X, .n = n, .n_in = n_in, .apart = s->rows_apart};
    if (type == LOOM_TYPE_Q8_0 && s->q8_int8 && (n <= LM_Q8_INT8_MAX_ROWS || s->rows_apart)) {
        for (int64_t t = 0; t < n; t++)
            lm_quantize_q8(X + t * n_in, n_in, s->xq8 + t * n_in, s->xd8 + t * (n_in / LM_QK8_0));
        in.x = NULL;
        in.q = s->xq8;
        in.d = s->xd8;
    } else if (type != LOOM_TYPE_F32) {
        round_rows(type, X, n_in, n, n_in, s->xq, pool);
        in.x = s->xq;
    }
    return in;
}

/* Rows of W per block of mm_rows: about 16 KiB of weights, which stay in L1 while every
 * input row is multiplied by them. */
#define LM_ROWS_BLOCK_BYTES (16 * 1024)

typedef struct rows_task {
    const lm_matrix *W;
    const mm_in     *in;
    float           *y[LM_DECODE_MAX_SEQ];   /* output row t: [n_out] */
} rows_task;

static void rows_part(void *arg, int ith, int nth)
{
    const rows_task *t = arg;
    const mm_in *in = t->in;
    const int64_t blk = t->W->row_bytes >= LM_ROWS_BLOCK_BYTES ? 1 : (int64_t)(LM_ROWS_BLOCK_BYTES / t->W->row_bytes);
    long long lo, hi;
    lm_split(t->W->n_out, ith, nth, &lo, &hi);
    for (int64_t r0 = lo; r0 < hi; r0 += blk) {
        const lm_matrix sub = rows_of(t->W, r0, hi - r0 < blk ? hi - r0 : blk, 0);
        float *y[LM_DECODE_MAX_SEQ];
        for (int64_t i = 0; i < in->n; i++) y[i] = t->y[i] + r0;
        if (in->q) lm_matvec_q8_multi(&sub, in->q, in->d, y, (int)in->n);
        else lm_matvec_multi(&sub, in->x, in->n_in, y, (int)in->n);
    }
}

/* y[t] = W · x_t for n <= LM_DECODE_MAX_SEQ separate decode rows, reading W once: each
 * thread walks its share of W's rows in blocks with the multi-input row kernels
 * (lm_matvec_multi), so each y[t] equals lm_matvec's (or lm_matvec_q8's) bit for bit. */
static void mm_rows(const lm_matrix *W, const mm_in *in, float *const *y, lm_pool *pool)
{
    rows_task t = {.W = W, .in = in};
    for (int64_t i = 0; i < in->n; i++) t.y[i] = y[i];
    if ((size_t)W->n_out * W->row_bytes < 64 * 1024) rows_part(&t, 0, 1);
    else lm_pool_run(pool, rows_part, &t);
}

/* Y[n][n_out] = X · Wᵀ on a prepared input: int8 rows, one float row, rows apart (mm_rows)
 * or a GEMM. */
static void mm_prepared(const lm_matrix *W, const mm_in *in, float *Y, lm_pool *pool)
{
    if (in->apart && in->n > 1) {
        float *y[LM_DECODE_MAX_SEQ];
        for (int64_t t = 0; t < in->n; t++) y[t] = Y + t * W->n_out;
        mm_rows(W, in, y, pool);
    } else if (in->q) {
        for (int64_t t = 0; t < in->n; t++)
            lm_matvec_q8(W, in->q + t * in->n_in, in->d + t * (in->n_in / LM_QK8_0), Y + t * W->n_out, pool);
    } else if (in->n == 1) {
        lm_matvec(W, in->x, Y, pool);
    } else {
        lm_matmul(W, in->x, in->n, Y, pool);
    }
}

static void mm(const lm_matrix *W, const float *X, int64_t n, float *Y, lm_decoder_state *s, lm_pool *pool)
{
    const mm_in in = prepare(W->type, X, n, W->n_in, s, pool);
    mm_prepared(W, &in, Y, pool);
}

/* y = W · x for one row on the calling thread, with head h's scratch (attention heads run
 * in parallel, one per thread). */
static void head_matvec(const lm_matrix *W, const float *x, float *y, lm_decoder_state *s, int64_t h, int64_t hw)
{
    if (W->type == LOOM_TYPE_Q8_0 && s->q8_int8) {
        int8_t *q = s->head_q8 + h * hw;
        float *d = s->head_d8 + h * (hw / LM_QK8_0 + 1);
        lm_quantize_q8(x, W->n_in, q, d);
        lm_matvec_q8(W, q, d, y, NULL);
    } else {
        lm_matvec(W, round_like(W->type, x, W->n_in, s->head_x + h * hw), y, NULL);
    }
}

static void rmsnorm_rows(float *y, const float *x, const float *w, int64_t n_rows, int64_t n,
                         int64_t y_stride, int64_t x_stride, float eps)
{
    for (int64_t t = 0; t < n_rows; t++) lm_rmsnorm(y + t * y_stride, x + t * x_stride, w, n, eps);
}

static void add_rows(float *x, const float *y, int64_t n) { for (int64_t i = 0; i < n; i++) x[i] += y[i]; }

static void axpy(float *y, float a, const float *x, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] += a * x[i]; }

typedef struct attn_task {
    const lm_decoder       *d;
    const lm_decoder_layer *L;
    int                     il;
    lm_decoder_state *const *st;  /* sequence i: its cache, positions and head scratch   */
    int64_t                 n_seq, n_tok; /* n_tok tokens per sequence: rows i·n_tok + t  */
    float                  *q;    /* [n_seq·n_tok][H][nope+rope] stacked queries         */
    float                  *attn; /* [n_seq·n_tok][H·v] stacked outputs                  */
} attn_task;

/* This layer's cache of s: [n_ctx][kv_row]. */
static float *layer_kv(const lm_decoder_state *s, int il)
{
    return s->kv + (size_t)il * (size_t)s->n_ctx * (size_t)s->kv_row;
}

/* Absorbed MLA for (sequence, head) pairs [lo, hi) of every token in the chunk. For head h,
 * token t at position p: q̃ = [k_b_h·q_nope | RoPE(q_pe)], weights = softmax(kq_scale ·
 * K[0..p]·q̃), o = v_b_h · Σ_j w_j kv_cmpr_j. */
static void attn_heads(void *arg, int ith, int nth)
{
    const attn_task *a = arg;
    const lm_decoder_hparams *hp = &a->d->hp;
    const lm_decoder_layer *L = a->L;
    const int64_t H = hp->n_head, dq = hp->n_nope + hp->n_rope, kvl = hp->kv_lora;
    long long lo, hi;
    lm_split(a->n_seq * H, ith, nth, &lo, &hi);
    for (int64_t item = lo; item < hi; item++) {
        const int64_t i = item / H, h = item % H;
        lm_decoder_state *s = a->st[i];
        const int64_t R = s->kv_row;
        const float *kv = layer_kv(s, a->il);
        const lm_matrix kb = rows_of(&L->k_b, h * kvl, kvl, 0);
        const lm_matrix vb = rows_of(&L->v_b, h * L->v_b_stride + L->v_b_off, hp->n_v, 0);
        float *qc = s->head_q + h * R, *p = s->head_p + h * (int64_t)s->n_ctx, *o = s->head_o + h * kvl;
        const int64_t hw = kvl > hp->n_nope ? kvl : hp->n_nope;
        for (int64_t t = 0; t < a->n_tok; t++) {
            const int64_t pos = s->n_past + t, row = i * a->n_tok + t;
            float *qh = a->q + (row * H + h) * dq;
            lm_rope_apply(&hp->rope, qh + hp->n_nope, pos);
            head_matvec(&kb, qh, qc, s, h, hw);
            memcpy(qc + kvl, qh + hp->n_nope, (size_t)hp->n_rope * sizeof(float));
            const int64_t n_kv = pos + 1;
            /* the cached rows as one F32 matrix: one row-kernel call for every key's dot */
            const lm_matrix keys = {.type = LOOM_TYPE_F32, .n_in = R, .n_out = n_kv,
                                    .row_bytes = (size_t)R * sizeof(float), .data = kv};
            lm_matvec(&keys, qc, p, NULL);
            for (int64_t j = 0; j < n_kv; j++) p[j] *= hp->kq_scale;
            lm_softmax_fast(p, n_kv);
            if (lm_cpu_caps_get()->avx2) {
                lm_attn_sum_rows_avx2(o, p, kv, n_kv, R, kvl);
            } else {
                memset(o, 0, (size_t)kvl * sizeof(float));
                for (int64_t j = 0; j < n_kv; j++) axpy(o, p[j], kv + j * R, kvl);
            }
            head_matvec(&vb, o, a->attn + (row * H + h) * hp->n_v, s, h, hw);
        }
    }
}

typedef struct swiglu_task { float *g; const float *u; } swiglu_task;

static void swiglu_part(void *arg, long long lo, long long hi)
{
    const swiglu_task *t = arg;
    lm_swiglu_fast(t->g + lo, t->g + lo, t->u + lo, hi - lo);
}

/* SwiGLU FFN on n rows of x: y = down · (silu(gate·x) ⊙ up·x). Uses s->g and s->u. */
static void swiglu_ffn(const lm_matrix *gate, const lm_matrix *up, const lm_matrix *down,
                       const float *x, int64_t n, float *y, lm_decoder_state *s, lm_pool *pool)
{
    if (gate->type == up->type) { /* one rounding serves both */
        const mm_in in = prepare(gate->type, x, n, gate->n_in, s, pool);
        mm_prepared(gate, &in, s->g, pool);
        mm_prepared(up, &in, s->u, pool);
    } else {
        mm(gate, x, n, s->g, s, pool);
        mm(up, x, n, s->u, s, pool);
    }
    swiglu_task sw = {.g = s->g, .u = s->u};
    lm_pool_for(pool, n * gate->n_out, 4096, swiglu_part, &sw);
    mm(down, s->g, n, y, s, pool);
}

void lm_moe_route(const lm_decoder_hparams *hp, const float *logits, const float *bias,
                  int32_t *experts, float *weights, float *scratch)
{
    const int64_t X = hp->n_expert, K = hp->n_expert_used;
    float *probs = scratch, *sel = scratch + X;
    switch (hp->gating) {
    case LM_GATING_SOFTMAX:
        memcpy(probs, logits, (size_t)X * sizeof(float));
        lm_softmax(probs, X);
        break;
    case LM_GATING_SIGMOID:
        for (int64_t e = 0; e < X; e++) probs[e] = 1.0f / (1.0f + expf(-logits[e]));
        break;
    case LM_GATING_SQRT_SOFTPLUS:
        for (int64_t e = 0; e < X; e++) {
            const float x = logits[e];
            probs[e] = sqrtf(x > 20.0f ? x : logf(1.0f + expf(x)));
        }
        break;
    default: /* LM_GATING_SOFTMAX_WEIGHT */
        memcpy(probs, logits, (size_t)X * sizeof(float));
        break;
    }
    /* the bias steers selection only; weights come from the unbiased probs */
    for (int64_t e = 0; e < X; e++) sel[e] = probs[e] + (bias ? bias[e] : 0.0f);

    if (hp->n_group > 1) {
        /* group score = sum of its two best experts; keep the n_group_used best groups */
        const int64_t G = hp->n_group, per = X / G;
        float gscore[LM_MAX_EXPERT_GROUPS];
        unsigned char dropped[LM_MAX_EXPERT_GROUPS] = {0};   /* a flag: scores may be +inf */
        const int64_t gs = G;
        for (int64_t gi = 0; gi < gs; gi++) {
            float b1 = -INFINITY, b2 = -INFINITY;
            for (int64_t e = gi * per; e < (gi + 1) * per; e++) {
                if (sel[e] > b1) { b2 = b1; b1 = sel[e]; }
                else if (sel[e] > b2) b2 = sel[e];
            }
            gscore[gi] = per >= 2 ? b1 + b2 : b1;
        }
        for (int64_t drop = 0; drop < gs - hp->n_group_used; drop++) {
            int64_t worst = -1;
            for (int64_t gi = 0; gi < gs; gi++)
                if (!dropped[gi] && (worst < 0 || gscore[gi] < gscore[worst])) worst = gi;
            dropped[worst] = 1;
            for (int64_t e = worst * per; e < (worst + 1) * per; e++) sel[e] = -INFINITY;
        }
    }
    for (int64_t k = 0; k < K; k++) {
        int64_t best = 0;
        for (int64_t e = 1; e < X; e++)
            if (sel[e] > sel[best]) best = e;
        experts[k] = (int32_t)best;
        weights[k] = probs[best];
        sel[best] = -INFINITY;
    }
    if (hp->gating == LM_GATING_SOFTMAX_WEIGHT) lm_softmax(weights, K);
    if (hp->weights_norm) {
        float sum = 0.0f;
        for (int64_t k = 0; k < K; k++) sum += weights[k];
        if (sum < 6.103515625e-5f) sum = 6.103515625e-5f; /* as llama.cpp: smallest normal f16 */
        for (int64_t k = 0; k < K; k++) weights[k] /= sum;
    }
    if (hp->weights_scale != 0.0f && hp->weights_scale != 1.0f)
        for (int64_t k = 0; k < K; k++) weights[k] *= hp->weights_scale;
}

static lm_matrix expert(const lm_matrix *m, size_t stride, int32_t e)
{
    lm_matrix v = *m;
    v.data = (const char *)m->data + (size_t)e * stride;
    return v;
}

/* Routed + shared experts on s->xn[n][n_embd] into s->ffn. */
static void moe_ffn(const lm_decoder *d, const lm_decoder_layer *L, lm_decoder_state *s, int64_t n,
                    lm_pool *pool)
{
    const lm_decoder_hparams *hp = &d->hp;
    const int64_t E = hp->n_embd, X = hp->n_expert, K = hp->n_expert_used;
    mm(&L->gate_inp, s->xn, n, s->router, s, pool);
    for (int64_t t = 0; t < n; t++)
        lm_moe_route(hp, s->router + t * X, L->exp_probs_b, s->sel + t * K, s->selw + t * K, s->route_tmp);
    memset(s->ffn, 0, (size_t)(n * E) * sizeof(float));
    if (n == 1) {
        /* decode: read only the chosen experts */
        for (int64_t k = 0; k < K; k++) {
            const int32_t e = s->sel[k];
            const lm_matrix ge = expert(&L->gate_exps, L->gate_exp_stride, e);
            const lm_matrix ue = expert(&L->up_exps, L->up_exp_stride, e);
            const lm_matrix de = expert(&L->down_exps, L->down_exp_stride, e);
            swiglu_ffn(&ge, &ue, &de, s->xn, 1, s->de, s, pool);
            axpy(s->ffn, s->selw[k], s->de, E);
        }
    } else {
        /* prefill: group the (token, slot) pairs by expert, one GEMM per expert */
        int32_t *start = s->exp_start;
        memset(start, 0, (size_t)(X + 1) * sizeof(int32_t));
        for (int64_t i = 0; i < n * K; i++) start[s->sel[i] + 1]++;
        for (int64_t e = 0; e < X; e++) start[e + 1] += start[e];
        for (int64_t i = 0; i < n * K; i++) {
            const int32_t slot = start[s->sel[i]]++;
            s->exp_tok[slot] = (int32_t)i;   /* the (token, k) pair: token i / K */
            s->exp_w[slot] = s->selw[i];
        }
        for (int64_t e = X; e > 0; e--) start[e] = start[e - 1]; /* undo the shift */
        start[0] = 0;
        for (int32_t e = 0; e < X; e++) {
            const int32_t b = start[e], m = start[e + 1] - b;
            if (m == 0) continue;
            for (int32_t i = 0; i < m; i++)
                memcpy(s->xe + (int64_t)i * E, s->xn + (int64_t)(s->exp_tok[b + i] / K) * E, (size_t)E * sizeof(float));
            const lm_matrix ge = expert(&L->gate_exps, L->gate_exp_stride, e);
            const lm_matrix ue = expert(&L->up_exps, L->up_exp_stride, e);
            const lm_matrix de = expert(&L->down_exps, L->down_exp_stride, e);
            swiglu_ffn(&ge, &ue, &de, s->xe, m, s->de, s, pool);
            for (int32_t i = 0; i < m; i++) {
                const int64_t pair = s->exp_tok[b + i];
                if (s->rows_apart) memcpy(s->ye + pair * E, s->de + (int64_t)i * E, (size_t)E * sizeof(float));
                else axpy(s->ffn + (pair / K) * E, s->exp_w[b + i], s->de + (int64_t)i * E, E);
            }
        }
        /* stacked decode steps sum each row's experts in top-k order, as a lone step does */
        for (int64_t i = 0; s->rows_apart && i < n * K; i++) axpy(s->ffn + (i / K) * E, s->selw[i], s->ye + i * E, E);
    }
    if (hp->n_expert_shared > 0) {
        swiglu_ffn(&L->gate_shexp, &L->up_shexp, &L->down_shexp, s->xn, n, s->de, s, pool);
        add_rows(s->ffn, s->de, n * E);
    }
}

/* Scores of query rows t0 … t0+m-1 (row i sees keys 0 … n_past+t0+i) in s->bs [m][n_kv]:
 * scaled by kq_scale, softmaxed over the visible keys, zero over the masked ones. Rows are
 * independent; threads take every nth row, as later rows are longer. */
typedef struct softmax_task {
    float  *bs;
    int64_t m, first_valid, n_kv;   /* rows; keys row 0 sees; row length */
    float   scale;
} softmax_task;

static void masked_softmax_part(void *arg, int ith, int nth)
{
    const softmax_task *t = arg;
    for (int64_t i = ith; i < t->m; i += nth) {
        float *row = t->bs + i * t->n_kv;
        const int64_t valid = t->first_valid + i;
        for (int64_t j = 0; j < valid; j++) row[j] *= t->scale;
        lm_softmax_fast(row, valid);
        memset(row + valid, 0, (size_t)(t->n_kv - valid) * sizeof(float));
    }
}

static void masked_softmax_rows(const lm_decoder_hparams *hp, lm_decoder_state *s, int64_t t0, int64_t m,
                                int64_t n_kv, lm_pool *pool)
{
    softmax_task t = {.bs = s->bs, .m = m, .first_valid = s->n_past + t0 + 1, .n_kv = n_kv, .scale = hp->kq_scale};
    lm_pool_run(m >= 8 ? pool : NULL, masked_softmax_part, &t);
}

/* The same absorbed attention for a prefill chunk, one head at a time, as GEMMs over blocks
 * of query rows: Q̃ = Q_nope·k_bₕᵀ | RoPE(q_pe); S = softmax(kq_scale·Q̃·Kᵀ) with the causal
 * mask; O = S·C (C = the cache's kv_cmpr columns); out = O·v_bₕᵀ. q_pe is already rotated. */
static void attn_absorbed(const lm_decoder *d, const lm_decoder_layer *L, lm_decoder_state *s,
                          const float *kv, int64_t n, lm_pool *pool)
{
    const lm_decoder_hparams *hp = &d->hp;
    const int64_t H = hp->n_head, dq = hp->n_nope + hp->n_rope, kvl = hp->kv_lora, R = s->kv_row;
    for (int64_t h = 0; h < H; h++) {
        const lm_matrix kb = rows_of(&L->k_b, h * kvl, kvl, 0);
        const lm_matrix vb = rows_of(&L->v_b, h * L->v_b_stride + L->v_b_off, hp->n_v, 0);
        for (int64_t t0 = 0; t0 < n; t0 += s->qb) {
            const int64_t m = n - t0 < s->qb ? n - t0 : s->qb;
            const int64_t n_kv = s->n_past + t0 + m; /* keys the last row of the block sees */
            for (int64_t i = 0; i < m; i++)
                memcpy(s->bn + i * hp->n_nope, s->q + ((t0 + i) * H + h) * dq, (size_t)hp->n_nope * sizeof(float));
            mm(&kb, s->bn, m, s->bq, s, pool);   /* [m][kvl], spread below to rows of R */
            for (int64_t i = m - 1; i >= 0; i--) {
                memmove(s->bq + i * R, s->bq + i * kvl, (size_t)kvl * sizeof(float));
                memcpy(s->bq + i * R + kvl, s->q + ((t0 + i) * H + h) * dq + hp->n_nope, (size_t)hp->n_rope * sizeof(float));
            }
            const lm_matrix K = {.type = LOOM_TYPE_F32, .n_in = R, .n_out = n_kv, .row_bytes = (size_t)R * sizeof(float), .data = kv};
            mm(&K, s->bq, m, s->bs, s, pool);   /* F32: no rounding */
            masked_softmax_rows(hp, s, t0, m, n_kv, pool);
            lm_sgemm_pool(pool, LM_NO_TRANS, LM_NO_TRANS, (int)m, (int)kvl, (int)n_kv, 1.0f, s->bs,
                        (int)n_kv, kv, (int)R, 0.0f, s->bn, (int)kvl);
            mm(&vb, s->bn, m, s->bv, s, pool);
            for (int64_t i = 0; i < m; i++)
                memcpy(s->attn + ((t0 + i) * H + h) * hp->n_v, s->bv + i * hp->n_v, (size_t)hp->n_v * sizeof(float));
        }
    }
}

/* The plain form of the same attention: per head, the cached latents are decompressed once
 * into keys and values for every cached position, K_nope = Ĉ·k_bₕ [n_all][nope] and
 * V = Ĉ·v_bₕᵀ [n_all][v], then standard attention over blocks of query rows:
 * S = softmax(kq_scale·(Q_nope·K_nopeᵀ + Q_pe·K_peᵀ)) with the causal mask, out = S·V.
 * Ĉ = the kv_cmpr rows rounded to v_b's type, as llama.cpp's plain form (legacy attn_kv_b
 * files) rounds them for its kv_b matmul. q_pe is already rotated. */
static void attn_plain(const lm_decoder *d, const lm_decoder_layer *L, lm_decoder_state *s,
                       const float *kv, int64_t n, lm_pool *pool)
{
    const lm_decoder_hparams *hp = &d->hp;
    const int64_t H = hp->n_head, dq = hp->n_nope + hp->n_rope, kvl = hp->kv_lora, R = s->kv_row;
    const int64_t nope = hp->n_nope, nv = hp->n_v, n_all = s->n_past + n;
    if (L->v_b.type == LOOM_TYPE_F32)
        for (int64_t j = 0; j < n_all; j++) memcpy(s->cr + j * kvl, kv + j * R, (size_t)kvl * sizeof(float));
    else
        round_rows(L->v_b.type, kv, R, n_all, kvl, s->cr, pool);
    for (int64_t h = 0; h < H; h++) {
        /* k_bₕ as a dense [kvl][nope] float matrix (K_nope = Ĉ·k_bₕ needs it untransposed) */
        const lm_matrix kb = rows_of(&L->k_b, h * kvl, kvl, 0);
        const float *kbf = kb.data;
        int64_t ldk = (int64_t)(kb.row_bytes / sizeof(float));
        if (kb.type != LOOM_TYPE_F32) {
            for (int64_t c = 0; c < kvl; c++)
                lm_row_to_f32_fast(kb.type, (const char *)kb.data + (size_t)c * kb.row_bytes, s->kbf + c * nope, nope);
            kbf = s->kbf;
            ldk = nope;
        }
        lm_sgemm_pool(pool, LM_NO_TRANS, LM_NO_TRANS, (int)n_all, (int)nope, (int)kvl, 1.0f, s->cr, (int)kvl,
                    kbf, (int)ldk, 0.0f, s->pk, (int)nope);
        const lm_matrix vb = rows_of(&L->v_b, h * L->v_b_stride + L->v_b_off, nv, 0);
        lm_matmul(&vb, s->cr, n_all, s->pv, pool);
        for (int64_t t0 = 0; t0 < n; t0 += s->qb) {
            const int64_t m = n - t0 < s->qb ? n - t0 : s->qb;
            const int64_t n_kv = s->n_past + t0 + m;
            const float *qh = s->q + (t0 * H + h) * dq;   /* rows H·dq apart */
            lm_sgemm_pool(pool, LM_NO_TRANS, LM_TRANS, (int)m, (int)n_kv, (int)nope, 1.0f, qh, (int)(H * dq),
                        s->pk, (int)nope, 0.0f, s->bs, (int)n_kv);
            lm_sgemm_pool(pool, LM_NO_TRANS, LM_TRANS, (int)m, (int)n_kv, (int)hp->n_rope, 1.0f, qh + nope,
                        (int)(H * dq), kv + kvl, (int)R, 1.0f, s->bs, (int)n_kv);
            masked_softmax_rows(hp, s, t0, m, n_kv, pool);
            lm_sgemm_pool(pool, LM_NO_TRANS, LM_NO_TRANS, (int)m, (int)nv, (int)n_kv, 1.0f, s->bs, (int)n_kv,
                        s->pv, (int)nv, 0.0f, s->attn + (t0 * H + h) * nv, (int)(H * nv));
        }
    }
}

int lm_mla_plain_cheaper(const lm_decoder_hparams *hp, int64_t n_past, int64_t n, int64_t qb)
{
    const double kvl = hp->kv_lora, nope = hp->n_nope, rope = hp->n_rope, nv = hp->n_v;
    double pairs = 0.0; /* Σ over query blocks of rows × keys computed */
    for (int64_t t0 = 0; t0 < n; t0 += qb) {
        const int64_t m = n - t0 < qb ? n - t0 : qb;
        pairs += (double)m * (double)(n_past + t0 + m);
    }
    const double absorbed = (double)n * kvl * (nope + nv) + pairs * (2.0 * kvl + rope);
    const double plain = (double)(n_past + n) * kvl * (nope + nv) + pairs * (nope + rope + nv);
    return plain < absorbed;
}

/* Whether LM_MLA_AUTO may use the plain form for this layer. llama.cpp runs split
 * attn_k_b/attn_v_b files in the absorbed form, rounding q_nope and the latent output to
 * the weights' type; legacy attn_kv_b files in the plain form, rounding kv_cmpr. With Q8_0
 * split weights the plain form's 8-bit rounding of other activations moves logits as far
 * as the parity limit (tiny q8_0 models: mean KL 1.3e-3 – 3.5e-3 against llama.cpp, limit
 * 1e-3), so those layers stay absorbed; F16/BF16/F32 differ only at float/f16 rounding. */
static int plain_allowed(const lm_decoder *d, const lm_decoder_layer *L)
{
    return !d->hp.mla_split || (L->k_b.type != LOOM_TYPE_Q8_0 && L->v_b.type != LOOM_TYPE_Q8_0);
}

/* Batched attention for a prefill chunk: RoPE on q_pe, then the form s->mla_form asks for,
 * or in LM_MLA_AUTO the plain form where plain_allowed and lm_mla_plain_cheaper say so. */
static void attn_batched(const lm_decoder *d, const lm_decoder_layer *L, lm_decoder_state *s,
                         const float *kv, int64_t n, lm_pool *pool)
{
    const lm_decoder_hparams *hp = &d->hp;
    const int64_t H = hp->n_head, dq = hp->n_nope + hp->n_rope;
    for (int64_t t = 0; t < n; t++)
        for (int64_t h = 0; h < H; h++) lm_rope_apply(&hp->rope, s->q + (t * H + h) * dq + hp->n_nope, s->n_past + t);
    const int plain = s->mla_form == LM_MLA_PLAIN ||
                      (s->mla_form == LM_MLA_AUTO && plain_allowed(d, L) && lm_mla_plain_cheaper(hp, s->n_past, n, s->qb));
    if (plain) attn_plain(d, L, s, kv, n, pool);
    else attn_absorbed(d, L, s, kv, n, pool);
}

/* One layer over n_seq·n_tok rows stacked in st[0]'s scratch: n_tok tokens of each
 * sequence i (rows i·n_tok + t), appended to st[i]'s cache at st[i]->n_past + t. Either one
 * sequence (a chunk) or one token per sequence (lm_decoder_forward_multi). */
static void layer_forward(const lm_decoder *d, int il, lm_decoder_state *const *st, int64_t n_seq, int64_t n_tok,
                          lm_pool *pool)
{
    const lm_decoder_hparams *hp = &d->hp;
    const lm_decoder_layer *L = &d->layers[il];
    lm_decoder_state *s = st[0];
    const int64_t E = hp->n_embd, R = s->kv_row, n = n_seq * n_tok;
    const float eps = hp->rms_eps;

    /* attention */
    rmsnorm_rows(s->xn, s->x, L->attn_norm, n, E, E, E, eps);
    if (hp->q_lora > 0) {
        mm(&L->q_a, s->xn, n, s->qa, s, pool);
        rmsnorm_rows(s->qa, s->qa, L->q_a_norm, n, hp->q_lora, hp->q_lora, hp->q_lora, eps);
        mm(&L->q_b, s->qa, n, s->q, s, pool);
    } else {
        mm(&L->q, s->xn, n, s->q, s, pool);
    }
    mm(&L->kv_a, s->xn, n, s->kva, s, pool);
    for (int64_t r = 0; r < n; r++) {
        const lm_decoder_state *o = st[r / n_tok];
        const int64_t pos = o->n_past + r % n_tok;
        float *row = layer_kv(o, il) + pos * R;
        const float *src = s->kva + r * R;
        lm_rmsnorm(row, src, L->kv_a_norm, hp->kv_lora, eps);
        memcpy(row + hp->kv_lora, src + hp->kv_lora, (size_t)hp->n_rope * sizeof(float));
        lm_rope_apply(&hp->rope, row + hp->kv_lora, pos);
    }
    if (n_seq == 1 && n_tok >= LM_BATCHED_ATTN_MIN) {
        attn_batched(d, L, s, layer_kv(s, il), n_tok, pool);
    } else {
        attn_task task = {.d = d, .L = L, .il = il, .st = st, .n_seq = n_seq, .n_tok = n_tok, .q = s->q, .attn = s->attn};
        lm_pool_run(pool, attn_heads, &task);
    }
    mm(&L->wo, s->attn, n, s->xn, s, pool);
    add_rows(s->x, s->xn, n * E);

    /* feed-forward */
    rmsnorm_rows(s->xn, s->x, L->ffn_norm, n, E, E, E, eps);
    if (L->is_moe) moe_ffn(d, L, s, n, pool);
    else swiglu_ffn(&L->ffn_gate, &L->ffn_up, &L->ffn_down, s->xn, n, s->ffn, s, pool);
    add_rows(s->x, s->ffn, n * E);
}

void lm_decoder_state_limit_logits(lm_decoder_state *s, int32_t lo, int32_t hi, int32_t extra)
{
    s->limit = (lm_logit_limit){.on = 1, .lo = lo, .hi = hi, .extra = extra};
}

/* The limit set for this pass, cleared on s (it holds for one pass, whatever that returns),
 * clamped to [0, V). */
static lm_logit_limit take_limit(lm_decoder_state *s, int64_t V)
{
    lm_logit_limit l = s->limit;
    s->limit.on = 0;
    if (!l.on) return l;
    l.lo = l.lo < 0 ? 0 : l.lo > V ? (int32_t)V : l.lo;
    l.hi = l.hi < l.lo ? l.lo : l.hi > V ? (int32_t)V : l.hi;
    if (l.extra < 0 || l.extra >= V || (l.extra >= l.lo && l.extra < l.hi)) l.extra = -1;
    return l;
}

/* The output head on n prepared rows (lone decode steps apart, or one row): every logit, or
 * under a limit only ids [lo, hi) and extra, each of those the full head's bit for bit (a
 * logit is its own row's dot product), the others -INFINITY. */
static void output_head(const lm_decoder *d, const mm_in *in, float *const *logits, lm_logit_limit l, lm_pool *pool)
{
    const int64_t V = d->hp.n_vocab;
    if (!l.on) {
        if (in->n == 1) mm_prepared(&d->output, in, logits[0], pool);
        else mm_rows(&d->output, in, logits, pool);
        return;
    }
    float *y[LM_DECODE_MAX_SEQ];
    for (int64_t t = 0; t < in->n; t++)
        for (int64_t v = 0; v < V; v++) logits[t][v] = -INFINITY;
    const int32_t from[2] = {l.lo, l.extra}, to[2] = {l.hi, l.extra + 1};
    for (int k = 0; k < 2; k++) {
        if (from[k] < 0 || to[k] <= from[k]) continue;
        const lm_matrix sub = rows_of(&d->output, from[k], to[k] - from[k], 0);
        for (int64_t t = 0; t < in->n; t++) y[t] = logits[t] + from[k];
        if (in->n == 1) mm_prepared(&sub, in, y[0], pool);
        else mm_rows(&sub, in, y, pool);
    }
}

int lm_decoder_forward(const lm_decoder *d, lm_decoder_state *s, const int32_t *tokens,
                       const float *embd, int64_t n, float *logits, int all_logits,
                       lm_pool *pool, lm_error *err)
{
    const lm_decoder_hparams *hp = &d->hp;
    const int64_t E = hp->n_embd, V = hp->n_vocab;
    if ((tokens == NULL) == (embd == NULL) || n < 0)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "decoder: give either token ids or embeddings (n = %lld)",
                       (long long)n);
    if (n > (int64_t)s->n_ctx - s->n_past)
        return lm_fail(err, LOOM_ERR_CONTEXT_FULL, "context full: %d cached + %lld new positions exceed "
                       "n_ctx %d", s->n_past, (long long)n, s->n_ctx);
    for (int64_t i = 0; tokens && i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return lm_fail(err, LOOM_ERR_INVALID_ARG, "token %lld: id %d is outside the vocabulary (0..%lld)",
                           (long long)i, tokens[i], (long long)V - 1);
    const int32_t past0 = s->n_past;
    const lm_logit_limit limit = take_limit(s, V);
    for (int64_t done = 0; done < n;) {
        const int64_t m = n - done < s->n_batch ? n - done : s->n_batch;
        if (abort_requested(s)) goto aborted;
        for (int64_t t = 0; t < m; t++) {
            if (tokens) {
                const char *row = (const char *)d->tok_embd.data + (size_t)tokens[done + t] * d->tok_embd.row_bytes;
                lm_row_to_f32(d->tok_embd.type, row, s->x + t * E, E);
            } else {
                memcpy(s->x + t * E, embd + (done + t) * E, (size_t)E * sizeof(float));
            }
        }
        for (int il = 0; il < hp->n_layer; il++) {
            /* a chunk stopped between layers is dropped whole: rows >= n_past are unused */
            if (il > 0 && abort_requested(s)) goto aborted;
            layer_forward(d, il, &s, 1, m, pool);
        }
        s->n_past += (int32_t)m;
        done += m;
        if (logits && all_logits) {
            rmsnorm_rows(s->xn, s->x, d->output_norm, m, E, E, E, hp->rms_eps);
            mm(&d->output, s->xn, m, logits + (done - m) * V, s, pool);
        } else if (logits && done == n) {
            lm_rmsnorm(s->xn, s->x + (m - 1) * E, d->output_norm, E, hp->rms_eps);
            const mm_in in = prepare(d->output.type, s->xn, 1, E, s, pool);
            output_head(d, &in, &logits, limit, pool);
        }
    }
    return 0;
aborted:
    return lm_fail(err, LOOM_ERR_ABORTED, "aborted: %lld of %lld positions computed", (long long)(s->n_past - past0),
                   (long long)n);
}

/* Checks of lm_decoder_forward_multi's arguments; 0 when it may run. */
static int multi_args_ok(const lm_decoder *d, lm_decoder_state *const *st, const int32_t *tokens, int n_seq,
                         lm_error *err)
{
    if (!st || !tokens || n_seq < 1 || n_seq > LM_DECODE_MAX_SEQ)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "decoder: %d sequences in one step (1..%d, with tokens)", n_seq,
                       LM_DECODE_MAX_SEQ);
    if (n_seq > st[0]->n_multi)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "decoder: the first state holds %d stacked rows, not %d "
                       "(create it with n_batch >= %d)", st[0]->n_multi, n_seq, n_seq);
    for (int i = 0; i < n_seq; i++) {
        for (int j = 0; j < i; j++)
            if (st[i] == st[j]) return lm_fail(err, LOOM_ERR_INVALID_ARG, "decoder: state %d is given twice", j);
        if (st[i]->q8_int8 != st[0]->q8_int8)
            return lm_fail(err, LOOM_ERR_INVALID_ARG, "decoder: state %d differs from state 0 in q8_float_x", i);
        if (st[i]->n_past >= st[i]->n_ctx)
            return lm_fail(err, LOOM_ERR_CONTEXT_FULL, "context full: sequence %d holds n_ctx %d positions", i,
                           st[i]->n_ctx);
        if (tokens[i] < 0 || tokens[i] >= d->hp.n_vocab)
            return lm_fail(err, LOOM_ERR_INVALID_ARG, "sequence %d: token id %d is outside the vocabulary (0..%d)",
                           i, tokens[i], d->hp.n_vocab - 1);
    }
    return 0;
}

static int any_abort(lm_decoder_state *const *st, int n_seq)
{
    for (int i = 0; i < n_seq; i++)
        if (abort_requested(st[i])) return 1;
    return 0;
}

int lm_decoder_forward_multi(const lm_decoder *d, lm_decoder_state *const *states, const int32_t *tokens,
                             int n_seq, float *const *logits, lm_pool *pool, lm_error *err)
{
    const lm_decoder_hparams *hp = &d->hp;
    const int64_t E = hp->n_embd;
    int rc = multi_args_ok(d, states, tokens, n_seq, err);
    if (rc < 0) return rc;
    lm_decoder_state *s = states[0];
    /* the first state's limit serves all rows when every state set the same one */
    lm_logit_limit limit = take_limit(s, hp->n_vocab);
    for (int i = 1; i < n_seq; i++) {
        const lm_logit_limit li = take_limit(states[i], hp->n_vocab);
        if (li.on != limit.on || li.lo != limit.lo || li.hi != limit.hi || li.extra != limit.extra) limit.on = 0;
    }
    for (int i = 0; i < n_seq; i++) {
        const char *row = (const char *)d->tok_embd.data + (size_t)tokens[i] * d->tok_embd.row_bytes;
        lm_row_to_f32(d->tok_embd.type, row, s->x + i * E, E);
    }
    s->rows_apart = 1;
    for (int il = 0; il < hp->n_layer; il++) {
        /* rows written past n_past by a stopped step are unused */
        if (any_abort(states, n_seq)) {
            s->rows_apart = 0;
            return lm_fail(err, LOOM_ERR_ABORTED, "aborted: 0 of 1 positions computed");
        }
        layer_forward(d, il, states, n_seq, 1, pool);
    }
    for (int i = 0; i < n_seq; i++) states[i]->n_past++;
    if (logits) {
        rmsnorm_rows(s->xn, s->x, d->output_norm, n_seq, E, E, E, hp->rms_eps);
        const mm_in in = prepare(d->output.type, s->xn, n_seq, E, s, pool);
        output_head(d, &in, logits, limit, pool);
    }
    s->rows_apart = 0;
    return 0;
}
