/* Audio decode/resample/WAV-write tests. Fixtures: tests/data/audio/tone* (made by
 * tools/make_audio_fixtures.sh: 0.5 s, 440 Hz, amplitude 0.5). Bad inputs and the 2-hour
 * file are made here, in a temporary folder. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audio/audio.h"

#include "tests/check.h"

/* ASan keeps freed blocks in a quarantine (256 MB by default), which would hide what the
 * reader itself holds; keep it small so the bounded-memory check means something. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=8"; }

static char tmpdir[256];

static double rms(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0;
}

/* Power of frequency f (Hz at 16 kHz) by correlation, normalised so a sine of amplitude a
 * gives about a²/4. */
static double tone_power(const float *x, int64_t n, double f)
{
    double re = 0, im = 0;
    for (int64_t i = 0; i < n; i++) {
        re += x[i] * cos(2 * M_PI * f * (double)i / 16000.0);
        im += x[i] * sin(2 * M_PI * f * (double)i / 16000.0);
    }
    return (re * re + im * im) / ((double)n * n);
}

typedef struct { const char *file; int lossy; } fixture;

static void test_formats(void)
{
    static const fixture fx[] = {
        {"tone_u8.wav", 1}, {"tone_s16.wav", 0}, {"tone_s24.wav", 0}, {"tone_s32.wav", 0},
        {"tone_f32.wav", 0}, {"tone.flac", 0}, {"tone.mp3", 1}, {"tone.opus", 1},
        {"tone.m4a", 1}, {"tone_video.mp4", 1}, {"tone_video.mkv", 1},
    };
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "data/audio/%s", fx[i].file);
        float *pcm = NULL;
        int64_t n = 0;
        lm_error err = {0};
        int rc = lm_audio_read_all(path, NULL, 0, &pcm, &n, &err);
        CHECK(rc == 0, "%s: %s", path, err.msg);
        if (rc) continue;
        /* Length: 8000 samples; codecs add priming/padding of up to ~1.5 frames. */
        int64_t tol = fx[i].lossy ? 1300 : 2;
        CHECK(llabs(n - 8000) <= tol, "%s: %lld samples, want 8000±%lld", path, (long long)n, (long long)tol);
        /* Level and pitch over the middle half (skips codec ramps at both ends). */
        const float *mid = pcm + n / 4;
        int64_t m = n / 2;
        double r = rms(mid, m);
        CHECK(fabs(r - 0.5 / sqrt(2.0)) < 0.03, "%s: rms %.4f, want %.4f±0.03", path, r, 0.5 / sqrt(2.0));
        double p440 = tone_power(mid, m, 440), p300 = tone_power(mid, m, 300), p880 = tone_power(mid, m, 880);
        CHECK(fabs(p440 - 0.0625) < 0.01 && p440 > 1000 * p300 && p440 > 1000 * p880,
              "%s: power at 440 Hz %.4g (want 0.0625), at 300 Hz %.3g, at 880 Hz %.3g", path, p440, p300, p880);
        free(pcm);
    }
}

