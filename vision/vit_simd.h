/* Vectorised elementwise kernels of the vision encoder (vit_avx2.c, compiled with AVX2+FMA and
 * only called when lm_cpu_caps_get() reports both). Their portable references are
 * lm_gelu_erf and lm_softmax in lib/core/kernels.h; tests/test_vit_parity.c compares them. */
#ifndef LM_VISION_VIT_SIMD_H
#define LM_VISION_VIT_SIMD_H

#include <stdint.h>

/* y[i] = gelu_erf(y[i] + b[i]) (b may be NULL). |error| <= 2e-7 * max(1, |x|). */
void lm_vit_bias_gelu_avx2(float *y, const float *b, int64_t n);
/* In-place max-subtracted softmax; relative error ~1e-7 per element. */
void lm_vit_softmax_avx2(float *x, int64_t n);

#endif
