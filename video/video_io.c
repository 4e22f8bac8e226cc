/* Video decode + frame sampling through libavformat / libavcodec / libswscale.
 *
 * One pass over sorted sample times. For each time t the answer is the last decoded frame
 * whose presentation time is <= t. Between targets we either keep decoding forward or, when
 * the keyframe before t lies beyond where the decoder already is (or, without an index, t is
 * far ahead), seek backward to that keyframe and decode forward from there. Only two decoded
 * frames are referenced at a time (`prev`, `ahead`); each answer is converted straight into
 * its slot of the output, so memory is the sampled frames plus the decoder's state. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/ffmpeg.h"
#include "video/video.h"

/* Past this much decoding ahead (with no keyframe index to tell better), seek instead. */
#define SEEK_AHEAD_S     2.0
/* With an index, seek when the keyframe before the target is this many frames ahead. */
#define SEEK_MIN_SKIP_FRAMES 12
/* A stream that ends cleanly more than this fraction of its duration (or 3 frames) before a
 * sample time is reported as truncated. */
#define TRUNCATED_SLACK_FRAC 0.05
#define MAX_SEEK_RETRIES 6

/* ------------------------------------------------------------------ av_log -> lm_log */

static void av_log_to_lm(void *avcl, int level, const char *fmt, va_list ap)
{
    if (level > AV_LOG_WARNING) return;   /* FFmpeg's info/verbose chatter stays quiet */
    const lm_ffmpeg *av = lm_ffmpeg_get();
    char line[1024];
    int  print_prefix = 1;
    av->av_log_format_line2(avcl, level, fmt, ap, line, sizeof line, &print_prefix);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    if (n) lm_log(level <= AV_LOG_ERROR ? LOOM_LOG_WARN : LOOM_LOG_DEBUG, "ffmpeg: %s", line);
}

static pthread_once_t g_av_log_once = PTHREAD_ONCE_INIT;
/* FFmpeg trusts some sizes in headers: cap every single FFmpeg block, process-wide, as
 * audio_io.c does (a 256 MiB block is over 2.5× an 8K RGB frame). */
#define AV_MAX_BLOCK ((size_t)256 << 20)

static void install_av_log(void)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();   /* loaded: called only behind an entry point */
    av->av_log_set_callback(av_log_to_lm);
    av->av_max_alloc(AV_MAX_BLOCK);
}
void lm_video_route_av_log(void) { pthread_once(&g_av_log_once, install_av_log); }

/* ------------------------------------------------------------------ params, times */

loom_video_params loom_video_default_params(void)
{
    return (loom_video_params){
        .n_frames = 8, .fps = 0, .width = 0, .height = 0,
        .max_frames = 256, .max_width = 8192, .max_height = 8192, .n_threads = 0,
    };
}

static int check_params(const loom_video_params *p, lm_error *e)
{
    if (p->n_frames < 0) return lm_fail(e, LOOM_ERR_INVALID_ARG, "video: n_frames %d < 0", p->n_frames);
    if (p->n_frames == 0 && !(p->fps > 0 && isfinite(p->fps)))
        return lm_fail(e, LOOM_ERR_INVALID_ARG, "video: need n_frames > 0 or fps > 0 (got n_frames 0, fps %g)", p->fps);
    if (p->width < 0 || p->height < 0)
        return lm_fail(e, LOOM_ERR_INVALID_ARG, "video: output size %dx%d is negative", p->width, p->height);
    if (p->max_frames < 1 || p->max_width < 1 || p->max_height < 1)
        return lm_fail(e, LOOM_ERR_INVALID_ARG, "video: limits must be >= 1 (max_frames %d, max %dx%d)",
                       p->max_frames, p->max_width, p->max_height);
    if (p->width > p->max_width || p->height > p->max_height)
        return lm_fail(e, LOOM_ERR_LIMIT, "video: output size %dx%d exceeds the limit %dx%d (max_width x max_height)",
                       p->width, p->height, p->max_width, p->max_height);
    if (p->n_threads < 0 || p->n_threads > 256)
        return lm_fail(e, LOOM_ERR_INVALID_ARG, "video: n_threads %d out of range 0..256", p->n_threads);
    return 0;
}

