/* loom_prompt: token ids and media embedding rows in order, and how a session reads them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "include/loom.h"
#include "lib/core/error.h"
#include "lib/core/gguf.h"
#include "lib/core/tokenizer.h"
#include "lib/mmproj.h"
#include "lib/model.h"
#include "lib/prompt.h"



#define LM_PROMPT_MAX (1 << 24)   /* positions; far past any context a model has */

int loom_prompt_create(const loom_model *m, loom_prompt **out)
{
    if (!out) return LOOM_ERR_INVALID_ARG;
    *out = NULL;
    if (!m) return LOOM_ERR_INVALID_ARG;
    loom_prompt *p = calloc(1, sizeof *p);
    if (!p) return LOOM_ERR_NO_MEMORY;
    p->m = m;
    *out = p;
    return 0;
}

void loom_prompt_free(loom_prompt **pp)
{
    if (!pp || !*pp) return;
    free((*pp)->ids);
    free((*pp)->rows);
    free((*pp)->scratch);
    free(*pp);
    *pp = NULL;
}

void loom_prompt_clear(loom_prompt *p)
{
    if (p) p->n = p->n_rows = 0;
}

int64_t loom_prompt_n(const loom_prompt *p) { return p ? p->n : 0; }
const char *loom_prompt_error(const loom_prompt *p) { return p ? p->err.msg : "no prompt"; }

/* Room for `more` positions, `more_rows` of them embedding rows. */
static int reserve(loom_prompt *p, int64_t more, int64_t more_rows)
{
    const int64_t E = p->m->dec->hp.n_embd;
    if (more < 0 || p->n + more > LM_PROMPT_MAX)
        return lm_fail(&p->err, LOOM_ERR_LIMIT, "prompt: more than %d positions", LM_PROMPT_MAX);
    if (p->n + more > p->cap) {
        int64_t cap = p->cap ? p->cap : 256;
        while (cap < p->n + more) cap *= 2;
        int32_t *ids = realloc(p->ids, (size_t)cap * sizeof *ids);
        if (!ids) return lm_fail(&p->err, LOOM_ERR_NO_MEMORY, "prompt: out of memory");
        p->ids = ids;
        p->cap = cap;
    }
    if (p->n_rows + more_rows > p->rows_cap) {
        int64_t cap = p->rows_cap ? p->rows_cap : 64;
        while (cap < p->n_rows + more_rows) cap *= 2;
        float *rows = realloc(p->rows, (size_t)cap * (size_t)E * sizeof *rows);
        if (!rows) return lm_fail(&p->err, LOOM_ERR_NO_MEMORY, "prompt: out of memory for %lld rows", (long long)cap);
        p->rows = rows;
        p->rows_cap = cap;
    }
    return 0;
}

/* Scratch for n rows of media encoder output. */
static float *scratch(loom_prompt *p, int64_t n_rows)
{
    const int64_t E = p->m->dec->hp.n_embd;
    if (n_rows > p->scratch_cap) {
        float *s = realloc(p->scratch, (size_t)n_rows * (size_t)E * sizeof *s);
        if (!s) {
            lm_fail(&p->err, LOOM_ERR_NO_MEMORY, "prompt: out of memory for %lld rows", (long long)n_rows);
            return NULL;
        }
        p->scratch = s;
        p->scratch_cap = n_rows;
    }
    return p->scratch;
}

int loom_prompt_add_token(loom_prompt *p, int32_t token)
{
    if (!p) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&p->err);
    if (token < 0 || token >= p->m->dec->hp.n_vocab)
        return lm_fail(&p->err, LOOM_ERR_INVALID_ARG, "prompt: token id %d outside the vocabulary (0..%d)", token,
                       p->m->dec->hp.n_vocab - 1);
    int rc = reserve(p, 1, 0);
    if (rc == 0) p->ids[p->n++] = token;
    return rc;
}

int loom_prompt_add_special(loom_prompt *p, const char *name)
{
    if (!p || !name) return LOOM_ERR_INVALID_ARG;
    const int32_t t = loom_token_find(p->m, name);
    if (t < 0) return lm_fail(&p->err, LOOM_ERR_NOT_FOUND, "prompt: the vocabulary has no token '%s'", name);
    return loom_prompt_add_token(p, t);
}

