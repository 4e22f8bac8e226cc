/* Constrained media blocks and classifier-free guidance (loom_generate_media) on a
 * random-weight decoder carrying loom-tiny's vocabulary and media ranges. */
#include <math.h>

#include "include/loom.h"
#include "lib/core/sampler.h"
#include "lib/model.h"
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

/* The words of test_spoken_words: " a red circle" spelt, word k's tokens ending at ends[k]. */
typedef struct spelling { int32_t tok[32], ends[3]; int64_t n; } spelling;

/* One guided block of wm for p (p.words set): the block in s's history keeps every rule of
 * spelt speech, and equals the block written by hand from the same prompts and seed. Sets
 * *words_spelt and *chose_close (the model drew the close, rather than reaching the limit). */
static void check_spelt_block(loom_model *wm, loom_session *s, loom_session *su, const int32_t *c, int64_t nc,
                              const int32_t *u, int64_t nu, loom_media_params p, const spelling *w,
                              int64_t *words_spelt, int *chose_close)
{
    char err[256];
    int32_t codes[200];
    loom_session_truncate(s, 0);
    loom_session_truncate(su, 0);
    const int64_t n = loom_generate_media(wm, s, c, nc, su, u, nu, p, codes, 200, err, sizeof err);
    CHECK(n > 0, "words: %s", err);
    const int32_t open = loom_token_find(wm, "<|audio|>"), close = loom_token_find(wm, "<|/audio|>");
    const int32_t *hist = lm_session_history(s);
    const int64_t nh = loom_session_n_past(s);
    CHECK(nh > nc + 1 && hist[nc] == open && hist[nh - 1] == close, "the block follows the prompt and is closed");
    int64_t n_codes = 0, n_words = 0, at = 0;
    int whole = 1, in_order = 1;
    for (int64_t i = nc + 1; i < nh - 1; i++) {
        const int32_t t = hist[i];
        if (t >= AUDIO_START && t < AUDIO_START + AUD) {
            whole &= at == 0 || at == w->ends[n_words - 1];   /* no code inside a word */
            in_order &= n_codes < n && codes[n_codes] == t - AUDIO_START;
            n_codes++;
        } else {
            in_order &= at < w->n && t == w->tok[at];
            if (at == (n_words ? w->ends[n_words - 1] : 0)) n_words++;
            at++;
        }
    }
    CHECK(whole && in_order, "the words' tokens come whole and in order, the codes are the ones returned");
    CHECK(n_codes == n, "%lld codes", (long long)n);
    *chose_close = n < p.max_audio_codes;
    CHECK(at == w->n || !*chose_close, "the model closed only after the last word (%lld of %lld tokens)",
          (long long)at, (long long)w->n);
    *words_spelt = n_words;

    /* the same block by hand: codes and the next word's first token (at the end, the close) */
    loom_session_params sps = loom_session_default_params();
    sps.n_ctx = 512; sps.n_threads = 1;
    loom_session *a = NULL, *b = NULL;
    CHECK(loom_session_create(wm, sps, &a, err, sizeof err) == 0 && loom_session_create(wm, sps, &b, err, sizeof err) == 0 &&
          loom_session_prompt(a, c, nc, NULL) == 0 && loom_session_prompt(b, u, nu, NULL) == 0 &&
          loom_session_decode_pair(a, open, b, open) == 0, "reference sessions: %s", err);
    const int32_t V = loom_model_n_vocab(wm);
    loom_media_vocab mv;
    loom_model_media_vocab(wm, &mv);
    const int32_t text_end = mv.text_end;
    lm_sampler_params smp_p = lm_sampler_default_params();
    smp_p.temperature = p.temperature; smp_p.seed = p.seed; smp_p.penalty_last_n = 0;
    lm_sampler *smp = lm_sampler_create(smp_p, V);
    float *mix = calloc((size_t)V, sizeof *mix);
    int64_t i = nc + 1, k = 0, pos = 0, drawn = 0;
    for (; a && b && smp && mix && i < nh; i++) {
        int32_t t;
        if (drawn == p.max_audio_codes) {
            t = close;
        } else if (pos > 0) {
            t = w->tok[(k ? w->ends[k - 1] : 0) + pos];
        } else {
            const int32_t x = k < 3 ? w->tok[k ? w->ends[k - 1] : 0] : close;
            const float *lc = loom_session_logits(a), *lu = loom_session_logits(b);
            for (int32_t j = AUDIO_START; j < AUDIO_START + AUD; j++) mix[j] = lu[j] + p.cfg_scale * (lc[j] - lu[j]);
            if (k < 3) {   /* a word: the guided mass of every text id */
                double sum = 0;
                for (int32_t j = 0; j < text_end; j++) sum += exp((double)lu[j] + p.cfg_scale * ((double)lc[j] - lu[j]));
                mix[x] = (float)log(sum);
            } else {
                mix[x] = lu[x] + p.cfg_scale * (lc[x] - lu[x]);
            }
            lm_sampler_allow_only(smp, AUDIO_START, AUDIO_START + AUD);
            lm_sampler_allow_range(smp, x, x + 1);
            t = lm_sampler_sample(smp, mix);
        }
        if (t != hist[i] || t == close) break;
        if (t < AUDIO_START || t >= AUDIO_START + AUD) {
            if ((k ? w->ends[k - 1] : 0) + ++pos == w->ends[k]) { k++; pos = 0; }
        } else {
            drawn++;
        }
        loom_session_decode_pair(a, t, b, t);
    }
    CHECK(i == nh - 1, "seed %llu: the writer's block equals the one written by hand (to token %lld of %lld)",
          (unsigned long long)p.seed, (long long)(i - nc), (long long)(nh - nc));
    free(mix);
    lm_sampler_free(&smp);
    loom_session_free(&a);
    loom_session_free(&b);
}

