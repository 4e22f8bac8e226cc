/* loom_session: KV cache + token history + sampler over a shared loom_model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/beam_search.h"
#include "lib/core/decoder.h"
#include "lib/core/error.h"
#include "lib/core/sampler.h"
#include "lib/core/threadpool.h"
#include "lib/media_block.h"
#include "lib/model.h"
#include "lib/prompt.h"

struct loom_session {
    const loom_model *m;
    lm_decoder_state *st;        /* latent cache + scratch, owned                         */
    lm_pool          *pool;      /* owned                                                 */
    lm_sampler       *smp;       /* owned                                                 */
    uint64_t          seed;
    int32_t          *hist;      /* [n_ctx] token at each cached position (-1: embedding) */
    float            *logits;    /* [n_vocab] after the last computed position            */
    int               has_logits;
    lm_error          err;
    /* abort hooks (loom_session_set_abort), and those of the generate call running now */
    loom_abort_fn     abort_fn;
    const volatile int *abort_flag;
    void             *abort_user;
    const loom_generate_params *gen; /* NULL outside loom_session_generate */
};

loom_session_params loom_session_default_params(void)
{
    lm_sampler_params sp = lm_sampler_default_params();
    return (loom_session_params){
        .n_ctx = 0, .n_batch = 512, .n_threads = 0,
        .sampler = {.temperature = sp.temperature, .top_k = sp.top_k, .top_p = sp.top_p,
                    .min_p = sp.min_p, .repeat_penalty = sp.repeat_penalty,
                    .presence_penalty = sp.presence_penalty, .frequency_penalty = sp.frequency_penalty,
                    .penalty_last_n = sp.penalty_last_n, .seed = sp.seed},
    };
}

loom_generate_params loom_generate_default_params(void)
{
    loom_generate_params p = {.n_predict = 128, .stop_at_eos = 1, .media_blocks = 1, .ctc_weight = 0.3f};
    for (int k = 0; k < LOOM_MEDIA_KIND_COUNT; k++) p.media[k] = loom_media_default_params(k);
    return p;
}

static int hooks_fired(loom_abort_fn fn, const volatile int *flag, void *user)
{
    return (flag && *flag) || (fn && fn(user));
}

/* The decoder's abort callback: the session's hooks, then the running generate call's. */
static int session_aborted(void *arg)
{
    const loom_session *s = arg;
    return hooks_fired(s->abort_fn, s->abort_flag, s->abort_user) ||
           (s->gen && hooks_fired(s->gen->should_abort, s->gen->abort_flag, s->gen->user_data));
}

int loom_session_create(const loom_model *m, loom_session_params p, loom_session **out, char *err, size_t err_size)
{
    lm_error e = {0};
    if (!out) return LOOM_ERR_INVALID_ARG;
    *out = NULL;
    if (!m) {
        lm_fail(&e, LOOM_ERR_INVALID_ARG, "session: no model");
        if (err && err_size) snprintf(err, err_size, "%s", e.msg);
        return e.status;
    }
    loom_session *s = calloc(1, sizeof *s);
    int32_t n_ctx = p.n_ctx > 0 ? p.n_ctx : (m->dec->hp.n_ctx_train < 4096 ? m->dec->hp.n_ctx_train : 4096);
    int rc = s ? 0 : lm_fail(&e, LOOM_ERR_NO_MEMORY, "session: out of memory");
    if (rc == 0 && p.matmul != LOOM_MATMUL_F32 && p.matmul != LOOM_MATMUL_BF16)
        rc = lm_fail(&e, LOOM_ERR_INVALID_ARG, "session: matmul precision %d is neither LOOM_MATMUL_F32 (0) "
                     "nor LOOM_MATMUL_BF16 (1)", p.matmul);
    if (rc == 0) {
        s->m = m;
        s->seed = p.sampler.seed;
        rc = lm_decoder_state_create(m->dec, n_ctx, p.n_batch > 0 ? p.n_batch : 512, &s->st, &e);
    }
    if (rc == 0) {
        lm_sampler_params sp = {
            .temperature = p.sampler.temperature, .top_k = p.sampler.top_k, .top_p = p.sampler.top_p,
            .min_p = p.sampler.min_p, .repeat_penalty = p.sampler.repeat_penalty,
            .presence_penalty = p.sampler.presence_penalty, .frequency_penalty = p.sampler.frequency_penalty,
            .penalty_last_n = p.sampler.penalty_last_n, .seed = p.sampler.seed};
        s->pool = lm_pool_create(p.n_threads);
        s->smp = lm_sampler_create(sp, m->dec->hp.n_vocab);
        s->hist = malloc((size_t)n_ctx * sizeof *s->hist);
        s->logits = malloc((size_t)m->dec->hp.n_vocab * sizeof *s->logits);
        lm_pool_set_matmul_bf16(s->pool, p.matmul == LOOM_MATMUL_BF16);
        if (!s->pool || !s->smp || !s->hist || !s->logits)
            rc = lm_fail(&e, LOOM_ERR_NO_MEMORY, "session: out of memory (n_ctx %d)", n_ctx);
        else
            lm_decoder_state_set_abort(s->st, session_aborted, s);
    }
    if (rc < 0) {
        if (err && err_size) snprintf(err, err_size, "%s", e.msg);
        loom_session_free(&s);
        return rc;
    }
    *out = s;
    return 0;
}

