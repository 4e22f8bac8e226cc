/* Log-mel parity: audio/mel.c against the NumPy reference (tools/loompy/mel.py), whose
 * output is committed in tests/data/audio/mel/ for speech, silence, a pure tone and clipped
 * noise. Tolerance 1e-4 absolute on the normalised log-mel (whose values span ~[-1.5, 2]). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "audio/mel.h"
#include "tests/check.h"
#include "tests/read_file.h"

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) d = e;   /* NaN propagates as a failure */
    }
    return d;
}

static void test_fixture(const char *name, int n_mels)
{
    char path[256];
    snprintf(path, sizeof path, "data/audio/mel/%s.wav", name);
    float *pcm = NULL;
    int64_t n = 0;
    lm_error err = {0};
    int rc = lm_audio_read_all(path, NULL, 0, &pcm, &n, &err);
    CHECK(rc == 0, "%s: %s", path, err.msg);
    if (rc) return;
    const int64_t nf = lm_mel_n_frames(n);
    snprintf(path, sizeof path, "data/audio/mel/%s.mel%d.f32", name, n_mels);
    float *want = read_f32(path, nf * n_mels);
    CHECK(want != NULL, "%s: missing or wrong size (want %lld floats)", path, (long long)(nf * n_mels));
    float *got = malloc((size_t)(nf * n_mels) * sizeof *got);
    float *ref = malloc((size_t)(nf * n_mels) * sizeof *ref);
    lm_mel *m = NULL;
    rc = lm_mel_create(n_mels, 1, &m, &err);
    if (rc == 0) rc = lm_mel_compute(m, pcm, n, got, NULL, &err);
    CHECK(rc == 0, "%s: %s", name, err.msg);
    if (want && rc == 0) {
        double d = max_abs_diff(got, want, nf * n_mels);
        CHECK(d <= 1e-4, "%s mel%d: max |loom - numpy| = %.3g > 1e-4", name, n_mels, d);
        printf("%-14s mel%-3d %4lld frames: max |loom - numpy| = %.2e\n", name, n_mels, (long long)nf, d);
        rc = lm_mel_compute_ref(n_mels, pcm, n, ref, &err);
        d = max_abs_diff(ref, want, nf * n_mels);
        CHECK(rc == 0 && d <= 1e-4, "%s mel%d: max |C reference DFT - numpy| = %.3g", name, n_mels, d);
    }
    lm_mel_free(&m);
    free(ref);
    free(got);
    free(want);
    free(pcm);
}

static void test_filters(void)
{
    float *want = read_f32("data/audio/mel/filters80.f32", 80 * LM_MEL_N_BINS);
    lm_mel *m = NULL;
    lm_error err = {0};
    int rc = lm_mel_create(80, 1, &m, &err);
    CHECK(rc == 0 && want, "filters: %s", err.msg);
    if (rc == 0 && want) {
        double d = max_abs_diff(lm_mel_filters(m), want, 80 * LM_MEL_N_BINS);
        CHECK(d <= 1e-7, "Slaney filterbank differs from librosa-style numpy by %.3g", d);
        /* Slaney norm: each triangle's area in Hz is 1, so Σ_k F[m][k]·Δf ≈ 1 (Δf = 40 Hz)
         * for filters wide enough to be sampled well. */
        const float *f = lm_mel_filters(m);
        double s = 0;
        for (int k = 0; k < LM_MEL_N_BINS; k++) s += f[79 * LM_MEL_N_BINS + k] * 40.0;
        CHECK(fabs(s - 1.0) < 0.05, "top filter area %.4f, want ~1", s);
    }
    lm_mel_free(&m);
    free(want);
}

/* Frame count and edge handling on short inputs (reflection wraps more than once); the
 * fast path against the C reference; bad arguments. */
static void test_edges(void)
{
    lm_error err = {0};
    CHECK(lm_mel_n_frames(0) == 0 && lm_mel_n_frames(159) == 0 && lm_mel_n_frames(160) == 1 &&
          lm_mel_n_frames(480000) == 3000, "frame count");
    lm_mel *m = NULL;
    CHECK(lm_mel_create(0, 1, &m, &err) == LOOM_ERR_INVALID_ARG && m == NULL, "0 mels accepted");
    CHECK(lm_mel_create(257, 1, &m, &err) == LOOM_ERR_INVALID_ARG, "257 mels accepted");
    int rc = lm_mel_create(80, 1, &m, &err);
    int64_t lens[] = {160, 161, 350, 1000, 4321};
    for (size_t c = 0; rc == 0 && c < sizeof lens / sizeof lens[0]; c++) {
        int64_t n = lens[c], nf = lm_mel_n_frames(n);
        float *x = malloc((size_t)n * sizeof *x), *a = malloc((size_t)(nf * 80) * sizeof *a),
              *b = malloc((size_t)(nf * 80) * sizeof *b);
        unsigned s = 7;
        for (int64_t i = 0; i < n; i++) {
            s = s * 1103515245u + 12345u;
            x[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
        }
        int r1 = lm_mel_compute(m, x, n, a, NULL, &err), r2 = lm_mel_compute_ref(80, x, n, b, &err);
        double d = max_abs_diff(a, b, nf * 80);
        CHECK(r1 == 0 && r2 == 0 && d <= 1e-4, "n=%lld: fast vs reference %.3g", (long long)n, d);
        free(x);
        free(a);
        free(b);
    }
    /* A 2-thread pool splits the frames; the result is the same bit for bit. */
    lm_pool *pool = lm_pool_create(2);
    {
        const int64_t n = 16000 * 3 + 77, nf = lm_mel_n_frames(n);
        float *x = malloc((size_t)n * sizeof *x), *a = malloc((size_t)(nf * 80) * sizeof *a),
              *b = malloc((size_t)(nf * 80) * sizeof *b);
        for (int64_t i = 0; i < n; i++) x[i] = 0.3f * sinf(0.05f * (float)i) * cosf(0.0007f * (float)i);
        lm_mel *m2 = NULL;
        int r0 = lm_mel_create(80, 2, &m2, &err);
        int r1 = r0 ? r0 : lm_mel_compute(m2, x, n, a, NULL, &err);
        int r2 = r0 ? r0 : lm_mel_compute(m2, x, n, b, pool, &err);
        CHECK(r1 == 0 && r2 == 0 && !memcmp(a, b, (size_t)(nf * 80) * sizeof *a), "pool result differs: %s", err.msg);
        CHECK(lm_pool_size(pool) <= 1 || lm_mel_compute(m, x, n, a, pool, &err) == LOOM_ERR_INVALID_ARG,
              "1-thread plan accepted a %d-thread pool", lm_pool_size(pool));
        lm_mel_free(&m2);
        free(x);
        free(a);
        free(b);
    }
    lm_pool_free(&pool);
    float dummy = 0;
    CHECK(lm_mel_compute(m, &dummy, 100, NULL, NULL, &err) == 0, "n < hop gives no frames, no error");
    CHECK(lm_mel_compute(m, NULL, 1000, &dummy, NULL, &err) == LOOM_ERR_INVALID_ARG, "NULL pcm accepted");
    lm_mel_free(&m);
    lm_mel_free(&m);
}

int main(void)
{
    test_filters();
    test_fixture("speech", 80);
    test_fixture("speech", 128);
    test_fixture("silence", 80);
    test_fixture("tone", 80);
    test_fixture("noise_clipped", 80);
    test_edges();
    return finish();
}
