/*
 * Stacked decode steps: lm_decoder_forward_multi / loom_session_decode_pair give the logits
 * of separate loom_session_decode calls (bit for bit: the same row kernels per row, experts
 * summed in the same order), with caches of different lengths, dense and MoE layers, F32 /
 * F16 / Q8_0 weights, 1 and 2 threads. Also: errors and aborts change nothing, and logits
 * limited to a range of ids (media blocks) are the full head's there.
 *
 * `test_decode_pair --bench N [f32|f16|q8_0] [mid]` times N guided image codes on a model of
 * the bundled loom-tiny decoder's shapes (or a larger "mid" MoE): two loom_session_decode
 * calls per code against one loom_session_decode_pair (process CPU time; docs/BENCHMARKS.md
 * "Generation").
 */
#include <math.h>
#include <time.h>

#include "lib/core/decoder.h"
#include "lib/core/threadpool.h"
#include "lib/model.h"
#include "loom.h"
#include "tests/decoder_test_util.h"

enum { STEPS = 6, NA = 13, NB = 5 };

/* max |a − b| over n values, and whether they are bitwise equal. */
static float max_diff(const float *a, const float *b, int64_t n, int *same)
{
    float m = 0;
    *same = !memcmp(a, b, (size_t)n * sizeof *a);
    for (int64_t i = 0; i < n; i++) {
        const float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d;  /* NaN counts as a difference */
    }
    return m;
}

static float stddev(const float *x, int64_t n)
{
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) { s += x[i]; s2 += (double)x[i] * x[i]; }
    const double mean = s / (double)n;
    return (float)sqrt(s2 / (double)n - mean * mean);
}

