/* The public audio API (include/loom.h only): load, stream, save, errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loom.h"
#include "tests/check.h"

/* loom_audio_split: a long recording's pieces are its sentences, cut in the pauses. */
static int in_burst(const double (*b)[2], int nb, double t)
{
    for (int i = 0; i < nb; i++)
        if (t >= b[i][0] && t < b[i][1]) return 1;
    return 0;
}

static void test_split(void)
{
    enum { SR = 16000, N = 20 * SR };
    const int64_t win = 5 * SR;
    /* "speech" (a loud tone) in bursts over quiet noise; the fourth is longer than the window
     * and dips for 0.12 s at 12.3 s, too short to be a pause */
    static const double burst[][2] = {{0.5, 2.5}, {3.0, 5.8}, {6.6, 8.0}, {8.6, 12.3}, {12.42, 15.0}, {17.0, 18.0}};
    const int nb = sizeof burst / sizeof burst[0];
    float *x = malloc(N * sizeof *x);
    if (!x) { CHECK(0, "out of memory"); return; }
    srand(7);
    for (int i = 0; i < N; i++)
        x[i] = 0.002f * ((float)rand() / RAND_MAX - 0.5f) + (in_burst(burst, nb, (double)i / SR) ? 0.3f * sinf(i * 0.17f) : 0);
    char err[256];
    loom_audio_span *sp = NULL;
    size_t k = 99;
    int rc = loom_audio_split(x, 4 * SR, SR, win, &sp, &k, err, sizeof err);
    CHECK(rc == 0 && k == 1 && sp && sp[0].start < 4 && sp[0].end > 4 * SR - 4, "fits: one piece, whole (rc %d, %zu)", rc, k);
    loom_audio_spans_free(&sp);
    CHECK(sp == NULL, "spans_free sets NULL");

    rc = loom_audio_split(x, N, SR, win, &sp, &k, err, sizeof err);
    /* one piece per burst, with its margins; the fourth and fifth parted in the dip (together
     * longer than the window) */
    const double (*want)[2] = burst;
    int ok = rc == 0 && k == 6;
    for (size_t i = 0; ok && i < k; i++) {
        const double a = (double)sp[i].start / SR, b = (double)sp[i].end / SR;
        ok = a >= want[i][0] - 0.2 && a <= want[i][0] - 0.03 && b >= want[i][1] + 0.03 && b <= want[i][1] + 0.5 &&
             (i == 0 || sp[i].start >= sp[i - 1].end) && sp[i].end - sp[i].start <= win;
        if (!ok) printf("piece %zu: %.3f-%.3f s, want about %.2f-%.2f\n", i, a, b, want[i][0], want[i][1]);
    }
    CHECK(ok, "pieces at the pauses: rc %d, %zu pieces '%s'", rc, k, err);
    loom_audio_spans_free(&sp);

    /* the same with a window too short for the second burst: cut inside it, each piece fits */
    rc = loom_audio_split(x, N, SR, 2 * SR, &sp, &k, err, sizeof err);
    ok = rc == 0 && k >= 7;
    for (size_t i = 0; ok && i < k; i++) ok = sp[i].end - sp[i].start <= 2 * SR && (i == 0 || sp[i].start >= sp[i - 1].end);
    CHECK(ok, "short window: %zu pieces, each at most the window", k);
    loom_audio_spans_free(&sp);

    for (int i = 0; i < N; i++) x[i] = 0.3f * sinf(i * 0.17f);    /* a steady sound has no pauses */
    rc = loom_audio_split(x, N, SR, win, &sp, &k, err, sizeof err);
    ok = rc == 0 && k >= 4 && sp[0].start == 1 && sp[k - 1].end == N;      /* sin(0): silent */
    for (size_t i = 1; ok && i < k; i++) ok = sp[i].start == sp[i - 1].end && sp[i].end - sp[i].start <= win;
    CHECK(ok, "steady tone: consecutive windows (rc %d, %zu pieces)", rc, k);
    loom_audio_spans_free(&sp);

    /* digital silence at the ends is left out, whatever the length */
    for (int i = 0; i < SR; i++) x[i] = x[N - 1 - i] = 0;
    x[SR / 2] = 1e-5f;                                                /* under one 16-bit step */
    rc = loom_audio_split(x + SR / 2, 3 * SR, SR, win, &sp, &k, err, sizeof err);
    CHECK(rc == 0 && k == 1 && sp[0].start == SR / 2 && sp[0].end == 3 * SR, "fits after its silence: [%lld, %lld)",
          k ? (long long)sp[0].start : -1LL, k ? (long long)sp[0].end : -1LL);
    loom_audio_spans_free(&sp);
    rc = loom_audio_split(x, N, SR, win, &sp, &k, err, sizeof err);
    CHECK(rc == 0 && k >= 4 && sp[0].start == SR && sp[k - 1].end == N - SR, "long, silent ends: [%lld, %lld)",
          k ? (long long)sp[0].start : -1LL, k ? (long long)sp[k - 1].end : -1LL);
    loom_audio_spans_free(&sp);
    rc = loom_audio_split(x, SR, SR, win, &sp, &k, err, sizeof err);
    CHECK(rc == 0 && k == 0 && sp == NULL, "digital silence only: no pieces (%zu)", k);
    loom_audio_spans_free(&sp);

    for (int i = 0; i < N; i += 997) x[i] = i % 2 ? NAN : INFINITY;   /* bad samples: still sane pieces */
    rc = loom_audio_split(x, N, SR, win, &sp, &k, err, sizeof err);
    ok = rc == 0 && k >= 1;
    for (size_t i = 0; ok && i < k; i++)
        ok = sp[i].end > sp[i].start && sp[i].end <= N && sp[i].end - sp[i].start <= win && (i == 0 || sp[i].start >= sp[i - 1].end);
    CHECK(ok, "NaN and inf samples: %zu pieces within the recording", k);
    loom_audio_spans_free(&sp);

    rc = loom_audio_split(NULL, N, SR, win, &sp, &k, err, sizeof err);
    CHECK(rc == LOOM_ERR_INVALID_ARG && sp == NULL && k == 0 && strstr(err, "audio split"), "no samples: '%s'", err);
    CHECK(loom_audio_split(x, 0, SR, win, &sp, &k, err, sizeof err) == LOOM_ERR_INVALID_ARG, "empty");
    CHECK(loom_audio_split(x, N, SR, 0, &sp, &k, err, sizeof err) == LOOM_ERR_INVALID_ARG, "no window");
    CHECK(loom_audio_split(x, N, 50, win, &sp, &k, err, sizeof err) == LOOM_ERR_INVALID_ARG, "50 Hz");
    CHECK(loom_audio_split(x, N, SR, win, NULL, &k, err, sizeof err) == LOOM_ERR_INVALID_ARG, "nowhere to put them");
    free(x);
}

