/* Audio encoder parity with the PyTorch reference (tools/loompy/audio.py): random weights
 * in tests/data/audio/encoder/encoder.gguf (d 64, 4 heads, ff 128, 2 layers, 50 positions,
 * stack 4, projection 96), two inputs (100 frames: full position table; 37 frames: a
 * partial stack). Tolerance: max |loom − torch| ≤ 1e-4 · max|torch| (F32). Also: the
 * reference kernels give the same result, bad inputs are refused, a broken file is named. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio.h"
#include "audio/audio_encoder.h"
#include "audio/mel.h"
#include "lib/core/kernels.h"
#include "tests/check.h"
#include "tests/read_file.h"

static double rel_err(const float *a, const float *b, int64_t n)
{
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / (mb > 0 ? mb : 1);
}

static void run_case(lm_audio_encoder *e, int64_t T, lm_pool *pool)
{
    const lm_audio_hparams *hp = lm_audio_encoder_hparams(e);
    char path[128];
    snprintf(path, sizeof path, "data/audio/encoder/mel_%lld.f32", (long long)T);
    float *mel = read_f32(path, hp->n_mel * T);
    const int64_t n_tok = lm_audio_encoder_n_tokens(e, T);
    snprintf(path, sizeof path, "data/audio/encoder/out_%lld.f32", (long long)T);
    float *want = read_f32(path, n_tok * hp->d_proj);
    CHECK(mel && want, "fixtures for T=%lld missing or wrong size (n_tok %lld)", (long long)T, (long long)n_tok);
    float *got = malloc((size_t)(n_tok * hp->d_proj) * sizeof *got);
    lm_error err = {0};
    for (int ref = 0; mel && want && ref < 2; ref++) {
        lm_kernels_force_ref(ref);
        int rc = lm_audio_encoder_encode(e, mel, T, got, pool, &err);
        double r = rc == 0 ? rel_err(got, want, n_tok * hp->d_proj) : INFINITY;
        CHECK(rc == 0 && r <= 1e-4, "T=%lld %s kernels: rc %d rel err %.3g %s", (long long)T, ref ? "reference" : "fast",
              rc, r, err.msg);
        printf("T=%-4lld %2lld tokens, %s kernels: max |loom - torch| / max|torch| = %.2e\n", (long long)T,
               (long long)n_tok, ref ? "reference" : "fast", r);
    }
    lm_kernels_force_ref(0);
    free(got);
    free(mel);
    free(want);
}


/* Rewrite the F32 fixture with vectors/conv/positions as `vec_type` and the weight
 * matrices as `mat_type`, so the loader's conversion and typed-matmul paths run. */
static int write_converted(const lm_gguf *src, const lm_audio_hparams *hp, const char *path, int vec_type,
                           int mat_type, lm_error *err)
{
    lm_gguf_writer *w = lm_gguf_writer_create();
    if (!w) return LOOM_ERR_NO_MEMORY;
    lm_gguf_set_u32(w, "clip.audio.num_mel_bins", (uint32_t)hp->n_mel);
    lm_gguf_set_u32(w, "clip.audio.embedding_length", (uint32_t)hp->d);
    lm_gguf_set_u32(w, "clip.audio.feed_forward_length", (uint32_t)hp->n_ff);
    lm_gguf_set_u32(w, "clip.audio.block_count", (uint32_t)hp->n_layer);
    lm_gguf_set_u32(w, "clip.audio.attention.head_count", (uint32_t)hp->n_head);
    lm_gguf_set_f32(w, "clip.audio.attention.layer_norm_epsilon", hp->eps);
    lm_gguf_set_u32(w, "clip.audio.projector.stack_factor", (uint32_t)hp->stack);
    lm_gguf_set_u32(w, "clip.audio.projection_dim", (uint32_t)hp->d_proj);
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < lm_gguf_n_tensors(src); i++) {
        const lm_gguf_tensor *t = lm_gguf_tensor_at(src, i);
        int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        int is_mat = t->n_dims == 2 && strcmp(t->name, "a.position_embd.weight") != 0;
        int type = is_mat ? mat_type : vec_type;
        void *buf = malloc(lm_row_bytes(type, t->ne[0]) * (size_t)(n / t->ne[0]));
        if (!buf) { rc = LOOM_ERR_NO_MEMORY; break; }
        for (int64_t r = 0; r < n / t->ne[0]; r++)
            lm_row_from_f32(type, (const float *)t->data + r * t->ne[0],
                            (char *)buf + (size_t)r * lm_row_bytes(type, t->ne[0]), t->ne[0]);
        rc = lm_gguf_add_tensor(w, t->name, type, t->n_dims, t->ne, buf);
        free(buf);
    }
    if (rc == 0) rc = lm_gguf_write(w, path, err);
    lm_gguf_writer_free(&w);
    return rc;
}

