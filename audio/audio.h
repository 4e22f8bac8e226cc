/*
 * Audio I/O (internal): decode anything FFmpeg reads to 16 kHz mono float, streamed; write
 * WAV. A plain WAV already at the output rate is read without loading FFmpeg (wav.h). The public wrappers live in include/loom.h ("Audio").
 *
 *     lm_audio_reader *r = NULL;
 *     lm_audio_params p = lm_audio_default_params();
 *     if (lm_audio_reader_open("talk.mp3", &p, &r, &err) < 0) ...;
 *     float buf[4096]; int64_t got;
 *     while (lm_audio_reader_read(r, buf, 4096, &got, &err) == 0 && got > 0) consume(buf, got);
 *     lm_audio_reader_close(&r);
 *
 * The reader never holds more than about one decoded packet plus the caller's request in
 * memory, so hours of audio stream through in bounded memory.
 */
#ifndef LM_AUDIO_H
#define LM_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#include "lib/core/error.h"

#define LM_AUDIO_RATE 16000

/* Limits applied to every input. Out-of-range values are errors naming the limit. */
typedef struct lm_audio_params {
    int    sample_rate;   /* output rate in Hz (default 16000; 1000..192000)             */
    double max_seconds;   /* longest accepted input (default 4 h); longer → LOOM_ERR_LIMIT */
    int    min_in_rate;   /* input sample rates outside [min_in_rate, max_in_rate] are    */
    int    max_in_rate;   /*   rejected (defaults 1000 and 768000 Hz)                     */
    int    max_channels;  /* more input channels than this is rejected (default 32)      */
    int    ffmpeg_only;   /* 1: decode plain WAV through FFmpeg as well (tests compare    */
                          /*   the two paths; default 0: read it natively, wav.h)         */
} lm_audio_params;

lm_audio_params lm_audio_default_params(void);

/* What the reader found in the input. */
typedef struct lm_audio_info {
    int         in_rate;      /* input sample rate (Hz)                                 */
    int         in_channels;  /* input channel count                                    */
    const char *codec;        /* decoder name, e.g. "pcm_s16le"; owned by the reader    */
    const char *container;    /* demuxer name, e.g. "wav"; owned by the reader          */
    double      duration;     /* container's duration estimate in seconds, or -1        */
    int         via_ffmpeg;   /* 1: FFmpeg decodes it; 0: a plain WAV read by wav.h     */
} lm_audio_info;

typedef struct lm_audio_reader lm_audio_reader;

/* Open `path` for streaming ("-" reads standard input; it cannot seek, so formats that
 * need seeking, such as MP4 with the index at the end, fail there with a clear error).
 * `params` may be NULL for the defaults. On failure *out is NULL and err names the file
 * and the problem. */
int lm_audio_reader_open(const char *path, const lm_audio_params *params,
                         lm_audio_reader **out, lm_error *err);
/* Same from a memory buffer the caller keeps alive until close (fuzzing, tests). `name`
 * is used in messages only. */
int lm_audio_reader_open_memory(const void *data, size_t size, const char *name,
                                const lm_audio_params *params, lm_audio_reader **out,
                                lm_error *err);
/* Read up to n (> 0) mono samples at params.sample_rate into buf. *got = 0 means end of input.
 * Returns 0 or a negative status (decode error, limit exceeded); after an error the reader
 * only returns that error again. */
int lm_audio_reader_read(lm_audio_reader *r, float *buf, int64_t n, int64_t *got, lm_error *err);
/* Samples delivered so far. */
int64_t lm_audio_reader_tell(const lm_audio_reader *r);
const lm_audio_info *lm_audio_reader_info(const lm_audio_reader *r);
void lm_audio_reader_close(lm_audio_reader **r);

/* Read a whole input (bounded by params.max_seconds and, if max_samples > 0, cut after
 * max_samples). *pcm is malloc'ed, owned by the caller (free()). An input with no samples
 * at all is an error (LOOM_ERR_FORMAT). */
int lm_audio_read_all(const char *path, const lm_audio_params *params, int64_t max_samples,
                      float **pcm, int64_t *n, lm_error *err);
/* The same from memory. */
int lm_audio_read_all_memory(const void *data, size_t size, const char *name,
                             const lm_audio_params *params, int64_t max_samples,
                             float **pcm, int64_t *n, lm_error *err);

/* The length of the first piece when pcm[0, n) must be cut into pieces of at most max_len:
 * n when it fits, else the middle of the quietest 0.1 s whose middle lies in the last 40 % of
 * the window, the later one on ties. In [1, max_len] for n, max_len > 0; 0 otherwise. */
int64_t lm_audio_cut(const float *pcm, int64_t n, int64_t max_len, int sample_rate);

/* A recording's pieces to transcribe one by one (include/loom.h, loom_audio_split). */
typedef loom_audio_span lm_audio_span;   /* [start, end) in samples */
int lm_audio_split(const float *pcm, int64_t n, int sample_rate, int64_t max_len,
                   lm_audio_span **spans, int64_t *n_spans, lm_error *err);

/* Scale pcm[0, n) so that its largest finite |sample| is peak; digital silence (nothing of
 * one 16-bit step or more) and peak <= 0 leave it as it is. Returns the gain applied. */
float lm_audio_normalize(float *pcm, int64_t n, float peak);

/* Text to say, normalised and cut into sentences (include/loom.h, loom_speech_pieces). */
int  lm_speech_pieces(const char *text, size_t max_chars, char ***pieces, int64_t *n_pieces, lm_error *err);
void lm_speech_pieces_free(char ***pieces, int64_t n_pieces);

/* WAV output. pcm is interleaved [n_frames][channels] in [-1, 1] (PCM16 clips outside).
 * Written to a temporary name in the same folder and renamed over `path`, so readers never
 * see half a file. */
typedef enum lm_wav_format { LM_WAV_PCM16 = 0, LM_WAV_F32 = 1 } lm_wav_format;
int lm_wav_write(const char *path, const float *pcm, int64_t n_frames, int channels,
                 int sample_rate, lm_wav_format fmt, lm_error *err);

#endif
