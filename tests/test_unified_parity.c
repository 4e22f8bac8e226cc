/*
 * The whole media-in path against the PyTorch unified model (tools/train/unified.py) on
 * random F32 weights: image → ViT rows, audio → log-mel → encoder rows, video → frames →
 * ViT rows averaged in pairs, all inside the chat turn of docs/FORMAT.md, then greedy
 * decoding. Every answer token must match (fixtures: tools/parity/make_unified_fixtures.py).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loom.h"
#include "tests/check.h"

typedef struct ids { int32_t v[64]; int n; } ids;

static int keep(int32_t token, const char *piece, size_t len, void *user)
{
    (void)piece; (void)len;
    ids *o = user;
    if (o->n < 64) o->v[o->n++] = token;
    return 0;
}

static int parse_ids(const char *s, ids *o)
{
    o->n = 0;
    if (!strcmp(s, "-")) return 0;
    for (char *e; *s && o->n < 64; s = *e ? e + 1 : e) o->v[o->n++] = (int32_t)strtol(s, &e, 10);
    return o->n;
}

/* The caption turn of scene1.png through mmproj mp into s; the last position's logits. */
static const float *caption_logits(loom_session *s, loom_mmproj *mp, loom_prompt *p)
{
    char err[256];
    loom_image img = {0};
    loom_prompt_clear(p);
    int rc = loom_image_load("../examples/media/scene1.png", loom_image_default_params(), &img, err, sizeof err);
    rc |= loom_prompt_add_special(p, "<|bos|>");
    rc |= loom_prompt_add_special(p, "<|user|>");
    rc |= loom_prompt_add_image(p, mp, &img);
    rc |= loom_prompt_add_text(p, "Describe the image.");
    rc |= loom_prompt_add_special(p, "<|end|>");
    rc |= loom_prompt_add_special(p, "<|assistant|>");
    loom_image_free(&img);
    loom_session_truncate(s, 0);
    return rc == 0 && loom_session_append_prompt(s, p) == 0 ? loom_session_logits(s) : NULL;
}

/* LOOM_MATMUL_BF16 (encoders and prefill in bf16 on AMX): the logits stay within 1 % of their
 * spread of the F32 ones (bf16 keeps 8 significant bits), and differ from them where the CPU
 * has AMX (else they are the F32 ones exactly). A precision that is neither is refused. */
static void test_bf16(loom_model *m, loom_mmproj *mp, loom_session *s, loom_prompt *p)
{
    char err[512];
    loom_mmproj_params pp = loom_mmproj_default_params();
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = 512;
    pp.matmul = sp.matmul = 2;
    loom_mmproj *mb = NULL;
    loom_session *sb = NULL;
    CHECK(loom_mmproj_load("data/unified/tiny-mmproj.gguf", pp, &mb, err, sizeof err) == LOOM_ERR_INVALID_ARG &&
          !mb && strstr(err, "precision 2"), "mmproj matmul 2: %s", err);
    CHECK(loom_session_create(m, sp, &sb, err, sizeof err) == LOOM_ERR_INVALID_ARG && !sb && strstr(err, "precision 2"),
          "session matmul 2: %s", err);
    pp.matmul = sp.matmul = LOOM_MATMUL_BF16;
    CHECK(loom_mmproj_load("data/unified/tiny-mmproj.gguf", pp, &mb, err, sizeof err) == 0, "%s", err);
    CHECK(loom_session_create(m, sp, &sb, err, sizeof err) == 0, "%s", err);
    const int V = loom_model_n_vocab(m);
    const float *lf = caption_logits(s, mp, p);
    float *f32 = lf ? malloc((size_t)V * sizeof *f32) : NULL;
    if (f32) memcpy(f32, lf, (size_t)V * sizeof *f32);
    const float *lb = mb && sb ? caption_logits(sb, mb, p) : NULL;
    CHECK(f32 && lb, "both prefills ran");
    if (f32 && lb) {
        float lo = f32[0], hi = f32[0], worst = 0;
        int differ = 0;
        for (int i = 0; i < V; i++) {
            lo = f32[i] < lo ? f32[i] : lo;
            hi = f32[i] > hi ? f32[i] : hi;
            const float d = lb[i] > f32[i] ? lb[i] - f32[i] : f32[i] - lb[i];
            worst = d > worst ? d : worst;
            differ += lb[i] != f32[i];
        }
        const int amx = strstr(loom_cpu_features(), "amx_bf16") != NULL;
        CHECK(worst <= 0.01f * (hi - lo) && (amx ? differ > 0 : differ == 0),
              "bf16 logits: worst difference %g of a spread of %g, %d of %d differ (AMX: %d)", worst, hi - lo, differ, V, amx);
    }
    free(f32);
    loom_session_free(&sb);
    loom_mmproj_free(&mb);
}