/* Chunked streaming gives exactly the samples of a whole read; info is filled. */
static void test_streaming(void)
{
    float *all = NULL;
    int64_t n_all = 0;
    lm_error err = {0};
    int rc = lm_audio_read_all("data/audio/tone.flac", NULL, 0, &all, &n_all, &err);
    CHECK(rc == 0, "flac: %s", err.msg);
    lm_audio_reader *r = NULL;
    rc = lm_audio_reader_open("data/audio/tone.flac", NULL, &r, &err);
    CHECK(rc == 0 && r, "open: %s", err.msg);
    if (!r || !all) { free(all); return; }
    const lm_audio_info *info = lm_audio_reader_info(r);
    CHECK(info->in_rate == 44100 && info->in_channels == 2 && !strcmp(info->codec, "flac") &&
          fabs(info->duration - 0.5) < 0.01,
          "info: %d Hz %d ch codec %s duration %g", info->in_rate, info->in_channels, info->codec, info->duration);
    float buf[123];
    int64_t pos = 0, got = 0, mismatch = 0;
    while ((rc = lm_audio_reader_read(r, buf, 123, &got, &err)) == 0 && got > 0) {
        for (int64_t i = 0; i < got; i++)
            if (pos + i >= n_all || buf[i] != all[pos + i]) mismatch++;
        pos += got;
    }
    CHECK(rc == 0 && pos == n_all && mismatch == 0 && lm_audio_reader_tell(r) == n_all,
          "chunked: rc %d, %lld of %lld samples, %lld differ", rc, (long long)pos, (long long)n_all, (long long)mismatch);
    CHECK(lm_audio_reader_read(r, buf, 0, &got, &err) == LOOM_ERR_INVALID_ARG, "n = 0 accepted");
    rc = lm_audio_reader_read(r, buf, 123, &got, &err);   /* after the end: still 0 */
    CHECK(rc == 0 && got == 0, "read after end: rc %d got %lld", rc, (long long)got);
    lm_audio_reader_close(&r);
    CHECK(r == NULL, "close sets NULL");
    lm_audio_reader_close(&r);                              /* NULL is a no-op */

    /* Memory input gives the same samples; max_samples cuts. */
    FILE *f = fopen("data/audio/tone.flac", "rb");
    static unsigned char mem[1 << 17];
    size_t sz = f ? fread(mem, 1, sizeof mem, f) : 0;
    if (f) fclose(f);
    float *m = NULL;
    int64_t nm = 0;
    rc = lm_audio_read_all_memory(mem, sz, "tone.flac", NULL, 1000, &m, &nm, &err);
    CHECK(rc == 0 && nm == 1000 && !memcmp(m, all, 1000 * sizeof *m), "memory: rc %d n %lld %s", rc, (long long)nm, err.msg);
    free(m);
    free(all);
}

/* Reading "-" from a pipe (not seekable): WAV streams; an MP4 whose index is at the end
 * needs seeking and must fail cleanly. */
static int read_stdin_from(const char *path, float **pcm, int64_t *n, lm_error *err)
{
    int p[2];
    if (pipe(p) != 0) return -100;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int fd = open(path, O_RDONLY);
        char b[4096];
        ssize_t k;
        while (fd >= 0 && (k = read(fd, b, sizeof b)) > 0)
            if (write(p[1], b, (size_t)k) != k) break;
        _exit(0);
    }
    close(p[1]);
    int saved = dup(STDIN_FILENO);
    dup2(p[0], STDIN_FILENO);
    close(p[0]);
    int rc = lm_audio_read_all("-", NULL, 0, pcm, n, err);
    dup2(saved, STDIN_FILENO);   /* also closes our end of the pipe: the writer gets EPIPE */
    close(saved);
    waitpid(pid, NULL, 0);
    return rc;
}

static void test_stdin(void)
{
    float *pcm = NULL;
    int64_t n = 0;
    lm_error err = {0};
    int rc = read_stdin_from("data/audio/tone_s16.wav", &pcm, &n, &err);
    CHECK(rc == 0 && n == 8000, "stdin wav: rc %d n %lld %s", rc, (long long)n, err.msg);
    free(pcm);
    pcm = NULL;
    rc = read_stdin_from("data/audio/tone.opus", &pcm, &n, &err);
    CHECK(rc == 0 && llabs(n - 8000) < 1300, "stdin opus: rc %d n %lld %s", rc, (long long)n, err.msg);
    free(pcm);
    pcm = NULL;
    rc = read_stdin_from("data/audio/tone_video.mp4", &pcm, &n, &err);
    /* ffmpeg writes the moov atom last: from a pipe that is either an error or, if the
     * demuxer manages, a correct decode. Either way no crash, and an error names stdin. */
    CHECK((rc < 0 && strstr(err.msg, "<stdin>")) || (rc == 0 && llabs(n - 8000) < 1300),
          "stdin mp4: rc %d n %lld msg '%s'", rc, (long long)n, err.msg);
    free(pcm);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }

