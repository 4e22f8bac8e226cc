/* Media blocks inside text generation (loom_session_generate with media_blocks on) on a
 * random-weight decoder carrying loom-tiny's vocabulary and media ranges. A logit bias makes
 * the model open a block; the block must hold only that medium's codes, have the model's
 * length, be closed, match loom_generate_media's codes, and text must go on after it. With
 * media_blocks off, generation is the plain sample-and-decode loop. */
#include <math.h>

#include "include/loom.h"
#include "tests/decoder_test_util.h"

enum { IMG = 64, AUD = 48, GRID = 4, FRAMES = 2, G2 = GRID * GRID, MAXT = 128 };
#define IMAGE_START 1642
#define AUDIO_START (1642 + IMG)

static loom_model *m;
static int32_t prompt[64];
static int64_t n_prompt;
static int32_t open_img, close_img, open_aud, close_aud, open_vid, close_vid, frame_tok;

/* What a generate call streamed and announced. */
typedef struct seen {
    loom_session *s;
    int32_t  unbias;            /* remove the bias on this token once it is streamed (-1: keep) */
    int32_t  tok[MAXT];
    int      n;
    int      n_begin, n_end;
    int      begin_at[4], end_at[4];   /* tokens streamed when the events came        */
    int      kind[4];
    int32_t  codes[4][FRAMES * G2];
    int64_t  n_codes[4];
    int      progress, stop_after;
} seen;

static int on_token(int32_t token, const char *piece, size_t len, void *user)
{
    seen *w = user;
    if (w->n < MAXT) w->tok[w->n] = token;
    w->n++;
    if (token == w->unbias) loom_session_logit_bias(w->s, token, 0);
    CHECK(!(token >= IMAGE_START && len != 0), "codes have empty pieces (token %d, %zu bytes)", token, len);
    (void)piece;
    return 0;
}

static void on_media(int event, int kind, const int32_t *codes, int64_t n, void *user)
{
    seen *w = user;
    if (event == LOOM_MEDIA_BEGIN) {
        CHECK(codes == NULL && n == 0, "BEGIN carries no codes");
        if (w->n_begin < 4) { w->begin_at[w->n_begin] = w->n; w->kind[w->n_begin] = kind; }
        w->n_begin++;
        return;
    }
    if (w->n_end < 4) {
        w->end_at[w->n_end] = w->n;
        w->n_codes[w->n_end] = n;
        if (n <= FRAMES * G2) memcpy(w->codes[w->n_end], codes, (size_t)n * sizeof *codes);
    }
    w->n_end++;
}

static void on_progress(int64_t done, int64_t total, void *user)
{
    seen *w = user;
    w->progress++;
    (void)done; (void)total;
}
static int should_abort(void *user) { seen *w = user; return w->stop_after && w->progress >= w->stop_after; }

/* Generate after the prompt with `open` biased until it is streamed (keep: the bias stays). */
static int64_t run(loom_session *s, loom_generate_params gp, int32_t open, int keep, seen *w)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->unbias = keep ? -1 : open;
    gp.on_token = on_token;
    gp.on_media = on_media;
    gp.user_data = w;
    gp.stop_at_eos = 0;
    loom_session_truncate(s, 0);
    CHECK(loom_session_logit_bias(s, open, 1000.0f) == 0, "bias");
    const int64_t n = loom_session_generate(s, prompt, n_prompt, gp, NULL);
    loom_session_logit_bias(s, open, 0);
    return n;
}

/* Generate from ctx[0..n) into a fresh *w, the session emptied first (no bias to remove). */
static int64_t generate_from(loom_session *s, loom_generate_params gp, const int32_t *ctx, int64_t n, int64_t n_predict,
                             seen *w)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->unbias = -1;
    gp.user_data = w;
    gp.n_predict = n_predict;
    loom_session_truncate(s, 0);
    return loom_session_generate(s, ctx, n, gp, NULL);
}

static int in_range(const int32_t *t, int n, int32_t lo, int32_t hi)
{
    int ok = n > 0;
    for (int i = 0; i < n; i++) ok &= t[i] >= lo && t[i] < hi;
    return ok;
}

