/* libFuzzer entry: the in-memory PNG/JPEG decoder (magic sniffing, libpng, TurboJPEG, EXIF
 * parsing, orientation) and the preprocessing after it must never crash, leak or read out of
 * bounds on any input.
 * A small pixel limit keeps each run fast; both alpha modes and orientation on/off are
 * chosen from the first input byte's low bits, which the decoder also sees. */
#include <stddef.h>
#include <stdint.h>

#include "vision/image.h"
#include "vision/preprocess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    loom_image_params p = loom_image_default_params();
    p.max_pixels = 1 << 20;
    if (size > 0) {
        p.alpha             = data[size - 1] & 1;
        p.apply_orientation = (data[size - 1] >> 1) & 1;
    }
    loom_image img;
    lm_error err = {0};
    if (lm_image_decode(data, size, &p, &img, &err) == 0) {
        /* touch every byte so ASan sees any short allocation */
        volatile uint8_t acc = 0;
        for (size_t i = 0; i < (size_t)img.width * (size_t)img.height * 3; i++) acc ^= img.rgb[i];
        (void)acc;
        /* preprocessing geometry on whatever size came out (1×N strips, huge ratios) */
        static float chw[3 * 16 * 16];
        lm_preprocess pp = lm_preprocess_default();
        pp.size   = 16;
        pp.fit    = size > 1 ? data[size - 2] % 3 : 0;
        pp.filter = size > 1 ? (data[size - 2] >> 2) & 1 : 0;
        lm_image_preprocess(&img, &pp, chw, &err);
        loom_image_free(&img);
    }
    lm_jpeg_exif_orientation(data, size);
    return 0;
}
