/*
 * Sampler tests: greedy = argmax, top-k / top-p / min-p keep exactly the expected sets,
 * penalties change exactly the right logits (llama.cpp formulas), masks hold, the RNG is
 * reproducible, and draws follow softmax(logits / T) (chi-square test).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/sampler.h"
#include "tests/check.h"

/* Histogram of `draws` samples. */
static void histogram(lm_sampler *s, const float *logits, int n, int draws, int *hist)
{
    memset(hist, 0, sizeof(int) * (size_t)n);
    for (int i = 0; i < draws; i++) {
        int32_t t = lm_sampler_sample(s, logits);
        if (t >= 0 && t < n) hist[t]++;
    }
}

/* Pearson chi-square of hist against probabilities p over the ids where p > 0; also counts
 * draws that landed where p == 0 (must be none). */
static double chi2(const int *hist, const double *p, int n, int draws, int *outside, int *df)
{
    double x = 0;
    *outside = 0; *df = -1;
    for (int i = 0; i < n; i++) {
        if (p[i] <= 0) { *outside += hist[i]; continue; }
        double e = p[i] * draws;
        x += (hist[i] - e) * (hist[i] - e) / e;
        (*df)++;
    }
    return x;
}

/* chi-square critical values at p = 0.001 for df = 1..9 */
static const double CRIT[] = { 0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88 };

static void test_greedy(void)
{
    lm_sampler *s = lm_sampler_create(lm_sampler_default_params(), 1000);
    uint64_t st = 5;
    float l[1000];
    int ok = 1;
    for (int trial = 0; trial < 200; trial++) {
        int best = 0;
        for (int i = 0; i < 1000; i++) {
            l[i] = lm_rng_uniform(&st) * 20 - 10;
            if (l[i] > l[best]) best = i;
        }
        ok &= lm_sampler_sample(s, l) == best;
    }
    CHECK(ok, "greedy returns the argmax in 200 random trials");
    for (int i = 0; i < 1000; i++) l[i] = 1.0f;
    CHECK(lm_sampler_sample(s, l) == 0, "greedy tie → lowest id");
    lm_sampler_free(&s);
    CHECK(s == NULL, "free sets NULL");
    lm_sampler_free(&s);
}

/* Logits with known probabilities (softmax of log p). */
static void set_probs(float *l, const double *p, int n)
{
    for (int i = 0; i < n; i++) l[i] = p[i] > 0 ? (float)log(p[i]) : -1e30f;
}

static void run_dist(const char *what, lm_sampler_params prm, const float *l, const double *expect, int n)
{
    enum { DRAWS = 200000 };
    lm_sampler *s = lm_sampler_create(prm, n);
    int hist[64], outside, df;
    histogram(s, l, n, DRAWS, hist);
    double x = chi2(hist, expect, n, DRAWS, &outside, &df);
    CHECK(outside == 0, "%s: %d draws outside the kept set", what, outside);
    int all_seen = 1;
    for (int i = 0; i < n; i++) if (expect[i] > 0 && hist[i] == 0) all_seen = 0;
    CHECK(all_seen, "%s: every kept id is drawn", what);
    if (df >= 1) CHECK(x < CRIT[df], "%s: chi2 = %.2f >= %.2f (df %d)", what, x, CRIT[df], df);
    printf("%-34s chi2 = %6.2f (df %d, p=0.001 bound %.2f), %d draws\n", what, x, df, df >= 1 ? CRIT[df] : 0, DRAWS);
    lm_sampler_free(&s);
}