/* The greedy next token after prompt + toks[0..n), computed from scratch. */
static int32_t greedy_after(const int32_t *toks, int n)
{
    loom_session *r = test_session(m, 256, 64, 1);
    int32_t all[256];
    memcpy(all, prompt, (size_t)n_prompt * sizeof *all);
    memcpy(all + n_prompt, toks, (size_t)n * sizeof *all);
    int32_t t = -1;
    if (r && loom_session_prompt(r, all, n_prompt + n, NULL) == 0) t = loom_session_sample(r);
    loom_session_free(&r);
    return t;
}

static void test_image(void)
{
    loom_session *s = test_session(m, 256, 64, 1);
    seen w;
    loom_generate_params gp = loom_generate_default_params();
    gp.n_predict = 24;
    gp.media[LOOM_MEDIA_IMAGE].seed = 7;
    const int64_t n = run(s, gp, open_img, 0, &w);
    CHECK(n == 24 && w.n == 24, "image: %lld generated, %d streamed (%s)", (long long)n, w.n, loom_session_error(s));
    CHECK(w.tok[0] == open_img, "the model opened <|image|> (%d)", w.tok[0]);
    CHECK(in_range(w.tok + 1, G2, IMAGE_START, IMAGE_START + IMG), "%d image codes follow the open token", G2);
    CHECK(w.tok[1 + G2] == close_img, "<|/image|> after exactly %d codes (got %d)", G2, w.tok[1 + G2]);
    CHECK(w.n_begin == 1 && w.n_end == 1 && w.kind[0] == LOOM_MEDIA_IMAGE && w.begin_at[0] == 1 && w.end_at[0] == G2 + 2,
          "events: %d begin (after %d tokens), %d end (after %d)", w.n_begin, w.begin_at[0], w.n_end, w.end_at[0]);
    int same = w.n_codes[0] == G2;
    for (int i = 0; same && i < G2; i++) same = w.codes[0][i] == w.tok[1 + i] - IMAGE_START;
    CHECK(same, "on_media hands over the block's codes (%lld)", (long long)w.n_codes[0]);
    /* text goes on after the block, from a cache that holds it */
    CHECK(w.tok[G2 + 2] == greedy_after(w.tok, G2 + 2), "the token after the block is the greedy continuation");
    CHECK(loom_session_n_past(s) == n_prompt + 24 - 1, "cache: prompt + all but the last token (%d)", loom_session_n_past(s));

    /* the same block as loom_generate_media (same sampler, seed, no guidance) */
    loom_media_params mp = gp.media[LOOM_MEDIA_IMAGE];
    mp.kind = LOOM_MEDIA_IMAGE;
    mp.cfg_scale = 1;
    int32_t codes[G2];
    char err[256];
    loom_session *r = test_session(m, 256, 64, 1);
    CHECK(loom_generate_media(m, r, prompt, n_prompt, NULL, NULL, 0, mp, codes, G2, err, sizeof err) == G2 &&
          !memcmp(codes, w.codes[0], sizeof codes), "codes equal loom_generate_media's: %s", err);
    loom_session_free(&r);

    /* media_blocks off: the plain loop (sample, decode), reproduced by hand */
    gp.media_blocks = 0;
    CHECK(run(s, gp, open_img, 0, &w) == 24 && w.n_begin == 0 && w.n_end == 0, "off: no events");
    loom_session *h = test_session(m, 256, 64, 1);
    loom_session_prompt(h, prompt, n_prompt, NULL);
    loom_session_logit_bias(h, open_img, 1000.0f);
    int equal = 1;
    for (int i = 0; i < 24; i++) {
        const int32_t t = loom_session_sample(h);
        if (t == open_img) loom_session_logit_bias(h, open_img, 0);
        equal &= t == w.tok[i];
        loom_session_decode(h, t);
    }
    loom_session_free(&h);
    CHECK(equal && w.tok[0] == open_img, "off: the same tokens as the raw loop");
    CHECK(!(in_range(w.tok + 1, G2, IMAGE_START, IMAGE_START + IMG) && w.tok[1 + G2] == close_img),
          "off: what follows <|image|> is not a constrained block");
    loom_session_free(&s);
}