int lm_video_sample_times(double duration, const loom_video_params *p, double *t, lm_error *e)
{
    if (!(duration > 0) || !isfinite(duration))
        return lm_fail(e, LOOM_ERR_FORMAT, "video: duration %g s is not positive; cannot place samples", duration);
    double n;
    if (p->n_frames > 0) {
        n = p->n_frames;
    } else {
        /* count of i >= 0 with (i + 0.5) / fps < duration, at least 1 */
        n = ceil(duration * p->fps - 0.5);
        if (n < 1) n = 1;
    }
    if (n > p->max_frames)
        return lm_fail(e, LOOM_ERR_LIMIT, "video: %.0f samples (%s) exceed max_frames %d", n,
                       p->n_frames > 0 ? "n_frames" : "duration x fps", p->max_frames);
    int count = (int)n;
    if (t) {
        for (int i = 0; i < count; i++)
            t[i] = p->n_frames > 0 ? (i + 0.5) * duration / count : (i + 0.5) / p->fps;
    }
    return count;
}

/* ------------------------------------------------------------------ memory input */

typedef struct mem_reader {
    const uint8_t *data;
    size_t         size;
    size_t         pos;
} mem_reader;

static int mem_read(void *opaque, uint8_t *buf, int buf_size)
{
    mem_reader *m = opaque;
    size_t left = m->size - m->pos;
    if (left == 0) return AVERROR_EOF;
    size_t n = (size_t)buf_size < left ? (size_t)buf_size : left;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (int)n;
}

static int64_t mem_seek(void *opaque, int64_t offset, int whence)
{
    mem_reader *m = opaque;
    if (whence & AVSEEK_SIZE) return (int64_t)m->size;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)m->pos; break;
    case SEEK_END: base = (int64_t)m->size; break;
    default: return AVERROR(EINVAL);
    }
    if (offset > INT64_MAX - base) return AVERROR(EINVAL);
    int64_t to = base + offset;
    if (to < 0 || (uint64_t)to > m->size) return AVERROR(EINVAL);
    m->pos = (size_t)to;
    return to;
}

/* ------------------------------------------------------------------ source */

typedef struct source {
    const char      *name;      /* for messages */
    AVFormatContext *fmt;
    AVIOContext     *avio;      /* only for memory input; owned */
    mem_reader       mem;
    AVCodecContext  *dec;
    AVStream        *st;
    int              si;        /* stream index */
    double           tb;        /* seconds per stream time-base tick */
    int64_t          start;     /* first timestamp, stream ticks */
    loom_video_info  info;
    AVPacket        *pkt;
    AVFrame         *frame;     /* scratch for receive */
    int              eof_sent;  /* the demuxer ran dry; the decoder was drained */
    int              read_err;  /* demuxer error other than EOF (0 if none) */
    int              n_decode_errors;
    int64_t          n_decoded;
    double           last_pts;  /* of the last decoded frame, s; for missing timestamps */
    double           frame_dur; /* 1 / fps, s (0 unknown) */
} source;

static void source_close(source *s)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    av->av_packet_free(&s->pkt);
    av->av_frame_free(&s->frame);
    av->avcodec_free_context(&s->dec);
    av->avformat_close_input(&s->fmt);
    if (s->avio) {
        av->av_freep(&s->avio->buffer);
        av->avio_context_free(&s->avio);
    }
}

static const char *av_err(int err, char *buf, size_t n)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    av->av_strerror(err, buf, n);
    return buf;
}

static int check_dims(const source *s, int w, int h, const loom_video_params *p, lm_error *e)
{
    if (w > p->max_width || h > p->max_height)
        return lm_fail(e, LOOM_ERR_LIMIT, "%s: video is %dx%d, over the limit %dx%d (max_width x max_height)",
                       s->name, w, h, p->max_width, p->max_height);
    return 0;
}

