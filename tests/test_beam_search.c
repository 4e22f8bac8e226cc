/*
 * Beam search (loom_generate_params.n_beams) against a naive search written here: the same
 * rule (beam_search.h), but every answer's logits recomputed by lone loom_session_decode
 * steps from the prompt's cache instead of copied caches and stacked steps, which give the
 * same logits bit for bit (test_decode_pair). So the answers must be identical, and the
 * session must be left with the cache and logits of the chosen answer.
 *
 * On the bundled loom-tiny (plain-text questions: answers that end at <|end|>) and on a
 * random-weight model (answers cut off at n_predict); then the refusals: too many beams, a
 * prompt that ends inside a media block, an abort, a context too short.
 *
 * Joint CTC / attention search (ctc_logprobs) likewise, its naive twin scoring every answer
 * from scratch by the CTC forward variables over the answer with blanks between (Graves et
 * al. 2006), not by the search's incremental prefix states: on loom-tiny's transcripts with
 * its own CTC head and on random weights with random log-probabilities; then its refusals.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loom.h"
#include "tests/decoder_test_util.h"

#define MAX_T 64
#define MAX_B 8

typedef struct hyp { double score, att; int32_t t[MAX_T]; int n; } hyp;

/* Joint scoring: CTC log-probabilities [T][C] (blank C − 1) and their weight; lp NULL: off. */
typedef struct ctc_in { const float *lp; int T, C; double w; } ctc_in;
static const ctc_in no_ctc = {0};

static double lae(double a, double b)
{
    const double m = a > b ? a : b;
    return m == -INFINITY ? m : m + log(exp(a - m) + exp(b - m));
}

/* log p_CTC of h[0..n) as a prefix of the transcript (prefix 1) or as all of it (prefix 0):
 * forward variables a[s] over h with blanks around (s even: blank, s odd: h[(s-1)/2]). A
 * prefix ends where its last token's first frame is: the sum over t of entering state 2n−1
 * at t from another state. */
static double ctc_naive(const ctc_in *c, const int32_t *h, int n, int prefix)
{
    if (prefix && n == 0) return 0.0;
    const int S = 2 * n + 1, B = c->C - 1;
    double a[2 * MAX_T + 1], b[2 * MAX_T + 1], psi = -INFINITY;
#define LBL(s) ((s) % 2 ? h[((s) - 1) / 2] : B)
    for (int s = 0; s < S; s++) a[s] = s < 2 ? (double)c->lp[LBL(s)] : -INFINITY;
    if (n == 1) psi = a[1];
    for (int t = 1; t < c->T; t++) {
        const float *y = c->lp + (size_t)t * c->C;
        if (n > 0) {
            double in = a[S - 3];
            if (n > 1 && h[n - 1] != h[n - 2]) in = lae(in, a[S - 4]);
            psi = lae(psi, in + (double)y[h[n - 1]]);
        }
        for (int s = 0; s < S; s++) {
            double v = a[s];
            if (s >= 1) v = lae(v, a[s - 1]);
            if (s >= 3 && s % 2 && h[(s - 1) / 2] != h[(s - 3) / 2]) v = lae(v, a[s - 2]);
            b[s] = v + (double)y[LBL(s)];
        }
        memcpy(a, b, (size_t)S * sizeof *a);
    }
#undef LBL
    return prefix ? psi : n ? lae(a[S - 1], a[S - 2]) : a[0];
}

typedef struct answer { int32_t t[MAX_T]; int n; } answer;

static int keep(int32_t token, const char *piece, size_t len, void *user)
{
    (void)piece; (void)len;
    answer *a = user;
    if (a->n < MAX_T) a->t[a->n++] = token;
    return 0;
}

static int in_list(int32_t t, const int32_t *list, int n)
{
    for (int i = 0; i < n; i++) if (list[i] >= 0 && list[i] == t) return 1;
    return 0;
}