/* A PCM WAV header claiming `rate`, `channels`, 16-bit and `data_bytes` of samples; the
 * file holds header + min(data_bytes, have) zero bytes (a sparse file when large). */
static void make_wav(const char *path, uint32_t rate, uint16_t channels, uint32_t data_bytes, uint32_t have)
{
    unsigned char h[44] = {0};
    memcpy(h, "RIFF", 4);
    put32(h + 4, 36 + data_bytes);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);
    put16(h + 20, 1);
    put16(h + 22, channels);
    put32(h + 24, rate);
    put32(h + 28, rate * channels * 2u);
    put16(h + 32, (uint16_t)(channels * 2));
    put16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    put32(h + 40, data_bytes);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    if (write(fd, h, sizeof h) != (ssize_t)sizeof h || ftruncate(fd, (off_t)sizeof h + (data_bytes < have ? data_bytes : have)) != 0)
        fprintf(stderr, "make_wav %s: %s\n", path, strerror(errno));
    close(fd);
}

static void expect_fail(const char *path, const lm_audio_params *p, int status, const char *needle)
{
    float *pcm = NULL;
    int64_t n = 0;
    lm_error err = {0};
    int rc = lm_audio_read_all(path, p, 0, &pcm, &n, &err);
    CHECK(rc == status && pcm == NULL && strstr(err.msg, needle) && strstr(err.msg, path),
          "%s: rc %d (want %d), msg '%s' (want '%s' and the path)", path, rc, status, err.msg, needle);
    free(pcm);
}

