/* AVX-512 versions of the codec layer helpers (see codec_common.h; the portable versions are
 * in codec_common.c, which calls these only when the active kernel set is "avx512", and
 * tests/test_kernels.c compares the two). Same arithmetic as the portable code, 16 lanes:
 * e^x by the same Cephes range reduction and degree-6 polynomial (|rel err| ~2e-7). */
#include <immintrin.h>
#include <math.h>

#include "lib/core/codec_common.h"

static inline __m512 exp512(__m512 z)
{
    z = _mm512_min_ps(_mm512_max_ps(z, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(z, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), z);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, k);   /* p · 2^k */
}

double lm_codec_sum_avx512(const float *x, int64_t n, double m, int centred)
{
    double total = 0.0;
    const __m512 vm = _mm512_set1_ps((float)m);
    for (int64_t i0 = 0; i0 < n; i0 += 512) {
        const int64_t e = n - i0 < 512 ? n - i0 : 512;
        __m512 acc = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= e; i += 16) {
            const __m512 v = _mm512_loadu_ps(x + i0 + i);
            if (centred) {
                const __m512 d = _mm512_sub_ps(v, vm);
                acc = _mm512_fmadd_ps(d, d, acc);
            } else acc = _mm512_add_ps(acc, v);
        }
        double blk = _mm512_reduce_add_ps(acc);
        for (; i < e; i++) {
            const double v = centred ? (double)x[i0 + i] - m : x[i0 + i];
            blk += centred ? v * v : v;
        }
        total += blk;
    }
    return total;
}

void lm_codec_affine_swish_avx512(float *y, const float *x, int64_t n, float a, float b, float m)
{
    const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b), vm = _mm512_set1_ps(m), one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm), va, vb);
        const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), v));
        _mm512_mask_storeu_ps(y + i, k, _mm512_div_ps(v, _mm512_add_ps(one, e)));
    }
}

void lm_codec_softmax_scaled_avx512(float *x, int64_t n, float div)
{
    const __m512 vd = _mm512_set1_ps(div);
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), vd);
        _mm512_mask_storeu_ps(x + i, k, v);
        mx = _mm512_mask_max_ps(mx, k, mx, v);
    }
    const __m512 vmx = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vmx));
        _mm512_mask_storeu_ps(x + i, k, e);
        acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, e));
    }
    const __m512 inv = _mm512_set1_ps((float)(1.0 / (double)_mm512_reduce_add_ps(acc)));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
    }
}