int loom_prompt_add_text(loom_prompt *p, const char *text)
{
    if (!p || !text) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&p->err);
    const size_t len = strlen(text);
    int64_t n = loom_tokenize(p->m, text, len, 0, 0, NULL, 0);
    if (n < 0) return lm_fail(&p->err, (int)n, "prompt: cannot tokenize text (%s)", loom_status_str((int)n));
    if (n == 0) return 0;   /* "" (or text that makes no token): nothing to add */
    int rc = reserve(p, n, 0);
    if (rc < 0) return rc;
    n = loom_tokenize(p->m, text, len, 0, 0, p->ids + p->n, p->cap - p->n);
    if (n < 0) return lm_fail(&p->err, (int)n, "prompt: cannot tokenize text (%s)", loom_status_str((int)n));
    p->n += n;
    return 0;
}

int loom_prompt_add_rows(loom_prompt *p, const float *rows, int64_t n_rows)
{
    if (!p || (!rows && n_rows) || n_rows < 0) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&p->err);
    if (n_rows == 0) return 0;   /* also keeps NULL + 0 out of memcpy on an empty prompt */
    const int64_t E = p->m->dec->hp.n_embd;
    int rc = reserve(p, n_rows, n_rows);
    if (rc < 0) return rc;
    memcpy(p->rows + p->n_rows * E, rows, (size_t)(n_rows * E) * sizeof(float));
    for (int64_t i = 0; i < n_rows; i++) p->ids[p->n++] = -1;
    p->n_rows += n_rows;
    return 0;
}

static int check_width(loom_prompt *p, const loom_mmproj *mp)
{
    if (!mp) return lm_fail(&p->err, LOOM_ERR_INVALID_ARG, "prompt: no media encoder");
    if (mp->n_embd != p->m->dec->hp.n_embd)
        return lm_fail(&p->err, LOOM_ERR_FORMAT, "prompt: the media encoder's rows are %d wide but the decoder's "
                       "embeddings %d (mismatched model files?)", mp->n_embd, p->m->dec->hp.n_embd);
    return 0;
}

/* A media block: open token, the rows, close token. */
static int add_block(loom_prompt *p, const char *open, const float *rows, int64_t n, const char *close)
{
    int rc = loom_prompt_add_special(p, open);
    if (rc == 0) rc = loom_prompt_add_rows(p, rows, n);
    if (rc == 0) rc = loom_prompt_add_special(p, close);
    return rc;
}

/* A media add that failed half-way (open token in, rows refused) is undone: n0/r0 were the
 * prompt's positions and rows before it. */
static int undo_on_error(loom_prompt *p, int64_t n0, int64_t r0, int rc)
{
    if (rc < 0) p->n = n0, p->n_rows = r0;
    return rc;
}

static int copy_mp_err(loom_prompt *p, const loom_mmproj *mp, int rc)
{
    return lm_fail(&p->err, rc, "%s", mp->err.msg);
}

int loom_prompt_add_image(loom_prompt *p, loom_mmproj *mp, const loom_image *img)
{
    if (!p) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&p->err);
    int rc = check_width(p, mp);
    if (rc < 0) return rc;
    const int64_t n = loom_mmproj_image_rows(mp);
    if (n < 1) return lm_fail(&p->err, LOOM_ERR_UNSUPPORTED, "prompt: the media file has no vision encoder");
    float *rows = scratch(p, n);
    if (!rows) return p->err.status;
    if ((rc = loom_mmproj_encode_image(mp, img, rows)) < 0) return copy_mp_err(p, mp, rc);
    const int64_t n0 = p->n, r0 = p->n_rows;
    return undo_on_error(p, n0, r0, add_block(p, "<|image|>", rows, n, "<|/image|>"));
}