/* Typed weights: same outputs within the precision of the type. */
static void test_types(const lm_gguf *src, const lm_audio_hparams *hp)
{
    static const struct { int vec, mat; double tol; const char *what; } cases[] = {
        {LOOM_TYPE_F16, LOOM_TYPE_F16, 5e-3, "f16 everywhere"},
        {LOOM_TYPE_BF16, LOOM_TYPE_Q8_0, 5e-2, "bf16 vectors, q8_0 matrices"},
    };
    const int64_t T = 100, n_tok = 13;
    float *mel = read_f32("data/audio/encoder/mel_100.f32", hp->n_mel * T);
    float *want = read_f32("data/audio/encoder/out_100.f32", n_tok * hp->d_proj);
    float *got = malloc((size_t)(n_tok * hp->d_proj) * sizeof *got);
    for (size_t c = 0; mel && want && c < sizeof cases / sizeof cases[0]; c++) {
        char path[] = "/tmp/loom_audio_enc_XXXXXX";
        int fd = mkstemp(path);
        if (fd >= 0) close(fd);
        lm_error err = {0};
        lm_gguf *g = NULL;
        lm_audio_encoder *e = NULL;
        int rc = write_converted(src, hp, path, cases[c].vec, cases[c].mat, &err);
        if (rc == 0) rc = lm_gguf_open(path, &g, &err);
        if (rc == 0) rc = lm_audio_encoder_load(g, &e, &err);
        if (rc == 0) rc = lm_audio_encoder_encode(e, mel, T, got, NULL, &err);
        double r = rc == 0 ? rel_err(got, want, n_tok * hp->d_proj) : INFINITY;
        CHECK(rc == 0 && r <= cases[c].tol, "%s: rc %d rel err %.3g (tol %.g) %s", cases[c].what, rc, r, cases[c].tol, err.msg);
        printf("%-28s max |loom - torch(f32)| / max|torch| = %.2e (tol %.0e)\n", cases[c].what, r, cases[c].tol);
        lm_audio_encoder_free(&e);
        lm_gguf_close(&g);
        unlink(path);
    }
    free(got);
    free(mel);
    free(want);
}

/* The whole front end: a speech WAV → 16 kHz mono → log-mel → the first 100 frames →
 * encoder; the output has the right size and is finite and not constant. */
