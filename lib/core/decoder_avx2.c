/* AVX2/F16C helpers for the decoder, compiled with those ISA flags (see CMakeLists.txt) and
 * called only when lm_cpu_caps_get() reports f16c. */
#include <immintrin.h>
#include <stdint.h>

#include "lib/core/types.h"

/* out[i] = x[i] rounded to f16 (nearest even, like ggml's FP32→FP16) and back. */
void lm_round_f16_avx2(const float *x, int64_t n, float *out);

void lm_round_f16_avx2(const float *x, int64_t n, float *out)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) out[i] = lm_f16_to_f32(lm_f32_to_f16(x[i]));
}