static void test_normalize(void)
{
    float x[6] = {0.1f, -0.35f, NAN, 0.2f, INFINITY, 0};
    const float g = loom_audio_normalize(x, 6, 0.7f);
    CHECK(fabsf(g - 2.0f) < 1e-6f && fabsf(x[1] + 0.7f) < 1e-6f && fabsf(x[0] - 0.2f) < 1e-6f && x[5] == 0,
          "peak 0.35 -> 0.7: gain %g", g);
    float quiet[3] = {1e-5f, -2e-5f, 0};
    CHECK(loom_audio_normalize(quiet, 3, 0.7f) == 1.0f && quiet[1] == -2e-5f, "digital silence left as it is");
    CHECK(loom_audio_normalize(x, 6, 0) == 1.0f && loom_audio_normalize(NULL, 6, 0.7f) == 1.0f, "no peak, no samples");
}

int main(void)
{
    char err[256];
    float *pcm = NULL;
    size_t n = 0;
    loom_audio_params ap = loom_audio_default_params();
    CHECK(ap.sample_rate == 16000 && ap.max_seconds == 14400 && ap.max_channels == 32, "defaults");
    int rc = loom_audio_load("data/audio/tone.mp3", &ap, &pcm, &n, err, sizeof err);
    CHECK(rc == 0 && n > 7000 && n < 9300 && err[0] == 0, "load mp3: rc %d n %zu '%s'", rc, n, err);

    /* Streaming gives the same samples. */
    loom_audio_reader *r = NULL;
    rc = loom_audio_reader_open("data/audio/tone.mp3", NULL, &r, err, sizeof err);
    int rate = 0, ch = 0;
    const char *codec = NULL;
    CHECK(rc == 0 && loom_audio_reader_input(r, &rate, &ch, &codec) == 0 && rate == 44100 && ch == 2 &&
          codec && strstr(codec, "mp3"), "reader open: rc %d %d Hz %d ch %s '%s'", rc, rate, ch, codec ? codec : "-", err);
    float buf[500];
    size_t got = 0, pos = 0, diff = 0;
    while (r && loom_audio_reader_read(r, buf, 500, &got) == 0 && got > 0) {
        for (size_t i = 0; i < got; i++) diff += pos + i >= n || buf[i] != pcm[pos + i];
        pos += got;
    }
    CHECK(pos == n && diff == 0 && !strcmp(loom_audio_reader_error(r), ""), "stream: %zu of %zu, %zu differ", pos, n, diff);
    loom_audio_reader_close(&r);
    CHECK(r == NULL, "close sets NULL");

    /* Save, reload. */
    char path[] = "/tmp/loom_api_XXXXXX.wav";
    int fd = mkstemps(path, 4);
    if (fd >= 0) close(fd);
    rc = loom_audio_save_wav(path, pcm, n, 1, 16000, LOOM_WAV_F32, err, sizeof err);
    float *back = NULL;
    size_t nb = 0;
    if (rc == 0) rc = loom_audio_load(path, NULL, &back, &nb, err, sizeof err);
    CHECK(rc == 0 && nb == n && back && !memcmp(back, pcm, n * sizeof *pcm), "save/load f32: rc %d '%s'", rc, err);
    loom_audio_pcm_free(&back);
    CHECK(back == NULL, "pcm_free sets NULL");
    unlink(path);

    /* Errors come back as text naming the file. */
    rc = loom_audio_load("data/audio/does_not_exist.ogg", NULL, &back, &nb, err, sizeof err);
    CHECK(rc == LOOM_ERR_IO && strstr(err, "does_not_exist.ogg") && back == NULL, "missing: rc %d '%s'", rc, err);
    rc = loom_audio_reader_open("CMakeLists.txt", NULL, &r, err, sizeof err);
    CHECK(rc == LOOM_ERR_FORMAT && r == NULL && strstr(err, "CMakeLists.txt"), "text: rc %d '%s'", rc, err);
    rc = loom_audio_save_wav(path, pcm, n, 1, 16000, (loom_wav_format)7, err, sizeof err);
    CHECK(rc == LOOM_ERR_INVALID_ARG && strstr(err, "format"), "bad format: rc %d '%s'", rc, err);
    loom_audio_pcm_free(&pcm);
    loom_audio_pcm_free(NULL);
    test_split();
    test_normalize();
    return finish();
}