void loom_session_free(loom_session **s)
{
    if (!s || !*s) return;
    lm_decoder_state_free(&(*s)->st);
    lm_pool_free(&(*s)->pool);
    lm_sampler_free(&(*s)->smp);
    free((*s)->hist);
    free((*s)->logits);
    free(*s);
    *s = NULL;
}

lm_decoder_state *lm_session_decoder_state(loom_session *s) { return s->st; }

void loom_session_set_abort(loom_session *s, loom_abort_fn fn, const volatile int *flag, void *user_data)
{
    s->abort_fn = fn;
    s->abort_flag = flag;
    s->abort_user = user_data;
}

const char *loom_session_error(const loom_session *s) { return s ? s->err.msg : "no session"; }
int32_t loom_session_n_ctx(const loom_session *s)  { return lm_decoder_state_n_ctx(s->st); }
int32_t loom_session_n_past(const loom_session *s) { return lm_decoder_state_n_past(s->st); }
const float *loom_session_logits(const loom_session *s) { return s->has_logits ? s->logits : NULL; }
const int32_t *lm_session_history(const loom_session *s) { return s->hist; }
void lm_session_limit_logits(loom_session *s, int32_t lo, int32_t hi, int32_t extra)
{
    lm_decoder_state_limit_logits(s->st, lo, hi, extra);
}

/* Run tokens or embeddings after the cache; logits of the last position land in s->logits. */
static int run(loom_session *s, const int32_t *tokens, const float *embd, int64_t n, float *all_logits)
{
    lm_error_clear(&s->err);
    if (n < 0 || (n > 0 && !tokens && !embd))
        return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "session: %lld inputs without data", (long long)n);
    if (n == 0) return 0;
    const int32_t past = lm_decoder_state_n_past(s->st);
    const int64_t V = s->m->dec->hp.n_vocab;
    int rc = lm_decoder_forward(s->m->dec, s->st, tokens, embd, n, all_logits ? all_logits : s->logits,
                                all_logits != NULL, s->pool, &s->err);
    if (rc == LOOM_ERR_ABORTED) {
        /* the cache keeps the chunks computed in full; no logits belong to its end */
        const int32_t now = lm_decoder_state_n_past(s->st);
        for (int32_t i = past; i < now; i++) s->hist[i] = tokens ? tokens[i - past] : -1;
        s->has_logits = 0;
    }
    if (rc < 0) return rc;
    if (all_logits) memcpy(s->logits, all_logits + (n - 1) * V, (size_t)V * sizeof(float));
    s->has_logits = 1;
    for (int64_t i = 0; i < n; i++) s->hist[past + i] = tokens ? tokens[i] : -1;
    return 0;
}

int loom_session_append(loom_session *s, const int32_t *tokens, int64_t n, float *all_logits)
{
    return run(s, tokens, NULL, n, all_logits);
}

int loom_session_append_embd(loom_session *s, const float *embd, int64_t n, float *all_logits)
{
    return run(s, NULL, embd, n, all_logits);
}

int loom_session_decode(loom_session *s, int32_t token) { return run(s, &token, NULL, 1, NULL); }

/* Report a failure of a pair step on both sessions. */
static int pair_fail(loom_session *a, loom_session *b, int rc)
{
    if (b != a) b->err = a->err;
    return rc;
}

int loom_session_decode_pair(loom_session *a, int32_t ta, loom_session *b, int32_t tb)
{
    if (!a || !b) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&a->err);
    lm_error_clear(&b->err);
    if (a == b || a->m != b->m)
        return pair_fail(a, b, lm_fail(&a->err, LOOM_ERR_INVALID_ARG, "decode pair: %s", a == b ?
                                       "the same session twice" : "the sessions belong to different models"));
    /* the stacked rows live in the scratch of a session created with n_batch >= 2 */
    const int a_holds = lm_decoder_state_n_batch(a->st) >= 2;
    if (!a_holds && lm_decoder_state_n_batch(b->st) < 2) {
        int rc = loom_session_decode(a, ta);
        if (rc < 0) return pair_fail(a, b, rc);
        if ((rc = loom_session_decode(b, tb)) < 0) a->err = b->err;
        return rc;
    }
    loom_session *first = a_holds ? a : b, *second = a_holds ? b : a;
    lm_decoder_state *st[2] = {first->st, second->st};
    const int32_t tok[2] = {first == a ? ta : tb, first == a ? tb : ta};
    float *const logits[2] = {first->logits, second->logits};
    const int32_t pa = lm_decoder_state_n_past(a->st), pb = lm_decoder_state_n_past(b->st);
    int rc = lm_decoder_forward_multi(a->m->dec, st, tok, 2, logits, a->pool, &a->err);
    if (rc == LOOM_ERR_ABORTED) a->has_logits = b->has_logits = 0;
    if (rc < 0) return pair_fail(a, b, rc);
    a->hist[pa] = ta;
    b->hist[pb] = tb;
    a->has_logits = b->has_logits = 1;
    return 0;
}

