/* AVX-512 builds of the vocoder's inner loops (see audio_codec_dsp.h). */
#include <immintrin.h>

#include "audio/audio_codec_dsp.h"

void lm_ac_nnls_iter_avx512(double *S, double *tmp, const double *mtp, const double *mtm, const int *band, int B,
                            int64_t T)
{
    lm_ac_nnls_iter_body(S, tmp, mtp, mtm, band, B, T);
}

/* 8 complex bins per vector, (re, im) pairs in place: |T|² = t² + swap(t²) lands in both
 * slots of a pair (tr² + ti² and ti² + tr², equal bits), the division and sqrt are IEEE as in
 * the scalar body, the amplitude is duplicated into both slots. */
void lm_ac_gl_update_avx512(float *X, float *prev, const float *C, const float *At, float alpha, int64_t n)
{
    const __m512 va = _mm512_set1_ps(alpha), zero = _mm512_setzero_ps();
    const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __mmask16 re_lanes = 0x5555;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m512 c = _mm512_loadu_ps(C + 2 * i), p = _mm512_loadu_ps(prev + 2 * i);
        const __m512 t = _mm512_add_ps(c, _mm512_mul_ps(va, _mm512_sub_ps(c, p)));
        _mm512_storeu_ps(prev + 2 * i, c);
        const __m512 t2 = _mm512_mul_ps(t, t);
        const __m512 r = _mm512_sqrt_ps(_mm512_add_ps(t2, _mm512_permute_ps(t2, 0xB1)));
        const __m512 a = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(At + i)));
        const __mmask16 pos = _mm512_cmp_ps_mask(r, zero, _CMP_GT_OQ);
        const __m512 unit = _mm512_mul_ps(a, _mm512_div_ps(t, r));
        /* r > 0: a·t/r; else (a, 0) */
        const __m512 none = _mm512_maskz_mov_ps(re_lanes, a);
        _mm512_storeu_ps(X + 2 * i, _mm512_mask_mov_ps(none, pos, unit));
    }
    lm_ac_gl_update_body(X + 2 * i, prev + 2 * i, C + 2 * i, At + i, alpha, n - i);
}
