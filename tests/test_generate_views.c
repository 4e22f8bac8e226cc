/*
 * Two views of one question (loom_generate_params.view2, what `loom caption` does with a
 * picture and its mirror image) against a naive loop written here: each step the token of
 * highest summed log-softmax of the two sessions' logits, fed to each by its own
 * loom_session_decode (the generator feeds both in one stacked step, which gives the same
 * logits bit for bit: test_decode_pair). So the answers must be identical, and both sessions
 * must be left holding them. Two views of the same context give the plain greedy answer.
 * With view2_tokens (loom describe's mirror: " left" is " right" in view 2) the twin reads and
 * feeds view 2 token map[t]. An answer's opening (loom_generate_params.opening) against its
 * own naive twin, in one view and two. Then the refusals: the session itself as view2, beams, a view
 * with nothing cached, another model's session, a map entry that is no token.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loom.h"
#include "tests/decoder_test_util.h"

#define MAX_T 32

static int keep(int32_t token, const char *piece, size_t len, void *user)
{
    (void)piece, (void)len;
    int32_t *t = user;   /* t[0]: count, then the tokens */
    if (t[0] < MAX_T) t[1 + t[0]++] = token;
    return 0;
}

/* The naive twin: n steps (no stop tokens), decoded one session at a time; b reads token t
 * as map[t] (map NULL: t). */
static int naive(loom_session *a, loom_session *b, const int32_t *map, int V, int n, int32_t *out)
{
    for (int i = 0; i < n; i++) {
        const float *la = loom_session_logits(a), *lb = loom_session_logits(b);
        const double za = ref_log_sum_exp(la, V), zb = ref_log_sum_exp(lb, V);
        int best = 0;
        double bv = -INFINITY;
        for (int t = 0; t < V; t++) {
            const double v = ((double)la[t] - za) + ((double)lb[map ? map[t] : t] - zb);
            if (v > bv) bv = v, best = t;
        }
        out[i] = best;
        if (i + 1 < n && (loom_session_decode(a, best) < 0 || loom_session_decode(b, map ? map[best] : best) < 0))
            return -1;
    }
    return 0;
}

/* The naive twin of an opening (loom_generate_params.opening): n steps, a alone or with b (NULL:
 * one view, raw logits), while the opening lasts only its allowed tokens. */
static int naive_opening(loom_session *a, loom_session *b, const int32_t *open, int n_open, int V, int n, int32_t *out)
{
    int next = 0;
    for (int i = 0; i < n; i++) {
        const float *la = loom_session_logits(a), *lb = b ? loom_session_logits(b) : NULL;
        const double za = b ? ref_log_sum_exp(la, V) : 0, zb = b ? ref_log_sum_exp(lb, V) : 0;
        int best = -1;
        double bv = -INFINITY;
        for (int t = 0; t < V; t++) {
            int allowed = next >= n_open, k = next;
            while (!allowed && k < (next ? n_open : 1)) allowed = open[k++] == t;
            const double v = ((double)la[t] - za) + (b ? (double)lb[t] - zb : 0.0);
            if (allowed && v > bv) bv = v, best = t;
        }
        for (int k = next; next < n_open && k < n_open; k++)   /* the opening goes on after it */
            if (open[k] == best) { next = k + 1; break; }
        out[i] = best;
        if (i + 1 < n && (loom_session_decode(a, best) < 0 || (b && loom_session_decode(b, best) < 0))) return -1;
    }
    return 0;
}

static loom_generate_params params(int n, int32_t *got, loom_session *view2)
{
    loom_generate_params gp = loom_generate_default_params();
    gp.n_predict = n;
    gp.stop_at_eos = 0;
    gp.media_blocks = 0;
    gp.on_token = keep;
    gp.user_data = got;
    gp.view2 = view2;
    got[0] = 0;
    return gp;
}

static loom_generate_params opened(loom_generate_params gp, const int32_t *open, int n_open)
{
    gp.opening = open;
    gp.n_opening = n_open;
    return gp;
}

static int32_t arg(const float *l, int V, int sign)
{
    int32_t best = 0;
    for (int32_t t = 1; t < V; t++)
        if (sign * l[t] > sign * l[best]) best = t;
    return best;
}

