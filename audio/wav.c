/*
 * Plain WAV input without FFmpeg: header probe and sample conversion (see wav.h). The
 * conversions are FFmpeg's: its PCM decoders hand libswresample u8, s16, s32 (24-bit
 * samples shifted up by 8) or float, and swresample scales integers by a power of two in
 * float, which is exact except for the rounding of a 32-bit integer to float.
 */
#include "audio/wav.h"

#include <string.h>

#define MAX_CHUNKS 64          /* chunks before 'data'; more is left to FFmpeg          */
#define MAX_TAIL   (1u << 20)   /* bytes after the data chunk searched for another one  */

static const char *const codec_names[] = {
    [LM_WAV_CODEC_U8] = "pcm_u8",     [LM_WAV_CODEC_S16] = "pcm_s16le", [LM_WAV_CODEC_S24] = "pcm_s24le",
    [LM_WAV_CODEC_S32] = "pcm_s32le", [LM_WAV_CODEC_F32] = "pcm_f32le", [LM_WAV_CODEC_F64] = "pcm_f64le",
};

const char *lm_wav_codec_name(lm_wav_codec c)
{
    return (unsigned)c < sizeof codec_names / sizeof codec_names[0] ? codec_names[c] : "?";
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }

/* KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT after their first two bytes (the format code). */
static const uint8_t ksdata_guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                             0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71};

/* The 'fmt ' chunk (n bytes at f) → codec and shape; 0 if loom leaves it to FFmpeg. */
static int parse_fmt(const uint8_t *f, uint32_t n, lm_wav_info *w)
{
    if (n < 16) return 0;
    unsigned tag = rd16(f), channels = rd16(f + 2), align = rd16(f + 12), bits = rd16(f + 14);
    uint32_t rate = rd32(f + 4);
    if (tag == 0xFFFE) {   /* WAVE_FORMAT_EXTENSIBLE: the real code is in the GUID */
        if (n < 40 || rd16(f + 16) < 22 || memcmp(f + 26, ksdata_guid_tail, sizeof ksdata_guid_tail)) return 0;
        unsigned valid = rd16(f + 18);
        if (valid && valid != bits) return 0;   /* FFmpeg would take the valid bits as the size */
        tag = rd16(f + 24);
    }
    if (tag == 1 && bits == 8) w->codec = LM_WAV_CODEC_U8;
    else if (tag == 1 && bits == 16) w->codec = LM_WAV_CODEC_S16;
    else if (tag == 1 && bits == 24) w->codec = LM_WAV_CODEC_S24;
    else if (tag == 1 && bits == 32) w->codec = LM_WAV_CODEC_S32;
    else if (tag == 3 && bits == 32) w->codec = LM_WAV_CODEC_F32;
    else if (tag == 3 && bits == 64) w->codec = LM_WAV_CODEC_F64;
    else return 0;
    if (channels < 1 || rate < 1 || rate > INT32_MAX || align != channels * (bits / 8)) return 0;
    w->channels = (int)channels;
    w->rate = (int)rate;
    w->frame_bytes = (int)align;
    return 1;
}

/* 1 if the bytes "data" occur in [off, end), where FFmpeg would look for a further data
 * chunk to read on; -1 on a read error. */
static int tail_has_data_tag(lm_wav_read_at read_at, void *src, uint64_t off, uint64_t end)
{
    uint8_t b[4096];
    while (off + 4 <= end) {
        size_t k = end - off < sizeof b ? (size_t)(end - off) : sizeof b;
        int64_t got = read_at(src, off, b, k);
        if (got < 0) return -1;
        if (got < 4) return 0;
        for (int64_t i = 0; i + 4 <= got; i++)
            if (!memcmp(b + i, "data", 4)) return 1;
        off += (uint64_t)got - 3;   /* a tag across the boundary */
    }
    return 0;
}

int lm_wav_probe(lm_wav_read_at read_at, void *src, uint64_t file_size, lm_wav_info *w)
{
    memset(w, 0, sizeof *w);
    uint8_t h[12];
    int64_t got = read_at(src, 0, h, sizeof h);
    if (got < 0) return -1;
    if (got < (int64_t)sizeof h || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4)) return 0;
    uint64_t off = 12;
    int have_fmt = 0;
    for (int i = 0; i < MAX_CHUNKS && off + 8 <= file_size; i++) {
        uint8_t c[8];
        if ((got = read_at(src, off, c, 8)) < 0) return -1;
        if (got < 8) return 0;
        uint32_t size = rd32(c + 4);
        off += 8;
        if (!memcmp(c, "data", 4)) {
            /* FFmpeg reads on into a further data chunk after this one (and, while it looks
             * for metadata, may take a later one first): leave any file with one to it. */
            if (!have_fmt || size == 0 || size == 0xFFFFFFFFu) return 0;
            uint64_t end = off + size;
            if (end < file_size) {
                if (file_size - end > MAX_TAIL) return 0;
                int t = tail_has_data_tag(read_at, src, end, file_size);
                if (t) return t < 0 ? -1 : 0;
            }
            w->data_offset = off;
            w->data_bytes = size;
            return 1;
        }
        /* FFmpeg pads an odd chunk or not depending on how much of it it parsed. */
        if (size & 1) return 0;
        if (!memcmp(c, "fmt ", 4)) {
            uint8_t f[40];
            uint32_t k = size < sizeof f ? size : (uint32_t)sizeof f;
            if (have_fmt) return 0;   /* a second one: FFmpeg's call */
            if ((got = read_at(src, off, f, k)) < 0) return -1;
            if (got != (int64_t)k || !parse_fmt(f, size, w)) return 0;
            have_fmt = 1;
        }
        off += size;
    }
    return 0;
}

void lm_wav_to_planes(const lm_wav_info *w, const uint8_t *src, int64_t n_frames, float *planes, int64_t stride)
{
    const int C = w->channels, bytes = w->frame_bytes / C;
    for (int c = 0; c < C; c++) {
        const uint8_t *p = src + (size_t)c * (size_t)bytes;
        float *dst = planes + (size_t)c * (size_t)stride;
        for (int64_t i = 0; i < n_frames; i++, p += w->frame_bytes) {
            switch (w->codec) {
            case LM_WAV_CODEC_U8:  dst[i] = (float)((int)p[0] - 0x80) * (1.0f / (1 << 7)); break;
            case LM_WAV_CODEC_S16: dst[i] = (float)(int16_t)rd16(p) * (1.0f / (1 << 15)); break;
            case LM_WAV_CODEC_S24: dst[i] = (float)(int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24)
                                      * (1.0f / 2147483648.0f); break;
            case LM_WAV_CODEC_S32: dst[i] = (float)(int32_t)rd32(p) * (1.0f / 2147483648.0f); break;
            case LM_WAV_CODEC_F32: { uint32_t u = rd32(p); memcpy(&dst[i], &u, 4); break; }
            case LM_WAV_CODEC_F64: {
                uint64_t u = (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
                double d;
                memcpy(&d, &u, 8);
                dst[i] = (float)d;
                break;
            }
            }
        }
    }
}
