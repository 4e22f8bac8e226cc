/* Video decode/sampling and MP4 writing.
 *
 * Fixtures (tools/make_video_fixtures.sh): 64x48, 10 fps, 20 frames; frame N is
 * R = 220 left / 40 right, G = 10 + 12 N, B = 60 top / 200 bottom. So a sample's G says
 * which source frame it shows, and R/B check channel order and orientation.
 *
 * `test_video_io --write-mp4 PATH` writes a known clip (used by test_mp4_ffprobe.sh). */
#include <dirent.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "include/loom.h"
#include "video/video.h"
#include "tests/check.h"
#include "tests/read_file.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Mean of channel c over the rectangle [x0,x1) x [y0,y1) of an RGB8 image w pixels wide. */
static double region_mean(const uint8_t *rgb, int w, int x0, int y0, int x1, int y1, int c)
{
    double s = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) s += rgb[((size_t)y * w + x) * 3 + c];
    return s / ((x1 - x0) * (y1 - y0));
}

/* Check one sample against the fixture pattern for source frame n (quadrant centres,
 * away from chroma-subsampled edges). Lossy codecs: means within 6 levels. */
static void check_pattern(const char *what, const uint8_t *rgb, int w, int h, int n)
{
    int qx = w / 4, qy = h / 4, mx = w / 8, my = h / 8;
    double g  = region_mean(rgb, w, qx - mx, qy - my, qx + mx, qy + my, 1);
    double rl = region_mean(rgb, w, qx - mx, qy - my, qx + mx, qy + my, 0);
    double rr = region_mean(rgb, w, 3 * qx - mx, qy - my, 3 * qx + mx, qy + my, 0);
    double bt = region_mean(rgb, w, qx - mx, qy - my, qx + mx, qy + my, 2);
    double bb = region_mean(rgb, w, qx - mx, 3 * qy - my, qx + mx, 3 * qy + my, 2);
    CHECK(fabs(g - (10 + 12 * n)) <= 6, "%s: G %.1f, want %d (frame %d)", what, g, 10 + 12 * n, n);
    CHECK(fabs(rl - 220) <= 6 && fabs(rr - 40) <= 6, "%s: R left %.1f right %.1f, want 220 / 40", what, rl, rr);
    CHECK(fabs(bt - 60) <= 6 && fabs(bb - 200) <= 6, "%s: B top %.1f bottom %.1f, want 60 / 200", what, bt, bb);
}

/* ------------------------------------------------------------------ decoding fixtures */

