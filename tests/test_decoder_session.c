/*
 * Decoder sessions on a tiny random-weight model: batched prefill == chunked prefill ==
 * token-by-token decode; prefix reuse gives the same logits as a fresh prefill; embeddings
 * in == token ids in; context overflow is LOOM_ERR_CONTEXT_FULL; generate stops and aborts;
 * loom_session_score equals log-softmax sums over a prefill's logits; loom_perplexity equals
 * the same sums over each chunk's own prefill (BOS first, second half scored), stops when
 * asked and refuses what it cannot measure.
 */
#include <math.h>

#include "lib/model.h"
#include "loom.h"
#include "tests/decoder_test_util.h"

enum { N = 20 };

static float max_diff(const float *a, const float *b, int64_t n)
{
    float m = 0;
    for (int64_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d;  /* NaN counts as a difference */
    }
    return m;
}

static int count_tokens(int32_t token, const char *piece, size_t len, void *user)
{
    int *n = user;
    return ++*n >= 3; /* stop after 3 */
}

static int abort_now(void *user) { return 1; }

/* Sum of log-softmax(logits[t])[tok[t + 1]] over t in [from, to), in double: the reference. */
static double ref_logprob(const float *logits, int V, const int32_t *tok, int from, int to)
{
    double sum = 0;
    for (int t = from; t < to; t++) {
        const float *row = logits + (size_t)t * V;
        double mx = row[0], z = 0;
        for (int i = 1; i < V; i++) mx = row[i] > mx ? row[i] : mx;
        for (int i = 0; i < V; i++) z += exp(row[i] - mx);
        sum += row[tok[t + 1]] - mx - log(z);
    }
    return sum;
}

/* loom_session_score against the logits of one prefill of context + tokens: 1 token, and
 * 40 (more than one internal chunk); then its refusals. */
static void test_score(const char *tag, loom_model *m, double tol)
{
    enum { CTX = 5, LONG = 40, T = CTX + LONG, MORE = 64 };
    const int V = loom_model_n_vocab(m);
    int32_t tok[CTX + MORE];
    for (int i = 0; i < CTX + MORE; i++) tok[i] = (int32_t)((i * 41 + 7) % (V - 3) + 3);
    float *all = malloc((size_t)T * V * sizeof *all);
    loom_session *s = test_session(m, 64, 16, 2), *r = test_session(m, 64, 512, 1);
    CHECK(loom_session_prompt(r, tok, T, all) == 0, "%s: reference prefill", tag);
    const int lens[] = {1, LONG};
    for (int k = 0; k < 2; k++) {
        double lp = 1;
        CHECK(loom_session_prompt(s, tok, CTX, NULL) == 0, "%s: context", tag);
        CHECK(loom_session_score(s, tok + CTX, lens[k], &lp) == 0, "%s: score %d: %s", tag, lens[k], loom_session_error(s));
        const double want = ref_logprob(all, V, tok, CTX - 1, CTX - 1 + lens[k]);
        CHECK(fabs(lp - want) <= tol * (1 + fabs(want)), "%s: score of %d tokens %.6f, reference %.6f", tag, lens[k], lp, want);
        CHECK(lp < 0 && loom_session_n_past(s) == CTX + lens[k], "%s: score %d appended %d", tag, lens[k], loom_session_n_past(s));
        /* the logits after scoring are those after the last token, as after an append */
        const float d = max_diff(loom_session_logits(s), all + (size_t)(CTX + lens[k] - 1) * V, V);
        CHECK(d <= tol * 10, "%s: logits after scoring differ by %g", tag, d);
    }
    double lp = 1;
    CHECK(loom_session_prompt(s, tok, CTX, NULL) == 0 && loom_session_score(s, tok, 0, &lp) == 0 && lp == 0,
          "%s: nothing scored is log 1", tag);
    int32_t bad = V;
    CHECK(loom_session_score(s, &bad, 1, &lp) == LOOM_ERR_INVALID_ARG && strstr(loom_session_error(s), "out of range"),
          "%s: token %d scored: '%s'", tag, V, loom_session_error(s));
    CHECK(loom_session_n_past(s) == CTX, "%s: a refused score changed the session", tag);
    CHECK(loom_session_score(s, tok + CTX, MORE, &lp) == LOOM_ERR_CONTEXT_FULL && loom_session_n_past(s) == CTX,
          "%s: score past n_ctx", tag);
    loom_session_truncate(s, 0);
    CHECK(loom_session_score(s, tok, 1, &lp) == LOOM_ERR_INVALID_ARG && strstr(loom_session_error(s), "no context"),
          "%s: score without a context: '%s'", tag, loom_session_error(s));
    CHECK(loom_session_score(NULL, tok, 1, &lp) == LOOM_ERR_INVALID_ARG && loom_session_score(s, tok, 1, NULL) ==
          LOOM_ERR_INVALID_ARG, "%s: NULL session or result", tag);
    loom_session_free(&s);
    loom_session_free(&r);
    free(all);
}