/* Pick the main video stream: FFmpeg's best, but never cover art (an attached picture). */
static int find_video_stream(AVFormatContext *fmt)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    int best = av->av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (best >= 0 && !(fmt->streams[best]->disposition & AV_DISPOSITION_ATTACHED_PIC)) return best;
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        const AVStream *st = fmt->streams[i];
        if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && !(st->disposition & AV_DISPOSITION_ATTACHED_PIC))
            return (int)i;
    }
    return -1;
}

static void describe_streams(const AVFormatContext *fmt, char *buf, size_t n)
{
    int counts[AVMEDIA_TYPE_NB] = {0};
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        int t = fmt->streams[i]->codecpar->codec_type;
        if (t >= 0 && t < AVMEDIA_TYPE_NB) counts[t]++;
    }
    snprintf(buf, n, "%u stream(s): %d audio, %d subtitle, %d data, %d video cover art", fmt->nb_streams,
             counts[AVMEDIA_TYPE_AUDIO], counts[AVMEDIA_TYPE_SUBTITLE], counts[AVMEDIA_TYPE_DATA],
             counts[AVMEDIA_TYPE_VIDEO]);
}

/* Open the container, pick the video stream, fill s->info. With open_decoder, also open
 * the decoder. Every size is checked against the limits before any frame is decoded. */