static void test_fixture(const char *file, const char *codec)
{
    char path[256];
    snprintf(path, sizeof path, "data/video/%s", file);
    if (!file_exists(path)) {
        printf("SKIP %s: fixture missing (its encoder was absent when tools/make_video_fixtures.sh ran)\n", file);
        return;
    }
    char err[512];
    loom_video_params p = loom_video_default_params();

    loom_video_info info;
    int rc = loom_video_probe(path, p, &info, err, sizeof err);
    CHECK(rc == 0, "%s: probe: %s", file, err);
    if (rc == 0) {
        CHECK(info.width == 64 && info.height == 48, "%s: probe size %dx%d", file, info.width, info.height);
        CHECK(fabs(info.duration - 2.0) < 0.06, "%s: duration %.4f", file, info.duration);
        CHECK(fabs(info.fps - 10) < 1e-6, "%s: fps %.4f", file, info.fps);
        CHECK(info.n_frames == 20, "%s: n_frames %lld", file, (long long)info.n_frames);
        CHECK(!strcmp(info.codec, codec), "%s: codec %s, want %s", file, info.codec, codec);
    }

    /* every frame: N = frame count gives each frame exactly once */
    p.n_frames = 20;
    loom_video *v = NULL;
    rc = loom_video_sample(path, p, &v, err, sizeof err);
    CHECK(rc == 0 && v, "%s: sample 20: %s", file, err);
    if (v) {
        CHECK(loom_video_n_frames(v) == 20 && loom_video_width(v) == 64 && loom_video_height(v) == 48,
              "%s: got %d frames %dx%d", file, loom_video_n_frames(v), loom_video_width(v), loom_video_height(v));
        double dur = loom_video_source(v)->duration;
        for (int i = 0; i < loom_video_n_frames(v); i++) {
            char what[64];
            snprintf(what, sizeof what, "%s frame %d", file, i);
            CHECK(fabs(loom_video_frame_time(v, i) - (i + 0.5) * dur / 20) < 1e-12, "%s: t %.6f", what, loom_video_frame_time(v, i));
            CHECK(fabs(loom_video_frame_pts(v, i) - 0.1 * i) < 2e-3, "%s: pts %.4f", what, loom_video_frame_pts(v, i));
            check_pattern(what, loom_video_frame(v, i), 64, 48, i);
        }
        loom_video_free(&v);
        CHECK(v == NULL, "free sets NULL");
    }

    /* by count: t = 0.25, 0.75, 1.25, 1.75 -> frames 2, 7, 12, 17; resized to 32 wide */
    p.n_frames = 4;
    p.width = 32;
    rc = loom_video_sample(path, p, &v, err, sizeof err);
    CHECK(rc == 0 && v, "%s: sample 4: %s", file, err);
    if (v) {
        CHECK(loom_video_n_frames(v) == 4 && loom_video_width(v) == 32 && loom_video_height(v) == 24,
              "%s: got %d frames %dx%d", file, loom_video_n_frames(v), loom_video_width(v), loom_video_height(v));
        for (int i = 0; i < loom_video_n_frames(v); i++) {
            char what[64];
            snprintf(what, sizeof what, "%s n=4 sample %d", file, i);
            CHECK(fabs(loom_video_frame_pts(v, i) - 0.1 * (2 + 5 * i)) < 2e-3, "%s: pts %.4f", what, loom_video_frame_pts(v, i));
            check_pattern(what, loom_video_frame(v, i), 32, 24, 2 + 5 * i);
        }
        loom_video_free(&v);
    }

    /* by rate: 4 fps over 2 s -> 8 samples at (i + 0.5) / 4 -> frames 1 3 6 8 11 13 16 18 */
    p = loom_video_default_params();
    p.n_frames = 0;
    p.fps = 4;
    rc = loom_video_sample(path, p, &v, err, sizeof err);
    CHECK(rc == 0 && v, "%s: sample at 4 fps: %s", file, err);
    if (v) {
        CHECK(loom_video_n_frames(v) == 8, "%s: %d samples at 4 fps, want 8", file, loom_video_n_frames(v));
        for (int i = 0; i < loom_video_n_frames(v); i++) {
            double t = (i + 0.5) / 4;
            int n = (int)floor(t * 10);
            char what[64];
            snprintf(what, sizeof what, "%s 4fps sample %d", file, i);
            CHECK(fabs(loom_video_frame_time(v, i) - t) < 1e-12, "%s: t %.6f", what, loom_video_frame_time(v, i));
            CHECK(fabs(loom_video_frame_pts(v, i) - 0.1 * n) < 2e-3, "%s: pts %.4f", what, loom_video_frame_pts(v, i));
            check_pattern(what, loom_video_frame(v, i), 64, 48, n);
        }
        loom_video_free(&v);
    }
}

/* ------------------------------------------------------------------ sample-time rule, params */

static void test_times_and_params(void)
{
    loom_video_params p = loom_video_default_params();
    double t[300];
    lm_error e = {0};
    p.n_frames = 3;
    CHECK(lm_video_sample_times(6.0, &p, t, &e) == 3 && t[0] == 1.0 && t[1] == 3.0 && t[2] == 5.0, "n=3 over 6 s");
    p.n_frames = 0;
    p.fps = 2;
    CHECK(lm_video_sample_times(1.2, &p, t, &e) == 2 && t[0] == 0.25 && t[1] == 0.75, "2 fps over 1.2 s");
    CHECK(lm_video_sample_times(1.3, &p, t, &e) == 3 && t[2] == 1.25, "2 fps over 1.3 s");
    CHECK(lm_video_sample_times(0.1, &p, t, &e) == 1 && t[0] == 0.25, "short clip still gives one sample");
    p.fps = 200;
    CHECK(lm_video_sample_times(2.0, &p, t, &e) == LOOM_ERR_LIMIT && strstr(e.msg, "max_frames 256"), "over max_frames: %s", e.msg);
    CHECK(lm_video_sample_times(0, &p, t, &e) == LOOM_ERR_FORMAT, "zero duration");

    char err[512];
    loom_video *v = NULL;
    p = loom_video_default_params();
    p.n_frames = 300;
    CHECK(loom_video_sample("data/video/h264.mp4", p, &v, err, sizeof err) == LOOM_ERR_LIMIT && !v && strstr(err, "max_frames"),
          "300 frames: %s", err);
    p.n_frames = 0;
    p.fps = 0;
    CHECK(loom_video_sample("data/video/h264.mp4", p, &v, err, sizeof err) == LOOM_ERR_INVALID_ARG && !v, "no n_frames/fps: %s", err);
    p = loom_video_default_params();
    p.width = 10000;
    CHECK(loom_video_sample("data/video/h264.mp4", p, &v, err, sizeof err) == LOOM_ERR_LIMIT && strstr(err, "8192x8192"),
          "huge output: %s", err);
    p = loom_video_default_params();
    CHECK(loom_video_sample("data/video/does_not_exist.mp4", p, &v, err, sizeof err) == LOOM_ERR_IO && strstr(err, "does_not_exist"),
          "missing file: %s", err);
}

