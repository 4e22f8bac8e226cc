/* loom_mmproj: the media encoders of a unified model (one GGUF: vision and/or audio). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_encoder.h"
#include "audio/mel.h"
#include "include/loom.h"
#include "lib/core/error.h"
#include "lib/core/gguf.h"
#include "lib/core/threadpool.h"
#include "lib/mmproj.h"
#include "vision/preprocess.h"
#include "vision/vit.h"

/* Buffers a vision encoder's hyperparameters may make loom allocate at load (estimated
 * before allocating: a hostile image_size must not turn a small file into gigabytes). */
#define LM_MMPROJ_MAX_BYTES (1 << 30)

loom_mmproj_params loom_mmproj_default_params(void)
{
    return (loom_mmproj_params){.n_threads = 0, .max_images = 8};
}

/* A bool key that says whether an encoder is in the file; absent → decided by its tensors. */
static int has_part(const lm_gguf *g, const char *key, const char *tensor)
{
    int v = 0;
    lm_error ignore = {0};
    if (lm_gguf_find_kv(g, key) >= 0 && lm_gguf_get_bool(g, key, &v, &ignore) == 0) return v != 0;
    return lm_gguf_find_tensor(g, tensor) != NULL;
}

/* The optional CTC head on the audio rows: mm.a.ctc.weight {n_embd, classes} in any type the
 * kernels take, mm.a.ctc.bias {classes}. Classes are text tokens then blank. */
static int load_ctc(loom_mmproj *mp, const char *path, lm_error *e)
{
    const lm_gguf_tensor *w = lm_gguf_find_tensor(mp->gguf, "mm.a.ctc.weight");
    if (!w) return 0;
    const int64_t C = w->ne[1];
    if (w->n_dims != 2 || C < 2 || C > (1 << 20))
        return lm_fail(e, LOOM_ERR_TYPE, "%s: mm.a.ctc.weight is not a {%d, 2..%d} matrix", path, mp->n_embd, 1 << 20);
    const int64_t ne[2] = {mp->n_embd, C};
    const lm_gguf_tensor *t = NULL;
    int rc = lm_gguf_get_tensor(mp->gguf, "mm.a.ctc.weight", 2, ne, &t, e);
    if (rc == 0 && lm_row_bytes(t->type, mp->n_embd) == 0)
        rc = lm_fail(e, LOOM_ERR_TYPE, "%s: mm.a.ctc.weight: rows of %d values do not fit type %s", path, mp->n_embd,
                     loom_type_name(t->type));
    const lm_gguf_tensor *b = NULL;
    if (rc == 0) rc = lm_gguf_get_tensor(mp->gguf, "mm.a.ctc.bias", 1, &C, &b, e);
    if (rc == 0 && C % lm_type_block_len(b->type) != 0)
        rc = lm_fail(e, LOOM_ERR_TYPE, "%s: mm.a.ctc.bias (%s) is not whole blocks", path, loom_type_name(b->type));
    if (rc < 0) return rc;
    mp->ctc = (lm_matrix){.type = t->type, .n_in = mp->n_embd, .n_out = C,
                          .row_bytes = lm_row_bytes(t->type, mp->n_embd), .data = t->data};
    mp->ctc_bias = malloc((size_t)C * sizeof *mp->ctc_bias);
    if (!mp->ctc_bias) return lm_fail(e, LOOM_ERR_NO_MEMORY, "mmproj: out of memory");
    lm_row_to_f32(b->type, b->data, mp->ctc_bias, C);
    mp->ctc_classes = (int32_t)C;
    return 0;
}

