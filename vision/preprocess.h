/*
 * Image preprocessing for the vision encoder: fit policy (pad to square / center crop /
 * stretch), antialiased resize, mean/std normalisation, CHW float output.
 *
 * The resize is PyTorch's F.interpolate(x.float(), size, mode, antialias=True,
 * align_corners=False) (the Pillow-style separable filter): when shrinking, the filter
 * support grows with the shrink factor; bilinear uses the triangle filter, bicubic Keys'
 * cubic with a = -0.5. Values are not clamped or rounded after resizing (a bicubic
 * overshoot stays), exactly like the float torch path; tools/loompy/vision.py is the
 * reference and tests/test_vit_parity.c checks the two agree.
 */
#ifndef LM_VISION_PREPROCESS_H
#define LM_VISION_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/core/error.h"

typedef enum lm_resize_filter {
    LM_RESIZE_BILINEAR = 0,
    LM_RESIZE_BICUBIC  = 1,
} lm_resize_filter;

typedef enum lm_fit_policy {
    LM_FIT_PAD     = 0, /* pad to a centred square with pad_rgb, then resize (Janus, LLaVA) */
    LM_FIT_CROP    = 1, /* resize the short side to `size`, centre-crop (CLIP)              */
    LM_FIT_STRETCH = 2, /* resize straight to size×size, aspect ignored                     */
} lm_fit_policy;

typedef struct lm_preprocess {
    int     size;         /* output side S (the encoder's image_size)                 */
    int     filter;       /* lm_resize_filter                                         */
    int     fit;          /* lm_fit_policy                                            */
    uint8_t pad_rgb[3];   /* padding colour for LM_FIT_PAD                            */
    float   mean[3];      /* per channel, on the 0..1 scale (clip.vision.image_mean)  */
    float   std[3];       /* per channel, on the 0..1 scale (clip.vision.image_std)   */
} lm_preprocess;

/* Defaults: 224, bicubic, pad with gray 127, mean = std = 0.5. */
lm_preprocess lm_preprocess_default(void);

/* One axis of a resample, in "virtual padded" coordinates: the source axis is `padded`
 * long with the real pixels at [offset, offset + len); the full resized axis is
 * `out_full` long and we produce outputs [out_first, out_first + out_count). */
typedef struct lm_resample_axis {
    int64_t padded, offset, len;
    int64_t out_full, out_first, out_count;
} lm_resample_axis;

/* Resample an RGB8 image (`stride` bytes per row) to float dst[3][ay.out_count][ax.out_count]
 * on the 0..255 scale. Pixels outside the image (padding) are `fill`. */
int lm_resample_rgb8(const uint8_t *src, size_t stride, const lm_resample_axis *ax,
                     const lm_resample_axis *ay, int filter, const uint8_t fill[3], float *dst,
                     lm_error *err);

/* The whole pipeline: chw[3][S][S] = ((resize(fit(img)) / 255) - mean) / std. */
int lm_image_preprocess(const loom_image *img, const lm_preprocess *p, float *chw, lm_error *err);

#endif