void loom_session_truncate(loom_session *s, int32_t n_past)
{
    lm_decoder_state_truncate(s->st, n_past);
    if (lm_decoder_state_n_past(s->st) == 0) {
        s->has_logits = 0;
        lm_sampler_reset(s->smp, s->seed);
    }
}

int loom_session_prompt(loom_session *s, const int32_t *prompt, int64_t n, float *all_logits)
{
    lm_error_clear(&s->err);
    if (n <= 0 || !prompt) return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "session: empty prompt");
    if (n > loom_session_n_ctx(s))
        return lm_fail(&s->err, LOOM_ERR_CONTEXT_FULL, "context full: prompt of %lld tokens exceeds n_ctx %d",
                       (long long)n, loom_session_n_ctx(s));
    int64_t keep = 0;
    if (!all_logits) {
        const int64_t past = loom_session_n_past(s);
        while (keep < past && keep < n && s->hist[keep] == prompt[keep]) keep++;
        if (keep == n) keep = n - 1; /* recompute the last token for its logits */
    }
    lm_decoder_state_truncate(s->st, (int32_t)keep);
    /* the penalties see this prompt; the RNG restarts so a prompt's output is reproducible */
    lm_sampler_reset(s->smp, s->seed);
    for (int64_t i = 0; i < n; i++) lm_sampler_accept(s->smp, prompt[i]);
    int rc = run(s, prompt + keep, NULL, n - keep, all_logits);
    /* an abort keeps the prefix computed so far (a retry reuses it); other errors change nothing */
    if (rc < 0 && rc != LOOM_ERR_ABORTED) lm_decoder_state_truncate(s->st, (int32_t)keep);
    return rc;
}

/* log Σ exp(row) over V values, in double. */
static double log_sum_exp(const float *row, int64_t V)
{
    float mx = row[0];
    for (int64_t i = 1; i < V; i++) mx = row[i] > mx ? row[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < V; i++) sum += exp((double)row[i] - mx);
    return mx + log(sum);
}

/* log softmax(row)[tok], in double. */
static double log_prob(const float *row, int64_t V, int32_t tok) { return (double)row[tok] - log_sum_exp(row, V); }

int loom_session_score(loom_session *s, const int32_t *tokens, int64_t n, double *logprob)
{
    if (!s || !logprob) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&s->err);
    *logprob = 0;
    if (n < 0 || (n > 0 && !tokens)) return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "score: %lld tokens without data", (long long)n);
    if (!s->has_logits) return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "score: no context to score after (run a prompt first)");
    const int64_t V = s->m->dec->hp.n_vocab;
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "score: token %d out of range [0, %lld)", tokens[i], (long long)V);
    if ((int64_t)loom_session_n_past(s) + n > loom_session_n_ctx(s))
        return lm_fail(&s->err, LOOM_ERR_CONTEXT_FULL, "context full: %d cached + %lld scored tokens exceed n_ctx %d",
                       loom_session_n_past(s), (long long)n, loom_session_n_ctx(s));
    /* each chunk's logits predict the next chunk's tokens; the first token is read off the
     * logits the context left */
    enum { CHUNK = 32 };
    float *rows = malloc((size_t)CHUNK * (size_t)V * sizeof *rows);
    if (!rows) return lm_fail(&s->err, LOOM_ERR_NO_MEMORY, "score: out of memory");
    double sum = 0;
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i += CHUNK) {
        const int64_t k = n - i < CHUNK ? n - i : CHUNK;
        sum += log_prob(s->logits, V, tokens[i]);
        rc = run(s, tokens + i, NULL, k, rows);
        for (int64_t j = 0; rc == 0 && j + 1 < k; j++) sum += log_prob(rows + j * V, V, tokens[i + j + 1]);
    }
    free(rows);
    if (rc == 0) *logprob = sum;
    return rc;
}

loom_perplexity_params loom_perplexity_default_params(void)
{
    return (loom_perplexity_params){.n_ctx = 512, .n_chunks = 0, .add_bos = 1};
}

/* The sums of llama.cpp's perplexity tool: nll and nll² over the scored tokens, then
 * ppl = exp(mean) and its error from the variance of the mean. */
static void perplexity_finish(loom_perplexity_result *r, double nll, double nll2)
{
    if (r->n_scored == 0) return;
    const double mean = nll / (double)r->n_scored, var = nll2 / (double)r->n_scored - mean * mean;
    r->nll = mean;
    r->ppl = exp(mean);
    r->ppl_err = r->n_scored > 1 && var > 0 ? r->ppl * sqrt(var / (double)(r->n_scored - 1)) : 0;
}