int loom_mmproj_load(const char *path, loom_mmproj_params p, loom_mmproj **out, char *err, size_t err_size)
{
    lm_error e = {0};
    if (!out) return LOOM_ERR_INVALID_ARG;
    *out = NULL;
    loom_mmproj *mp = calloc(1, sizeof *mp);
    int rc = mp ? 0 : lm_fail(&e, LOOM_ERR_NO_MEMORY, "mmproj: out of memory");
    if (rc == 0 && (p.max_images < 1 || p.max_images > 1024))
        rc = lm_fail(&e, LOOM_ERR_INVALID_ARG, "mmproj: max_images %d outside 1..1024", p.max_images);
    if (rc == 0 && p.matmul != LOOM_MATMUL_F32 && p.matmul != LOOM_MATMUL_BF16)
        rc = lm_fail(&e, LOOM_ERR_INVALID_ARG, "mmproj: matmul precision %d is neither LOOM_MATMUL_F32 (0) "
                     "nor LOOM_MATMUL_BF16 (1)", p.matmul);
    if (rc == 0) rc = path ? lm_gguf_open(path, &mp->gguf, &e) : lm_fail(&e, LOOM_ERR_INVALID_ARG, "mmproj: no path");
    int want_v = 0, want_a = 0;
    if (rc == 0) {
        want_v = has_part(mp->gguf, "clip.has_vision_encoder", "v.patch_embd.weight");
        want_a = has_part(mp->gguf, "clip.has_audio_encoder", "a.conv1d.1.weight");
        if (!want_v && !want_a)
            rc = lm_fail(&e, LOOM_ERR_NOT_FOUND, "%s: no media encoder in this file (neither "
                         "clip.has_vision_encoder nor clip.has_audio_encoder)", path);
    }
    mp->max_images = p.max_images;
    if (rc == 0) {
        mp->pool = lm_pool_create(p.n_threads);
        lm_pool_set_matmul_bf16(mp->pool, p.matmul == LOOM_MATMUL_BF16);
        if (!mp->pool) rc = lm_fail(&e, LOOM_ERR_NO_MEMORY, "mmproj: out of memory");
    }
    if (rc == 0 && want_v) {
        rc = lm_vit_load(mp->gguf, &mp->vit, &e);
        const lm_vit_hparams *hp = rc == 0 ? lm_vit_hparams_of(mp->vit) : NULL;
        if (hp) {
            /* input pixels + the encoder's widest activations, for max_images at once */
            const double bytes = (double)p.max_images * sizeof(float) *
                                 (3.0 * hp->image_size * (double)hp->image_size +
                                  8.0 * hp->n_patches * (double)(hp->n_ff > 3 * hp->n_embd ? hp->n_ff : 3 * hp->n_embd));
            if (bytes > LM_MMPROJ_MAX_BYTES)
                rc = lm_fail(&e, LOOM_ERR_LIMIT, "%s: %d images of %dx%d pixels would need %.0f MiB of buffers "
                             "(limit %d MiB; lower max_images)", path, p.max_images, hp->image_size, hp->image_size,
                             bytes / 1048576.0, LM_MMPROJ_MAX_BYTES >> 20);
        }
        if (rc == 0) rc = lm_vit_ctx_create(mp->vit, p.max_images, &mp->vit_ctx, &e);
        if (rc == 0) {
            mp->pre = lm_vit_preprocess_params(mp->vit);
            mp->n_embd = hp->n_embd_out;
            mp->chw = malloc((size_t)p.max_images * 3 * (size_t)hp->image_size * (size_t)hp->image_size * sizeof(float));
            if (!mp->chw) rc = lm_fail(&e, LOOM_ERR_NO_MEMORY, "mmproj: out of memory for %d images", p.max_images);
        }
    }
    if (rc == 0 && want_a) {
        rc = lm_audio_encoder_load(mp->gguf, &mp->aud, &e);
        if (rc == 0) {
            const lm_audio_hparams *ah = lm_audio_encoder_hparams(mp->aud);
            if (mp->vit && ah->d_proj != mp->n_embd)
                rc = lm_fail(&e, LOOM_ERR_FORMAT, "%s: audio projection_dim %d differs from the vision one %d",
                             path, ah->d_proj, mp->n_embd);
            mp->n_embd = ah->d_proj;
        }
        if (rc == 0) rc = load_ctc(mp, path, &e);
        if (rc == 0) rc = lm_mel_create(lm_audio_encoder_hparams(mp->aud)->n_mel, lm_pool_size(mp->pool), &mp->mel, &e);
    }
    if (rc < 0) {
        if (err && err_size) snprintf(err, err_size, "%s", e.msg);
        loom_mmproj_free(&mp);
        return rc;
    }
    *out = mp;
    return 0;
}

void loom_mmproj_free(loom_mmproj **pmp)
{
    if (!pmp || !*pmp) return;
    loom_mmproj *mp = *pmp;
    lm_vit_ctx_free(&mp->vit_ctx);
    lm_vit_free(&mp->vit);
    lm_audio_encoder_free(&mp->aud);
    lm_mel_free(&mp->mel);
    lm_pool_free(&mp->pool);
    lm_gguf_close(&mp->gguf);
    free(mp->chw);
    free(mp->melbuf);
    free(mp->ctc_bias);
    free(mp);
    *pmp = NULL;
}

const char *loom_mmproj_error(const loom_mmproj *mp) { return mp ? mp->err.msg : "no mmproj"; }
int loom_mmproj_has_vision(const loom_mmproj *mp) { return mp && mp->vit; }
int loom_mmproj_has_audio(const loom_mmproj *mp) { return mp && mp->aud; }
int loom_mmproj_n_embd(const loom_mmproj *mp) { return mp ? mp->n_embd : 0; }
int loom_mmproj_image_rows(const loom_mmproj *mp) { return mp && mp->vit ? lm_vit_n_tokens(mp->vit) : 0; }

int64_t loom_mmproj_audio_max_samples(const loom_mmproj *mp)
{
    return mp && mp->aud ? lm_audio_encoder_max_frames(mp->aud) * LM_MEL_HOP : 0;
}

