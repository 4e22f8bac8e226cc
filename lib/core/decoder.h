/*
 * The MoE decoder: llama.cpp's `deepseek2` architecture (DeepSeek-V2/V3), read from GGUF.
 *
 *   x = token_embd[id]                       (or caller-provided embeddings)
 *   for each layer:
 *     h  = x + MLA(RMSNorm(x))                multi-head latent attention
 *     x  = h + FFN(RMSNorm(h))                dense SwiGLU (leading layers) or
 *                                             routed experts + shared experts
 *   logits = output · RMSNorm(x)             (`output`, or token_embd when tied)
 *
 * The cache stores one shared row [kv_cmpr | k_pe] of kv_lora + n_rope floats per token and
 * layer. Decode steps run attention in the absorbed form: each head's query is multiplied
 * into the latent space (q_nope · k_b), keys are those rows, values their kv_cmpr part, and
 * each head's latent output goes through v_b. Prefill chunks (>= 8 tokens) run the absorbed
 * form or the plain one (per head, keys and values decompressed from the cached rows,
 * then standard attention), whichever lm_mla_plain_cheaper estimates is cheaper.
 * Q8_0 matvecs (decode) quantize their input to int8 blocks and use integer dots
 * (lm_matvec_q8), like llama.cpp; every other matmul rounds its input to the weights'
 * grid and multiplies floats (see docs/PARITY.md).
 *
 * The model (lm_decoder) is read-only after load and may be shared by many states. All
 * weights are lm_matrix views into the GGUF mapping (no copies), except a legacy
 * `attn_kv_b` whose k part is transposed once to F32 at load (the absorbed form needs
 * k_b as {nope, kv_lora} per head). Abort: lm_decoder_state_set_abort.
 */
#ifndef LM_DECODER_H
#define LM_DECODER_H

#include <stdint.h>

#include "lib/core/error.h"
#include "lib/core/gguf.h"
#include "lib/core/kernels.h"
#include "lib/core/threadpool.h"

/* expert_gating_func values (llama.cpp's llama_expert_gating_func_type). */
enum {
    LM_GATING_SOFTMAX        = 1,
    LM_GATING_SIGMOID        = 2,
    LM_GATING_SOFTMAX_WEIGHT = 3,  /* logits as scores, softmax over the selected only */
    LM_GATING_SQRT_SOFTPLUS  = 4,
};

typedef struct lm_decoder_hparams {
    int32_t n_vocab;          /* rows of token_embd                                      */
    int32_t n_embd;           /* embedding_length                                        */
    int32_t n_layer;          /* block_count - nextn_predict_layers (MTP layers skipped) */
    int32_t n_ctx_train;      /* context_length                                          */
    int32_t n_head;           /* attention.head_count (H)                                */
    int32_t q_lora;           /* attention.q_lora_rank; 0: one attn_q matrix             */
    int32_t kv_lora;          /* attention.kv_lora_rank                                  */
    int32_t n_nope;           /* per-head q/k dims without RoPE                          */
    int32_t n_rope;           /* rope.dimension_count: per-head q/k dims with RoPE       */
    int32_t n_v;              /* per-head value dims                                     */
    int32_t mla_split;        /* 1: attn_k_b/attn_v_b (key_length_mla present); 0: attn_kv_b */
    int32_t n_ff;             /* feed_forward_length (dense layers)                      */
    int32_t n_ff_exp;         /* expert_feed_forward_length                              */
    int32_t n_expert;         /* expert_count (E)                                        */
    int32_t n_expert_used;    /* expert_used_count (top-k)                               */
    int32_t n_expert_shared;  /* expert_shared_count                                     */
    int32_t n_group;          /* expert_group_count (<= 1: no group-limited routing)     */
    int32_t n_group_used;     /* expert_group_used_count                                 */
    int32_t n_dense_lead;     /* leading_dense_block_count                               */
    int32_t gating;           /* LM_GATING_*                                             */
    int32_t weights_norm;     /* expert_weights_norm                                     */
    float   weights_scale;    /* expert_weights_scale (0 or 1: none)                     */
    float   rms_eps;          /* attention.layer_norm_rms_epsilon                        */
    lm_rope rope;             /* for q_pe and k_pe (NORM mode, YaRN from rope.scaling.*) */
    float   kq_scale;         /* mscale² / sqrt(nope + rope)                             */
} lm_decoder_hparams;

