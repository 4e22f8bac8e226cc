/* libFuzzer entry: arbitrary bytes as a media-encoder file (`<stem>-mmproj.gguf`: a ViT
 * `v.*`/`mm.*` and/or an audio encoder `a.*`/`mm.a.*`), through the public loader,
 * loom_mmproj_load (GGUF mmap reader, clip.* hyperparameters, every tensor bound and
 * shape-checked, the vision/audio width agreement). The input is written to an in-memory file
 * (memfd) so the loader's real open/fstat/mmap path runs. A file that loads encodes a small
 * fixed image (odd size: the fit/resize path runs) and a short fixed tone, when its weights
 * are small enough for that to take milliseconds.
 *   scripts/fuzz 60 fuzz_mmproj     (seeds: fuzz/corpus/mmproj, see its README) */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/memfd_file.h"
#include "loom.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    memfd_file_init("loom-fuzz-mmproj");
    return 0;
}

/* An encoder's output rows must be finite-or-not but readable: sum them (ASan checks reads). */
static float touch(const float *x, int64_t n)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}

static void use_mmproj(loom_mmproj *mp)
{
    const int64_t E = loom_mmproj_n_embd(mp);
    if (E < 1) __builtin_trap();   /* a loaded file always has an output width */
    volatile float sink = 0.0f;
    if (loom_mmproj_has_vision(mp)) {
        const int64_t R = loom_mmproj_image_rows(mp);
        if (R < 1) __builtin_trap();
        if (R * E <= (1 << 20)) {
            static uint8_t rgb[13 * 7 * 3];
            for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 37);
            loom_image img = {.width = 13, .height = 7, .rgb = rgb};
            float *out = malloc((size_t)(R * E) * sizeof *out);
            if (out && loom_mmproj_encode_image(mp, &img, out) == 0) sink += touch(out, R * E);
            else if (out && !loom_mmproj_error(mp)[0]) __builtin_trap();   /* failure says why */
            free(out);
        }
    }
    if (loom_mmproj_has_audio(mp)) {
        enum { N = 1600 };   /* 0.1 s at 16 kHz */
        const int64_t rows = loom_mmproj_audio_rows(mp, N);
        if (rows == LOOM_ERR_LIMIT) {
            if (loom_mmproj_audio_max_samples(mp) >= N) __builtin_trap();
        } else if (rows < 1) {
            if (rows == LOOM_ERR_UNSUPPORTED) __builtin_trap();
        } else if (rows * E <= (1 << 20)) {
            static float pcm[N];
            for (int i = 0; i < N; i++) pcm[i] = 0.5f * sinf(0.12f * (float)i);
            float *out = malloc((size_t)(rows * E) * sizeof *out);
            const int64_t C = loom_mmproj_ctc_classes(mp);
            float *lp = C > 0 && rows * C <= (1 << 20) ? malloc((size_t)(rows * C) * sizeof *lp) : NULL;
            if (out && loom_mmproj_encode_audio(mp, pcm, N, out) == 0) {
                sink += touch(out, rows * E);
                if (lp && loom_mmproj_audio_ctc(mp, out, rows, lp) == 0) sink += touch(lp, rows * C);
                else if (lp && !loom_mmproj_error(mp)[0]) __builtin_trap();
            } else if (out && !loom_mmproj_error(mp)[0]) {
                __builtin_trap();
            }
            free(out);
            free(lp);
        }
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memfd_file_put(data, size) != 0) return 0;
    loom_mmproj_params p = loom_mmproj_default_params();
    p.n_threads = 1;
    loom_mmproj *mp = NULL;
    char err[256] = "";
    int rc = loom_mmproj_load(g_path, p, &mp, err, sizeof err);
    if (rc == 0) {
        if (!mp) __builtin_trap();
        use_mmproj(mp);
        loom_mmproj_free(&mp);
    } else if (mp != NULL || rc > 0 || !err[0]) {
        __builtin_trap();   /* a failure leaves no encoder and always says why */
    }
    return 0;
}
