/*
 * Token sampling: greedy, temperature, top-k, top-p, min-p, repetition and presence
 * penalties, a seeded RNG, and a logit mask so callers can restrict sampling to a range
 * (media code blocks). Plan-then-allocate: all buffers are sized at creation for n_vocab.
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
    int32_t  penalty_last_n;   /* window of recent tokens the penalties see      */
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

/* Pick a token from logits[n_vocab] (not modified). */
int32_t     lm_sampler_sample(lm_sampler *s, const float *logits);

/* xoshiro/splitmix-based RNG, exposed for other seeded code (CFG sampling, data order). */
uint64_t    lm_rng_next(uint64_t *state);
float       lm_rng_uniform(uint64_t *state);  /* [0, 1) */

#endif
