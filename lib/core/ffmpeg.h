/*
 * FFmpeg, loaded at first use (dlopen, not linked).
 *
 * Linked, FFmpeg's five libraries and the ~130 libraries they need (every codec's) were
 * mapped and relocated at the start of every process, ~25 ms of CPU (`loom version` took
 * 31 ms, now 3), though pictures, text and WAV/PNG output never touch FFmpeg. So audio
 * input, video input and MP4 output call it through one table of function pointers, filled
 * once, at the first such call (the same ~25 ms, paid only there), by loading the libraries
 * by the sonames of the headers loom was built with (libavutil.so.57, …, libavformat.so.59
 * for FFmpeg 5.1). If that fails, each of those entry points fails with LOOM_ERR_UNSUPPORTED
 * and a message naming the library and the loader's reason.
 *
 * The one way to call FFmpeg (the table is the library-loading part of the runtime, like
 * blas.h; the media code that uses it stays in audio/ and video/):
 *     const lm_ffmpeg *av = lm_ffmpeg_get();
 *     if (!av) return lm_ffmpeg_fail(err);        (entry points, before anything else)
 *     av->avformat_open_input(&fmt, name, NULL, NULL);
 * Code that runs only behind such an entry point (a handle's functions) gets the table the
 * same way and does not check it again.
 */
#ifndef LM_FFMPEG_H
#define LM_FFMPEG_H

#include <stddef.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#include "lib/core/error.h"

/* The libraries, in load order (each after the ones it needs). */
enum { LM_AVUTIL, LM_SWRESAMPLE, LM_SWSCALE, LM_AVCODEC, LM_AVFORMAT, LM_FFMPEG_N_LIBS };