/* KL(b ‖ a) of the softmaxes of two logit rows, and whether both rank the same token first. */
static double kl_rows(const float *b, const float *a, int64_t V, int *same_top)
{
    const double lb = log_sum_exp(b, V), la = log_sum_exp(a, V);
    double kl = 0;
    int64_t tb = 0, ta = 0;
    for (int64_t i = 0; i < V; i++) {
        const double pb = (double)b[i] - lb;
        kl += exp(pb) * (pb - ((double)a[i] - la));
        tb = b[i] > b[tb] ? i : tb;
        ta = a[i] > a[ta] ? i : ta;
    }
    *same_top = ta == tb;
    return kl > 0 ? kl : 0;   /* rounding can leave -1e-17 for equal rows */
}

int loom_perplexity(loom_session *s, const int32_t *tokens, int64_t n, loom_perplexity_params p,
                    loom_perplexity_result *out)
{
    if (!s || !out) return LOOM_ERR_INVALID_ARG;
    *out = (loom_perplexity_result){0};
    lm_error_clear(&s->err);
    if (p.n_ctx < 4 || p.n_ctx > loom_session_n_ctx(s))
        return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "perplexity: chunk of %d tokens: must be 4 .. the session's n_ctx %d",
                       p.n_ctx, loom_session_n_ctx(s));
    if (n < p.n_ctx || !tokens)
        return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "perplexity: %lld tokens, fewer than one chunk of %d",
                       (long long)(tokens ? n : 0), p.n_ctx);
    if (p.n_chunks < 0) return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "perplexity: n_chunks %d < 0", p.n_chunks);
    const int64_t V = s->m->dec->hp.n_vocab, C = p.n_ctx, first = C / 2;
    loom_session *b = p.base;
    if (b && (b == s || b->m->dec->hp.n_vocab != V || loom_session_n_ctx(b) < C))
        return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "perplexity: the base session %s", b == s ? "is this session" :
                       b->m->dec->hp.n_vocab != V ? "has another vocabulary size" : "holds fewer positions than a chunk");
    int64_t n_chunks = n / C;
    if (p.n_chunks > 0 && p.n_chunks < n_chunks) n_chunks = p.n_chunks;
    for (int64_t i = 0; i < n_chunks * C; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "perplexity: token %d at %lld out of range [0, %lld)",
                           tokens[i], (long long)i, (long long)V);
    float *logits = malloc((size_t)C * (size_t)V * sizeof *logits);
    float *base = b ? malloc((size_t)C * (size_t)V * sizeof *base) : NULL;
    int32_t *chunk = malloc((size_t)C * sizeof *chunk);
    if (!logits || !chunk || (b && !base)) {
        free(logits);
        free(base);
        free(chunk);
        return lm_fail(&s->err, LOOM_ERR_NO_MEMORY, "perplexity: out of memory for %lld × %lld logits",
                       (long long)C, (long long)V);
    }
    const int32_t bos = p.add_bos ? loom_token_bos(s->m) : -1;
    double nll = 0, nll2 = 0, nll_base = 0, kl_sum = 0;
    int64_t same = 0;
    int rc = 0;
    for (int64_t c = 0; c < n_chunks && rc == 0; c++) {
        memcpy(chunk, tokens + c * C, (size_t)C * sizeof *chunk);
        if (bos >= 0) chunk[0] = bos;
        loom_session_truncate(s, 0);
        if ((rc = run(s, chunk, NULL, C, logits)) < 0) break;
        if (b) {
            loom_session_truncate(b, 0);
            if ((rc = run(b, chunk, NULL, C, base)) < 0) {
                lm_fail(&s->err, rc, "perplexity: base model: %s", b->err.msg);
                break;
            }
        }
        for (int64_t j = first; j < C - 1; j++) {
            const double lp = log_prob(logits + j * V, V, chunk[j + 1]);
            nll -= lp;
            nll2 += lp * lp;
            if (b) {
                int top;
                const double kl = kl_rows(base + j * V, logits + j * V, V, &top);
                nll_base -= log_prob(base + j * V, V, chunk[j + 1]);
                kl_sum += kl;
                out->kl_max = kl > out->kl_max ? kl : out->kl_max;
                same += top;
            }
        }
        out->n_chunks = (int32_t)(c + 1);
        out->n_scored += C - 1 - first;
        perplexity_finish(out, nll, nll2);
        if (b) {
            out->base_ppl = exp(nll_base / (double)out->n_scored);
            out->kl_mean = kl_sum / (double)out->n_scored;
            out->same_top = (double)same / (double)out->n_scored;
        }
        if (p.on_chunk && p.on_chunk(out->n_chunks, (int32_t)n_chunks, out->ppl, p.user_data))
            rc = lm_fail(&s->err, LOOM_ERR_ABORTED, "perplexity: stopped by on_chunk after chunk %d of %lld",
                         out->n_chunks, (long long)n_chunks);
    }
    loom_session_truncate(s, 0);
    if (b) loom_session_truncate(b, 0);
    free(logits);
    free(base);
    free(chunk);
    return rc;
}

