/* Inner loops of the audio codec's vocoder (audio_codec.c), written once as static inline
 * bodies: audio_codec.c compiles them portably, audio_codec_avx512.c with AVX-512 (the same
 * C, vectorised by the compiler; ISO C mode does not contract into FMAs, so both give the
 * same bits). lm_ac_gl_update_avx512 is hand-vectorised, bit-identical to the body as well;
 * tests/test_audio_codec_parity.c compares them. */
#ifndef LM_AUDIO_CODEC_DSP_H
#define LM_AUDIO_CODEC_DSP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* One multiplicative NNLS update, float64: tmp = MᵀM · S over each row's nonzero band
 * [band[2k], band[2k+1]), then S ← S ⊙ MᵀP / (tmp + 1e-10). S, tmp, mtp: [B][T]; mtm [B][B]. */
static inline void lm_ac_nnls_iter_body(double *S, double *tmp, const double *mtp, const double *mtm,
                                        const int *band, int B, int64_t T)
{
    for (int kb = 0; kb < B; kb++) {
        double *tr = tmp + (size_t)kb * T;
        memset(tr, 0, sizeof(double) * T);
        for (int j = band[2 * kb]; j < band[2 * kb + 1]; j++) {
            const double c = mtm[(size_t)kb * B + j];
            const double *sr = S + (size_t)j * T;
            for (int64_t t = 0; t < T; t++) tr[t] += c * sr[t];
        }
    }
    for (int64_t i = 0; i < (int64_t)B * T; i++) S[i] = S[i] * mtp[i] / (tmp[i] + 1e-10);
}

/* Fast Griffin-Lim step over n complex bins (interleaved re, im): T = C + α(C − prev),
 * prev ← C, X ← A·T/|T| (A = At[i]; (A, 0) where |T| = 0, as angle(0) = 0 in torch). */
static inline void lm_ac_gl_update_body(float *X, float *prev, const float *C, const float *At, float alpha,
                                        int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const float cr = C[2 * i], ci = C[2 * i + 1];
        const float tr = cr + alpha * (cr - prev[2 * i]), ti = ci + alpha * (ci - prev[2 * i + 1]);
        prev[2 * i] = cr;
        prev[2 * i + 1] = ci;
        /* A·exp(i·angle(T)) as A·T/|T|: the same unit phasor without atan2/cos/sin (they
         * differ in the last bits only) */
        const float a = At[i], r = sqrtf(tr * tr + ti * ti);
        X[2 * i] = r > 0.0f ? a * (tr / r) : a;
        X[2 * i + 1] = r > 0.0f ? a * (ti / r) : 0.0f;
    }
}

void lm_ac_nnls_iter_avx512(double *S, double *tmp, const double *mtp, const double *mtm, const int *band, int B,
                            int64_t T);
void lm_ac_gl_update_avx512(float *X, float *prev, const float *C, const float *At, float alpha, int64_t n);

#endif
