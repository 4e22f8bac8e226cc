/* libFuzzer entry: decode arbitrary bytes through the audio reader's in-memory AVIO path
 * (the same demux/decode/resample code a file or stdin goes through).
 *   scripts/fuzz 60 fuzz_audio        (seeds: fuzz/corpus/audio, small real files) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "audio/audio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lm_audio_params p = lm_audio_default_params();
    /* bound the work per input (the seeds are 0.5 s; a mutated header can stretch a few KB
     * into minutes): longer is the max_seconds error, also worth reaching */
    p.max_seconds = 8;
    float *pcm = NULL;
    int64_t n = 0;
    lm_error err = {0};
    if (lm_audio_read_all_memory(data, size, "fuzz", &p, 0, &pcm, &n, &err) == 0) {
        volatile float sink = 0;
        for (int64_t i = 0; i < n; i += 997) sink += pcm[i];   /* touch the output */
        (void)sink;
    }
    free(pcm);
    return 0;
}
