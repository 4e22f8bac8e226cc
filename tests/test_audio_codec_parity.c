/*
 * Audio codec vs PyTorch (tools/loompy/audiocodec.py) on random weights:
 * data/audio_codec/tiny_ac.gguf, ac_io.gguf (tools/parity/make_vq_fixtures.py) and
 * ac_extra.gguf (tools/parity/make_ac_extra_fixtures.py).
 *
 * Tolerances:
 *   decoder log-mel x:        max abs <= fixture.tol_dec_out (1e-4)
 *   magnitude A (NNLS, f64):  max abs <= 1e-4 · max A  (float32 10^x and sqrt, then 20 float64
 *                             multiplicative updates that contract differences)
 *   iSTFT of A (0 GL iters):  max abs <= 1e-4 · peak  (same frames count: T·hop samples)
 *   1 GL iteration:           max abs <= 1e-3 · peak (also gl_upsample 2 with 2 iterations)
 *   full Griffin-Lim (8 it.): the phase-retrieval iteration amplifies float32 rounding
 *                             differences (FFT libraries differ), so sample-wise closeness is
 *                             not the goal; we require (a) max abs <= 1e-3 (the fixture
 *                             suggests 1e-2; we measure ~1e-6 on AVX2/AVX-512, the margin
 *                             covers other FFT code paths)
 *                             and (b) the spectral convergence ‖|STFT(y)| − A‖/‖A‖ of the C
 *                             output within 2 % (relative) of PyTorch's own output's.
 *   encoder: log-mel <= 1e-4, z <= 1e-4, codes identical (gaps in the fixture are >= 6e-3).
 */
#include "tests/codec_test_util.h"

#include "audio/audio_codec.h"
#include "audio/audio_codec_dsp.h"
#include "include/loom.h"
#include "audio/rfft.h"
#include "lib/core/kernels.h"

#define MODEL "data/audio_codec/tiny_ac.gguf"

static float peak_of(const float *x, int64_t n)
{
    float p = 0.0f;
    for (int64_t i = 0; i < n; i++) p = fmaxf(p, fabsf(x[i]));
    return p;
}

/* Spectral convergence ‖s·|STFT(y)| − A‖ / ‖A‖ with the best scale s (the vocoder peak-
 * normalises its output, so the raw scale is arbitrary). Direct float64 DFT, independent of
 * the codec's FFT: slow but tiny (48 frames × 201 bins × 400). */
static double spectral_convergence(const float *y, int64_t n_y, const float *A, int T, int hop, int N)
{
    const int B = N / 2 + 1, half = N / 2;
    const int64_t L = (int64_t)(T - 1) * hop;   /* the signal Griffin-Lim produced (before padding) */
    (void)n_y;
    double *Y = malloc(sizeof(double) * B * T), yy = 0.0, ya = 0.0, num = 0.0, den = 0.0;
    if (!Y) return INFINITY;
    for (int t = 0; t < T; t++)
        for (int k = 0; k < B; k++) {
            double re = 0.0, im = 0.0;
            for (int n = 0; n < N; n++) {
                int64_t j = (int64_t)t * hop + n - half;
                if (j < 0) j = -j;
                else if (j >= L) j = 2 * (L - 1) - j;
                const double w = 0.5 - 0.5 * cos(2.0 * M_PI * n / N);
                re += y[j] * w * cos(2.0 * M_PI * k * n / N);
                im -= y[j] * w * sin(2.0 * M_PI * k * n / N);
            }
            const double a = A[(size_t)k * T + t], m = sqrt(re * re + im * im);
            Y[(size_t)k * T + t] = m;
            yy += m * m;
            ya += m * a;
            den += a * a;
        }
    const double s = yy > 0.0 ? ya / yy : 0.0;
    for (int64_t i = 0; i < (int64_t)B * T; i++) {
        const double d = s * Y[i] - A[i];
        num += d * d;
    }
    free(Y);
    return sqrt(num / den);
}