/* r's logits after the prompt (its first n_prompt positions) and toks[0..n). */
static int logits_after(loom_session *r, int32_t n_prompt, const float *l0, const int32_t *toks, int n, float *out, int V)
{
    if (n == 0) {
        memcpy(out, l0, (size_t)V * sizeof *out);
        return 0;
    }
    loom_session_truncate(r, n_prompt);
    for (int i = 0; i < n; i++)
        if (loom_session_decode(r, toks[i]) < 0) return -1;
    memcpy(out, loom_session_logits(r), (size_t)V * sizeof *out);
    return 0;
}

typedef struct cand { double score; int parent; int32_t token; double att; } cand;

static int by_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->parent != y->parent) return x->parent < y->parent ? -1 : 1;
    return (x->token > y->token) - (x->token < y->token);
}

/* The search, naively. r holds the prompt (n_prompt positions) and l0 its logits. */
static int naive_beam(loom_session *r, int V, const float *l0, int B, int n_max, const int32_t stop[2],
                      const int32_t skip[3], const ctc_in *ctc, answer *out, int *stopped)
{
    const int32_t n_prompt = loom_session_n_past(r);
    const int K = ctc->lp ? 2 * B : B;
    static hyp cur[MAX_B], nxt[MAX_B], fin;
    static cand cands[MAX_B * 2 * MAX_B];
    float *l = malloc((size_t)V * sizeof *l);
    if (!l) return -1;
    int n_open = 1, have_fin = 0, rc = 0;
    cur[0].score = cur[0].att = 0;
    cur[0].n = 0;
    *stopped = 0;
    out->n = 0;
    for (int t = 0; t < n_max && rc == 0; t++) {
        int nc = 0;
        for (int k = 0; k < n_open && rc == 0; k++) {
            if ((rc = logits_after(r, n_prompt, l0, cur[k].t, cur[k].n, l, V)) < 0) break;
            float mx = -INFINITY;
            for (int i = 0; i < V; i++) if (l[i] > mx) mx = l[i];
            double s = 0;
            for (int i = 0; i < V; i++) s += exp((double)l[i] - (double)mx);
            const double lse = (double)mx + log(s);
            for (int j = 0; j < K; j++) {   /* the j-th best allowed token: repeated argmax */
                int32_t best = -1;
                for (int32_t i = 0; i < V; i++) {
                    int taken = in_list(i, skip, 3) || (ctc->lp && i >= ctc->C - 1 && !in_list(i, stop, 2));
                    for (int q = nc - j; q < nc && !taken; q++) taken = cands[q].token == i;
                    if (!taken && (best < 0 || l[i] > l[best])) best = i;
                }
                if (best < 0) break;   /* fewer allowed tokens than K */
                const double att = cur[k].att + ((double)l[best] - lse);
                double score = att;
                if (ctc->lp) {
                    static int32_t h[MAX_T + 1];
                    memcpy(h, cur[k].t, (size_t)cur[k].n * sizeof *h);
                    h[cur[k].n] = best;
                    const int ended = in_list(best, stop, 2);
                    score = (1 - ctc->w) * att + ctc->w * ctc_naive(ctc, h, cur[k].n + !ended, !ended);
                }
                cands[nc++] = (cand){score, k, best, att};
            }
        }
        if (rc < 0) break;
        qsort(cands, (size_t)nc, sizeof *cands, by_score);
        int n_next = 0;
        for (int c = 0; c < nc; c++) {
            if (in_list(cands[c].token, stop, 2)) {
                if (!have_fin || cands[c].score > fin.score) {
                    fin = cur[cands[c].parent];
                    fin.score = cands[c].score;
                    fin.att = cands[c].att;
                    have_fin = 1;
                }
            } else if (n_next < B) {
                nxt[n_next] = cur[cands[c].parent];
                nxt[n_next].t[nxt[n_next].n++] = cands[c].token;
                nxt[n_next].att = cands[c].att;
                nxt[n_next++].score = cands[c].score;
            }
        }
        if (n_next == 0 || (have_fin && fin.score >= nxt[0].score)) break;
        if (t + 1 == n_max) {
            if (!have_fin) *out = (answer){.n = nxt[0].n}, memcpy(out->t, nxt[0].t, sizeof nxt[0].t);
            break;
        }
        memcpy(cur, nxt, sizeof cur);
        n_open = n_next;
    }
    if (rc == 0 && have_fin) {
        out->n = fin.n;
        memcpy(out->t, fin.t, sizeof fin.t);
        *stopped = 1;
    }
    free(l);
    return rc;
}