static int stop_after_first(int32_t chunk, int32_t n_chunks, double ppl, void *user)
{
    double *seen = user;
    seen[chunk - 1] = ppl;
    return n_chunks > 0;
}

/* loom_perplexity against prefills of each chunk (its first token made BOS) in another
 * session: 3 whole chunks of C plus a rest it must leave out; chunks computed in prefill
 * pieces of 7 (n_batch); then n_chunks, on_chunk's stop, and the refusals. */
static void test_perplexity(const char *tag, loom_model *m, double tol)
{
    enum { C = 16, NCH = 3, REST = 5, NT = NCH * C + REST };
    const int V = loom_model_n_vocab(m), bos = loom_token_bos(m);
    int32_t tok[NT], chunk[C];
    for (int i = 0; i < NT; i++) tok[i] = (int32_t)((i * 37 + 11) % (V - 3) + 3);
    float *all = malloc((size_t)C * V * sizeof *all);
    loom_session *s = test_session(m, 32, 7, 2), *r = test_session(m, 32, 512, 1);
    double nll = 0, nll2 = 0, first_ppl = 0;
    for (int c = 0; c < NCH; c++) {
        memcpy(chunk, tok + c * C, sizeof chunk);
        if (bos >= 0) chunk[0] = bos;
        CHECK(loom_session_prompt(r, chunk, C, all) == 0, "%s: reference chunk %d", tag, c);
        for (int j = C / 2; j < C - 1; j++) {
            const double lp = ref_logprob(all, V, chunk, j, j + 1);
            nll -= lp;
            nll2 += lp * lp;
        }
        if (c == 0) first_ppl = exp(nll / (C - 1 - C / 2));
    }
    const int64_t count = NCH * (C - 1 - C / 2);
    const double mean = nll / count, ppl = exp(mean), err = ppl * sqrt((nll2 / count - mean * mean) / (count - 1));
    loom_perplexity_params pp = loom_perplexity_default_params();
    pp.n_ctx = C;
    loom_perplexity_result res;
    CHECK(loom_perplexity(s, tok, NT, pp, &res) == 0, "%s: perplexity: %s", tag, loom_session_error(s));
    CHECK(res.n_chunks == NCH && res.n_scored == count, "%s: %d chunks, %lld scored (want %d, %lld)", tag,
          res.n_chunks, (long long)res.n_scored, NCH, (long long)count);
    CHECK(fabs(res.nll - mean) <= tol * (1 + mean) && fabs(log(res.ppl) - mean) <= tol * (1 + mean) &&
          fabs(res.ppl_err / err - 1) <= 1e-2, "%s: ppl %.6f ± %.6f (nll %.6f), reference %.6f ± %.6f", tag, res.ppl,
          res.ppl_err, res.nll, ppl, err);
    CHECK(loom_session_n_past(s) == 0, "%s: perplexity left %d cached positions", tag, loom_session_n_past(s));
    pp.n_chunks = 1;
    CHECK(loom_perplexity(s, tok, NT, pp, &res) == 0 && res.n_chunks == 1 && fabs(log(res.ppl / first_ppl)) <= tol * (1 + log(first_ppl)),
          "%s: n_chunks 1: %d chunks, ppl %.6f vs %.6f", tag, res.n_chunks, res.ppl, first_ppl);
    double seen[NCH] = {0};
    pp.n_chunks = 0;
    pp.on_chunk = stop_after_first;
    pp.user_data = seen;
    CHECK(loom_perplexity(s, tok, NT, pp, &res) == LOOM_ERR_ABORTED && res.n_chunks == 1 && seen[0] == res.ppl &&
          seen[1] == 0 && strstr(loom_session_error(s), "stopped"), "%s: on_chunk's stop: %d chunks, '%s'", tag,
          res.n_chunks, loom_session_error(s));
    pp.on_chunk = NULL;
    CHECK(loom_perplexity(s, tok, C - 1, pp, &res) == LOOM_ERR_INVALID_ARG && res.n_chunks == 0 &&
          strstr(loom_session_error(s), "fewer than one chunk"), "%s: too few tokens: '%s'", tag, loom_session_error(s));
    pp.n_ctx = 33;
    CHECK(loom_perplexity(s, tok, NT, pp, &res) == LOOM_ERR_INVALID_ARG && strstr(loom_session_error(s), "n_ctx 32"),
          "%s: chunk past the session's n_ctx: '%s'", tag, loom_session_error(s));
    pp.n_ctx = 3;
    CHECK(loom_perplexity(s, tok, NT, pp, &res) == LOOM_ERR_INVALID_ARG, "%s: chunk of 3 accepted", tag);
    pp.n_ctx = C;
    tok[2 * C + 3] = V;
    CHECK(loom_perplexity(s, tok, NT, pp, &res) == LOOM_ERR_INVALID_ARG && res.n_chunks == 0 &&
          strstr(loom_session_error(s), "out of range"), "%s: token %d: '%s'", tag, V, loom_session_error(s));
    tok[2 * C + 3] = 3;
    CHECK(loom_perplexity(NULL, tok, NT, pp, &res) == LOOM_ERR_INVALID_ARG &&
          loom_perplexity(s, tok, NT, pp, NULL) == LOOM_ERR_INVALID_ARG, "%s: NULL session or result", tag);
    loom_session_free(&s);
    loom_session_free(&r);
    free(all);
}

