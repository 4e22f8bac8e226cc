/*
 * Compute kernels. Every optimized kernel has a portable reference version (suffix _ref)
 * kept beside it; tests compare the two. The fast paths (AVX2, AVX-512 incl. VNNI/BF16) are
 * chosen once at run time from CPU features, so the binary runs on any x86-64.
 *
 * Layouts: a weight matrix is ggml-shaped {n_in, n_out}: n_out rows of n_in values, each
 * row contiguous (row_bytes apart). Activations are row-major float [n_tok][n].
 */
#ifndef LM_KERNELS_H
#define LM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/core/threadpool.h"
#include "lib/core/types.h"

typedef struct lm_matrix {
    int         type;       /* lm_type of the elements                    */
    int64_t     n_in;       /* ne0: values per row (input features)       */
    int64_t     n_out;      /* ne1: rows (output features)                */
    size_t      row_bytes;  /* lm_row_bytes(type, n_in) (or a larger stride) */
    const void *data;       /* n_out * row_bytes bytes, not owned         */
} lm_matrix;

/* CPU features the dispatcher may use (detected once, in cpu.c). */
typedef struct lm_cpu_caps {
    int avx2, fma, f16c;                                   /* the AVX2 path needs all three */
    int avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, avx512bf16; /* AVX-512 path      */
    int amx_bf16;   /* AMX tiles with bf16 products, and the OS let this process use them */
} lm_cpu_caps;
const lm_cpu_caps *lm_cpu_caps_get(void);
/* The same as text: "avx512f avx512bw … avx2 fma f16c" ("none" if none). */
const char *lm_cpu_features(void);
/* Force the portable path (tests, debugging): 1 = reference kernels only. */
void lm_kernels_force_ref(int on);
/* Pick the kernel set by name: "auto" (best this CPU runs), "ref", "avx2" or "avx512".
 * 0, or LOOM_ERR_UNSUPPORTED if this CPU lacks that set (the choice is then unchanged).
 * For tests and benchmarks; do not call while kernels run on other threads. */
int lm_kernels_select(const char *name);
/* Name of the set in use: "ref", "avx2" or "avx512". */
const char *lm_kernels_name(void);
/* lm_matmul keeps a per-thread scratch buffer (dequantized weight tiles) between calls so
 * steady state never allocates; it is freed when the thread exits, or now by this call. */
void lm_kernels_scratch_release(void);

/* --- typed rows ------------------------------------------------------------------------ */
/* types.h's lm_row_to_f32 / lm_row_from_f32 through the active kernel set (F16C, AVX2):
 * the same values bit for bit, NaN and inf included. Types other than f32, f16, bf16 and
 * q8_0 are left alone, as there. */
void lm_row_to_f32_fast(int type, const void *src, float *dst, int64_t n);
void lm_row_from_f32_fast(int type, const float *src, void *dst, int64_t n);

/* --- dot products and matrix products -------------------------------------------------- */
/* Σ w[i]·x[i] for a typed row w of n values (n a multiple of the block length). */
float lm_dot(int type, const void *w, const float *x, int64_t n);
float lm_dot_ref(int type, const void *w, const float *x, int64_t n);

/* y[n_out] = W · x[n_in]. Rows split across the pool. */
void lm_matvec(const lm_matrix *W, const float *x, float *y, lm_pool *pool);
void lm_matvec_ref(const lm_matrix *W, const float *x, float *y);

/* Q8_0 weights times activations quantized to q8_0 blocks (llama.cpp's vec_dot_type for
 * Q8_0): x ≈ xd[b]·xq[32b+j], rounded exactly as ggml's x86 quantize_row_q8_0 does it
 * (id = 127/amax, nearest even, scale rounded through f16). Each block's Σ w·x is an exact
 * int32 (int8×int8 dots: AVX-512 VNNI vpdpbusd, AVX2 vpmaddubsw with the sign trick), then
 * one float FMA by dw·dx per block. lm_matvec itself keeps float x (no 8-bit rounding). */
