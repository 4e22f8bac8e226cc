/* Constrained media blocks and classifier-free guidance (loom_generate_media) on a
 * random-weight decoder carrying loom-tiny's vocabulary and media ranges. */
#include <math.h>

#include "include/loom.h"
#include "lib/core/sampler.h"
#include "tests/decoder_test_util.h"

enum { IMG = 64, AUD = 48, GRID = 4, FRAMES = 2 };
#define IMAGE_START 1642
#define AUDIO_START (1642 + IMG)

static loom_model *m;
static loom_session *s1, *s2;
static int32_t cond[128], unc[16];
static int64_t n_cond, n_unc;

static loom_session *new_session(int32_t n_ctx)
{
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = n_ctx;
    sp.n_threads = 1;
    char err[256];
    loom_session *s = NULL;
    CHECK(loom_session_create(m, sp, &s, err, sizeof err) == 0, "session: %s", err);
    return s;
}

static int64_t gen(loom_media_params p, loom_session *u, int32_t *codes, int64_t max, char *err)
{
    return loom_generate_media(m, s1, cond, n_cond, u, unc, n_unc, p, codes, max, err, 256);
}

static void test_prompt(void)
{
    CHECK(n_cond > 6 && cond[0] == loom_token_bos(m) && cond[1] == loom_token_find(m, "<|user|>") &&
          cond[n_cond - 2] == loom_token_find(m, "<|end|>") && cond[n_cond - 1] == loom_token_find(m, "<|assistant|>"),
          "conditional turn layout (%lld tokens)", (long long)n_cond);
    char text[256];
    loom_detokenize(m, cond + 2, n_cond - 4, 0, text, sizeof text);
    CHECK(!strcmp(text, "Draw: a red circle"), "user content '%s'", text);
    CHECK(n_unc == 4 && unc[1] == cond[1] && unc[2] == cond[n_cond - 2], "unconditional turn: %lld tokens", (long long)n_unc);
    CHECK(loom_media_prompt(m, LOOM_MEDIA_AUDIO, "hi", 0, NULL, 0) > 4, "size query");
    CHECK(loom_media_prompt(m, 9, "hi", 0, NULL, 0) == LOOM_ERR_INVALID_ARG, "bad kind");
}

static void test_image(void)
{
    char err[256];
    loom_media_params p = loom_media_default_params(LOOM_MEDIA_IMAGE);
    p.seed = 5;
    CHECK(loom_media_max_codes(m, p) == GRID * GRID, "max codes %lld", (long long)loom_media_max_codes(m, p));
    int32_t a[GRID * GRID], b[GRID * GRID];
    CHECK(gen(p, s2, a, GRID * GRID, err) == GRID * GRID, "image: %s", err);
    int in_range = 1;
    for (int i = 0; i < GRID * GRID; i++) in_range &= a[i] >= 0 && a[i] < IMG;
    CHECK(in_range, "codes in [0, %d)", IMG);
    CHECK(loom_session_n_past(s1) == n_cond + 1 + GRID * GRID + 1 && loom_session_n_past(s2) == n_unc + 1 + GRID * GRID + 1,
          "both sequences hold the block: %d %d", loom_session_n_past(s1), loom_session_n_past(s2));
    /* same seed, same codes (also when the sessions reuse their cached prompt) */
    CHECK(gen(p, s2, b, GRID * GRID, err) == GRID * GRID && !memcmp(a, b, sizeof a), "same seed → same codes");
    p.seed = 6;
    gen(p, s2, b, GRID * GRID, err);
    CHECK(memcmp(a, b, sizeof a) != 0, "another seed → other codes");
    /* top-k 1 is greedy */
    loom_media_params g = p;
    g.top_k = 1;
    gen(g, s2, a, GRID * GRID, err);
    g.temperature = 0; g.seed = 99;
    gen(g, s2, b, GRID * GRID, err);
    CHECK(!memcmp(a, b, sizeof a), "top-k 1 equals greedy");
}

