/* Beam search over text tokens: what loom_session_generate runs when n_beams > 1. */
#ifndef LM_BEAM_SEARCH_H
#define LM_BEAM_SEARCH_H

#include <stdint.h>

#include "lib/core/decoder.h"
#include "lib/core/threadpool.h"

typedef struct lm_beam_params {
    int         n_beams;    /* 2..LM_DECODE_MAX_SEQ hypotheses kept per step              */
    int64_t     n_max;      /* most tokens of an answer (the stop token included)          */
    int32_t     stop[2];    /* tokens that end an answer (-1: unused)                      */
    int32_t     skip[3];    /* tokens never chosen, e.g. media open tokens (-1: unused)    */
    lm_abort_fn abort_fn;   /* polled before each step and between layers; may be NULL     */
    void       *abort_user;
    const float *ctc;       /* NULL: off; else [ctc_T][ctc_C] log-probs, blank = ctc_C − 1  */
    int64_t     ctc_T;
    int32_t     ctc_C;
    double      ctc_w;      /* weight λ of the CTC score, 0..1                              */
} lm_beam_params;

/*
 * From the context in st and its next-token logits [n_vocab], keep the n_beams answers of
 * highest total log-probability Σ log softmax(logits)[token] at each step; an answer ends
 * at a stop token or after n_max tokens. Returns the best ended answer, or the best of
 * those cut off at n_max when none ended. The search stops as soon as the best ended
 * answer scores at least the best open one (scores only fall, so no later one can beat it).
 * Ties are broken by beam, then by token id. Sampler settings (temperature, penalties,
 * biases) play no part.
 *
 * With ctc, scores are (1 − λ)·that log-probability + λ·the CTC prefix log-probability of the
 * answer's tokens (of exactly its tokens once it has ended), each open answer is extended by
 * its 2·n_beams best tokens among text tokens (ids < ctc_C − 1) and stop tokens, and no
 * other token is chosen.
 *
 * On success st and logits hold what greedy generation of the same tokens leaves: every
 * answer token cached except one that hit n_max, the logits after the last cached one;
 * tokens[0..n) (caller's, n_max long) is the answer without its stop token, *stop_tok that
 * token (-1: cut off at n_max); returns n. On error (negative status, err set) st and logits are
 * unchanged. Allocates 2·n_beams + 1 states of n_past + n_max positions per call.
 */
int64_t lm_beam_search(const lm_decoder *d, lm_decoder_state *st, float *logits, const lm_beam_params *p,
                       int32_t *tokens, int32_t *stop_tok, lm_pool *pool, lm_error *err);

#endif
