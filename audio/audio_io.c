/*
 * Audio decode (libavformat + libavcodec), resample (libswresample) and WAV write.
 *
 * All input goes through our own AVIOContext (file descriptor, stdin or memory), so no
 * FFmpeg protocol is ever opened from a file name and demuxers cannot open further files
 * (io_open is refused: no playlists or concat lists reaching into the file system).
 *
 * A plain PCM or float WAV at the output rate is read without FFmpeg (wav.h): the same
 * samples, bit for bit, without loading FFmpeg's libraries. Files and memory only; a pipe
 * on stdin goes to FFmpeg, which needs no seeking back.
 *
 * Mono is the arithmetic mean of the channels after resampling (librosa's to_mono; for
 * stereo this equals `ffmpeg -ac 1`). The resampler keeps the channel count, so any
 * channel layout, named or not, works.
 */
#include "audio/audio.h"
#include "audio/wav.h"
#include "lib/core/ffmpeg.h"
#include "lib/core/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_BUF_SIZE   (64 * 1024)
#define MAX_BAD_PACKETS 64   /* consecutive undecodable packets before giving up */
#define WAV_BLOCK_BYTES (64 * 1024)   /* native WAV reads, at most */

/* ---- FFmpeg's log → lm_log ----------------------------------------------------------- */

static void av_log_to_lm(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > AV_LOG_WARNING) return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, vl);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    if (n) lm_log(LOOM_LOG_DEBUG, "ffmpeg: %s", line);
}

/* FFmpeg trusts some sizes in headers (a 223-byte WAV whose RIFF INFO tag claims 1.9 GB made
 * av_mallocz zero 1.9 GB): cap every single FFmpeg block, process-wide, well above any frame
 * loom's limits let through. video_io.c sets the same cap. */
#define AV_MAX_BLOCK ((size_t)256 << 20)

static pthread_once_t g_av_once = PTHREAD_ONCE_INIT;
static void av_setup(void)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    av->av_log_set_callback(av_log_to_lm);
    av->av_max_alloc(AV_MAX_BLOCK);
}

static const char *av_err(int e, char *buf, size_t n)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    if (av->av_strerror(e, buf, n) < 0) snprintf(buf, n, "error %d", e);
    return buf;
}

/* ---- input sources -------------------------------------------------------------------- */

typedef struct io_src {
    int            fd;      /* file or stdin; -1 for memory         */
    int            own_fd;  /* close fd on free                      */
    int            seekable;
    const uint8_t *mem;     /* memory source                         */
    size_t         mem_size, mem_pos;
} io_src;

static int io_read(void *opaque, uint8_t *buf, int size)
{
    io_src *s = opaque;
    if (s->mem) {
        size_t left = s->mem_size - s->mem_pos;
        if (left == 0) return AVERROR_EOF;
        size_t k = (size_t)size < left ? (size_t)size : left;
        memcpy(buf, s->mem + s->mem_pos, k);
        s->mem_pos += k;
        return (int)k;
    }
    for (;;) {
        ssize_t k = read(s->fd, buf, (size_t)size);
        if (k > 0) return (int)k;
        if (k == 0) return AVERROR_EOF;
        if (errno != EINTR) return AVERROR(errno);
    }
}

static int64_t io_seek(void *opaque, int64_t off, int whence)
{
    io_src *s = opaque;
    whence &= ~AVSEEK_FORCE;
    if (s->mem) {
        if (whence == AVSEEK_SIZE) return (int64_t)s->mem_size;
        int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)s->mem_pos
                     : whence == SEEK_END ? (int64_t)s->mem_size : -1;
        if (base < 0 || off > INT64_MAX - base) return AVERROR(EINVAL);
        int64_t pos = base + off;
        if (pos < 0 || pos > (int64_t)s->mem_size) return AVERROR(EINVAL);
        s->mem_pos = (size_t)pos;
        return pos;
    }
    if (!s->seekable) return AVERROR(ESPIPE);
    if (whence == AVSEEK_SIZE) {
        struct stat st;
        return fstat(s->fd, &st) == 0 ? (int64_t)st.st_size : AVERROR(errno);
    }
    off_t r = lseek(s->fd, (off_t)off, whence);
    return r < 0 ? AVERROR(errno) : (int64_t)r;
}

/* Demuxers that would open another file (HLS, concat, …) get a refusal. */
static int io_open_refused(AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                           AVDictionary **options)
{
    return AVERROR(EPERM);
}

/* ---- the reader ----------------------------------------------------------------------- */

