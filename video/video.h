/* video/ internal contract: decode + frame sampling (video_io.c) and MP4 writing
 * (mp4_writer.c). The public face is the "Video" section of include/loom.h; the structs
 * below are the public opaque handles' definitions. Knows nothing of models. */
#ifndef LM_VIDEO_H
#define LM_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#include "lib/core/error.h"

/* Sampled frames. Everything is allocated once, when the number of samples is known. */
struct loom_video {
    int      n_frames;     /* number of samples, >= 1                                   */
    int      width;        /* of every frame, pixels                                    */
    int      height;
    uint8_t *rgb;          /* [n_frames][height][width][3] RGB8, owned                  */
    double  *t;            /* [n_frames] sample times, s from the first frame, owned    */
    double  *pts;          /* [n_frames] shown source frame's time, s from the first    */
    loom_video_info info;  /* the source, as probed                                     */
    int64_t  n_decoded;    /* frames the decoder produced to get these (a cost statistic)  */
    int      n_seeks;      /* seeks made                                                */
    char     codec[32];    /* info.codec points here                                    */
    char     container[32];/* info.container points here                                */
};

/* Probe `path` without decoding any frame: size, duration, frame rate, frame count. */
int lm_video_probe(const char *path, const loom_video_params *p, loom_video_info *out, lm_error *e);

/* Sample frames from the file `path` (or from the `size` bytes at `data`, which must stay
 * valid during the call) as loom_video_params says; *out is owned by the caller
 * (lm_video_free). On failure *out is NULL and `e` names the problem. */
int lm_video_sample(const char *path, const loom_video_params *p, loom_video **out, lm_error *e);
int lm_video_sample_buffer(const uint8_t *data, size_t size, const loom_video_params *p,
                           loom_video **out, lm_error *e);
void lm_video_free(loom_video **v);

/* The sample times for a source of `duration` seconds: n_frames > 0 gives
 * t_i = (i + 0.5) * duration / n_frames; else fps > 0 gives t_i = (i + 0.5) / fps for every
 * t_i < duration (at least one). Returns the count, or a negative status (e.g. over
 * max_frames) with `e` set. With t == NULL only counts. */
int lm_video_sample_times(double duration, const loom_video_params *p, double *t, lm_error *e);

/* MP4 writer (H.264 through libx264 when this FFmpeg has it, else MPEG-4 Part 2). */
typedef struct loom_mp4_writer lm_mp4_writer;
int  lm_mp4_writer_open(const char *path, int width, int height, const loom_mp4_params *p,
                        lm_mp4_writer **out, lm_error *e);
int  lm_mp4_writer_add_frame(lm_mp4_writer *w, const uint8_t *rgb);   /* [height][width][3] */
int  lm_mp4_writer_add_audio(lm_mp4_writer *w, const float *samples, int64_t n);  /* [n][channels] */
int  lm_mp4_writer_finish(lm_mp4_writer *w);
void lm_mp4_writer_free(lm_mp4_writer **w);
const char *lm_mp4_writer_error(const lm_mp4_writer *w);

/* Route FFmpeg's av_log into lm_log (once per process; idempotent). */
void lm_video_route_av_log(void);

#endif