static int source_open(source *s, const char *path, const uint8_t *data, size_t size,
                       const loom_video_params *p, int open_decoder, lm_error *e)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    char msg[128];
    lm_video_route_av_log();
    s->name = path ? path : "<memory>";
    s->fmt = av->avformat_alloc_context();
    if (!s->fmt) return lm_fail(e, LOOM_ERR_NO_MEMORY, "%s: out of memory", s->name);
    if (!path) {
        s->mem = (mem_reader){data, size, 0};
        enum { AVIO_BUF = 32768 };
        uint8_t *buf = av->av_malloc(AVIO_BUF);
        if (!buf) return lm_fail(e, LOOM_ERR_NO_MEMORY, "%s: out of memory", s->name);
        s->avio = av->avio_alloc_context(buf, AVIO_BUF, 0, &s->mem, mem_read, NULL, mem_seek);
        if (!s->avio) { av->av_free(buf); return lm_fail(e, LOOM_ERR_NO_MEMORY, "%s: out of memory", s->name); }
        s->fmt->pb = s->avio;
        s->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    }
    /* Untrusted input: a playlist-like file (HLS, concat, …) must not make FFmpeg open other
     * resources. A path may only use the local-file protocol; memory input none at all. */
    AVDictionary *open_opts = NULL;
    av->av_dict_set(&open_opts, "protocol_whitelist", path ? "file" : "none", 0);
    int rc = av->avformat_open_input(&s->fmt, path ? path : "", NULL, &open_opts);
    av->av_dict_free(&open_opts);
    if (rc < 0) {   /* s->fmt was freed */
        int st = rc == AVERROR(ENOENT) || rc == AVERROR(EACCES) || rc == AVERROR(EISDIR) ? LOOM_ERR_IO : LOOM_ERR_FORMAT;
        return lm_fail(e, st, "%s: cannot open as a video: %s", s->name, av_err(rc, msg, sizeof msg));
    }
    /* Sizes a header already states are refused before stream probing decodes anything. */
    for (unsigned i = 0; i < s->fmt->nb_streams; i++) {
        const AVCodecParameters *cp = s->fmt->streams[i]->codecpar;
        if (cp->codec_type != AVMEDIA_TYPE_VIDEO || (s->fmt->streams[i]->disposition & AV_DISPOSITION_ATTACHED_PIC)) continue;
        if ((rc = check_dims(s, cp->width, cp->height, p, e)) < 0) return rc;
    }
    /* Probing may decode a frame: cap its picture size at the limit too. */
    AVDictionary **opts = NULL;
    if (s->fmt->nb_streams > 0) {
        opts = av->av_calloc(s->fmt->nb_streams, sizeof *opts);
        if (!opts) return lm_fail(e, LOOM_ERR_NO_MEMORY, "%s: out of memory", s->name);
        for (unsigned i = 0; i < s->fmt->nb_streams; i++)
            av->av_dict_set_int(&opts[i], "max_pixels", (int64_t)p->max_width * p->max_height, 0);
    }
    rc = av->avformat_find_stream_info(s->fmt, opts);
    for (unsigned i = 0; opts && i < s->fmt->nb_streams; i++) av->av_dict_free(&opts[i]);
    av->av_free(opts);
    if (rc < 0) return lm_fail(e, LOOM_ERR_FORMAT, "%s: cannot read stream info: %s", s->name, av_err(rc, msg, sizeof msg));

    s->si = find_video_stream(s->fmt);
    if (s->si < 0) {
        char what[160];
        describe_streams(s->fmt, what, sizeof what);
        return lm_fail(e, LOOM_ERR_NOT_FOUND, "%s: no video stream (%s)", s->name, what);
    }
    s->st = s->fmt->streams[s->si];
    const AVCodecParameters *cp = s->st->codecpar;
    if ((rc = check_dims(s, cp->width, cp->height, p, e)) < 0) return rc;
    if (cp->width <= 0 || cp->height <= 0)
        return lm_fail(e, LOOM_ERR_FORMAT, "%s: video stream has no picture size (%dx%d)", s->name, cp->width, cp->height);
    if (s->st->time_base.num <= 0 || s->st->time_base.den <= 0)
        return lm_fail(e, LOOM_ERR_FORMAT, "%s: video stream has an invalid time base %d/%d", s->name,
                       s->st->time_base.num, s->st->time_base.den);
    s->tb    = av_q2d(s->st->time_base);
    s->start = s->st->start_time != AV_NOPTS_VALUE ? s->st->start_time : 0;

    loom_video_info *in = &s->info;
    memset(in, 0, sizeof *in);
    in->width  = cp->width;
    in->height = cp->height;
    in->codec  = av->avcodec_get_name(cp->codec_id);
    in->container = s->fmt->iformat->name;
    AVRational fr = av->av_guess_frame_rate(s->fmt, s->st, NULL);
    in->fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 0;
    if (s->st->duration != AV_NOPTS_VALUE && s->st->duration > 0)
        in->duration = s->st->duration * s->tb;
    else if (s->fmt->duration != AV_NOPTS_VALUE && s->fmt->duration > 0) {
        in->duration = s->fmt->duration / (double)AV_TIME_BASE;
        /* the container's duration counts from its own start; ours from the video's */
        if (s->fmt->start_time != AV_NOPTS_VALUE && s->st->start_time != AV_NOPTS_VALUE) {
            double lead = s->st->start_time * s->tb - s->fmt->start_time / (double)AV_TIME_BASE;
            if (lead > 0 && lead < in->duration) in->duration -= lead;
        }
    }
    if (s->st->nb_frames > 0) in->n_frames = s->st->nb_frames;
    else if (in->duration > 0 && in->fps > 0) in->n_frames = llround(in->duration * in->fps);
    s->frame_dur = in->fps > 0 ? 1.0 / in->fps : 0;
    if (s->st->nb_frames == 0 && !(in->duration > 0))
        return lm_fail(e, LOOM_ERR_FORMAT, "%s: the video stream has no frames", s->name);

    if (!open_decoder) return 0;
    const AVCodec *codec = av->avcodec_find_decoder(cp->codec_id);
    if (!codec)
        return lm_fail(e, LOOM_ERR_UNSUPPORTED, "%s: this FFmpeg has no decoder for video codec '%s'", s->name, in->codec);
    s->dec = av->avcodec_alloc_context3(codec);
    s->pkt = av->av_packet_alloc();
    s->frame = av->av_frame_alloc();
    if (!s->dec || !s->pkt || !s->frame) return lm_fail(e, LOOM_ERR_NO_MEMORY, "%s: out of memory", s->name);
    rc = av->avcodec_parameters_to_context(s->dec, cp);
    if (rc < 0) return lm_fail(e, LOOM_ERR_FORMAT, "%s: bad codec parameters: %s", s->name, av_err(rc, msg, sizeof msg));
    s->dec->pkt_timebase = s->st->time_base;
    s->dec->thread_count = p->n_threads;
    s->dec->max_pixels   = (int64_t)p->max_width * p->max_height;
    rc = av->avcodec_open2(s->dec, codec, NULL);
    if (rc < 0)
        return lm_fail(e, LOOM_ERR_UNSUPPORTED, "%s: cannot open the '%s' decoder: %s", s->name, codec->name,
                       av_err(rc, msg, sizeof msg));
    return 0;
}