struct lm_audio_reader {
    char             name[256];    /* file name for messages                      */
    lm_audio_params  p;
    lm_audio_info    info;
    io_src           src;
    AVIOContext     *avio;         /* owns its av_malloc'ed buffer                  */
    AVFormatContext *fmt;
    AVCodecContext  *dec;
    AVPacket        *pkt;
    AVFrame         *frame;
    int              stream;       /* index of the audio stream                    */

    SwrContext      *swr;          /* configured for (swr_fmt, swr_rate, swr_ch)   */
    int              swr_fmt, swr_rate, swr_ch;
    float           *planes;       /* [swr_ch][planes_cap] resampler output         */
    int              planes_cap;

    float           *fifo;         /* [fifo_cap] mono output not yet handed out    */
    int64_t          fifo_cap, fifo_head, fifo_len;

    int              native;       /* a plain WAV read by wav.h, FFmpeg not used    */
    lm_wav_info      wav;
    uint64_t         wav_pos;      /* next byte to read                             */
    uint64_t         wav_end;      /* end of the whole frames present               */
    uint8_t         *wav_buf;      /* [WAV_BLOCK_BYTES]                             */

    int64_t          produced;     /* samples put into the fifo so far              */
    int64_t          delivered;    /* samples handed to the caller                  */
    int64_t          max_samples;  /* from params.max_seconds                       */
    int              bad_packets;  /* consecutive decode failures                   */
    int              eof;          /* demuxer, decoder and resampler fully drained */
    lm_error         sticky;       /* first error; repeated by later reads          */
};

lm_audio_params lm_audio_default_params(void)
{
    lm_audio_params p = {
        .sample_rate = LM_AUDIO_RATE, .max_seconds = 4.0 * 3600.0,
        .min_in_rate = 1000, .max_in_rate = 768000, .max_channels = 32, .ffmpeg_only = 0,
    };
    return p;
}

static int check_params(const lm_audio_params *p, const char *name, lm_error *err)
{
    if (p->sample_rate < 1000 || p->sample_rate > 192000)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio '%s': output sample rate %d Hz outside 1000..192000",
                       name, p->sample_rate);
    if (!(p->max_seconds > 0) || p->max_seconds > 1e7)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio '%s': max_seconds %g outside (0, 1e7]", name, p->max_seconds);
    if (p->min_in_rate < 1 || p->max_in_rate < p->min_in_rate)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio '%s': bad input sample-rate bounds %d..%d",
                       name, p->min_in_rate, p->max_in_rate);
    if (p->max_channels < 1 || p->max_channels > 1024)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio '%s': max_channels %d outside 1..1024", name, p->max_channels);
    return 0;
}

void lm_audio_reader_close(lm_audio_reader **pr)
{
    if (!pr || !*pr) return;
    lm_audio_reader *r = *pr;
    if (r->avio || r->fmt) {   /* FFmpeg's objects exist only once it is loaded */
        const lm_ffmpeg *av = lm_ffmpeg_get();
        av->swr_free(&r->swr);
        av->av_frame_free(&r->frame);
        av->av_packet_free(&r->pkt);
        av->avcodec_free_context(&r->dec);
        av->avformat_close_input(&r->fmt);        /* custom IO: does not touch r->avio */
        if (r->avio) {
            av->av_freep(&r->avio->buffer);
            av->avio_context_free(&r->avio);
        }
    }
    if (r->src.own_fd && r->src.fd >= 0) close(r->src.fd);
    free(r->planes);
    free(r->fifo);
    free(r->wav_buf);
    free(r);
    *pr = NULL;
}

/* Ensure the input's rate and channel count are within the configured bounds. */
static int check_input(lm_audio_reader *r, int rate, int channels, lm_error *err)
{
    if (channels < 1)
        return lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': stream has no channels", r->name);
    if (channels > r->p.max_channels)
        return lm_fail(err, LOOM_ERR_LIMIT, "audio '%s': %d channels, more than the limit of %d (max_channels)",
                       r->name, channels, r->p.max_channels);
    if (rate < r->p.min_in_rate || rate > r->p.max_in_rate)
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "audio '%s': sample rate %d Hz outside the supported %d..%d Hz",
                       r->name, rate, r->p.min_in_rate, r->p.max_in_rate);
    return 0;
}

