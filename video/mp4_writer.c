/* RGB8 frames -> MP4 (H.264 through libx264, else MPEG-4 Part 2), yuv420p, constant frame
 * rate, index moved to the front (+faststart). The file is written under a temporary name
 * in the target's folder and renamed into place by finish(), so readers never see a partial
 * file and a failure or an abandoned writer leaves nothing. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/ffmpeg.h"
#include "video/video.h"

struct loom_mp4_writer {
    lm_error           err;
    char              *path;      /* final name, owned */
    char              *tmp;       /* temporary name in the same folder, owned; NULL once renamed/removed */
    int                width, height;
    AVFormatContext   *oc;
    AVCodecContext    *enc;
    AVStream          *st;
    AVFrame           *yuv;       /* [height][width] yuv420p, reused for every frame */
    AVPacket          *pkt;
    struct SwsContext *sws;       /* RGB24 -> yuv420p, BT.601 limited range */
    int64_t            n_frames;  /* frames added; the next frame's pts */
    /* optional audio track (AAC), fed interleaved float samples */
    AVCodecContext    *aenc;
    AVStream          *ast;
    AVFrame           *aframe;    /* [channels][frame_size] fltp, being filled */
    int                afill;     /* samples in aframe so far */
    int64_t            a_pts;     /* samples sent to the encoder, in 1/rate */
    int                header_written;
    int                finished;
};

loom_mp4_params loom_mp4_default_params(void)
{
    return (loom_mp4_params){.fps = 24, .crf = 18, .codec = NULL, .preset = NULL, .n_threads = 0,
                             .audio_rate = 0, .audio_channels = 1, .audio_bitrate = 0};
}

static const char *av_err(int err, char *buf, size_t n)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    av->av_strerror(err, buf, n);
    return buf;
}

/* Encode `frame` (NULL drains) with `enc` and write every packet that comes out to `st`. */
static int encode_write(lm_mp4_writer *w, AVCodecContext *enc, AVStream *st, const AVFrame *frame)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    char msg[128];
    int rc = av->avcodec_send_frame(enc, frame);
    if (rc < 0) return lm_fail(&w->err, LOOM_ERR_IO, "%s: encoder refused a frame: %s", w->path, av_err(rc, msg, sizeof msg));
    for (;;) {
        rc = av->avcodec_receive_packet(enc, w->pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
        if (rc < 0) return lm_fail(&w->err, LOOM_ERR_IO, "%s: encoding failed: %s", w->path, av_err(rc, msg, sizeof msg));
        if (w->pkt->duration <= 0 && enc == w->enc) w->pkt->duration = 1;   /* one frame in 1/fps */
        av->av_packet_rescale_ts(w->pkt, enc->time_base, st->time_base);
        w->pkt->stream_index = st->index;
        rc = av->av_interleaved_write_frame(w->oc, w->pkt);   /* takes the packet's reference */
        if (rc < 0) return lm_fail(&w->err, LOOM_ERR_IO, "%s: writing failed: %s", w->path, av_err(rc, msg, sizeof msg));
    }
}

static void remove_tmp(lm_mp4_writer *w)
{
    if (w->tmp) {
        unlink(w->tmp);
        free(w->tmp);
        w->tmp = NULL;
    }
}

void lm_mp4_writer_free(lm_mp4_writer **pw)
{
    if (!pw || !*pw) return;
    const lm_ffmpeg *av = lm_ffmpeg_get();
    lm_mp4_writer *w = *pw;
    if (w->oc && w->oc->pb) av->avio_closep(&w->oc->pb);
    av->avformat_free_context(w->oc);
    av->avcodec_free_context(&w->enc);
    av->avcodec_free_context(&w->aenc);
    av->av_frame_free(&w->aframe);
    av->av_frame_free(&w->yuv);
    av->av_packet_free(&w->pkt);
    av->sws_freeContext(w->sws);
    remove_tmp(w);   /* only still set if finish() did not succeed */
    free(w->path);
    free(w);
    *pw = NULL;
}

