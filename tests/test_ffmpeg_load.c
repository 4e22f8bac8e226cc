/* FFmpeg is loaded at first use (lib/core/ffmpeg.h), not at start: picture decoding and the
 * PNG and WAV writers leave it unmapped; the first audio read maps it and decodes right.
 * Then the table itself: every function resolved, and a library that cannot be loaded (or
 * lacks a function) is an error naming it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/core/ffmpeg.h"
#include "loom.h"
#include "tests/check.h"

/* Whether a library whose file name starts with `name` is mapped into this process. */
static int mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        const char *slash = strrchr(line, '/');
        found = slash && !strncmp(slash + 1, name, strlen(name));
    }
    fclose(f);
    return found;
}

static void lazy_load(void)
{
    char err[512];
    CHECK(mapped("libavformat.so") == 0 && mapped("libavcodec.so") == 0 && mapped("libavutil.so") == 0,
          "FFmpeg mapped at start (avformat %d, avcodec %d, avutil %d)", mapped("libavformat.so"),
          mapped("libavcodec.so"), mapped("libavutil.so"));

    /* Pictures in and out, WAV out: no FFmpeg. */
    loom_image img = {0};
    int rc = loom_image_load("data/images/rgb8.png", loom_image_default_params(), &img, err, sizeof err);
    CHECK(rc == 0 && img.width > 0 && img.height > 0, "load png: rc %d '%s'", rc, err);
    char png[] = "/tmp/loom_ffload_XXXXXX.png", wav[] = "/tmp/loom_ffload_XXXXXX.wav";
    int fd = mkstemps(png, 4);
    if (fd >= 0) close(fd);
    fd = mkstemps(wav, 4);
    if (fd >= 0) close(fd);
    rc = loom_image_save_png(&img, png, NULL, err, sizeof err);
    CHECK(rc == 0, "save png: rc %d '%s'", rc, err);
    float tone[1600];
    for (int i = 0; i < 1600; i++) tone[i] = 0.5f * sinf(2 * (float)M_PI * 440 * (float)i / 16000);
    rc = loom_audio_save_wav(wav, tone, 1600, 1, 16000, LOOM_WAV_PCM16, err, sizeof err);
    CHECK(rc == 0, "save wav: rc %d '%s'", rc, err);
    loom_image_free(&img);
    CHECK(mapped("libavformat.so") == 0, "a picture or a WAV/PNG write mapped libavformat");
    unlink(png);

    /* The first audio read loads it, and the samples are right: 0.5 s of 0.5 sin(440 Hz). */
    float *pcm = NULL;
    size_t n = 0;
    rc = loom_audio_load("data/audio/tone_s16.wav", NULL, &pcm, &n, err, sizeof err);
    double ms = 0;
    for (size_t i = 0; pcm && i < n; i++) ms += (double)pcm[i] * pcm[i];
    ms = n ? ms / (double)n : 0;
    CHECK(rc == 0 && n == 8000 && fabs(ms - 0.125) < 0.002, "audio: rc %d, %zu samples (want 8000), mean square %.4f "
          "(want 0.125) '%s'", rc, n, ms, err);
    loom_audio_pcm_free(&pcm);
    CHECK(mapped("libavformat.so") == 1 && mapped("libavcodec.so") == 1 && mapped("libswresample.so") == 1,
          "audio read but FFmpeg not mapped (avformat %d, avcodec %d, swresample %d)", mapped("libavformat.so"),
          mapped("libavcodec.so"), mapped("libswresample.so"));
    /* Our own WAV reads back through FFmpeg: 1600 samples. */
    rc = loom_audio_load(wav, NULL, &pcm, &n, err, sizeof err);
    CHECK(rc == 0 && n == 1600 && pcm && fabsf(pcm[4] - tone[4]) < 1e-4f, "own wav: rc %d n %zu '%s'", rc, n, err);
    loom_audio_pcm_free(&pcm);
    unlink(wav);
}

static void table(void)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    CHECK(av && av == lm_ffmpeg_get(), "lm_ffmpeg_get: %p", (const void *)av);
    if (!av) return;
    int missing = 0;
#define COUNT_MISSING(lib, f) missing += av->f == NULL;
    LM_FFMPEG_FUNCS(COUNT_MISSING)
#undef COUNT_MISSING
    CHECK(missing == 0, "%d FFmpeg functions unresolved", missing);
    char buf[64] = "";
    av->av_strerror(AVERROR_EOF, buf, sizeof buf);
    CHECK(!strcmp(buf, "End of file"), "av_strerror through the table: '%s'", buf);
    CHECK(strstr(lm_ffmpeg_sonames[LM_AVFORMAT], "libavformat.so.") == lm_ffmpeg_sonames[LM_AVFORMAT],
          "soname %s", lm_ffmpeg_sonames[LM_AVFORMAT]);
}

static void load_errors(void)
{
    const char *names[LM_FFMPEG_N_LIBS];
    memcpy(names, lm_ffmpeg_sonames, sizeof names);
    lm_ffmpeg t;
    lm_error e = {0};

    names[LM_AVFORMAT] = "libavformat.so.0";   /* no such library */
    int rc = lm_ffmpeg_open(names, &t, &e);
    CHECK(rc == LOOM_ERR_UNSUPPORTED && strstr(e.msg, "libavformat.so.0") && t.av_malloc == NULL,
          "missing library: rc %d '%s'", rc, e.msg);

    names[LM_AVFORMAT] = "libm.so.6";          /* loads, but has no avformat_* */
    rc = lm_ffmpeg_open(names, &t, &e);
    CHECK(rc == LOOM_ERR_UNSUPPORTED && strstr(e.msg, "libm.so.6 has no av_find_best_stream"),
          "missing function: rc %d '%s'", rc, e.msg);

    rc = lm_ffmpeg_open(lm_ffmpeg_sonames, &t, &e);
    CHECK(rc == 0 && t.avformat_open_input == lm_ffmpeg_get()->avformat_open_input, "real names: rc %d '%s'", rc, e.msg);
}

int main(void)
{
    lazy_load();
    table();
    load_errors();
    return finish();
}