int main(void)
{
    char err[512];
    loom_model *m = NULL;
    loom_mmproj *mp = NULL;
    loom_session *s = NULL;
    loom_prompt *p = NULL;
    CHECK(loom_model_load("data/unified/tiny.gguf", loom_model_default_params(), &m, err, sizeof err) == 0, "%s", err);
    CHECK(loom_mmproj_load("data/unified/tiny-mmproj.gguf", loom_mmproj_default_params(), &mp, err, sizeof err) == 0, "%s", err);
    if (!m || !mp) return finish();
    CHECK(loom_mmproj_has_vision(mp) && loom_mmproj_has_audio(mp), "both encoders present");
    CHECK(loom_mmproj_image_rows(mp) == 16, "16 rows per 64x64 image (patch 8, 2x2 merge), got %d", loom_mmproj_image_rows(mp));
    CHECK(loom_token_eot(m) == loom_token_find(m, "<|end|>"), "eot is <|end|>");
    CHECK(loom_model_video_frames(m) == 8, "video frames %d", loom_model_video_frames(m));
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = 512;
    CHECK(loom_session_create(m, sp, &s, err, sizeof err) == 0, "%s", err);
    CHECK(loom_prompt_create(m, &p) == 0, "prompt");
    FILE *f = fopen("data/unified/expected.txt", "r");
    CHECK(f != NULL, "expected.txt");
    char job[32], name[64], list[1024];
    int n_jobs = 0;
    while (f && s && p && fscanf(f, "%31s %63s %1023s", job, name, list) == 3) {
        char path[256];
        snprintf(path, sizeof path, "../examples/media/%s", name);
        ids want, got = {0};
        parse_ids(list, &want);
        loom_prompt_clear(p);
        int rc = loom_prompt_add_special(p, "<|bos|>");
        rc |= loom_prompt_add_special(p, "<|user|>");
        const char *text = "Describe the image.";
        if (!strcmp(job, "caption") || !strcmp(job, "ask")) {
            loom_image img = {0};
            rc |= loom_image_load(path, loom_image_default_params(), &img, err, sizeof err);
            rc |= loom_prompt_add_image(p, mp, &img);
            loom_image_free(&img);
            if (!strcmp(job, "ask")) text = "what colour is the square?";
        } else if (!strcmp(job, "transcribe")) {
            float *pcm = NULL;
            size_t n = 0;
            rc |= loom_audio_load(path, NULL, &pcm, &n, err, sizeof err);
            rc |= loom_prompt_add_audio(p, mp, pcm, (int64_t)n);
            loom_audio_pcm_free(&pcm);
            text = "Transcribe the audio.";
        } else {
            loom_video *v = NULL;
            static uint8_t rgb[8 * 64 * 64 * 3];
            FILE *vf = fopen("data/unified/video_frames.rgb", "rb");
            rc |= !vf || fread(rgb, 1, sizeof rgb, vf) != sizeof rgb;
            if (vf) fclose(vf);
            rc |= loom_video_from_rgb(rgb, 8, 64, 64, 8.0, &v, err, sizeof err);
            if (v) rc |= loom_prompt_add_video(p, mp, v);
            loom_video_free(&v);
            text = "Describe the video.";
        }
        rc |= loom_prompt_add_text(p, text);
        rc |= loom_prompt_add_special(p, "<|end|>");
        rc |= loom_prompt_add_special(p, "<|assistant|>");
        CHECK(rc == 0, "%s %s: building the prompt: %s", job, name, loom_prompt_error(p));
        loom_session_truncate(s, 0);
        CHECK(loom_session_append_prompt(s, p) == 0, "%s: %s", job, loom_session_error(s));
        loom_generate_params gp = loom_generate_default_params();
        gp.n_predict = 24;
        gp.on_token = keep;
        gp.user_data = &got;
        CHECK(loom_session_generate(s, NULL, 0, gp, NULL) >= 0, "%s: %s", job, loom_session_error(s));
        int same = got.n == want.n;
        for (int i = 0; same && i < got.n; i++) same = got.v[i] == want.v[i];
        int first_diff = 0;
        while (first_diff < got.n && first_diff < want.n && got.v[first_diff] == want.v[first_diff]) first_diff++;
        CHECK(same, "%s %s: %d tokens vs PyTorch's %d, first difference at %d", job, name, got.n, want.n, first_diff);
        n_jobs++;
    }
    if (f) fclose(f);
    CHECK(n_jobs == 4, "4 jobs, ran %d", n_jobs);
    test_bf16(m, mp, s, p);

    /* mismatched widths and missing encoders are errors, not crashes */
    loom_prompt_clear(p);
    loom_image tiny = {0};
    uint8_t px[3] = {1, 2, 3};
    CHECK(loom_image_from_rgb(px, 1, 1, 0, &tiny, err, sizeof err) == 0, "1x1 image");
    CHECK(loom_prompt_add_image(p, mp, &tiny) == 0, "a 1x1 image is padded and resized: %s", loom_prompt_error(p));
    loom_image_free(&tiny);
    static const float ten[10];
    CHECK(loom_prompt_add_audio(p, mp, ten, 10) < 0, "10 samples is too short");
    CHECK(loom_prompt_add_special(p, "<|nope|>") == LOOM_ERR_NOT_FOUND, "unknown control token");
    CHECK(loom_prompt_add_token(p, 1 << 30) == LOOM_ERR_INVALID_ARG, "token out of range");
    const int64_t too_long = loom_mmproj_audio_max_samples(mp) + 16000;
    CHECK(loom_mmproj_audio_rows(mp, too_long) == LOOM_ERR_LIMIT, "longer than the encoder window is a limit error");
    loom_prompt_free(&p);
    loom_session_free(&s);
    loom_mmproj_free(&mp);
    loom_model_free(&m);
    CHECK(p == NULL && s == NULL && mp == NULL && m == NULL, "free sets NULL");
    return finish();
}