/* ------------------------------------------------------------------ 10 hours, 8 frames */

static void test_ten_hours(void)
{
    const char *path = "data/video/ten_hours.mp4";
    if (!file_exists(path)) { printf("SKIP ten_hours.mp4: fixture missing\n"); return; }
    char err[512];
    loom_video_params p = loom_video_default_params();   /* n_frames 8 */
    loom_video *v = NULL;
    double t0 = now_s();
    int rc = loom_video_sample(path, p, &v, err, sizeof err);
    double dt = now_s() - t0;
    CHECK(rc == 0 && v, "ten hours: %s", err);
    if (!v) return;
    printf("ten_hours.mp4 (36000 s, 600 frames, keyframe every 20): 8 samples in %.3f s, %lld frames decoded, %d seeks\n",
           dt, (long long)v->n_decoded, v->n_seeks);
    /* seeking: each sample costs at most a GOP (20 frames) of decoding, not the whole file */
    CHECK(v->n_decoded <= 8 * 20 && v->n_seeks >= 4, "decoded %lld frames with %d seeks", (long long)v->n_decoded, v->n_seeks);
    CHECK(dt < 5.0, "8 samples of 10 hours took %.2f s", dt);
    CHECK(loom_video_n_frames(v) == 8 && fabs(loom_video_source(v)->duration - 36000) < 1, "got %d frames, duration %.1f",
          loom_video_n_frames(v), loom_video_source(v)->duration);
    for (int i = 0; i < loom_video_n_frames(v); i++) {
        double t = (i + 0.5) * 4500;   /* one frame per minute: frame floor(t / 60) */
        int n = (int)floor(t / 60);
        CHECK(fabs(loom_video_frame_time(v, i) - t) < 1e-9, "t[%d] %.3f", i, loom_video_frame_time(v, i));
        CHECK(fabs(loom_video_frame_pts(v, i) - 60.0 * n) < 0.01, "sample %d pts %.3f, want %.0f", i, loom_video_frame_pts(v, i), 60.0 * n);
        double g = region_mean(loom_video_frame(v, i), 32, 8, 8, 24, 24, 1);
        CHECK(fabs(g - (16 + 2 * (n % 100))) <= 1.5, "sample %d G %.2f, want %d", i, g, 16 + 2 * (n % 100));
    }
    loom_video_free(&v);
}

/* ------------------------------------------------------------------ bad input */

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) { printf("cannot write %s\n", path); exit(1); }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static const char *tmpdir;