/* Append planar resampler output (n per channel) to the fifo as the channel mean. */
static int fifo_push_mean(lm_audio_reader *r, int n, lm_error *err)
{
    if (n <= 0) return 0;
    if (r->fifo_head > 0 && r->fifo_head + r->fifo_len + n > r->fifo_cap) {
        memmove(r->fifo, r->fifo + r->fifo_head, (size_t)r->fifo_len * sizeof *r->fifo);
        r->fifo_head = 0;
    }
    if (r->fifo_len + n > r->fifo_cap) {
        int64_t cap = (r->fifo_len + n) * 2;
        float *f = realloc(r->fifo, (size_t)cap * sizeof *f);
        if (!f) return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio '%s': out of memory (%lld samples)", r->name, (long long)cap);
        r->fifo = f;
        r->fifo_cap = cap;
    }
    float *dst = r->fifo + r->fifo_head + r->fifo_len;
    const int C = r->swr_ch;
    const float inv = 1.0f / (float)C;
    for (int i = 0; i < n; i++) {
        float s = 0;
        for (int c = 0; c < C; c++) s += r->planes[(size_t)c * r->planes_cap + i];
        dst[i] = C == 1 ? s : s * inv;
    }
    r->fifo_len += n;
    r->produced += n;
    if (r->produced > r->max_samples)
        return lm_fail(err, LOOM_ERR_LIMIT, "audio '%s': over %.1f s decoded, more than the limit of %g s (max_seconds)",
                       r->name, (double)r->produced / r->p.sample_rate, r->p.max_seconds);
    return 0;
}

/* Room for n samples in each of the swr_ch planes. */
static int planes_reserve(lm_audio_reader *r, int n, lm_error *err)
{
    if (n <= r->planes_cap) return 0;
    float *pl = realloc(r->planes, (size_t)n * (size_t)r->swr_ch * sizeof *pl);
    if (!pl) return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio '%s': out of memory", r->name);
    r->planes = pl;
    r->planes_cap = n;
    return 0;
}

/* Run the resampler on `in` (NULL drains it) and push the result. */
static int resample(lm_audio_reader *r, const uint8_t **in, int n_in, lm_error *err)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    int want = av->swr_get_out_samples(r->swr, n_in);
    if (want < 0) return lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': resampler failed", r->name);
    if (want == 0) return 0;
    int rc = planes_reserve(r, want, err);
    if (rc < 0) return rc;
    uint8_t *out[64];
    for (int c = 0; c < r->swr_ch; c++) out[c] = (uint8_t *)(r->planes + (size_t)c * r->planes_cap);
    int got = av->swr_convert(r->swr, out, want, in, n_in);
    if (got < 0) {
        char eb[128];
        return lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': resampling failed (%s)", r->name, av_err(got, eb, sizeof eb));
    }
    return fifo_push_mean(r, got, err);
}

/* (Re)configure the resampler for a frame's format; drains the old one first. */
static int setup_resampler(lm_audio_reader *r, const AVFrame *f, lm_error *err)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    int ch = f->ch_layout.nb_channels;
    if (r->swr && f->format == r->swr_fmt && f->sample_rate == r->swr_rate && ch == r->swr_ch) return 0;
    int rc = check_input(r, f->sample_rate, ch, err);
    if (rc < 0) return rc;
    if (ch > 64) return lm_fail(err, LOOM_ERR_LIMIT, "audio '%s': %d channels, more than the resampler's limit of 64", r->name, ch);
    if (r->swr) {
        rc = resample(r, NULL, 0, err);
        if (rc < 0) return rc;
        av->swr_free(&r->swr);
    }
    /* Keep the channel count; treat the layout as unordered so swr never rematrixes. */
    AVChannelLayout lay;
    av->av_channel_layout_default(&lay, ch);
    lay.order = AV_CHANNEL_ORDER_UNSPEC;
    lay.u.mask = 0;
    int e = av->swr_alloc_set_opts2(&r->swr, &lay, AV_SAMPLE_FMT_FLTP, r->p.sample_rate,
                                    &lay, (enum AVSampleFormat)f->format, f->sample_rate, 0, NULL);
    if (e >= 0) e = av->swr_init(r->swr);
    av->av_channel_layout_uninit(&lay);
    if (e < 0) {
        char eb[128];
        av->swr_free(&r->swr);
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "audio '%s': cannot resample %s %d Hz %d ch (%s)", r->name,
                       av->av_get_sample_fmt_name(f->format) ? av->av_get_sample_fmt_name(f->format) : "?",
                       f->sample_rate, ch, av_err(e, eb, sizeof eb));
    }
    if (r->swr_ch != ch) {   /* plane layout depends on the channel count */
        free(r->planes);
        r->planes = NULL;
        r->planes_cap = 0;
    }
    r->swr_fmt = f->format;
    r->swr_rate = f->sample_rate;
    r->swr_ch = ch;
    return 0;
}

