/* "Nothing is allocated per step": count malloc/calloc/realloc calls (glibc's __libc_*
 * behind thin wrappers) between the first and the last sampled code of a guided block, from
 * loom_generate_media and inside loom_session_generate.
 * Skipped under AddressSanitizer, which owns malloc. */
#include <stddef.h>

#include "include/loom.h"
#include "tests/decoder_test_util.h"

#if defined(__SANITIZE_ADDRESS__)
int main(void) { printf("skipped under AddressSanitizer\n"); return finish(); }
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void  __libc_free(void *);
static volatile long n_alloc;
void *malloc(size_t n) { n_alloc++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { n_alloc++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { n_alloc++; return __libc_realloc(p, n); }
void  free(void *p) { __libc_free(p); }

typedef struct window { long at_first, at_last; int64_t steps; } window;
static void on_progress(int64_t done, int64_t total, void *user)
{
    window *w = user;
    if (done == 1) w->at_first = n_alloc;
    w->at_last = n_alloc;   /* as of the latest code */
    (void)total;
    w->steps = done;
}

int main(void)
{
    char path[256], err[512];
    tmp_model_path(path, sizeof path, "genalloc");
    lm_synth_params sp = lm_synth_tiny_params();
    sp.vocab_from = "../models/loom-tiny-vocab.gguf";
    sp.image_count = 64; sp.audio_count = 64; sp.image_grid = 6; sp.video_gen_frames = 2;
    lm_error e = {0};
    CHECK(lm_synth_write(&sp, path, &e) == 0, "write: %s", e.msg);
    loom_model *m = NULL;
    CHECK(loom_model_load(path, loom_model_default_params(), &m, err, sizeof err) == 0, "load: %s", err);
    if (!m) return finish();
    loom_session_params ps = loom_session_default_params();
    ps.n_ctx = 256;
    ps.n_threads = 2;
    loom_session *s = NULL, *u = NULL;
    loom_session_create(m, ps, &s, err, sizeof err);
    loom_session_create(m, ps, &u, err, sizeof err);
    int32_t cond[64], unc[8], codes[2 * 36];
    const int64_t nc = loom_media_prompt(m, LOOM_MEDIA_VIDEO, "a red circle", 0, cond, 64);
    const int64_t nu = loom_media_prompt(m, LOOM_MEDIA_VIDEO, "", 1, unc, 8);
    for (int kind = 0; kind < 3; kind++) {
        window w = {0};
        loom_media_params p = loom_media_default_params(kind);
        p.top_k = 8;
        p.max_audio_codes = 40;
        p.on_progress = on_progress;
        p.user_data = &w;
        int64_t n = loom_generate_media(m, s, cond, nc, u, unc, nu, p, codes, 72, err, sizeof err);
        CHECK(n > 2 && w.steps == n, "kind %d: %lld codes (%s)", kind, (long long)n, err);
        CHECK(w.at_last == w.at_first, "kind %d: %ld allocations during %lld steps", kind, w.at_last - w.at_first,
                  (long long)n - 1);
    }
    /* the same inside text generation: a guided image block the model opens (bias) */
    window w = {0};
    loom_generate_params gp = loom_generate_default_params();
    gp.n_predict = 1;
    gp.media[LOOM_MEDIA_IMAGE].top_k = 8;
    gp.media[LOOM_MEDIA_IMAGE].on_progress = on_progress;
    gp.media[LOOM_MEDIA_IMAGE].user_data = &w;
    gp.media_uncond = u;
    loom_session_truncate(s, 0);
    loom_session_logit_bias(s, loom_token_find(m, "<|image|>"), 1000.0f);
    const int64_t n = loom_session_generate(s, cond, nc, gp, NULL);
    CHECK(n == 36 + 2 && w.steps == 36, "text generation: %lld tokens, %lld codes (%s)", (long long)n, (long long)w.steps,
          loom_session_error(s));
    CHECK(w.at_last == w.at_first, "text generation: %ld allocations during the block", w.at_last - w.at_first);
    loom_session_free(&s);
    loom_session_free(&u);
    loom_model_free(&m);
    unlink(path);
    return finish();
}
#endif
