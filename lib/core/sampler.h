/*
 * Token sampling: greedy, temperature, top-k, top-p, min-p, repetition and presence
 * penalties, a seeded RNG, and a logit mask so callers can restrict sampling to a range
 * (media code blocks). Plan-then-allocate: all buffers are sized at creation for n_vocab;
 * sampling does not allocate.
 *
 * Order (llama.cpp's default chain): logit bias → penalties → mask → top-k → top-p → min-p →
 * temperature → draw. top-p and min-p see the penalized logits before temperature, as in
 * llama.cpp. temperature <= 0 is greedy: the allowed id with the largest penalized logit
 * (lowest id on ties).
 */
#ifndef LM_SAMPLER_H
#define LM_SAMPLER_H

#include <stdint.h>

typedef struct lm_sampler_params {
    float    temperature;      /* <= 0: greedy                                  */
    int32_t  top_k;            /* <= 0: off                                     */
    float    top_p;            /* >= 1: off                                     */
    float    min_p;            /* <= 0: off                                     */
    float    repeat_penalty;   /* 1: off (llama.cpp semantics: divide positive logits, multiply negative) */
    float    presence_penalty; /* 0: off (subtract once per token seen)          */
    float    frequency_penalty;/* 0: off (subtract × count)                      */
    int32_t  penalty_last_n;   /* window of recent tokens the penalties see (<= 0: none) */
    uint64_t seed;
} lm_sampler_params;

lm_sampler_params lm_sampler_default_params(void); /* greedy, penalties off, seed 0 */

typedef struct lm_sampler lm_sampler;

lm_sampler *lm_sampler_create(lm_sampler_params p, int32_t n_vocab); /* NULL on OOM */
void        lm_sampler_free(lm_sampler **s);
void        lm_sampler_reset(lm_sampler *s, uint64_t seed);   /* clears history, reseeds */
/* Remember an accepted token (for the penalties). */
void        lm_sampler_accept(lm_sampler *s, int32_t token);

/* Only ids in [lo, hi) may be sampled until cleared; lo = hi = 0 clears. Several ranges
 * can be allowed at once by calling lm_sampler_allow_range repeatedly after a clear. */
void        lm_sampler_mask_clear(lm_sampler *s);             /* everything allowed */
void        lm_sampler_allow_only(lm_sampler *s, int32_t lo, int32_t hi);
void        lm_sampler_allow_range(lm_sampler *s, int32_t lo, int32_t hi);
void        lm_sampler_forbid(lm_sampler *s, int32_t token);

/* Add `bias` (finite) to token's logit before every draw until set back to 0 (llama.cpp's
 * logit bias). Returns 0, or -1 for a token out of range, a non-finite bias or more than
 * LM_SAMPLER_MAX_BIAS biased tokens. */
enum { LM_SAMPLER_MAX_BIAS = 64 };
int         lm_sampler_set_bias(lm_sampler *s, int32_t token, float bias);

/* Pick a token from logits[n_vocab] (not modified). Returns -1 if the mask allows no id. */
int32_t     lm_sampler_sample(lm_sampler *s, const float *logits);

/* Apply the repetition/presence/frequency penalties of the current window to
 * logits[n_vocab] in place (what lm_sampler_sample does first; exposed for tests and for
 * callers that post-process logits themselves). */
void        lm_sampler_penalize(const lm_sampler *s, float *logits);

/* Classifier-free guidance: out[i] = uncond[i] + scale·(cond[i] − uncond[i]) for i in
 * [lo, hi) (other entries untouched). */
void        lm_logits_cfg(float *out, const float *cond, const float *uncond, float scale,
                          int32_t lo, int32_t hi);

/* splitmix64 step on a single 64-bit state: small, for seeding and light use. */
uint64_t    lm_rng_next(uint64_t *state);
float       lm_rng_uniform(uint64_t *state);  /* [0, 1), 24 bits */

/* xoshiro256** with its 256-bit state expanded from a seed by splitmix64: the sampler's
 * generator; same seed → same sequence on every platform. */
typedef struct lm_rng { uint64_t s[4]; } lm_rng;
void        lm_rng_seed(lm_rng *r, uint64_t seed);
uint64_t    lm_rng_u64(lm_rng *r);
double      lm_rng_f64(lm_rng *r);            /* [0, 1), 53 bits */

#endif
