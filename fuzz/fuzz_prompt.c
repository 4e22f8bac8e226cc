/* libFuzzer entry: the input is a little program of prompt operations on the random-weight
 * unified fixture (tests/data/unified/tiny.gguf + tiny-mmproj.gguf, loaded once):
 * loom_prompt_add_token (any id), _add_special (any name), _add_text (any bytes), _add_rows
 * (any float bit patterns: NaN, Inf, denormals), _add_image (small arbitrary sizes and
 * pixels), _add_audio (arbitrary pcm, NaN included: up to 1 s, or around the end of the
 * encoder's window, just inside or past it), _add_video (loom_video_from_rgb
 * with 0.. frames of arbitrary small sizes), _clear, then loom_session_append_prompt on a
 * session of small n_ctx (context full must be an error) and a few generated tokens.
 * Every call returns 0 or a negative status with a message; a failed add (media ones too)
 * leaves the prompt's length as it was; the session's position count only moves on success.
 *   scripts/fuzz 60 fuzz_prompt     (seeds: fuzz/corpus/prompt, see its README) */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loom.h"

#ifndef LOOM_SOURCE_DIR
#define LOOM_SOURCE_DIR "."
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static loom_model  *g_model;
static loom_mmproj *g_mp;
static int          g_embd;
static float       *g_pcm;        /* audio buffer: the encoder's window + AUDIO_PAST samples */
static int64_t      g_audio_max;  /* the encoder's window in samples */

enum { AUDIO_SHORT = 16000, AUDIO_PAST = 640 };   /* 1 s; 40 ms */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    char err[256];
    loom_model_params mp = loom_model_default_params();
    mp.n_threads = 1;
    loom_mmproj_params pp = loom_mmproj_default_params();
    pp.n_threads = 1;
    if (loom_model_load(LOOM_SOURCE_DIR "/tests/data/unified/tiny.gguf", mp, &g_model, err, sizeof err) != 0 ||
        loom_mmproj_load(LOOM_SOURCE_DIR "/tests/data/unified/tiny-mmproj.gguf", pp, &g_mp, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_prompt: %s\n", err);
        __builtin_trap();   /* the fixtures must load */
    }
    g_embd = loom_mmproj_n_embd(g_mp);
    g_audio_max = loom_mmproj_audio_max_samples(g_mp);
    g_pcm = malloc((size_t)(g_audio_max + AUDIO_PAST) * sizeof *g_pcm);
    if (g_audio_max < AUDIO_SHORT || !g_pcm) __builtin_trap();
    return 0;
}

/* The input as a stream; reads past the end give zeros. */
typedef struct cursor {
    const uint8_t *p;
    size_t         n, i;
} cursor;

static uint8_t u8(cursor *c) { return c->i < c->n ? c->p[c->i++] : 0; }
static uint16_t u16(cursor *c) { uint16_t a = u8(c); return (uint16_t)(a | (uint16_t)u8(c) << 8); }
static uint32_t u32(cursor *c) { uint32_t a = u16(c); return a | (uint32_t)u16(c) << 16; }
static int more(const cursor *c) { return c->i < c->n; }

/* n bytes from the input, repeated cyclically when it runs out (never empty output). */
static void fill(cursor *c, uint8_t *dst, size_t n)
{
    const size_t left = c->i < c->n ? c->n - c->i : 0;
    for (size_t k = 0; k < n; k++) dst[k] = left ? c->p[c->i + k % left] : (uint8_t)(k * 31 + 7);
    c->i += n < left ? n : left;
}

/* Floats: raw bit patterns, or picked specials, or small values. */
static float f32(cursor *c)
{
    static const uint32_t special[] = {0x7fc00000u, 0xffc00000u, 0x7f800000u, 0xff800000u, 0x7f7fffffu,
                                       0x00000001u, 0x80000000u, 0x3f800000u};
    const uint8_t mode = u8(c);
    union { uint32_t u; float f; } v;
    if (mode < 32) v.u = special[mode & 7];
    else if (mode < 96) v.u = u32(c);
    else v.f = (float)((int)mode - 176) / 80.0f;
    return v.f;
}

static void check_status(int rc, const char *msg)
{
    if (rc > 0 || (rc < 0 && (!msg || !msg[0]))) __builtin_trap();   /* a failure says why */
}

static void op_rows(cursor *c, loom_prompt *p, float *buf, int max_rows)
{
    const int n = u8(c) % (max_rows + 1);
    for (int64_t i = 0; i < (int64_t)n * g_embd; i++) buf[i] = f32(c);
    check_status(loom_prompt_add_rows(p, buf, n), loom_prompt_error(p));
}

static void op_image(cursor *c, loom_prompt *p, uint8_t *rgb, size_t cap)
{
    int w = 1 + u8(c) % 48, h = 1 + u8(c) % 48;
    const uint8_t shape = u8(c);
    if (shape & 1) w = 1 + (w * 37) % 400;                  /* wide strips, up to 400x1 */
    if (shape & 2) h = 1 + (h * 37) % 400;
    if ((size_t)w * (size_t)h * 3 > cap) h = (int)(cap / 3 / (size_t)w);
    fill(c, rgb, (size_t)w * (size_t)h * 3);
    loom_image img = {.width = w, .height = h, .rgb = rgb};
    if (shape & 4) img.width = 0;                             /* empty images are refused */
    if (shape & 8) img.rgb = NULL;
    check_status(loom_prompt_add_image(p, g_mp, &img), loom_prompt_error(p));
}

/* Length: u16 below 0xF000 gives up to 1 s (the cost of encoding grows with the length);
 * from 0xF000 on, 10 ms before to 30 ms past the end of the encoder's window (the longest
 * clip it takes, and the refusal of a longer one). */
