/* Media-encoder files and media inputs that must be refused, each with a message that names
 * the problem: an mmproj with neither encoder, vision and audio projection widths that
 * disagree, encoder rows narrower than the decoder's embeddings, audio longer than the
 * encoder's window (or too short), empty / 1x1 / extreme-aspect images, a video without
 * frames, a medium the file has no encoder for, a CTC head of the wrong shape or without its
 * bias. A failed add leaves the prompt as it was, and no load (failing or not) leaves a
 * descriptor open. A well-formed CTC head gives rows of log-probabilities. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loom.h"
#include "tests/codec_test_util.h"
#include "tests/decoder_test_util.h"
#include "tests/fd_check.h"

#define TINY   "data/unified/tiny.gguf"
#define MMPROJ "data/unified/tiny-mmproj.gguf"
#define VIT    "data/vision/vit_mlp.gguf"          /* vision only, projection_dim 40 */
#define AUDIO  "data/audio/encoder/encoder.gguf"   /* audio only, projection_dim 96  */

static int has(const char *msg, const char *a, const char *b)
{
    return strstr(msg, a) && (!b || strstr(msg, b));
}

/* The keys and tensors of every file in srcs (NULL-terminated) in one GGUF at dst. */
static int merge(const char *dst, const char *const *srcs)
{
    lm_gguf_writer *w = lm_gguf_writer_create();
    const gguf_edit none = {0};
    int rc = w ? 0 : -1;
    for (int i = 0; rc == 0 && srcs[i]; i++) {
        lm_gguf *g = NULL;
        rc = lm_gguf_open(srcs[i], &g, NULL);
        if (rc == 0) rc = gguf_copy_into(w, g, &none);
        lm_gguf_close(&g);
    }
    if (rc == 0) rc = lm_gguf_write(w, dst, NULL);
    lm_gguf_writer_free(&w);
    return rc;
}

static int load(const char *path, loom_mmproj **mp, char *err, size_t size)
{
    loom_mmproj_params p = loom_mmproj_default_params();
    p.n_threads = 1;
    err[0] = '\0';
    return loom_mmproj_load(path, p, mp, err, size);
}

static void test_bad_files(void)
{
    char path[256], err[512];
    loom_mmproj *mp = NULL;

    /* neither encoder: by key, and with no key and no tensor at all */
    tmp_model_path(path, sizeof path, "mmproj-none");
    lm_gguf_writer *w = lm_gguf_writer_create();
    lm_gguf_set_str(w, "general.architecture", "clip");
    lm_gguf_set_bool(w, "clip.has_vision_encoder", 0);
    lm_gguf_set_bool(w, "clip.has_audio_encoder", 0);
    CHECK(lm_gguf_write(w, path, NULL) == 0, "write %s", path);
    lm_gguf_writer_free(&w);
    int rc = load(path, &mp, err, sizeof err);
    CHECK(rc == LOOM_ERR_NOT_FOUND && !mp && has(err, "no media encoder", "clip.has_vision_encoder"),
          "neither encoder: rc %d, '%s'", rc, err);
    w = lm_gguf_writer_create();
    lm_gguf_set_str(w, "general.architecture", "clip");
    CHECK(lm_gguf_write(w, path, NULL) == 0, "write %s", path);
    lm_gguf_writer_free(&w);
    rc = load(path, &mp, err, sizeof err);
    CHECK(rc == LOOM_ERR_NOT_FOUND && !mp && has(err, "no media encoder", NULL), "empty file: rc %d, '%s'", rc, err);

    /* a vision encoder with 40-wide rows next to an audio encoder with 96-wide rows */
    tmp_model_path(path, sizeof path, "mmproj-widths");
    CHECK(merge(path, (const char *const[]){VIT, AUDIO, NULL}) == 0, "merge %s + %s", VIT, AUDIO);
    rc = load(path, &mp, err, sizeof err);
    CHECK(rc == LOOM_ERR_FORMAT && !mp && has(err, "projection_dim", "96") && strstr(err, "40"),
          "vision 40 vs audio 96: rc %d, '%s'", rc, err);

    /* an encoder switched on by its key without its tensors */
    w = lm_gguf_writer_create();
    lm_gguf_set_bool(w, "clip.has_audio_encoder", 1);
    CHECK(lm_gguf_write(w, path, NULL) == 0, "write %s", path);
    lm_gguf_writer_free(&w);
    rc = load(path, &mp, err, sizeof err);
    CHECK(rc < 0 && !mp && err[0], "audio key without tensors: rc %d, '%s'", rc, err);

    rc = load("data/does-not-exist-mmproj.gguf", &mp, err, sizeof err);
    CHECK(rc < 0 && !mp && strstr(err, "does-not-exist-mmproj.gguf"), "missing file: rc %d, '%s'", rc, err);
    loom_mmproj_params p = loom_mmproj_default_params();
    p.max_images = 0;
    rc = loom_mmproj_load(MMPROJ, p, &mp, err, sizeof err);
    CHECK(rc == LOOM_ERR_INVALID_ARG && !mp && strstr(err, "max_images"), "max_images 0: rc %d, '%s'", rc, err);
    unlink(path);
    tmp_model_path(path, sizeof path, "mmproj-none");
    unlink(path);
}

