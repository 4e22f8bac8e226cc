/*
 * Image I/O (internal): PNG via libpng, JPEG via TurboJPEG, to RGB8 loom_image.
 * The public wrappers in lib/image.c convert lm_error to the caller's text buffer.
 *
 * Nothing in the input is trusted: the format comes from the magic bytes, the pixel count
 * is checked against params.max_pixels right after the header (before pixel memory is
 * allocated), and the EXIF parser bounds-checks every offset it reads.
 */
#ifndef LM_VISION_IMAGE_H
#define LM_VISION_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/core/error.h"

typedef enum lm_image_format {
    LM_IMAGE_UNKNOWN = 0,
    LM_IMAGE_PNG,
    LM_IMAGE_JPEG,
    LM_IMAGE_GIF,   /* recognised only to name it in the error */
    LM_IMAGE_WEBP,
    LM_IMAGE_BMP,
} lm_image_format;

/* Format from the first bytes of a file. */
lm_image_format lm_image_sniff(const uint8_t *buf, size_t size);

/* Decode an in-memory PNG/JPEG. On failure *out is zeroed. */
int lm_image_decode(const uint8_t *buf, size_t size, const loom_image_params *p,
                    loom_image *out, lm_error *err);
/* Read `path` (bounded by the pixel limit: a file larger than max_pixels*8 + 16 MiB cannot
 * be a sane PNG/JPEG within the limit and is refused) and decode it. */
int lm_image_load(const char *path, const loom_image_params *p, loom_image *out, lm_error *err);

/* New image of w×h (pixels uninitialised). */
int lm_image_alloc(loom_image *out, int w, int h, lm_error *err);

/* EXIF orientation (1..8) from a JPEG's APP1 segment; 1 when absent or unreadable. */
int lm_jpeg_exif_orientation(const uint8_t *buf, size_t size);
/* Rotate/flip `img` in place (by swapping in a new buffer) so that orientation o (EXIF 1..8)
 * becomes upright. */
int lm_image_orient(loom_image *img, int orientation, lm_error *err);

/* Write an RGB8 PNG atomically (temp file in the same directory + rename). `text` as in
 * loom_image_save_png. */
int lm_png_write(const loom_image *img, const char *path, const char *const *text, lm_error *err);
/* Text chunks of a PNG file; see loom_png_read_text. */
int lm_png_read_text(const char *path, char ***text, int *n_pairs, lm_error *err);

#endif
