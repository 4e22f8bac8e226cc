/*
 * Loading deepseek2 files: hyperparameters and YaRN scale as llama.cpp derives them; a
 * missing key or tensor, or a tensor of the wrong shape, is an error naming it; MoE routing
 * (sigmoid + selection bias + group-limited top-k, normalised, scaled) against a brute-force
 * reference.
 */
#include <math.h>

#include "lib/core/decoder.h"
#include "lib/core/gguf.h"
#include "lib/core/kernels.h"
#include "lib/core/types.h"
#include "loom.h"
#include "tests/decoder_test_util.h"

static void expect_error(const lm_synth_params *p, const char *skip_key, const char *skip_tensor,
                         const char *bad_tensor, int want_status, const char *name)
{
    char path[256], err[512] = "";
    tmp_model_path(path, sizeof path, "broken");
    lm_error e = {0};
    CHECK(lm_synth_write_broken(p, path, skip_key, skip_tensor, bad_tensor, &e) == 0, "write: %s", e.msg);
    loom_model *m = NULL;
    int rc = loom_model_load(path, loom_model_default_params(), &m, err, sizeof err);
    CHECK(rc == want_status && m == NULL, "%s: status %d (%s), expected %d", name, rc, loom_status_str(rc), want_status);
    CHECK(strstr(err, name) != NULL, "message '%s' does not name '%s'", err, name);
    loom_model_free(&m);
    unlink(path);
}

/* Brute force: every subset of groups, then the best K of the allowed experts. */
static void route_ref(const float *logit, const float *bias, int X, int K, int G, int GU, float scale,
                      int32_t *ex, float *w)
{
    float p[64], sel[64];
    for (int e = 0; e < X; e++) { p[e] = 1.0f / (1.0f + expf(-logit[e])); sel[e] = p[e] + bias[e]; }
    int per = X / G, allowed[64] = {0};
    float gs[16];
    for (int g = 0; g < G; g++) {  /* sum of the top two by sorting a copy */
        float v[64];
        memcpy(v, sel + g * per, (size_t)per * sizeof *v);
        for (int i = 0; i < per; i++) for (int j = i + 1; j < per; j++) if (v[j] > v[i]) { float t = v[i]; v[i] = v[j]; v[j] = t; }
        gs[g] = v[0] + v[1];
    }
    for (int k = 0; k < GU; k++) {
        int best = -1;
        for (int g = 0; g < G; g++) if (!allowed[g * per] && (best < 0 || gs[g] > gs[best])) best = g;
        for (int e = best * per; e < (best + 1) * per; e++) allowed[e] = 1;
    }
    float sum = 0;
    for (int k = 0; k < K; k++) {
        int best = -1;
        for (int e = 0; e < X; e++) if (allowed[e] && (best < 0 || sel[e] > sel[best])) best = e;
        ex[k] = best; w[k] = p[best]; sum += p[best]; allowed[best] = 0;
    }
    for (int k = 0; k < K; k++) w[k] = w[k] / sum * scale;
}

static void test_routing(void)
{
    lm_decoder_hparams hp = {.n_expert = 16, .n_expert_used = 4, .n_group = 4, .n_group_used = 2,
                             .gating = LM_GATING_SIGMOID, .weights_norm = 1, .weights_scale = 2.5f};
    uint64_t st = 99;
    int agree = 0;
    for (int trial = 0; trial < 200; trial++) {
        float logit[16], bias[16], scratch[32], w[4], wr[4];
        int32_t ex[4], exr[4];
        for (int e = 0; e < 16; e++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            logit[e] = (float)((st >> 33) % 2000) / 250.0f - 4.0f;
            bias[e] = (float)((st >> 13) % 200) / 1000.0f - 0.1f;
        }
        lm_moe_route(&hp, logit, bias, ex, w, scratch);
        route_ref(logit, bias, 16, 4, 4, 2, 2.5f, exr, wr);
        int same = 1;
        for (int k = 0; k < 4; k++) same &= ex[k] == exr[k] && fabsf(w[k] - wr[k]) < 1e-5f;
        agree += same;
    }
    CHECK(agree == 200, "routing agrees with the brute-force reference in %d of 200 cases", agree);

    /* softmax gating without normalisation: weights are the softmax over all experts */
    lm_decoder_hparams sm = {.n_expert = 4, .n_expert_used = 2, .gating = LM_GATING_SOFTMAX, .weights_scale = 1.0f};
    float logit[4] = {1.0f, 3.0f, 0.0f, 2.0f}, scratch[8], w[2];
    int32_t ex[2];
    lm_moe_route(&sm, logit, NULL, ex, w, scratch);
    const float z = expf(1) + expf(3) + expf(0) + expf(2);
    CHECK(ex[0] == 1 && ex[1] == 3 && fabsf(w[0] - expf(3) / z) < 1e-6f && fabsf(w[1] - expf(2) / z) < 1e-6f,
          "softmax routing: %d %d %g %g", ex[0], ex[1], w[0], w[1]);
    /* sqrt-softplus, normalised: the two largest, weights proportional to sqrt(log(1+e^x)) */
    sm.gating = LM_GATING_SQRT_SOFTPLUS;
    sm.weights_norm = 1;
    lm_moe_route(&sm, logit, NULL, ex, w, scratch);
    const float a = sqrtf(logf(1 + expf(3))), b = sqrtf(logf(1 + expf(2)));
    CHECK(ex[0] == 1 && ex[1] == 3 && fabsf(w[0] - a / (a + b)) < 1e-6f, "sqrt-softplus routing: %g", w[0]);
}