/* A damaged packet (or a partial one at a truncated end): skip it like ffmpeg does, but
 * not forever. */
static int bad_packet(lm_audio_reader *r, int e, lm_error *err)
{
    char eb[128];
    if (++r->bad_packets > MAX_BAD_PACKETS)
        return lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': more than %d undecodable packets in a row (%s)",
                       r->name, MAX_BAD_PACKETS, av_err(e, eb, sizeof eb));
    lm_log(LOOM_LOG_WARN, "audio '%s': skipped an undecodable packet (%s)", r->name, av_err(e, eb, sizeof eb));
    return 0;
}

/* Pull every frame the decoder has ready and resample it. */
static int drain_decoder(lm_audio_reader *r, lm_error *err)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    for (;;) {
        int e = av->avcodec_receive_frame(r->dec, r->frame);
        if (e == AVERROR(EAGAIN) || e == AVERROR_EOF) return 0;
        if (e == AVERROR_INVALIDDATA) {
            int rc = bad_packet(r, e, err);
            if (rc < 0) return rc;
            continue;
        }
        if (e < 0) {
            char eb[128];
            return lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': decoding failed (%s)", r->name, av_err(e, eb, sizeof eb));
        }
        int rc = setup_resampler(r, r->frame, err);
        if (rc == 0) rc = resample(r, (const uint8_t **)r->frame->extended_data, r->frame->nb_samples, err);
        av->av_frame_unref(r->frame);
        if (rc < 0) return rc;
    }
}

/* ---- plain WAV without FFmpeg (wav.h) ---------------------------------------------------- */