/* s and r hold the same prompt. Beam search on s against the naive one on r; then s's
 * cache and logits against r fed the answer (all of it when it stopped, else all but the
 * last token). */
static void compare(const char *tag, const loom_model *m, loom_session *s, loom_session *r, int B, int n_predict,
                    int stop_at_eos, int media_blocks, int want_stop, const ctc_in *ctc)
{
    const int V = loom_model_n_vocab(m);
    const int32_t n_prompt = loom_session_n_past(s);
    const int32_t stop[2] = {stop_at_eos ? loom_token_eos(m) : -1, stop_at_eos ? loom_token_eot(m) : -1};
    int32_t skip[3] = {-1, -1, -1};
    if (media_blocks) {
        skip[0] = loom_token_find(m, "<|image|>");
        skip[1] = loom_token_find(m, "<|audio|>");
        skip[2] = loom_token_find(m, "<|video|>");
    }
    float *l0 = malloc((size_t)V * sizeof *l0), *lr = malloc((size_t)V * sizeof *lr);
    if (!l0 || !lr) { CHECK(0, "%s: out of memory", tag); free(l0); free(lr); return; }
    memcpy(l0, loom_session_logits(r), (size_t)V * sizeof *l0);
    answer want = {.n = 0}, got = {.n = 0};
    int stopped = 0;
    CHECK(naive_beam(r, V, l0, B, n_predict, stop, skip, ctc, &want, &stopped) == 0, "%s: naive search", tag);
    loom_generate_params gp = loom_generate_default_params();
    gp.n_beams = B;
    gp.ctc_logprobs = ctc->lp;
    gp.ctc_frames = ctc->T;
    gp.ctc_classes = ctc->C;
    gp.ctc_weight = (float)ctc->w;
    gp.n_predict = n_predict;
    gp.stop_at_eos = stop_at_eos;
    gp.media_blocks = media_blocks;
    gp.on_token = keep;
    gp.user_data = &got;
    loom_generate_stats st = {0};
    const int64_t n = loom_session_generate(s, NULL, 0, gp, &st);
    CHECK(n == want.n + stopped, "%s: %lld tokens generated, want %d (+%d stop): %s", tag, (long long)n, want.n,
          stopped, loom_session_error(s));
    CHECK(stopped == want_stop, "%s: the answer %s", tag, want_stop ? "should stop" : "should be cut off");
    CHECK(got.n == want.n && !memcmp(got.t, want.t, (size_t)want.n * sizeof *want.t), "%s: answer differs from the "
          "naive search (%d vs %d tokens)", tag, got.n, want.n);
    const int cached = stopped ? want.n : want.n - 1;
    CHECK(loom_session_n_past(s) == n_prompt + cached, "%s: %d cached, want %d", tag, loom_session_n_past(s),
          n_prompt + cached);
    CHECK(logits_after(r, n_prompt, l0, want.t, cached, lr, V) == 0 && loom_session_logits(s) &&
          !memcmp(loom_session_logits(s), lr, (size_t)V * sizeof *lr), "%s: logits after the answer", tag);
    printf("%s%s: %d beams, %d tokens%s\n", tag, ctc->lp ? " with CTC" : "", B, want.n, stopped ? " + stop" : " (cut off)");
    free(l0);
    free(lr);
}

