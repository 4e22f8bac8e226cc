/* libFuzzer entry: demux + decode + sample arbitrary bytes as a video, from memory (a custom
 * AVIOContext, video_io.c's memory input). Any input must give frames or a clear error; the
 * sanitizers catch the rest.
 *
 *   scripts/fuzz 60 fuzz_video      (seeds: fuzz/corpus/video/, small fixtures of each codec)
 *
 * Limits are kept small so the fuzzer explores parsing, not huge allocations. */
#include <stdint.h>
#include <stdlib.h>

#include "video/video.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    loom_video_params p = loom_video_default_params();
    p.max_width = p.max_height = 512;
    p.max_frames = 16;
    p.n_threads = 1;
    /* the first byte picks the sampling mode, so both paths get explored */
    if (size > 0) {
        if (data[0] & 1) { p.n_frames = 0; p.fps = 1 + (data[0] >> 1) % 8; }
        else p.n_frames = 1 + (data[0] >> 1) % 8;
        if (data[0] & 0x80) { p.width = 32; p.height = 24; }
    }
    loom_video *v = NULL;
    lm_error e = {0};
    int rc = lm_video_sample_buffer(data, size, &p, &v, &e);
    if (rc == 0 && (!v || v->n_frames < 1 || !v->rgb)) abort();   /* success must mean frames */
    if (rc < 0 && (v || !e.msg[0])) abort();                       /* failure must explain */
    lm_video_free(&v);
    return 0;
}