/* Encoder rows of another width than the decoder's embeddings: every add names both. */
static void test_width_mismatch(loom_model *m)
{
    char err[512];
    loom_mmproj *vit = NULL, *aud = NULL;
    loom_prompt *p = NULL;
    CHECK(load(VIT, &vit, err, sizeof err) == 0, "%s: %s", VIT, err);
    CHECK(load(AUDIO, &aud, err, sizeof err) == 0, "%s: %s", AUDIO, err);
    CHECK(loom_prompt_create(m, &p) == 0, "prompt");
    if (!vit || !aud || !p) goto done;
    uint8_t rgb[8 * 8 * 3] = {0};
    loom_image img = {8, 8, rgb};
    int rc = loom_prompt_add_image(p, vit, &img);
    CHECK(rc == LOOM_ERR_FORMAT && has(loom_prompt_error(p), "40", "64"), "image from 40-wide encoder: rc %d, '%s'",
          rc, loom_prompt_error(p));
    float pcm[1600] = {0};
    rc = loom_prompt_add_audio(p, aud, pcm, 1600);
    CHECK(rc == LOOM_ERR_FORMAT && has(loom_prompt_error(p), "96", "64"), "audio from 96-wide encoder: rc %d, '%s'",
          rc, loom_prompt_error(p));
    loom_video *v = NULL;
    CHECK(loom_video_from_rgb(rgb, 1, 8, 8, 1.0, &v, err, sizeof err) == 0, "video: %s", err);
    rc = loom_prompt_add_video(p, vit, v);
    CHECK(rc == LOOM_ERR_FORMAT && has(loom_prompt_error(p), "40", "64"), "video from 40-wide encoder: rc %d, '%s'",
          rc, loom_prompt_error(p));
    loom_video_free(&v);
    CHECK(loom_prompt_n(p) == 0, "failed adds left %lld positions", (long long)loom_prompt_n(p));
done:
    loom_prompt_free(&p);
    loom_mmproj_free(&vit);
    loom_mmproj_free(&aud);
}