int main(void)
{
    char path[512], path2[512];
    lm_synth_params sp = lm_synth_tiny_params();
    loom_model *m = synth_model("views", &sp, path, sizeof path);
    if (!m) return finish();
    const int V = loom_model_n_vocab(m);
    enum { N = 9, P = 12 };
    int32_t pa[P], pb[P];
    for (int i = 0; i < P; i++) {
        pa[i] = (int32_t)((i * 37 + 11) % (V - 3) + 3);
        pb[i] = (int32_t)((i * 53 + 5) % (V - 3) + 3);
    }
    loom_session *a = test_session(m, 64, 16, 1), *b = test_session(m, 64, 16, 1), *ra = test_session(m, 64, 16, 1),
                 *rb = test_session(m, 64, 16, 1);
    if (!a || !b || !ra || !rb) return finish();

    /* two contexts: the generator equals the naive twin, token for token */
    int32_t got[1 + MAX_T], want[MAX_T];
    loom_generate_params gp0;
    CHECK(loom_session_prompt(a, pa, P, NULL) == 0 && loom_session_prompt(b, pb, P - 3, NULL) == 0 &&
          loom_session_prompt(ra, pa, P, NULL) == 0 && loom_session_prompt(rb, pb, P - 3, NULL) == 0, "prompts");
    loom_generate_stats st = {0};
    int64_t n = loom_session_generate(a, NULL, 0, params(N, got, b), &st);
    CHECK(n == N && got[0] == N && st.n_generated == N, "two views: %lld tokens (%s)", (long long)n, loom_session_error(a));
    CHECK(naive(ra, rb, NULL, V, N, want) == 0, "naive twin");
    int same = got[0] == N;
    for (int i = 0; same && i < N; i++) same = got[1 + i] == want[i];
    CHECK(same, "two views: the answer is the naive twin's");
    /* both hold the answer but its last token (as plain generation leaves a session) */
    CHECK(loom_session_n_past(a) == P + N - 1 && loom_session_n_past(b) == P - 3 + N - 1, "both sessions advanced: %d, %d",
          loom_session_n_past(a), loom_session_n_past(b));
    const float *la = loom_session_logits(a), *lra = loom_session_logits(ra), *lb = loom_session_logits(b),
                *lrb = loom_session_logits(rb);
    CHECK(la && lra && lb && lrb && !memcmp(la, lra, (size_t)V * sizeof *la) && !memcmp(lb, lrb, (size_t)V * sizeof *lb),
          "both sessions' logits are the naive twin's");
    /* one view differs from two: the second view counts (else the check above proves little) */
    loom_session_truncate(ra, 0);
    CHECK(loom_session_prompt(ra, pa, P, NULL) == 0, "prompt");
    int32_t alone[1 + MAX_T];
    CHECK(loom_session_generate(ra, NULL, 0, params(N, alone, NULL), NULL) == N, "one view");
    int differs = 0;
    for (int i = 0; i < N; i++) differs |= alone[1 + i] != got[1 + i];
    CHECK(differs, "the second view changed the answer of these random weights");

    /* view2_tokens: a map that swaps every token below V/2 with one above */
    int32_t *map = malloc((size_t)V * sizeof *map);
    if (!map) return finish();
    for (int t = 0; t < V; t++) map[t] = V - 1 - t;
    int32_t mapped[1 + MAX_T];
    loom_session *views[4] = {a, b, ra, rb};
    for (int k = 0; k < 4; k++) loom_session_truncate(views[k], 0);
    CHECK(loom_session_prompt(a, pa, P, NULL) == 0 && loom_session_prompt(b, pb, P - 3, NULL) == 0 &&
          loom_session_prompt(ra, pa, P, NULL) == 0 && loom_session_prompt(rb, pb, P - 3, NULL) == 0, "prompts");
    gp0 = params(N, mapped, b);
    gp0.view2_tokens = map;
    CHECK(loom_session_generate(a, NULL, 0, gp0, NULL) == N, "two views with a token map: %s", loom_session_error(a));
    CHECK(naive(ra, rb, map, V, N, want) == 0, "naive twin with the map");
    same = differs = 0;
    for (int i = 0; i < N; i++) same += mapped[1 + i] == want[i], differs |= mapped[1 + i] != got[1 + i];
    CHECK(same == N, "two views with a token map: the naive twin's answer (%d of %d tokens)", same, N);
    CHECK(!memcmp(loom_session_logits(b), loom_session_logits(rb), (size_t)V * sizeof(float)),
          "view 2 was fed the mapped tokens (its logits are the twin's)");
    CHECK(differs, "the token map changed the answer");

    /* the same context twice: the plain greedy answer */
    loom_session_truncate(a, 0);
    loom_session_truncate(b, 0);
    CHECK(loom_session_prompt(a, pa, P, NULL) == 0 && loom_session_prompt(b, pa, P, NULL) == 0, "prompts");
    CHECK(loom_session_generate(a, NULL, 0, params(N, got, b), NULL) == N, "two equal views");
    same = 1;
    for (int i = 0; i < N; i++) same &= got[1 + i] == alone[1 + i];
    CHECK(same, "two equal views give the greedy answer");

    /* refusals: nothing generated, both sessions unchanged */
    loom_session_truncate(a, 0);
    loom_session_truncate(b, 0);
    CHECK(loom_session_prompt(a, pa, P, NULL) == 0, "prompt");
    CHECK(loom_session_generate(a, NULL, 0, params(N, got, b), NULL) == LOOM_ERR_INVALID_ARG && got[0] == 0 &&
          strstr(loom_session_error(a), "view2 has nothing cached") && loom_session_n_past(a) == P,
          "an empty view2: %s", loom_session_error(a));
    CHECK(loom_session_generate(a, NULL, 0, params(N, got, a), NULL) == LOOM_ERR_INVALID_ARG && got[0] == 0 &&
          strstr(loom_session_error(a), "another session"), "the session as its own view2: %s", loom_session_error(a));
    CHECK(loom_session_prompt(b, pb, P, NULL) == 0, "prompt");
    loom_generate_params gp = params(N, got, b);
    gp.n_beams = 2;
    CHECK(loom_session_generate(a, NULL, 0, gp, NULL) == LOOM_ERR_INVALID_ARG && got[0] == 0 &&
          strstr(loom_session_error(a), "2 beams") && loom_session_n_past(a) == P && loom_session_n_past(b) == P,
          "beams with two views: %s", loom_session_error(a));
    map[3] = V;
    gp = params(N, got, b);
    gp.view2_tokens = map;
    CHECK(loom_session_generate(a, NULL, 0, gp, NULL) == LOOM_ERR_INVALID_ARG && got[0] == 0 &&
          strstr(loom_session_error(a), "view2_tokens[3]") && loom_session_n_past(a) == P && loom_session_n_past(b) == P,
          "a token map entry out of range: %s", loom_session_error(a));
    map[3] = -1;
    CHECK(loom_session_generate(a, NULL, 0, gp, NULL) == LOOM_ERR_INVALID_ARG && got[0] == 0, "a negative map entry");
    free(map);
    /* an answer's opening (loom_generate_params.opening, loom describe's object that changes)
       against its naive twin: an opening built so that its second token is the least likely
       one and its third the likeliest must skip the second */
    loom_session_truncate(a, 0);
    loom_session_truncate(b, 0);
    int32_t plain[1 + MAX_T];
    /* the opening: o0 not the greedy first token; after o0, o1 the least likely and o2 the
       likeliest token (one view), o3 another */
    CHECK(loom_session_prompt(ra, pa, P, NULL) == 0, "prompt");
    CHECK(loom_session_generate(ra, NULL, 0, params(N, plain, NULL), NULL) == N, "plain greedy");
    int32_t open[4];
    open[0] = (plain[1] + 7) % V;
    loom_session_truncate(ra, 0);
    CHECK(loom_session_prompt(ra, pa, P, NULL) == 0 && loom_session_decode(ra, open[0]) == 0, "after o0");
    open[1] = arg(loom_session_logits(ra), V, -1);
    open[2] = arg(loom_session_logits(ra), V, 1);
    open[3] = (open[2] + 1) % V == open[1] ? (open[2] + 2) % V : (open[2] + 1) % V;

    /* one view */
    loom_session_truncate(ra, 0);
    CHECK(loom_session_prompt(a, pa, P, NULL) == 0 && loom_session_prompt(ra, pa, P, NULL) == 0, "prompts");
    st = (loom_generate_stats){0};
    n = loom_session_generate(a, NULL, 0, opened(params(N, got, NULL), open, 4), &st);
    CHECK(n == N && got[0] == N && st.n_generated == N, "one view with an opening: %lld tokens (%s)", (long long)n,
          loom_session_error(a));
    CHECK(got[1] == open[0] && got[2] == open[2] && got[3] == open[3],
          "the opening's first token, then its second skipped for its likelier third, then its last: %d %d %d",
          got[1], got[2], got[3]);
    CHECK(naive_opening(ra, NULL, open, 4, V, N, want) == 0, "naive twin");
    same = 1;
    for (int i = 0; i < N; i++) same &= got[1 + i] == want[i];
    CHECK(same, "one view with an opening: the naive twin's answer");
    CHECK(loom_session_n_past(a) == P + N - 1, "the session holds the answer: %d", loom_session_n_past(a));
    CHECK(got[1] != plain[1], "the opening changed the answer");

    /* two views: the same rule over the summed log-probabilities */
    loom_session_truncate(a, 0);
    loom_session_truncate(ra, 0);
    CHECK(loom_session_prompt(a, pa, P, NULL) == 0 && loom_session_prompt(b, pb, P, NULL) == 0 &&
          loom_session_prompt(ra, pa, P, NULL) == 0 && loom_session_prompt(rb, pb, P, NULL) == 0, "prompts");
    n = loom_session_generate(a, NULL, 0, opened(params(N, got, b), open, 4), NULL);
    CHECK(n == N && got[0] == N, "two views with an opening: %s", loom_session_error(a));
    CHECK(naive_opening(ra, rb, open, 4, V, N, want) == 0, "naive twin, two views");
    same = 0;
    for (int i = 0; i < N; i++) same += got[1 + i] == want[i];
    CHECK(same == N && got[1] == open[0], "two views with an opening: the naive twin's answer (%d of %d)", same, N);

    /* an opening of one token is that token, then greedy */
    loom_session_truncate(a, 0);
    loom_session_truncate(ra, 0);
    CHECK(loom_session_prompt(a, pa, P, NULL) == 0 && loom_session_prompt(ra, pa, P, NULL) == 0, "prompts");
    CHECK(loom_session_generate(a, NULL, 0, opened(params(N, got, NULL), open + 1, 1), NULL) == N && got[1] == open[1],
          "a one-token opening is taken, however unlikely");
    CHECK(naive_opening(ra, NULL, open + 1, 1, V, N, want) == 0, "naive twin");
    same = 1;
    for (int i = 0; i < N; i++) same &= got[1 + i] == want[i];
    CHECK(same, "after a one-token opening, greedy");

    /* refusals: nothing generated */
    loom_session_truncate(a, 0);
    CHECK(loom_session_prompt(a, pa, P, NULL) == 0, "prompt");
    int32_t bad[2] = {open[0], V};
    CHECK(loom_session_generate(a, NULL, 0, opened(params(N, got, NULL), bad, 2), NULL) == LOOM_ERR_INVALID_ARG && got[0] == 0 &&
          strstr(loom_session_error(a), "opening[1]") && loom_session_n_past(a) == P,
          "an opening token out of range: %s", loom_session_error(a));
    bad[1] = -1;
    CHECK(loom_session_generate(a, NULL, 0, opened(params(N, got, NULL), bad, 2), NULL) == LOOM_ERR_INVALID_ARG && got[0] == 0,
          "a negative opening token");
    CHECK(loom_session_generate(a, NULL, 0, opened(params(N, got, NULL), NULL, 2), NULL) == LOOM_ERR_INVALID_ARG && got[0] == 0,
          "n_opening without tokens");
    CHECK(loom_session_generate(a, NULL, 0, opened(params(N, got, NULL), open, 0), NULL) == LOOM_ERR_INVALID_ARG && got[0] == 0,
          "tokens with n_opening 0");
    CHECK(loom_session_generate(a, NULL, 0, opened(params(N, got, NULL), open, 5000), NULL) == LOOM_ERR_INVALID_ARG && got[0] == 0,
          "n_opening over 4096");
    gp = opened(params(N, got, NULL), open, 4);
    gp.n_beams = 2;
    CHECK(loom_session_generate(a, NULL, 0, gp, NULL) == LOOM_ERR_INVALID_ARG && got[0] == 0 &&
          strstr(loom_session_error(a), "beams"), "an opening with beams: %s", loom_session_error(a));
    CHECK(loom_session_n_past(a) == P, "the refusals left the session as it was");

    loom_model *m2 = synth_model("views2", &sp, path2, sizeof path2);
    loom_session *o = m2 ? test_session(m2, 64, 16, 1) : NULL;
    if (o) {
        CHECK(loom_session_prompt(o, pa, P, NULL) == 0, "prompt");
        CHECK(loom_session_generate(a, NULL, 0, params(N, got, o), NULL) == LOOM_ERR_INVALID_ARG && got[0] == 0 &&
              strstr(loom_session_error(a), "same model"), "another model's session: %s", loom_session_error(a));
    }
    loom_session_free(&o);
    loom_model_free(&m2);
    unlink(path2);
    loom_session_free(&a);
    loom_session_free(&b);
    loom_session_free(&ra);
    loom_session_free(&rb);
    loom_model_free(&m);
    unlink(path);
    return finish();
}
