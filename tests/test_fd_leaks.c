/* Failing loads and saves release everything they opened and leave no files behind:
 * - the process's open descriptors (/proc/self/fd) are the same before and after loading
 *   every malformed model, image, audio and video input we have (and missing files,
 *   directories, truncated copies) through the public API;
 * - a PNG / WAV / MP4 save that fails half-way (the file-size limit, RLIMIT_FSIZE, makes
 *   the writes fail) leaves no temporary file, and an existing file at the target path is
 *   untouched (outputs appear atomically: temp file + rename). */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loom.h"
#include "tests/check.h"
#include "tests/fd_check.h"

static char tmpdir[256];

/* Entries of tmpdir other than the ones named in keep (NULL-terminated). */
static int stray_files(const char *const *keep)
{
    DIR *d = opendir(tmpdir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
        int kept = 0;
        for (const char *const *k = keep; *k; k++) kept |= !strcmp(*k, e->d_name);
        if (!kept) {
            printf("  stray file: %s/%s\n", tmpdir, e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

static const char *in_tmp(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmpdir, name);
    return buf;
}

/* A copy of the first `keep` bytes of src (a truncated file). */
static const char *truncated_copy(const char *src, long keep, const char *name, char *buf, size_t size)
{
    in_tmp(buf, size, name);
    FILE *in = fopen(src, "rb"), *out = fopen(buf, "wb");
    char chunk[4096];
    long left = keep;
    while (in && out && left > 0) {
        size_t got = fread(chunk, 1, left < (long)sizeof chunk ? (size_t)left : sizeof chunk, in);
        if (!got) break;
        fwrite(chunk, 1, got, out);
        left -= (long)got;
    }
    if (in) fclose(in);
    if (out) fclose(out);
    return buf;
}

/* Every file of dir through load(path). */
static int each_file(const char *dir, void (*load)(const char *path))
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "MANIFEST")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        load(path);
        n++;
    }
    closedir(d);
    return n;
}

static int g_loaded;   /* loads that (unexpectedly or not) succeeded */

static void load_model(const char *path)
{
    char err[256];
    loom_model *m = NULL;
    if (loom_model_load(path, loom_model_default_params(), &m, err, sizeof err) == 0) g_loaded++;
    loom_model_free(&m);
    loom_file *f = NULL;
    if (loom_file_open(path, &f, err, sizeof err) == 0) loom_file_close(&f);
    loom_codec_params cp = {0};
    loom_vq *vq = NULL;
    if (loom_vq_open(path, cp, &vq, err, sizeof err) == 0) loom_vq_free(&vq);
    loom_audio_codec *ac = NULL;
    if (loom_audio_codec_open(path, cp, &ac, err, sizeof err) == 0) loom_audio_codec_free(&ac);
}

static void load_image(const char *path)
{
    char err[256];
    loom_image img = {0};
    if (loom_image_load(path, loom_image_default_params(), &img, err, sizeof err) == 0) g_loaded++;
    loom_image_free(&img);
    char **text = NULL;
    int n = 0;
    if (loom_png_read_text(path, &text, &n, err, sizeof err) == 0) free(text);
}

static void load_audio(const char *path)
{
    char err[256];
    float *pcm = NULL;
    size_t n = 0;
    if (loom_audio_load(path, NULL, &pcm, &n, err, sizeof err) == 0) g_loaded++;
    loom_audio_pcm_free(&pcm);
    loom_audio_reader *r = NULL;
    if (loom_audio_reader_open(path, NULL, &r, err, sizeof err) == 0) {
        float buf[4096];
        size_t got = 0;
        while (loom_audio_reader_read(r, buf, 4096, &got) == 0 && got) {}
        loom_audio_reader_close(&r);
    }
}

