/*
 * Plain WAV files read without FFmpeg (internal). Loading FFmpeg's ~130 libraries costs a
 * process 25-65 ms, more than transcribing a short clip, so the reader (audio_io.c) takes
 * the common case itself: a RIFF WAV of integer PCM (8, 16, 24, 32 bit) or float (32, 64
 * bit) at the output rate, which needs no resampling.
 *
 *     lm_wav_info w;
 *     if (lm_wav_probe(read_at, src, file_size, &w)) ...native...; else ...FFmpeg...;
 *     lm_wav_to_planes(&w, bytes, n_frames, planes, stride);
 *
 * The samples come out bit for bit as FFmpeg's PCM decoder followed by libswresample give
 * them (test_audio_io compares both paths), so which path ran never changes an answer.
 * Anything else is left to FFmpeg, with its messages: another codec, RF64, a streamed
 * header whose data size is 0 or 0xFFFFFFFF, a fmt chunk that does not add up, an odd-sized
 * chunk before the samples, or the bytes "data" anywhere after them (FFmpeg would read on
 * into a second data chunk; fuzz_audio found one).
 */
#ifndef LM_WAV_H
#define LM_WAV_H

#include <stddef.h>
#include <stdint.h>

typedef enum lm_wav_codec {
    LM_WAV_CODEC_U8, LM_WAV_CODEC_S16, LM_WAV_CODEC_S24, LM_WAV_CODEC_S32, LM_WAV_CODEC_F32, LM_WAV_CODEC_F64,
} lm_wav_codec;

typedef struct lm_wav_info {
    lm_wav_codec codec;
    int          channels;
    int          rate;          /* Hz                                              */
    int          frame_bytes;   /* channels × bytes per sample                     */
    uint64_t     data_offset;   /* first byte of the samples                       */
    uint64_t     data_bytes;    /* the data chunk's size as the header states it   */
} lm_wav_info;

/* FFmpeg's name for the codec ("pcm_s16le", …), as lm_audio_info reports it. */
const char *lm_wav_codec_name(lm_wav_codec c);

/* Reads n bytes at offset off into buf; returns how many it read (fewer at the end), or
 * -1 on an I/O error. */
typedef int64_t (*lm_wav_read_at)(void *src, uint64_t off, void *buf, size_t n);

/* 1 if the input (file_size bytes) is a plain WAV this module reads, with *w filled;
 * 0 if not (FFmpeg's to read); -1 if read_at failed. */
int lm_wav_probe(lm_wav_read_at read_at, void *src, uint64_t file_size, lm_wav_info *w);

/* Interleaved samples (n_frames × frame_bytes) → one float plane per channel,
 * planes[c * stride + i]. */
void lm_wav_to_planes(const lm_wav_info *w, const uint8_t *src, int64_t n_frames, float *planes,
                      int64_t stride);

#endif