void lm_quantize_q8(const float *x, int64_t n, int8_t *xq, float *xd);     /* n % 32 == 0 */
void lm_quantize_q8_ref(const float *x, int64_t n, int8_t *xq, float *xd);
/* y[n_out] = W · x for Q8_0 W (other types: y = NaN); rows split across the pool. */
void lm_matvec_q8(const lm_matrix *W, const int8_t *xq, const float *xd, float *y, lm_pool *pool);
void lm_matvec_q8_ref(const lm_matrix *W, const int8_t *xq, const float *xd, float *y);

/* y[j] = W · x_j for nx separate inputs on the calling thread, reading each weight row once
 * per four inputs (the decode rows of several sequences: guided pairs, beams, candidates).
 * Float: x_j = x + j·ldx. Q8: xq_j = xq + j·n_in, xd_j = xd + j·n_in/32, Q8_0 W only.
 * Each y[j] equals lm_matvec's (lm_matvec_q8's) on x_j alone, bit for bit; a bad W fills
 * every y[j] with NaN, as those do. */
void lm_matvec_multi(const lm_matrix *W, const float *x, int64_t ldx, float *const *y, int nx);
void lm_matvec_q8_multi(const lm_matrix *W, const int8_t *xq, const float *xd, float *const *y, int nx);

/* Y[n_tok][n_out] = X[n_tok][n_in] · Wᵀ, through lm_sgemm (OpenBLAS; non-F32 weights are
 * dequantized in tiles); small n_tok may use matvec. Y must not alias X. */
void lm_matmul(const lm_matrix *W, const float *X, int64_t n_tok, float *Y, lm_pool *pool);
void lm_matmul_ref(const lm_matrix *W, const float *X, int64_t n_tok, float *Y);

/* The same in bfloat16: Y = bf16(X) · bf16(W)ᵀ, each product exact and summed in f32 (inputs
 * keep 8 significant bits, so Y differs from lm_matmul's by up to ~2^-8 of Σ|x·w|), on AMX
 * tiles split across the pool: several times the f32 rate. 0, or LOOM_ERR_UNSUPPORTED
 * without AMX (lm_cpu_caps.amx_bf16) or the AVX-512 kernel set, LOOM_ERR_NO_MEMORY (Y is
 * then unwritten). lm_matmul takes this path itself for n_tok >= LM_MATMUL_BF16_MIN_TOK when
 * its pool asks for it (lm_pool_set_matmul_bf16). The reference rounds the same way and
 * sums in double. */
#define LM_MATMUL_BF16_MIN_TOK 16
int  lm_matmul_bf16(const lm_matrix *W, const float *X, int64_t n_tok, float *Y, lm_pool *pool);
void lm_matmul_bf16_ref(const lm_matrix *W, const float *X, int64_t n_tok, float *Y);

/* --- elementwise and normalisation (in place allowed: y may equal x) -------------------- */
void lm_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps); /* w may be NULL */
void lm_layernorm(float *y, const float *x, const float *w, const float *b, int64_t n, float eps);
void lm_softmax(float *x, int64_t n);                 /* in place, max-subtracted */
void lm_silu(float *y, const float *x, int64_t n);
void lm_gelu_tanh(float *y, const float *x, int64_t n);
void lm_gelu_erf(float *y, const float *x, int64_t n);
/* y[i] = silu(gate[i]) * up[i] */
void lm_swiglu(float *y, const float *gate, const float *up, int64_t n);
/* The forms the encoders and decoder run: AVX2+FMA with polynomial exp and erf where the CPU
 * has them (softmax and SiLU relative error ~2e-7 per element; GELU |error| <=
 * 2e-7·max(1, |x|)), else the reference forms above.
 * lm_bias_gelu_erf_fast: y[i] = gelu_erf(y[i] + b[i]) in place (b may be NULL). */
