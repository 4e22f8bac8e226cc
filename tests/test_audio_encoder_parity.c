/* Audio encoder parity with the PyTorch reference (tools/loompy/audio.py): random weights
 * in tests/data/audio/encoder/encoder.gguf (d 64, 4 heads, ff 128, 2 layers, 50 positions,
 * stack 4, projection 96), two inputs (100 frames: full position table; 37 frames: a
 * partial stack). Tolerance: max |loom − torch| ≤ 1e-4 · max|torch| (F32). Also: the
 * reference kernels give the same result, bad inputs are refused, a broken file is named. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_encoder.h"
#include "lib/core/kernels.h"

static int n_pass, n_fail;
#define CHECK(cond, ...) do { if (cond) n_pass++; else { n_fail++; \
    printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

static float *read_f32(const char *path, int64_t want)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *x = malloc((size_t)want * sizeof *x + 4);
    size_t got = x ? fread(x, sizeof *x, (size_t)want + 1, f) : 0;
    fclose(f);
    if (got != (size_t)want) { free(x); return NULL; }
    return x;
}

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
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
