/* Beam search (see beam_search.h). Each step scores every open beam's best n_beams tokens,
 * keeps the n_beams best (beam, token) pairs, copies their parents' caches into the next
 * slots and runs them as one stacked decode step (lm_decoder_forward_multi), so each
 * weight matrix is read once per step for all beams.
 *
 * CTC prefix scores (with p->ctc) follow Watanabe et al. 2017, "Hybrid CTC/Attention
 * Architecture for End-to-End Speech Recognition", algorithm 2: per answer g, r_n[t] / r_b[t]
 * are log p(the first t+1 frames read as g, ending in a non-blank / blank frame). */
#include "lib/beam_search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    double  score;   /* total log-probability with the token (with ctc: the joint score) */
    int     parent;  /* beam it extends                                                    */
    int32_t token;
    double  att;     /* with ctc: the decoder's log-probability alone                       */
    int     ci;      /* with ctc: its prefix state in the step's buffer (-1: a stop token)  */
} cand;

/* One set of beam slots: caches, logits [n][V], answers so far [n][n_max], scores [n]. */
typedef struct slots {
    lm_decoder_state *st[LM_DECODE_MAX_SEQ];
    float            *logits;
    int32_t          *toks;
    double            score[LM_DECODE_MAX_SEQ];
    double            att[LM_DECODE_MAX_SEQ];      /* with ctc: decoder log-probability     */
    int32_t           last[LM_DECODE_MAX_SEQ];     /* with ctc: last token (-1: none yet)   */
    double           *ctc_r;                       /* with ctc: [n][2][T] r_n then r_b      */
} slots;

static int by_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->parent != y->parent) return x->parent < y->parent ? -1 : 1;
    return (x->token > y->token) - (x->token < y->token);
}

static int in_list(int32_t t, const int32_t *list, int n)
{
    for (int i = 0; i < n; i++) if (list[i] >= 0 && list[i] == t) return 1;
    return 0;
}

/* log Σ exp(l), in double. */
static double log_sum_exp(const float *l, int64_t n)
{
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) if (l[i] > mx) mx = l[i];
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += exp((double)l[i] - (double)mx);
    return (double)mx + log(s);
}

/* log(e^a + e^b) */
static double log_add(double a, double b)
{
    const double m = a > b ? a : b;
    return m == -INFINITY ? m : m + log1p(exp(-fabs(a - b)));
}

/* The k best tokens of l the search may choose (not in skip; with ctc, text or stop tokens
 * only), best first (ties: lower id first); returns how many. */
static int top_k(const float *l, int64_t n, int k, const lm_beam_params *p, int32_t *out)
{
    int got = 0;
    for (int64_t i = 0; i < n; i++) {
        if (in_list((int32_t)i, p->skip, 3) || isnan(l[i])) continue;
        if (p->ctc && i >= p->ctc_C - 1 && !in_list((int32_t)i, p->stop, 2)) continue;
        if (got == k && !(l[i] > l[out[k - 1]])) continue;
        int j = got < k ? got++ : k - 1;
        while (j > 0 && l[i] > l[out[j - 1]]) { out[j] = out[j - 1]; j--; }
        out[j] = (int32_t)i;
    }
    return got;
}

/* The CTC state of answer g + c from g's (gr, last): writes r [2][T], returns log p_CTC of g + c
 * as a prefix of the transcript. */
static double ctc_extend(const lm_beam_params *p, const double *gr, int32_t last, int32_t c, double *r)
{
    const int64_t T = p->ctc_T, C = p->ctc_C;
    const double *gn = gr, *gb = gr + T;
    double *rn = r, *rb = r + T;
    rn[0] = last < 0 ? (double)p->ctc[c] : -INFINITY;
    rb[0] = -INFINITY;
    double psi = rn[0];
    for (int64_t t = 1; t < T; t++) {
        const double phi = c == last ? gb[t - 1] : log_add(gb[t - 1], gn[t - 1]);
        const double y = (double)p->ctc[t * C + c];
        rn[t] = log_add(rn[t - 1], phi) + y;
        rb[t] = log_add(rb[t - 1], rn[t - 1]) + (double)p->ctc[t * C + C - 1];
        psi = log_add(psi, phi + y);
    }
    return psi;
}

static void slots_free(slots *s, int n)
{
    for (int i = 0; i < n; i++) lm_decoder_state_free(&s->st[i]);
    free(s->logits);
    free(s->toks);
    free(s->ctc_r);
    s->logits = NULL;
    s->toks = NULL;
    s->ctc_r = NULL;
}