/* A medium the file has no encoder for (widths patched to agree, so only that is wrong). */
static void test_missing_medium(loom_model *m)
{
    char path[256], err[512];
    tmp_model_path(path, sizeof path, "mmproj-vit64");
    const gguf_edit vit64 = {.u32_key = "clip.vision.projection_dim", .u32_val = 64};
    /* projection_dim alone does not make rows 64 wide: the projector's shape decides, so
     * the loader must refuse the disagreement */
    CHECK(gguf_copy_edited(VIT, path, &vit64) == 0, "copy %s", VIT);
    loom_mmproj *mp = NULL;
    int rc = load(path, &mp, err, sizeof err);
    CHECK(rc < 0 && !mp && strstr(err, "mm.2"), "projection_dim 64 with a 40-wide projector: rc %d, '%s'", rc, err);
    unlink(path);

    loom_mmproj *aud = NULL;
    loom_prompt *p = NULL;
    CHECK(load(AUDIO, &aud, err, sizeof err) == 0, "%s: %s", AUDIO, err);
    CHECK(loom_prompt_create(m, &p) == 0, "prompt");
    if (aud && p) {
        uint8_t rgb[3] = {1, 2, 3};
        loom_image img = {1, 1, rgb};
        float out[1];
        rc = loom_mmproj_encode_image(aud, &img, out);
        CHECK(rc == LOOM_ERR_UNSUPPORTED && strstr(loom_mmproj_error(aud), "no vision encoder"),
              "image through an audio-only file: rc %d, '%s'", rc, loom_mmproj_error(aud));
        CHECK(loom_mmproj_image_rows(aud) == 0, "audio-only file has image rows");
    }
    loom_prompt_free(&p);
    loom_mmproj_free(&aud);

    loom_mmproj *vit = NULL;
    CHECK(load(VIT, &vit, err, sizeof err) == 0, "%s: %s", VIT, err);
    if (vit) {
        float pcm[1600] = {0}, out[1];
        rc = loom_mmproj_encode_audio(vit, pcm, 1600, out);
        CHECK(rc == LOOM_ERR_UNSUPPORTED && strstr(loom_mmproj_error(vit), "no audio encoder"),
              "audio through a vision-only file: rc %d, '%s'", rc, loom_mmproj_error(vit));
        CHECK(loom_mmproj_audio_rows(vit, 1600) == LOOM_ERR_UNSUPPORTED && loom_mmproj_audio_max_samples(vit) == 0,
              "vision-only file reports audio");
    }
    loom_mmproj_free(&vit);
}

static int all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!(x[i] == x[i]) || x[i] - x[i] != 0.0f) return 0;
    return 1;
}