/* Decode the next frame (presentation order) into `out` (unreferenced by the caller).
 * Returns 1 with a frame, 0 at the end of the stream, < 0 on a hard error. */
static int decode_next(source *s, AVFrame *out, double *pts_s, const loom_video_params *p, lm_error *e)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    char msg[128];
    for (;;) {
        int rc = av->avcodec_receive_frame(s->dec, out);
        if (rc == 0) {
            if (out->width > p->max_width || out->height > p->max_height) {
                av->av_frame_unref(out);
                return check_dims(s, out->width, out->height, p, e);
            }
            int64_t ts = out->best_effort_timestamp;
            double t = ts != AV_NOPTS_VALUE ? (ts - s->start) * s->tb
                     : s->n_decoded ? s->last_pts + s->frame_dur : 0;
            s->last_pts = t;
            s->n_decoded++;
            *pts_s = t;
            return 1;
        }
        if (rc == AVERROR_EOF) return 0;
        if (rc != AVERROR(EAGAIN)) {
            /* a broken frame: conceal by skipping it, like the ffmpeg tool does */
            if (++s->n_decode_errors > 1000)
                return lm_fail(e, LOOM_ERR_FORMAT, "%s: too many undecodable frames: %s", s->name, av_err(rc, msg, sizeof msg));
            continue;
        }
        if (s->eof_sent) return 0;
        /* the decoder wants input */
        for (;;) {
            rc = av->av_read_frame(s->fmt, s->pkt);
            if (rc < 0) {
                if (rc != AVERROR_EOF) s->read_err = rc;
                s->eof_sent = 1;
                av->avcodec_send_packet(s->dec, NULL);   /* drain */
                break;
            }
            if (s->pkt->stream_index != s->si) { av->av_packet_unref(s->pkt); continue; }
            rc = av->avcodec_send_packet(s->dec, s->pkt);
            av->av_packet_unref(s->pkt);
            if (rc < 0 && rc != AVERROR(EAGAIN)) {
                if (rc == AVERROR(ENOMEM)) return lm_fail(e, LOOM_ERR_NO_MEMORY, "%s: decoder out of memory", s->name);
                if (++s->n_decode_errors > 1000)
                    return lm_fail(e, LOOM_ERR_FORMAT, "%s: too many undecodable packets: %s", s->name, av_err(rc, msg, sizeof msg));
                continue;
            }
            break;
        }
    }
}

/* Seek so decoding resumes at the keyframe at or before `t` (s from the start). */
static int seek_to(source *s, double t)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    int64_t ts = s->start + (int64_t)floor((t > 0 ? t : 0) / s->tb);
    int rc = av->av_seek_frame(s->fmt, s->si, ts, AVSEEK_FLAG_BACKWARD);
    if (rc < 0) return rc;
    av->avcodec_flush_buffers(s->dec);
    s->eof_sent = 0;
    s->read_err = 0;
    return 0;
}

/* Where decoding from the keyframe before `t` would start (s), from the demuxer's index;
 * NAN if the index does not say. */
static double keyframe_before(source *s, double t)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    if (av->avformat_index_get_entries_count(s->st) <= 0) return NAN;
    int64_t ts = s->start + (int64_t)floor(t / s->tb);
    const AVIndexEntry *ie = av->avformat_index_get_entry_from_timestamp(s->st, ts, AVSEEK_FLAG_BACKWARD);
    if (!ie) return NAN;
    return (ie->timestamp - s->start) * s->tb;
}

