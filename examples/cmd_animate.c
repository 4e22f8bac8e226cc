/* loom animate: text → frames of image codes (guided) → VQ decoder per frame → MP4.
 * Uses only include/loom.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_media.h"

void help_animate(void);
int  cmd_animate(int argc, char **argv);

void help_animate(void)
{
    printf("usage: loom animate -m MODEL -p PROMPT -o OUT.mp4 [options]\n\n"
           "Animates PROMPT: the model writes a video block (chat turn \"Animate: PROMPT\") of\n"
           "frames × grid² image codes, the VQ codec renders each frame, frames are scaled up\n"
           "(nearest neighbour) and encoded as H.264 (or MPEG-4) MP4.\n\n");
    media_help_common();
    printf("      --frames N         frames (default: the model's loom.video.gen_frames)\n"
           "      --fps F            frame rate (default 4)\n"
           "      --size N           output width and height, even (default 256)\n"
           "      --vq PATH          VQ image codec (default: MODEL's <stem>-vq.gguf)\n");
}

static int animate_option(media_job *j, const char *opt, const char *val, int *i)
{
    int bad;
    if (!strcmp(opt, "--vq") && val) { j->codec = val; bad = 0; }
    else if (!strcmp(opt, "--frames") && val) bad = cli_parse_int(opt, val, 1, 1024, &j->frames);
    else if (!strcmp(opt, "--fps") && val) bad = cli_parse_float(opt, val, 0.1, 240, &j->fps);
    else if (!strcmp(opt, "--size") && val) {
        bad = cli_parse_int(opt, val, 16, 4096, &j->size);
        if (!bad && j->size % 2) { cli_error("%s: %lld is odd (MP4 frames need even sizes)", opt, j->size); bad = -1; }
    } else return 0;
    if (bad) return -1;
    ++*i;
    return 1;
}

/* Nearest-neighbour resize of a square RGB8 image src [n][n][3] to dst [size][size][3]. */
static void upscale(const uint8_t *src, int n, uint8_t *dst, int size)
{
    for (int y = 0; y < size; y++) {
        const uint8_t *row = src + (size_t)(y * n / size) * n * 3;
        for (int x = 0; x < size; x++) memcpy(dst + ((size_t)y * size + x) * 3, row + (size_t)(x * n / size) * 3, 3);
    }
}

/* --best-of: a candidate as the description turn sees it. A generated clip has fewer
 * frames (loom.video.gen_frames) than the model samples from a video it reads
 * (loom.video.n_frames), spread over the same time: each frame stands for its share. */
static int read_video(const media_job *j, loom_mmproj *mp, loom_prompt *p, void *vq)
{
    const int g2 = j->v.image_grid * j->v.image_grid, n = (int)(j->n_codes / g2), side = loom_vq_image_size(vq);
    const int repeat = n > 0 && j->v.video_n_frames % n == 0 ? j->v.video_n_frames / n : 1;
    const size_t frame = (size_t)side * side * 3;
    uint8_t *rgb = malloc((size_t)n * repeat * frame + 1);
    int rc = rgb ? 0 : LOOM_ERR_NO_MEMORY;
    if (rc < 0) cli_error("animate: out of memory");
    for (int f = 0; rc == 0 && f < n; f++) {
        uint8_t *px = rgb + (size_t)f * repeat * frame;
        if ((rc = loom_vq_decode(vq, j->codes + (size_t)f * g2, px)) < 0) cli_error("animate: %s", loom_vq_error(vq));
        for (int r = 1; rc == 0 && r < repeat; r++) memcpy(px + r * frame, px, frame);
    }
    char err[256];
    loom_video *v = NULL;
    if (rc == 0 && (rc = loom_video_from_rgb(rgb, n * repeat, side, side, j->fps * repeat, &v, err, sizeof err)) < 0)
        cli_error("animate: %s", err);
    if (rc == 0 && (rc = loom_prompt_add_video(p, mp, v)) < 0) cli_error("animate: --best-of: %s", loom_prompt_error(p));
    loom_video_free(&v);
    free(rgb);
    return rc;
}

int cmd_animate(int argc, char **argv)
{
    media_job j = {.cmd = "animate", .kind = LOOM_MEDIA_VIDEO, .codec_suffix = "-vq.gguf", .fps = 4, .size = 256};
    int st = media_parse(&j, argc, argv, animate_option);
    if (st != EXIT_OK) return st;
    j.p.n_frames = (int32_t)j.frames;
    char err[600];
    loom_vq *vq = NULL;
    loom_mp4_writer *mp4 = NULL;
    uint8_t *rgb = NULL, *frame = NULL;
    const int S = (int)j.size;
    loom_mp4_params mp = loom_mp4_default_params();
    mp.fps = j.fps;
    mp.n_threads = 1;   /* x264's output depends on its thread count; these clips are small */
    st = media_load(&j);
    if (st == EXIT_OK) st = media_open_vq(&j, &vq);
    /* The writer opens before generation, so a missing FFmpeg or an unwritable path fails
     * at once, not after every frame was made; an unfinished writer leaves no file. */
    if (st == EXIT_OK && loom_mp4_writer_open(j.out, S, S, mp, &mp4, err, sizeof err) < 0) {
        cli_error("animate: %s", err);
        st = EXIT_FAILED;
    }
    if (st == EXIT_OK) st = media_generate_best(&j, read_video, vq);
    const int g2 = j.v.image_grid * j.v.image_grid, n = vq ? loom_vq_image_size(vq) : 0;
    const int n_frames = g2 ? (int)(j.n_codes / g2) : 0;
    if (st == EXIT_OK && (!(rgb = malloc((size_t)n * n * 3)) || !(frame = malloc((size_t)S * S * 3)))) {
        cli_error("animate: out of memory");
        st = EXIT_FAILED;
    }
    for (int f = 0; st == EXIT_OK && f < n_frames; f++) {
        if (loom_vq_decode(vq, j.codes + (size_t)f * g2, rgb) < 0) {
            cli_error("animate: %s", loom_vq_error(vq));
            st = EXIT_FAILED;
            break;
        }
        upscale(rgb, n, frame, S);
        if (loom_mp4_writer_add_frame(mp4, frame) < 0) {
            cli_error("animate: %s", loom_mp4_writer_error(mp4));
            st = EXIT_FAILED;
        }
    }
    if (st == EXIT_OK) st = media_check_interrupt(&j);
    if (st == EXIT_OK && loom_mp4_writer_finish(mp4) < 0) {
        cli_error("animate: %s", loom_mp4_writer_error(mp4));
        st = EXIT_FAILED;
    }
    if (st == EXIT_OK) {
        char what[64];
        snprintf(what, sizeof what, "%d frames of %d×%d at %g fps", n_frames, S, S, j.fps);
        st = media_report(&j, what);
    }
    loom_mp4_writer_free(&mp4);
    free(rgb);
    free(frame);
    loom_vq_free(&vq);
    media_done(&j);
    return st;
}