/* The AVX-512 batches (16 frames per vector) against the scalar plan, windowed, for batch
 * counts below, at and above one vector: bit-identical. */
static void test_rfft_many(lm_rfft *p, int n)
{
    if (!lm_cpu_caps_get()->avx512f) return;
    const int F = 19, xs = n + 3, Xs = n + 5;   /* strides wider than a frame */
    float *x = xmalloc(sizeof(float) * F * xs), *win = xmalloc(sizeof(float) * n);
    float *X = xmalloc(sizeof(float) * F * Xs), *R = xmalloc(sizeof(float) * (n + 2));
    float *y = xmalloc(sizeof(float) * F * xs), *yr = xmalloc(sizeof(float) * n), *buf = xmalloc(sizeof(float) * n);
    for (int i = 0; i < F * xs; i++) x[i] = sinf(0.13f * i * i) - 0.5f * cosf(0.9f * i);
    for (int i = 0; i < n; i++) win[i] = 0.5f - 0.5f * cosf(6.2831853f * i / n);
    static const int counts[] = {1, 16, 19};
    for (int c = 0; c < 3; c++) {
        const int cnt = counts[c];
        lm_rfft_forward_many_avx512(p, cnt, x, xs, win, X, Xs);
        int bad = 0;
        for (int f = 0; f < cnt; f++) {
            for (int i = 0; i < n; i++) buf[i] = x[f * xs + i] * win[i];
            lm_rfft_forward(p, buf, R);
            bad += memcmp(R, X + f * Xs, sizeof(float) * (n + 2)) != 0;
        }
        CHECK(bad == 0, "rfft %d: %d of %d lane-batched forward transforms differ from the scalar one", n, bad, cnt);
        lm_rfft_inverse_many_avx512(p, cnt, X, Xs, win, y, xs);
        bad = 0;
        for (int f = 0; f < cnt; f++) {
            lm_rfft_inverse(p, X + f * Xs, yr);
            for (int i = 0; i < n; i++) yr[i] *= win[i];
            bad += memcmp(yr, y + f * xs, sizeof(float) * n) != 0;
        }
        CHECK(bad == 0, "rfft %d: %d of %d lane-batched inverse transforms differ from the scalar one", n, bad, cnt);
    }
    free(x), free(win), free(X), free(R), free(y), free(yr), free(buf);
}

/* The codec's FFT vs a direct float64 DFT, sizes covering every butterfly (2, 3, 4, 5, direct):
 * |fast − ref| <= 2e-6 · n · max|x| (float rounding grows like log n; the bound is loose). */
static void test_rfft(void)
{
    static const int sizes[] = {2, 4, 6, 10, 14, 30, 64, 134, 400, 512, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int n = sizes[s];
        lm_rfft *p = lm_rfft_create(n);
        CHECK(p != NULL, "rfft plan %d", n);
        if (!p) continue;
        float *x = xmalloc(sizeof(float) * n), *X = xmalloc(sizeof(float) * (n + 2)), *R = xmalloc(sizeof(float) * (n + 2));
        float *y = xmalloc(sizeof(float) * n), *yr = xmalloc(sizeof(float) * n);
        for (int i = 0; i < n; i++) x[i] = sinf(0.37f * i * i) + 0.25f * cosf(1.7f * i);
        lm_rfft_forward(p, x, X);
        lm_rfft_forward_ref(n, x, R);
        const float tol = 2e-6f * n * 1.25f + 1e-6f;
        CHECK(max_abs_diff(X, R, n + 2) <= tol, "rfft %d forward differs by %g", n, max_abs_diff(X, R, n + 2));
        X[1] = 3.0f;       /* imaginary parts of DC and Nyquist must be ignored */
        X[n + 1] = -2.0f;
        memcpy(R, X, sizeof(float) * (n + 2));
        lm_rfft_inverse(p, X, y);
        lm_rfft_inverse_ref(n, R, yr);
        CHECK(max_abs_diff(y, yr, n) <= tol / n + 1e-6f && max_abs_diff(y, x, n) <= 1e-5f,
              "rfft %d inverse differs by %g (round trip %g)", n, max_abs_diff(y, yr, n), max_abs_diff(y, x, n));
        CHECK(X[1] == 3.0f && X[n + 1] == -2.0f, "rfft %d inverse modified its input", n);
        free(x), free(X), free(R), free(y), free(yr);
        test_rfft_many(p, n);
        lm_rfft_free(&p);
    }
    CHECK(lm_rfft_create(7) == NULL && lm_rfft_create(0) == NULL, "odd / zero FFT sizes accepted");
}