static void test_video_audio(void)
{
    loom_session *s = test_session(m, 256, 64, 1);
    seen w;
    loom_generate_params gp = loom_generate_default_params();
    gp.n_predict = 1;   /* the block is finished past n_predict */
    int64_t n = run(s, gp, open_vid, 0, &w);
    const int len = 1 + FRAMES * (1 + G2) + 1;
    CHECK(n == len && w.n == len, "video: %lld tokens (want %d)", (long long)n, len);
    int ok = w.tok[0] == open_vid && w.tok[len - 1] == close_vid;
    for (int f = 0; f < FRAMES; f++)
        ok &= w.tok[1 + f * (1 + G2)] == frame_tok && in_range(w.tok + 2 + f * (1 + G2), G2, IMAGE_START, IMAGE_START + IMG);
    CHECK(ok, "video: <|video|> (<|frame|> + %d codes) × %d <|/video|>", G2, FRAMES);
    CHECK(w.n_end == 1 && w.kind[0] == LOOM_MEDIA_VIDEO && w.n_codes[0] == FRAMES * G2 &&
          w.codes[0][G2] == w.tok[2 + 1 + G2] - IMAGE_START, "video: codes of both frames, markers left out");
    CHECK(loom_session_n_past(s) == n_prompt + len, "video: the whole block is in the cache");

    gp.media[LOOM_MEDIA_AUDIO].max_audio_codes = 10;
    n = run(s, gp, open_aud, 0, &w);
    int k = 1;
    while (k < w.n && w.tok[k] != close_aud) k++;
    const int n_codes = k - 1;
    CHECK(n == w.n && w.tok[0] == open_aud && k < w.n && k == w.n - 1, "audio: closed (%lld tokens)", (long long)n);
    CHECK(n_codes >= 1 && n_codes <= 10 && in_range(w.tok + 1, n_codes, AUDIO_START, AUDIO_START + AUD),
          "audio: %d codes from the audio range, at most 10", n_codes);
    CHECK(w.n_end == 1 && w.n_codes[0] == n_codes && w.kind[0] == LOOM_MEDIA_AUDIO, "audio: END with %lld codes",
          (long long)w.n_codes[0]);
    loom_session_free(&s);
}

/* Guidance: the unconditional session holds the empty turn and the block; the codes equal
 * loom_generate_media's with the same scale and seed. Two blocks in one call take seeds
 * seed and seed + 1. */