/* loom_perplexity with a base: the q8_0 file of a model against its f32 file. The reference
 * is each chunk prefilled in two more sessions like the measured ones (the same logits):
 * base's perplexity, mean and largest KL(base ‖ q8_0), how often both rank the same token
 * first. The same session as its own base, and a base of another vocabulary, are refused. */
static void test_perplexity_base(void)
{
    enum { C = 16, NCH = 2, NT = NCH * C };
    lm_synth_params p = lm_synth_tiny_params(), pv = lm_synth_tiny_params();
    p.type = LOOM_TYPE_F32;
    char pf[256], pq[256], pw[256];
    loom_model *mf = synth_model("ppl-base-f32", &p, pf, sizeof pf);
    p.type = LOOM_TYPE_Q8_0;
    loom_model *mq = synth_model("ppl-base-q8_0", &p, pq, sizeof pq);
    pv.n_vocab += 32;
    loom_model *mw = synth_model("ppl-base-vocab", &pv, pw, sizeof pw);
    if (!mf || !mq || !mw) return;
    const int V = loom_model_n_vocab(mq), bos = loom_token_bos(mq);
    int32_t tok[NT], chunk[C];
    for (int i = 0; i < NT; i++) tok[i] = (int32_t)((i * 29 + 5) % (V - 3) + 3);
    loom_session *q = test_session(mq, 32, 512, 1), *f = test_session(mf, 32, 512, 1);
    loom_session *rq = test_session(mq, 32, 512, 1), *rf = test_session(mf, 32, 512, 1);
    float *lq = malloc((size_t)C * V * sizeof *lq), *lf = malloc((size_t)C * V * sizeof *lf);
    double nll_f = 0, kl = 0, kl_max = 0;
    int same = 0, count = 0;
    for (int c = 0; c < NCH; c++) {
        memcpy(chunk, tok + c * C, sizeof chunk);
        if (bos >= 0) chunk[0] = bos;
        CHECK(loom_session_prompt(rq, chunk, C, lq) == 0 && loom_session_prompt(rf, chunk, C, lf) == 0, "reference chunk %d", c);
        for (int j = C / 2; j < C - 1; j++, count++) {
            const float *a = lq + (size_t)j * V, *b = lf + (size_t)j * V;
            nll_f -= ref_logprob(lf, V, chunk, j, j + 1);
            double k = 0;
            int ta = 0, tb = 0;
            for (int i = 0; i < V; i++) {   /* Σ p_b (log p_b − log p_a), from ref_logprob's log-softmax */
                const double lpb = ref_logprob(b, V, (int32_t[]){0, i}, 0, 1), lpa = ref_logprob(a, V, (int32_t[]){0, i}, 0, 1);
                k += exp(lpb) * (lpb - lpa);
                ta = a[i] > a[ta] ? i : ta;
                tb = b[i] > b[tb] ? i : tb;
            }
            kl += k;
            kl_max = k > kl_max ? k : kl_max;
            same += ta == tb;
        }
    }
    loom_perplexity_params pp = loom_perplexity_default_params();
    pp.n_ctx = C;
    pp.base = f;
    loom_perplexity_result r;
    CHECK(loom_perplexity(q, tok, NT, pp, &r) == 0, "perplexity with a base: %s", loom_session_error(q));
    CHECK(fabs(log(r.base_ppl) - nll_f / count) <= 1e-6 * (1 + nll_f / count), "base ppl %.8f, reference %.8f",
          r.base_ppl, exp(nll_f / count));
    CHECK(fabs(r.kl_mean - kl / count) <= 1e-9 + 1e-6 * kl / count && fabs(r.kl_max - kl_max) <= 1e-9 + 1e-6 * kl_max,
          "KL mean %.3g max %.3g, reference %.3g %.3g", r.kl_mean, r.kl_max, kl / count, kl_max);
    CHECK(r.kl_mean > 0 && r.same_top == (double)same / count, "same top %.4f, reference %.4f", r.same_top,
          (double)same / count);
    CHECK(loom_session_n_past(f) == 0, "the base kept %d positions", loom_session_n_past(f));
    pp.base = rq;   /* its own model as base: KL 0, all tops the same, equal perplexities */
    CHECK(loom_perplexity(q, tok, NT, pp, &r) == 0 && r.kl_max < 1e-9 && r.same_top == 1 && r.base_ppl == r.ppl,
          "the model against itself: KL max %g, same top %g, ppl %g vs %g", r.kl_max, r.same_top, r.ppl, r.base_ppl);
    pp.base = q;
    CHECK(loom_perplexity(q, tok, NT, pp, &r) == LOOM_ERR_INVALID_ARG && strstr(loom_session_error(q), "is this session"),
          "itself as base: '%s'", loom_session_error(q));
    loom_session *w = test_session(mw, 32, 512, 1);
    pp.base = w;
    CHECK(loom_perplexity(q, tok, NT, pp, &r) == LOOM_ERR_INVALID_ARG && strstr(loom_session_error(q), "vocabulary"),
          "a base of another vocabulary: '%s'", loom_session_error(q));
    loom_session_free(&w);
    loom_session_free(&q);
    loom_session_free(&f);
    loom_session_free(&rq);
    loom_session_free(&rf);
    free(lq);
    free(lf);
    loom_model_free(&mf);
    loom_model_free(&mq);
    loom_model_free(&mw);
    unlink(pf);
    unlink(pq);
    unlink(pw);
}

