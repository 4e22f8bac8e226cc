/* libFuzzer entry: decode arbitrary bytes through the audio reader's in-memory path (the
 * same demux/decode/resample code a file or stdin goes through). A plain 16 kHz WAV, which
 * loom reads without FFmpeg (audio/wav.h), is decoded through FFmpeg too: when both
 * succeed, the samples must be the same bits (abort otherwise).
 *   scripts/fuzz 60 fuzz_audio        (seeds: fuzz/corpus/audio, small real files) */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whole input as mono samples; returns the status, *via_ffmpeg says which path ran. */
static int read_all(const uint8_t *data, size_t size, int ffmpeg_only, float **pcm, int64_t *n, int *via_ffmpeg)
{
    lm_audio_params p = lm_audio_default_params();
    /* bound the work per input (the seeds are 0.5 s; a mutated header can stretch a few KB
     * into minutes): longer is the max_seconds error, also worth reaching */
    p.max_seconds = 8;
    p.ffmpeg_only = ffmpeg_only;
    lm_error err = {0};
    lm_audio_reader *r = NULL;
    *pcm = NULL;
    *n = 0;
    int rc = lm_audio_reader_open_memory(data, size, "fuzz", &p, &r, &err);
    if (rc < 0) return rc;
    *via_ffmpeg = lm_audio_reader_info(r)->via_ffmpeg;
    int64_t cap = 0, got = 0;
    for (;;) {
        if (*n + 4096 > cap) {
            cap = (*n + 4096) * 2;
            float *q = realloc(*pcm, (size_t)cap * sizeof *q);
            if (!q) { rc = -1; break; }
            *pcm = q;
        }
        if ((rc = lm_audio_reader_read(r, *pcm + *n, 4096, &got, &err)) < 0 || got == 0) break;
        *n += got;
    }
    lm_audio_reader_close(&r);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    float *pcm = NULL, *ref = NULL;
    int64_t n = 0, n_ref = 0;
    int via_ffmpeg = 1, unused;
    int rc = read_all(data, size, 0, &pcm, &n, &via_ffmpeg);
    if (!via_ffmpeg && read_all(data, size, 1, &ref, &n_ref, &unused) == 0 && rc == 0 &&
        (n != n_ref || (n && memcmp(pcm, ref, (size_t)n * sizeof *pcm)))) {
        fprintf(stderr, "fuzz_audio: native WAV reading gave %lld samples, FFmpeg %lld, or other bits\n",
                (long long)n, (long long)n_ref);
        abort();
    }
    if (rc == 0 && n > 0) {   /* whatever the samples (NaN, inf, silence), the pieces are sane */
        lm_audio_span *sp = NULL;
        int64_t k = 0;
        lm_error err = {0};
        const int64_t win = 4000;
        if (lm_audio_split(pcm, n, 16000, win, &sp, &k, &err) != 0) abort();
        for (int64_t i = 0; i < k; i++)
            if (sp[i].start < (i ? sp[i - 1].end : 0) || sp[i].end <= sp[i].start || sp[i].end > n ||
                sp[i].end - sp[i].start > win) {
                fprintf(stderr, "fuzz_audio: piece %lld of %lld is [%lld, %lld) of %lld samples\n", (long long)i,
                        (long long)k, (long long)sp[i].start, (long long)sp[i].end, (long long)n);
                abort();
            }
        free(sp);
    }
    free(pcm);
    free(ref);
    return 0;
}