const char *lm_mp4_writer_error(const lm_mp4_writer *w) { return w ? w->err.msg : ""; }

/* Pick the encoder: the one named, else libx264, else mpeg4. */
static const AVCodec *pick_encoder(const loom_mp4_params *p)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    if (p->codec) return av->avcodec_find_encoder_by_name(p->codec);
    const AVCodec *c = av->avcodec_find_encoder_by_name("libx264");
    return c ? c : av->avcodec_find_encoder(AV_CODEC_ID_MPEG4);
}

static int open_encoder(lm_mp4_writer *w, const loom_mp4_params *p)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    char msg[128];
    const AVCodec *codec = pick_encoder(p);
    if (!codec)
        return lm_fail(&w->err, LOOM_ERR_UNSUPPORTED, "%s: this FFmpeg has no video encoder '%s'", w->path,
                       p->codec ? p->codec : "libx264 or mpeg4");
    if (codec->type != AVMEDIA_TYPE_VIDEO)
        return lm_fail(&w->err, LOOM_ERR_INVALID_ARG, "%s: '%s' is not a video encoder", w->path, codec->name);
    if (av->avformat_query_codec(w->oc->oformat, codec->id, FF_COMPLIANCE_NORMAL) != 1)
        return lm_fail(&w->err, LOOM_ERR_UNSUPPORTED, "%s: codec '%s' cannot go into an MP4 file", w->path, codec->name);

    AVRational rate = av->av_d2q(p->fps, 1 << 20);   /* 29.97 -> 30000/1001 */
    w->enc = av->avcodec_alloc_context3(codec);
    if (!w->enc) return lm_fail(&w->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", w->path);
    AVCodecContext *c = w->enc;
    c->width = w->width;
    c->height = w->height;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = av_inv_q(rate);
    c->framerate = rate;
    c->sample_aspect_ratio = (AVRational){1, 1};
    c->color_range = AVCOL_RANGE_MPEG;
    c->colorspace = AVCOL_SPC_SMPTE170M;
    c->color_primaries = AVCOL_PRI_SMPTE170M;
    c->color_trc = AVCOL_TRC_SMPTE170M;
    c->thread_count = p->n_threads;
    if (w->oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *opts = NULL;
    if (!strcmp(codec->name, "libx264") || !strcmp(codec->name, "libx265")) {
        av->av_dict_set_int(&opts, "crf", p->crf, 0);
        av->av_dict_set(&opts, "preset", p->preset ? p->preset : "medium", 0);
    } else {
        /* constant quantizer: MPEG-4 Part 2 and friends */
        int q = 1 + p->crf / 8;
        q = q < 2 ? 2 : q > 31 ? 31 : q;
        c->flags |= AV_CODEC_FLAG_QSCALE;
        c->global_quality = FF_QP2LAMBDA * q;
        c->gop_size = 12;
        c->max_b_frames = 0;
    }
    int rc = av->avcodec_open2(c, codec, &opts);
    av->av_dict_free(&opts);
    if (rc < 0) return lm_fail(&w->err, LOOM_ERR_UNSUPPORTED, "%s: cannot open encoder '%s': %s", w->path, codec->name,
                               av_err(rc, msg, sizeof msg));
    w->st = av->avformat_new_stream(w->oc, NULL);
    if (!w->st) return lm_fail(&w->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", w->path);
    rc = av->avcodec_parameters_from_context(w->st->codecpar, c);
    if (rc < 0) return lm_fail(&w->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", w->path);
    w->st->time_base = c->time_base;   /* a hint; the muxer may refine it */
    w->st->avg_frame_rate = rate;
    w->st->r_frame_rate = rate;
    return 0;
}

static int open_audio_encoder(lm_mp4_writer *w, const loom_mp4_params *p)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    char msg[128];
    const AVCodec *codec = av->avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!codec) return lm_fail(&w->err, LOOM_ERR_UNSUPPORTED, "%s: this FFmpeg has no AAC encoder", w->path);
    w->aenc = av->avcodec_alloc_context3(codec);
    w->aframe = av->av_frame_alloc();
    if (!w->aenc || !w->aframe) return lm_fail(&w->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", w->path);
    AVCodecContext *c = w->aenc;
    c->sample_fmt = AV_SAMPLE_FMT_FLTP;
    c->sample_rate = p->audio_rate;
    av->av_channel_layout_default(&c->ch_layout, p->audio_channels);
    c->bit_rate = p->audio_bitrate > 0 ? p->audio_bitrate : 64000 * p->audio_channels;
    c->time_base = (AVRational){1, p->audio_rate};
    if (w->oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int rc = av->avcodec_open2(c, codec, NULL);
    if (rc < 0) return lm_fail(&w->err, LOOM_ERR_UNSUPPORTED, "%s: cannot open the AAC encoder at %d Hz x %d: %s", w->path,
                               p->audio_rate, p->audio_channels, av_err(rc, msg, sizeof msg));
    w->ast = av->avformat_new_stream(w->oc, NULL);
    if (!w->ast) return lm_fail(&w->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", w->path);
    if (av->avcodec_parameters_from_context(w->ast->codecpar, c) < 0) return lm_fail(&w->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", w->path);
    w->ast->time_base = c->time_base;
    w->aframe->format = AV_SAMPLE_FMT_FLTP;
    w->aframe->sample_rate = p->audio_rate;
    w->aframe->nb_samples = c->frame_size > 0 ? c->frame_size : 1024;
    if (av->av_channel_layout_copy(&w->aframe->ch_layout, &c->ch_layout) < 0 || av->av_frame_get_buffer(w->aframe, 0) < 0)
        return lm_fail(&w->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", w->path);
    return 0;
}

/* Send the (full, or at the end partial) audio frame to the encoder. */
static int flush_audio_frame(lm_mp4_writer *w)
{
    if (w->afill == 0) return 0;
    int full = w->aenc->frame_size > 0 ? w->aenc->frame_size : 1024;
    if (w->afill < full && !(w->aenc->codec->capabilities & AV_CODEC_CAP_SMALL_LAST_FRAME)) {
        for (int c = 0; c < w->aenc->ch_layout.nb_channels; c++)   /* pad the tail with silence */
            memset((float *)w->aframe->data[c] + w->afill, 0, sizeof(float) * (size_t)(full - w->afill));
        w->afill = full;
    }
    w->aframe->nb_samples = w->afill;
    w->aframe->pts = w->a_pts;
    int rc = encode_write(w, w->aenc, w->ast, w->aframe);
    w->a_pts += w->afill;
    w->afill = 0;
    w->aframe->nb_samples = full;
    return rc;
}

int lm_mp4_writer_add_audio(lm_mp4_writer *w, const float *samples, int64_t n)
{
    if (!w) return LOOM_ERR_INVALID_ARG;
    const lm_ffmpeg *av = lm_ffmpeg_get();
    if (!w->aenc) return lm_fail(&w->err, LOOM_ERR_INVALID_ARG, "%s: no audio track (open with audio_rate > 0)", w->path);
    if (n < 0 || (n > 0 && !samples)) return lm_fail(&w->err, LOOM_ERR_INVALID_ARG, "%s: bad audio buffer (%lld samples)", w->path, (long long)n);
    if (w->finished || !w->tmp) return lm_fail(&w->err, LOOM_ERR_INVALID_ARG, "%s: writer already finished or failed", w->path);
    int ch = w->aenc->ch_layout.nb_channels;
    int full = w->aframe->nb_samples;
    for (int64_t i = 0; i < n; i++) {
        if (w->afill == 0 && av->av_frame_make_writable(w->aframe) < 0)   /* the encoder may hold the last one */
            return lm_fail(&w->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", w->path);
        for (int c = 0; c < ch; c++) {
            float x = samples[i * ch + c];
            x = x != x ? 0 : x > 1 ? 1 : x < -1 ? -1 : x;   /* NaN -> silence; clip to full scale */
            ((float *)w->aframe->data[c])[w->afill] = x;
        }
        if (++w->afill == full) {
            int rc = flush_audio_frame(w);
            if (rc < 0) return rc;
        }
    }
    return 0;
}

int lm_mp4_writer_open(const char *path, int width, int height, const loom_mp4_params *p, lm_mp4_writer **out, lm_error *e)
{
    char msg[128];
    if (!out) return lm_fail(e, LOOM_ERR_INVALID_ARG, "mp4: out is NULL");
    *out = NULL;
    if (!path || !*path || !p) return lm_fail(e, LOOM_ERR_INVALID_ARG, "mp4: path or params missing");
    if (width <= 0 || height <= 0 || width > 16384 || height > 16384)
        return lm_fail(e, LOOM_ERR_INVALID_ARG, "%s: frame size %dx%d out of range 2..16384", path, width, height);
    if ((width | height) & 1)
        return lm_fail(e, LOOM_ERR_INVALID_ARG, "%s: frame size %dx%d: width and height must be even for yuv420p",
                       path, width, height);
    if (!(p->fps > 0 && p->fps <= 1000 && isfinite(p->fps)))
        return lm_fail(e, LOOM_ERR_INVALID_ARG, "%s: fps %g out of range (0, 1000]", path, p->fps);
    if (p->crf < 0 || p->crf > 51) return lm_fail(e, LOOM_ERR_INVALID_ARG, "%s: crf %d out of range 0..51", path, p->crf);
    if (p->n_threads < 0 || p->n_threads > 256)
        return lm_fail(e, LOOM_ERR_INVALID_ARG, "%s: n_threads %d out of range 0..256", path, p->n_threads);
    if (p->audio_rate < 0 || p->audio_rate > 384000 || (p->audio_rate > 0 && (p->audio_channels < 1 || p->audio_channels > 8)))
        return lm_fail(e, LOOM_ERR_INVALID_ARG, "%s: audio %d Hz x %d channels out of range (0..384000 Hz, 1..8 channels)",
                       path, p->audio_rate, p->audio_channels);
    const lm_ffmpeg *av = lm_ffmpeg_get();
    if (!av) return lm_ffmpeg_fail(e);
    lm_video_route_av_log();

    lm_mp4_writer *w = calloc(1, sizeof *w);
    if (!w) return lm_fail(e, LOOM_ERR_NO_MEMORY, "%s: out of memory", path);
    w->width = width;
    w->height = height;
    size_t n = strlen(path);
    w->path = malloc(n + 1);
    w->tmp  = malloc(n + 16);
    if (!w->path || !w->tmp) { lm_fail(&w->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", path); goto fail; }
    memcpy(w->path, path, n + 1);
    /* the temporary file sits next to the target so rename() is atomic (same filesystem) */
    snprintf(w->tmp, n + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(w->tmp);
    if (fd < 0) {
        lm_fail(&w->err, LOOM_ERR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
        free(w->tmp);
        w->tmp = NULL;
        goto fail;
    }
    fchmod(fd, 0644);   /* mkstemp's 0600 would make the final file private */
    close(fd);

    int rc = av->avformat_alloc_output_context2(&w->oc, NULL, "mp4", w->tmp);
    if (rc < 0 || !w->oc) { lm_fail(&w->err, LOOM_ERR_NO_MEMORY, "%s: cannot set up the MP4 muxer", path); goto fail; }
    if (open_encoder(w, p) < 0) goto fail;
    if (p->audio_rate > 0 && open_audio_encoder(w, p) < 0) goto fail;
    w->yuv = av->av_frame_alloc();
    w->pkt = av->av_packet_alloc();
    if (!w->yuv || !w->pkt) { lm_fail(&w->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", path); goto fail; }
    w->yuv->format = AV_PIX_FMT_YUV420P;
    w->yuv->width = width;
    w->yuv->height = height;
    if ((rc = av->av_frame_get_buffer(w->yuv, 0)) < 0) { lm_fail(&w->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", path); goto fail; }
    w->sws = av->sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P,
                                SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INP, NULL, NULL, NULL);
    if (!w->sws) { lm_fail(&w->err, LOOM_ERR_UNSUPPORTED, "%s: cannot set up RGB -> yuv420p conversion", path); goto fail; }
    const int *bt601 = av->sws_getCoefficients(SWS_CS_ITU601);
    av->sws_setColorspaceDetails(w->sws, bt601, 1, bt601, 0, 0, 1 << 16, 1 << 16);

    if ((rc = av->avio_open(&w->oc->pb, w->tmp, AVIO_FLAG_WRITE)) < 0) {
        lm_fail(&w->err, LOOM_ERR_IO, "%s: cannot write: %s", w->tmp, av_err(rc, msg, sizeof msg));
        goto fail;
    }
    AVDictionary *mux = NULL;
    av->av_dict_set(&mux, "movflags", "+faststart", 0);
    rc = av->avformat_write_header(w->oc, &mux);
    av->av_dict_free(&mux);
    if (rc < 0) { lm_fail(&w->err, LOOM_ERR_IO, "%s: cannot write the header: %s", path, av_err(rc, msg, sizeof msg)); goto fail; }
    w->header_written = 1;
    *out = w;
    return 0;
fail:
    rc = lm_fail(e, w->err.status, "%s", w->err.msg);
    lm_mp4_writer_free(&w);
    return rc;
}

int lm_mp4_writer_add_frame(lm_mp4_writer *w, const uint8_t *rgb)
{
    if (!w) return LOOM_ERR_INVALID_ARG;
    const lm_ffmpeg *av = lm_ffmpeg_get();
    if (!rgb) return lm_fail(&w->err, LOOM_ERR_INVALID_ARG, "%s: frame is NULL", w->path);
    if (w->finished || !w->tmp) return lm_fail(&w->err, LOOM_ERR_INVALID_ARG, "%s: writer already finished or failed", w->path);
    int rc = av->av_frame_make_writable(w->yuv);   /* the encoder may still hold the last one */
    if (rc < 0) return lm_fail(&w->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", w->path);
    const uint8_t *src[4] = {rgb, NULL, NULL, NULL};
    int src_stride[4] = {w->width * 3, 0, 0, 0};
    av->sws_scale(w->sws, src, src_stride, 0, w->height, w->yuv->data, w->yuv->linesize);
    w->yuv->pts = w->n_frames;
    if ((rc = encode_write(w, w->enc, w->st, w->yuv)) < 0) return rc;
    w->n_frames++;
    return 0;
}

int lm_mp4_writer_finish(lm_mp4_writer *w)
{
    char msg[128];
    if (!w) return LOOM_ERR_INVALID_ARG;
    const lm_ffmpeg *av = lm_ffmpeg_get();
    if (w->finished) return 0;
    if (!w->tmp) return lm_fail(&w->err, LOOM_ERR_INVALID_ARG, "%s: writer failed earlier", w->path);
    if (w->n_frames == 0) return lm_fail(&w->err, LOOM_ERR_INVALID_ARG, "%s: no frames were added", w->path);
    int rc = encode_write(w, w->enc, w->st, NULL);
    if (rc < 0) return rc;
    if (w->aenc) {
        if ((rc = flush_audio_frame(w)) < 0 || (rc = encode_write(w, w->aenc, w->ast, NULL)) < 0) return rc;
    }
    rc = av->av_write_trailer(w->oc);   /* faststart rewrites the file here, moving the index up */
    if (rc < 0) return lm_fail(&w->err, LOOM_ERR_IO, "%s: cannot finish the file: %s", w->path, av_err(rc, msg, sizeof msg));
    rc = av->avio_closep(&w->oc->pb);
    if (rc < 0) return lm_fail(&w->err, LOOM_ERR_IO, "%s: cannot close: %s", w->path, av_err(rc, msg, sizeof msg));
    if (rename(w->tmp, w->path) != 0)
        return lm_fail(&w->err, LOOM_ERR_IO, "%s: cannot rename %s into place: %s", w->path, w->tmp, strerror(errno));
    free(w->tmp);
    w->tmp = NULL;
    w->finished = 1;
    return 0;
}