static void test_cfg_off(void)
{
    char err[256];
    int32_t a[GRID * GRID], b[GRID * GRID], c[GRID * GRID];
    loom_media_params p = loom_media_default_params(LOOM_MEDIA_IMAGE);
    p.seed = 11;
    p.cfg_scale = 1;
    loom_session_truncate(s2, 0);
    CHECK(gen(p, s2, a, GRID * GRID, err) == GRID * GRID, "cfg 1: %s", err);
    CHECK(loom_session_n_past(s2) == 0, "scale 1 leaves the second session alone");
    CHECK(gen(p, NULL, b, GRID * GRID, err) == GRID * GRID && !memcmp(a, b, sizeof a), "cfg 1 == one session: %s", err);
    p.cfg_scale = 0;
    CHECK(gen(p, NULL, c, GRID * GRID, err) == GRID * GRID && !memcmp(a, c, sizeof a), "cfg 0 == one session");
    p.cfg_scale = 3;
    CHECK(gen(p, NULL, c, GRID * GRID, err) == LOOM_ERR_INVALID_ARG && strstr(err, "second session"), "cfg needs uncond: %s", err);
    CHECK(gen(p, s2, c, GRID * GRID, err) == GRID * GRID && memcmp(a, c, sizeof a), "cfg 3 changes the image");
}

/* The guided codes equal a sampler run by hand on l_u + s·(l_c − l_u) from two separate
 * sessions, step by step. */
static void test_cfg_reference(float temp, int top_k)
{
    char err[256];
    enum { STEPS = 3 };
    const float scale = 2.5f;
    int32_t codes[GRID * GRID];
    loom_media_params p = loom_media_default_params(LOOM_MEDIA_IMAGE);
    p.cfg_scale = scale; p.temperature = temp; p.top_k = top_k; p.seed = 1234;
    CHECK(gen(p, s2, codes, GRID * GRID, err) == GRID * GRID, "guided: %s", err);

    loom_session *c = new_session(256), *u = new_session(256);
    const int32_t open = loom_token_find(m, "<|image|>"), V = loom_model_n_vocab(m);
    CHECK(loom_session_prompt(c, cond, n_cond, NULL) == 0 && loom_session_decode(c, open) == 0, "cond");
    CHECK(loom_session_prompt(u, unc, n_unc, NULL) == 0 && loom_session_decode(u, open) == 0, "uncond");
    lm_sampler_params sp = lm_sampler_default_params();
    sp.temperature = temp; sp.top_k = top_k; sp.seed = 1234; sp.penalty_last_n = 0;
    lm_sampler *smp = lm_sampler_create(sp, V);
    lm_sampler_allow_only(smp, IMAGE_START, IMAGE_START + IMG);
    float *mix = calloc((size_t)V, sizeof *mix);
    float max_gap = 0;
    for (int step = 0; step < STEPS; step++) {
        const float *lc = loom_session_logits(c), *lu = loom_session_logits(u);
        int32_t best = IMAGE_START;
        for (int32_t i = IMAGE_START; i < IMAGE_START + IMG; i++) {
            mix[i] = lu[i] + scale * (lc[i] - lu[i]);
            if (mix[i] > mix[best]) best = i;
        }
        const int32_t want = lm_sampler_sample(smp, mix);
        if (temp <= 0) CHECK(want == best, "greedy reference is the argmax");
        CHECK(codes[step] == want - IMAGE_START, "step %d: code %d, reference %d (T %g, top-k %d)", step, codes[step],
              want - IMAGE_START, temp, top_k);
        /* guidance moves the choice away from the conditional alone at least somewhere */
        for (int32_t i = IMAGE_START; i < IMAGE_START + IMG; i++) max_gap = fmaxf(max_gap, fabsf(mix[i] - lc[i]));
        loom_session_decode(c, want);
        loom_session_decode(u, want);
    }
    CHECK(max_gap > 1e-3f, "guided logits differ from the conditional ones (%g)", max_gap);
    free(mix);
    lm_sampler_free(&smp);
    loom_session_free(&c);
    loom_session_free(&u);
}

typedef struct counter { int progress, stop_after; int64_t last_total; } counter;
static void on_progress(int64_t done, int64_t total, void *user)
{
    counter *k = user;
    k->progress++;
    k->last_total = total;
    (void)done;
}
static int should_abort(void *user) { counter *k = user; return k->progress >= k->stop_after; }

