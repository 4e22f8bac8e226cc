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

/* o[i] = Σ_j p[j]·kv[j·R + i] for i < n (attention's weighted sum of cached rows), as the
 * portable loop computes it: o = 0, then o += p[j]·kv_j in order of j, a multiply then an add
 * (no FMA: ISO C mode does not contract), so the sums are the same bit for bit. Columns go
 * 64 at a time, held in registers across all rows, instead of a load and store per row. */
void lm_attn_sum_rows_avx2(float *o, const float *p, const float *kv, int64_t n_kv, int64_t R, int64_t n);

void lm_attn_sum_rows_avx2(float *o, const float *p, const float *kv, int64_t n_kv, int64_t R, int64_t n)
{
    int64_t i0 = 0;
    for (; i0 + 64 <= n; i0 += 64) {
        __m256 a[8];
        for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_ps();
        for (int64_t j = 0; j < n_kv; j++) {
            const __m256 w = _mm256_set1_ps(p[j]);
            const float *row = kv + j * R + i0;
            for (int k = 0; k < 8; k++) a[k] = _mm256_add_ps(a[k], _mm256_mul_ps(w, _mm256_loadu_ps(row + 8 * k)));
        }
        for (int k = 0; k < 8; k++) _mm256_storeu_ps(o + i0 + 8 * k, a[k]);
    }
    for (int64_t i = i0; i < n; i++) {
        float s = 0.0f;
        for (int64_t j = 0; j < n_kv; j++) s += p[j] * kv[j * R + i];
        o[i] = s;
    }
}