/* The plain-text task of the bundled model: its answers end at <|end|>. */
static void on_tiny(void)
{
    char err[512];
    loom_model *m = NULL;
    if (loom_model_load("../models/loom-tiny.gguf", loom_model_default_params(), &m, err, sizeof err) < 0) {
        CHECK(0, "%s", err);
        return;
    }
    const char *questions[] = {
        "Picture this: a small blue square at the top. how many shapes are there?",
        "Picture this: a large red circle in the center and a small green star on the left. what colour is the star?",
        "Picture this: two yellow rings at the bottom. where are the rings?",
    };
    loom_session *s = test_session(m, 256, 64, 2), *r = test_session(m, 256, 64, 2);
    loom_prompt *p = NULL;
    CHECK(loom_prompt_create(m, &p) == 0, "prompt");
    for (int q = 0; q < 3 && s && r && p; q++) {
        loom_prompt_clear(p);
        int rc = loom_prompt_add_special(p, "<|bos|>") | loom_prompt_add_special(p, "<|user|>") |
                 loom_prompt_add_text(p, questions[q]) | loom_prompt_add_special(p, "<|end|>") |
                 loom_prompt_add_special(p, "<|assistant|>");
        for (int B = 2; B <= 8 && rc == 0; B *= 2) {
            char tag[64];
            snprintf(tag, sizeof tag, "loom-tiny question %d", q);
            loom_session_truncate(s, 0);
            loom_session_truncate(r, 0);
            CHECK(loom_session_append_prompt(s, p) == 0 && loom_session_append_prompt(r, p) == 0, "%s: prompt", tag);
            compare(tag, m, s, r, B, 40, 1, 1, 1, &no_ctc);
        }
        CHECK(rc == 0, "prompt %d", q);
    }
    /* transcripts: longer answers, where beams part and rejoin */
    loom_mmproj *mp = NULL;
    CHECK(loom_mmproj_load("../models/loom-tiny-mmproj.gguf", loom_mmproj_default_params(), &mp, err, sizeof err) == 0,
          "%s", err);
    const int C = loom_mmproj_ctc_classes(mp);
    CHECK(C > 0, "the bundled media file has a CTC head");
    for (int i = 0; i < 3 && s && r && p && mp; i++) {
        char path[64], tag[64];
        float *pcm = NULL, *rows = NULL, *lp = NULL;
        size_t n = 0;
        snprintf(path, sizeof path, "data/tiny/speech_%02d.flac", i);
        loom_prompt_clear(p);
        int rc = loom_audio_load(path, NULL, &pcm, &n, err, sizeof err);
        const int64_t T = rc ? 0 : loom_mmproj_audio_rows(mp, (int64_t)n);
        rc |= loom_prompt_add_special(p, "<|bos|>") | loom_prompt_add_special(p, "<|user|>");
        if (!rc) rc |= loom_prompt_add_audio(p, mp, pcm, (int64_t)n);
        rc |= loom_prompt_add_text(p, "Transcribe the audio.") | loom_prompt_add_special(p, "<|end|>") |
              loom_prompt_add_special(p, "<|assistant|>");
        if (!rc && C > 0 && T > 0) {   /* the clip read by the CTC head */
            rows = malloc((size_t)T * (size_t)loom_mmproj_n_embd(mp) * sizeof *rows);
            lp = malloc((size_t)T * (size_t)C * sizeof *lp);
            rc = !rows || !lp || loom_mmproj_encode_audio(mp, pcm, (int64_t)n, rows) < 0 ||
                 loom_mmproj_audio_ctc(mp, rows, T, lp) < 0;
        }
        loom_audio_pcm_free(&pcm);
        CHECK(rc == 0, "%s: %s %s", path, err, loom_mmproj_error(mp));
        snprintf(tag, sizeof tag, "loom-tiny transcript %d", i);
        for (int B = 3; B <= 6 && rc == 0 && i < 2; B += 3) {
            loom_session_truncate(s, 0);
            loom_session_truncate(r, 0);
            CHECK(loom_session_append_prompt(s, p) == 0 && loom_session_append_prompt(r, p) == 0, "%s: prompt", tag);
            compare(tag, m, s, r, B, 40, 1, 1, 1, &no_ctc);
        }
        for (int B = 2; B <= 4 && rc == 0 && lp; B += 2) {   /* the CTC weight loom transcribe uses, and more */
            const ctc_in ctc = {lp, (int)T, C, B == 2 ? 0.6 : 0.3};
            loom_session_truncate(s, 0);
            loom_session_truncate(r, 0);
            CHECK(loom_session_append_prompt(s, p) == 0 && loom_session_append_prompt(r, p) == 0, "%s: prompt", tag);
            compare(tag, m, s, r, B, 40, 1, 1, 1, &ctc);
        }
        free(rows);
        free(lp);
    }
    loom_mmproj_free(&mp);
    /* a prompt that ends inside a media block: beams write text only */
    if (s && p) {
        loom_prompt_clear(p);
        loom_prompt_add_special(p, "<|bos|>");
        loom_prompt_add_special(p, "<|user|>");
        loom_prompt_add_text(p, "Draw a red circle.");
        loom_prompt_add_special(p, "<|end|>");
        loom_prompt_add_special(p, "<|assistant|>");
        loom_prompt_add_special(p, "<|image|>");
        loom_session_truncate(s, 0);
        CHECK(loom_session_append_prompt(s, p) == 0, "block prompt");
        const int32_t past = loom_session_n_past(s);
        loom_generate_params gp = loom_generate_default_params();
        gp.n_beams = 2;
        CHECK(loom_session_generate(s, NULL, 0, gp, NULL) == LOOM_ERR_INVALID_ARG &&
              strstr(loom_session_error(s), "media block"), "beams inside a media block refused: %s",
              loom_session_error(s));
        CHECK(loom_session_n_past(s) == past, "refusal changes nothing");
    }
    loom_prompt_free(&p);
    loom_session_free(&s);
    loom_session_free(&r);
    loom_model_free(&m);
}