static int64_t src_read_at(void *opaque, uint64_t off, void *buf, size_t n)
{
    io_src *s = opaque;
    if (s->mem) {
        if (off >= s->mem_size) return 0;
        size_t k = s->mem_size - off < n ? (size_t)(s->mem_size - off) : n;
        memcpy(buf, s->mem + off, k);
        return (int64_t)k;
    }
    size_t done = 0;
    while (done < n) {
        ssize_t k = pread(s->fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (k == 0) break;
        if (k < 0 && errno != EINTR) return -1;
        if (k > 0) done += (size_t)k;
    }
    return (int64_t)done;
}

/* Refuse an input whose stated duration is over max_seconds; set the decoded-samples cap. */
static int apply_length_limits(lm_audio_reader *r, lm_error *err)
{
    if (r->info.duration > r->p.max_seconds + 1.0)
        return lm_fail(err, LOOM_ERR_LIMIT, "audio '%s': %.1f s long, more than the limit of %g s (max_seconds)",
                       r->name, r->info.duration, r->p.max_seconds);
    double ms = r->p.max_seconds * r->p.sample_rate;
    r->max_samples = ms > 9e18 ? INT64_MAX : (int64_t)ms;
    return 0;
}

/* 1: a plain WAV at the output rate, set up for wav_fill; 0: FFmpeg's to read; < 0: error. */
static int wav_open(lm_audio_reader *r, lm_error *err)
{
    uint64_t size;
    struct stat st;
    if (r->p.ffmpeg_only) return 0;
    if (r->src.mem) size = r->src.mem_size;
    else if (r->src.own_fd && r->src.seekable && fstat(r->src.fd, &st) == 0) size = (uint64_t)st.st_size;
    else return 0;
    lm_wav_info *w = &r->wav;
    int k = lm_wav_probe(src_read_at, &r->src, size, w);
    if (k < 0) return lm_fail(err, LOOM_ERR_IO, "audio '%s': reading failed (%s)", r->name, strerror(errno));
    if (k == 0 || w->rate != r->p.sample_rate) return 0;
    int rc = check_input(r, w->rate, w->channels, err);
    if (rc < 0) return rc;
    uint64_t avail = size - w->data_offset;   /* the probe saw the data chunk's header */
    uint64_t bytes = w->data_bytes < avail ? w->data_bytes : avail;
    r->wav_pos = w->data_offset;
    r->wav_end = w->data_offset + bytes - bytes % (uint64_t)w->frame_bytes;
    r->info = (lm_audio_info){
        .in_rate = w->rate, .in_channels = w->channels, .codec = lm_wav_codec_name(w->codec),
        .container = "wav", .duration = (double)((r->wav_end - r->wav_pos) / (uint64_t)w->frame_bytes) / w->rate,
    };
    if ((rc = apply_length_limits(r, err)) < 0) return rc;
    if (!(r->wav_buf = malloc(WAV_BLOCK_BYTES))) return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio '%s': out of memory", r->name);
    r->swr_ch = w->channels;
    r->native = 1;
    return 1;
}

static int wav_fill(lm_audio_reader *r, int64_t need, lm_error *err)
{
    const int64_t fb = r->wav.frame_bytes;
    while (!r->eof && r->fifo_len < need) {
        int64_t k = (int64_t)((r->wav_end - r->wav_pos) / (uint64_t)fb);
        if (k > need - r->fifo_len) k = need - r->fifo_len;
        if (k > WAV_BLOCK_BYTES / fb) k = WAV_BLOCK_BYTES / fb;
        int64_t got = k ? src_read_at(&r->src, r->wav_pos, r->wav_buf, (size_t)(k * fb)) : 0;
        if (got < 0) return lm_fail(err, LOOM_ERR_IO, "audio '%s': reading failed (%s)", r->name, strerror(errno));
        k = got / fb;          /* fewer only if the file shrank meanwhile */
        if (k == 0) {
            r->eof = 1;
            break;
        }
        r->wav_pos += (uint64_t)(k * fb);
        int rc = planes_reserve(r, (int)k, err);
        if (rc < 0) return rc;
        lm_wav_to_planes(&r->wav, r->wav_buf, k, r->planes, r->planes_cap);
        if ((rc = fifo_push_mean(r, (int)k, err)) < 0) return rc;
    }
    return 0;
}

/* Decode until the fifo holds at least `need` samples or the input ends. */
static int fill(lm_audio_reader *r, int64_t need, lm_error *err)
{
    if (r->native) return wav_fill(r, need, err);
    const lm_ffmpeg *av = lm_ffmpeg_get();
    char eb[128];
    while (!r->eof && r->fifo_len < need) {
        int e = av->av_read_frame(r->fmt, r->pkt);
        if (e == AVERROR_EOF || (e < 0 && av->avio_feof(r->fmt->pb))) {
            /* End of input (a truncated file ends here too): flush decoder and resampler. */
            av->avcodec_send_packet(r->dec, NULL);
            int rc = drain_decoder(r, err);
            if (rc == 0 && r->swr) rc = resample(r, NULL, 0, err);
            if (rc < 0) return rc;
            r->eof = 1;
            break;
        }
        if (e < 0)
            return lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': reading failed (%s)", r->name, av_err(e, eb, sizeof eb));
        if (r->pkt->stream_index != r->stream) {
            av->av_packet_unref(r->pkt);
            continue;
        }
        e = av->avcodec_send_packet(r->dec, r->pkt);
        av->av_packet_unref(r->pkt);
        int rc = e == AVERROR_INVALIDDATA ? bad_packet(r, e, err) : 0;
        if (rc < 0) return rc;
        if (e < 0 && e != AVERROR(EAGAIN) && e != AVERROR_INVALIDDATA)
            return lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': decoding failed (%s)", r->name, av_err(e, eb, sizeof eb));
        if (e == 0) r->bad_packets = 0;
        rc = drain_decoder(r, err);
        if (rc < 0) return rc;
    }
    return 0;
}

static int reader_open(lm_audio_reader *r, lm_error *err)
{
    const lm_ffmpeg *av = lm_ffmpeg_get();
    char eb[128];
    pthread_once(&g_av_once, av_setup);

    uint8_t *iobuf = av->av_malloc(IO_BUF_SIZE);
    if (!iobuf) return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio '%s': out of memory", r->name);
    r->avio = av->avio_alloc_context(iobuf, IO_BUF_SIZE, 0, &r->src, io_read, NULL,
                                     r->src.seekable || r->src.mem ? io_seek : NULL);
    if (!r->avio) {
        av->av_free(iobuf);
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio '%s': out of memory", r->name);
    }
    if (!r->src.seekable && !r->src.mem) r->avio->seekable = 0;

    r->fmt = av->avformat_alloc_context();
    if (!r->fmt) return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio '%s': out of memory", r->name);
    r->fmt->pb = r->avio;
    r->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    r->fmt->io_open = io_open_refused;
    int e = av->avformat_open_input(&r->fmt, r->name, NULL, NULL);   /* frees fmt on failure */
    if (e < 0) {
        if (e == AVERROR_INVALIDDATA)
            return lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': not a recognised audio or video file", r->name);
        return lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': cannot open (%s)", r->name, av_err(e, eb, sizeof eb));
    }
    e = av->avformat_find_stream_info(r->fmt, NULL);
    if (e < 0)
        return lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': cannot read stream information (%s)", r->name, av_err(e, eb, sizeof eb));

    const AVCodec *codec = NULL;
    e = av->av_find_best_stream(r->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (e == AVERROR_STREAM_NOT_FOUND)
        return lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': no audio stream (%s container)", r->name, r->fmt->iformat->name);
    if (e < 0 || !codec) {
        int id = e >= 0 ? r->fmt->streams[e]->codecpar->codec_id : AV_CODEC_ID_NONE;
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "audio '%s': no decoder for the audio stream (codec %s)",
                       r->name, av->avcodec_get_name(id));
    }
    r->stream = e;
    AVStream *st = r->fmt->streams[e];
    const AVCodecParameters *par = st->codecpar;
    int rc = check_input(r, par->sample_rate, par->ch_layout.nb_channels, err);
    if (rc < 0) return rc;

    r->info.in_rate = par->sample_rate;
    r->info.in_channels = par->ch_layout.nb_channels;
    r->info.codec = codec->name;
    r->info.container = r->fmt->iformat->name;
    r->info.via_ffmpeg = 1;
    r->info.duration = -1;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
        r->info.duration = (double)st->duration * av_q2d(st->time_base);
    else if (r->fmt->duration != AV_NOPTS_VALUE && r->fmt->duration > 0)
        r->info.duration = (double)r->fmt->duration / AV_TIME_BASE;
    if ((rc = apply_length_limits(r, err)) < 0) return rc;

    r->dec = av->avcodec_alloc_context3(codec);
    if (!r->dec) return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio '%s': out of memory", r->name);
    e = av->avcodec_parameters_to_context(r->dec, par);
    if (e >= 0) {
        r->dec->thread_count = 1;
        e = av->avcodec_open2(r->dec, codec, NULL);
    }
    if (e < 0)
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "audio '%s': cannot open the %s decoder (%s)", r->name,
                       codec->name, av_err(e, eb, sizeof eb));
    r->pkt = av->av_packet_alloc();
    r->frame = av->av_frame_alloc();
    if (!r->pkt || !r->frame) return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio '%s': out of memory", r->name);
    /* Discard the other streams early (a video track is never decoded). */
    for (unsigned i = 0; i < r->fmt->nb_streams; i++)
        if ((int)i != r->stream) r->fmt->streams[i]->discard = AVDISCARD_ALL;
    return 0;
}