void lm_softmax_fast(float *x, int64_t n);
void lm_bias_gelu_erf_fast(float *y, const float *b, int64_t n);
void lm_swiglu_fast(float *y, const float *gate, const float *up, int64_t n);

/* RoPE on one head vector x[n_dims] at position pos.
 * LM_ROPE_NORM rotates adjacent pairs (x[2i], x[2i+1]) (llama.cpp NORM, DeepSeek);
 * LM_ROPE_NEOX rotates (x[i], x[i + n_dims/2]). */
enum { LM_ROPE_NORM = 0, LM_ROPE_NEOX = 2 };
typedef struct lm_rope {
    int   mode;          /* LM_ROPE_NORM or LM_ROPE_NEOX                          */
    int   n_dims;        /* rotated dims (even)                                   */
    float freq_base;     /* theta, e.g. 10000                                     */
    float freq_scale;    /* 1/scaling factor (1 = none)                           */
    int   n_ctx_orig;    /* YaRN original context (0 = YaRN off)                  */
    float ext_factor;    /* YaRN extrapolation mix (0 = off, 1 = on)              */
    float attn_factor;   /* magnitude scale applied to cos/sin (1 = none)         */
    float beta_fast;     /* YaRN ramp, llama.cpp defaults 32                      */
    float beta_slow;     /* and 1                                                 */
} lm_rope;
/* Same arithmetic as ggml's rope (rope_yarn) so logits agree with llama.cpp. */
void lm_rope_apply(const lm_rope *r, float *x, int64_t pos);

/* GroupNorm over x[C][HW] in place-safe form: G groups of C/G channels. w, b: [C]. */
void lm_groupnorm(float *y, const float *x, const float *w, const float *b,
                  int64_t C, int64_t HW, int64_t G, float eps);
/* Nearest ×2 upsampling: x[C][H][W] → y[C][2H][2W]. */
void lm_upsample_nearest2x(float *y, const float *x, int64_t C, int64_t H, int64_t W);

/* conv1d: x[C_in][L] → y[C_out][L_out], weight ggml {K, C_in, C_out} (PyTorch
 * [C_out][C_in][K]), bias [C_out] or NULL, stride s, padding p;
 * L_out = (L + 2p - K)/s + 1. `scratch` holds C_in*K*L_out floats (im2col). */
void lm_conv1d(float *y, const float *x, const float *w, const float *b,
               int64_t C_in, int64_t L, int64_t C_out, int64_t K, int64_t s, int64_t p,
               float *scratch, lm_pool *pool);
/* The same with dilation d >= 1 (taps k·d apart): L_out = (L + 2p - d(K-1) - 1)/s + 1. */
void lm_conv1d_dilated(float *y, const float *x, const float *w, const float *b,
                       int64_t C_in, int64_t L, int64_t C_out, int64_t K, int64_t s, int64_t p, int64_t d,
                       float *scratch, lm_pool *pool);
/* conv2d: x[C_in][H][W] → y[C_out][H_out][W_out], weight [C_out][C_in][K][K] (PyTorch),
 * bias or NULL, stride s, padding p. `scratch` holds C_in*K*K*H_out*W_out floats. */
void lm_conv2d(float *y, const float *x, const float *w, const float *b,
               int64_t C_in, int64_t H, int64_t W, int64_t C_out, int64_t K, int64_t s, int64_t p,
               float *scratch, lm_pool *pool);
void lm_conv1d_ref(float *y, const float *x, const float *w, const float *b,
                   int64_t C_in, int64_t L, int64_t C_out, int64_t K, int64_t s, int64_t p);
void lm_conv1d_dilated_ref(float *y, const float *x, const float *w, const float *b,
                           int64_t C_in, int64_t L, int64_t C_out, int64_t K, int64_t s, int64_t p, int64_t d);
void lm_conv2d_ref(float *y, const float *x, const float *w, const float *b,
                   int64_t C_in, int64_t H, int64_t W, int64_t C_out, int64_t K, int64_t s, int64_t p);

#endif