/* Bad media through the matching, working encoders. */
static void test_bad_media(loom_model *m, loom_mmproj *mp)
{
    loom_prompt *p = NULL;
    CHECK(loom_prompt_create(m, &p) == 0, "prompt");
    if (!p) return;
    const int64_t R = loom_mmproj_image_rows(mp), E = loom_mmproj_n_embd(mp);
    float *out = xmalloc((size_t)(R * E) * sizeof *out);

    /* images: empty (no pixels, zero width, zero height) is refused; 1x1 and 1000x1 work */
    static uint8_t rgb[2000 * 3];
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 13);
    const loom_image empty[] = {{0, 0, NULL}, {4, 4, NULL}, {0, 4, rgb}, {4, 0, rgb}, {-3, 4, rgb}};
    for (size_t i = 0; i < sizeof empty / sizeof *empty; i++) {
        int rc = loom_prompt_add_image(p, mp, &empty[i]);
        CHECK(rc == LOOM_ERR_INVALID_ARG && strstr(loom_prompt_error(p), "empty"), "empty image %zu: rc %d, '%s'", i,
              rc, loom_prompt_error(p));
    }
    int rc = loom_prompt_add_image(p, mp, NULL);
    CHECK(rc < 0 && loom_prompt_error(p)[0], "NULL image: rc %d", rc);
    CHECK(loom_prompt_n(p) == 0, "failed image adds left %lld positions", (long long)loom_prompt_n(p));
    const int shapes[][2] = {{1, 1}, {2000, 1}, {1, 2000}, {3, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        loom_image img = {shapes[i][0], shapes[i][1], rgb};
        rc = loom_mmproj_encode_image(mp, &img, out);
        CHECK(rc == 0 && all_finite(out, R * E), "%dx%d image: rc %d, '%s'", img.width, img.height, rc,
              loom_mmproj_error(mp));
    }
    loom_image one = {1, 1, rgb};
    CHECK(loom_prompt_add_image(p, mp, &one) == 0 && loom_prompt_n(p) == R + 2, "1x1 image in a prompt: '%s'",
          loom_prompt_error(p));
    loom_prompt_clear(p);

    /* audio: past the window is LOOM_ERR_LIMIT naming both durations; too short is refused */
    const int64_t max = loom_mmproj_audio_max_samples(mp);
    CHECK(max > 0 && loom_mmproj_audio_rows(mp, max) > 0, "window %lld samples", (long long)max);
    const int64_t n = max + 16000;
    float *pcm = calloc((size_t)n, sizeof *pcm);
    char want_s[32], max_s[32];
    snprintf(want_s, sizeof want_s, "%.2f s", (double)n / 16000.0);
    snprintf(max_s, sizeof max_s, "%.2f s", (double)max / 16000.0);
    rc = loom_prompt_add_audio(p, mp, pcm, n);
    CHECK(rc == LOOM_ERR_LIMIT && has(loom_prompt_error(p), want_s, max_s), "audio over the window: rc %d, '%s'", rc,
          loom_prompt_error(p));
    CHECK(loom_mmproj_audio_rows(mp, n) == LOOM_ERR_LIMIT, "audio_rows past the window");
    rc = loom_mmproj_encode_audio(mp, pcm, n, out);
    CHECK(rc == LOOM_ERR_LIMIT && has(loom_mmproj_error(mp), want_s, max_s), "encode over the window: rc %d, '%s'", rc,
          loom_mmproj_error(mp));
    for (int64_t k = 0; k <= 1; k++) {
        rc = loom_prompt_add_audio(p, mp, pcm, k * 10);
        CHECK(rc == LOOM_ERR_INVALID_ARG && strstr(loom_prompt_error(p), "too short"), "%lld samples: rc %d, '%s'",
              (long long)(k * 10), rc, loom_prompt_error(p));
    }
    CHECK(loom_prompt_n(p) == 0, "failed audio adds left %lld positions", (long long)loom_prompt_n(p));
    const int64_t rows = loom_mmproj_audio_rows(mp, max);
    CHECK(loom_prompt_add_audio(p, mp, pcm, max) == 0 && loom_prompt_n(p) == rows + 2, "audio of exactly the window: '%s'",
          loom_prompt_error(p));
    free(pcm);
    loom_prompt_clear(p);

    /* video: 0 frames cannot be made; a NULL video is refused */
    loom_video *v = NULL;
    char err[512] = "";
    rc = loom_video_from_rgb(rgb, 0, 4, 4, 1.0, &v, err, sizeof err);
    CHECK(rc < 0 && !v && strstr(err, "frame"), "0-frame video: rc %d, '%s'", rc, err);
    rc = loom_video_from_rgb(rgb, 1, 0, 4, 1.0, &v, err, sizeof err);
    CHECK(rc < 0 && !v && err[0], "0-wide video: rc %d, '%s'", rc, err);
    CHECK(loom_prompt_add_video(p, mp, NULL) == LOOM_ERR_INVALID_ARG, "NULL video");
    CHECK(loom_video_from_rgb(rgb, 3, 20, 30, 2.0, &v, err, sizeof err) == 0, "3-frame video: %s", err);
    if (v) {   /* 3 frames, merged in pairs: <|video|> 2 x (<|frame|> R rows) <|/video|> */
        rc = loom_prompt_add_video(p, mp, v);
        CHECK(rc == 0 && loom_prompt_n(p) == 2 + 2 * (R + 1), "3-frame video: rc %d, %lld positions, '%s'", rc,
              (long long)loom_prompt_n(p), loom_prompt_error(p));
    }
    loom_video_free(&v);

    /* a prompt past the session's context: LOOM_ERR_CONTEXT_FULL, the session unchanged */
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = 16;
    sp.n_threads = 1;
    loom_session *s = NULL;
    CHECK(loom_session_create(m, sp, &s, err, sizeof err) == 0, "session: %s", err);
    if (s) {
        rc = loom_session_append_prompt(s, p);
        CHECK(rc == LOOM_ERR_CONTEXT_FULL && loom_session_n_past(s) == 0 && strstr(loom_session_error(s), "n_ctx 16"),
              "prompt past n_ctx: rc %d, '%s'", rc, loom_session_error(s));
    }
    loom_session_free(&s);
    free(out);
    loom_prompt_free(&p);
}

