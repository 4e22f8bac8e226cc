/* The unified model's vocabulary ranges and media shapes (loom.vocab.*, loom.image.grid,
 * loom.video.*): read from synthetic decoders, and every malformed layout refused. */
#include "include/loom.h"
#include "lib/core/gguf.h"
#include "lib/model.h"
#include "tests/decoder_test_util.h"

#define VOCAB "../models/loom-tiny-vocab.gguf"

/* Write a key-only GGUF with the given u32 keys (NULL-terminated key list, values) and run
 * the validator on it with n_vocab; returns its status, message in e. */
static int validate(const char *path, int32_t n_vocab, const char *const *keys, const uint32_t *vals,
                    loom_media_vocab *v, lm_error *e)
{
    lm_gguf_writer *w = lm_gguf_writer_create();
    for (int i = 0; keys[i]; i++) lm_gguf_set_u32(w, keys[i], vals[i]);
    lm_gguf *g = NULL;
    int rc = write_and_open(&w, path, &g);
    if (rc < 0) return rc;
    memset(v, 0, sizeof *v);
    lm_error_clear(e);
    rc = lm_media_vocab_load(g, n_vocab, v, e);
    lm_gguf_close(&g);
    return rc;
}

static void test_synthetic(void)
{
    char path[256];
    tmp_model_path(path, sizeof path, "mvocab");
    lm_synth_params p = lm_synth_tiny_params();
    p.vocab_from = VOCAB;
    p.image_count = 1024; p.audio_count = 512; p.image_grid = 16;
    p.video_n_frames = 8; p.video_temporal_merge = 2; p.video_gen_frames = 4;
    lm_error e = {0};
    CHECK(lm_synth_write(&p, path, &e) == 0, "write: %s", e.msg);
    char err[512] = "";
    loom_model *m = NULL;
    CHECK(loom_model_load(path, loom_model_default_params(), &m, err, sizeof err) == 0, "load: %s", err);
    if (!m) return;
    loom_media_vocab v;
    CHECK(loom_model_media_vocab(m, &v) == 0, "media vocab");
    CHECK(v.text_end == 1629 && v.control_end == 1642, "text/control %d %d", v.text_end, v.control_end);
    CHECK(v.image_start == 1642 && v.image_count == 1024, "image %d %d", v.image_start, v.image_count);
    CHECK(v.audio_start == 2666 && v.audio_count == 512, "audio %d %d", v.audio_start, v.audio_count);
    CHECK(loom_model_n_vocab(m) == 1642 + 1024 + 512, "n_vocab %d", loom_model_n_vocab(m));
    CHECK(v.image_grid == 16 && v.video_n_frames == 8 && v.video_temporal_merge == 2 && v.video_gen_frames == 4,
          "shape %d %d %d %d", v.image_grid, v.video_n_frames, v.video_temporal_merge, v.video_gen_frames);
    CHECK(loom_token_find(m, "<|image|>") == 1635 && loom_token_bos(m) == 1629, "control tokens come from the vocab");
    for (int k = 0; k < 3; k++) CHECK(loom_model_can_generate(m, k, err, sizeof err) == 0, "kind %d: %s", k, err);
    loom_model_free(&m);

    /* a plain decoder: zeros, and a clear "cannot generate" */
    p = lm_synth_tiny_params();
    CHECK(lm_synth_write(&p, path, &e) == 0, "write plain: %s", e.msg);
    CHECK(loom_model_load(path, loom_model_default_params(), &m, err, sizeof err) == 0, "load plain: %s", err);
    loom_model_media_vocab(m, &v);
    CHECK(v.image_count == 0 && v.audio_count == 0 && v.image_grid == 0 && v.text_end == 0, "plain: zeros");
    CHECK(loom_model_can_generate(m, LOOM_MEDIA_IMAGE, err, sizeof err) == LOOM_ERR_UNSUPPORTED &&
          strstr(err, "loom.vocab.image_start"), "plain image: %s", err);
    CHECK(loom_model_can_generate(m, LOOM_MEDIA_AUDIO, err, sizeof err) == LOOM_ERR_UNSUPPORTED &&
          strstr(err, "audio"), "plain audio: %s", err);
    CHECK(loom_model_can_generate(m, 7, err, sizeof err) == LOOM_ERR_INVALID_ARG, "bad kind: %s", err);
    loom_model_free(&m);

    /* ranges but no grid: images unsupported, audio fine; no gen_frames: video unsupported */
    p.vocab_from = VOCAB;
    p.image_count = 64; p.audio_count = 64;
    CHECK(lm_synth_write(&p, path, &e) == 0, "write no grid: %s", e.msg);
    CHECK(loom_model_load(path, loom_model_default_params(), &m, err, sizeof err) == 0, "load no grid: %s", err);
    CHECK(loom_model_can_generate(m, LOOM_MEDIA_IMAGE, err, sizeof err) == LOOM_ERR_UNSUPPORTED &&
          strstr(err, "loom.image.grid"), "no grid: %s", err);
    CHECK(loom_model_can_generate(m, LOOM_MEDIA_VIDEO, err, sizeof err) == LOOM_ERR_UNSUPPORTED, "no video: %s", err);
    CHECK(loom_model_can_generate(m, LOOM_MEDIA_AUDIO, err, sizeof err) == 0, "audio: %s", err);
    loom_model_free(&m);

    /* a half pair is a malformed file */
    CHECK(lm_synth_write_broken(&p, path, "loom.vocab.image_count", NULL, NULL, &e) == 0, "write broken: %s", e.msg);
    CHECK(loom_model_load(path, loom_model_default_params(), &m, err, sizeof err) == LOOM_ERR_FORMAT &&
          strstr(err, "loom.vocab.image_start without loom.vocab.image_count"), "half pair: %s", err);
    unlink(path);
}