static int slots_alloc(const lm_decoder *d, slots *s, int n, int32_t n_ctx, int64_t n_max, const lm_beam_params *p,
                       lm_error *err)
{
    const int64_t V = d->hp.n_vocab;
    s->logits = malloc((size_t)n * (size_t)V * sizeof *s->logits);
    s->toks = malloc((size_t)n * (size_t)n_max * sizeof *s->toks);
    s->ctc_r = p->ctc ? malloc((size_t)n * 2 * (size_t)p->ctc_T * sizeof *s->ctc_r) : NULL;
    if (!s->logits || !s->toks || (p->ctc && !s->ctc_r)) return lm_fail(err, LOOM_ERR_NO_MEMORY, "beam search: out of memory");
    for (int i = 0; i < n; i++) {
        /* n_batch = beams: the state that comes first in a stacked step holds every row */
        int rc = lm_decoder_state_create(d, n_ctx, p->n_beams, &s->st[i], err);
        if (rc < 0) return rc;
        lm_decoder_state_set_abort(s->st[i], p->abort_fn, p->abort_user);
    }
    return 0;
}

/* Slot j of `to` becomes a copy of a context: its cache, logits and first n_toks answer tokens. */
static int slot_copy(const lm_decoder *d, slots *to, int j, const lm_decoder_state *st, const float *logits,
                     const int32_t *toks, int64_t n_toks, int64_t n_max, lm_error *err)
{
    const int64_t V = d->hp.n_vocab;
    int rc = lm_decoder_state_copy(d, to->st[j], st, err);
    if (rc < 0) return rc;
    memcpy(to->logits + j * V, logits, (size_t)V * sizeof(float));
    if (n_toks) memcpy(to->toks + j * n_max, toks, (size_t)n_toks * sizeof(int32_t));
    return 0;
}

