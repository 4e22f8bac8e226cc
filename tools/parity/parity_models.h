/*
 * The random-weight deepseek2 models the decoder parity run (tools/parity/decoder) and the
 * fixture test (tests/test_decoder_parity.c) both use, with their token streams and
 * tolerances. Header-only; the same table regenerates the same files byte for byte.
 */
#ifndef LOOM_PARITY_MODELS_H
#define LOOM_PARITY_MODELS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/core/decoder_synth.h"
#include "lib/core/types.h"

typedef struct parity_model {
    const char     *name;
    int             tiny;      /* 1: llama.cpp's logits are committed as a fixture        */
    int             n_pos;     /* positions compared                                      */
    lm_synth_params p;
} parity_model;

/* A ~217 M-parameter model (32 experts, top 4 + 1 shared, 8 layers, vocab 32768).
 * calm = 1 shrinks the sublayer outputs (branch gain 0.05) and widens the selection bias
 * (±0.5): a random-weight MoE at full gain is chaotic, so the rare activation-rounding
 * boundary cases in which any two implementations of f16/q8_0 matmuls differ flip a route
 * or an attention winner and the difference cascades through later positions (measured:
 * mean KL 0.03 f16 / 0.57 q8_0 at full gain, while f32 agrees to 2e-5). */
static inline lm_synth_params parity_big_params_calm(int type, int calm)
{
    lm_synth_params p = lm_synth_tiny_params();
    p.n_vocab = 32768; p.n_embd = 512; p.n_layer = 8; p.n_head = 8; p.q_lora = 256; p.kv_lora = 128;
    p.n_nope = 64; p.n_rope = 32; p.n_v = 64; p.n_ff = 2048; p.n_dense_lead = 1; p.n_ff_exp = 512;
    p.n_expert = 32; p.n_expert_used = 4; p.n_expert_shared = 1; p.n_group = 4; p.n_group_used = 2;
    p.type = type; p.seed = 7;
    if (calm) { p.branch_gain = 0.05f; p.bias_amp = 0.5f; }
    return p;
}

static inline lm_synth_params parity_big_params(int type) { return parity_big_params_calm(type, 0); }

/* Fill `out` (up to max) with the parity models; returns how many. */
static inline int parity_models(parity_model *out, int max)
{
    int n = 0;
    lm_synth_params a = lm_synth_tiny_params();             /* split, q_lora, sigmoid, groups, bias, YaRN */
    lm_synth_params b = lm_synth_tiny_params();             /* legacy kv_b, attn_q, softmax, tied head   */
    b.mla_split = 0; b.q_lora = 0; b.gating = 1; b.n_group = 0; b.n_group_used = 0; b.exp_probs_b = 0;
    b.weights_norm = 0; b.weights_scale = 1.0f; b.yarn = 0; b.tied = 1; b.n_dense_lead = 0; b.seed = 2;
    lm_synth_params c = lm_synth_tiny_params();             /* sqrt-softplus, 2 shared, 16 experts       */
    c.gating = 4; c.n_expert = 16; c.n_expert_used = 4; c.n_expert_shared = 2; c.n_group = 0;
    c.n_group_used = 0; c.weights_scale = 1.5f; c.seed = 3;
    struct { const char *name; lm_synth_params p; int type; } t[] = {
        {"tiny-split-sigmoid-f32", a, LOOM_TYPE_F32}, {"tiny-legacy-softmax-f32", b, LOOM_TYPE_F32},
        {"tiny-split-sqrtsp-f32", c, LOOM_TYPE_F32},  {"tiny-split-sigmoid-f16", a, LOOM_TYPE_F16},
        {"tiny-legacy-softmax-f16", b, LOOM_TYPE_F16}, {"tiny-split-sigmoid-q8_0", a, LOOM_TYPE_Q8_0},
        {"tiny-split-sqrtsp-q8_0", c, LOOM_TYPE_Q8_0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0] && n < max; i++) {
        out[n] = (parity_model){.name = t[i].name, .tiny = 1, .n_pos = 24, .p = t[i].p};
        out[n++].p.type = t[i].type;
    }
    if (n < max) out[n++] = (parity_model){.name = "big-split-sigmoid-f32", .n_pos = 128, .p = parity_big_params(LOOM_TYPE_F32)};
    if (n < max) out[n++] = (parity_model){.name = "big-split-sigmoid-f16", .n_pos = 128, .p = parity_big_params_calm(LOOM_TYPE_F16, 1)};
    if (n < max) out[n++] = (parity_model){.name = "big-split-sigmoid-q8_0", .n_pos = 128, .p = parity_big_params_calm(LOOM_TYPE_Q8_0, 1)};
    if (n < max) {
        lm_synth_params p = parity_big_params_calm(LOOM_TYPE_F16, 1);
        p.mla_split = 0; p.gating = 1; p.exp_probs_b = 0; p.n_group = 0; p.n_group_used = 0; p.seed = 8;
        out[n++] = (parity_model){.name = "big-legacy-softmax-f16", .n_pos = 128, .p = p};
    }
    return n;
}