typedef struct lm_decoder_layer {
    const float *attn_norm;    /* [n_embd]                                                */
    lm_matrix    q;            /* {n_embd, H·(nope+rope)}            (q_lora == 0)        */
    lm_matrix    q_a;          /* {n_embd, q_lora}                   (q_lora > 0)         */
    const float *q_a_norm;     /* [q_lora]                           (q_lora > 0)         */
    lm_matrix    q_b;          /* {q_lora, H·(nope+rope)}            (q_lora > 0)         */
    lm_matrix    kv_a;         /* {n_embd, kv_lora+rope}: kv_cmpr then k_pe               */
    const float *kv_a_norm;    /* [kv_lora]                                               */
    lm_matrix    k_b;          /* {nope, kv_lora·H}: head h = rows [h·kv_lora, +kv_lora)  */
    lm_matrix    v_b;          /* {kv_lora, ·}: head h = rows [h·v_b_stride + v_b_off, +v) */
    int64_t      v_b_stride;   /* rows between heads in v_b: v (split) or nope+v (kv_b)  */
    int64_t      v_b_off;      /* first value row of head 0: 0 (split) or nope (kv_b)    */
    lm_matrix    wo;           /* {H·v, n_embd}                                           */
    const float *ffn_norm;     /* [n_embd]                                                */
    int          is_moe;       /* layer index >= n_dense_lead                             */
    /* dense FFN (is_moe == 0) */
    lm_matrix    ffn_gate;     /* {n_embd, n_ff}                                          */
    lm_matrix    ffn_up;       /* {n_embd, n_ff}                                          */
    lm_matrix    ffn_down;     /* {n_ff, n_embd}                                          */
    /* MoE (is_moe == 1) */
    lm_matrix    gate_inp;     /* {n_embd, E}: router                                     */
    const float *exp_probs_b;  /* [E] selection-only bias, or NULL                        */
    lm_matrix    gate_exps;    /* expert e: {n_embd, ff_exp} at data + e·gate_exp_stride  */
    lm_matrix    up_exps;      /* expert e: {n_embd, ff_exp} at data + e·up_exp_stride    */
    lm_matrix    down_exps;    /* expert e: {ff_exp, n_embd} at data + e·down_exp_stride  */
    size_t       gate_exp_stride, up_exp_stride, down_exp_stride; /* bytes between experts */
    lm_matrix    gate_shexp;   /* {n_embd, ff_exp·n_shared}          (n_shared > 0)       */
    lm_matrix    up_shexp;     /* {n_embd, ff_exp·n_shared}                               */
    lm_matrix    down_shexp;   /* {ff_exp·n_shared, n_embd}                               */
} lm_decoder_layer;

typedef struct lm_decoder {
    lm_decoder_hparams hp;
    lm_matrix          tok_embd;    /* {n_embd, n_vocab}                                 */
    const float       *output_norm; /* [n_embd]                                          */
    lm_matrix          output;      /* {n_embd, n_vocab}; token_embd when tied           */
    lm_decoder_layer  *layers;      /* [n_layer], owned                                  */
    float             *k_b_owned;   /* legacy kv_b: [n_layer][H·kv_lora][nope], owned    */
    uint64_t           active_bytes;/* weight bytes one decode step reads (roofline)     */
} lm_decoder;

/* Forms of the batched (prefill) attention. */
enum { LM_MLA_AUTO = 0, LM_MLA_ABSORBED = 1, LM_MLA_PLAIN = 2 };

/* Read hyperparameters and bind every tensor of a `deepseek2` GGUF. `g` must outlive the
 * decoder (weights point into its mapping). A missing key, a tensor of the wrong shape or
 * an inconsistent value is an error that names it. */
int  lm_decoder_load(const lm_gguf *g, lm_decoder **out, lm_error *err);
void lm_decoder_free(lm_decoder **d);

/* Per-sequence state: the latent KV cache for n_ctx positions and every scratch buffer a
 * forward pass of up to n_batch tokens needs, or a stacked decode step of up to
 * min(n_batch, LM_DECODE_MAX_SEQ) sequences (lm_decoder_forward_multi) when this state
 * comes first (planned and allocated once, here). */
typedef struct lm_decoder_state lm_decoder_state;

int  lm_decoder_state_create(const lm_decoder *d, int32_t n_ctx, int32_t n_batch,
                             lm_decoder_state **out, lm_error *err);
void lm_decoder_state_free(lm_decoder_state **s);
int32_t lm_decoder_state_n_past(const lm_decoder_state *s);   /* cached positions      */
int32_t lm_decoder_state_n_ctx(const lm_decoder_state *s);
int32_t lm_decoder_state_n_batch(const lm_decoder_state *s);
/* Forget cached positions >= n_past (0 clears). */
void lm_decoder_state_truncate(lm_decoder_state *s, int32_t n_past);
/* Make dst hold src's cached positions and tuning (states of d; dst's n_ctx must hold
 * src's n_past, else LOOM_ERR_CONTEXT_FULL and dst is unchanged). Scratch is not copied. */
int lm_decoder_state_copy(const lm_decoder *d, lm_decoder_state *dst, const lm_decoder_state *src, lm_error *err);
/* Polled by lm_decoder_forward before each chunk and between layers (fn NULL: never);
 * nonzero stops the pass. */
typedef int (*lm_abort_fn)(void *user);
void lm_decoder_state_set_abort(lm_decoder_state *s, lm_abort_fn fn, void *user);
/* Tuning for tests and benchmarks, set between passes (the model stays read-only):
 * mla_form: prefill attention, LM_MLA_AUTO (default) or a forced form; q8_float_x 1: Q8_0
 * matvecs take float x rounded to the q8 grid instead of int8 dots (the older path;
 * default 0). */