static void test_bad_input(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/notes.txt", tmpdir);
    const char *text = "This is a plain text file, not audio at all.\nSecond line.\n";
    write_file(p, text, strlen(text));
    expect_fail(p, NULL, LOOM_ERR_FORMAT, "not a recognised audio");

    snprintf(p, sizeof p, "%s/empty.wav", tmpdir);
    write_file(p, "", 0);
    expect_fail(p, NULL, LOOM_ERR_FORMAT, "empty");

    snprintf(p, sizeof p, "%s/missing.wav", tmpdir);
    expect_fail(p, NULL, LOOM_ERR_IO, "No such file");

    expect_fail(tmpdir, NULL, LOOM_ERR_IO, "not a readable file");

    /* Truncated inside the header. */
    FILE *f = fopen("data/audio/tone_s16.wav", "rb");
    static unsigned char buf[1 << 17];
    size_t sz = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    snprintf(p, sizeof p, "%s/trunc_header.wav", tmpdir);
    write_file(p, buf, 20);
    expect_fail(p, NULL, LOOM_ERR_FORMAT, "audio");

    /* A header with no samples after it. */
    snprintf(p, sizeof p, "%s/no_samples.wav", tmpdir);
    make_wav(p, 16000, 1, 0, 0);
    expect_fail(p, NULL, LOOM_ERR_FORMAT, "no audio samples");

    /* Truncated in the middle of the samples: the part that is there decodes. */
    snprintf(p, sizeof p, "%s/trunc_body.wav", tmpdir);
    write_file(p, buf, sz / 2);
    float *pcm = NULL;
    int64_t n = 0;
    lm_error err = {0};
    int rc = lm_audio_read_all(p, NULL, 0, &pcm, &n, &err);
    CHECK(rc == 0 && n > 3500 && n < 4500, "truncated wav body: rc %d n %lld %s", rc, (long long)n, err.msg);
    free(pcm);
    f = fopen("data/audio/tone.flac", "rb");
    sz = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    snprintf(p, sizeof p, "%s/trunc_body.flac", tmpdir);
    write_file(p, buf, sz / 2);
    pcm = NULL;
    rc = lm_audio_read_all(p, NULL, 0, &pcm, &n, &err);
    CHECK(rc == 0 && n >= 1000 && n < 5000, "truncated flac body: rc %d n %lld %s", rc, (long long)n, err.msg);
    free(pcm);
    /* Garbage after a valid header: decodes as noise or fails cleanly, never crashes. */
    for (size_t i = 200; i < sz; i++) buf[i] = (unsigned char)(i * 2654435761u >> 13);
    snprintf(p, sizeof p, "%s/garbage.flac", tmpdir);
    write_file(p, buf, sz);
    pcm = NULL;
    rc = lm_audio_read_all(p, NULL, 0, &pcm, &n, &err);
    CHECK(rc == 0 || (rc < 0 && strstr(err.msg, p)), "garbage flac: rc %d %s", rc, err.msg);
    free(pcm);

    /* Absurd header values. */
    snprintf(p, sizeof p, "%s/rate_1hz.wav", tmpdir);
    make_wav(p, 1, 1, 2000, 2000);
    expect_fail(p, NULL, LOOM_ERR_UNSUPPORTED, "sample rate 1 Hz outside the supported 1000..768000 Hz");
    snprintf(p, sizeof p, "%s/rate_1mhz.wav", tmpdir);
    make_wav(p, 1000000, 1, 2000, 2000);
    expect_fail(p, NULL, LOOM_ERR_UNSUPPORTED, "sample rate 1000000 Hz outside");
    snprintf(p, sizeof p, "%s/ch64.wav", tmpdir);
    make_wav(p, 16000, 64, 64 * 2 * 100, 64 * 2 * 100);
    expect_fail(p, NULL, LOOM_ERR_LIMIT, "64 channels, more than the limit of 32");

    /* Limits from params. */
    lm_audio_params lp = lm_audio_default_params();
    lp.max_seconds = 0.2;
    expect_fail("data/audio/tone_s16.wav", &lp, LOOM_ERR_LIMIT, "limit of 0.2 s");
    lp = lm_audio_default_params();
    lp.max_seconds = -1;
    expect_fail("data/audio/tone_s16.wav", &lp, LOOM_ERR_INVALID_ARG, "max_seconds");
    /* A 5-hour header is refused before decoding (default limit 4 h). */
    snprintf(p, sizeof p, "%s/five_hours.wav", tmpdir);
    make_wav(p, 8000, 1, 5u * 3600u * 8000u * 2u, 5u * 3600u * 8000u * 2u);   /* 288 MB, sparse */
    expect_fail(p, NULL, LOOM_ERR_LIMIT, "more than the limit of 14400 s");
}

/* ---- plain WAV read without FFmpeg (audio/wav.h) against FFmpeg on the same bytes ---- */

static const unsigned char ksdata_tail[14] = {0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71};

/* A WAV in b: format tag (1 PCM, 3 float) and bits, ch channels at rate, `frames` frames of
 * pseudo-random bytes after two frames of the extremes (all bytes 0 but a last 0x80, then
 * all 0xff but a last 0x7f); extensible fmt, a LIST chunk before 'data'. */
