/* Public image API (include/loom.h "Images"): thin wrappers over vision/image_io.c that
 * turn an lm_error into the caller's text buffer. */
#include <stdio.h>
#include <string.h>

#include "vision/image.h"

static int report(int rc, const lm_error *e, char *err, size_t err_size)
{
    if (err && err_size) {
        if (rc < 0) snprintf(err, err_size, "%s", e->msg);
        else err[0] = '\0';
    }
    return rc;
}

int loom_image_load(const char *path, loom_image_params params, loom_image *out,
                    char *err, size_t err_size)
{
    lm_error e = {0};
    if (!path || !out) {
        if (out) memset(out, 0, sizeof *out);
        return report(lm_fail(&e, LOOM_ERR_INVALID_ARG, "loom_image_load: path and out are required"),
                      &e, err, err_size);
    }
    return report(lm_image_load(path, &params, out, &e), &e, err, err_size);
}

int loom_image_decode(const void *data, size_t size, loom_image_params params, loom_image *out,
                      char *err, size_t err_size)
{
    lm_error e = {0};
    if (!out) return report(lm_fail(&e, LOOM_ERR_INVALID_ARG, "loom_image_decode: out is NULL"), &e, err, err_size);
    return report(lm_image_decode(data, size, &params, out, &e), &e, err, err_size);
}

int loom_image_from_rgb(const uint8_t *rgb, int width, int height, size_t stride,
                        loom_image *out, char *err, size_t err_size)
{
    lm_error e = {0};
    if (!out) return report(lm_fail(&e, LOOM_ERR_INVALID_ARG, "loom_image_from_rgb: out is NULL"), &e, err, err_size);
    memset(out, 0, sizeof *out);
    if (!rgb) return report(lm_fail(&e, LOOM_ERR_INVALID_ARG, "loom_image_from_rgb: rgb is NULL"), &e, err, err_size);
    size_t row = (size_t)(width > 0 ? width : 0) * 3;
    if (stride == 0) stride = row;
    if (stride < row)
        return report(lm_fail(&e, LOOM_ERR_INVALID_ARG, "loom_image_from_rgb: stride %zu < width*3 = %zu",
                              stride, row), &e, err, err_size);
    int rc = lm_image_alloc(out, width, height, &e);
    if (rc < 0) return report(rc, &e, err, err_size);
    for (int y = 0; y < height; y++) memcpy(out->rgb + row * (size_t)y, rgb + stride * (size_t)y, row);
    return report(0, &e, err, err_size);
}

int loom_image_save_png(const loom_image *img, const char *path, const char *const *text,
                        char *err, size_t err_size)
{
    lm_error e = {0};
    if (!path) return report(lm_fail(&e, LOOM_ERR_INVALID_ARG, "loom_image_save_png: path is NULL"), &e, err, err_size);
    return report(lm_png_write(img, path, text, &e), &e, err, err_size);
}

int loom_png_read_text(const char *path, char ***text, int *n_pairs, char *err, size_t err_size)
{
    lm_error e = {0};
    if (!path || !text || !n_pairs)
        return report(lm_fail(&e, LOOM_ERR_INVALID_ARG, "loom_png_read_text: NULL argument"), &e, err, err_size);
    return report(lm_png_read_text(path, text, n_pairs, &e), &e, err, err_size);
}