void lm_decoder_state_set_tuning(lm_decoder_state *s, int mla_form, int q8_float_x);

/* Limit the next pass's logits (lm_decoder_forward's last position, or each row of
 * lm_decoder_forward_multi when every state set the same limit) to ids in [lo, hi) and
 * `extra` (-1: none): only those rows of the output head are computed, each bit for bit as
 * in the full head, and the other logits are -INFINITY. Media generation sets it before each
 * step inside a block, where the sampler may pick only the medium's codes (or a forced
 * token). It holds for one pass (all_logits passes ignore it) and is then cleared. */
typedef struct lm_logit_limit { int on; int32_t lo, hi, extra; } lm_logit_limit;
void lm_decoder_state_limit_logits(lm_decoder_state *s, int32_t lo, int32_t hi, int32_t extra);

/* Run n inputs at positions n_past … n_past+n-1 and append them to the cache. Inputs are
 * token ids (`tokens`, embd NULL) or embeddings (`embd` [n][n_embd], tokens NULL).
 * logits: NULL (none), or [n][n_vocab] when all_logits, else [n_vocab] for the last input.
 * Runs in chunks of n_batch. LOOM_ERR_CONTEXT_FULL (nothing changed) when n_past + n >
 * n_ctx; LOOM_ERR_INVALID_ARG for a token id out of range. LOOM_ERR_ABORTED when the abort
 * callback fired: the cache then holds the chunks computed in full (n_past advanced by a
 * multiple of n_batch, possibly 0), their rows of all_logits are written, and the last-
 * position logits are not. */
int lm_decoder_forward(const lm_decoder *d, lm_decoder_state *s, const int32_t *tokens,
                       const float *embd, int64_t n, float *logits, int all_logits,
                       lm_pool *pool, lm_error *err);

/* Most sequences lm_decoder_forward_multi runs in one step. */
#define LM_DECODE_MAX_SEQ 8

/* One decode step of n_seq (1..LM_DECODE_MAX_SEQ) separate sequences at once: tokens[i] is
 * appended to states[i] at its own position n_past_i (caches may differ in length). The
 * rows are stacked in states[0]'s scratch (created with n_batch >= n_seq), so each weight
 * matrix — attention projections, dense FFN, router, shared experts, output head — is read
 * once for all rows, and the routed experts run grouped by expert across the rows;
 * attention runs per sequence on its own cache and scratch. Every row gets the same
 * arithmetic as a lone lm_decoder_forward step of that state (the same row kernels, the
 * experts summed in the same order), so logits and caches match it bit for bit.
 * logits: NULL (none), or n_seq pointers to [n_vocab] each. The states must belong to d,
 * be distinct and agree on q8_float_x (lm_decoder_state_set_tuning). LOOM_ERR_CONTEXT_FULL / LOOM_ERR_INVALID_ARG change nothing; on
 * LOOM_ERR_ABORTED (any state's abort callback, polled between layers) no state advances.
 * Not for concurrent use with another pass on any of the states. */
int lm_decoder_forward_multi(const lm_decoder *d, lm_decoder_state *const *states, const int32_t *tokens,
                             int n_seq, float *const *logits, lm_pool *pool, lm_error *err);

/* 1 if the plain MLA form costs fewer multiply-adds than the absorbed one for a chunk of n
 * tokens after n_past cached ones, attention computed in blocks of qb query rows. Per head
 * (RoPE, softmax and the projections outside attention are the same in both):
 *   absorbed: n·kv_lora·(nope + v)              q̃ = k_bₕ·q_nope, out = v_bₕ·o, per query
 *             + P·(2·kv_lora + rope)            S = Q̃·[C | K_pe]ᵀ, O = S·C
 *   plain:    (n_past + n)·kv_lora·(nope + v)   K_nope = Ĉ·k_bₕ, V = Ĉ·v_bₕᵀ, per cached row
 *             + P·(nope + rope + v)             S = Q·Kᵀ, O = S·V
 * where P = Σ over query blocks of rows × keys (≈ n·n_past + n²/2). So plain wins iff
 * n_past·kv_lora·(nope + v) < P·(2·kv_lora − nope − v): always when nothing is cached (and
 * 2·kv_lora > nope + v), otherwise when n is large relative to kv_lora. DeepSeek-V3's heads
 * (kv_lora 512, nope 128, rope 64, v 128): n·(1 + n/(2·n_past)) > 171, so n > 171 after a
 * long cache. Decode steps (n < 8) always use the absorbed form, and so do split-layout
 * layers with Q8_0 k_b/v_b (see plain_allowed in decoder.c: parity with llama.cpp). */
int lm_mla_plain_cheaper(const lm_decoder_hparams *hp, int64_t n_past, int64_t n, int64_t qb);

/* The routing of one token (exposed for tests): scores[E] are the router logits; writes
 * the n_expert_used chosen experts and their weights. scratch holds 2·E floats. */
void lm_moe_route(const lm_decoder_hparams *hp, const float *logits, const float *bias,
                  int32_t *experts, float *weights, float *scratch);

#endif