/* [T][C] random log-probabilities (a fixed generator: the same every run). */
static float *random_ctc(int T, int C)
{
    float *lp = malloc((size_t)T * (size_t)C * sizeof *lp);
    uint32_t x = 12345;
    for (int t = 0; lp && t < T; t++) {
        double sum = 0;
        for (int c = 0; c < C; c++) {
            x = x * 1664525u + 1013904223u;
            sum += exp(lp[t * C + c] = 3.0f * (float)(x >> 8) / 16777216.0f);
        }
        for (int c = 0; c < C; c++) lp[t * C + c] -= (float)log(sum);
    }
    return lp;
}

/* CTC scores refused: without beams, too many classes, no frames, a weight past 1; each
 * refusal leaves the session's 12-token prompt as it was. */
static void ctc_refusals(loom_session *s, const int32_t *prompt, const float *lp, int T, int C, int V)
{
    loom_generate_params gp = loom_generate_default_params();
    CHECK(loom_session_prompt(s, prompt, 12, NULL) == 0, "prompt");
    gp.ctc_logprobs = lp;
    gp.ctc_frames = T;
    gp.ctc_classes = C;
    gp.n_beams = 1;
    CHECK(loom_session_generate(s, NULL, 0, gp, NULL) == LOOM_ERR_INVALID_ARG && loom_session_n_past(s) == 12 &&
          strstr(loom_session_error(s), "beam"), "CTC without beams refused: %s", loom_session_error(s));
    gp.n_beams = 2;
    gp.ctc_classes = V + 2;
    CHECK(loom_session_generate(s, NULL, 0, gp, NULL) == LOOM_ERR_INVALID_ARG && loom_session_n_past(s) == 12 &&
          strstr(loom_session_error(s), "classes"), "%d CTC classes refused: %s", V + 2, loom_session_error(s));
    gp.ctc_classes = C;
    gp.ctc_frames = 0;
    CHECK(loom_session_generate(s, NULL, 0, gp, NULL) == LOOM_ERR_INVALID_ARG && loom_session_n_past(s) == 12,
          "0 CTC frames refused: %s", loom_session_error(s));
    gp.ctc_frames = T;
    gp.ctc_weight = 1.5f;
    CHECK(loom_session_generate(s, NULL, 0, gp, NULL) == LOOM_ERR_INVALID_ARG && loom_session_n_past(s) == 12 &&
          strstr(loom_session_error(s), "weight"), "CTC weight 1.5 refused: %s", loom_session_error(s));
    loom_session_truncate(s, 0);
}