static void test_distributions(void)
{
    const int n = 8;
    float l[8];
    const double base[8] = { 0.30, 0.20, 0.15, 0.12, 0.10, 0.07, 0.04, 0.02 };
    double e[8];
    set_probs(l, base, n);

    /* temperature: p ∝ base^(1/T) */
    lm_sampler_params p = lm_sampler_default_params();
    p.temperature = 0.7f; p.seed = 11;
    double z = 0;
    for (int i = 0; i < n; i++) z += e[i] = pow(base[i], 1 / 0.7);
    for (int i = 0; i < n; i++) e[i] /= z;
    run_dist("softmax(logits/0.7)", p, l, e, n);

    /* top-k 3: the three largest, renormalised */
    p = lm_sampler_default_params();
    p.temperature = 1.0f; p.top_k = 3; p.seed = 12;
    for (int i = 0; i < n; i++) e[i] = i < 3 ? base[i] / 0.65 : 0;
    run_dist("top-k 3", p, l, e, n);

    /* top-p 0.62: cumulative .30 .50 .65 → smallest prefix reaching 0.62 is 3 ids */
    p = lm_sampler_default_params();
    p.temperature = 1.0f; p.top_p = 0.62f; p.seed = 13;
    run_dist("top-p 0.62", p, l, e, n);

    /* min-p 0.3: keep p >= 0.3 × 0.30 = 0.09 → 5 ids */
    p = lm_sampler_default_params();
    p.temperature = 1.0f; p.min_p = 0.3f; p.seed = 14;
    z = 0.30 + 0.20 + 0.15 + 0.12 + 0.10;
    for (int i = 0; i < n; i++) e[i] = i < 5 ? base[i] / z : 0;
    run_dist("min-p 0.3", p, l, e, n);

    /* everything at once: top-k 6 → top-p 0.8 (.30 .50 .65 .77 .87 → 5 ids) → min-p 0.4
     * (≥ 0.12: 4 ids) → T = 2 */
    p = lm_sampler_default_params();
    p.temperature = 2.0f; p.top_k = 6; p.top_p = 0.8f; p.min_p = 0.4f; p.seed = 15;
    z = 0;
    for (int i = 0; i < n; i++) z += e[i] = i < 4 ? sqrt(base[i]) : 0;
    for (int i = 0; i < n; i++) e[i] /= z;
    run_dist("top-k 6, top-p .8, min-p .4, T 2", p, l, e, n);

    /* top-k exact set on a large vocabulary with shuffled logits */
    enum { V = 5000 };
    static float big[V];
    uint64_t st = 99;
    for (int i = 0; i < V; i++) big[i] = lm_rng_uniform(&st) * 4;
    static int order[V];
    for (int i = 0; i < V; i++) order[i] = i;
    for (int i = 0; i < V; i++)  /* selection of the true top 40 by brute force */
        for (int j = i + 1; j < V && i < 40; j++)
            if (big[order[j]] > big[order[i]]) { int t = order[i]; order[i] = order[j]; order[j] = t; }
    static char in_top[V];
    memset(in_top, 0, sizeof in_top);
    for (int i = 0; i < 40; i++) in_top[order[i]] = 1;
    p = lm_sampler_default_params();
    p.temperature = 5.0f; p.top_k = 40; p.seed = 3;
    lm_sampler *s = lm_sampler_create(p, V);
    static int hist[V];
    memset(hist, 0, sizeof hist);
    for (int i = 0; i < 10000; i++) hist[lm_sampler_sample(s, big)]++;   /* ≥ ~150 per kept id */
    int bad = 0, seen = 0;
    for (int i = 0; i < V; i++) { if (hist[i] && !in_top[i]) bad++; if (hist[i] && in_top[i]) seen++; }
    CHECK(bad == 0 && seen == 40, "top-k 40 of 5000: %d outside, %d of 40 seen", bad, seen);
    lm_sampler_free(&s);

    /* top-p exact set on the same 5000 logits: sort all (brute force, here in the test),
     * keep the smallest prefix whose probability reaches p; p is placed mid-way between two
     * prefix sums so float rounding cannot move the boundary */
    for (int i = 0; i < V; i++) order[i] = i;
    for (int i = 0; i < 120; i++)
        for (int j = i + 1; j < V; j++)
            if (big[order[j]] > big[order[i]]) { int t = order[i]; order[i] = order[j]; order[j] = t; }
    double zz = 0, cum = 0;
    for (int i = 0; i < V; i++) zz += exp(big[i] - big[order[0]]);
    double cums[121];
    for (int i = 0; i < 120; i++) { cum += exp(big[order[i]] - big[order[0]]) / zz; cums[i] = cum; }
    const int keep = 100;
    float top_p = (float)((cums[keep - 2] + cums[keep - 1]) / 2);  /* reached at index keep-1 */
    memset(in_top, 0, sizeof in_top);
    for (int i = 0; i < keep; i++) in_top[order[i]] = 1;
    p = lm_sampler_default_params();
    p.temperature = 50.0f; p.top_p = top_p; p.seed = 8;
    s = lm_sampler_create(p, V);
    memset(hist, 0, sizeof hist);
    for (int i = 0; i < 20000; i++) hist[lm_sampler_sample(s, big)]++;   /* ~200 per kept id */
    bad = 0; seen = 0;
    for (int i = 0; i < V; i++) { if (hist[i] && !in_top[i]) bad++; if (hist[i] && in_top[i]) seen++; }
    CHECK(bad == 0 && seen == keep, "top-p %.5f of 5000: %d outside, %d of %d seen", top_p, bad, seen, keep);
    lm_sampler_free(&s);
}