static int reader_create(const char *name, const lm_audio_params *params, lm_audio_reader **out,
                         lm_error *err)
{
    lm_audio_params p = params ? *params : lm_audio_default_params();
    int rc = check_params(&p, name, err);
    if (rc < 0) return rc;
    lm_audio_reader *r = calloc(1, sizeof *r);
    if (!r) return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio '%s': out of memory", name);
    r->p = p;
    r->src.fd = -1;
    snprintf(r->name, sizeof r->name, "%s", name);
    *out = r;
    return 0;
}

static int reader_finish(lm_audio_reader **pr, lm_audio_reader **out, lm_error *err)
{
    int rc = wav_open(*pr, err);
    if (rc == 0) rc = lm_ffmpeg_get() ? reader_open(*pr, err) : lm_ffmpeg_fail(err);
    if (rc < 0) {
        lm_audio_reader_close(pr);
        return rc;
    }
    *out = *pr;
    return 0;
}

int lm_audio_reader_open(const char *path, const lm_audio_params *params, lm_audio_reader **out,
                         lm_error *err)
{
    if (!out) return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio: out is NULL");
    *out = NULL;
    if (!path || !*path) return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio: empty path");
    int is_stdin = !strcmp(path, "-");
    lm_audio_reader *r = NULL;
    int rc = reader_create(is_stdin ? "<stdin>" : path, params, &r, err);
    if (rc < 0) return rc;
    if (is_stdin) {
        r->src.fd = STDIN_FILENO;
        struct stat st;
        r->src.seekable = fstat(r->src.fd, &st) == 0 && S_ISREG(st.st_mode);
    } else {
        r->src.fd = open(path, O_RDONLY | O_CLOEXEC);
        if (r->src.fd < 0) {
            rc = lm_fail(err, LOOM_ERR_IO, "audio '%s': cannot open (%s)", path, strerror(errno));
            lm_audio_reader_close(&r);
            return rc;
        }
        r->src.own_fd = 1;
        struct stat st;
        if (fstat(r->src.fd, &st) != 0 || S_ISDIR(st.st_mode)) {
            rc = lm_fail(err, LOOM_ERR_IO, "audio '%s': not a readable file", path);
            lm_audio_reader_close(&r);
            return rc;
        }
        if (S_ISREG(st.st_mode) && st.st_size == 0) {
            rc = lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': file is empty", path);
            lm_audio_reader_close(&r);
            return rc;
        }
        r->src.seekable = S_ISREG(st.st_mode);
    }
    return reader_finish(&r, out, err);
}

