/*
 * VQ image codec (LlamaGen / Janus style), the C twin of tools/loompy/vq.py.
 *
 *   decode: codes [g][g] → codebook rows (already L2-normalised in the file) → post_quant_conv
 *           → conv_in → mid Res/Attn/Res → up stages (ResBlocks, attention in the lowest-
 *           resolution stage, nearest ×2 + conv) → GroupNorm, swish, conv_out → x [3][S][S]
 *   encode: RGB8 → x = p/127.5 − 1 → conv_in → down stages → mid → GroupNorm, swish, conv_out
 *           → quant_conv → z [D][g][g] → code = argmax_k codebook[k]·z/‖z‖ (ties → lowest k)
 *
 * File layout: docs/FORMAT.md "VQ image codec". All weights are converted to F32 at load
 * (the file may hold F16 / BF16 / Q8_0); the GGUF is closed afterwards.
 * Scratch for both directions is planned and allocated once at load: decode/encode never
 * allocate. One lm_vq serves one caller at a time.
 */
#ifndef LM_VQ_H
#define LM_VQ_H

#include <stdint.h>

#include "lib/core/error.h"
#include "lib/core/threadpool.h"

typedef struct lm_vq lm_vq;

typedef struct lm_vq_info {
    int image_size;     /* S: side of the square RGB image           */
    int grid;           /* g: side of the code grid (S / 2^(L-1))    */
    int codebook_size;  /* K                                          */
    int embed_dim;      /* D                                          */
} lm_vq_info;

/* Load a loom-vq GGUF (every key and tensor shape checked; errors name them). */
int  lm_vq_open(const char *path, lm_vq **out, lm_error *err);
void lm_vq_free(lm_vq **vq);
lm_vq_info lm_vq_get_info(const lm_vq *vq);

/* codes [g][g] (each in [0, K)) → x [3][S][S] (decoder output, ≈ [-1, 1], before the pixel
 * mapping). `pool` may be NULL (single thread). */
int lm_vq_decode(lm_vq *vq, const int32_t *codes, float *x, lm_pool *pool, lm_error *err);

/* codes → rgb [S][S][3] through lm_vq_to_rgb8, using the planned scratch for x. */
int lm_vq_decode_rgb8(lm_vq *vq, const int32_t *codes, uint8_t *rgb, lm_pool *pool, lm_error *err);

/* rgb [S][S][3] → codes [g][g]; z (may be NULL) receives the quant_conv output [D][g][g]. */
int lm_vq_encode(lm_vq *vq, const uint8_t *rgb, int32_t *codes, float *z, lm_pool *pool, lm_error *err);

/* vq.py's to_pixels: rgb[h][w][c] = round_half_even(clamp((x[c][h][w] + 1) · 127.5, 0, 255));
 * NaN maps to 0. */
void lm_vq_to_rgb8(const float *x, int size, uint8_t *rgb);

#endif