static void test_bad_input(void)
{
    char path[512], err[512];
    loom_video *v = NULL;
    loom_video_params p = loom_video_default_params();

    /* audio only */
    int rc = loom_video_sample("data/video/audio_only.m4a", p, &v, err, sizeof err);
    CHECK(rc == LOOM_ERR_NOT_FOUND && !v && strstr(err, "no video stream") && strstr(err, "1 audio"), "audio only: %d %s", rc, err);

    /* 16384 x 16384 stated by a Matroska track header (dims_16k.mkv): refused before decoding */
    const char *huge = "data/video/dims_16k.mkv";
    double t0 = now_s();
    rc = loom_video_sample(huge, p, &v, err, sizeof err);
    CHECK(rc == LOOM_ERR_LIMIT && !v && strstr(err, "16384x16384") && strstr(err, "8192x8192"), "16K: %d %s", rc, err);
    CHECK(now_s() - t0 < 1.0, "16K refusal took %.2f s", now_s() - t0);
    printf("16K: %s\n", err);
    loom_video_info info;
    rc = loom_video_probe(huge, p, &info, err, sizeof err);
    CHECK(rc == LOOM_ERR_LIMIT, "16K probe: %d %s", rc, err);
    /* allowed by the limits: the header disagrees with the bitstream; a result or an error */
    p.max_width = p.max_height = 16384;
    p.n_frames = 1;
    rc = loom_video_sample(huge, p, &v, err, sizeof err);
    CHECK((rc == 0 && v) || (rc < 0 && !v && err[0]), "16K allowed: %d %s", rc, err);
    loom_video_free(&v);
    p = loom_video_default_params();
    /* a Y4M header of 16384 x 16384 (FFmpeg itself refuses 2^28 pixels): a clear error */
    snprintf(path, sizeof path, "%s/huge.y4m", tmpdir);
    const char y4m[] = "YUV4MPEG2 W16384 H16384 F25:1 Ip A1:1 C420jpeg\nFRAME\n\x10\x10\x10\x10";
    write_file(path, y4m, sizeof y4m - 1);
    rc = loom_video_sample(path, p, &v, err, sizeof err);
    CHECK(rc < 0 && !v && strstr(err, "huge.y4m"), "16K y4m: %d %s", rc, err);

    /* zero frames: a Y4M header with no FRAME */
    snprintf(path, sizeof path, "%s/empty.y4m", tmpdir);
    const char empty[] = "YUV4MPEG2 W64 H48 F10:1 Ip A1:1 C420jpeg\n";
    write_file(path, empty, sizeof empty - 1);
    rc = loom_video_sample(path, p, &v, err, sizeof err);
    CHECK(rc == LOOM_ERR_FORMAT && !v && err[0], "zero frames (y4m): %d %s", rc, err);
    printf("zero frames: %s\n", err);

    /* an empty file, and bytes that are no video at all */
    snprintf(path, sizeof path, "%s/zero_bytes.mp4", tmpdir);
    write_file(path, "", 0);
    rc = loom_video_sample(path, p, &v, err, sizeof err);
    CHECK(rc == LOOM_ERR_FORMAT && !v && err[0], "empty file: %d %s", rc, err);
    uint8_t junk[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) { x = x * 1664525u + 1013904223u; junk[i] = (uint8_t)(x >> 24); }
    snprintf(path, sizeof path, "%s/junk.mkv", tmpdir);
    write_file(path, junk, sizeof junk);
    rc = loom_video_sample(path, p, &v, err, sizeof err);
    CHECK(rc < 0 && !v && err[0], "junk: %d %s", rc, err);

    /* a playlist must not make FFmpeg fetch anything: only local files are allowed */
    snprintf(path, sizeof path, "%s/remote.m3u8", tmpdir);
    const char m3u8[] = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n";
    write_file(path, m3u8, sizeof m3u8 - 1);
    t0 = now_s();
    rc = loom_video_sample(path, p, &v, err, sizeof err);
    CHECK(rc < 0 && !v && err[0] && now_s() - t0 < 2, "remote playlist: %d %s", rc, err);

    /* truncated, index at the end (ffmpeg's default MP4): cannot open */
    size_t n = 0;
    uint8_t *mp4 = read_file("data/video/h264.mp4", &n);
    CHECK(mp4 != NULL, "read h264.mp4");
    if (!mp4) return;
    snprintf(path, sizeof path, "%s/truncated.mp4", tmpdir);
    write_file(path, mp4, n * 6 / 10);
    rc = loom_video_sample(path, p, &v, err, sizeof err);
    CHECK(rc == LOOM_ERR_FORMAT && !v && err[0], "truncated (moov at end): %d %s", rc, err);
    printf("truncated, index at end: %s\n", err);

    /* corrupt: bytes overwritten at pseudo-random places. Either the right number of
     * frames (decoders conceal damage) or a clear error; never a crash (sanitizers). */
    int n_ok = 0, n_err = 0;
    for (int trial = 0; trial < 24; trial++) {
        uint8_t *c = malloc(n);
        memcpy(c, mp4, n);
        int n_hits = 1 + trial % 8;
        for (int k = 0; k < n_hits; k++) {
            x = x * 1664525u + 1013904223u;
            size_t at = (x >> 8) % n;
            for (int j = 0; j < 16 && at + j < n; j++) { x = x * 1664525u + 1013904223u; c[at + j] = (uint8_t)(x >> 24); }
        }
        lm_error e = {0};
        p.n_frames = 8;
        rc = lm_video_sample_buffer(c, n, &p, &v, &e);
        if (rc == 0) {
            CHECK(v && v->n_frames == 8, "corrupt trial %d: %d frames", trial, v ? v->n_frames : -1);
            n_ok++;
        } else {
            CHECK(!v && e.msg[0], "corrupt trial %d: error without message", trial);
            n_err++;
        }
        lm_video_free(&v);
        free(c);
    }
    printf("corrupt h264.mp4: %d sampled, %d clear errors\n", n_ok, n_err);
    /* the same bytes through memory input work */
    lm_error e = {0};
    rc = lm_video_sample_buffer(mp4, n, &p, &v, &e);
    CHECK(rc == 0 && v && v->n_frames == 8, "memory input: %s", e.msg);
    lm_video_free(&v);
    free(mp4);
}