static void test_guidance(void)
{
    loom_session *s = test_session(m, 256, 64, 1), *u = test_session(m, 256, 64, 1);
    seen w;
    loom_generate_params gp = loom_generate_default_params();
    gp.n_predict = G2 + 3;   /* the second open token is sampled within n_predict */
    gp.media[LOOM_MEDIA_IMAGE].seed = 3;
    gp.media[LOOM_MEDIA_IMAGE].cfg_scale = 2.5f;
    gp.media_uncond = u;
    loom_session_prompt(u, prompt, n_prompt, NULL);   /* replaced at the block */
    CHECK(run(s, gp, open_img, 1, &w) == 2 * (G2 + 2) && w.n_end == 2, "two blocks back to back: %d events (%s)", w.n_end,
          loom_session_error(s));
    int32_t unc[8];
    const int64_t nu = loom_media_prompt(m, LOOM_MEDIA_IMAGE, NULL, 1, unc, 8);
    CHECK(loom_session_n_past(u) == nu + G2 + 2, "the unconditional session holds its turn + one block (%d)",
          loom_session_n_past(u));
    loom_media_params mp = gp.media[LOOM_MEDIA_IMAGE];
    mp.kind = LOOM_MEDIA_IMAGE;
    int32_t codes[G2];
    char err[256];
    loom_session *c = test_session(m, 256, 64, 1), *cu = test_session(m, 256, 64, 1);
    CHECK(loom_generate_media(m, c, prompt, n_prompt, cu, unc, nu, mp, codes, G2, err, sizeof err) == G2 &&
          !memcmp(codes, w.codes[0], sizeof codes), "guided codes equal loom_generate_media's: %s", err);
    /* the second block continues after the first, with seed + 1 */
    int32_t ctx[128];
    memcpy(ctx, prompt, (size_t)n_prompt * sizeof *ctx);
    memcpy(ctx + n_prompt, w.tok, (size_t)(G2 + 2) * sizeof *ctx);
    mp.seed = 4;
    CHECK(loom_generate_media(m, c, ctx, n_prompt + G2 + 2, cu, unc, nu, mp, codes, G2, err, sizeof err) == G2 &&
          !memcmp(codes, w.codes[1], sizeof codes), "second block: seed + 1: %s", err);
    CHECK(memcmp(w.codes[0], w.codes[1], sizeof codes) != 0, "the two blocks differ");
    /* without the second session there is no guidance: other codes */
    gp.media_uncond = NULL;
    seen w1;
    run(s, gp, open_img, 0, &w1);
    CHECK(w1.n_end == 1 && memcmp(w1.codes[0], w.codes[0], sizeof codes) != 0, "no media_uncond: unguided codes");
    gp.media_uncond = s;
    CHECK(run(s, gp, open_img, 0, &w1) == LOOM_ERR_INVALID_ARG && strstr(loom_session_error(s), "another session"),
          "media_uncond == s refused: %s", loom_session_error(s));
    loom_session_free(&c);
    loom_session_free(&cu);
    loom_session_free(&s);
    loom_session_free(&u);
}

/* A prompt that ends with <|image|> (the caller opened the block): generation starts inside
 * it. Guided here, so the unconditional session gets its turn + <|image|> too. */
static void test_prompt_opens(void)
{
    loom_session *s = test_session(m, 256, 64, 1), *u = test_session(m, 256, 64, 1);
    int32_t ctx[80];
    memcpy(ctx, prompt, (size_t)n_prompt * sizeof *ctx);
    ctx[n_prompt] = open_img;
    seen w;
    memset(&w, 0, sizeof w);
    w.s = s;
    w.unbias = -1;
    loom_generate_params gp = loom_generate_default_params();
    gp.n_predict = G2 + 4;
    gp.stop_at_eos = 0;
    gp.on_token = on_token;
    gp.on_media = on_media;
    gp.user_data = &w;
    gp.media[LOOM_MEDIA_IMAGE].seed = 9;
    gp.media[LOOM_MEDIA_IMAGE].cfg_scale = 2;
    gp.media_uncond = u;
    const int64_t n = loom_session_generate(s, ctx, n_prompt + 1, gp, NULL);
    CHECK(n == G2 + 4 && in_range(w.tok, G2, IMAGE_START, IMAGE_START + IMG) && w.tok[G2] == close_img,
          "prompt ends with <|image|>: %d codes then <|/image|> (%lld: %s)", G2, (long long)n, loom_session_error(s));
    CHECK(w.n_begin == 1 && w.begin_at[0] == 0 && w.n_end == 1 && w.end_at[0] == G2 + 1, "events: begin before any token");
    int32_t unc[8], codes[G2];
    char err[256];
    const int64_t nu = loom_media_prompt(m, LOOM_MEDIA_IMAGE, NULL, 1, unc, 8);
    loom_session *c = test_session(m, 256, 64, 1), *cu = test_session(m, 256, 64, 1);
    loom_media_params mp = gp.media[LOOM_MEDIA_IMAGE];
    mp.kind = LOOM_MEDIA_IMAGE;
    CHECK(loom_generate_media(m, c, prompt, n_prompt, cu, unc, nu, mp, codes, G2, err, sizeof err) == G2 &&
          !memcmp(codes, w.codes[0], sizeof codes), "equal to loom_generate_media's guided block: %s", err);
    gp.media_blocks = 0;
    generate_from(s, gp, ctx, n_prompt + 1, G2 + 4, &w);
    CHECK(w.n_begin == 0 && !(in_range(w.tok, G2, IMAGE_START, IMAGE_START + IMG) && w.tok[G2] == close_img),
          "off: not constrained");
    loom_session_free(&c);
    loom_session_free(&cu);
    loom_session_free(&s);
    loom_session_free(&u);
}