int lm_audio_reader_open_memory(const void *data, size_t size, const char *name,
                                const lm_audio_params *params, lm_audio_reader **out, lm_error *err)
{
    if (!out) return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio: out is NULL");
    *out = NULL;
    if (!name) name = "<memory>";
    if (!data || size == 0) return lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': input is empty", name);
    lm_audio_reader *r = NULL;
    int rc = reader_create(name, params, &r, err);
    if (rc < 0) return rc;
    r->src.mem = data;
    r->src.mem_size = size;
    return reader_finish(&r, out, err);
}

int lm_audio_reader_read(lm_audio_reader *r, float *buf, int64_t n, int64_t *got, lm_error *err)
{
    if (got) *got = 0;
    if (!r || !buf || !got || n <= 0)   /* n = 0 would look like the end of input */
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio: bad read arguments (n = %lld)", (long long)n);
    if (r->sticky.status < 0) return lm_fail(err, r->sticky.status, "%s", r->sticky.msg);
    int rc = fill(r, n, &r->sticky);
    if (rc < 0) return lm_fail(err, rc, "%s", r->sticky.msg);
    int64_t k = r->fifo_len < n ? r->fifo_len : n;
    if (k > 0) memcpy(buf, r->fifo + r->fifo_head, (size_t)k * sizeof *buf);
    r->fifo_head += k;
    r->fifo_len -= k;
    if (r->fifo_len == 0) r->fifo_head = 0;
    r->delivered += k;
    *got = k;
    return 0;
}

int64_t lm_audio_reader_tell(const lm_audio_reader *r) { return r ? r->delivered : 0; }

const lm_audio_info *lm_audio_reader_info(const lm_audio_reader *r) { return r ? &r->info : NULL; }

/* ---- whole-file convenience ------------------------------------------------------------ */

static int read_all(lm_audio_reader *r, int64_t max_samples, float **pcm, int64_t *n, lm_error *err)
{
    int64_t cap = 0, len = 0;
    float *out = NULL;
    int rc = 0;
    const int64_t chunk = 1 << 16;
    for (;;) {
        int64_t want = chunk;
        if (max_samples > 0 && max_samples - len < want) want = max_samples - len;
        if (want <= 0) break;
        if (len + want > cap) {
            int64_t nc = cap ? cap * 2 : chunk;
            while (nc < len + want) nc *= 2;
            float *o = realloc(out, (size_t)nc * sizeof *o);
            if (!o) { rc = lm_fail(err, LOOM_ERR_NO_MEMORY, "audio '%s': out of memory", r->name); break; }
            out = o;
            cap = nc;
        }
        int64_t got = 0;
        rc = lm_audio_reader_read(r, out + len, want, &got, err);
        if (rc < 0 || got == 0) break;
        len += got;
    }
    if (rc == 0 && len == 0) rc = lm_fail(err, LOOM_ERR_FORMAT, "audio '%s': contains no audio samples", r->name);
    if (rc < 0) {
        free(out);
        return rc;
    }
    *pcm = out;
    *n = len;
    return 0;
}

int lm_audio_read_all(const char *path, const lm_audio_params *params, int64_t max_samples,
                      float **pcm, int64_t *n, lm_error *err)
{
    if (!pcm || !n) return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio: NULL output");
    *pcm = NULL;
    *n = 0;
    lm_audio_reader *r = NULL;
    int rc = lm_audio_reader_open(path, params, &r, err);
    if (rc < 0) return rc;
    rc = read_all(r, max_samples, pcm, n, err);
    lm_audio_reader_close(&r);
    return rc;
}