static void load_video(const char *path)
{
    char err[256];
    loom_video_params p = loom_video_default_params();
    p.max_frames = 4;
    p.n_frames = 2;
    loom_video *v = NULL;
    if (loom_video_sample(path, p, &v, err, sizeof err) == 0) g_loaded++;
    loom_video_free(&v);
    loom_video_info info;
    loom_video_probe(path, p, &info, err, sizeof err);
}

static void check_failing_loads(void)
{
    char a[512], b[512], c[512], d[512], e[512];
    const char *bad_inputs[] = {
        "data/does-not-exist", "data", "/dev/null", "data/audio/mel",
        truncated_copy("data/audio/tone.mp3", 100, "tone-cut.mp3", a, sizeof a),
        truncated_copy("data/audio/tone_video.mp4", 2000, "tone-cut.mp4", b, sizeof b),
        truncated_copy("data/images/rgb8.png", 60, "rgb8-cut.png", c, sizeof c),
        truncated_copy("../models/loom-tiny-vq.gguf", 100000, "vq-cut.gguf", d, sizeof d),
        truncated_copy("../models/loom-tiny-vocab.gguf", 3000, "vocab-cut.gguf", e, sizeof e),
    };
    /* warm up: libraries may open descriptors they keep (first use), not leaks */
    load_model("../models/loom-tiny-vq.gguf");
    load_image("data/images/rgb8.png");
    load_audio("data/audio/tone.mp3");
    load_video("data/audio/tone_video.mp4");

    fds_mark();
    int n_models = each_file("data/gguf_bad", load_model) + each_file("../fuzz/corpus/decoder", load_model);
    fds_check("malformed model files");
    int n_images = each_file("data/images", load_image);
    fds_check("images (bad_*, huge, empty, not_an_image, …)");
    int n_media = each_file("data/video", load_video) + each_file("data/video", load_audio) +
                  each_file("data/audio", load_audio) + each_file("data/audio", load_video);
    fds_check("audio and video files");
    g_loaded = 0;
    for (size_t i = 0; i < sizeof bad_inputs / sizeof bad_inputs[0]; i++) {
        const int before = g_loaded;
        load_model(bad_inputs[i]);
        load_image(bad_inputs[i]);
        load_audio(bad_inputs[i]);
        load_video(bad_inputs[i]);
        if (g_loaded != before) printf("  loaded: %s\n", bad_inputs[i]);
    }
    fds_check("missing, directory, empty and truncated inputs");
    CHECK(g_loaded == 0, "%d of the bad inputs loaded", g_loaded);
    CHECK(n_models > 40 && n_images > 30 && n_media > 10, "inputs found: %d models, %d images, %d media",
          n_models, n_images, n_media);
    for (size_t i = 4; i < sizeof bad_inputs / sizeof bad_inputs[0]; i++) unlink(bad_inputs[i]);
}

/* ---- saves that fail half-way --------------------------------------------------------- */

static const char OLD[] = "the previous file";

static void put_old(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (f) { fputs(OLD, f); fclose(f); }
}

static int is_old(const char *path)
{
    char buf[64] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(OLD) && !memcmp(buf, OLD, n);
}

static void set_fsize(rlim_t limit)
{
    struct rlimit rl;
    getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = limit;
    setrlimit(RLIMIT_FSIZE, &rl);
}

static uint32_t g_rng = 12345;
static uint8_t noise(void) { g_rng = g_rng * 1103515245u + 12345u; return (uint8_t)(g_rng >> 16); }