/* The vocoder's AVX-512 inner loops against their portable bodies: bit-identical, including
 * |T| = 0 bins and a tail shorter than one vector. */
static void test_vocoder_loops(void)
{
    if (!lm_cpu_caps_get()->avx512f) return;
    const int64_t n = 203;
    float *C = xmalloc(sizeof(float) * 2 * n), *At = xmalloc(sizeof(float) * n);
    float *p1 = xmalloc(sizeof(float) * 2 * n), *p2 = xmalloc(sizeof(float) * 2 * n);
    float *X1 = xmalloc(sizeof(float) * 2 * n), *X2 = xmalloc(sizeof(float) * 2 * n);
    for (int64_t i = 0; i < 2 * n; i++) {
        C[i] = sinf(0.77f * i * i);
        p1[i] = p2[i] = i % 11 == 3 ? C[i] * 1.99f / 0.99f : cosf(1.3f * i);   /* some T = 0 */
    }
    for (int64_t i = 0; i < n; i++) At[i] = 0.5f + fabsf(sinf(0.3f * i));
    C[10] = C[11] = p1[10] = p1[11] = p2[10] = p2[11] = 0.0f;   /* bin 5: T = 0 exactly */
    lm_ac_gl_update_body(X1, p1, C, At, 0.99f, n);
    lm_ac_gl_update_avx512(X2, p2, C, At, 0.99f, n);
    CHECK(!memcmp(X1, X2, sizeof(float) * 2 * n) && !memcmp(p1, p2, sizeof(float) * 2 * n),
          "Griffin-Lim update: AVX-512 differs from the portable loop");
    CHECK(X2[10] == At[5] && X2[11] == 0.0f, "Griffin-Lim update: |T| = 0 gives (%g, %g), want (%g, 0)", X2[10],
          X2[11], At[5]);
    const int B = 9;
    const int64_t T = 37;
    double *S1 = xmalloc(sizeof(double) * B * T), *S2 = xmalloc(sizeof(double) * B * T);
    double *tmp = xmalloc(sizeof(double) * B * T), *mtp = xmalloc(sizeof(double) * B * T);
    double *mtm = xmalloc(sizeof(double) * B * B);
    int band[2 * 9];
    for (int k = 0; k < B; k++) {
        band[2 * k] = k > 0 ? k - 1 : 0;
        band[2 * k + 1] = k + 2 < B ? k + 2 : B;
        for (int j = 0; j < B; j++) mtm[k * B + j] = j >= band[2 * k] && j < band[2 * k + 1] ? 1.0 / (1 + k + j) : 0.0;
    }
    for (int64_t i = 0; i < B * T; i++) {
        S1[i] = S2[i] = 1.0 + sin(0.1 * (double)i);
        mtp[i] = 1.5 + cos(0.21 * (double)i);
    }
    for (int it = 0; it < 3; it++) {
        lm_ac_nnls_iter_body(S1, tmp, mtp, mtm, band, B, T);
        lm_ac_nnls_iter_avx512(S2, tmp, mtp, mtm, band, B, T);
    }
    CHECK(!memcmp(S1, S2, sizeof(double) * B * T), "NNLS step: AVX-512 build differs from the portable one");
    free(C), free(At), free(p1), free(p2), free(X1), free(X2), free(S1), free(S2), free(tmp), free(mtp), free(mtm);
}

