/*
 * ViT image encoder + projector, following llama.cpp's mmproj (clip.cpp) conventions.
 *
 *   chw[3][S][S] → patch embedding (conv p×p stride p, as im2col + GEMM) → + position
 *   embedding → [pre_ln] → L pre-LN blocks (LN, MHA, residual; LN, GELU MLP, residual)
 *   → [post_ln] → projector: optional 2×2 patch merge, mm.0 → GELU → mm.2.
 *
 * GELU is the exact (erf) form, PyTorch's nn.GELU() default. No class token.
 * The keys and tensor names are listed in docs/FORMAT.md ("Vision encoder").
 *
 * The model (lm_vit) is read-only after loading and may serve many contexts at once; an
 * lm_vit_ctx holds one caller's activations, sized up front for a maximum batch.
 */
#ifndef LM_VISION_VIT_H
#define LM_VISION_VIT_H

#include <stdint.h>

#include "lib/core/error.h"
#include "lib/core/gguf.h"
#include "lib/core/kernels.h"
#include "lib/core/threadpool.h"
#include "vision/preprocess.h"

typedef struct lm_vit_hparams {
    int   image_size;     /* S: input side in pixels                      */
    int   patch_size;     /* p                                            */
    int   n_embd;         /* d: ViT width                                 */
    int   n_ff;           /* MLP hidden width                             */
    int   n_layer;
    int   n_head;
    float eps;            /* LayerNorm epsilon                            */
    int   merge;          /* spatial_merge_size: 1 (none) or 2 (2×2)      */
    int   n_mm_hidden;    /* mm.0 output width                            */
    int   n_embd_out;     /* projection_dim: mm.2 output width            */
    int   n_patch_side;   /* S/p                                          */
    int   n_patches;      /* (S/p)²                                       */
    int   n_tokens_out;   /* n_patches / merge²                           */
} lm_vit_hparams;

typedef struct lm_vit lm_vit;
typedef struct lm_vit_ctx lm_vit_ctx;

/* Build an encoder from the clip.* keys and v.* / mm.* tensors of `g`. Matrix weights point
 * into g's mapping (g must outlive the encoder); 1-D tensors and the position embedding
 * that are not F32 are converted into buffers the encoder owns. */
int  lm_vit_load(const lm_gguf *g, lm_vit **out, lm_error *err);
void lm_vit_free(lm_vit **v);

const lm_vit_hparams *lm_vit_hparams_of(const lm_vit *v);
int lm_vit_n_tokens(const lm_vit *v);      /* output tokens per image  */
int lm_vit_n_embd_out(const lm_vit *v);    /* width of each token      */
/* Layers whose q/k/v weights lie back to back in the file (one GEMM instead of three). */
int lm_vit_n_fused_qkv(const lm_vit *v);
/* The preprocessing the model file asks for (size, mean/std, fit, filter). */
lm_preprocess lm_vit_preprocess_params(const lm_vit *v);

/* Activations for up to max_batch images (any pool size). */
int  lm_vit_ctx_create(const lm_vit *v, int max_batch, lm_vit_ctx **out, lm_error *err);
void lm_vit_ctx_free(lm_vit_ctx **c);

/* Encode n_img preprocessed images chw[n_img][3][S][S] into
 * out[n_img][n_tokens][n_embd_out]. No allocation. */
int lm_vit_encode(lm_vit_ctx *c, const float *chw, int n_img, float *out, lm_pool *pool, lm_error *err);

#endif