static size_t build_wav(unsigned char *b, int tag, int bits, int ch, uint32_t rate, int frames, int extensible, int list)
{
    const int align = ch * bits / 8, fmt_size = extensible ? 40 : tag == 3 ? 18 : 16;
    memcpy(b, "RIFF", 4);
    memcpy(b + 8, "WAVEfmt ", 8);
    put32(b + 16, (uint32_t)fmt_size);
    unsigned char *f = b + 20;
    memset(f, 0, (size_t)fmt_size);
    put16(f, (uint16_t)(extensible ? 0xFFFE : tag));
    put16(f + 2, (uint16_t)ch);
    put32(f + 4, rate);
    put32(f + 8, rate * (uint32_t)align);
    put16(f + 12, (uint16_t)align);
    put16(f + 14, (uint16_t)bits);
    if (extensible) {
        put16(f + 16, 22);
        put16(f + 18, (uint16_t)bits);
        put16(f + 24, (uint16_t)tag);
        memcpy(f + 26, ksdata_tail, sizeof ksdata_tail);
    }
    size_t o = 20 + (size_t)fmt_size;
    if (list) {
        memcpy(b + o, "LIST\6\0\0\0INFOxy", 14);
        o += 14;
    }
    const size_t bytes = (size_t)frames * (size_t)align;
    memcpy(b + o, "data", 4);
    put32(b + o + 4, (uint32_t)bytes);
    o += 8;
    uint32_t seed = (uint32_t)(tag * 131 + bits * 7 + ch);
    for (size_t i = 0; i < bytes; i++) {
        seed = seed * 1664525u + 1013904223u;
        size_t in_sample = i % (size_t)(bits / 8), last = (size_t)(bits / 8) - 1;
        b[o + i] = i < (size_t)align ? (in_sample == last ? 0x80 : 0x00)
                 : i < 2 * (size_t)align ? (in_sample == last ? 0x7f : 0xff) : (unsigned char)(seed >> 24);
    }
    o += bytes;
    put32(b + 4, (uint32_t)(o - 8));
    return o;
}

/* Everything a reader yields: status, samples (read in chunks of 777), what it found. */
typedef struct { int rc; float *pcm; int64_t n; lm_audio_info info; char codec[32]; char msg[512]; } read_result;

static read_result read_via(const char *path, const unsigned char *mem, size_t size, int ffmpeg_only)
{
    read_result res = {0};
    lm_audio_params p = lm_audio_default_params();
    p.ffmpeg_only = ffmpeg_only;
    lm_error err = {0};
    lm_audio_reader *r = NULL;
    res.rc = path ? lm_audio_reader_open(path, &p, &r, &err) : lm_audio_reader_open_memory(mem, size, "mem.wav", &p, &r, &err);
    if (r) {
        res.info = *lm_audio_reader_info(r);
        snprintf(res.codec, sizeof res.codec, "%s", res.info.codec);
        int64_t cap = 0, got = 0;
        for (;;) {
            if (res.n + 777 > cap) {
                cap = (res.n + 777) * 2;
                res.pcm = realloc(res.pcm, (size_t)cap * sizeof *res.pcm);
            }
            if ((res.rc = lm_audio_reader_read(r, res.pcm + res.n, 777, &got, &err)) < 0 || got == 0) break;
            res.n += got;
        }
        lm_audio_reader_close(&r);
    }
    snprintf(res.msg, sizeof res.msg, "%s", err.msg);
    return res;
}

/* The WAV in b (size bytes), from memory and from a file: loom's own reading (native as
 * want_native says) gives FFmpeg's status, samples bit for bit, and input description. The
 * duration of a file cut short is the frames present for loom, FFmpeg's estimate within a
 * frame of it. */
static void compare_paths(const char *label, const unsigned char *b, size_t size, int want_native)
{
    const double dur_tol = strstr(label, "cut") || strstr(label, "mid-frame") ? 1.5 / 16000 : 1e-6;
    char path[512];
    snprintf(path, sizeof path, "%s/cmp.wav", tmpdir);
    write_file(path, b, size);
    read_result ref = read_via(path, NULL, 0, 1);
    for (int from_file = 0; from_file < 2; from_file++) {
        read_result got = read_via(from_file ? path : NULL, b, size, 0);
        CHECK(got.info.via_ffmpeg == !want_native && ref.info.via_ffmpeg == 1,
              "%s (%s): read %s FFmpeg", label, from_file ? "file" : "memory", got.info.via_ffmpeg ? "through" : "without");
        CHECK(got.rc == ref.rc && got.n == ref.n && (got.n == 0 || !memcmp(got.pcm, ref.pcm, (size_t)got.n * sizeof *got.pcm)),
              "%s (%s): rc %d n %lld '%s', FFmpeg rc %d n %lld '%s'%s", label, from_file ? "file" : "memory", got.rc,
              (long long)got.n, got.msg, ref.rc, (long long)ref.n, ref.msg, got.n == ref.n ? ", samples differ" : "");
        CHECK(!strcmp(got.codec, ref.codec) && got.info.in_rate == ref.info.in_rate &&
              got.info.in_channels == ref.info.in_channels && !strcmp(got.info.container, ref.info.container) &&
              fabs(got.info.duration - ref.info.duration) < dur_tol,
              "%s: found %s %d Hz %d ch %s %.6f s, FFmpeg %s %d Hz %d ch %s %.6f s", label, got.codec, got.info.in_rate,
              got.info.in_channels, got.info.container, got.info.duration, ref.codec, ref.info.in_rate,
              ref.info.in_channels, ref.info.container, ref.info.duration);
        free(got.pcm);
    }
    free(ref.pcm);
}

