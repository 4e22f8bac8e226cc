/* Shared by the decoder tests: pass/fail counting and temporary model files. */
#ifndef LOOM_DECODER_TEST_UTIL_H
#define LOOM_DECODER_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/core/decoder_synth.h"
#include "lib/core/gguf.h"
#include "loom.h"
#include "tests/check.h"

/* log Σ exp(l[i]) over n logits, in double: the tests' own reference for a log-softmax. */
static inline double ref_log_sum_exp(const float *l, int n)
{
    float mx = l[0];
    for (int i = 1; i < n; i++) mx = l[i] > mx ? l[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)l[i] - mx);
    return mx + log(s);
}

/* A temporary path unique to this process and `tag` (caller unlinks). */
static const char *tmp_model_path(char *buf, size_t size, const char *tag)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(buf, size, "%s/loom-test-%d-%s.gguf", dir, (int)getpid(), tag);
    return buf;
}

/* Write the synthetic model p to a temporary path (into path[size]) and load it; NULL
 * (with a failed check, the file removed) if either step fails. The caller frees the model
 * and unlinks path. */
/* Write the key-only file *w holds to path (freeing *w) and open it: the status, *g on success. */
static inline int write_and_open(lm_gguf_writer **w, const char *path, lm_gguf **g)
{
    lm_error e = {0};
    int rc = lm_gguf_write(*w, path, &e);
    lm_gguf_writer_free(w);
    return rc < 0 ? rc : lm_gguf_open(path, g, &e);
}

static inline loom_model *synth_model(const char *tag, const lm_synth_params *p, char *path, size_t size)
{
    char err[512];
    lm_error e = {0};
    tmp_model_path(path, size, tag);
    loom_model *m = NULL;
    if (lm_synth_write(p, path, &e) < 0) {
        CHECK(0, "%s: write: %s", tag, e.msg);
    } else if (loom_model_load(path, loom_model_default_params(), &m, err, sizeof err) < 0) {
        CHECK(0, "%s: load: %s", tag, err);
        m = NULL;
    }
    if (!m) unlink(path);
    return m;
}

/* A session on m (NULL, with a failed check, if it cannot be created). */
static inline loom_session *test_session(const loom_model *m, int n_ctx, int n_batch, int n_threads)
{
    char err[512];
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = n_ctx;
    sp.n_batch = n_batch;
    sp.n_threads = n_threads;
    loom_session *s = NULL;
    CHECK(loom_session_create(m, sp, &s, err, sizeof err) == 0, "session: %s", err);
    return s;
}

#endif