/* ------------------------------------------------------------------ MP4 writing */

/* A moving test picture with natural-video-like edges: gradients plus a bright disc that
 * moves each frame, its rim blended over ~4 pixels. (Hard saturated colour edges are
 * bounded near 33 dB in RGB by 4:2:0 chroma subsampling alone, even losslessly coded.) */
static void make_clip(uint8_t *rgb, int n, int w, int h)
{
    for (int f = 0; f < n; f++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint8_t *px = rgb + (((size_t)f * h + y) * w + x) * 3;
                double dx = x - (12 + 1.3 * f), dy = y - (20 + 0.4 * f);
                double a = fmin(1, fmax(0, (10 - sqrt(dx * dx + dy * dy)) / 4));   /* disc coverage */
                double bg[3] = {30 + 3 * x, 20 + 4 * y, 100 + (x - y) + f};
                double fg[3] = {230, 210, 70};
                for (int c = 0; c < 3; c++) px[c] = (uint8_t)lround(bg[c] + a * (fg[c] - bg[c]));
            }
}

static double psnr(const uint8_t *a, const uint8_t *b, size_t n)
{
    double se = 0;
    for (size_t i = 0; i < n; i++) { double d = (double)a[i] - b[i]; se += d * d; }
    return se == 0 ? 99 : 10 * log10(255.0 * 255.0 / (se / n));
}

/* Decode `path` with libavformat/libavcodec directly (not loom) and count its frames. */
static int count_frames_libav(const char *path, int *w, int *h, AVRational *rate, char *codec, size_t codec_n)
{
    AVFormatContext *fmt = NULL;
    if (avformat_open_input(&fmt, path, NULL, NULL) < 0) return -1;
    int count = -1;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    if (avformat_find_stream_info(fmt, NULL) < 0) goto out;
    int si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (si < 0) goto out;
    AVStream *st = fmt->streams[si];
    *w = st->codecpar->width;
    *h = st->codecpar->height;
    *rate = st->avg_frame_rate;
    snprintf(codec, codec_n, "%s", avcodec_get_name(st->codecpar->codec_id));
    const AVCodec *c = avcodec_find_decoder(st->codecpar->codec_id);
    dec = avcodec_alloc_context3(c);
    avcodec_parameters_to_context(dec, st->codecpar);
    if (avcodec_open2(dec, c, NULL) < 0) goto out;
    count = 0;
    while (av_read_frame(fmt, pkt) >= 0) {
        if (pkt->stream_index == si) avcodec_send_packet(dec, pkt);
        av_packet_unref(pkt);
        while (avcodec_receive_frame(dec, fr) == 0) count++;
    }
    avcodec_send_packet(dec, NULL);
    while (avcodec_receive_frame(dec, fr) == 0) count++;
out:
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return count;
}

/* Count the files in tmpdir whose names start with `prefix` (leftover temporaries). */
static int count_prefixed(const char *prefix)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));) n += !strncmp(de->d_name, prefix, strlen(prefix));
    if (d) closedir(d);
    return n;
}