int lm_audio_read_all_memory(const void *data, size_t size, const char *name,
                             const lm_audio_params *params, int64_t max_samples,
                             float **pcm, int64_t *n, lm_error *err)
{
    if (!pcm || !n) return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio: NULL output");
    *pcm = NULL;
    *n = 0;
    lm_audio_reader *r = NULL;
    int rc = lm_audio_reader_open_memory(data, size, name, params, &r, err);
    if (rc < 0) return rc;
    rc = read_all(r, max_samples, pcm, n, err);
    lm_audio_reader_close(&r);
    return rc;
}

/* ---- WAV output -------------------------------------------------------------------------- */

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) { put_u16(p, (uint16_t)v); put_u16(p + 2, (uint16_t)(v >> 16)); }

int lm_wav_write(const char *path, const float *pcm, int64_t n_frames, int channels,
                 int sample_rate, lm_wav_format fmt, lm_error *err)
{
    if (!path || !*path) return lm_fail(err, LOOM_ERR_INVALID_ARG, "wav: empty path");
    if (!pcm && n_frames > 0) return lm_fail(err, LOOM_ERR_INVALID_ARG, "wav '%s': no samples given", path);
    if (n_frames < 0 || channels < 1 || channels > 64 || sample_rate < 1 || sample_rate > 768000)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "wav '%s': bad shape (%lld frames, %d channels, %d Hz)",
                       path, (long long)n_frames, channels, sample_rate);
    if (fmt != LM_WAV_PCM16 && fmt != LM_WAV_F32)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "wav '%s': unknown sample format %d", path, (int)fmt);
    const int bps = fmt == LM_WAV_PCM16 ? 2 : 4;
    const int fmt_size = fmt == LM_WAV_PCM16 ? 16 : 18;          /* float adds cbSize      */
    const int fact = fmt == LM_WAV_F32 ? 12 : 0;                  /* non-PCM needs 'fact'   */
    const uint64_t header = 12 + 8 + (uint64_t)fmt_size + (uint64_t)fact + 8;
    const uint64_t data = (uint64_t)n_frames * (uint64_t)channels * (uint64_t)bps;
    if (data + header - 8 > UINT32_MAX)
        return lm_fail(err, LOOM_ERR_LIMIT, "wav '%s': %llu bytes of samples do not fit a WAV file (4 GiB)",
                       path, (unsigned long long)data);

    uint8_t h[64];
    memset(h, 0, sizeof h);
    memcpy(h, "RIFF", 4);
    put_u32(h + 4, (uint32_t)(header - 8 + data));
    memcpy(h + 8, "WAVEfmt ", 8);
    put_u32(h + 16, (uint32_t)fmt_size);
    put_u16(h + 20, fmt == LM_WAV_PCM16 ? 1 : 3);
    put_u16(h + 22, (uint16_t)channels);
    put_u32(h + 24, (uint32_t)sample_rate);
    put_u32(h + 28, (uint32_t)(sample_rate * channels * bps));
    put_u16(h + 32, (uint16_t)(channels * bps));
    put_u16(h + 34, (uint16_t)(bps * 8));
    size_t hl = 20 + (size_t)fmt_size;                             /* cbSize stays 0 */
    if (fact) {
        memcpy(h + hl, "fact", 4);
        put_u32(h + hl + 4, 4);
        put_u32(h + hl + 8, (uint32_t)n_frames);
        hl += 12;
    }
    memcpy(h + hl, "data", 4);
    put_u32(h + hl + 4, (uint32_t)data);
    hl += 8;

    lm_outfile out;
    int rc = lm_outfile_open(&out, path, err);
    if (rc < 0) return rc;
    FILE *f = out.f;
    int ok = fwrite(h, 1, hl, f) == hl;
    uint8_t blk[4096];
    const int64_t total = n_frames * channels;
    for (int64_t i = 0; ok && i < total;) {
        int64_t k = 0;
        for (; k < (int64_t)(sizeof blk / (size_t)bps) && i < total; k++, i++) {
            float x = pcm[i];
            if (fmt == LM_WAV_PCM16) {
                float y = x != x ? 0.0f : x * 32767.0f;   /* NaN → silence */
                y = y > 32767.0f ? 32767.0f : y < -32768.0f ? -32768.0f : y;
                put_u16(blk + k * 2, (uint16_t)(int16_t)lrintf(y));
            } else {
                uint32_t u;
                memcpy(&u, &x, 4);
                put_u32(blk + k * 4, u);
            }
        }
        ok = fwrite(blk, (size_t)bps, (size_t)k, f) == (size_t)k;
    }
    return lm_outfile_commit(&out, ok, err);
}