static void op_audio(cursor *c, loom_prompt *p)
{
    const uint16_t k = u16(c);
    const int64_t n = k < 0xF000 ? k % AUDIO_SHORT : g_audio_max - 160 + (k & 0xFFF) % AUDIO_PAST;
    for (int64_t i = 0; i < n; i++) g_pcm[i] = (i & 15) == 0 || !more(c) ? 0.25f * (float)((i * 7) % 9 - 4) : f32(c);
    check_status(loom_prompt_add_audio(p, g_mp, g_pcm, n), loom_prompt_error(p));
}

static void op_video(cursor *c, loom_prompt *p, uint8_t *rgb, size_t cap)
{
    const int frames = u8(c) % 6, w = 1 + u8(c) % 24, h = 1 + u8(c) % 24;
    const double fps = (double)(u8(c) % 61);   /* 0 included */
    const size_t bytes = (size_t)(frames ? frames : 1) * (size_t)w * (size_t)h * 3;
    if (bytes > cap) return;
    fill(c, rgb, bytes);
    loom_video *v = NULL;
    char err[256] = "";
    int rc = loom_video_from_rgb(rgb, frames, w, h, fps, &v, err, sizeof err);
    check_status(rc, err);
    if (rc == 0) {
        if (!v || loom_video_n_frames(v) != frames) __builtin_trap();
        check_status(loom_prompt_add_video(p, g_mp, v), loom_prompt_error(p));
        loom_video_free(&v);
    } else if (v) {
        __builtin_trap();
    }
}

static void op_generate(cursor *c, loom_prompt *p, loom_session *s)
{
    const int32_t before = loom_session_n_past(s);
    int rc = loom_session_append_prompt(s, p);
    check_status(rc, loom_session_error(s));
    if (rc == LOOM_ERR_CONTEXT_FULL && loom_session_n_past(s) != before) __builtin_trap();
    if (rc == 0 && loom_session_n_past(s) != before + loom_prompt_n(p)) __builtin_trap();
    if (rc == 0 && loom_session_n_past(s) > 0) {
        loom_generate_params gp = loom_generate_default_params();
        gp.n_predict = u8(c) % 4;
        int64_t n = loom_session_generate(s, NULL, 0, gp, NULL);
        check_status(n < 0 ? (int)n : 0, loom_session_error(s));
        if (n > gp.n_predict) __builtin_trap();
    }
    if (loom_session_n_past(s) > loom_session_n_ctx(s)) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cursor c = {data, size, 0};
    static float   rows[4 * 256];          /* add_rows: up to 4 rows of n_embd <= 256 */
    static uint8_t rgb[5 * 24 * 24 * 3 > 400 * 48 * 3 ? 5 * 24 * 24 * 3 : 400 * 48 * 3];
    if (g_embd > 256) __builtin_trap();

    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = 8 + u8(&c) % 120;
    sp.n_batch = 1 + u8(&c) % 64;
    sp.n_threads = 1;
    loom_session *s = NULL;
    loom_prompt *p = NULL;
    char err[256];
    if (loom_session_create(g_model, sp, &s, err, sizeof err) != 0 || loom_prompt_create(g_model, &p) != 0)
        __builtin_trap();
    for (int steps = 0; more(&c) && steps < 32; steps++) {
        const int64_t n_before = loom_prompt_n(p);
        const uint8_t op = u8(&c);
        char text[257];
        int rc = 0;
        switch (op % 11) {
        case 0:
            rc = loom_prompt_add_token(p, (int32_t)u32(&c));
            check_status(rc, loom_prompt_error(p));
            break;
        case 1: {   /* small ids: mostly valid */
            rc = loom_prompt_add_token(p, (int32_t)(u16(&c) % 3000));
            check_status(rc, loom_prompt_error(p));
            break;
        }
        case 2: {
            static const char *const names[] = {"<|bos|>", "<|user|>", "<|assistant|>", "<|end|>", "<|image|>",
                                                "<|/image|>", "<|audio|>", "<|video|>", "<|frame|>", ""};
            const uint8_t k = u8(&c);
            if (k < 128) {
                rc = loom_prompt_add_special(p, names[k % 10]);
            } else {
                const size_t len = k % 40;
                fill(&c, (uint8_t *)text, len);
                text[len] = '\0';
                rc = loom_prompt_add_special(p, text);
            }
            check_status(rc, loom_prompt_error(p));
            break;
        }
        case 3: {
            const size_t len = u8(&c);
            fill(&c, (uint8_t *)text, len);
            text[len] = '\0';
            rc = loom_prompt_add_text(p, text);
            check_status(rc, loom_prompt_error(p));
            break;
        }
        case 4: op_rows(&c, p, rows, 4); break;
        case 5: op_image(&c, p, rgb, sizeof rgb); break;
        case 6: op_audio(&c, p); break;
        case 7: op_video(&c, p, rgb, sizeof rgb); break;
        case 8: loom_prompt_clear(p); if (loom_prompt_n(p) != 0) __builtin_trap(); break;
        case 9: op_generate(&c, p, s); break;
        case 10: loom_session_truncate(s, (int32_t)(u8(&c) % 128)); break;
        }
        if (op % 11 <= 7 && loom_prompt_error(p)[0] && loom_prompt_n(p) != n_before)
            __builtin_trap();   /* a failed add leaves the prompt unchanged */
    }
    op_generate(&c, p, s);
    loom_prompt_free(&p);
    loom_session_free(&s);
    if (p || s) __builtin_trap();
    return 0;
}
