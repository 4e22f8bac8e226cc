/* Public audio API (include/loom.h, "Audio"): thin wrappers over audio/audio.h. */
#include <stdio.h>
#include <stdlib.h>

#include "audio/audio.h"
#include "include/loom.h"

struct loom_audio_reader {
    lm_audio_reader *r;
    lm_error         err;
};

static int copy_err(const lm_error *e, int rc, char *buf, size_t size)
{
    if (buf && size) snprintf(buf, size, "%s", rc < 0 ? e->msg : "");
    return rc;
}

static lm_audio_params to_internal(const loom_audio_params *p)
{
    lm_audio_params q = lm_audio_default_params();
    if (p) {
        q.sample_rate = p->sample_rate;
        q.max_seconds = p->max_seconds;
        q.max_channels = p->max_channels;
    }
    return q;
}

loom_audio_params loom_audio_default_params(void)
{
    lm_audio_params q = lm_audio_default_params();
    loom_audio_params p = {q.sample_rate, q.max_seconds, q.max_channels};
    return p;
}

int loom_audio_load(const char *path, const loom_audio_params *params, float **pcm,
                    size_t *n_samples, char *err, size_t err_size)
{
    lm_error e = {0};
    lm_audio_params q = to_internal(params);
    int64_t n = 0;
    if (n_samples) *n_samples = 0;
    int rc = lm_audio_read_all(path, &q, 0, pcm, &n, &e);
    if (rc == 0 && n_samples) *n_samples = (size_t)n;
    return copy_err(&e, rc, err, err_size);
}

void loom_audio_pcm_free(float **pcm)
{
    if (!pcm) return;
    free(*pcm);
    *pcm = NULL;
}

int loom_audio_reader_open(const char *path, const loom_audio_params *params,
                           loom_audio_reader **out, char *err, size_t err_size)
{
    lm_error e = {0};
    if (!out) return copy_err(&e, lm_fail(&e, LOOM_ERR_INVALID_ARG, "audio: out is NULL"), err, err_size);
    *out = NULL;
    loom_audio_reader *r = calloc(1, sizeof *r);
    if (!r) return copy_err(&e, lm_fail(&e, LOOM_ERR_NO_MEMORY, "audio: out of memory"), err, err_size);
    lm_audio_params q = to_internal(params);
    int rc = lm_audio_reader_open(path, &q, &r->r, &e);
    if (rc < 0) {
        free(r);
        return copy_err(&e, rc, err, err_size);
    }
    *out = r;
    return copy_err(&e, 0, err, err_size);
}

int loom_audio_reader_read(loom_audio_reader *r, float *buf, size_t n, size_t *got)
{
    if (got) *got = 0;
    if (!r) return LOOM_ERR_INVALID_ARG;
    int64_t k = 0;
    int rc = lm_audio_reader_read(r->r, buf, n > INT64_MAX ? INT64_MAX : (int64_t)n, &k, &r->err);
    if (rc == 0 && got) *got = (size_t)k;
    return rc;
}

const char *loom_audio_reader_error(const loom_audio_reader *r) { return r ? r->err.msg : ""; }

int loom_audio_reader_input(const loom_audio_reader *r, int *rate, int *channels, const char **codec)
{
    if (!r) return LOOM_ERR_INVALID_ARG;
    const lm_audio_info *i = lm_audio_reader_info(r->r);
    if (rate) *rate = i->in_rate;
    if (channels) *channels = i->in_channels;
    if (codec) *codec = i->codec;
    return 0;
}

void loom_audio_reader_close(loom_audio_reader **pr)
{
    if (!pr || !*pr) return;
    lm_audio_reader_close(&(*pr)->r);
    free(*pr);
    *pr = NULL;
}

int loom_audio_save_wav(const char *path, const float *pcm, size_t n_frames, int channels,
                        int sample_rate, loom_wav_format format, char *err, size_t err_size)
{
    lm_error e = {0};
    if (n_frames > (size_t)INT64_MAX)
        return copy_err(&e, lm_fail(&e, LOOM_ERR_LIMIT, "wav '%s': %zu frames, more than the limit of %lld",
                                                 path ? path : "", n_frames, (long long)INT64_MAX), err, err_size);
    int rc = lm_wav_write(path, pcm, (int64_t)n_frames, channels, sample_rate, (lm_wav_format)format, &e);
    return copy_err(&e, rc, err, err_size);
}

int loom_audio_split(const float *pcm, size_t n, int sample_rate, int64_t max_len,
                     loom_audio_span **spans, size_t *n_spans, char *err, size_t err_size)
{
    lm_error e = {0};
    lm_audio_span *v = NULL;
    int64_t k = 0;
    if (!spans || !n_spans)
        return copy_err(&e, lm_fail(&e, LOOM_ERR_INVALID_ARG, "audio split: no place for the pieces"), err, err_size);
    int rc = lm_audio_split(pcm, n > (size_t)INT64_MAX ? INT64_MAX : (int64_t)n, sample_rate, max_len, &v, &k, &e);
    *spans = v;
    *n_spans = (size_t)k;
    return copy_err(&e, rc, err, err_size);
}

void loom_audio_spans_free(loom_audio_span **spans)
{
    if (!spans) return;
    free(*spans);
    *spans = NULL;
}

int loom_speech_pieces(const char *text, size_t max_chars, char ***pieces, size_t *n_pieces, char *err,
                       size_t err_size)
{
    lm_error e = {0};
    int64_t k = 0;
    if (!pieces || !n_pieces)
        return copy_err(&e, lm_fail(&e, LOOM_ERR_INVALID_ARG, "speech text: no place for the pieces"), err, err_size);
    const int rc = lm_speech_pieces(text, max_chars, pieces, &k, &e);
    *n_pieces = (size_t)k;
    return copy_err(&e, rc, err, err_size);
}

void loom_speech_pieces_free(char ***pieces, size_t n_pieces)
{
    lm_speech_pieces_free(pieces, (int64_t)n_pieces);
}

float loom_audio_normalize(float *pcm, size_t n, float peak)
{
    return pcm ? lm_audio_normalize(pcm, n > (size_t)INT64_MAX ? INT64_MAX : (int64_t)n, peak) : 1.0f;
}