static void test_hparams(void)
{
    lm_synth_params p = lm_synth_tiny_params();
    char path[256];
    tmp_model_path(path, sizeof path, "hp");
    lm_error e = {0};
    CHECK(lm_synth_write(&p, path, &e) == 0, "write: %s", e.msg);
    lm_gguf *g = NULL;
    lm_decoder *d = NULL;
    CHECK(lm_gguf_open(path, &g, &e) == 0, "open: %s", e.msg);
    if (g) CHECK(lm_decoder_load(g, &d, &e) == 0, "load: %s", e.msg);
    if (d) {
        const lm_decoder_hparams *hp = &d->hp;
        CHECK(hp->n_vocab == p.n_vocab && hp->n_embd == p.n_embd && hp->n_layer == p.n_layer &&
              hp->n_head == p.n_head && hp->q_lora == p.q_lora && hp->kv_lora == p.kv_lora &&
              hp->n_nope == p.n_nope && hp->n_rope == p.n_rope && hp->n_v == p.n_v && hp->mla_split,
              "shape hyperparameters");
        CHECK(hp->n_expert == p.n_expert && hp->n_expert_used == p.n_expert_used &&
              hp->n_expert_shared == p.n_expert_shared && hp->n_group == p.n_group &&
              hp->n_group_used == p.n_group_used && hp->n_dense_lead == p.n_dense_lead &&
              hp->gating == p.gating && hp->weights_norm == p.weights_norm &&
              hp->weights_scale == p.weights_scale && fabsf(hp->rms_eps - 1e-6f) < 1e-12f, "MoE hyperparameters");
        /* YaRN factor 4, mscale_all_dim 1: rope magnitude 1/(1+0.1 ln 4) (ggml multiplies it
         * back), kq_scale = (1 + 0.1 ln 4)² / sqrt(nope + rope) */
        const float m = 1.0f + 0.1f * logf(4.0f);
        CHECK(fabsf(hp->rope.freq_scale - 0.25f) < 1e-7f && hp->rope.ext_factor == 1.0f &&
              hp->rope.n_ctx_orig == p.n_ctx_train / 4 && fabsf(hp->rope.attn_factor - 1.0f / m) < 1e-6f,
              "YaRN rope parameters");
        CHECK(fabsf(hp->kq_scale - m * m / sqrtf((float)(p.n_nope + p.n_rope))) < 1e-6f, "kq_scale %g", hp->kq_scale);
        CHECK(!d->layers[0].is_moe && d->layers[1].is_moe && d->layers[1].exp_probs_b != NULL, "layer kinds");
        CHECK(d->output.data != d->tok_embd.data, "separate output head");
        CHECK(d->active_bytes > 0, "active bytes");
    }
    lm_decoder_free(&d);
    lm_gguf_close(&g);
    unlink(path);

    /* legacy attn_kv_b, attn_q, tied head, no YaRN */
    p.mla_split = 0; p.q_lora = 0; p.tied = 1; p.yarn = 0;
    CHECK(lm_synth_write(&p, path, &e) == 0, "write: %s", e.msg);
    CHECK(lm_gguf_open(path, &g, &e) == 0, "open: %s", e.msg);
    if (g) CHECK(lm_decoder_load(g, &d, &e) == 0, "load legacy: %s", e.msg);
    if (d) {
        CHECK(!d->hp.mla_split && d->hp.q_lora == 0 && d->output.data == d->tok_embd.data, "legacy layout");
        CHECK(fabsf(d->hp.kq_scale - 1.0f / sqrtf((float)(p.n_nope + p.n_rope))) < 1e-7f && d->hp.rope.ext_factor == 0.0f,
              "no YaRN: kq_scale %g", d->hp.kq_scale);
    }
    lm_decoder_free(&d);
    lm_gguf_close(&g);
    unlink(path);
}

void lm_round_f16_avx2(const float *x, int64_t n, float *out); /* lib/core/decoder_avx2.c */
void lm_round_q8_avx2(const float *x, int64_t n, float *out);
void lm_round_q8_ref(const float *x, int64_t n, float *out);    /* lib/core/decoder.c */