/* A loom.audio.words model spells the words between its codes: the block holds each word's
 * " word" tokens in order, whole, with codes between them, and closes only after the last.
 * The next word is drawn with the mass of every text id (the model may not know which word
 * comes, only that one does).
 * At a temperature high enough for the random weights to draw words and the close. */
static void test_spoken_words(const char *path)
{
    char err[256];
    loom_model *wm = NULL;
    lm_synth_params sp = lm_synth_tiny_params();
    sp.vocab_from = "../models/loom-tiny-vocab.gguf";
    sp.image_count = IMG; sp.audio_count = AUD; sp.image_grid = GRID; sp.video_gen_frames = FRAMES;
    sp.audio_words = 1;
    lm_error e = {0};
    CHECK(lm_synth_write(&sp, path, &e) == 0, "write: %s", e.msg);
    CHECK(loom_model_load(path, loom_model_default_params(), &wm, err, sizeof err) == 0, "load: %s", err);
    if (!wm) return;
    loom_media_vocab v;
    CHECK(loom_model_media_vocab(wm, &v) == 0 && v.audio_words == 1, "loom.audio.words read");
    CHECK(loom_model_media_vocab(m, &v) == 0 && v.audio_words == 0, "absent: 0");

    spelling w = {.n = 0};
    const char *each[3] = {" a", " red", " circle"};
    for (int k = 0; k < 3; k++) {
        w.n += loom_tokenize(wm, each[k], strlen(each[k]), 0, 0, w.tok + w.n, 32 - w.n);
        w.ends[k] = (int32_t)w.n;
    }
    int32_t c[64], u[16];
    const int64_t nc = loom_media_prompt(wm, LOOM_MEDIA_AUDIO, "a red circle", 0, c, 64);
    const int64_t nu = loom_media_prompt(wm, LOOM_MEDIA_AUDIO, "a red circle", 1, u, 16);
    loom_media_params p = loom_media_default_params(LOOM_MEDIA_AUDIO);
    p.max_audio_codes = 200; p.temperature = 40.0f;
    p.words = " a red\t circle ";   /* any white space between words */
    CHECK(loom_media_block_len(wm, p) == 2 + 200 + w.n, "block length counts the words (%lld)",
          (long long)loom_media_block_len(wm, p));
    loom_session_params sps = loom_session_default_params();
    sps.n_ctx = 512; sps.n_threads = 1;
    loom_session *s = NULL, *su = NULL;
    CHECK(loom_session_create(wm, sps, &s, err, sizeof err) == 0 && loom_session_create(wm, sps, &su, err, sizeof err) == 0,
          "sessions: %s", err);
    int64_t most_words = 0;
    int closes = 0;
    for (uint64_t seed = 1; s && su && seed <= 6; seed++) {
        int64_t n_words = 0;
        int chose = 0;
        p.seed = seed;
        check_spelt_block(wm, s, su, c, nc, u, nu, p, &w, &n_words, &chose);
        most_words = n_words > most_words ? n_words : most_words;
        closes += chose;
    }
    CHECK(most_words == 3 && closes > 0, "some seed spelt every word (%lld) and drew the close (%d)",
          (long long)most_words, closes);

    /* without words the same model writes codes only */
    int32_t codes[200];
    p.words = NULL;
    loom_session_truncate(s, 0);
    loom_session_truncate(su, 0);
    const int64_t n2 = loom_generate_media(wm, s, c, nc, su, u, nu, p, codes, 200, err, sizeof err);
    CHECK(n2 > 0 && loom_session_n_past(s) == nc + n2 + 2, "no words: codes only (%lld)", (long long)n2);
    p.words = "a red circle";
    p.kind = LOOM_MEDIA_IMAGE;
    CHECK(loom_media_block_len(wm, p) == 2 + GRID * GRID, "an image block spells nothing");
    loom_session_free(&s);
    loom_session_free(&su);
    loom_model_free(&wm);
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
    tmp_model_path(path, sizeof path, "genmedia_words");
    test_spoken_words(path);
    unlink(path);
    tmp_model_path(path, sizeof path, "genmedia");
    loom_session_free(&s1);
    loom_session_free(&s2);
    loom_model_free(&m);
    unlink(path);
    return finish();
}