static int32_t argmax(const float *x, int32_t n)
{
    int32_t b = 0;
    for (int32_t i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

static void prompt_tokens(int32_t *tok, int n, int salt, int V)
{
    for (int i = 0; i < n; i++) tok[i] = (int32_t)((i * 37 + 11 * salt) % (V - 3) + 3);
}

/* Compare logits (and sizes) of the pair against the references; returns 0 on a mismatch. */
static int same_logits(const char *tag, int step, loom_session *x, loom_session *ref, int V)
{
    const float *l = loom_session_logits(x), *r = loom_session_logits(ref);
    if (!l || !r) {
        CHECK(0, "%s step %d: logits missing", tag, step);
        return 0;
    }
    int same;
    const float d = max_diff(l, r, V, &same), tol = 1e-5f * stddev(r, V);
    CHECK(d <= tol, "%s step %d: batched logits differ by %g (1e-5·std = %g)", tag, step, d, tol);
    CHECK(same, "%s step %d: batched logits not bitwise equal (max |Δ| %g)", tag, step, d);
    CHECK(loom_session_n_past(x) == loom_session_n_past(ref), "%s step %d: n_past %d vs %d", tag, step,
          loom_session_n_past(x), loom_session_n_past(ref));
    return same;
}

/* Pair steps on sessions a (n_batch ba) and b (n_batch bb), prompts of NA and NB tokens,
 * against two lone sessions; greedy continuation so the caches keep diverging. */
static void run_pair(const char *tag, loom_model *m, int ba, int bb, int threads)
{
    const int V = loom_model_n_vocab(m);
    int32_t pa[NA], pb[NB];
    prompt_tokens(pa, NA, 1, V);
    prompt_tokens(pb, NB, 2, V);
    loom_session *a = test_session(m, 64, ba, threads), *b = test_session(m, 64, bb, threads);
    /* the references prefill in the same chunks (n_batch) as the pair's sessions */
    loom_session *ra = test_session(m, 64, ba, threads), *rb = test_session(m, 64, bb, threads);
    if (!a || !b || !ra || !rb) goto done;
    CHECK(loom_session_prompt(a, pa, NA, NULL) == 0 && loom_session_prompt(ra, pa, NA, NULL) == 0, "%s: prompt a", tag);
    CHECK(loom_session_prompt(b, pb, NB, NULL) == 0 && loom_session_prompt(rb, pb, NB, NULL) == 0, "%s: prompt b", tag);
    int32_t ta = argmax(loom_session_logits(ra), V), tb = argmax(loom_session_logits(rb), V);
    int ok = 1;
    for (int step = 0; step < STEPS && ok; step++) {
        CHECK(loom_session_decode_pair(a, ta, b, tb) == 0, "%s step %d: %s", tag, step, loom_session_error(a));
        CHECK(loom_session_decode(ra, ta) == 0 && loom_session_decode(rb, tb) == 0, "%s: reference", tag);
        ok = same_logits(tag, step, a, ra, V) & same_logits(tag, step, b, rb, V);
        ta = argmax(loom_session_logits(ra), V);
        tb = (step % 2) ? ta : argmax(loom_session_logits(rb), V); /* CFG feeds the same token */
    }
    CHECK(loom_session_n_past(a) == NA + STEPS && loom_session_n_past(b) == NB + STEPS, "%s: both advanced", tag);
done:
    loom_session_free(&a);
    loom_session_free(&b);
    loom_session_free(&ra);
    loom_session_free(&rb);
}

/* Three states of different lengths in one lm_decoder_forward_multi step against lone
 * lm_decoder_forward steps; n_seq beyond the first state's room, and states differing in
 * q8_float_x, are refused. */
static void run_multi3(const char *tag, loom_model *m)
{
    enum { S = 3 };
    const lm_decoder *d = m->dec;
    const int V = d->hp.n_vocab;
    lm_error e = {0};
    lm_pool *pool = lm_pool_create(2);
    lm_decoder_state *st[S] = {0}, *ref[S] = {0}, *small = NULL;
    float *out = malloc((size_t)2 * S * V * sizeof *out);
    int rc = 0;
    for (int i = 0; i < S && rc == 0; i++) {
        rc = lm_decoder_state_create(d, 48, 16, &st[i], &e);
        if (rc == 0) rc = lm_decoder_state_create(d, 48, 16, &ref[i], &e);
    }
    if (rc == 0) rc = lm_decoder_state_create(d, 48, 2, &small, &e);
    CHECK(rc == 0 && pool && out, "%s: states: %s", tag, e.msg);
    if (rc < 0 || !pool || !out) goto done;
    for (int i = 0; i < S; i++) {
        int32_t tok[12];
        prompt_tokens(tok, 4 + 4 * i, 3 + i, V);
        CHECK(lm_decoder_forward(d, st[i], tok, NULL, 4 + 4 * i, NULL, 0, pool, &e) == 0 &&
              lm_decoder_forward(d, ref[i], tok, NULL, 4 + 4 * i, NULL, 0, pool, &e) == 0, "%s: prefill: %s", tag, e.msg);
    }
    const int32_t next[S] = {7, 7, 19};
    float *const logits[S] = {out, out + V, out + 2 * V};
    CHECK(lm_decoder_forward_multi(d, st, next, S, logits, pool, &e) == 0, "%s: multi: %s", tag, e.msg);
    for (int i = 0; i < S; i++) {
        float *want = out + (S + i) * V;
        CHECK(lm_decoder_forward(d, ref[i], &next[i], NULL, 1, want, 0, pool, &e) == 0, "%s: lone: %s", tag, e.msg);
        int same;
        const float dd = max_diff(logits[i], want, V, &same);
        CHECK(same, "%s: sequence %d of 3 differs by %g", tag, i, dd);
        CHECK(lm_decoder_state_n_past(st[i]) == 5 + 4 * i, "%s: sequence %d advanced", tag, i);
    }
    lm_decoder_state *bad[S] = {small, st[1], st[2]};
    CHECK(lm_decoder_forward_multi(d, bad, next, S, logits, pool, &e) == LOOM_ERR_INVALID_ARG && strstr(e.msg, "n_batch"),
          "%s: 3 rows in a 2-row scratch: %s", tag, e.msg);
    lm_decoder_state *twice[2] = {st[0], st[0]};
    CHECK(lm_decoder_forward_multi(d, twice, next, 2, logits, pool, &e) == LOOM_ERR_INVALID_ARG, "%s: a state twice", tag);
    CHECK(lm_decoder_forward_multi(d, st, next, LM_DECODE_MAX_SEQ + 1, logits, pool, &e) == LOOM_ERR_INVALID_ARG,
          "%s: too many sequences", tag);
    lm_decoder_state_set_tuning(st[1], LM_MLA_AUTO, 1);
    CHECK(lm_decoder_forward_multi(d, st, next, S, logits, pool, &e) == LOOM_ERR_INVALID_ARG && strstr(e.msg, "q8_float_x"),
          "%s: states differing in q8_float_x: %s", tag, e.msg);
    for (int i = 0; i < S; i++) CHECK(lm_decoder_state_n_past(st[i]) == 5 + 4 * i, "%s: errors change nothing", tag);
done:
    for (int i = 0; i < S; i++) {
        lm_decoder_state_free(&st[i]);
        lm_decoder_state_free(&ref[i]);
    }
    lm_decoder_state_free(&small);
    lm_pool_free(&pool);
    free(out);
}

/* lm_decoder_state_limit_logits: a limited pass computes the ids [lo, hi) and extra bit for bit
 * as the full head does and -INFINITY elsewhere, for one pass only (the next is full again);
 * a stacked step limits its rows when every state set the same limit, else computes them all;
 * bounds past the vocabulary are clamped. The caches advance as in full passes. */
static int check_limited(const char *tag, const float *got, const float *full, int V, int32_t lo, int32_t hi,
                         int32_t extra)
{
    int bad = 0;
    for (int v = 0; v < V; v++) {
        const int in = (v >= lo && v < hi) || v == extra;
        if (in ? memcmp(&got[v], &full[v], sizeof(float)) != 0 : !(isinf(got[v]) && got[v] < 0)) bad++;
    }
    CHECK(bad == 0, "%s: %d logits wrong under the limit [%d, %d) + %d", tag, bad, lo, hi, extra);
    return bad == 0;
}

static void run_limit(const char *tag, loom_model *m)
{
    const lm_decoder *d = m->dec;
    const int V = d->hp.n_vocab;
    lm_error e = {0};
    lm_pool *pool = lm_pool_create(2);
    lm_decoder_state *a = NULL, *b = NULL, *ra = NULL, *rb = NULL;
    float *out = malloc((size_t)4 * V * sizeof *out);
    int rc = lm_decoder_state_create(d, 48, 16, &a, &e);
    if (rc == 0) rc = lm_decoder_state_create(d, 48, 16, &b, &e);
    if (rc == 0) rc = lm_decoder_state_create(d, 48, 16, &ra, &e);
    if (rc == 0) rc = lm_decoder_state_create(d, 48, 16, &rb, &e);
    CHECK(rc == 0 && pool && out, "%s limit: states: %s", tag, e.msg);
    if (rc < 0 || !pool || !out) goto done;
    float *la = out, *lb = out + V, *fa = out + 2 * V, *fb = out + 3 * V;
    int32_t tok[8];
    prompt_tokens(tok, 8, 5, V);
    CHECK(lm_decoder_forward(d, a, tok, NULL, 8, NULL, 0, pool, &e) == 0 && lm_decoder_forward(d, ra, tok, NULL, 8, NULL, 0, pool, &e) == 0 &&
          lm_decoder_forward(d, b, tok, NULL, 5, NULL, 0, pool, &e) == 0 && lm_decoder_forward(d, rb, tok, NULL, 5, NULL, 0, pool, &e) == 0,
          "%s limit: prefill: %s", tag, e.msg);
    const int32_t lo = V / 3, hi = V / 3 + 40, extra = V - 2, t1 = 9, t2 = 11;
    /* a lone step, limited, then a full one */
    lm_decoder_state_limit_logits(a, lo, hi, extra);
    CHECK(lm_decoder_forward(d, a, &t1, NULL, 1, la, 0, pool, &e) == 0 && lm_decoder_forward(d, ra, &t1, NULL, 1, fa, 0, pool, &e) == 0, "%s limit: step", tag);
    check_limited(tag, la, fa, V, lo, hi, extra);
    CHECK(lm_decoder_forward(d, a, &t2, NULL, 1, la, 0, pool, &e) == 0 && lm_decoder_forward(d, ra, &t2, NULL, 1, fa, 0, pool, &e) == 0, "%s limit: next", tag);
    CHECK(!memcmp(la, fa, (size_t)V * sizeof *la), "%s limit: the pass after a limited one is full and equal", tag);
    /* a stacked step with the same limit on both rows (clamped: lo < 0, extra inside nothing) */
    lm_decoder_state *st[2] = {a, b}, *rs[2] = {ra, rb};
    float *const lg[2] = {la, lb}, *const fg[2] = {fa, fb};
    const int32_t two[2] = {13, 13};
    lm_decoder_state_limit_logits(a, -5, 30, V + 7);
    lm_decoder_state_limit_logits(b, -5, 30, V + 7);
    CHECK(lm_decoder_forward_multi(d, st, two, 2, lg, pool, &e) == 0 && lm_decoder_forward_multi(d, rs, two, 2, fg, pool, &e) == 0,
          "%s limit: stacked: %s", tag, e.msg);
    check_limited(tag, la, fa, V, 0, 30, -1);
    check_limited(tag, lb, fb, V, 0, 30, -1);
    /* different limits: both rows full */
    lm_decoder_state_limit_logits(a, lo, hi, -1);
    lm_decoder_state_limit_logits(b, lo, hi, extra);
    CHECK(lm_decoder_forward_multi(d, st, two, 2, lg, pool, &e) == 0 && lm_decoder_forward_multi(d, rs, two, 2, fg, pool, &e) == 0,
          "%s limit: stacked, different limits: %s", tag, e.msg);
    CHECK(!memcmp(la, fa, (size_t)V * sizeof *la) && !memcmp(lb, fb, (size_t)V * sizeof *lb),
          "%s limit: rows with different limits are computed in full", tag);
    /* an upper bound past the vocabulary */
    lm_decoder_state_limit_logits(a, V - 10, V + 100, -1);
    CHECK(lm_decoder_forward(d, a, &t1, NULL, 1, la, 0, pool, &e) == 0 && lm_decoder_forward(d, ra, &t1, NULL, 1, fa, 0, pool, &e) == 0, "%s limit: clamp", tag);
    check_limited(tag, la, fa, V, V - 10, V, -1);
    CHECK(lm_decoder_state_n_past(a) == lm_decoder_state_n_past(ra) && lm_decoder_state_n_past(b) == lm_decoder_state_n_past(rb),
          "%s limit: caches advance alike", tag);
done:
    lm_decoder_state_free(&a);
    lm_decoder_state_free(&b);
    lm_decoder_state_free(&ra);
    lm_decoder_state_free(&rb);
    lm_pool_free(&pool);
    free(out);
}

static int abort_now(void *user) { (void)user; return 1; }

static void run_errors(loom_model *m, loom_model *other)
{
    const int V = loom_model_n_vocab(m);
    loom_session *a = test_session(m, 16, 64, 1), *b = test_session(m, 16, 64, 1), *o = test_session(other, 16, 64, 1);
    if (!a || !b || !o) goto done;
    int32_t pa[NA], pb[NB];
    prompt_tokens(pa, NA, 1, V);
    prompt_tokens(pb, NB, 2, V);
    loom_session_prompt(a, pa, NA, NULL);
    loom_session_prompt(b, pb, NB, NULL);
    CHECK(loom_session_decode_pair(a, 5, a, 5) == LOOM_ERR_INVALID_ARG, "the same session twice");
    CHECK(loom_session_decode_pair(a, 5, o, 5) == LOOM_ERR_INVALID_ARG && strstr(loom_session_error(o), "models"),
          "different models: %s", loom_session_error(o));
    CHECK(loom_session_decode_pair(a, 5, b, V) == LOOM_ERR_INVALID_ARG && strstr(loom_session_error(b), "vocabulary"),
          "token out of range: %s", loom_session_error(b));
    CHECK(loom_session_decode_pair(a, 5, b, 5) == 0 && loom_session_decode_pair(a, 6, b, 6) == 0, "pair");
    /* a holds 15 of 16 positions: one more pair fills it, the next is refused whole */
    CHECK(loom_session_decode_pair(a, 7, b, 7) == 0, "last position: %s", loom_session_error(a));
    CHECK(loom_session_decode_pair(a, 8, b, 8) == LOOM_ERR_CONTEXT_FULL && strstr(loom_session_error(b), "context full"),
          "context full: %s", loom_session_error(b));
    CHECK(loom_session_n_past(a) == 16 && loom_session_n_past(b) == NB + 3, "context full changes nothing (%d %d)",
          loom_session_n_past(a), loom_session_n_past(b));
    loom_session_truncate(a, NA);
    loom_session_set_abort(b, abort_now, NULL, NULL);
    CHECK(loom_session_decode_pair(a, 8, b, 8) == LOOM_ERR_ABORTED, "the second session's abort hook stops the pair");
    CHECK(loom_session_n_past(a) == NA && loom_session_n_past(b) == NB + 3 && !loom_session_logits(a) &&
          !loom_session_logits(b), "an aborted pair advances neither and leaves no logits");
    loom_session_set_abort(b, NULL, NULL, NULL);
    CHECK(loom_session_decode_pair(a, 8, b, 8) == 0 && loom_session_logits(a) && loom_session_logits(b),
          "usable after the abort");
done:
    loom_session_free(&a);
    loom_session_free(&b);
    loom_session_free(&o);
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* loom-tiny's decoder shapes (tools/loompy/decoder.py DecoderConfig, vocabulary + 1024 image
 * + 1024 audio codes), random weights. */
static lm_synth_params bundled_params(int type)
{
    lm_synth_params p = lm_synth_tiny_params();
    p.vocab_from = "../models/loom-tiny-vocab.gguf";
    p.image_count = 1024; p.audio_count = 1024; p.image_grid = 16;
    p.n_embd = 256; p.n_layer = 4; p.n_dense_lead = 1; p.n_head = 4; p.q_lora = 0;
    p.kv_lora = 64; p.n_nope = 32; p.n_rope = 16; p.n_v = 32; p.n_ff = 768; p.n_ff_exp = 192;
    p.n_expert = 8; p.n_expert_used = 2; p.n_expert_shared = 1; p.n_group = 0; p.n_group_used = 0;
    p.gating = 1; p.weights_scale = 1.0f; p.exp_probs_b = 0; p.yarn = 0; p.n_ctx_train = 1024;
    p.type = type;
    return p;
}

/* A larger MoE whose active weights (~17 M parameters per step) no longer sit in cache. */
static lm_synth_params mid_params(int type)
{
    lm_synth_params p = bundled_params(type);
    p.n_embd = 512; p.n_layer = 6; p.n_head = 8; p.kv_lora = 128; p.n_ff = 2048; p.n_ff_exp = 512;
    p.n_expert = 16;
    return p;
}

/* n guided image codes (cfg 3, seed 1): generate_media's loop with two decodes per code
 * (the path before decode_pair) and with loom_generate_media; best of 3 each, CPU seconds. */
static int bench(int n, int type, int mid)
{
    char path[256], err[256];
    lm_synth_params p = mid ? mid_params(type) : bundled_params(type);
    loom_model *m = synth_model("pair-bench", &p, path, sizeof path);
    if (!m) return finish();
    const int V = loom_model_n_vocab(m);
    const int32_t open = loom_token_find(m, "<|image|>"), lo = m->vocab.image_start, hi = lo + m->vocab.image_count;
    int32_t cond[64], unc[16], *codes = malloc((size_t)n * sizeof *codes);
    const int64_t nc = loom_media_prompt(m, LOOM_MEDIA_IMAGE, "a red circle", 0, cond, 64);
    const int64_t nu = loom_media_prompt(m, LOOM_MEDIA_IMAGE, "a red circle", 1, unc, 16);
    loom_session *c = test_session(m, 1024, 512, 1), *u = test_session(m, 1024, 512, 1);
    float *mix = malloc((size_t)V * sizeof *mix);
    double best_two = 1e9, best_pair = 1e9;
    for (int round = 0; round < 3; round++) {
        double t0 = cpu_s();
        loom_session_prompt(c, cond, nc, NULL);
        loom_session_prompt(u, unc, nu, NULL);
        loom_session_decode(c, open);
        loom_session_decode(u, open);
        for (int i = 0; i < n; i++) {
            const float *lc = loom_session_logits(c), *lu = loom_session_logits(u);
            int32_t best = lo;
            for (int32_t k = lo; k < hi; k++) {
                mix[k] = lu[k] + 3.0f * (lc[k] - lu[k]);
                if (mix[k] > mix[best]) best = k;
            }
            loom_session_decode(c, best);
            loom_session_decode(u, best);
        }
        const double two = cpu_s() - t0;
        t0 = cpu_s();
        loom_media_params mp = loom_media_default_params(LOOM_MEDIA_IMAGE);
        mp.seed = 1;
        mp.temperature = 0;   /* greedy, like the loop above */
        const int64_t got = loom_generate_media(m, c, cond, nc, u, unc, nu, mp, codes, n, err, sizeof err);
        const double pair = cpu_s() - t0;
        CHECK(got == 256 || n != 256, "generate: %lld (%s)", (long long)got, err);
        if (two < best_two) best_two = two;
        if (pair < best_pair) best_pair = pair;
    }
    printf("%s %s, %d guided codes, 1 thread, CPU s (best of 3): two decodes %.3f, decode_pair %.3f, speed-up %.2fx\n",
           mid ? "mid" : "bundled", loom_type_name(type), n, best_two, best_pair, best_two / best_pair);
    free(mix);
    free(codes);
    loom_session_free(&c);
    loom_session_free(&u);
    loom_model_free(&m);
    unlink(path);
    return finish();
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--bench")) {
        const int type = argc >= 4 && !strcmp(argv[3], "q8_0") ? LOOM_TYPE_Q8_0 :
                         argc >= 4 && !strcmp(argv[3], "f16") ? LOOM_TYPE_F16 : LOOM_TYPE_F32;
        return bench(atoi(argv[2]), type, argc >= 5 && !strcmp(argv[4], "mid"));
    }
    static const struct { const char *tag; int type, split, q_lora; } cfgs[] = {
        {"split-f32", LOOM_TYPE_F32, 1, 32}, {"legacy-f32", LOOM_TYPE_F32, 0, 0},
        {"split-f16", LOOM_TYPE_F16, 1, 32}, {"split-q8_0", LOOM_TYPE_Q8_0, 1, 32},
    };
    loom_model *first = NULL;
    char first_path[256];
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        char path[256], tag[64];
        lm_synth_params p = lm_synth_tiny_params();
        p.type = cfgs[i].type;
        p.mla_split = cfgs[i].split;
        p.q_lora = cfgs[i].q_lora;
        loom_model *m = synth_model(cfgs[i].tag, &p, path, sizeof path);
        if (!m) continue;
        run_pair(cfgs[i].tag, m, 512, 512, 1);
        snprintf(tag, sizeof tag, "%s-2threads", cfgs[i].tag);
        run_pair(tag, m, 512, 512, 2);
        snprintf(tag, sizeof tag, "%s-b-holds", cfgs[i].tag);
        run_pair(tag, m, 1, 512, 1);       /* a cannot hold two rows: b's scratch does */
        snprintf(tag, sizeof tag, "%s-one-by-one", cfgs[i].tag);
        run_pair(tag, m, 1, 1, 1);         /* neither can: two lone steps */
        run_multi3(cfgs[i].tag, m);
        run_limit(cfgs[i].tag, m);
        if (!first) {
            first = m;
            snprintf(first_path, sizeof first_path, "%s", path);
        } else {
            if (i == 1) run_errors(first, m);
            loom_model_free(&m);
            unlink(path);
        }
    }
    /* loom-tiny's shapes in Q8_0: matrices big enough for the pool to split mm_rows */
    char path[256];
    lm_synth_params p = bundled_params(LOOM_TYPE_Q8_0);
    loom_model *big = synth_model("pair-big", &p, path, sizeof path);
    if (big) {
        run_pair("bundled-q8_0-2threads", big, 512, 512, 2);
        loom_model_free(&big);
        unlink(path);
    }
    loom_model_free(&first);
    unlink(first_path);
    return finish();
}