static void load_quietly(const char *path)
{
    char err[256];
    loom_mmproj *mp = NULL;
    if (load(path, &mp, err, sizeof err) == 0) loom_mmproj_free(&mp);
}

/* Every mmproj fuzz seed (valid, truncated, damaged) and the files above: no fd left open. */
static void test_fd_leaks(void)
{
    char path[512], err[256];
    load_quietly(MMPROJ);   /* warm up: first use may open descriptors a library keeps */
    fds_mark();
    int n = 0;
    DIR *d = opendir("../fuzz/corpus/mmproj");
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && strcmp(e->d_name, "README")) {
            snprintf(path, sizeof path, "../fuzz/corpus/mmproj/%s", e->d_name);
            load_quietly(path);
            n++;
        }
    if (d) closedir(d);
    load_quietly("data");
    load_quietly("/dev/null");
    load_quietly("data/does-not-exist.gguf");
    loom_mmproj *mp = NULL;
    tmp_model_path(path, sizeof path, "mmproj-widths");
    if (merge(path, (const char *const[]){VIT, AUDIO, NULL}) == 0) load(path, &mp, err, sizeof err);
    unlink(path);
    CHECK(n >= 10, "only %d mmproj seeds", n);
    fds_check("mmproj loads");
}

/* AUDIO (96-wide rows) + a CTC head of `classes` classes: weight {n_in, classes} (n_dims 1 when
 * flat), bias {classes} unless no_bias. */
static int write_ctc(const char *dst, int64_t n_in, int64_t classes, int flat, int no_bias)
{
    lm_gguf *g = NULL;
    if (lm_gguf_open(AUDIO, &g, NULL) < 0) return -1;
    lm_gguf_writer *w = lm_gguf_writer_create();
    const gguf_edit none = {0};
    int rc = gguf_copy_into(w, g, &none);
    float *v = calloc((size_t)(n_in * classes + classes), sizeof *v);
    for (int64_t i = 0; v && i < n_in * classes + classes; i++) v[i] = (float)((i * 7919) % 13) / 13.0f - 0.5f;
    if (!v) rc = -1;
    if (rc == 0) rc = flat ? lm_gguf_add_tensor(w, "mm.a.ctc.weight", LOOM_TYPE_F32, 1, (int64_t[]){n_in * classes}, v)
                           : lm_gguf_add_tensor(w, "mm.a.ctc.weight", LOOM_TYPE_F32, 2, (int64_t[]){n_in, classes}, v);
    if (rc == 0 && !no_bias) rc = lm_gguf_add_tensor(w, "mm.a.ctc.bias", LOOM_TYPE_F32, 1, (int64_t[]){classes},
                                                    v + n_in * classes);
    if (rc == 0) rc = lm_gguf_write(w, dst, NULL);
    free(v);
    lm_gguf_writer_free(&w);
    lm_gguf_close(&g);
    return rc;
}