/* A prompt that ends inside a block: its open token and part of its codes. The block goes on
 * from there (greedy: to the very codes a block written from the start has), with guidance the
 * unconditional sequence holds the same part; a body the block cannot hold is an error. */
static void test_prompt_unfinished(void)
{
    loom_session *s = test_session(m, 256, 64, 1), *u = test_session(m, 256, 64, 1);
    loom_generate_params gp = loom_generate_default_params();
    gp.stop_at_eos = 0;
    gp.on_token = on_token;
    gp.on_media = on_media;
    gp.media[LOOM_MEDIA_IMAGE].temperature = 0;   /* greedy: the resumed block must end as the whole one does */
    int32_t ctx[256] = {0};
    memcpy(ctx, prompt, (size_t)n_prompt * sizeof *ctx);
    ctx[n_prompt] = open_img;
    seen w, full;
    CHECK(generate_from(s, gp, ctx, n_prompt + 1, G2 + 2, &full) == G2 + 2 && full.n_codes[0] == G2, "whole greedy block");
    enum { K = 6 };
    for (int i = 0; i < K; i++) ctx[n_prompt + 1 + i] = IMAGE_START + full.codes[0][i];
    int64_t n = generate_from(s, gp, ctx, n_prompt + 1 + K, G2 - K + 2, &w);
    CHECK(n == G2 - K + 2 && in_range(w.tok, G2 - K, IMAGE_START, IMAGE_START + IMG) && w.tok[G2 - K] == close_img,
          "%d codes in the prompt: %d more, then <|/image|> (%lld: %s)", K, G2 - K, (long long)n, loom_session_error(s));
    CHECK(w.n_begin == 1 && w.begin_at[0] == 0 && w.n_end == 1 && w.n_codes[0] == G2 &&
          !memcmp(w.codes[0], full.codes[0], sizeof full.codes[0]),
          "events: the block's %d codes, the prompt's among them, equal to the whole greedy block's", G2);
    /* guided (greedy on 3·l_c − 2·l_u): the unconditional session must hold <|image|> and the
     * same K codes, or the resumed block would part from the whole one */
    gp.media[LOOM_MEDIA_IMAGE].cfg_scale = 3;
    gp.media_uncond = u;
    CHECK(generate_from(s, gp, ctx, n_prompt + 1, G2 + 2, &full) == G2 + 2 && full.n_codes[0] == G2, "whole guided block");
    for (int i = 0; i < K; i++) ctx[n_prompt + 1 + i] = IMAGE_START + full.codes[0][i];
    n = generate_from(s, gp, ctx, n_prompt + 1 + K, G2 - K + 2, &w);
    CHECK(n == G2 - K + 2 && w.n_codes[0] == G2 && !memcmp(w.codes[0], full.codes[0], sizeof full.codes[0]) &&
          loom_session_n_past(u) == loom_session_n_past(s) - (int32_t)n_prompt + 4,
          "guided: equal to the whole guided block (u %d, s %d positions): %s", loom_session_n_past(u),
          loom_session_n_past(s), loom_session_error(s));
    gp.media_uncond = NULL;
    /* video, in the middle of its first frame: the rest, <|frame|>, a whole frame, the end */
    ctx[n_prompt] = open_vid;
    ctx[n_prompt + 1] = frame_tok;
    for (int i = 0; i < K; i++) ctx[n_prompt + 2 + i] = IMAGE_START + full.codes[0][i];
    n = generate_from(s, gp, ctx, n_prompt + 2 + K, 2 * G2, &w);
    CHECK(in_range(w.tok, G2 - K, IMAGE_START, IMAGE_START + IMG) && w.tok[G2 - K] == frame_tok &&
          in_range(w.tok + G2 - K + 1, G2, IMAGE_START, IMAGE_START + IMG) && w.tok[2 * G2 - K + 1] == close_vid &&
          w.n_codes[0] == 2 * G2, "video resumed mid-frame (%lld: %s)", (long long)n, loom_session_error(s));
    /* bodies the block cannot hold */
    ctx[n_prompt] = open_img;
    ctx[n_prompt + 1] = AUDIO_START + 3;
    CHECK(generate_from(s, gp, ctx, n_prompt + 2, 2 * G2, &w) == LOOM_ERR_INVALID_ARG &&
          strstr(loom_session_error(s), "unfinished image block"), "an audio code in an image block: %s", loom_session_error(s));
    for (int i = 0; i <= G2; i++) ctx[n_prompt + 1 + i] = IMAGE_START;
    CHECK(generate_from(s, gp, ctx, n_prompt + 2 + G2, 2 * G2, &w) == LOOM_ERR_INVALID_ARG &&
          strstr(loom_session_error(s), "all its codes"), "%d codes in an image block: %s", G2 + 1, loom_session_error(s));
    /* off: plain sampling after the same prompt */
    gp.media_blocks = 0;
    CHECK(generate_from(s, gp, ctx, n_prompt + 1 + K, 2 * G2, &w) == 2 * G2 && w.n_begin == 0, "off: no block");
    loom_session_free(&s);
    loom_session_free(&u);
}

