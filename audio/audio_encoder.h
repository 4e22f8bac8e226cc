/*
 * Whisper-style audio encoder + frame-stacking MLP projector (internal), following
 * llama.cpp mtmd's names (clip.audio.*, a.*, mm.a.mlp.*; voxtral projector). The keys and
 * tensors are specified in docs/FORMAT.md ("Audio encoder"); tools/loompy/audio.py is the
 * PyTorch reference.
 *
 *   mel [n_mel][T] → conv k3 s1 + GELU → conv k3 s2 + GELU → [T2][d] (T2 = (T−1)/2 + 1)
 *   + position_embd[:T2] → n_layer pre-LN blocks → post_ln → stack `stack` frames
 *   (zero-padded to a multiple) → mm.a.mlp.1 → GELU → mm.a.mlp.2 → [n_tok][d_proj]
 *
 * The loaded encoder is read-only apart from its workspace: one encode at a time per
 * encoder (give each thread its own encoder over the same lm_gguf).
 */
#ifndef LM_AUDIO_ENCODER_H
#define LM_AUDIO_ENCODER_H

#include <stdint.h>

#include "lib/core/error.h"
#include "lib/core/gguf.h"
#include "lib/core/threadpool.h"

typedef struct lm_audio_hparams {
    int   n_mel;    /* clip.audio.num_mel_bins (80 or 128)                  */
    int   d;        /* clip.audio.embedding_length                         */
    int   n_ff;     /* clip.audio.feed_forward_length                      */
    int   n_layer;  /* clip.audio.block_count                              */
    int   n_head;   /* clip.audio.attention.head_count                     */
    int   n_pos;    /* rows of a.position_embd: most frames after conv2    */
    int   stack;    /* clip.audio.projector.stack_factor                   */
    int   d_proj;   /* clip.audio.projection_dim (the decoder's width)     */
    float eps;      /* clip.audio.attention.layer_norm_epsilon             */
} lm_audio_hparams;

typedef struct lm_audio_encoder lm_audio_encoder;

/* Build an encoder over `g`, which must outlive it (weights stay in the mapping; F16 or
 * BF16 conv/norm/bias/position tensors are converted to owned F32 copies). Checks every
 * key and every tensor's shape; errors name the key or tensor. The workspace for the
 * longest input (2·n_pos mel frames) is allocated here. */
int  lm_audio_encoder_load(const lm_gguf *g, lm_audio_encoder **out, lm_error *err);
void lm_audio_encoder_free(lm_audio_encoder **e);
const lm_audio_hparams *lm_audio_encoder_hparams(const lm_audio_encoder *e);

/* Output tokens for T mel frames: ceil(((T − 1)/2 + 1) / stack); 0 if T < 1. */
int64_t lm_audio_encoder_n_tokens(const lm_audio_encoder *e, int64_t T);
/* Longest accepted input, in mel frames (2·n_pos). */
int64_t lm_audio_encoder_max_frames(const lm_audio_encoder *e);

/* mel: [n_mel][T] (lm_mel's layout); out: [n_tokens][d_proj]. */
int lm_audio_encoder_encode(lm_audio_encoder *e, const float *mel, int64_t T, float *out,
                            lm_pool *pool, lm_error *err);

#endif