static void test_native_wav(void)
{
    static unsigned char b[1 << 16];
    static const int fmts[][2] = {{1, 8}, {1, 16}, {1, 24}, {1, 32}, {3, 32}, {3, 64}};
    char label[128];
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++)
        for (int ch = 1; ch <= 3; ch++)
            for (int ext = 0; ext < 2; ext++) {
                size_t n = build_wav(b, fmts[f][0], fmts[f][1], ch, 16000, 1001, ext, ch == 2);
                snprintf(label, sizeof label, "wav tag %d, %d bit, %d ch%s", fmts[f][0], fmts[f][1], ch, ext ? ", extensible" : "");
                compare_paths(label, b, n, 1);
                /* Cut inside the last frame: the header claims more than is there. */
                snprintf(label, sizeof label, "wav tag %d, %d bit, %d ch%s, cut", fmts[f][0], fmts[f][1], ch, ext ? ", extensible" : "");
                compare_paths(label, b, n - 3, 1);
            }
    /* A data chunk that ends inside a frame, followed by another chunk. */
    size_t n = build_wav(b, 1, 16, 2, 16000, 500, 0, 0);
    size_t data_size_at = 44 - 4;
    put32(b + data_size_at, 500 * 4 - 1);
    memcpy(b + n - 1 - 8, "junk\0\0\0\0", 8);   /* the last 9 bytes: one lone byte, then 'junk' */
    compare_paths("wav data chunk ends mid-frame", b, n - 1, 1);

    /* Left to FFmpeg: another rate (resampled), and headers that do not add up. */
    n = build_wav(b, 1, 16, 1, 22050, 1000, 0, 0);
    compare_paths("wav at 22050 Hz", b, n, 0);
    n = build_wav(b, 1, 16, 2, 16000, 1000, 0, 0);
    put16(b + 32, 2);                                     /* block_align 2 for 2 × 16 bit */
    compare_paths("wav with a wrong block_align", b, n, 0);
    n = build_wav(b, 1, 16, 1, 16000, 1000, 0, 0);
    put32(b + 40, 0xFFFFFFFFu);                           /* a streamed header */
    compare_paths("wav whose data size is 0xFFFFFFFF", b, n, 0);
    n = build_wav(b, 1, 24, 1, 16000, 1000, 1, 0);
    put16(b + 20 + 18, 20);                               /* 20 valid bits of 24 */
    compare_paths("extensible wav with 20 valid bits", b, n, 0);
    n = build_wav(b, 1, 12, 1, 16000, 1000, 0, 0);        /* 12-bit samples: not a size loom reads */
    compare_paths("wav of 12-bit samples", b, n, 0);
    n = build_wav(b, 1, 16, 1, 16000, 1000, 0, 1);
    put32(b + 36 + 4, 5);                                 /* a LIST chunk of odd size */
    compare_paths("wav with an odd-sized chunk before the samples", b, n, 0);
    /* Found by fuzz_audio: FFmpeg reads on into a second data chunk after the first. */
    n = build_wav(b, 1, 16, 1, 16000, 1000, 0, 0);
    memcpy(b + n, "data\x10\0\0\0", 8);
    memset(b + n + 8, 0x40, 16);
    n += 24;
    put32(b + 4, (uint32_t)(n - 8));
    compare_paths("wav with a second data chunk", b, n, 0);
}