static void test_dilated_conv(void)
{
    /* the kernel extension this codec needs: dilated conv1d vs its reference */
    const int Ci = 5, Co = 3, L = 23, K = 3;
    float x[5 * 23], w[3 * 5 * 3], b[3], y[3 * 23], r[3 * 23], col[5 * 3 * 23];
    for (int i = 0; i < Ci * L; i++) x[i] = sinf(0.7f * i);
    for (int i = 0; i < Co * Ci * K; i++) w[i] = cosf(1.3f * i);
    for (int i = 0; i < Co; i++) b[i] = 0.1f * i;
    for (int d = 1; d <= 9; d += 4) {
        lm_conv1d_dilated(y, x, w, b, Ci, L, Co, K, 1, d, d, col, NULL);
        lm_conv1d_dilated_ref(r, x, w, b, Ci, L, Co, K, 1, d, d);
        CHECK(max_abs_diff(y, r, Co * L) <= 1e-4f, "dilated conv d=%d differs by %g", d, max_abs_diff(y, r, Co * L));
    }
}

int main(void)
{
    lm_audio_codec *ac = NULL;
    lm_gguf *io = NULL, *ex = NULL;
    lm_error e = {0};
    if (lm_audio_codec_open(MODEL, &ac, &e) < 0 || lm_gguf_open("data/audio_codec/ac_io.gguf", &io, &e) < 0 ||
        lm_gguf_open("data/audio_codec/ac_extra.gguf", &ex, &e) < 0) {
        printf("FAIL: %s\n0 passed, 1 failed\n", e.msg);
        lm_audio_codec_free(&ac);
        lm_gguf_close(&io);
        return 1;
    }
    test_dilated_conv();
    test_vocoder_loops();
    test_rfft();
    const lm_audio_codec_info in = lm_audio_codec_get_info(ac);
    CHECK(in.sample_rate == 16000 && in.hop == 160 && in.n_mels == 80 && in.frames_per_code == 4 &&
              in.codebook_size == 64 && in.gl_iters == 8 && fabsf(in.codes_per_second - 25.0f) < 1e-6f,
          "info mismatch");
    lm_pool *pool = lm_pool_create(2);
    const int n = 12, T = n * 4, Mels = 80, B = 201, n_pcm = T * 160;
    const float *codes_f = fixture(io, "codes_in", n), *dec = fixture(io, "dec_out", Mels * T);
    const float *wav = fixture(io, "wav_out", n_pcm), *mag_ref = fixture(ex, "mag", B * T);
    const float *gl0 = fixture(ex, "wav_gl0", n_pcm), *gl1 = fixture(ex, "wav_gl1", n_pcm);
    if (codes_f && dec && wav && mag_ref && gl0 && gl1) {
        int32_t codes[12];
        for (int i = 0; i < n; i++) codes[i] = (int32_t)codes_f[i];
        float *x = xmalloc(sizeof(float) * Mels * T), *pcm = xmalloc(sizeof(float) * n_pcm);
        float *mag = xmalloc(sizeof(float) * B * T);
        const float tol_x = fixture_f32(io, "fixture.tol_dec_out", 1e-4f), tol_w = fixture_f32(io, "fixture.tol_wav", 1e-2f);

        CHECK(lm_audio_codec_decode_mel(ac, codes, n, x, pool, &e) == 0, "decode_mel: %s", e.msg);
        float d = max_abs_diff(x, dec, Mels * T);
        printf("decoder log-mel: max |dx| = %.3g (tol %.3g)\n", d, tol_x);
        CHECK(d <= tol_x, "decoder output differs by %g", d);

        /* vocoder stages on PyTorch's own decoder output */
        CHECK(lm_audio_codec_vocode(ac, dec, T, 0, pcm, mag, pool, &e) == 0, "vocode 0: %s", e.msg);
        const float amax = peak_of(mag_ref, B * T), pk = peak_of(gl0, n_pcm);
        d = max_abs_diff(mag, mag_ref, B * T);
        printf("NNLS magnitude: max |dA| = %.3g (max A %.3g)\n", d, amax);
        CHECK(d <= 1e-4f * amax, "magnitude differs by %g", d);
        d = max_abs_diff(pcm, gl0, n_pcm);
        printf("iSTFT, 0 iterations: max |dy| = %.3g (peak %.3g)\n", d, pk);
        CHECK(d <= 1e-4f * pk, "0-iteration waveform differs by %g", d);
        CHECK(lm_audio_codec_vocode(ac, dec, T, 1, pcm, NULL, pool, &e) == 0, "vocode 1: %s", e.msg);
        d = max_abs_diff(pcm, gl1, n_pcm);
        printf("1 Griffin-Lim iteration: max |dy| = %.3g\n", d);
        CHECK(d <= 1e-3f * peak_of(gl1, n_pcm), "1-iteration waveform differs by %g", d);

        /* the whole path from codes, file's 8 iterations */
        CHECK(lm_audio_codec_decode(ac, codes, n, pcm, pool, &e) == 0, "decode: %s", e.msg);
        d = max_abs_diff(pcm, wav, n_pcm);
        const double sc_c = spectral_convergence(pcm, n_pcm, mag_ref, T, 160, 400);
        const double sc_t = spectral_convergence(wav, n_pcm, mag_ref, T, 160, 400);
        printf("codes -> PCM (%d samples, %d GL iterations): max |dy| = %.3g (tol 1e-3, fixture %.3g); spectral convergence "
               "loom %.5f, torch %.5f\n", n_pcm, in.gl_iters, d, tol_w, sc_c, sc_t);
        CHECK(d <= 1e-3f && d <= tol_w, "waveform differs by %g > 1e-3", d);
        CHECK(fabs(sc_c - sc_t) <= 0.02 * sc_t, "spectral convergence %g vs torch %g", sc_c, sc_t);
        /* the portable kernels (kernel set "ref": no AVX-512 FFT batches, NNLS, GL, norms) */
        if (lm_kernels_select("ref") == 0) {
            CHECK(lm_audio_codec_decode(ac, codes, n, pcm, pool, &e) == 0, "decode (ref kernels): %s", e.msg);
            d = max_abs_diff(pcm, wav, n_pcm);
            printf("codes -> PCM, portable kernels: max |dy| = %.3g\n", d);
            CHECK(d <= 1e-3f && d <= tol_w, "waveform (ref kernels) differs by %g > 1e-3", d);
            lm_kernels_select("auto");
        }

        /* the gl_upsample path (magnitude interpolated in time, hop 80), on a copy of the model
         * with loom.ac.gl_upsample = 2, 2 iterations */
        const float *up2 = fixture(ex, "wav_up2", n_pcm);
        char path[128];
        snprintf(path, sizeof path, "/tmp/loom_test_ac_up2_%d.gguf", (int)getpid());
        lm_audio_codec *ac2 = NULL;
        if (up2 && gguf_copy_edited(MODEL, path, &(gguf_edit){.u32_key = "loom.ac.gl_upsample", .u32_val = 2}) == 0 &&
            lm_audio_codec_open(path, &ac2, &e) == 0) {
            CHECK(lm_audio_codec_vocode(ac2, dec, T, 2, pcm, NULL, pool, &e) == 0, "vocode up2: %s", e.msg);
            d = max_abs_diff(pcm, up2, n_pcm);
            printf("gl_upsample 2, 2 iterations: max |dy| = %.3g\n", d);
            CHECK(d <= 1e-3f * peak_of(up2, n_pcm), "gl_upsample 2 waveform differs by %g", d);
        } else {
            CHECK(0, "gl_upsample 2 model: %s", e.msg);
        }
        lm_audio_codec_free(&ac2);
        unlink(path);

        codes[3] = 64;
        CHECK(lm_audio_codec_decode(ac, codes, n, pcm, pool, &e) == LOOM_ERR_INVALID_ARG && strstr(e.msg, "position 3"),
              "bad code: %d '%s'", e.status, e.msg);
        free(x);
        free(pcm);
        free(mag);
    }

    /* encoder half */
    const int n_in = 8000, T_in = n_in / 160 + 1, n_codes = 13;
    const float *wav_in = fixture(ex, "wav_in", n_in), *mel_ref = fixture(ex, "mel_in", Mels * T_in);
    const float *z_ref = fixture(ex, "enc_z", 8 * n_codes), *codes_ref = fixture(ex, "codes_out", n_codes);
    CHECK(lm_audio_codec_n_codes(ac, n_in) == n_codes, "n_codes %lld", (long long)lm_audio_codec_n_codes(ac, n_in));
    if (wav_in && mel_ref && z_ref && codes_ref) {
        float mel[80 * 51], z[8 * 13];
        int32_t codes[13];
        CHECK(lm_audio_codec_encode(ac, wav_in, n_in, codes, mel, z, pool, &e) == 0, "encode: %s", e.msg);
        float dm = max_abs_diff(mel, mel_ref, Mels * T_in), dz = max_abs_diff(z, z_ref, 8 * n_codes);
        int same = 0;
        for (int i = 0; i < n_codes; i++) same += codes[i] == (int32_t)codes_ref[i];
        printf("encoder: log-mel max |d| = %.3g, z max |d| = %.3g, codes %d/%d identical\n", dm, dz, same, n_codes);
        CHECK(dm <= 1e-4f, "log-mel differs by %g", dm);
        CHECK(dz <= 1e-4f, "encoder z differs by %g", dz);
        CHECK(same == n_codes, "%d codes differ", n_codes - same);
        CHECK(lm_audio_codec_encode(ac, wav_in, 200, codes, NULL, NULL, pool, &e) == LOOM_ERR_INVALID_ARG,
              "200 samples accepted");
    }

    /* damaged models */
    char path[128];
    snprintf(path, sizeof path, "/tmp/loom_test_ac_%d.gguf", (int)getpid());
    const struct {
        gguf_edit ed;
        int status;
        const char *what;
    } bad[] = {
        {{.drop_tensor = "ac.dec.res.2.conv1.weight"}, LOOM_ERR_NOT_FOUND, "ac.dec.res.2.conv1.weight"},
        {{.flatten_tensor = "ac.mel_filters"}, LOOM_ERR_TYPE, "ac.mel_filters"},
        {{.extra_tensor = "ac.dec.extra"}, LOOM_ERR_FORMAT, "ac.dec.extra"},
        {{.drop_key = "loom.ac.gl_alpha"}, LOOM_ERR_NOT_FOUND, "loom.ac.gl_alpha"},
        {{.u32_key = "loom.ac.hop", .u32_val = 320}, LOOM_ERR_FORMAT, "codes_per_second"},
        {{.u32_key = "loom.ac.dec_res_blocks", .u32_val = 4}, LOOM_ERR_FORMAT, "dec_dilations"},
        {{.u32_key = "loom.ac.n_fft", .u32_val = 401}, LOOM_ERR_UNSUPPORTED, "loom.ac.n_fft"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (gguf_copy_edited(MODEL, path, &bad[i].ed) != 0) {
            CHECK(0, "could not write %s", path);
            continue;
        }
        lm_audio_codec *b = NULL;
        int rc = lm_audio_codec_open(path, &b, &e);
        CHECK(rc == bad[i].status && !b && strstr(e.msg, bad[i].what), "edit %zu: want %d naming '%s', got %d '%s'", i,
              bad[i].status, bad[i].what, rc, e.msg);
        lm_audio_codec_free(&b);
    }
    unlink(path);

    lm_pool_free(&pool);
    lm_gguf_close(&io);
    lm_gguf_close(&ex);
    lm_audio_codec_free(&ac);
    return finish();
}