static void test_penalties(void)
{
    lm_sampler_params p = lm_sampler_default_params();
    p.repeat_penalty = 2.0f; p.frequency_penalty = 0.5f; p.presence_penalty = 1.0f; p.penalty_last_n = 3;
    lm_sampler *s = lm_sampler_create(p, 8);
    const float l0[8] = { 1, 2, -2, 4, -1, 3, 0.5f, 6 };
    float l[8];
    lm_sampler_accept(s, 3);
    lm_sampler_accept(s, 3);
    lm_sampler_accept(s, 2);
    memcpy(l, l0, sizeof l);
    lm_sampler_penalize(s, l);
    CHECK(fabsf(l[3] - (4 / 2.0f - 2 * 0.5f - 1)) < 1e-6f, "positive logit: /2, −count×0.5, −1 (%g)", l[3]);
    CHECK(fabsf(l[2] - (-2 * 2.0f - 0.5f - 1)) < 1e-6f, "negative logit: ×2, −0.5, −1 (%g)", l[2]);
    int others = 1;
    for (int i = 0; i < 8; i++) if (i != 2 && i != 3) others &= l[i] == l0[i];
    CHECK(others, "ids outside the window untouched");
    /* window of 3: accepting 5 evicts the first 3 */
    lm_sampler_accept(s, 5);
    memcpy(l, l0, sizeof l);
    lm_sampler_penalize(s, l);
    CHECK(fabsf(l[3] - (4 / 2.0f - 0.5f - 1)) < 1e-6f && fabsf(l[5] - (3 / 2.0f - 0.5f - 1)) < 1e-6f,
          "eviction: 3 counted once now, 5 once (%g, %g)", l[3], l[5]);
    /* greedy with penalties: token 7 (logit 6) once penalized loses to token 3 (logit 4) */
    lm_sampler_params g = p;
    g.temperature = 0; g.penalty_last_n = 4;
    lm_sampler *sg = lm_sampler_create(g, 8);
    CHECK(lm_sampler_sample(sg, l0) == 7, "greedy picks 7 before penalties");
    lm_sampler_accept(sg, 7);
    CHECK(lm_sampler_sample(sg, l0) == 3, "after one 7: 6/2 − 0.5 − 1 = 1.5 < 4, so 3 wins");
    lm_sampler_free(&sg);
    /* reset clears history */
    lm_sampler_reset(s, 1);
    memcpy(l, l0, sizeof l);
    lm_sampler_penalize(s, l);
    CHECK(memcmp(l, l0, sizeof l) == 0, "reset clears the window");
    lm_sampler_free(&s);
}

static void test_masks(void)
{
    lm_sampler_params p = lm_sampler_default_params();
    p.temperature = 1.0f; p.seed = 4;
    lm_sampler *s = lm_sampler_create(p, 100);
    float l[100];
    for (int i = 0; i < 100; i++) l[i] = (float)(i % 7);
    lm_sampler_allow_only(s, 10, 20);
    int ok = 1;
    for (int i = 0; i < 2000; i++) { int32_t t = lm_sampler_sample(s, l); ok &= t >= 10 && t < 20; }
    CHECK(ok, "allow_only [10,20)");
    lm_sampler_mask_clear(s);
    lm_sampler_allow_range(s, 0, 5);
    lm_sampler_allow_range(s, 90, 95);
    lm_sampler_forbid(s, 3);
    int seen_lo = 0, seen_hi = 0;
    ok = 1;
    for (int i = 0; i < 4000; i++) {
        int32_t t = lm_sampler_sample(s, l);
        ok &= ((t >= 0 && t < 5) || (t >= 90 && t < 95)) && t != 3;
        seen_lo |= t < 5; seen_hi |= t >= 90;
    }
    CHECK(ok && seen_lo && seen_hi, "two ranges minus a forbidden id");
    lm_sampler_allow_only(s, 0, 0);   /* clears */
    int wide = 0;
    for (int i = 0; i < 2000; i++) { int32_t t = lm_sampler_sample(s, l); wide |= t >= 20 && t < 90; }
    CHECK(wide, "lo = hi = 0 clears the mask");
    /* greedy respects the mask: the global argmax (6 at id 6) is forbidden */
    lm_sampler_params g = lm_sampler_default_params();
    lm_sampler *sg = lm_sampler_create(g, 100);
    lm_sampler_forbid(sg, 6);
    int32_t t = lm_sampler_sample(sg, l);
    CHECK(t == 13, "greedy with id 6 forbidden → next argmax 13 (got %d)", t);
    lm_sampler_allow_only(sg, 50, 50 + 0);
    lm_sampler_allow_only(sg, 200, 300);  /* out of range → nothing allowed */
    CHECK(lm_sampler_sample(sg, l) == -1, "empty mask → -1");
    lm_sampler_free(&sg);
    lm_sampler_free(&s);
}