int32_t loom_session_sample(loom_session *s)
{
    if (!s->has_logits) return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "session: nothing to sample from yet");
    int32_t t = lm_sampler_sample(s->smp, s->logits);
    if (t < 0) return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "session: every token is masked out");
    lm_sampler_accept(s->smp, t);
    return t;
}

void loom_session_mask_range(loom_session *s, int32_t lo, int32_t hi) { lm_sampler_allow_only(s->smp, lo, hi); }
void loom_session_mask_clear(loom_session *s) { lm_sampler_mask_clear(s->smp); }

int loom_session_logit_bias(loom_session *s, int32_t token, float bias)
{
    if (!s) return LOOM_ERR_INVALID_ARG;
    if (token < 0 || token >= s->m->dec->hp.n_vocab || !isfinite(bias))
        return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "logit bias: token %d (vocabulary %d), bias %g", token,
                       s->m->dec->hp.n_vocab, bias);
    if (lm_sampler_set_bias(s->smp, token, bias) < 0)
        return lm_fail(&s->err, LOOM_ERR_LIMIT, "logit bias: more than %d biased tokens", LM_SAMPLER_MAX_BIAS);
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}


/* The media blocks of one loom_session_generate call. */
typedef struct gen_media {
    lm_media_writer w;           /* set up at each block (NULL before the first)         */
    int32_t        *codes;       /* [cap] the current block's codes, owned               */
    int64_t         cap;
    uint64_t        n_blocks;    /* blocks begun in this call                            */
    int             active;      /* inside a block                                       */
} gen_media;

static int media_fail(loom_session *s, gen_media *g, int rc)
{
    s->err = g->w.e;
    return rc;
}

/* tok was sampled as text, or (in_cache) ends the prompt, or opens the unfinished block that
 * ends the prompt: body[0..n_body) follow it there. If it opens a block the model can write,
 * check that the block fits, set up guidance and the code sampler, and return 1; 0 for a
 * plain token. */
static int media_open(loom_session *s, const loom_generate_params *p, gen_media *g, int32_t tok, int in_cache,
                      const int32_t *body, int64_t n_body)
{
    const int kind = p->media_blocks ? lm_block_kind_of(s->m, tok) : -1;
    if (kind < 0) return 0;
    loom_media_params mp = p->media[kind];
    mp.kind = kind;
    lm_block b;
    lm_error e = {0};
    int rc = lm_block_describe(s->m, &mp, &b, &e);
    if (rc == LOOM_ERR_UNSUPPORTED) return 0;   /* the model does not write this medium */
    if (rc < 0) { s->err = e; return rc; }
    loom_session *u = p->media_uncond;
    const int guided = u && mp.cfg_scale != 0.0f && mp.cfg_scale != 1.0f;
    if (!isfinite(mp.cfg_scale) || !isfinite(mp.temperature))
        return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "generate: media cfg_scale and temperature must be finite");
    if (guided && (u == s || u->m != s->m))
        return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "generate: media_uncond must be another session of the same model");
    lm_media_writer_free(&g->w);   /* each medium has its own settings */
    if ((rc = lm_media_writer_init(&g->w, s->m, s, guided ? u : NULL, mp)) < 0) return media_fail(s, g, rc);
    b.word_tok = g->w.word_tok;   /* mp.words, spelt by the writer (none unless a loom.audio.words model) */
    b.word_end = g->w.word_end;
    b.n_words = g->w.n_words;
    const int64_t need = lm_block_max_codes(&b);
    if (need > g->cap) {
        int32_t *c = realloc(g->codes, (size_t)need * sizeof *c);
        if (!c) return lm_fail(&s->err, LOOM_ERR_NO_MEMORY, "generate: out of memory (%lld media codes)", (long long)need);
        g->codes = c;
        g->cap = need;
    }
    lm_media_writer_begin(&g->w, &b, g->codes, mp.seed + g->n_blocks, in_cache);
    if ((rc = lm_media_writer_replay(&g->w, body, n_body)) < 0) return media_fail(s, g, rc);
    const int64_t left = lm_block_max_len(&b) - (in_cache ? 1 + n_body : 0);   /* tokens still to write */
    if ((rc = lm_media_writer_prepare(&g->w, s, NULL, 0, left)) < 0) return media_fail(s, g, rc);
    if (g->w.u) {   /* the unconditional turn, then the same block so far */
        int32_t unc[8];
        const int64_t n = loom_media_prompt(s->m, kind, NULL, 1, unc, 7);
        if (n < 0 || n > 7) return lm_fail(&s->err, n < 0 ? (int)n : LOOM_ERR_LIMIT, "generate: no unconditional turn for guidance");
        const int64_t nu = n + (in_cache ? 1 + n_body : 0);
        int32_t *useq = malloc((size_t)nu * sizeof *useq);
        if (!useq) return lm_fail(&s->err, LOOM_ERR_NO_MEMORY, "generate: out of memory");
        memcpy(useq, unc, (size_t)n * sizeof *useq);
        if (in_cache) {
            useq[n] = tok;
            if (n_body) memcpy(useq + n + 1, body, (size_t)n_body * sizeof *useq);
        }
        rc = lm_media_writer_prepare(&g->w, u, useq, nu, left);
        free(useq);
        if (rc < 0) return media_fail(s, g, rc);
    }
    g->n_blocks++;
    g->active = 1;
    if (in_cache && p->on_media) p->on_media(LOOM_MEDIA_BEGIN, kind, NULL, 0, p->user_data);
    return 1;
}