static void test_abort(void)
{
    char err[256];
    int32_t codes[GRID * GRID];
    counter k = {.stop_after = 5};
    loom_media_params p = loom_media_default_params(LOOM_MEDIA_IMAGE);
    p.on_progress = on_progress; p.should_abort = should_abort; p.user_data = &k;
    CHECK(gen(p, s2, codes, GRID * GRID, err) == LOOM_ERR_ABORTED && strstr(err, "aborted"), "abort: %s", err);
    CHECK(k.progress == 5 && k.last_total == GRID * GRID, "stopped after 5 codes (%d, total %lld)", k.progress,
          (long long)k.last_total);
    volatile int flag = 1;
    p = loom_media_default_params(LOOM_MEDIA_IMAGE);
    p.abort_flag = &flag;
    CHECK(gen(p, s2, codes, GRID * GRID, err) == LOOM_ERR_ABORTED, "abort flag");
    /* the sessions are still usable */
    p.abort_flag = NULL;
    CHECK(gen(p, s2, codes, GRID * GRID, err) == GRID * GRID, "after abort: %s", err);
}

static void test_audio_video(void)
{
    char err[256];
    int32_t codes[FRAMES * GRID * GRID + 8];
    loom_media_params p = loom_media_default_params(LOOM_MEDIA_AUDIO);
    p.max_audio_codes = 20;
    int64_t n = gen(p, s2, codes, 20, err);
    CHECK(n > 0 && n <= 20, "audio: %lld (%s)", (long long)n, err);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) ok &= codes[i] >= 0 && codes[i] < AUD;
    CHECK(ok, "audio codes in [0, %d)", AUD);
    CHECK(loom_session_n_past(s1) == n_cond + n + 2, "audio block appended and closed");

    p = loom_media_default_params(LOOM_MEDIA_VIDEO);
    CHECK(loom_media_max_codes(m, p) == FRAMES * GRID * GRID, "video max codes");
    n = gen(p, s2, codes, FRAMES * GRID * GRID, err);
    CHECK(n == FRAMES * GRID * GRID, "video: %lld (%s)", (long long)n, err);
    ok = 1;
    for (int64_t i = 0; i < n; i++) ok &= codes[i] >= 0 && codes[i] < IMG;
    CHECK(ok, "video codes in the image range");
    CHECK(loom_session_n_past(s1) == n_cond + 1 + FRAMES * (1 + GRID * GRID) + 1, "video: frames marked, block closed");
    p.n_frames = 3;
    CHECK(gen(p, s2, codes, sizeof codes / sizeof codes[0], err) == LOOM_ERR_LIMIT && strstr(err, "holds"), "small buffer: %s", err);
}

static void test_errors(void)
{
    char err[256];
    int32_t codes[GRID * GRID];
    loom_session *small = new_session(n_cond + GRID * GRID);
    loom_media_params p = loom_media_default_params(LOOM_MEDIA_IMAGE);
    p.cfg_scale = 1;
    CHECK(loom_generate_media(m, small, cond, n_cond, NULL, NULL, 0, p, codes, GRID * GRID, err, sizeof err) ==
          LOOM_ERR_CONTEXT_FULL && strstr(err, "context full"), "context: %s", err);
    CHECK(loom_session_n_past(small) == 0, "nothing computed before the context check");
    loom_session_free(&small);
    p.temperature = NAN;
    CHECK(gen(p, NULL, codes, GRID * GRID, err) == LOOM_ERR_INVALID_ARG, "NaN temperature: %s", err);
}

int main(void)
{
    char path[256], err[512];
    tmp_model_path(path, sizeof path, "genmedia");
    lm_synth_params sp = lm_synth_tiny_params();
    sp.vocab_from = "../models/loom-tiny-vocab.gguf";
    sp.image_count = IMG; sp.audio_count = AUD; sp.image_grid = GRID; sp.video_gen_frames = FRAMES;
    lm_error e = {0};
    CHECK(lm_synth_write(&sp, path, &e) == 0, "write: %s", e.msg);
    CHECK(loom_model_load(path, loom_model_default_params(), &m, err, sizeof err) == 0, "load: %s", err);
    if (!m) return finish();
    s1 = new_session(256);
    s2 = new_session(256);
    n_cond = loom_media_prompt(m, LOOM_MEDIA_IMAGE, "a red circle", 0, cond, 128);
    n_unc = loom_media_prompt(m, LOOM_MEDIA_IMAGE, "a red circle", 1, unc, 16);
    test_prompt();
    test_image();
    test_cfg_off();
    test_cfg_reference(0.0f, 0);
    test_cfg_reference(1.0f, 0);
    test_cfg_reference(0.8f, 5);
    test_abort();
    test_audio_video();
    test_errors();
    loom_session_free(&s1);
    loom_session_free(&s2);
    loom_model_free(&m);
    unlink(path);
    return finish();
}