static void test_chain(lm_audio_encoder *e)
{
    float *pcm = NULL;
    int64_t n = 0;
    lm_error err = {0};
    int rc = lm_audio_read_all("data/audio/mel/speech.wav", NULL, 0, &pcm, &n, &err);
    const int64_t nf = lm_mel_n_frames(n), T = 100;
    lm_mel *m = NULL;
    if (rc == 0) rc = lm_mel_create(80, 1, &m, &err);
    float *mel = malloc((size_t)(80 * (nf > T ? nf : T)) * sizeof *mel), *win = malloc(80 * T * sizeof *win);
    float out[13 * 96];
    if (rc == 0) rc = nf >= T ? lm_mel_compute(m, pcm, n, mel, NULL, &err) : lm_fail(&err, -1, "speech too short");
    if (rc == 0) {
        for (int b = 0; b < 80; b++) memcpy(win + b * T, mel + b * nf, T * sizeof *win);
        rc = lm_audio_encoder_encode(e, win, T, out, NULL, &err);
    }
    int finite = 1;
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; rc == 0 && i < 13 * 96; i++) {
        finite &= isfinite(out[i]);
        lo = fminf(lo, out[i]);
        hi = fmaxf(hi, out[i]);
    }
    CHECK(rc == 0 && finite && hi - lo > 0.1f, "wav -> mel -> encoder: rc %d finite %d range %g %s", rc, finite, hi - lo, err.msg);
    lm_mel_free(&m);
    free(mel);
    free(win);
    free(pcm);
}

int main(void)
{
    lm_gguf *g = NULL;
    lm_error err = {0};
    int rc = lm_gguf_open("data/audio/encoder/encoder.gguf", &g, &err);
    CHECK(rc == 0, "open: %s", err.msg);
    lm_audio_encoder *e = NULL;
    if (rc == 0) rc = lm_audio_encoder_load(g, &e, &err);
    CHECK(rc == 0, "load: %s", err.msg);
    if (e) {
        const lm_audio_hparams *hp = lm_audio_encoder_hparams(e);
        CHECK(hp->n_mel == 80 && hp->d == 64 && hp->n_head == 4 && hp->n_ff == 128 && hp->n_layer == 2 &&
              hp->n_pos == 50 && hp->stack == 4 && hp->d_proj == 96 && fabsf(hp->eps - 1e-5f) < 1e-9f,
              "hparams %d %d %d %d %d %d %d %d", hp->n_mel, hp->d, hp->n_head, hp->n_ff, hp->n_layer, hp->n_pos,
              hp->stack, hp->d_proj);
        CHECK(lm_audio_encoder_n_tokens(e, 100) == 13 && lm_audio_encoder_n_tokens(e, 37) == 5 &&
              lm_audio_encoder_n_tokens(e, 1) == 1 && lm_audio_encoder_max_frames(e) == 100, "token counts");
        lm_pool *pool = lm_pool_create(2);
        run_case(e, 100, NULL);
        run_case(e, 37, pool);
        float dummy[96 * 2];
        CHECK(lm_audio_encoder_encode(e, dummy, 101, dummy, NULL, &err) == LOOM_ERR_LIMIT &&
              strstr(err.msg, "101 mel frames"), "too long accepted: %s", err.msg);
        CHECK(lm_audio_encoder_encode(e, dummy, 0, dummy, NULL, &err) == LOOM_ERR_LIMIT, "0 frames accepted");
        lm_pool_free(&pool);
        test_types(g, hp);
        test_chain(e);
    }
    lm_audio_encoder_free(&e);
    CHECK(e == NULL, "free sets NULL");
    lm_audio_encoder_free(&e);
    lm_gguf_close(&g);

    /* A file missing a tensor: the error names it. Rewrite the fixture with one tensor
     * renamed (same length, so offsets stay valid). */
    FILE *f = fopen("data/audio/encoder/encoder.gguf", "rb");
    static unsigned char buf[1 << 20];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    const char *needle = "a.blk.1.ffn_up.weight";
    for (size_t i = 0; n > 21 && i < n - 21; i++)
        if (!memcmp(buf + i, needle, 21)) { buf[i + 8] = 'X'; break; }
    rc = lm_gguf_open_memory(buf, n, &g, &err);
    if (rc == 0) rc = lm_audio_encoder_load(g, &e, &err);
    CHECK(rc == LOOM_ERR_NOT_FOUND && e == NULL && strstr(err.msg, "a.blk.1.ffn_up.weight"), "renamed tensor: rc %d %s",
          rc, err.msg);
    lm_gguf_close(&g);
    return finish();
}