/* Append a block token (the open token first): the next logits; events at begin and end. */
static int media_put(loom_session *s, const loom_generate_params *p, gen_media *g, int32_t tok)
{
    const lm_block *b = &g->w.b;
    if (!b->opened && p->on_media) p->on_media(LOOM_MEDIA_BEGIN, b->kind, NULL, 0, p->user_data);
    int rc = lm_media_writer_put(&g->w, tok);
    if (rc < 0) return media_fail(s, g, rc);
    if (b->closed) {
        g->active = 0;
        if (p->on_media) p->on_media(LOOM_MEDIA_END, b->kind, g->codes, b->n_codes, p->user_data);
    }
    return 0;
}

/* Stream tok through on_token; nonzero when the callback asks to stop. */
static int stream_token(const loom_session *s, const loom_generate_params *p, int32_t tok)
{
    if (!p->on_token) return 0;
    char piece[256];
    int k = s->m->tok ? lm_token_to_piece(s->m->tok, tok, 0, piece, sizeof piece) : 0;
    if (k < 0) k = 0;
    return p->on_token(tok, piece, (size_t)(k < (int)sizeof piece ? k : (int)sizeof piece), p->user_data);
}

/* Beam search instead of sampling (p->n_beams > 1): the best answer found is cached,
 * remembered by the sampler's penalties and streamed at the end. */
static int generate_beams(loom_session *s, const loom_generate_params *p, loom_generate_stats *st)
{
    const loom_model *m = s->m;
    const int32_t past = loom_session_n_past(s);
    /* greedy generation would run out of context after this many tokens */
    const int64_t room = (int64_t)loom_session_n_ctx(s) - past + 1;
    const int32_t eos = loom_token_eos(m), eot = loom_token_eot(m);
    lm_beam_params bp = {.n_beams = p->n_beams, .n_max = p->n_predict < room ? p->n_predict : room,
                         .stop = {p->stop_at_eos ? eos : -1, p->stop_at_eos ? eot : -1},
                         .skip = {-1, -1, -1}, .abort_fn = session_aborted, .abort_user = s,
                         .ctc = p->ctc_logprobs, .ctc_T = p->ctc_frames, .ctc_C = p->ctc_classes, .ctc_w = p->ctc_weight};
    if (p->media_blocks) {   /* beams write text: they never open a block */
        bp.skip[0] = m->ctl[LM_CTL_IMAGE];
        bp.skip[1] = m->ctl[LM_CTL_AUDIO];
        bp.skip[2] = m->ctl[LM_CTL_VIDEO];
    }
    if (bp.n_max <= 0) return 0;
    int32_t *toks = malloc((size_t)bp.n_max * sizeof *toks);
    if (!toks) return lm_fail(&s->err, LOOM_ERR_NO_MEMORY, "generate: out of memory (%lld tokens)", (long long)bp.n_max);
    int32_t stop = -1;
    const int64_t n = lm_beam_search(m->dec, s->st, s->logits, &bp, toks, &stop, s->pool, &s->err);
    if (n < 0) {
        free(toks);
        return (int)n;
    }
    for (int32_t i = past; i < loom_session_n_past(s); i++) s->hist[i] = toks[i - past];
    for (int64_t i = 0; i < n; i++) lm_sampler_accept(s->smp, toks[i]);
    if (stop >= 0) lm_sampler_accept(s->smp, stop);
    s->has_logits = 1;
    st->n_generated = n + (stop >= 0);
    for (int64_t i = 0; i < n; i++)
        if (stream_token(s, p, toks[i])) break;
    free(toks);
    if (stop < 0 && n == room && room < p->n_predict)
        return lm_fail(&s->err, LOOM_ERR_CONTEXT_FULL, "context full: n_ctx %d", loom_session_n_ctx(s));
    return 0;
}

/* The answer's opening still to take (loom_generate_params.opening): tokens tok[next..n). */
typedef struct opening {
    const int32_t *tok;
    int32_t        n, next;
} opening;

