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

/* Activations rounded to the q8_0 grid exactly as ggml's x86 quantize_row_q8_0 does it
 * (id = 127/amax, round half to even, scale stored as f16), then dequantized: out[i] =
 * f16(amax/127) · q[i]. n is a multiple of 32. */
void lm_round_q8_avx2(const float *x, int64_t n, float *out);

void lm_round_q8_avx2(const float *x, int64_t n, float *out)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n; b += 32) {
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + b + 8 * k);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
        const __m256 d = _mm256_set1_ps(lm_f16_to_f32(lm_f32_to_f16(amax / 127.0f)));
        for (int k = 0; k < 4; k++) {
            const __m256 q = _mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_storeu_ps(out + b + 8 * k, _mm256_mul_ps(d, q));
        }
    }
}
