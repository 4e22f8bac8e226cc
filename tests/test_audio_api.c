/* The public audio API (include/loom.h only): load, stream, save, errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loom.h"
#include "tests/check.h"

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
    return finish();
}
