/*
 * Random-weight `deepseek2` GGUF files for tests, parity runs against llama.cpp and
 * benchmarks. Deterministic: the same params give the same bytes on every machine (values
 * come from an integer PRNG seeded per tensor name, so F16 / Q8_0 files are roundings of the
 * same F32 values, and adding a tensor does not change the others).
 */
#ifndef LM_DECODER_SYNTH_H
#define LM_DECODER_SYNTH_H

#include <stdint.h>

#include "lib/core/error.h"

enum { LM_SYNTH_VOCAB_SPM = 0, LM_SYNTH_VOCAB_GPT2 = 1 };

typedef struct lm_synth_params {
    int32_t  n_vocab;         /* SPM: >= 259 (3 specials + 256 byte tokens); GPT2: >= 258 */
    int32_t  vocab;           /* LM_SYNTH_VOCAB_*                                           */
    int32_t  n_embd, n_layer, n_head;
    int32_t  q_lora;          /* 0: attn_q                                                  */
    int32_t  kv_lora, n_nope, n_rope, n_v;
    int32_t  mla_split;       /* 1: attn_k_b + attn_v_b; 0: legacy attn_kv_b               */
    int32_t  n_ff;            /* dense FFN width (leading layers)                           */
    int32_t  n_dense_lead;
    int32_t  n_ff_exp, n_expert, n_expert_used, n_expert_shared;
    int32_t  n_group, n_group_used;
    int32_t  gating;          /* 1 softmax, 2 sigmoid, 4 sqrt-softplus                      */
    int32_t  weights_norm;
    float    weights_scale;
    int32_t  exp_probs_b;     /* write the selection bias                                   */
    int32_t  tied;            /* no output.weight (the head reuses token_embd)              */
    int32_t  yarn;            /* write YaRN rope scaling (factor 4, log multiplier 0.1·1.0) */
    int32_t  n_ctx_train;
    int32_t  type;            /* matrices: LOOM_TYPE_F32, F16, BF16 or Q8_0 (norms stay F32) */
    float    router_gain;     /* router logit scale (0: 3): larger = more decisive routing  */
    float    bias_amp;        /* exp_probs_b values in ±bias_amp (0: 0.1)                   */
    float    branch_gain;     /* attn_output / ffn_down gains (0: 0.5): smaller = calmer    */
    uint64_t seed;
    /* Unified-model keys (docs/FORMAT.md "Unified model"); all off when 0 / NULL.          */
    const char *vocab_from;   /* a GGUF whose tokenizer.* and loom.vocab.* keys replace the
                                 synthetic vocabulary (e.g. models/loom-tiny-vocab.gguf)    */
    int32_t  image_count;     /* > 0: loom.vocab.image_* range after the vocabulary         */
    int32_t  audio_count;     /* > 0: loom.vocab.audio_* range after the image range        */
    int32_t  image_grid;      /* > 0: loom.image.grid                                       */
    int32_t  video_n_frames, video_temporal_merge, video_gen_frames; /* > 0: loom.video.*   */
    int      audio_words;     /* nonzero: loom.audio.words = true                           */
} lm_synth_params;

/* A tiny model (a few hundred KB) with every feature on; callers then change fields. */
lm_synth_params lm_synth_tiny_params(void);

/* Write the model to `path`. With vocab_from or media ranges, token_embd / output get
 * (vocabulary + image_count + audio_count) rows and n_vocab is ignored. */
int lm_synth_write(const lm_synth_params *p, const char *path, lm_error *err);

/* Leave out one tensor (`skip_tensor`) or key (`skip_key`), or give `bad_tensor` a wrong
 * first dimension, to produce the broken files the loader tests need. NULLs: none. */
int lm_synth_write_broken(const lm_synth_params *p, const char *path, const char *skip_key,
                          const char *skip_tensor, const char *bad_tensor, lm_error *err);

#endif