/* RGB conversion state: the scaler, rebuilt only when the source's format changes. */
typedef struct converter {
    struct SwsContext *sws;
    int src_w, src_h, src_fmt, cs, full_range;   /* what sws was set up for */
} converter;

/* Convert `f` to RGB8 at w x h into dst (tightly packed). */
static int convert_frame(source *s, converter *cv, const AVFrame *f, uint8_t *dst, int w, int h, lm_error *e)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    enum AVPixelFormat fmt = f->format;
    int full_range = f->color_range == AVCOL_RANGE_JPEG;
    /* deprecated "J" formats mean full range */
    switch (fmt) {
    case AV_PIX_FMT_YUVJ420P: fmt = AV_PIX_FMT_YUV420P; full_range = 1; break;
    case AV_PIX_FMT_YUVJ422P: fmt = AV_PIX_FMT_YUV422P; full_range = 1; break;
    case AV_PIX_FMT_YUVJ444P: fmt = AV_PIX_FMT_YUV444P; full_range = 1; break;
    default: break;
    }
    int cs = f->colorspace;
    if (cs == AVCOL_SPC_UNSPECIFIED || cs == AVCOL_SPC_RESERVED || cs == AVCOL_SPC_RGB) cs = SWS_CS_DEFAULT;
    if (!cv->sws || cv->src_w != f->width || cv->src_h != f->height || cv->src_fmt != (int)fmt || cv->cs != cs ||
        cv->full_range != full_range) {
        /* bicubic, like the ffmpeg tool's scale filter; dst size is fixed for the whole run */
        av->sws_freeContext(cv->sws);
        cv->sws = av->sws_getContext(f->width, f->height, fmt, w, h, AV_PIX_FMT_RGB24,
                                     SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
        if (!cv->sws)
            return lm_fail(e, LOOM_ERR_UNSUPPORTED, "%s: cannot convert %dx%d %s frames to RGB", s->name, f->width,
                           f->height, av->av_get_pix_fmt_name(fmt) ? av->av_get_pix_fmt_name(fmt) : "?");
        av->sws_setColorspaceDetails(cv->sws, av->sws_getCoefficients(cs), full_range,
                                     av->sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
        cv->src_w = f->width;
        cv->src_h = f->height;
        cv->src_fmt = fmt;
        cv->cs = cs;
        cv->full_range = full_range;
    }
    uint8_t *dst_planes[4] = {dst, NULL, NULL, NULL};
    int      dst_stride[4] = {w * 3, 0, 0, 0};
    int rows = av->sws_scale(cv->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst_planes, dst_stride);
    if (rows != h) return lm_fail(e, LOOM_ERR_FORMAT, "%s: frame conversion produced %d of %d rows", s->name, rows, h);
    return 0;
}

static void output_size(const loom_video_params *p, int src_w, int src_h, int *w, int *h)
{
    *w = p->width;
    *h = p->height;
    if (!*w && !*h) { *w = src_w; *h = src_h; }
    else if (!*w) *w = (int)fmax(1, llround((double)src_w * *h / src_h));
    else if (!*h) *h = (int)fmax(1, llround((double)src_h * *w / src_w));
}

void lm_video_free(loom_video **v)
{
    if (!v || !*v) return;
    free((*v)->rgb);
    free((*v)->t);
    free((*v)->pts);
    free(*v);
    *v = NULL;
}

static int sample(const char *path, const uint8_t *data, size_t size, const loom_video_params *p,
                  loom_video **out, lm_error *e)
{
    if (!out) return lm_fail(e, LOOM_ERR_INVALID_ARG, "video: out is NULL");
    *out = NULL;
    int prc = check_params(p, e);
    if (prc < 0) return prc;
    const lm_ffmpeg *av = lm_ffmpeg_get();
    if (!av) return lm_ffmpeg_fail(e);
    lm_error local;
    if (!e) e = &local;
    lm_error_clear(e);

    source s = {0};
    converter cv = {0};
    AVFrame *prev = av->av_frame_alloc(), *ahead = av->av_frame_alloc();
    loom_video *v = NULL;
    int rc = 0;
    if (!prev || !ahead) { rc = lm_fail(e, LOOM_ERR_NO_MEMORY, "video: out of memory"); goto done; }
    if ((rc = source_open(&s, path, data, size, p, 1, e)) < 0) goto done;

    int w, h;
    output_size(p, s.info.width, s.info.height, &w, &h);
    if (w > p->max_width || h > p->max_height) {
        rc = lm_fail(e, LOOM_ERR_LIMIT, "%s: output size %dx%d exceeds the limit %dx%d (max_width x max_height)", s.name, w, h, p->max_width, p->max_height);
        goto done;
    }
    if (!(s.info.duration > 0)) {
        rc = lm_fail(e, LOOM_ERR_FORMAT, "%s: the video's duration is unknown or zero (no frames?)", s.name);
        goto done;
    }
    int n = lm_video_sample_times(s.info.duration, p, NULL, e);
    if (n < 0) { rc = n; goto done; }

    size_t frame_bytes = (size_t)w * (size_t)h * 3;   /* w, h <= INT_MAX each: fits in 64 bits */
    if (frame_bytes > SIZE_MAX / (size_t)n) {
        rc = lm_fail(e, LOOM_ERR_LIMIT, "%s: %d frames of %dx%d do not fit in memory", s.name, n, w, h);
        goto done;
    }
    v = calloc(1, sizeof *v);
    if (v) {
        v->rgb = malloc(frame_bytes * (size_t)n);
        v->t   = malloc(sizeof *v->t * (size_t)n);
        v->pts = malloc(sizeof *v->pts * (size_t)n);
    }
    if (!v || !v->rgb || !v->t || !v->pts) {
        rc = lm_fail(e, LOOM_ERR_NO_MEMORY, "%s: out of memory for %d frames of %dx%d", s.name, n, w, h);
        goto done;
    }
    v->n_frames = n;
    v->width = w;
    v->height = h;
    lm_video_sample_times(s.info.duration, p, v->t, NULL);

    int    have_prev = 0, have_ahead = 0, can_seek = 1, n_seeks = 0;
    double prev_t = 0, ahead_t = 0;
    for (int i = 0; i < n; i++) {
        double t = v->t[i];
        /* Where the decoder stands, and whether the keyframe before t is past it. */
        double pos = have_ahead ? ahead_t : have_prev ? prev_t : -INFINITY;
        int want_seek = 0;
        if (can_seek && !(have_ahead && ahead_t > t)) {
            double kf = keyframe_before(&s, t);
            /* worth it only when it skips more decoding than a seek costs (flushing the
             * decoder's pipeline, re-reading): a dozen frames */
            double skip = kf - (isfinite(pos) ? pos : 0);
            if (!isnan(kf)) want_seek = skip > (s.frame_dur > 0 ? SEEK_MIN_SKIP_FRAMES * s.frame_dur : 0.5);
            else want_seek = t - (isfinite(pos) ? pos : 0) > SEEK_AHEAD_S;
        }
        int tries = 0;
        double seek_t = t;
        for (;;) {
            if (want_seek) {
                if (seek_to(&s, seek_t) < 0) {
                    /* not seekable: decode forward from where we are (restart if needed) */
                    can_seek = 0;
                    if (!(have_prev || have_ahead) && s.n_decoded) {
                        rc = lm_fail(e, LOOM_ERR_UNSUPPORTED, "%s: cannot seek in this file", s.name);
                        goto done;
                    }
                } else {
                    n_seeks++;
                    av->av_frame_unref(prev);
                    av->av_frame_unref(ahead);
                    have_prev = have_ahead = 0;
                }
                want_seek = 0;
            }
            /* decode until the frame after t is in `ahead` */
            while (!(have_ahead && ahead_t > t)) {
                if (have_ahead) {   /* ahead is at or before t: it becomes the candidate */
                    av->av_frame_unref(prev);
                    av->av_frame_move_ref(prev, ahead);
                    prev_t = ahead_t;
                    have_prev = 1;
                    have_ahead = 0;
                }
                int got = decode_next(&s, ahead, &ahead_t, p, e);
                if (got < 0) { rc = got; goto done; }
                if (!got) break;
                have_ahead = 1;
            }
            /* A seek that landed past t (inexact index): go back further and retry. */
            if (!have_prev && have_ahead && ahead_t > t + 1e-6 && can_seek && seek_t > 0 && tries < MAX_SEEK_RETRIES) {
                seek_t = t - (double)(1 << tries) * fmax(1.0, 4 * s.frame_dur);
                if (seek_t < 0) seek_t = 0;
                tries++;
                want_seek = 1;
                continue;
            }
            break;
        }
        const AVFrame *shown;
        double shown_t;
        if (have_prev) { shown = prev; shown_t = prev_t; }
        else if (have_ahead) { shown = ahead; shown_t = ahead_t; }   /* t precedes the first frame */
        else {
            char msg[128] = "end of file";
            if (s.read_err) av_err(s.read_err, msg, sizeof msg);
            rc = lm_fail(e, LOOM_ERR_FORMAT, "%s: no decodable video frame at or before %.3f s (truncated or damaged file? %s)",
                         s.name, t, msg);
            goto done;
        }
        /* The stream ran out well before t: the file is cut short or its duration lies.
         * A read error is a sure sign; after a clean end allow some slack, because a
         * container's duration may count a longer audio track. */
        double slack = s.read_err ? 1.5 * s.frame_dur : fmax(3 * s.frame_dur, TRUNCATED_SLACK_FRAC * s.info.duration);
        if (!have_ahead && s.eof_sent && t - shown_t > slack) {
            char msg[128] = "end of file";
            if (s.read_err) av_err(s.read_err, msg, sizeof msg);
            rc = lm_fail(e, LOOM_ERR_FORMAT, "%s: video data ends at %.3f s but the file says %.3f s (truncated? %s)",
                         s.name, shown_t, s.info.duration, msg);
            goto done;
        }
        v->pts[i] = shown_t;
        if ((rc = convert_frame(&s, &cv, shown, v->rgb + frame_bytes * (size_t)i, w, h, e)) < 0) goto done;
    }
    snprintf(v->codec, sizeof v->codec, "%s", s.info.codec);
    snprintf(v->container, sizeof v->container, "%s", s.info.container);
    v->info = s.info;
    v->n_decoded = s.n_decoded;
    v->n_seeks = n_seeks;
    v->info.codec = v->codec;
    v->info.container = v->container;
    *out = v;
    v = NULL;
    rc = 0;
done:
    lm_video_free(&v);
    av->sws_freeContext(cv.sws);
    av->av_frame_free(&prev);
    av->av_frame_free(&ahead);
    source_close(&s);
    return rc;
}

int lm_video_sample(const char *path, const loom_video_params *p, loom_video **out, lm_error *e)
{
    if (!path) return lm_fail(e, LOOM_ERR_INVALID_ARG, "video: path is NULL");
    return sample(path, NULL, 0, p, out, e);
}

int lm_video_sample_buffer(const uint8_t *data, size_t size, const loom_video_params *p, loom_video **out, lm_error *e)
{
    if (!data && size) return lm_fail(e, LOOM_ERR_INVALID_ARG, "video: data is NULL");
    return sample(NULL, data ? data : (const uint8_t *)"", size, p, out, e);
}

int lm_video_probe(const char *path, const loom_video_params *p, loom_video_info *out, lm_error *e)
{
    if (!path || !out) return lm_fail(e, LOOM_ERR_INVALID_ARG, "video: path or out is NULL");
    memset(out, 0, sizeof *out);
    lm_error local;
    if (!e) e = &local;
    lm_error_clear(e);
    if (!lm_ffmpeg_get()) return lm_ffmpeg_fail(e);
    source s = {0};
    int rc = source_open(&s, path, NULL, 0, p, 0, e);
    if (rc == 0) *out = s.info;   /* codec / container names are FFmpeg's static strings */
    source_close(&s);
    return rc;
}
