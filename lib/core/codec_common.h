/*
 * Media-blind pieces for small convolutional codecs (used by vision/vq.c and
 * audio/audio_codec.c): a weight loader that checks every key and tensor of a GGUF and keeps
 * F32 copies, and the few layer helpers conv stacks use (GroupNorm + swish split across the
 * pool, scaled softmax, residual add, cosine argmax).
 */
#ifndef LM_CORE_CODEC_COMMON_H
#define LM_CORE_CODEC_COMMON_H

#include <stdint.h>

#include "lib/core/error.h"
#include "lib/core/gguf.h"
#include "lib/core/threadpool.h"

/* F32 copies of the tensors a codec loaded; freed together. */
typedef struct lm_wstore {
    float **p;      /* [n] owned buffers                */
    int     n, cap;
} lm_wstore;
void lm_wstore_free(lm_wstore *s);
/* A new buffer of n floats owned by the store; NULL when out of memory. */
float *lm_wstore_alloc(lm_wstore *s, size_t n_floats);

/* A loader over an open GGUF. It records which tensors were taken so lm_wload_finish can
 * refuse files that carry tensors the codec does not know (a sign of a different model). */
typedef struct lm_wload {
    const lm_gguf *g;
    lm_error      *err;
    lm_wstore     *store;             /* receives the copies                    */
    unsigned char *taken;             /* [n_tensors] 1 once loaded, owned       */
} lm_wload;

int  lm_wload_init(lm_wload *ld, const lm_gguf *g, lm_wstore *store, lm_error *err);
void lm_wload_done(lm_wload *ld);
/* Tensor `name` with numpy-order shape dims[0..n_dims-1] (slowest first, as the format docs
 * write them), converted to a new F32 buffer. */
int lm_wload_tensor(lm_wload *ld, const char *name, int n_dims, const int64_t *dims, float **out);
/* u32 key in [lo, hi]. */
int lm_wload_u32(lm_wload *ld, const char *key, uint32_t lo, uint32_t hi, uint32_t *out);
/* f32 key, finite, in [lo, hi]. */
int lm_wload_f32(lm_wload *ld, const char *key, float lo, float hi, float *out);
/* Integer array key of 1..max_n elements, each in [lo, hi]; *n receives the count. */
int lm_wload_u32_arr(lm_wload *ld, const char *key, int max_n, uint32_t lo, uint32_t hi,
                     uint32_t *out, int *n);
/* general.architecture must equal `arch`. */
int lm_wload_arch(lm_wload *ld, const char *arch);
/* GroupNorm affine parameters `prefix`.weight / .bias, [c] each. */
typedef struct lm_norm_w {
    const float *w, *b;   /* [c] each */
    int c;
} lm_norm_w;
/* Load them, checking that c channels split into `groups` groups. */
int lm_wload_groupnorm(lm_wload *ld, const char *prefix, int c, int groups, lm_norm_w *n);
/* Every tensor of the file was loaded; else LOOM_ERR_FORMAT naming the first stranger. */
int lm_wload_finish(lm_wload *ld);

/* GroupNorm (G groups, eps) of x[C][n] into y (may equal x), then swish if `swish`.
 * Groups are split across the pool. AVX-512 when the active kernel set (lm_kernels_name) is
 * "avx512", else portable; lm_codec_norm_with picks explicitly (avx512 only if the CPU has it). */
void lm_codec_norm(float *y, const float *x, const float *w, const float *b, int64_t C, int64_t n,
                   int64_t G, float eps, int swish, lm_pool *pool);
void lm_codec_norm_with(float *y, const float *x, const float *w, const float *b, int64_t C, int64_t n,
                        int64_t G, float eps, int swish, int avx512, lm_pool *pool);
/* In place: x[i] /= div, then softmax (max-subtracted; exp to ~2e-7 relative). Dispatches as
 * lm_codec_norm; _ref is the portable version. */
void lm_codec_softmax_scaled(float *x, int64_t n, float div);
void lm_codec_softmax_scaled_ref(float *x, int64_t n, float div);

/* AVX-512 parts (codec_common_avx512.c; call only when the CPU has AVX-512 F):
 * Σ x (centred = 0) or Σ (x − m)² (centred = 1) in float lanes per block of 512, blocks in
 * double; y = swish((x − m)·a + b); the softmax above. */
double lm_codec_sum_avx512(const float *x, int64_t n, double m, int centred);
void   lm_codec_affine_swish_avx512(float *y, const float *x, int64_t n, float a, float b, float m);
void   lm_codec_softmax_scaled_avx512(float *x, int64_t n, float div);
/* y[i] += x[i]. */
void lm_codec_add(float *y, const float *x, int64_t n);
/* For each of n vectors z[:, p] (z is [D][n], channel-major): the index of the codebook row
 * (cb [K][D], unit rows) with the largest cosine to z[:, p]; ties → lowest index. */
void lm_codec_argmax_cosine(const float *cb, int64_t K, int64_t D, const float *z, int64_t n, int32_t *codes);

#endif