int64_t lm_beam_search(const lm_decoder *d, lm_decoder_state *st, float *logits, const lm_beam_params *p,
                       int32_t *tokens, int32_t *stop_tok, lm_pool *pool, lm_error *err)
{
    *stop_tok = -1;
    const int B = p->n_beams;
    if (B < 2 || B > LM_DECODE_MAX_SEQ)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "beam search: %d beams (2..%d)", B, LM_DECODE_MAX_SEQ);
    const int64_t n_max = p->n_max, V = d->hp.n_vocab, T = p->ctc_T;
    if (p->ctc && (T < 1 || p->ctc_C < 2 || p->ctc_C - 1 > V || !(p->ctc_w >= 0.0 && p->ctc_w <= 1.0)))
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "beam search: CTC log-probabilities of %lld frames x %d classes, "
                       "weight %g (want >= 1 frame, 2..%lld classes, weight 0..1)", (long long)T, p->ctc_C, p->ctc_w,
                       (long long)V + 1);
    if (n_max <= 0) return 0;
    const int K = p->ctc ? 2 * B : B;   /* tokens tried per open answer */
    const double w = p->ctc ? p->ctc_w : 0.0;
    const int64_t want = (int64_t)lm_decoder_state_n_past(st) + n_max;
    const int32_t n_ctx = want < lm_decoder_state_n_ctx(st) ? (int32_t)want : lm_decoder_state_n_ctx(st);
    slots cur = {0}, nxt = {0}, fin = {0};   /* open beams, the next step's, the best ended answer */
    cand *cands = malloc((size_t)B * (size_t)K * sizeof *cands);
    double *cand_r = p->ctc ? malloc((size_t)B * (size_t)K * 2 * (size_t)T * sizeof *cand_r) : NULL;
    int rc = cands && (!p->ctc || cand_r) ? 0 : lm_fail(err, LOOM_ERR_NO_MEMORY, "beam search: out of memory");
    if (rc == 0) rc = slots_alloc(d, &cur, B, n_ctx, n_max, p, err);
    if (rc == 0) rc = slots_alloc(d, &nxt, B, n_ctx, n_max, p, err);
    if (rc == 0) rc = slots_alloc(d, &fin, 1, n_ctx, n_max, p, err);
    if (rc == 0) rc = slot_copy(d, &cur, 0, st, logits, NULL, 0, n_max, err);
    int n_open = 1, have_fin = 0;
    int32_t fin_tok = -1;
    int64_t n_fin = 0, n_out = 0;
    const slots *res = NULL;   /* where the answer's context is: fin, or cur at n_max */
    int res_i = 0;
    cur.score[0] = 0.0;
    cur.att[0] = 0.0;
    cur.last[0] = -1;
    if (rc == 0 && p->ctc) {   /* the empty answer: every frame so far blank */
        double acc = 0.0;
        for (int64_t t = 0; t < T; t++) {
            cur.ctc_r[t] = -INFINITY;
            cur.ctc_r[T + t] = acc += (double)p->ctc[t * p->ctc_C + p->ctc_C - 1];
        }
    }
    for (int64_t t = 0; rc == 0 && t < n_max; t++) {   /* t: tokens in every open answer */
        if (p->abort_fn && p->abort_fn(p->abort_user)) { rc = lm_fail(err, LOOM_ERR_ABORTED, "generation aborted"); break; }
        int nc = 0;
        for (int k = 0; k < n_open; k++) {
            const float *l = cur.logits + k * V;
            const double lse = log_sum_exp(l, V);
            int32_t best[2 * LM_DECODE_MAX_SEQ];
            const int n = top_k(l, V, K, p, best);
            for (int i = 0; i < n; i++, nc++) {
                const double att = (p->ctc ? cur.att[k] : cur.score[k]) + ((double)l[best[i]] - lse);
                cands[nc] = (cand){att, k, best[i], att, -1};
                if (!p->ctc) continue;
                const double *gr = cur.ctc_r + (size_t)k * 2 * T;
                double ctc;
                if (in_list(best[i], p->stop, 2)) {
                    ctc = log_add(gr[T - 1], gr[2 * T - 1]);
                } else {
                    cands[nc].ci = nc;
                    ctc = ctc_extend(p, gr, cur.last[k], best[i], cand_r + (size_t)nc * 2 * T);
                }
                cands[nc].score = (1.0 - w) * att + w * ctc;
            }
        }
        qsort(cands, (size_t)nc, sizeof *cands, by_score);
        int n_next = 0;
        for (int c = 0; c < nc && rc == 0; c++) {
            const cand *x = &cands[c];
            if (in_list(x->token, p->stop, 2)) {
                if (have_fin && !(x->score > fin.score[0])) continue;
                rc = slot_copy(d, &fin, 0, cur.st[x->parent], cur.logits + x->parent * V, cur.toks + x->parent * n_max,
                               t, n_max, err);
                fin.score[0] = x->score;
                n_fin = t;
                fin_tok = x->token;
                have_fin = 1;
            } else if (n_next < B) {
                cands[n_next++] = *x;   /* c >= n_next: nothing unread is overwritten */
            }
        }
        if (rc < 0) break;
        if (n_next == 0 || (have_fin && fin.score[0] >= cands[0].score)) break;
        if (t + 1 == n_max) {   /* cut off: the best open answer, its last token not decoded */
            if (!have_fin) {
                res = &cur;
                res_i = cands[0].parent;
                memcpy(tokens, cur.toks + res_i * n_max, (size_t)t * sizeof *tokens);
                tokens[t] = cands[0].token;
                n_out = t + 1;
            }
            break;
        }
        int32_t step_tok[LM_DECODE_MAX_SEQ];
        float *step_logits[LM_DECODE_MAX_SEQ];
        for (int j = 0; j < n_next && rc == 0; j++) {
            const int k = cands[j].parent;
            rc = slot_copy(d, &nxt, j, cur.st[k], cur.logits + k * V, cur.toks + k * n_max, t, n_max, err);
            nxt.toks[j * n_max + t] = cands[j].token;
            nxt.score[j] = cands[j].score;
            nxt.att[j] = cands[j].att;
            nxt.last[j] = cands[j].token;
            if (p->ctc)
                memcpy(nxt.ctc_r + (size_t)j * 2 * T, cand_r + (size_t)cands[j].ci * 2 * T, 2 * (size_t)T * sizeof *cand_r);
            step_tok[j] = cands[j].token;
            step_logits[j] = nxt.logits + j * V;
        }
        if (rc == 0) rc = lm_decoder_forward_multi(d, nxt.st, step_tok, n_next, step_logits, pool, err);
        const slots tmp = cur;
        cur = nxt;
        nxt = tmp;
        n_open = n_next;
    }
    if (rc == 0 && !have_fin && !res)
        rc = lm_fail(err, LOOM_ERR_INVALID_ARG, "beam search: no token to choose (every logit is NaN or excluded)");
    if (rc == 0 && have_fin) {
        res = &fin;
        res_i = 0;
        memcpy(tokens, fin.toks, (size_t)n_fin * sizeof *tokens);
        n_out = n_fin;
        *stop_tok = fin_tok;
    }
    if (rc == 0 && res) {
        rc = lm_decoder_state_copy(d, st, res->st[res_i], err);
        if (rc == 0) memcpy(logits, res->logits + res_i * V, (size_t)V * sizeof(float));
    }
    slots_free(&cur, B);
    slots_free(&nxt, B);
    slots_free(&fin, 1);
    free(cands);
    free(cand_r);
    return rc < 0 ? rc : n_out;
}