int64_t loom_mmproj_audio_rows(const loom_mmproj *mp, int64_t n_samples)
{
    if (!mp || !mp->aud) return LOOM_ERR_UNSUPPORTED;
    const int64_t T = lm_mel_n_frames(n_samples);
    if (T < 1) return LOOM_ERR_INVALID_ARG;
    if (T > lm_audio_encoder_max_frames(mp->aud)) return LOOM_ERR_LIMIT;
    return lm_audio_encoder_n_tokens(mp->aud, T);
}

int lm_mmproj_encode_images(loom_mmproj *mp, const loom_image *const *imgs, int n, float *out)
{
    lm_error_clear(&mp->err);
    if (!mp->vit) return lm_fail(&mp->err, LOOM_ERR_UNSUPPORTED, "mmproj: this file has no vision encoder");
    if (n < 1 || n > mp->max_images)
        return lm_fail(&mp->err, LOOM_ERR_LIMIT, "mmproj: %d images in one call (max_images %d)", n, mp->max_images);
    const int S = mp->pre.size;
    for (int i = 0; i < n; i++) {
        if (!imgs[i] || !imgs[i]->rgb || imgs[i]->width < 1 || imgs[i]->height < 1)
            return lm_fail(&mp->err, LOOM_ERR_INVALID_ARG, "mmproj: image %d is empty", i);
        int rc = lm_image_preprocess(imgs[i], &mp->pre, mp->chw + (size_t)i * 3 * S * S, &mp->err);
        if (rc < 0) return rc;
    }
    return lm_vit_encode(mp->vit_ctx, mp->chw, n, out, mp->pool, &mp->err);
}

int loom_mmproj_encode_image(loom_mmproj *mp, const loom_image *img, float *out)
{
    if (!mp || !out) return LOOM_ERR_INVALID_ARG;
    return lm_mmproj_encode_images(mp, &img, 1, out);
}

int loom_mmproj_encode_audio(loom_mmproj *mp, const float *pcm, int64_t n_samples, float *out)
{
    if (!mp || !out || (!pcm && n_samples)) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&mp->err);
    if (!mp->aud) return lm_fail(&mp->err, LOOM_ERR_UNSUPPORTED, "mmproj: this file has no audio encoder");
    const int64_t T = lm_mel_n_frames(n_samples), max_T = lm_audio_encoder_max_frames(mp->aud);
    if (T < 1)
        return lm_fail(&mp->err, LOOM_ERR_INVALID_ARG, "audio: %lld samples is shorter than one mel frame "
                       "(%d samples)", (long long)n_samples, LM_MEL_HOP);
    if (T > max_T)
        return lm_fail(&mp->err, LOOM_ERR_LIMIT, "audio: %.2f s is longer than the encoder takes in one piece "
                       "(%.2f s)", (double)n_samples / 16000.0, (double)(max_T * LM_MEL_HOP) / 16000.0);
    const int n_mel = lm_mel_n_mels(mp->mel);
    if (T > mp->mel_cap) {
        float *b = realloc(mp->melbuf, (size_t)n_mel * (size_t)T * sizeof(float));
        if (!b) return lm_fail(&mp->err, LOOM_ERR_NO_MEMORY, "audio: out of memory for %lld mel frames", (long long)T);
        mp->melbuf = b;
        mp->mel_cap = T;
    }
    int rc = lm_mel_compute(mp->mel, pcm, n_samples, mp->melbuf, mp->pool, &mp->err);
    if (rc == 0) rc = lm_audio_encoder_encode(mp->aud, mp->melbuf, T, out, mp->pool, &mp->err);
    return rc;
}

int32_t loom_mmproj_ctc_classes(const loom_mmproj *mp) { return mp && mp->aud ? mp->ctc_classes : 0; }

int loom_mmproj_audio_ctc(loom_mmproj *mp, const float *rows, int64_t n_rows, float *out)
{
    if (!mp || !rows || !out || n_rows < 1) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&mp->err);
    if (!loom_mmproj_ctc_classes(mp)) return lm_fail(&mp->err, LOOM_ERR_UNSUPPORTED, "mmproj: this file has no CTC head");
    const int64_t C = mp->ctc_classes;
    lm_matmul(&mp->ctc, rows, n_rows, out, mp->pool);
    for (int64_t r = 0; r < n_rows; r++) {   /* log-softmax, summed in double */
        float *y = out + r * C, mx = -INFINITY;
        for (int64_t c = 0; c < C; c++) {
            y[c] += mp->ctc_bias[c];
            if (y[c] > mx) mx = y[c];
        }
        double s = 0.0;
        for (int64_t c = 0; c < C; c++) s += exp((double)y[c] - (double)mx);
        const double lse = (double)mx + log(s);
        for (int64_t c = 0; c < C; c++) y[c] = (float)((double)y[c] - lse);
    }
    return 0;
}