/* The opening's next token: its first, then of the tokens after the one taken last the one of
 * highest score: la[t] - za, plus lb[map[t]] - zb with a second view (lb not NULL). */
static int32_t opening_take(opening *o, const float *la, double za, const float *lb, double zb, const int32_t *map)
{
    int32_t best = o->next;
    double top = -INFINITY;
    for (int32_t k = o->next; k < (o->next ? o->n : 1); k++) {
        const int32_t t = o->tok[k];
        const double v = (double)la[t] - za + (lb ? (double)lb[map ? map[t] : t] - zb : 0.0);
        if (v > top) top = v, best = k;
    }
    o->next = best + 1;
    return o->tok[best];
}

/* Greedy text under two views (p->view2): each step the token of highest summed
 * log-probability (view2's read through p->view2_tokens), appended to both sessions; the
 * opening (if any) first. */
static int generate_views(loom_session *s, const loom_generate_params *p, opening *op, loom_generate_stats *st)
{
    loom_session *b = p->view2;
    const loom_model *m = s->m;
    if (b == s || b->m != m)
        return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "generate: view2 must be another session of the same model");
    if (!b->has_logits) return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "generate: view2 has nothing cached");
    const int32_t V = loom_model_n_vocab(m), eos = loom_token_eos(m), eot = loom_token_eot(m);
    const int32_t *map = p->view2_tokens;
    for (int32_t t = 0; map && t < V; t++)
        if (map[t] < 0 || map[t] >= V)
            return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "generate: view2_tokens[%d] = %d is not a token (0..%d)", t,
                           map[t], V - 1);
    const int32_t skip[3] = {m->ctl[LM_CTL_IMAGE], m->ctl[LM_CTL_AUDIO], m->ctl[LM_CTL_VIDEO]};
    for (int64_t i = 0; i < p->n_predict; i++) {
        if (session_aborted(s) || session_aborted(b)) return lm_fail(&s->err, LOOM_ERR_ABORTED, "generation aborted");
        const float *la = s->logits, *lb = b->logits;
        const double za = log_sum_exp(la, V), zb = log_sum_exp(lb, V);
        int32_t tok = -1;
        double best = -INFINITY;
        const int taken = op->next < op->n;
        if (taken) tok = opening_take(op, la, za, lb, zb, map);
        for (int32_t t = 0; !taken && t < V; t++) {
            if (p->media_blocks && (t == skip[0] || t == skip[1] || t == skip[2])) continue;
            const double v = (double)la[t] - za + ((double)lb[map ? map[t] : t] - zb);
            if (v > best) best = v, tok = t;
        }
        const int32_t tok2 = map ? map[tok] : tok;
        lm_sampler_accept(s->smp, tok);
        lm_sampler_accept(b->smp, tok2);
        st->n_generated++;
        if (p->stop_at_eos && (tok == eos || tok == eot)) break;
        if (stream_token(s, p, tok)) break;
        if (i + 1 < p->n_predict) {
            const int rc = loom_session_decode_pair(s, tok, b, tok2);
            if (rc < 0) return rc;
        }
    }
    return 0;
}

/* loom_generate_params.opening: 1..4096 tokens in range, no media open token (media_blocks),
 * no beams. */
static int check_opening(loom_session *s, const loom_generate_params *p)
{
    if (!p->n_opening && !p->opening) return 0;
    if (!p->opening || p->n_opening < 1 || p->n_opening > 4096)
        return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "generate: an opening needs 1..4096 tokens, not %d%s",
                       p->n_opening, p->opening ? "" : " (opening is NULL)");
    if (p->n_beams > 1 || p->n_beams < 0)
        return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "generate: an opening is taken greedily, not with %d beams",
                       p->n_beams);
    const loom_model *m = s->m;
    const int32_t V = loom_model_n_vocab(m);
    for (int32_t k = 0; k < p->n_opening; k++) {
        const int32_t t = p->opening[k];
        if (t < 0 || t >= V)
            return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "generate: opening[%d] = %d is not a token (0..%d)", k, t, V - 1);
        if (p->media_blocks && (t == m->ctl[LM_CTL_IMAGE] || t == m->ctl[LM_CTL_AUDIO] || t == m->ctl[LM_CTL_VIDEO]))
            return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "generate: opening[%d] opens a media block", k);
    }
    return 0;
}