static void run(const char *tag, lm_synth_params p, float tol)
{
    char path[256];
    loom_model *m = synth_model(tag, &p, path, sizeof path);
    if (!m) return;
    const int V = loom_model_n_vocab(m), E = loom_model_n_embd(m);
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 37 + 11) % (V - 3) + 3);
    float *full = malloc((size_t)N * V * sizeof *full), *chunk = malloc((size_t)N * V * sizeof *chunk);
    float *step = malloc((size_t)N * V * sizeof *step);

    /* one batch vs chunks of 3 (2 threads) vs one token at a time */
    loom_session *a = test_session(m, 32, 512, 1), *b = test_session(m, 32, 3, 2), *c = test_session(m, 32, 1, 1);
    CHECK(loom_session_prompt(a, tok, N, full) == 0, "%s: prompt: %s", tag, loom_session_error(a));
    CHECK(loom_session_prompt(b, tok, N, chunk) == 0, "%s: chunked prompt", tag);
    for (int i = 0; i < N; i++) {
        CHECK(loom_session_decode(c, tok[i]) == 0, "%s: decode %d: %s", tag, i, loom_session_error(c));
        memcpy(step + (size_t)i * V, loom_session_logits(c), (size_t)V * sizeof *step);
    }
    float d1 = max_diff(full, chunk, (int64_t)N * V), d2 = max_diff(full, step, (int64_t)N * V);
    CHECK(d1 <= tol, "%s: batched vs chunked prefill differ by %g (tol %g)", tag, d1, tol);
    CHECK(d2 <= tol, "%s: batched prefill vs token-by-token decode differ by %g (tol %g)", tag, d2, tol);
    CHECK(loom_session_n_past(a) == N && loom_session_n_past(c) == N, "%s: n_past", tag);
    /* a long context makes the batched attention work in blocks of 16 query rows */
    loom_session *l = test_session(m, 16384, 512, 2);
    CHECK(loom_session_prompt(l, tok, N, chunk) == 0, "%s: long-context prompt", tag);
    float d3 = max_diff(full, chunk, (int64_t)N * V);
    CHECK(d3 <= tol, "%s: blocked attention differs by %g", tag, d3);
    loom_session_free(&l);

    /* prefix reuse: a second prompt sharing 12 tokens computes only the rest and matches a fresh session */
    int32_t tok2[N];
    memcpy(tok2, tok, sizeof tok2);
    for (int i = 12; i < N; i++) tok2[i] = (int32_t)((i * 53 + 5) % (V - 3) + 3);
    loom_generate_params gp = loom_generate_default_params();
    gp.n_predict = 4;
    gp.stop_at_eos = 0;
    loom_generate_stats st;
    int32_t gen_a[4], gen_c[4];
    CHECK(loom_session_generate(a, tok2, N, gp, &st) == 4, "%s: generate (reuse): %s", tag, loom_session_error(a));
    CHECK(st.n_reused == 12 && st.n_prompt == N, "%s: reused %lld of %lld, expected 12", tag, (long long)st.n_reused,
          (long long)st.n_prompt);
    loom_session_truncate(c, 0);
    CHECK(loom_session_n_past(c) == 0, "%s: truncate", tag);
    CHECK(loom_session_generate(c, tok2, N, gp, &st) == 4 && st.n_reused == 0, "%s: generate (fresh)", tag);
    float da = max_diff(loom_session_logits(a), loom_session_logits(c), V);
    CHECK(da <= tol, "%s: logits after prefix reuse differ from a fresh prefill by %g", tag, da);
    /* the same prompt again reuses all but the last token, and greedy output repeats */
    CHECK(loom_session_prompt(a, tok2, N, NULL) == 0 && loom_session_n_past(a) == N, "%s: same prompt", tag);
    CHECK(loom_session_prompt(c, tok2, N, NULL) == 0, "%s: same prompt (c)", tag);
    for (int i = 0; i < 4; i++) {
        gen_a[i] = loom_session_sample(a);
        gen_c[i] = loom_session_sample(c);
        loom_session_decode(a, gen_a[i]);
        loom_session_decode(c, gen_c[i]);
    }
    CHECK(!memcmp(gen_a, gen_c, sizeof gen_a), "%s: greedy continuations differ after reuse", tag);

    /* embeddings in == token ids in (the rows of token_embd, dequantized) */
    float *emb = malloc((size_t)N * E * sizeof *emb);
    const lm_matrix *te = &m->dec->tok_embd;
    for (int i = 0; i < N; i++)
        lm_row_to_f32(te->type, (const char *)te->data + (size_t)tok[i] * te->row_bytes, emb + (size_t)i * E, E);
    loom_session_truncate(b, 0);
    CHECK(loom_session_append_embd(b, emb, N, chunk) == 0, "%s: append_embd: %s", tag, loom_session_error(b));
    float de = max_diff(full, chunk, (int64_t)N * V);
    CHECK(de <= tol, "%s: embeddings vs token ids differ by %g", tag, de);
    free(emb);

    /* context overflow is an error and leaves the session as it was */
    loom_session *o = test_session(m, 8, 4, 1);
    CHECK(loom_session_prompt(o, tok, 9, NULL) == LOOM_ERR_CONTEXT_FULL, "%s: 9 tokens in n_ctx 8", tag);
    CHECK(strstr(loom_session_error(o), "context full") != NULL, "%s: message '%s'", tag, loom_session_error(o));
    CHECK(loom_session_n_past(o) == 0, "%s: overflow changed the session", tag);
    CHECK(loom_session_prompt(o, tok, 8, NULL) == 0, "%s: 8 tokens fit", tag);
    CHECK(loom_session_decode(o, tok[0]) == LOOM_ERR_CONTEXT_FULL && loom_session_n_past(o) == 8, "%s: decode past n_ctx", tag);
    gp.n_predict = 10;
    CHECK(loom_session_generate(o, tok, 6, gp, NULL) == LOOM_ERR_CONTEXT_FULL, "%s: generate past n_ctx", tag);
    /* bad token ids */
    int32_t bad = V;
    loom_session_truncate(o, 0);
    CHECK(loom_session_decode(o, bad) == LOOM_ERR_INVALID_ARG, "%s: token id %d accepted", tag, bad);
    loom_session_free(&o);

    /* generate: the callback stops it, the abort hooks abort it */
    int count = 0;
    gp = loom_generate_default_params();
    gp.stop_at_eos = 0;
    gp.n_predict = 8;
    gp.on_token = count_tokens;
    gp.user_data = &count;
    CHECK(loom_session_generate(a, tok, 4, gp, NULL) == 3 && count == 3, "%s: on_token stop (%d)", tag, count);
    gp.on_token = NULL;
    gp.should_abort = abort_now;
    CHECK(loom_session_generate(a, tok, 4, gp, NULL) == LOOM_ERR_ABORTED, "%s: abort callback", tag);
    volatile int flag = 1;
    gp.should_abort = NULL;
    gp.abort_flag = &flag;
    CHECK(loom_session_generate(a, tok, 4, gp, NULL) == LOOM_ERR_ABORTED, "%s: abort flag", tag);
    CHECK(loom_tokenize(m, "hi", 2, 1, 0, tok, N) == LOOM_ERR_UNSUPPORTED, "%s: SPM vocab tokenize", tag);
    test_score(tag, m, tol);
    test_perplexity(tag, m, tol);

    loom_session_free(&a);
    loom_session_free(&b);
    loom_session_free(&c);
    loom_session_free(&a); /* NULL: no-op */
    free(full);
    free(chunk);
    free(step);
    loom_model_free(&m);
    loom_model_free(&m);
    unlink(path);
}

int main(void)
{
    lm_synth_params p = lm_synth_tiny_params();
    run("split-f32", p, 1e-4f);
    p.mla_split = 0; p.q_lora = 0; p.gating = 1; p.n_group = 0; p.tied = 1; p.yarn = 0;
    run("legacy-f32", p, 1e-4f);
    p = lm_synth_tiny_params();
    p.type = LOOM_TYPE_Q8_0;
    run("split-q8_0", p, 1e-3f);
    test_perplexity_base();
    return finish();
}
