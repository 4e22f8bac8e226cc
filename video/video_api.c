/* Public "Video" API of include/loom.h: thin wrappers over video_io.c and mp4_writer.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "video/video.h"

static int report(int rc, const lm_error *e, char *err, size_t err_size)
{
    if (err && err_size) snprintf(err, err_size, "%s", rc < 0 ? e->msg : "");
    return rc;
}

int loom_video_probe(const char *path, loom_video_params p, loom_video_info *out, char *err, size_t err_size)
{
    lm_error e = {0};
    return report(lm_video_probe(path, &p, out, &e), &e, err, err_size);
}

int loom_video_sample(const char *path, loom_video_params p, loom_video **out, char *err, size_t err_size)
{
    lm_error e = {0};
    return report(lm_video_sample(path, &p, out, &e), &e, err, err_size);
}

void loom_video_free(loom_video **v) { lm_video_free(v); }

int loom_video_n_frames(const loom_video *v) { return v ? v->n_frames : 0; }
int loom_video_width(const loom_video *v) { return v ? v->width : 0; }
int loom_video_height(const loom_video *v) { return v ? v->height : 0; }

static int in_range(const loom_video *v, int i) { return v && i >= 0 && i < v->n_frames; }

const uint8_t *loom_video_frame(const loom_video *v, int i)
{
    return in_range(v, i) ? v->rgb + (size_t)i * (size_t)v->width * (size_t)v->height * 3 : NULL;
}
double loom_video_frame_time(const loom_video *v, int i) { return in_range(v, i) ? v->t[i] : 0; }
double loom_video_frame_pts(const loom_video *v, int i) { return in_range(v, i) ? v->pts[i] : 0; }
const loom_video_info *loom_video_source(const loom_video *v) { return v ? &v->info : NULL; }

void loom_video_mirror(loom_video *v)
{
    if (!v) return;
    /* the frames, one under another, are one picture whose rows mirror alike */
    loom_image all = {.width = v->width, .height = v->height * v->n_frames, .rgb = v->rgb};
    loom_image_mirror(&all);
}

int loom_mp4_writer_open(const char *path, int width, int height, loom_mp4_params p, loom_mp4_writer **out,
                         char *err, size_t err_size)
{
    lm_error e = {0};
    return report(lm_mp4_writer_open(path, width, height, &p, out, &e), &e, err, err_size);
}

int  loom_mp4_writer_add_frame(loom_mp4_writer *w, const uint8_t *rgb) { return lm_mp4_writer_add_frame(w, rgb); }
int  loom_mp4_writer_add_audio(loom_mp4_writer *w, const float *samples, int64_t n) { return lm_mp4_writer_add_audio(w, samples, n); }
int  loom_mp4_writer_finish(loom_mp4_writer *w) { return lm_mp4_writer_finish(w); }
void loom_mp4_writer_free(loom_mp4_writer **w) { lm_mp4_writer_free(w); }
const char *loom_mp4_writer_error(const loom_mp4_writer *w) { return lm_mp4_writer_error(w); }

int loom_video_write_mp4(const char *path, const uint8_t *rgb, int n_frames, int width, int height,
                         const float *audio, int64_t n_audio, loom_mp4_params p, char *err, size_t err_size)
{
    lm_error e = {0};
    if (!rgb || n_frames < 1)
        return report(lm_fail(&e, LOOM_ERR_INVALID_ARG, "%s: need at least one frame (got %d)", path ? path : "mp4",
                              n_frames), &e, err, err_size);
    loom_mp4_writer *w = NULL;
    int rc = lm_mp4_writer_open(path, width, height, &p, &w, &e);
    size_t frame_bytes = (size_t)width * (size_t)height * 3;
    for (int i = 0; rc == 0 && i < n_frames; i++) rc = lm_mp4_writer_add_frame(w, rgb + frame_bytes * (size_t)i);
    if (rc == 0 && p.audio_rate > 0 && n_audio > 0) rc = lm_mp4_writer_add_audio(w, audio, n_audio);
    if (rc == 0) rc = lm_mp4_writer_finish(w);
    if (rc < 0 && w) {   /* the writer holds the message */
        e.status = rc;
        snprintf(e.msg, sizeof e.msg, "%s", lm_mp4_writer_error(w));
    }
    lm_mp4_writer_free(&w);   /* deletes the partial file on failure */
    return report(rc, &e, err, err_size);
}

int loom_video_from_rgb(const uint8_t *rgb, int n_frames, int width, int height, double fps, loom_video **out,
                        char *err, size_t err_size)
{
    lm_error e = {0};
    if (!out) return LOOM_ERR_INVALID_ARG;
    *out = NULL;
    if (!rgb || n_frames < 1 || n_frames > 65536 || width < 1 || height < 1 || width > 16384 || height > 16384 ||
        !(fps > 0) || fps > 1e6)
        return report(lm_fail(&e, LOOM_ERR_INVALID_ARG, "video: %d frames of %dx%d at %g fps is not a video",
                              n_frames, width, height, fps), &e, err, err_size);
    const size_t frame = (size_t)width * (size_t)height * 3;
    loom_video *v = calloc(1, sizeof *v);
    if (v) {
        v->rgb = malloc(frame * (size_t)n_frames);
        v->t = malloc((size_t)n_frames * sizeof *v->t);
        v->pts = malloc((size_t)n_frames * sizeof *v->pts);
    }
    if (!v || !v->rgb || !v->t || !v->pts) {
        lm_video_free(&v);
        return report(lm_fail(&e, LOOM_ERR_NO_MEMORY, "video: out of memory for %d frames", n_frames), &e, err, err_size);
    }
    memcpy(v->rgb, rgb, frame * (size_t)n_frames);
    v->n_frames = n_frames;
    v->width = width;
    v->height = height;
    for (int i = 0; i < n_frames; i++) {
        v->pts[i] = i / fps;
        v->t[i] = (i + 0.5) / fps;
    }
    snprintf(v->codec, sizeof v->codec, "rawvideo");
    snprintf(v->container, sizeof v->container, "memory");
    v->info = (loom_video_info){.duration = n_frames / fps, .fps = fps, .n_frames = n_frames, .width = width,
                                .height = height, .codec = v->codec, .container = v->container};
    *out = v;
    return 0;
}