static void test_validator(void)
{
    char path[256];
    tmp_model_path(path, sizeof path, "mvkeys");
    loom_media_vocab v;
    lm_error e;
    const char *k4[] = {"loom.vocab.text_end", "loom.vocab.control_end", "loom.vocab.image_start",
                        "loom.vocab.image_count", "loom.vocab.audio_start", "loom.vocab.audio_count", NULL};
    const uint32_t ok[] = {100, 110, 110, 50, 160, 40};
    CHECK(validate(path, 200, k4, ok, &v, &e) == 0 && v.audio_start == 160, "good layout: %s", e.msg);
    CHECK(validate(path, 199, k4, ok, &v, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "exceeds the 199-token"),
          "audio past n_vocab: %s", e.msg);
    const uint32_t overlap[] = {100, 110, 105, 50, 160, 40};
    CHECK(validate(path, 200, k4, overlap, &v, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "overlaps"),
          "image over control: %s", e.msg);
    const uint32_t overlap2[] = {100, 110, 110, 60, 160, 40};
    CHECK(validate(path, 200, k4, overlap2, &v, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "image range"),
          "image over audio: %s", e.msg);
    const uint32_t zero[] = {100, 110, 110, 0, 160, 40};
    CHECK(validate(path, 200, k4, zero, &v, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "image_count is 0"),
          "zero count: %s", e.msg);
    const uint32_t backwards[] = {120, 110, 120, 40, 160, 40};
    CHECK(validate(path, 200, k4, backwards, &v, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "control_end"),
          "control_end < text_end: %s", e.msg);
    const char *kg[] = {"loom.image.grid", NULL};
    const uint32_t g0[] = {0};
    CHECK(validate(path, 200, kg, g0, &v, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "loom.image.grid"), "grid 0: %s", e.msg);
    const char *kv[] = {"loom.video.n_frames", "loom.video.temporal_merge", NULL};
    const uint32_t vf[] = {7, 2};
    CHECK(validate(path, 200, kv, vf, &v, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "multiple"), "7 frames by 2: %s", e.msg);
    unlink(path);
}

int main(void)
{
    test_synthetic();
    test_validator();
    return finish();
}