static void test_write_roundtrip(const char *codec, double fps, int num, int den)
{
    enum { W = 64, H = 48, N = 30 };
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/written_%s.mp4", tmpdir, codec ? codec : "default");
    uint8_t *rgb = malloc((size_t)N * W * H * 3);
    make_clip(rgb, N, W, H);
    loom_mp4_params mp = loom_mp4_default_params();
    mp.fps = fps;
    mp.codec = codec;
    int rc = loom_video_write_mp4(path, rgb, N, W, H, NULL, 0, mp, err, sizeof err);
    CHECK(rc == 0, "write %s: %s", path, err);
    if (rc != 0) { free(rgb); return; }

    int w = 0, h = 0;
    AVRational rate = {0, 1};
    char cname[32] = "";
    int count = count_frames_libav(path, &w, &h, &rate, cname, sizeof cname);
    CHECK(count == N, "%s: libav decodes %d frames, want %d", path, count, N);
    CHECK(w == W && h == H, "%s: size %dx%d", path, w, h);
    CHECK(rate.num == num && rate.den == den, "%s: rate %d/%d, want %d/%d", path, rate.num, rate.den, num, den);
    const char *want_codec = codec ? (strcmp(codec, "mpeg4") ? "h264" : "mpeg4")
                           : avcodec_find_encoder_by_name("libx264") ? "h264" : "mpeg4";
    CHECK(!strcmp(cname, want_codec), "%s: codec %s, want %s", path, cname, want_codec);

    /* read back through loom: every frame, PSNR >= 35 dB each */
    loom_video_params p = loom_video_default_params();
    p.n_frames = N;
    loom_video *v = NULL;
    rc = loom_video_sample(path, p, &v, err, sizeof err);
    CHECK(rc == 0 && v, "read back %s: %s", path, err);
    if (v) {
        CHECK(fabs(loom_video_source(v)->duration - N / fps) < 1e-3, "duration %.4f, want %.4f", loom_video_source(v)->duration, N / fps);
        double worst = 99, total_se = 0;
        for (int i = 0; i < N; i++) {
            double ps = psnr(loom_video_frame(v, i), rgb + (size_t)i * W * H * 3, (size_t)W * H * 3);
            if (ps < worst) worst = ps;
            total_se += pow(10, -ps / 10);
            CHECK(fabs(loom_video_frame_pts(v, i) - i / fps) < 1e-3, "frame %d pts %.4f", i, loom_video_frame_pts(v, i));
        }
        double mean_psnr = 10 * log10(N / total_se);
        printf("mp4 written with %s at %.3f fps: %d frames, PSNR %.2f dB overall, worst frame %.2f dB\n",
               codec ? codec : "default", fps, N, mean_psnr, worst);
        CHECK(worst >= 35, "%s: worst frame PSNR %.2f dB < 35", path, worst);
        loom_video_free(&v);
    }
    unlink(path);
    free(rgb);
}

/* Video + an AAC track: 2 s of 440 Hz (left) and 660 Hz at half amplitude (right), 16 kHz.
 * Decoded back with libavcodec: rate, channels, length, and the tones where they belong. */
