/*
 * Aborting a long prefill: the abort hooks are polled before every n_batch chunk and
 * between layers; an abort returns LOOM_ERR_ABORTED with the cache holding exactly the
 * chunks computed in full, and repeating the prompt resumes from there with the same
 * logits as an uninterrupted run. Covers loom_session_prompt, _append, _decode and
 * _generate, the callback and the flag.
 */
#include <math.h>

#include "loom.h"
#include "tests/decoder_test_util.h"

enum { N = 22, B = 4 };

typedef struct countdown {
    int polls;     /* polls seen so far            */
    int fire_at;   /* abort on this poll (0: never) */
} countdown;

static int tick(void *user)
{
    countdown *c = user;
    return ++c->polls == c->fire_at;
}

static float max_diff(const float *a, const float *b, int64_t n)
{
    float m = 0;
    for (int64_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

static void run(const char *tag, lm_synth_params p, int n_threads)
{
    char path[256];
    loom_model *m = synth_model(tag, &p, path, sizeof path);
    if (!m) return;
    const int V = loom_model_n_vocab(m), L = p.n_layer; /* polls per chunk: 1 + (L - 1) */
    const float tol = 1e-5f;
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 41 + 7) % (V - 3) + 3);
    float *ref = malloc((size_t)N * V * sizeof *ref), *got = malloc((size_t)N * V * sizeof *got);
    float *last = malloc((size_t)V * sizeof *last);

    /* the uninterrupted run */
    loom_session *r = test_session(m, 64, B, n_threads);
    CHECK(loom_session_prompt(r, tok, N, ref) == 0, "%s: reference prompt: %s", tag, loom_session_error(r));
    memcpy(last, ref + (size_t)(N - 1) * V, (size_t)V * sizeof *last);

    /* abort between layers 1 and 2 of the third chunk: two chunks stay */
    loom_session *s = test_session(m, 64, B, n_threads);
    countdown cd = {0, 2 * L + 2};
    loom_session_set_abort(s, tick, NULL, &cd);
    for (size_t i = 0; i < (size_t)N * V; i++) got[i] = NAN;
    CHECK(loom_session_prompt(s, tok, N, got) == LOOM_ERR_ABORTED, "%s: prompt not aborted", tag);
    CHECK(cd.polls == 2 * L + 2, "%s: %d polls, expected %d", tag, cd.polls, 2 * L + 2);
    CHECK(loom_session_n_past(s) == 2 * B, "%s: n_past %d after abort, expected %d", tag, loom_session_n_past(s), 2 * B);
    CHECK(loom_session_logits(s) == NULL, "%s: logits after an abort", tag);
    CHECK(strstr(loom_session_error(s), "aborted") != NULL, "%s: message '%s'", tag, loom_session_error(s));
    float d = max_diff(got, ref, (int64_t)2 * B * V);
    CHECK(d <= tol, "%s: logits of the computed chunks differ by %g", tag, d);
    CHECK(isnan(got[(size_t)2 * B * V]), "%s: logits written past the computed chunks", tag);
    CHECK(loom_session_sample(s) < 0, "%s: sampling after an abort", tag);

    /* the same prompt again resumes: only the 14 missing positions (4 chunks) run */
    cd = (countdown){0, 0};
    CHECK(loom_session_prompt(s, tok, N, NULL) == 0, "%s: resumed prompt: %s", tag, loom_session_error(s));
    CHECK(cd.polls == 4 * L, "%s: resumed prompt polled %d times, expected %d (prefix not reused?)", tag, cd.polls,
          4 * L);
    CHECK(loom_session_n_past(s) == N, "%s: n_past %d after resume", tag, loom_session_n_past(s));
    d = max_diff(loom_session_logits(s), last, V);
    CHECK(d <= tol, "%s: resumed logits differ by %g", tag, d);

    /* abort at the start of a chunk (the second of an append) */
    loom_session_truncate(s, 0);
    CHECK(loom_session_prompt(s, tok, 3, NULL) == 0, "%s: short prompt", tag);
    cd = (countdown){0, L + 1};
    CHECK(loom_session_append(s, tok + 3, N - 3, NULL) == LOOM_ERR_ABORTED, "%s: append not aborted", tag);
    CHECK(loom_session_n_past(s) == 3 + B, "%s: n_past %d after aborted append", tag, loom_session_n_past(s));
    cd = (countdown){0, 0};
    CHECK(loom_session_prompt(s, tok, N, NULL) == 0, "%s: prompt after aborted append", tag);
    d = max_diff(loom_session_logits(s), last, V);
    CHECK(d <= tol, "%s: logits after aborted append + resume differ by %g", tag, d);

    /* a raised flag stops a decode step before it changes anything */
    volatile int flag = 1;
    loom_session_set_abort(s, NULL, &flag, NULL);
    CHECK(loom_session_decode(s, tok[0]) == LOOM_ERR_ABORTED, "%s: decode with the flag up", tag);
    CHECK(loom_session_n_past(s) == N, "%s: aborted decode changed n_past", tag);
    /* ... and a fresh prompt: the session stays empty */
    loom_session_truncate(s, 0);
    CHECK(loom_session_prompt(s, tok, N, NULL) == LOOM_ERR_ABORTED && loom_session_n_past(s) == 0,
          "%s: prompt with the flag up", tag);
    flag = 0;
    CHECK(loom_session_prompt(s, tok, N, NULL) == 0, "%s: prompt after lowering the flag", tag);
    loom_session_set_abort(s, NULL, NULL, NULL);

    /* generate: its own hooks are polled inside the prompt's prefill */
    loom_session_truncate(s, 0);
    loom_generate_params gp = loom_generate_default_params();
    gp.n_predict = 4;
    gp.stop_at_eos = 0;
    gp.should_abort = tick;
    gp.user_data = &cd;
    cd = (countdown){0, 3 * L + 1};
    loom_generate_stats st;
    CHECK(loom_session_generate(s, tok, N, gp, &st) == LOOM_ERR_ABORTED, "%s: generate not aborted in prefill", tag);
    CHECK(st.n_generated == 0 && loom_session_n_past(s) == 3 * B, "%s: generate abort left n_past %d, %lld generated",
          tag, loom_session_n_past(s), (long long)st.n_generated);
    cd = (countdown){0, 0};
    CHECK(loom_session_generate(s, tok, N, gp, &st) == 4 && st.n_reused == 3 * B, "%s: generate resumed (reused %lld)",
          tag, (long long)st.n_reused);
    /* the generate hooks are gone once it returns */
    cd = (countdown){0, 1};
    CHECK(loom_session_decode(s, tok[0]) == 0, "%s: generate's hook outlived the call", tag);

    loom_session_free(&r);
    loom_session_free(&s);
    free(ref);
    free(got);
    free(last);
    loom_model_free(&m);
    unlink(path);
}

int main(void)
{
    lm_synth_params p = lm_synth_tiny_params();
    run("abort-f32", p, 1);
    p.type = LOOM_TYPE_Q8_0;
    run("abort-q8_0", p, 2);
    return finish();
}