/* The token ids fed at each position (seeded, inside the vocabulary, BOS first). */
static inline void parity_tokens(const parity_model *m, int32_t *tok)
{
    uint64_t s = 0x1234u + (uint64_t)m->p.seed;
    for (int i = 0; i < m->n_pos; i++) {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        tok[i] = i == 0 ? 1 : (int32_t)(3 + z % (uint64_t)(m->p.n_vocab - 3));
    }
}

typedef struct parity_stats {
    double max_abs;      /* max |loom - peer| over every logit                           */
    double peer_std;     /* standard deviation of the peer's logits                      */
    double mean_kl;      /* mean over positions of KL(peer ‖ loom)                       */
    double top1;         /* fraction of positions with the same argmax                   */
} parity_stats;

static inline parity_stats parity_compare(const float *peer, const float *loom, int n_pos, int n_vocab)
{
    parity_stats st = {0};
    double sum = 0, sum2 = 0;
    int agree = 0;
    for (int t = 0; t < n_pos; t++) {
        const float *a = peer + (size_t)t * n_vocab, *b = loom + (size_t)t * n_vocab;
        double ma = a[0], mb = b[0];
        int ia = 0, ib = 0;
        for (int v = 0; v < n_vocab; v++) {
            double d = a[v] - b[v];
            if (d < 0) d = -d;
            if (d > st.max_abs || d != d) st.max_abs = d != d ? 1e30 : d;
            sum += a[v];
            sum2 += (double)a[v] * a[v];
            if (a[v] > ma) { ma = a[v]; ia = v; }
            if (b[v] > mb) { mb = b[v]; ib = v; }
        }
        agree += ia == ib;
        double za = 0, zb = 0;
        for (int v = 0; v < n_vocab; v++) { za += exp(a[v] - ma); zb += exp(b[v] - mb); }
        double kl = 0;
        for (int v = 0; v < n_vocab; v++) {
            double la = a[v] - ma - log(za), lb = b[v] - mb - log(zb);
            kl += exp(la) * (la - lb);
        }
        st.mean_kl += kl / n_pos;
    }
    const double n = (double)n_pos * n_vocab;
    st.peer_std = sqrt(sum2 / n - (sum / n) * (sum / n));
    st.top1 = (double)agree / n_pos;
    return st;
}

/* The tolerances for a weight type. Returns 1 if `st` passes; writes why not. */
static inline int parity_ok(int type, const parity_stats *st, char *why, size_t size)
{
    int ok = st->top1 >= 0.99;
    if (type == LOOM_TYPE_F32) ok = ok && st->max_abs <= 1e-3 * st->peer_std;
    else if (type == LOOM_TYPE_Q8_0) ok = ok && st->mean_kl <= 1e-3;
    else ok = ok && st->mean_kl <= 1e-4;
    snprintf(why, size, "%s: max|Δ| %.3g (limit %.3g), mean KL %.3g (limit %s), top-1 %.1f%%",
             loom_type_name(type), st->max_abs, 1e-3 * st->peer_std, st->mean_kl,
             type == LOOM_TYPE_F32 ? "-" : type == LOOM_TYPE_Q8_0 ? "1e-3" : "1e-4", 100 * st->top1);
    return ok;
}

/* Fixture file: "LMPF", u32 n_pos, u32 n_vocab, i32 tokens[n_pos], f32 logits[n_pos][n_vocab]. */
static inline int parity_fixture_write(const char *path, const int32_t *tok, const float *logits, int n_pos, int n_vocab)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint32_t hdr[3] = {0x46504d4cu, (uint32_t)n_pos, (uint32_t)n_vocab};
    int ok = fwrite(hdr, sizeof hdr, 1, f) == 1 && fwrite(tok, sizeof *tok, (size_t)n_pos, f) == (size_t)n_pos &&
             fwrite(logits, sizeof *logits, (size_t)n_pos * n_vocab, f) == (size_t)n_pos * n_vocab;
    return fclose(f) == 0 && ok ? 0 : -1;
}

#endif