/* 2 hours of 16 kHz silence (a sparse file) stream through in bounded memory. */
/* Found by fuzz_audio: a 223-byte WAV whose RIFF INFO tag claims 0x72727272 bytes made
 * FFmpeg zero a 1.9 GB block before noticing the file ends. The reader must refuse it (or
 * read it) without the process ever holding more than a few hundred MB. */
static const unsigned char huge_info_tag_wav[] = {
    0x52, 0x49, 0x46, 0x46, 0xe6, 0x0f, 0x00, 0x00, 0x57, 0x41, 0x56, 0x45, 0x66, 0x6d, 0x74, 0x20,
    0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x40, 0x1f, 0x00, 0x00, 0x40, 0x1f, 0x00, 0x00,
    0x01, 0x00, 0x08, 0x00, 0x4c, 0x49, 0x53, 0x54, 0x1a, 0x00, 0x00, 0x80, 0x49, 0x4e, 0x46, 0x4f,
    0x49, 0x53, 0x46, 0x54, 0x0e, 0x00, 0x00, 0x00, 0x4c, 0x61, 0x76, 0x66, 0x35, 0x39, 0x2e, 0x32,
    0x37, 0x2e, 0x5d, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72,
    0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72,
    0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72,
    0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72,
    0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72,
    0x72, 0x30, 0x30, 0x00, 0x64, 0x61, 0x74, 0x61, 0xa0, 0x0f, 0x00, 0x00, 0x80, 0x96, 0xa9, 0xb7,
    0xbf, 0xbf, 0xb8, 0xaa, 0x98, 0x6c, 0xb3, 0x82, 0x51, 0xa2, 0x8e, 0x78, 0x63, 0xbd, 0xc0, 0xbc,
    0xb0, 0x9f, 0x8a, 0x74, 0x5f, 0x4f, 0x44, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x53, 0x00, 0x00,
    0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xb5, 0xbe, 0xc0, 0xba, 0xad, 0x9b, 0x86, 0x70, 0x5c, 0x00, 0x00, 0x00, 0x4c, 0x43, 0x00,
};

static void test_huge_header_size(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/huge-info-tag.wav", tmpdir);
    write_file(p, huge_info_tag_wav, sizeof huge_info_tag_wav);
    float *pcm = NULL;
    int64_t n = 0;
    lm_error err = {0};
    int rc = lm_audio_read_all(p, NULL, 0, &pcm, &n, &err);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    CHECK(rc < 0 ? strstr(err.msg, p) != NULL : n >= 0, "huge INFO tag: rc %d, msg '%s'", rc, err.msg);
    CHECK(ru.ru_maxrss < 600 * 1024, "huge INFO tag: peak RSS %ld MB (bounded: < 600 MB)", ru.ru_maxrss / 1024);
    free(pcm);
}

static void test_long(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/two_hours.wav", tmpdir);
    const int64_t want = 2LL * 3600 * 16000;
    make_wav(p, 16000, 1, (uint32_t)(want * 2), (uint32_t)(want * 2));
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lm_audio_reader *r = NULL;
    lm_error err = {0};
    int rc = lm_audio_reader_open(p, NULL, &r, &err);
    CHECK(rc == 0, "open 2 h: %s", err.msg);
    static float buf[1 << 16];
    int64_t total = 0, got = 0, nonzero = 0;
    while (r && (rc = lm_audio_reader_read(r, buf, 1 << 16, &got, &err)) == 0 && got > 0) {
        for (int64_t i = 0; i < got; i++) nonzero += buf[i] != 0.0f;
        total += got;
    }
    lm_audio_reader_close(&r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_SELF, &ru1);
    long grow_mb = (ru1.ru_maxrss - ru0.ru_maxrss) / 1024;
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    CHECK(rc == 0 && total == want && nonzero == 0, "2 h: rc %d, %lld of %lld samples, %lld nonzero %s",
          rc, (long long)total, (long long)want, (long long)nonzero, err.msg);
    /* The whole file as floats would be 440 MB; the reader must stay far below. */
    CHECK(grow_mb < 48, "2 h: peak RSS grew by %ld MB", grow_mb);
    printf("2 h of audio streamed in %.2f s, peak RSS growth %ld MB\n", secs, grow_mb);
    unlink(p);
}