static void check_failing_saves(void)
{
    enum { W = 128, H = 128, N_PCM = 48000, VW = 64, VH = 64, VN = 24 };
    char png[512], wav[512], mp4[512], err[256];
    in_tmp(png, sizeof png, "out.png");
    in_tmp(wav, sizeof wav, "out.wav");
    in_tmp(mp4, sizeof mp4, "out.mp4");
    const char *keep[] = {"out.png", "out.wav", "out.mp4", NULL};
    uint8_t *rgb = malloc((size_t)VN * VW * VH * 3 > (size_t)W * H * 3 ? (size_t)VN * VW * VH * 3 : (size_t)W * H * 3);
    float *pcm = malloc(N_PCM * sizeof *pcm);
    if (!rgb || !pcm) { CHECK(0, "out of memory"); free(rgb); free(pcm); return; }
    for (size_t i = 0; i < (size_t)VN * VW * VH * 3; i++) rgb[i] = noise();
    for (int i = 0; i < N_PCM; i++) pcm[i] = (float)noise() / 128.0f - 1.0f;
    loom_image img = {0};
    loom_image_from_rgb(rgb, W, H, 0, &img, err, sizeof err);
    loom_mp4_params mp = loom_mp4_default_params();
    mp.crf = 0;   /* large frames: the writes must outgrow the limit */

    put_old(png);
    put_old(wav);
    put_old(mp4);
    signal(SIGXFSZ, SIG_IGN);   /* writes past the limit fail with EFBIG instead */
    set_fsize(4096);
    fds_mark();
    int rp = loom_image_save_png(&img, png, NULL, err, sizeof err);
    CHECK(rp < 0, "PNG save past the file-size limit should fail (rc %d)", rp);
    int rw = loom_audio_save_wav(wav, pcm, N_PCM, 1, 16000, LOOM_WAV_PCM16, err, sizeof err);
    CHECK(rw < 0, "WAV save past the file-size limit should fail (rc %d)", rw);
    int rv = loom_video_write_mp4(mp4, rgb, VN, VW, VH, NULL, 0, mp, err, sizeof err);
    CHECK(rv < 0, "MP4 save past the file-size limit should fail (rc %d)", rv);
    fds_check("failed saves");
    set_fsize(RLIM_INFINITY);
    CHECK(is_old(png) && is_old(wav) && is_old(mp4), "a failed save changed the existing target");
    CHECK(stray_files(keep) == 0, "a failed save left a temporary file in %s", tmpdir);

    /* missing folder: nothing to create, nothing left open */
    char nowhere[600];
    snprintf(nowhere, sizeof nowhere, "%s/no/such/dir/x.png", tmpdir);
    CHECK(loom_image_save_png(&img, nowhere, NULL, err, sizeof err) < 0, "save into a missing folder");
    snprintf(nowhere, sizeof nowhere, "%s/no/such/dir/x.wav", tmpdir);
    CHECK(loom_audio_save_wav(nowhere, pcm, 100, 1, 16000, LOOM_WAV_PCM16, err, sizeof err) < 0, "WAV into a missing folder");
    snprintf(nowhere, sizeof nowhere, "%s/no/such/dir/x.mp4", tmpdir);
    CHECK(loom_video_write_mp4(nowhere, rgb, 2, VW, VH, NULL, 0, mp, err, sizeof err) < 0, "MP4 into a missing folder");
    fds_check("saves into a missing folder");

    /* the same saves without the limit succeed (so the failures above were the limit's) */
    CHECK(loom_image_save_png(&img, png, NULL, err, sizeof err) == 0 && !is_old(png), "PNG save: %s", err);
    CHECK(loom_audio_save_wav(wav, pcm, N_PCM, 1, 16000, LOOM_WAV_PCM16, err, sizeof err) == 0 && !is_old(wav), "WAV save: %s", err);
    CHECK(loom_video_write_mp4(mp4, rgb, VN, VW, VH, NULL, 0, mp, err, sizeof err) == 0 && !is_old(mp4), "MP4 save: %s", err);
    CHECK(stray_files(keep) == 0, "a save left a temporary file in %s", tmpdir);
    fds_check("successful saves");
    unlink(png);
    unlink(wav);
    unlink(mp4);
    loom_image_free(&img);
    free(rgb);
    free(pcm);
}

int main(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/loom-fd-XXXXXX", base);
    if (!mkdtemp(tmpdir)) { CHECK(0, "mkdtemp %s", tmpdir); return finish(); }
    check_failing_loads();
    check_failing_saves();
    rmdir(tmpdir);
    return finish();
}