/* A random-weight model: answers run to n_predict; and the refusals. */
static void on_synth(void)
{
    char path[512];
    lm_synth_params sp = lm_synth_tiny_params();
    loom_model *m = synth_model("beam", &sp, path, sizeof path);
    if (!m) return;
    const int V = loom_model_n_vocab(m);
    int32_t prompt[12];
    for (int i = 0; i < 12; i++) prompt[i] = (int32_t)((i * 37 + 11) % (V - 3) + 3);
    loom_session *s = test_session(m, 64, 16, 1), *r = test_session(m, 64, 16, 1);
    for (int B = 2; B <= 8 && s && r; B += 3) {
        char tag[64];
        snprintf(tag, sizeof tag, "random weights, %d beams", B);
        CHECK(loom_session_prompt(s, prompt, 12, NULL) == 0 && loom_session_prompt(r, prompt, 12, NULL) == 0, "prompt");
        compare(tag, m, s, r, B, 7, 0, 0, 0, &no_ctc);
        loom_session_truncate(s, 0);
        loom_session_truncate(r, 0);
    }
    /* random CTC log-probabilities over the first half of the vocabulary, and over 3 tokens
     * only: every one a candidate, so answers repeat tokens (which CTC must read apart) */
    enum { T = 9 };
    for (int round = 0; round < 2 && s && r; round++) {
        const int C = round ? 4 : V / 2;
        float *lp = random_ctc(T, C);
        for (int B = 2; B <= 8 && lp; B += 3) {
            char tag[64];
            snprintf(tag, sizeof tag, "random weights, %d CTC classes, %d beams", C, B);
            const ctc_in ctc = {lp, T, C, round ? 1.0 : 0.5};
            CHECK(loom_session_prompt(s, prompt, 12, NULL) == 0 && loom_session_prompt(r, prompt, 12, NULL) == 0,
                  "prompt");
            compare(tag, m, s, r, B, 7, 0, 0, 0, &ctc);
            loom_session_truncate(s, 0);
            loom_session_truncate(r, 0);
        }
        if (lp && round == 0) ctc_refusals(s, prompt, lp, T, C, V);
        free(lp);
    }
    if (s) {
        loom_generate_params gp = loom_generate_default_params();
        CHECK(loom_session_prompt(s, prompt, 12, NULL) == 0, "prompt");
        gp.n_beams = 9;
        CHECK(loom_session_generate(s, NULL, 0, gp, NULL) == LOOM_ERR_INVALID_ARG && loom_session_n_past(s) == 12,
              "9 beams refused: %s", loom_session_error(s));
        gp.n_beams = -2;
        CHECK(loom_session_generate(s, NULL, 0, gp, NULL) == LOOM_ERR_INVALID_ARG && loom_session_n_past(s) == 12,
              "-2 beams refused: %s", loom_session_error(s));
        volatile int stop_now = 1;
        gp.n_beams = 3;
        gp.abort_flag = &stop_now;
        CHECK(loom_session_generate(s, NULL, 0, gp, NULL) == LOOM_ERR_ABORTED && loom_session_n_past(s) == 12,
              "abort: %s", loom_session_error(s));
        gp.abort_flag = NULL;
        gp.stop_at_eos = 0;
        gp.n_predict = 100;   /* 12 + 100 > n_ctx 64 */
        answer got = {.n = 0};
        gp.on_token = keep;
        gp.user_data = &got;
        CHECK(loom_session_generate(s, NULL, 0, gp, NULL) == LOOM_ERR_CONTEXT_FULL, "context full: %s",
              loom_session_error(s));
        CHECK(got.n == 64 - 12 + 1 && loom_session_n_past(s) == 64, "context full after %d tokens (greedy's 53), %d "
              "cached", got.n, loom_session_n_past(s));
    }
    loom_session_free(&s);
    loom_session_free(&r);
    loom_model_free(&m);
    unlink(path);
}

int main(void)
{
    on_tiny();
    on_synth();
    return finish();
}