static void test_wav_write(void)
{
    enum { N = 1600 };
    static float x[N * 2];
    for (int i = 0; i < N; i++) {
        x[2 * i] = 0.5f * sinf(2 * (float)M_PI * 440 * (float)i / 16000);
        x[2 * i + 1] = -x[2 * i];
    }
    x[10] = 1.7f;   /* clips in PCM16 */
    char p[512];
    lm_error err = {0};
    for (int fmt = 0; fmt < 2; fmt++) {
        snprintf(p, sizeof p, "%s/out_%d.wav", tmpdir, fmt);
        int rc = lm_wav_write(p, x, N, 1, 16000, (lm_wav_format)fmt, &err);
        CHECK(rc == 0, "wav write %d: %s", fmt, err.msg);
        float *y = NULL;
        int64_t n = 0;
        rc = lm_audio_read_all(p, NULL, 0, &y, &n, &err);
        CHECK(rc == 0 && n == N, "wav reread %d: rc %d n %lld %s", fmt, rc, (long long)n, err.msg);
        double maxd = 0;
        for (int64_t i = 0; rc == 0 && i < n; i++) {
            double want = fmt == LM_WAV_PCM16 && x[i] > 1 ? 1.0 : x[i];
            double d = fabs(y[i] - want);
            if (d > maxd) maxd = d;
        }
        double tol = fmt == LM_WAV_PCM16 ? 1.0 / 32767 + 1e-6 : 0;
        CHECK(maxd <= tol, "wav round trip %d: max diff %g > %g", fmt, maxd, tol);
        free(y);
        struct stat st;
        CHECK(stat(p, &st) == 0 && st.st_size == (fmt ? 58 + N * 4 : 44 + N * 2),
              "wav size %d: %lld", fmt, (long long)st.st_size);
    }
    /* Stereo: the reader's mono is the channel mean (here L = -R → silence). */
    snprintf(p, sizeof p, "%s/stereo.wav", tmpdir);
    x[10] = x[11] = 0;
    int rc = lm_wav_write(p, x, N, 2, 16000, LM_WAV_F32, &err);
    float *y = NULL;
    int64_t n = 0;
    if (rc == 0) rc = lm_audio_read_all(p, NULL, 0, &y, &n, &err);
    CHECK(rc == 0 && n == N && rms(y, n) < 1e-7, "stereo mean: rc %d n %lld rms %g", rc, (long long)n, y ? rms(y, n) : -1);
    free(y);
    /* Bad arguments and an unwritable place leave no file behind. */
    CHECK(lm_wav_write(p, x, N, 0, 16000, LM_WAV_F32, &err) == LOOM_ERR_INVALID_ARG, "0 channels accepted");
    snprintf(p, sizeof p, "%s/no/such/dir/x.wav", tmpdir);
    CHECK(lm_wav_write(p, x, N, 1, 16000, LM_WAV_PCM16, &err) == LOOM_ERR_IO && strstr(err.msg, "x.wav"),
          "unwritable: %s", err.msg);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/loom_audio_test.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("mkdtemp failed\n0 passed, 1 failed\n");
        return 1;
    }
    test_formats();
    test_streaming();
    test_stdin();
    test_bad_input();
    test_huge_header_size();
    test_native_wav();
    test_long();
    test_wav_write();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    return finish();
}