static void test_write_audio(void)
{
    enum { W = 64, H = 48, N = 30, RATE = 16000, NS = 2 * RATE };
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/with_audio.mp4", tmpdir);
    uint8_t *rgb = malloc((size_t)N * W * H * 3);
    float *pcm = malloc(sizeof(float) * NS * 2);
    make_clip(rgb, N, W, H);
    for (int i = 0; i < NS; i++) {
        pcm[2 * i]     = 0.5f * (float)sin(2 * M_PI * 440 * i / RATE);
        pcm[2 * i + 1] = 0.25f * (float)sin(2 * M_PI * 660 * i / RATE);
    }
    loom_mp4_params mp = loom_mp4_default_params();
    mp.fps = 15;
    mp.audio_rate = RATE;
    mp.audio_channels = 2;
    int rc = loom_video_write_mp4(path, rgb, N, W, H, pcm, NS, mp, err, sizeof err);
    CHECK(rc == 0, "write with audio: %s", err);
    free(rgb);
    free(pcm);
    if (rc) return;

    AVFormatContext *fmt = NULL;
    CHECK(avformat_open_input(&fmt, path, NULL, NULL) == 0 && avformat_find_stream_info(fmt, NULL) >= 0, "open %s", path);
    if (!fmt) return;
    int si = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    CHECK(si >= 0, "no audio stream");
    CHECK(av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0) >= 0, "no video stream");
    if (si < 0) { avformat_close_input(&fmt); return; }
    AVCodecParameters *cp = fmt->streams[si]->codecpar;
    CHECK(cp->codec_id == AV_CODEC_ID_AAC && cp->sample_rate == RATE && cp->ch_layout.nb_channels == 2,
          "audio %s %d Hz x %d", avcodec_get_name(cp->codec_id), cp->sample_rate, cp->ch_layout.nb_channels);
    const AVCodec *c = avcodec_find_decoder(cp->codec_id);
    AVCodecContext *dec = avcodec_alloc_context3(c);
    avcodec_parameters_to_context(dec, cp);
    avcodec_open2(dec, c, NULL);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    /* Goertzel-style correlation with each tone per channel, over everything decoded */
    double corr[2][2][2] = {{{0}}}, energy[2] = {0};
    long long n = 0;
    for (int drain = 0; drain < 2; drain++) {
        int more = 1;
        while (more) {
            if (!drain) {
                if (av_read_frame(fmt, pkt) < 0) { more = 0; continue; }
                if (pkt->stream_index == si) avcodec_send_packet(dec, pkt);
                av_packet_unref(pkt);
            } else {
                avcodec_send_packet(dec, NULL);
                more = 0;
            }
            while (avcodec_receive_frame(dec, fr) == 0) {
                for (int i = 0; i < fr->nb_samples; i++, n++)
                    for (int ch = 0; ch < 2; ch++) {
                        double x = ((const float *)fr->extended_data[ch])[i];
                        energy[ch] += x * x;
                        for (int k = 0; k < 2; k++) {
                            double ph = 2 * M_PI * (k ? 660 : 440) * n / RATE;
                            corr[ch][k][0] += x * cos(ph);
                            corr[ch][k][1] += x * sin(ph);
                        }
                    }
            }
        }
    }
    CHECK(llabs(n - NS) <= 1024, "decoded %lld samples per channel, want %d (+- one AAC frame)", n, NS);
    double share[2][2];   /* fraction of each channel's energy in each tone */
    for (int ch = 0; ch < 2; ch++)
        for (int k = 0; k < 2; k++)
            share[ch][k] = energy[ch] > 0 ? 2 * (corr[ch][k][0] * corr[ch][k][0] + corr[ch][k][1] * corr[ch][k][1]) / n / energy[ch] : 0;
    printf("audio track: %lld samples/ch; left 440 Hz share %.3f, right 660 Hz share %.3f; rms %.3f / %.3f\n", n, share[0][0],
           share[1][1], sqrt(energy[0] / n), sqrt(energy[1] / n));
    CHECK(share[0][0] > 0.9 && share[0][1] < 0.05, "left: 440 share %.3f, 660 share %.3f", share[0][0], share[0][1]);
    CHECK(share[1][1] > 0.9 && share[1][0] < 0.05, "right: 660 share %.3f, 440 share %.3f", share[1][1], share[1][0]);
    CHECK(fabs(sqrt(energy[0] / n) - 0.5 / sqrt(2)) < 0.05 && fabs(sqrt(energy[1] / n) - 0.25 / sqrt(2)) < 0.03, "levels");
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);

    /* and the video still reads back */
    loom_video_params p = loom_video_default_params();
    p.n_frames = N;
    loom_video *v = NULL;
    rc = loom_video_sample(path, p, &v, err, sizeof err);
    CHECK(rc == 0 && v && v->n_frames == N && fabs(v->info.duration - 2.0) < 1e-3, "video with audio: %s", err);
    loom_video_free(&v);
    unlink(path);

    /* audio into a writer opened without an audio track is an error */
    loom_mp4_writer *w = NULL;
    mp = loom_mp4_default_params();
    rc = loom_mp4_writer_open(path, W, H, mp, &w, err, sizeof err);
    float one = 0;
    CHECK(rc == 0 && loom_mp4_writer_add_audio(w, &one, 1) == LOOM_ERR_INVALID_ARG && strstr(loom_mp4_writer_error(w), "audio"),
          "audio without a track: %s", loom_mp4_writer_error(w));
    loom_mp4_writer_free(&w);
}

static void test_write_errors(void)
{
    char path[512], err[512];
    uint8_t frame[64 * 48 * 3] = {0};
    loom_mp4_params mp = loom_mp4_default_params();
    loom_mp4_writer *w = NULL;

    snprintf(path, sizeof path, "%s/odd.mp4", tmpdir);
    int rc = loom_mp4_writer_open(path, 63, 48, mp, &w, err, sizeof err);
    CHECK(rc == LOOM_ERR_INVALID_ARG && !w && strstr(err, "even"), "odd width: %s", err);
    CHECK(!file_exists(path) && count_prefixed("odd.mp4") == 0, "odd width left a file");

    mp.fps = 0;
    rc = loom_mp4_writer_open(path, 64, 48, mp, &w, err, sizeof err);
    CHECK(rc == LOOM_ERR_INVALID_ARG && strstr(err, "fps"), "fps 0: %s", err);
    mp = loom_mp4_default_params();
    mp.codec = "no_such_codec";
    rc = loom_mp4_writer_open(path, 64, 48, mp, &w, err, sizeof err);
    CHECK(rc == LOOM_ERR_UNSUPPORTED && strstr(err, "no_such_codec"), "bad codec: %s", err);
    CHECK(count_prefixed("odd.mp4") == 0, "bad codec left a file");
    mp = loom_mp4_default_params();

    rc = loom_mp4_writer_open("/nonexistent_dir_loom/x.mp4", 64, 48, mp, &w, err, sizeof err);
    CHECK(rc == LOOM_ERR_IO && !w && strstr(err, "nonexistent_dir_loom"), "missing dir: %s", err);

    /* abandoned after 3 frames: nothing is left behind */
    snprintf(path, sizeof path, "%s/abandoned.mp4", tmpdir);
    rc = loom_mp4_writer_open(path, 64, 48, mp, &w, err, sizeof err);
    CHECK(rc == 0 && w, "open: %s", err);
    for (int i = 0; w && i < 3; i++) CHECK(loom_mp4_writer_add_frame(w, frame) == 0, "add: %s", loom_mp4_writer_error(w));
    CHECK(count_prefixed("abandoned.mp4.tmp-") == 1, "temporary exists while writing");
    loom_mp4_writer_free(&w);
    CHECK(w == NULL && !file_exists(path) && count_prefixed("abandoned.mp4") == 0, "abandoned writer left a file");

    /* finish with no frames fails and leaves nothing */
    rc = loom_mp4_writer_open(path, 64, 48, mp, &w, err, sizeof err);
    CHECK(rc == 0, "open: %s", err);
    CHECK(loom_mp4_writer_finish(w) == LOOM_ERR_INVALID_ARG && strstr(loom_mp4_writer_error(w), "no frames"), "finish empty: %s",
          loom_mp4_writer_error(w));
    loom_mp4_writer_free(&w);
    CHECK(count_prefixed("abandoned.mp4") == 0, "empty writer left a file");
    loom_mp4_writer_free(&w);   /* NULL is a no-op */
    loom_video_free(NULL);
}