/* The CTC head on audio rows (mm.a.ctc.*): refused when malformed, else log-probabilities. */
static void test_ctc_head(void)
{
    char path[256], err[512];
    loom_mmproj *mp = NULL;
    tmp_model_path(path, sizeof path, "mmproj-ctc");
    CHECK(write_ctc(path, 96, 5, 1, 0) == 0, "write");
    int rc = load(path, &mp, err, sizeof err);
    CHECK(rc == LOOM_ERR_TYPE && !mp && has(err, "mm.a.ctc.weight", "matrix"), "flat CTC weight: rc %d, '%s'", rc, err);
    CHECK(write_ctc(path, 64, 5, 0, 0) == 0, "write");
    rc = load(path, &mp, err, sizeof err);
    CHECK(rc < 0 && !mp && strstr(err, "mm.a.ctc.weight"), "CTC weight 64 wide for 96-wide rows: rc %d, '%s'", rc, err);
    CHECK(write_ctc(path, 96, 5, 0, 1) == 0, "write");
    rc = load(path, &mp, err, sizeof err);
    CHECK(rc < 0 && !mp && strstr(err, "mm.a.ctc.bias"), "CTC head without bias: rc %d, '%s'", rc, err);
    CHECK(write_ctc(path, 96, 5, 0, 0) == 0, "write");
    rc = load(path, &mp, err, sizeof err);
    CHECK(rc == 0 && loom_mmproj_ctc_classes(mp) == 5, "CTC head of 5 classes: rc %d, '%s', %d classes", rc, err,
          loom_mmproj_ctc_classes(mp));
    if (mp) {
        static float pcm[16000], rows[64 * 96], lp[64 * 5];
        for (int i = 0; i < 16000; i++) pcm[i] = 0.3f * sinf((float)i * 0.05f);
        const int64_t n = loom_mmproj_audio_rows(mp, 16000);
        CHECK(n > 0 && n <= 64 && loom_mmproj_encode_audio(mp, pcm, 16000, rows) == 0, "encode: %s", loom_mmproj_error(mp));
        CHECK(loom_mmproj_audio_ctc(mp, rows, n, lp) == 0, "ctc: %s", loom_mmproj_error(mp));
        double worst = 0;
        for (int64_t r = 0; r < n; r++) {
            double sum = 0;
            for (int c = 0; c < 5; c++) sum += exp(lp[r * 5 + c]);
            if (fabs(sum - 1) > worst) worst = fabs(sum - 1);
        }
        CHECK(worst < 1e-5, "CTC rows are log-probabilities: sums off by %g", worst);
        CHECK(loom_mmproj_audio_ctc(mp, rows, 0, lp) == LOOM_ERR_INVALID_ARG &&
              loom_mmproj_audio_ctc(mp, NULL, n, lp) == LOOM_ERR_INVALID_ARG, "CTC of no rows refused");
    }
    loom_mmproj_free(&mp);
    CHECK(load(AUDIO, &mp, err, sizeof err) == 0, "%s: %s", AUDIO, err);
    if (mp) {
        static float rows[96], lp[8];
        rc = loom_mmproj_audio_ctc(mp, rows, 1, lp);
        CHECK(loom_mmproj_ctc_classes(mp) == 0 && rc == LOOM_ERR_UNSUPPORTED && strstr(loom_mmproj_error(mp), "no CTC head"),
              "no CTC head: rc %d, '%s'", rc, loom_mmproj_error(mp));
    }
    loom_mmproj_free(&mp);
    unlink(path);
}

int main(void)
{
    char err[512];
    loom_model_params mpar = loom_model_default_params();
    mpar.n_threads = 1;
    loom_model *m = NULL;
    loom_mmproj *mp = NULL;
    CHECK(loom_model_load(TINY, mpar, &m, err, sizeof err) == 0, "%s: %s", TINY, err);
    CHECK(load(MMPROJ, &mp, err, sizeof err) == 0, "%s: %s", MMPROJ, err);
    test_bad_files();
    test_ctc_head();
    test_fd_leaks();
    if (m) test_width_mismatch(m);
    if (m) test_missing_medium(m);
    if (m && mp) test_bad_media(m, mp);
    loom_mmproj_free(&mp);
    loom_model_free(&m);
    return finish();
}