/* Logit bias: added before the penalties and the mask, removable, bounded. */
static void test_bias(void)
{
    float l[100];
    for (int i = 0; i < 100; i++) l[i] = (float)(i % 7);   /* argmax 6 (value 6) */
    lm_sampler *s = lm_sampler_create(lm_sampler_default_params(), 100);
    CHECK(lm_sampler_set_bias(s, 40, 1.5f) == 0 && lm_sampler_sample(s, l) == 40, "+1.5 on id 40 (5 + 1.5) beats 6");
    CHECK(lm_sampler_set_bias(s, 40, 0.5f) == 0 && lm_sampler_sample(s, l) == 6, "replaced: 5.5 < 6");
    CHECK(lm_sampler_set_bias(s, 6, -10.0f) == 0 && lm_sampler_sample(s, l) == 13, "-10 on id 6 → next argmax 13");
    CHECK(lm_sampler_set_bias(s, 6, 0) == 0 && lm_sampler_set_bias(s, 40, 0) == 0 && lm_sampler_sample(s, l) == 6,
          "bias 0 removes");
    lm_sampler_set_bias(s, 90, 100.0f);
    lm_sampler_allow_only(s, 0, 50);
    CHECK(lm_sampler_sample(s, l) == 6, "the mask still holds against a bias");
    lm_sampler_mask_clear(s);
    lm_sampler_reset(s, 3);
    CHECK(lm_sampler_sample(s, l) == 90, "reset keeps the bias");
    CHECK(lm_sampler_set_bias(s, 100, 1) < 0 && lm_sampler_set_bias(s, -1, 1) < 0 && lm_sampler_set_bias(s, 1, NAN) < 0,
          "bad token / NaN refused");
    int full = 0;
    for (int i = 0; i < 100; i++) full += lm_sampler_set_bias(s, i, 1.0f) < 0;
    CHECK(full == 100 - LM_SAMPLER_MAX_BIAS, "at most %d biased ids (%d refused)", LM_SAMPLER_MAX_BIAS, full);
    lm_sampler_free(&s);
}

static void test_rng(void)
{
    lm_sampler_params p = lm_sampler_default_params();
    p.temperature = 1.0f; p.seed = 1234;
    float l[50];
    for (int i = 0; i < 50; i++) l[i] = (float)sin(i);
    lm_sampler *a = lm_sampler_create(p, 50), *b = lm_sampler_create(p, 50);
    p.seed = 1235;
    lm_sampler *c = lm_sampler_create(p, 50);
    int same = 1, diff = 0;
    int32_t first[200];
    for (int i = 0; i < 200; i++) {
        int32_t x = lm_sampler_sample(a, l), y = lm_sampler_sample(b, l), z = lm_sampler_sample(c, l);
        first[i] = x;
        same &= x == y;
        diff += x != z;
    }
    CHECK(same, "same seed → same draws");
    CHECK(diff > 50, "different seed → different draws (%d of 200 differ)", diff);
    lm_sampler_reset(a, 1234);
    same = 1;
    for (int i = 0; i < 200; i++) same &= lm_sampler_sample(a, l) == first[i];
    CHECK(same, "reset with the seed replays the sequence");
    /* uniform doubles: mean and range */
    lm_rng r;
    lm_rng_seed(&r, 0);
    double sum = 0, mn = 1, mx = 0;
    for (int i = 0; i < 100000; i++) { double u = lm_rng_f64(&r); sum += u; if (u < mn) mn = u; if (u > mx) mx = u; }
    CHECK(fabs(sum / 100000 - 0.5) < 0.005 && mn >= 0 && mx < 1, "lm_rng_f64 in [0,1), mean %.4f", sum / 100000);
    lm_sampler_free(&a); lm_sampler_free(&b); lm_sampler_free(&c);
}

int main(void)
{
    test_greedy();
    test_distributions();
    test_penalties();
    test_masks();
    test_bias();
    test_rng();
    return finish();
}