int loom_prompt_add_audio(loom_prompt *p, loom_mmproj *mp, const float *pcm, int64_t n_samples)
{
    if (!p) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&p->err);
    int rc = check_width(p, mp);
    if (rc < 0) return rc;
    if (!loom_mmproj_has_audio(mp))
        return lm_fail(&p->err, LOOM_ERR_UNSUPPORTED, "prompt: the media file has no audio encoder");
    const int64_t n = loom_mmproj_audio_rows(mp, n_samples);
    if (n == LOOM_ERR_LIMIT)
        return lm_fail(&p->err, LOOM_ERR_LIMIT, "prompt: %.2f s of audio is longer than the encoder takes "
                       "(%.2f s)", (double)n_samples / 16000.0, (double)loom_mmproj_audio_max_samples(mp) / 16000.0);
    if (n < 1) return lm_fail(&p->err, LOOM_ERR_INVALID_ARG, "prompt: %lld samples of audio is too short", (long long)n_samples);
    float *rows = scratch(p, n);
    if (!rows) return p->err.status;
    if ((rc = loom_mmproj_encode_audio(mp, pcm, n_samples, rows)) < 0) return copy_mp_err(p, mp, rc);
    const int64_t n0 = p->n, r0 = p->n_rows;
    return undo_on_error(p, n0, r0, add_block(p, "<|audio|>", rows, n, "<|/audio|>"));
}

int loom_model_video_frames(const loom_model *m)
{
    return !m ? 0 : m->vocab.video_n_frames > 0 ? m->vocab.video_n_frames : 8;
}

static int add_video(loom_prompt *p, loom_mmproj *mp, const loom_video *v)
{
    int rc = check_width(p, mp);
    if (rc < 0) return rc;
    const int64_t R = loom_mmproj_image_rows(mp), E = p->m->dec->hp.n_embd;
    if (R < 1) return lm_fail(&p->err, LOOM_ERR_UNSUPPORTED, "prompt: the media file has no vision encoder");
    const int n_frames = loom_video_n_frames(v);
    const int merge = p->m->vocab.video_temporal_merge > 0 ? p->m->vocab.video_temporal_merge : 1;
    if (n_frames < 1) return lm_fail(&p->err, LOOM_ERR_INVALID_ARG, "prompt: the video has no frames");
    float *rows = scratch(p, R * (merge + 1));   /* [merge] frames' rows + their mean */
    if (!rows) return p->err.status;
    float *mean = rows + R * merge * E;
    if ((rc = loom_prompt_add_special(p, "<|video|>")) < 0) return rc;
    for (int f0 = 0; f0 < n_frames; f0 += merge) {
        const int k = n_frames - f0 < merge ? n_frames - f0 : merge;
        loom_image img[64];
        const loom_image *ptr[64];
        if (k > 64 || k > mp->max_images)
            return lm_fail(&p->err, LOOM_ERR_LIMIT, "prompt: temporal merge of %d frames exceeds max_images %d", k,
                           mp->max_images);
        for (int i = 0; i < k; i++) {
            img[i] = (loom_image){.width = loom_video_width(v), .height = loom_video_height(v),
                                  .rgb = (uint8_t *)loom_video_frame(v, f0 + i)};
            ptr[i] = &img[i];
        }
        if ((rc = lm_mmproj_encode_images(mp, ptr, k, rows)) < 0) return copy_mp_err(p, mp, rc);
        for (int64_t j = 0; j < R * E; j++) {
            float s = 0.0f;
            for (int i = 0; i < k; i++) s += rows[(int64_t)i * R * E + j];
            mean[j] = s / (float)k;
        }
        if ((rc = loom_prompt_add_special(p, "<|frame|>")) < 0) return rc;
        if ((rc = loom_prompt_add_rows(p, mean, R)) < 0) return rc;
    }
    return loom_prompt_add_special(p, "<|/video|>");
}

int loom_prompt_add_video(loom_prompt *p, loom_mmproj *mp, const loom_video *v)
{
    if (!p || !v) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&p->err);
    const int64_t n0 = p->n, r0 = p->n_rows;
    return undo_on_error(p, n0, r0, add_video(p, mp, v));
}

int32_t loom_token_eot(const loom_model *m)
{
    if (!m) return -1;
    uint32_t v = 0;
    lm_error ignore = {0};
    if (lm_gguf_find_kv(m->gguf, "tokenizer.ggml.eot_token_id") < 0 ||
        lm_gguf_get_u32(m->gguf, "tokenizer.ggml.eot_token_id", &v, &ignore) < 0)
        return -1;
    return v < (uint32_t)m->dec->hp.n_vocab ? (int32_t)v : -1;
}