int64_t loom_session_generate(loom_session *s, const int32_t *prompt, int64_t n_prompt,
                              loom_generate_params p, loom_generate_stats *stats)
{
    loom_generate_stats st = {.n_prompt = n_prompt};
    if (p.ctc_logprobs && !(p.n_beams > 1))
        return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "generate: ctc_logprobs needs beam search (n_beams 2..8, not %d)",
                       p.n_beams);
    if (p.view2 && (p.n_beams > 1 || p.n_beams < 0))
        return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "generate: two views (view2) decode greedily, not with %d beams",
                       p.n_beams);
    opening op = {p.opening, p.n_opening, 0};
    const int rc_open = check_opening(s, &p);
    if (rc_open < 0) return rc_open;
    const int32_t past = loom_session_n_past(s);
    int64_t common = 0;  /* what the prompt call will reuse */
    while (prompt && common < past && common < n_prompt && s->hist[common] == prompt[common]) common++;
    st.n_reused = common < n_prompt ? common : n_prompt - 1;
    double t0 = now_ms();
    s->gen = &p; /* the prompt's forward pass polls p's hooks too */
    int rc = 0;
    if (n_prompt > 0) rc = loom_session_prompt(s, prompt, n_prompt, NULL);
    else if (!s->has_logits) rc = lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "generate: no prompt and nothing cached");
    else st.n_reused = 0;
    st.prompt_ms = now_ms() - t0;
    t0 = now_ms();
    const int32_t eos = loom_token_eos(s->m), eot = loom_token_eot(s->m);
    gen_media g = {0};
    /* a prompt that ends inside a block (its open token, perhaps codes after it): the block goes on */
    int32_t open = -1;
    const int64_t n_body = rc == 0 && s->has_logits && p.media_blocks ?
                           lm_block_unfinished(s->m, s->hist, loom_session_n_past(s), &open) : -1;
    const int beams = p.n_beams > 1 || p.n_beams < 0;   /* negative: refused by the search */
    if (rc == 0 && (beams || p.view2 || p.n_opening) && n_body >= 0)
        rc = lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "generate: %s writes text, and the prompt ends inside a media block",
                     beams ? "beam search" : p.view2 ? "two views" : "an opening");
    else if (rc == 0 && beams) rc = generate_beams(s, &p, &st);
    else if (rc == 0 && p.view2) rc = generate_views(s, &p, &op, &st);
    else if (n_body >= 0 && (rc = media_open(s, &p, &g, open, 1, s->hist + loom_session_n_past(s) - n_body, n_body)) > 0)
        rc = 0;
    /* a block that has opened is written to its end, past n_predict if need be */
    for (int64_t i = 0; rc == 0 && !beams && !p.view2 && (i < p.n_predict || g.active); i++) {
        if (session_aborted(s)) { rc = lm_fail(&s->err, LOOM_ERR_ABORTED, "generation aborted"); break; }
        int32_t tok;
        if (g.active) {
            if ((tok = lm_media_writer_next(&g.w)) < 0) { rc = media_fail(s, &g, tok); break; }
            lm_sampler_accept(s->smp, tok);   /* the penalties see the whole context */
        } else if (op.next < op.n) {
            tok = opening_take(&op, s->logits, 0.0, NULL, 0.0, NULL);
            lm_sampler_accept(s->smp, tok);
            if (p.stop_at_eos && (tok == eos || tok == eot)) { st.n_generated++; break; }
        } else {
            if ((tok = loom_session_sample(s)) < 0) { rc = tok; break; }
            if (p.stop_at_eos && (tok == eos || tok == eot)) { st.n_generated++; break; }
            if ((rc = media_open(s, &p, &g, tok, 0, NULL, 0)) < 0) break;
            rc = 0;
        }
        st.n_generated++;
        if (stream_token(s, &p, tok)) break;
        if (g.active) rc = media_put(s, &p, &g, tok);
        else if (i + 1 < p.n_predict) rc = loom_session_decode(s, tok);
    }
    lm_media_writer_free(&g.w);
    free(g.codes);
    s->gen = NULL;
    st.decode_ms = now_ms() - t0;
    if (stats) *stats = st;
    return rc < 0 ? rc : st.n_generated;
}

int loom_session_append_prompt(loom_session *s, const loom_prompt *p)
{
    if (!s || !p) return LOOM_ERR_INVALID_ARG;
    lm_error_clear(&s->err);
    if (p->m != s->m) return lm_fail(&s->err, LOOM_ERR_INVALID_ARG, "session: the prompt was built for another model");
    if ((int64_t)loom_session_n_past(s) + p->n > loom_session_n_ctx(s))
        return lm_fail(&s->err, LOOM_ERR_CONTEXT_FULL, "context full: %d cached + %lld prompt positions exceed n_ctx %d",
                       loom_session_n_past(s), (long long)p->n, loom_session_n_ctx(s));
    const int64_t E = s->m->dec->hp.n_embd;
    int64_t row = 0;
    for (int64_t i = 0; i < p->n;) {   /* runs of tokens and runs of rows, in order */
        const int is_rows = p->ids[i] < 0;
        int64_t j = i;
        while (j < p->n && (p->ids[j] < 0) == is_rows) j++;
        int rc = is_rows ? run(s, NULL, p->rows + row * E, j - i, NULL) : run(s, p->ids + i, NULL, j - i, NULL);
        if (rc < 0) return rc;
        if (is_rows) row += j - i;
        else for (int64_t k = i; k < j; k++) lm_sampler_accept(s->smp, p->ids[k]);
        i = j;
    }
    return 0;
}