/* Every FFmpeg function loom calls, with the library that defines it. */
#define LM_FFMPEG_FUNCS(X)                                                                          \
    X(LM_AVUTIL, av_calloc) X(LM_AVUTIL, av_channel_layout_copy)                                    \
    X(LM_AVUTIL, av_channel_layout_default) X(LM_AVUTIL, av_channel_layout_uninit)                  \
    X(LM_AVUTIL, av_d2q) X(LM_AVUTIL, av_dict_free) X(LM_AVUTIL, av_dict_set)                       \
    X(LM_AVUTIL, av_dict_set_int) X(LM_AVUTIL, av_frame_alloc) X(LM_AVUTIL, av_frame_free)          \
    X(LM_AVUTIL, av_frame_get_buffer) X(LM_AVUTIL, av_frame_make_writable)                          \
    X(LM_AVUTIL, av_frame_move_ref) X(LM_AVUTIL, av_frame_unref) X(LM_AVUTIL, av_free)              \
    X(LM_AVUTIL, av_freep) X(LM_AVUTIL, av_get_pix_fmt_name) X(LM_AVUTIL, av_get_sample_fmt_name)   \
    X(LM_AVUTIL, av_log_format_line2) X(LM_AVUTIL, av_log_set_callback) X(LM_AVUTIL, av_malloc)     \
    X(LM_AVUTIL, av_max_alloc) X(LM_AVUTIL, av_strerror)                                            \
    X(LM_SWRESAMPLE, swr_alloc_set_opts2) X(LM_SWRESAMPLE, swr_convert) X(LM_SWRESAMPLE, swr_free)  \
    X(LM_SWRESAMPLE, swr_get_out_samples) X(LM_SWRESAMPLE, swr_init)                                \
    X(LM_SWSCALE, sws_freeContext) X(LM_SWSCALE, sws_getCoefficients) X(LM_SWSCALE, sws_getContext) \
    X(LM_SWSCALE, sws_scale) X(LM_SWSCALE, sws_setColorspaceDetails)                                \
    X(LM_AVCODEC, av_packet_alloc) X(LM_AVCODEC, av_packet_free) X(LM_AVCODEC, av_packet_rescale_ts) \
    X(LM_AVCODEC, av_packet_unref) X(LM_AVCODEC, avcodec_alloc_context3)                            \
    X(LM_AVCODEC, avcodec_find_decoder) X(LM_AVCODEC, avcodec_find_encoder)                         \
    X(LM_AVCODEC, avcodec_find_encoder_by_name) X(LM_AVCODEC, avcodec_flush_buffers)                \
    X(LM_AVCODEC, avcodec_free_context) X(LM_AVCODEC, avcodec_get_name) X(LM_AVCODEC, avcodec_open2) \
    X(LM_AVCODEC, avcodec_parameters_from_context) X(LM_AVCODEC, avcodec_parameters_to_context)     \
    X(LM_AVCODEC, avcodec_receive_frame) X(LM_AVCODEC, avcodec_receive_packet)                      \
    X(LM_AVCODEC, avcodec_send_frame) X(LM_AVCODEC, avcodec_send_packet)                            \
    X(LM_AVFORMAT, av_find_best_stream) X(LM_AVFORMAT, av_guess_frame_rate)                         \
    X(LM_AVFORMAT, av_interleaved_write_frame) X(LM_AVFORMAT, av_read_frame)                        \
    X(LM_AVFORMAT, av_seek_frame) X(LM_AVFORMAT, av_write_trailer)                                  \
    X(LM_AVFORMAT, avformat_alloc_context) X(LM_AVFORMAT, avformat_alloc_output_context2)           \
    X(LM_AVFORMAT, avformat_close_input) X(LM_AVFORMAT, avformat_find_stream_info)                  \
    X(LM_AVFORMAT, avformat_free_context) X(LM_AVFORMAT, avformat_index_get_entries_count)          \
    X(LM_AVFORMAT, avformat_index_get_entry_from_timestamp) X(LM_AVFORMAT, avformat_new_stream)     \
    X(LM_AVFORMAT, avformat_open_input) X(LM_AVFORMAT, avformat_query_codec)                        \
    X(LM_AVFORMAT, avformat_write_header) X(LM_AVFORMAT, avio_alloc_context)                        \
    X(LM_AVFORMAT, avio_closep) X(LM_AVFORMAT, avio_context_free) X(LM_AVFORMAT, avio_feof)         \
    X(LM_AVFORMAT, avio_open)

/* One pointer per function, named like it and typed by its own prototype. */
typedef struct lm_ffmpeg {
#define LM_FFMPEG_PTR(lib, f) __typeof__(f) *f;
    LM_FFMPEG_FUNCS(LM_FFMPEG_PTR)
#undef LM_FFMPEG_PTR
} lm_ffmpeg;

/* The sonames loaded, from the headers' LIB*_VERSION_MAJOR, by LM_AVUTIL etc. */
extern const char *const lm_ffmpeg_sonames[LM_FFMPEG_N_LIBS];

/* The table, loading FFmpeg on the first call (once per process, thread-safe); NULL when it
 * could not be loaded (then every later call returns NULL too). Owned by loom; never freed. */
const lm_ffmpeg *lm_ffmpeg_get(void);

/* Record why FFmpeg could not be loaded in err (may be NULL), e.g. "audio and video need
 * FFmpeg, which could not be loaded: libavformat.so.59: cannot open shared object file: …";
 * returns LOOM_ERR_UNSUPPORTED. */
int lm_ffmpeg_fail(lm_error *err);

/* The load itself, for lm_ffmpeg_get and for tests: dlopen sonames[LM_AVUTIL..LM_AVFORMAT]
 * and resolve every function into *t. 0, or LOOM_ERR_UNSUPPORTED with err naming the library
 * (or function) and dlerror()'s text, and *t zeroed (the libraries it did open stay open). */
int lm_ffmpeg_open(const char *const sonames[LM_FFMPEG_N_LIBS], lm_ffmpeg *t, lm_error *err);

#endif
