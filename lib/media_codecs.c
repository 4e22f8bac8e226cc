/* Public "Media codecs" API (include/loom.h): thin wrappers over vision/vq and audio/audio_codec
 * that own a thread pool and keep the last error. */
#include <stdio.h>
#include <stdlib.h>

#include "audio/audio_codec.h"
#include "lib/core/error.h"
#include "lib/core/threadpool.h"
#include "vision/image.h"
#include "vision/vq.h"

struct loom_vq {
    lm_vq   *vq;     /* owned */
    lm_pool *pool;   /* owned */
    lm_error err;
};

struct loom_audio_codec {
    lm_audio_codec *ac;    /* owned */
    lm_pool        *pool;  /* owned */
    lm_error        err;
};

loom_codec_params loom_codec_default_params(void)
{
    loom_codec_params p = {.n_threads = 0};
    return p;
}

static void copy_err(const lm_error *e, char *err, size_t err_size)
{
    if (err && err_size) snprintf(err, err_size, "%s", e->msg);
}

/* Open path with `open_fn` into a handle holding `inner` and a pool; shared by both codecs. */
#define OPEN_CODEC(T, open_fn, free_fn, field)                                               \
    lm_error e = {0};                                                                        \
    if (err && err_size) err[0] = '\0';                                                      \
    if (!out || !path) {                                                                     \
        lm_fail(&e, LOOM_ERR_INVALID_ARG, "%s: NULL argument", __func__);                    \
        copy_err(&e, err, err_size);                                                         \
        return e.status;                                                                     \
    }                                                                                        \
    *out = NULL;                                                                             \
    T *h = calloc(1, sizeof *h);                                                             \
    int rc = h ? 0 : lm_fail(&e, LOOM_ERR_NO_MEMORY, "out of memory");                       \
    if (rc == 0) rc = open_fn(path, &h->field, &e);                                          \
    if (rc == 0 && !(h->pool = lm_pool_create(params.n_threads)))                            \
        rc = lm_fail(&e, LOOM_ERR_NO_MEMORY, "could not start %d threads", params.n_threads); \
    if (rc < 0) {                                                                            \
        if (h) free_fn(&h);                                                                  \
        copy_err(&e, err, err_size);                                                         \
        return rc;                                                                           \
    }                                                                                        \
    *out = h;                                                                                \
    return 0;

/* --- VQ image codec ------------------------------------------------------------------ */

int loom_vq_open(const char *path, loom_codec_params params, loom_vq **out, char *err, size_t err_size)
{
    OPEN_CODEC(loom_vq, lm_vq_open, loom_vq_free, vq)
}

void loom_vq_free(loom_vq **vq)
{
    if (!vq || !*vq) return;
    lm_vq_free(&(*vq)->vq);
    lm_pool_free(&(*vq)->pool);
    free(*vq);
    *vq = NULL;
}

int loom_vq_image_size(const loom_vq *vq) { return vq ? lm_vq_get_info(vq->vq).image_size : 0; }
int loom_vq_grid(const loom_vq *vq) { return vq ? lm_vq_get_info(vq->vq).grid : 0; }
int loom_vq_codebook_size(const loom_vq *vq) { return vq ? lm_vq_get_info(vq->vq).codebook_size : 0; }
const char *loom_vq_error(const loom_vq *vq) { return vq ? vq->err.msg : ""; }

int loom_vq_decode_f32(loom_vq *vq, const int32_t *codes, float *x)
{
    if (!vq) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&vq->err);
    return lm_vq_decode(vq->vq, codes, x, vq->pool, &vq->err);
}

int loom_vq_decode(loom_vq *vq, const int32_t *codes, uint8_t *rgb)
{
    if (!vq) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&vq->err);
    return lm_vq_decode_rgb8(vq->vq, codes, rgb, vq->pool, &vq->err);
}

int loom_vq_encode(loom_vq *vq, const uint8_t *rgb, int32_t *codes)
{
    if (!vq) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&vq->err);
    return lm_vq_encode(vq->vq, rgb, codes, NULL, vq->pool, &vq->err);
}

int loom_vq_decode_image(loom_vq *vq, const int32_t *codes, loom_image *out)
{
    if (!vq) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&vq->err);
    if (!out) return lm_fail(&vq->err, LOOM_ERR_INVALID_ARG, "loom_vq_decode_image: out is NULL");
    const int S = lm_vq_get_info(vq->vq).image_size;
    int rc = lm_image_alloc(out, S, S, &vq->err);
    if (rc == 0) rc = lm_vq_decode_rgb8(vq->vq, codes, out->rgb, vq->pool, &vq->err);
    if (rc < 0) loom_image_free(out);
    return rc;
}

int loom_vq_encode_image(loom_vq *vq, const loom_image *img, int32_t *codes)
{
    if (!vq) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&vq->err);
    const int S = lm_vq_get_info(vq->vq).image_size;
    if (!img || !img->rgb) return lm_fail(&vq->err, LOOM_ERR_INVALID_ARG, "loom_vq_encode_image: empty image");
    if (img->width != S || img->height != S)
        return lm_fail(&vq->err, LOOM_ERR_INVALID_ARG, "loom_vq_encode_image: image is %dx%d, the codec takes %dx%d",
                       img->width, img->height, S, S);
    return lm_vq_encode(vq->vq, img->rgb, codes, NULL, vq->pool, &vq->err);
}

/* --- audio codec --------------------------------------------------------------------- */

int loom_audio_codec_open(const char *path, loom_codec_params params, loom_audio_codec **out, char *err,
                          size_t err_size)
{
    OPEN_CODEC(loom_audio_codec, lm_audio_codec_open, loom_audio_codec_free, ac)
}

void loom_audio_codec_free(loom_audio_codec **ac)
{
    if (!ac || !*ac) return;
    lm_audio_codec_free(&(*ac)->ac);
    lm_pool_free(&(*ac)->pool);
    free(*ac);
    *ac = NULL;
}

int loom_audio_codec_sample_rate(const loom_audio_codec *ac)
{
    return ac ? lm_audio_codec_get_info(ac->ac).sample_rate : 0;
}

int loom_audio_codec_samples_per_code(const loom_audio_codec *ac)
{
    if (!ac) return 0;
    lm_audio_codec_info in = lm_audio_codec_get_info(ac->ac);
    return in.hop * in.frames_per_code;
}

float loom_audio_codec_codes_per_second(const loom_audio_codec *ac)
{
    return ac ? lm_audio_codec_get_info(ac->ac).codes_per_second : 0.0f;
}

int loom_audio_codec_codebook_size(const loom_audio_codec *ac)
{
    return ac ? lm_audio_codec_get_info(ac->ac).codebook_size : 0;
}

int64_t loom_audio_codec_n_codes(const loom_audio_codec *ac, int64_t n_samples)
{
    return ac ? lm_audio_codec_n_codes(ac->ac, n_samples) : 0;
}

const char *loom_audio_codec_error(const loom_audio_codec *ac) { return ac ? ac->err.msg : ""; }

int loom_audio_codec_decode(loom_audio_codec *ac, const int32_t *codes, int64_t n_codes, float *pcm)
{
    if (!ac) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&ac->err);
    return lm_audio_codec_decode(ac->ac, codes, n_codes, pcm, ac->pool, &ac->err);
}

int loom_audio_codec_encode(loom_audio_codec *ac, const float *pcm, int64_t n_samples, int32_t *codes)
{
    if (!ac) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&ac->err);
    return lm_audio_codec_encode(ac->ac, pcm, n_samples, codes, NULL, NULL, ac->pool, &ac->err);
}