/* Each medium's block is drawn with its own media[kind]: a guided image block (the prompt
 * opened it), then an audio block the model opens, unguided at temperature 0.6 and top-k 5.
 * Each equals loom_generate_media's with that kind's settings and seed media[kind].seed + k. */
static void test_per_kind(void)
{
    loom_session *s = test_session(m, 256, 64, 1), *u = test_session(m, 256, 64, 1);
    loom_generate_params gp = loom_generate_default_params();
    loom_media_params *pi = &gp.media[LOOM_MEDIA_IMAGE], *pa = &gp.media[LOOM_MEDIA_AUDIO];
    pi->seed = 11;
    pi->cfg_scale = 2.5f;
    pa->seed = 20;
    pa->cfg_scale = 1;
    pa->temperature = 0.6f;
    pa->top_k = 5;
    pa->max_audio_codes = 10;
    gp.media_uncond = u;
    gp.n_predict = G2 + 2;   /* the image's codes and close, then <|audio|> */
    gp.stop_at_eos = 0;
    gp.on_token = on_token;
    gp.on_media = on_media;
    seen w;
    memset(&w, 0, sizeof w);
    w.s = s;
    w.unbias = open_aud;
    gp.user_data = &w;
    int32_t ctx[128];
    memcpy(ctx, prompt, (size_t)n_prompt * sizeof *ctx);
    ctx[n_prompt] = open_img;
    loom_session_logit_bias(s, open_aud, 1000.0f);
    const int64_t n = loom_session_generate(s, ctx, n_prompt + 1, gp, NULL);
    loom_session_logit_bias(s, open_aud, 0);
    CHECK(n > G2 + 2 && w.n_end == 2 && w.kind[0] == LOOM_MEDIA_IMAGE && w.kind[1] == LOOM_MEDIA_AUDIO,
          "an image block then an audio block (%lld tokens, %d blocks): %s", (long long)n, w.n_end, loom_session_error(s));
    int32_t unc[8], codes[G2];
    char err[256];
    const int64_t nu = loom_media_prompt(m, LOOM_MEDIA_IMAGE, NULL, 1, unc, 8);
    loom_session *c = test_session(m, 256, 64, 1), *cu = test_session(m, 256, 64, 1);
    loom_media_params mp = *pi;
    mp.kind = LOOM_MEDIA_IMAGE;
    CHECK(loom_generate_media(m, c, prompt, n_prompt, cu, unc, nu, mp, codes, G2, err, sizeof err) == G2 &&
          !memcmp(codes, w.codes[0], sizeof codes), "image: guided at 2.5, seed 11: %s", err);
    memcpy(ctx + n_prompt + 1, w.tok, (size_t)(G2 + 1) * sizeof *ctx);   /* codes, <|/image|> */
    mp = *pa;
    mp.kind = LOOM_MEDIA_AUDIO;
    mp.seed = 21;
    const int64_t na = loom_generate_media(m, c, ctx, n_prompt + G2 + 2, NULL, NULL, 0, mp, codes, G2, err, sizeof err);
    CHECK(na > 0 && na == w.n_codes[1] && !memcmp(codes, w.codes[1], (size_t)na * sizeof *codes),
          "audio: unguided, temperature 0.6, top-k 5, seed 20 + 1 (%lld codes, %lld in the call): %s", (long long)na,
          (long long)w.n_codes[1], err);
    loom_session_free(&c);
    loom_session_free(&cu);
    loom_session_free(&s);
    loom_session_free(&u);
}