/* The F16C rounding the decoder uses for f16 matmul inputs equals the scalar reference. */
static void test_round_f16(void)
{
    if (!lm_cpu_caps_get()->f16c || !lm_cpu_caps_get()->avx2) { n_pass++; return; }
    enum { N = 1 << 16 };
    static float x[N], y[N];
    uint64_t st = 5;
    for (int i = 0; i < N; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t bits = (uint32_t)(st >> 32);
        memcpy(&x[i], &bits, sizeof bits);
        if (isnan(x[i])) x[i] = 1.0f;
        if (i % 4 == 1) x[i] = ldexpf((float)(i % 2048) + 0.5f, -10 - i % 30); /* f16 ties, subnormals */
    }
    x[0] = 65520.0f; x[2] = -0.0f; x[3] = 1e-8f; x[5] = INFINITY;
    lm_round_f16_avx2(x, N - 3, y);
    int bad = 0;
    for (int i = 0; i < N - 3; i++) {
        float r = lm_f16_to_f32(lm_f32_to_f16(x[i]));
        if (memcmp(&r, &y[i], sizeof r)) bad++;
    }
    CHECK(bad == 0, "f16c rounding differs from lm_f32_to_f16 on %d of %d values", bad, N - 3);

    /* q8_0 activation rounding: AVX2 == portable, values on the grid, error <= half a step */
    static float r[N], z[N];
    for (int i = 0; i < N; i++) if (!isfinite(x[i]) || fabsf(x[i]) > 1e6f) x[i] = 0.5f; /* f16 scale range */
    for (int i = 0; i < 64; i++) x[i] = (float)(i - 32) * 0.5f; /* exact .5 ties after scaling */
    lm_round_q8_avx2(x, N, y);
    lm_round_q8_ref(x, N, r);
    bad = 0;
    int off = 0;
    for (int i = 0; i < N; i++) {
        if (memcmp(&y[i], &r[i], sizeof r[i])) bad++;
        z[i] = x[i];
    }
    for (int b = 0; b < N; b += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(z[b + j]));
        /* half a step, plus the f16 rounding of the step itself (times |q| <= 127) */
        const float d = amax / 127.0f, d16 = lm_f16_to_f32(lm_f32_to_f16(d));
        const float tol = 0.5f * d + 127.0f * fabsf(d16 - d) + 1e-6f * amax;
        for (int j = 0; j < 32; j++) off += !(fabsf(r[b + j] - z[b + j]) <= tol);
    }
    CHECK(bad == 0 && off == 0, "q8_0 rounding: avx2 vs ref differ on %d values, %d off the grid", bad, off);
}

int main(void)
{
    test_round_f16();
    test_routing();
    test_hparams();
    lm_synth_params p = lm_synth_tiny_params();
    const char *keys[] = {"deepseek2.attention.kv_lora_rank", "deepseek2.attention.q_lora_rank",
                          "deepseek2.expert_feed_forward_length", "deepseek2.attention.layer_norm_rms_epsilon",
                          "deepseek2.block_count", "deepseek2.embedding_length", "deepseek2.context_length",
                          "deepseek2.expert_shared_count", "general.architecture"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) expect_error(&p, keys[i], NULL, NULL, LOOM_ERR_NOT_FOUND, keys[i]);
    expect_error(&p, "deepseek2.feed_forward_length", NULL, NULL, LOOM_ERR_NOT_FOUND, "deepseek2.feed_forward_length");
    expect_error(&p, "deepseek2.expert_count", NULL, NULL, LOOM_ERR_NOT_FOUND, "deepseek2.expert_count");
    const char *tensors[] = {"token_embd.weight", "output_norm.weight", "blk.0.attn_norm.weight", "blk.1.attn_q_a.weight",
                             "blk.1.attn_q_b.weight", "blk.2.attn_kv_a_mqa.weight", "blk.1.attn_k_b.weight",
                             "blk.2.attn_v_b.weight", "blk.0.attn_output.weight", "blk.0.ffn_down.weight",
                             "blk.1.ffn_gate_inp.weight", "blk.2.ffn_up_exps.weight", "blk.1.ffn_down_exps.weight",
                             "blk.2.ffn_gate_shexp.weight", "blk.1.attn_kv_a_norm.weight"};
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) {
        expect_error(&p, NULL, tensors[i], NULL, LOOM_ERR_NOT_FOUND, tensors[i]);
        expect_error(&p, NULL, NULL, tensors[i], LOOM_ERR_TYPE, tensors[i]);
    }
    p.mla_split = 0;
    expect_error(&p, NULL, "blk.1.attn_kv_b.weight", NULL, LOOM_ERR_NOT_FOUND, "blk.1.attn_kv_b.weight");
    expect_error(&p, NULL, NULL, "blk.0.attn_kv_b.weight", LOOM_ERR_TYPE, "blk.0.attn_kv_b.weight");
    p.q_lora = 0;
    expect_error(&p, NULL, "blk.2.attn_q.weight", NULL, LOOM_ERR_NOT_FOUND, "blk.2.attn_q.weight");
    char err[256] = "";
    loom_model *m = NULL;
    CHECK(loom_model_load("data/decoder/does-not-exist.gguf", loom_model_default_params(), &m, err, sizeof err) < 0 &&
          m == NULL && strstr(err, "does-not-exist"), "missing file: '%s'", err);
    return finish();
}