/* A faststart MP4 (index first) cut short: the index promises 2 s, the data stops early.
 * Cut at 3/4 the first frames survive (sampled) and later samples find no data (error);
 * cut at 1/2 even the first keyframe is lost. Both are errors that say "truncated". */
static void test_truncated_faststart(void)
{
    enum { W = 64, H = 48, N = 20 };
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/cut.mp4", tmpdir);
    uint8_t *rgb = malloc((size_t)N * W * H * 3);
    make_clip(rgb, N, W, H);
    loom_mp4_params mp = loom_mp4_default_params();
    mp.fps = 10;
    int rc = loom_video_write_mp4(path, rgb, N, W, H, NULL, 0, mp, err, sizeof err);
    free(rgb);
    CHECK(rc == 0, "write: %s", err);
    size_t n = 0;
    uint8_t *b = read_file(path, &n);
    if (!b) return;
    for (int quarters = 3; quarters >= 2; quarters--) {
        write_file(path, b, n * quarters / 4);
        loom_video_params p = loom_video_default_params();
        p.n_frames = 4;
        loom_video *v = NULL;
        rc = loom_video_sample(path, p, &v, err, sizeof err);
        CHECK(rc == LOOM_ERR_FORMAT && !v && strstr(err, "truncated"), "cut faststart mp4 at %d/4: %d %s", quarters, rc, err);
        printf("truncated at %d/4, index first: %s\n", quarters, err);
        loom_video_free(&v);
    }
    free(b);
}

static int write_known_clip(const char *path)
{
    enum { W = 64, H = 48, N = 24 };
    uint8_t *rgb = malloc((size_t)N * W * H * 3);
    make_clip(rgb, N, W, H);
    loom_mp4_params mp = loom_mp4_default_params();
    mp.fps = 12;
    char err[512];
    int rc = loom_video_write_mp4(path, rgb, N, W, H, NULL, 0, mp, err, sizeof err);
    free(rgb);
    if (rc) fprintf(stderr, "%s\n", err);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-mp4")) return write_known_clip(argv[2]);

    char dir[] = "/tmp/loom_test_video_XXXXXX";
    tmpdir = mkdtemp(dir);
    if (!tmpdir) { printf("cannot make a temporary folder\n"); return 1; }

    test_times_and_params();
    test_fixture("h264.mp4", "h264");
    test_fixture("h264.mov", "h264");
    test_fixture("h264.mkv", "h264");
    test_fixture("hevc.mp4", "hevc");
    test_fixture("mpeg4.avi", "mpeg4");
    test_fixture("mpeg4.mp4", "mpeg4");
    test_fixture("vp8.webm", "vp8");
    test_fixture("vp9.webm", "vp9");
    test_fixture("av1.mkv", "av1");
    test_ten_hours();
    test_bad_input();
    test_write_roundtrip(NULL, 15, 15, 1);
    test_write_roundtrip("mpeg4", 25, 25, 1);
    test_write_roundtrip(NULL, 30000.0 / 1001, 30000, 1001);
    test_write_errors();
    test_write_audio();
    test_truncated_faststart();

    /* leave no files behind */
    DIR *d = opendir(tmpdir);
    for (struct dirent *de; d && (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(tmpdir);
    return finish();
}