static void test_limits(void)
{
    seen w;
    loom_generate_params gp = loom_generate_default_params();
    gp.n_predict = 8;
    /* no room for the block: refused before its open token is streamed */
    loom_session *small = test_session(m, (int)n_prompt + G2, 64, 1);
    CHECK(run(small, gp, open_img, 0, &w) == LOOM_ERR_CONTEXT_FULL && w.n == 0 &&
          strstr(loom_session_error(small), "context full"), "context: %s (%d streamed)", loom_session_error(small), w.n);
    loom_session_free(&small);
    /* the media hooks: progress per code, abort inside the block */
    loom_session *s = test_session(m, 256, 64, 1);
    gp.media[LOOM_MEDIA_IMAGE].on_progress = on_progress;
    gp.media[LOOM_MEDIA_IMAGE].should_abort = should_abort;
    gp.media[LOOM_MEDIA_IMAGE].user_data = &w;
    memset(&w, 0, sizeof w);
    w.s = s;
    w.unbias = open_img;
    w.stop_after = 5;
    gp.on_token = on_token;
    gp.user_data = &w;
    loom_session_logit_bias(s, open_img, 1000.0f);
    CHECK(loom_session_generate(s, prompt, n_prompt, gp, NULL) == LOOM_ERR_ABORTED && w.progress == 5 && w.n == 6,
          "abort after 5 codes (%d codes, %d streamed): %s", w.progress, w.n, loom_session_error(s));
    /* bad media params are reported when a block opens */
    gp.media[LOOM_MEDIA_AUDIO].max_audio_codes = 0;
    CHECK(run(s, gp, open_aud, 0, &w) == LOOM_ERR_INVALID_ARG, "max_audio_codes 0: %s", loom_session_error(s));
    CHECK(loom_session_logit_bias(s, -1, 1) == LOOM_ERR_INVALID_ARG &&
          loom_session_logit_bias(s, 0, NAN) == LOOM_ERR_INVALID_ARG, "logit bias checks its arguments");
    loom_session_free(&s);
}

int main(void)
{
    char path[256];
    lm_synth_params sp = lm_synth_tiny_params();
    sp.vocab_from = "../models/loom-tiny-vocab.gguf";
    sp.image_count = IMG; sp.audio_count = AUD; sp.image_grid = GRID; sp.video_gen_frames = FRAMES;
    m = synth_model("genblocks", &sp, path, sizeof path);
    if (!m) return finish();
    n_prompt = loom_media_prompt(m, LOOM_MEDIA_IMAGE, "a red circle", 0, prompt, 64);
    open_img = loom_token_find(m, "<|image|>"); close_img = loom_token_find(m, "<|/image|>");
    open_aud = loom_token_find(m, "<|audio|>"); close_aud = loom_token_find(m, "<|/audio|>");
    open_vid = loom_token_find(m, "<|video|>"); close_vid = loom_token_find(m, "<|/video|>");
    frame_tok = loom_token_find(m, "<|frame|>");
    CHECK(n_prompt > 4 && open_img > 0 && frame_tok > 0, "prompt and control tokens");
    test_image();
    test_video_audio();
    test_guidance();
    test_prompt_opens();
    test_prompt_unfinished();
    test_per_kind();
    test_limits();
    loom_model_free(&m);
    unlink(path);
    return finish();
}
