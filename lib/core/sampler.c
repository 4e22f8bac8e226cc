/*
 * Token sampler (see sampler.h for the order of the steps). Every buffer is sized for
 * n_vocab at creation; lm_sampler_sample does no allocation.
 */
#include "lib/core/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- RNG ------------------------------------------------------------------------------ */
uint64_t lm_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float lm_rng_uniform(uint64_t *state) { return (float)(lm_rng_next(state) >> 40) * 0x1.0p-24f; }

void lm_rng_seed(lm_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = lm_rng_next(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t lm_rng_u64(lm_rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double lm_rng_f64(lm_rng *r) { return (double)(lm_rng_u64(r) >> 11) * 0x1.0p-53; }

/* ---- sampler -------------------------------------------------------------------------- */
typedef struct cand { float logit; int32_t id; } cand;

struct lm_sampler {
    lm_sampler_params p;
    int32_t  n_vocab;
    lm_rng   rng;
    float   *logits;     /* [n_vocab] penalized copy of the caller's logits          */
    cand    *cand;       /* [n_vocab] allowed candidates                              */
    float   *prob;       /* [n_vocab] probabilities of cand                           */
    uint8_t *allowed;    /* [n_vocab] 1 = may be sampled                              */
    int      restricted; /* an allow_* call narrowed `allowed` since the last clear   */
    int32_t *count;      /* [n_vocab] occurrences of each id in the window            */
    int32_t *window;     /* [penalty_last_n] ring of the last accepted ids            */
    int32_t  win_len, win_pos;
    int32_t  n_bias;                         /* lm_sampler_set_bias entries          */
    int32_t  bias_id[LM_SAMPLER_MAX_BIAS];
    float    bias[LM_SAMPLER_MAX_BIAS];
};

lm_sampler_params lm_sampler_default_params(void)
{
    lm_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.penalty_last_n = 64;
    return p;
}

void lm_sampler_free(lm_sampler **ps)
{
    if (!ps || !*ps) return;
    lm_sampler *s = *ps;
    free(s->logits); free(s->cand); free(s->prob); free(s->allowed); free(s->count);
    free(s->window);
    free(s);
    *ps = NULL;
}

lm_sampler *lm_sampler_create(lm_sampler_params p, int32_t n_vocab)
{
    if (n_vocab <= 0) return NULL;
    lm_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (p.penalty_last_n < 0) p.penalty_last_n = 0;
    s->p = p;
    s->n_vocab = n_vocab;
    size_t n = (size_t)n_vocab;
    s->logits = malloc(n * sizeof(float));
    s->cand = malloc(n * sizeof(cand));
    s->prob = malloc(n * sizeof(float));
    s->allowed = malloc(n);
    s->count = calloc(n, sizeof(int32_t));
    s->window = malloc(sizeof(int32_t) * (size_t)(p.penalty_last_n ? p.penalty_last_n : 1));
    if (!s->logits || !s->cand || !s->prob || !s->allowed || !s->count || !s->window) {
        lm_sampler_free(&s);
        return NULL;
    }
    lm_sampler_mask_clear(s);
    lm_sampler_reset(s, p.seed);
    return s;
}

void lm_sampler_reset(lm_sampler *s, uint64_t seed)
{
    if (!s) return;
    memset(s->count, 0, sizeof(int32_t) * (size_t)s->n_vocab);
    s->win_len = s->win_pos = 0;
    s->p.seed = seed;
    lm_rng_seed(&s->rng, seed);
}

void lm_sampler_accept(lm_sampler *s, int32_t token)
{
    if (!s || s->p.penalty_last_n == 0 || token < 0 || token >= s->n_vocab) return;
    if (s->win_len == s->p.penalty_last_n) {          /* evict the oldest */
        s->count[s->window[s->win_pos]]--;
    } else {
        s->win_len++;
    }
    s->window[s->win_pos] = token;
    s->count[token]++;
    s->win_pos = (s->win_pos + 1) % s->p.penalty_last_n;
}

/* ---- mask ----------------------------------------------------------------------------- */
static void clamp_range(const lm_sampler *s, int32_t *lo, int32_t *hi)
{
    if (*lo < 0) *lo = 0;
    if (*hi > s->n_vocab) *hi = s->n_vocab;
    if (*hi < *lo) *hi = *lo;
}

void lm_sampler_mask_clear(lm_sampler *s)
{
    if (!s) return;
    memset(s->allowed, 1, (size_t)s->n_vocab);
    s->restricted = 0;
}

void lm_sampler_allow_range(lm_sampler *s, int32_t lo, int32_t hi)
{
    if (!s) return;
    if (lo == 0 && hi == 0) { lm_sampler_mask_clear(s); return; }
    if (!s->restricted) { memset(s->allowed, 0, (size_t)s->n_vocab); s->restricted = 1; }
    clamp_range(s, &lo, &hi);
    memset(s->allowed + lo, 1, (size_t)(hi - lo));
}

void lm_sampler_allow_only(lm_sampler *s, int32_t lo, int32_t hi)
{
    if (!s) return;
    if (lo == 0 && hi == 0) { lm_sampler_mask_clear(s); return; }
    s->restricted = 0;
    lm_sampler_allow_range(s, lo, hi);
}

void lm_sampler_forbid(lm_sampler *s, int32_t token)
{
    if (s && token >= 0 && token < s->n_vocab) s->allowed[token] = 0;
}

int lm_sampler_set_bias(lm_sampler *s, int32_t token, float bias)
{
    if (!s || token < 0 || token >= s->n_vocab || !isfinite(bias)) return -1;
    int32_t i = 0;
    while (i < s->n_bias && s->bias_id[i] != token) i++;
    if (bias == 0.0f) {   /* remove: the last entry takes its place */
        if (i < s->n_bias) {
            s->n_bias--;
            s->bias_id[i] = s->bias_id[s->n_bias];
            s->bias[i] = s->bias[s->n_bias];
        }
        return 0;
    }
    if (i == LM_SAMPLER_MAX_BIAS) return -1;
    if (i == s->n_bias) s->n_bias++;
    s->bias_id[i] = token;
    s->bias[i] = bias;
    return 0;
}

/* ---- steps ---------------------------------------------------------------------------- */
/* llama.cpp's penalties: for each distinct id in the window, a positive logit is divided by
 * repeat_penalty and a non-positive one multiplied; then count × frequency_penalty and
 * presence_penalty (once) are subtracted. */
static void penalize_one(const lm_sampler *s, float *logits, int32_t id)
{
    const lm_sampler_params *p = &s->p;
    float l = logits[id];
    int32_t c = s->count[id];
    if (p->repeat_penalty != 1.0f) l = l <= 0.0f ? l * p->repeat_penalty : l / p->repeat_penalty;
    l -= (float)c * p->frequency_penalty + (c > 0 ? p->presence_penalty : 0.0f);
    logits[id] = l;
}

static int penalties_on(const lm_sampler_params *p)
{
    return p->penalty_last_n > 0 &&
           (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f);
}

void lm_sampler_penalize(const lm_sampler *s, float *logits)
{
    if (!s || !logits || !penalties_on(&s->p)) return;
    /* visit each distinct id once: count[] is the multiplicity, so negate it as a mark */
    int32_t *count = s->count;
    for (int32_t i = 0; i < s->win_len; i++) {
        int32_t id = s->window[i];
        if (count[id] > 0) { penalize_one(s, logits, id); count[id] = -count[id]; }
    }
    for (int32_t i = 0; i < s->win_len; i++) {
        int32_t id = s->window[i];
        if (count[id] < 0) count[id] = -count[id];
    }
}

void lm_logits_cfg(float *out, const float *cond, const float *uncond, float scale, int32_t lo, int32_t hi)
{
    for (int32_t i = lo; i < hi; i++) out[i] = uncond[i] + scale * (cond[i] - uncond[i]);
}

static int cand_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

/* In-place heapsort, best first (glibc's qsort may allocate; sampling must not). */
static void sift_down(cand *c, int32_t i, int32_t n)
{
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        /* max-heap under "worse first" keeps the worst at the root; popping it to the end
         * leaves the array sorted best first */
        if (l < n && cand_desc(&c[l], &c[m]) > 0) m = l;
        if (r < n && cand_desc(&c[r], &c[m]) > 0) m = r;
        if (m == i) return;
        cand t = c[i]; c[i] = c[m]; c[m] = t;
        i = m;
    }
}

static void sort_desc(cand *c, int32_t n)
{
    for (int32_t i = n / 2 - 1; i >= 0; i--) sift_down(c, i, n);
    for (int32_t end = n - 1; end > 0; end--) {
        cand t = c[0]; c[0] = c[end]; c[end] = t;
        sift_down(c, 0, end);
    }
}

/* Move the k best candidates to the front (quickselect), unordered. */
static void select_top(cand *c, int32_t n, int32_t k)
{
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        cand pivot = c[(lo + hi) / 2];
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (cand_desc(&c[i], &pivot) < 0) i++;
            while (cand_desc(&c[j], &pivot) > 0) j--;
            if (i <= j) { cand t = c[i]; c[i] = c[j]; c[j] = t; i++; j--; }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* Softmax of c[0..n) (c[0] need not be the max) into prob; returns the sum before
 * normalisation is applied (always 1 after). */
static void softmax(const cand *c, float *prob, int32_t n)
{
    float mx = c[0].logit;
    for (int32_t i = 1; i < n; i++) if (c[i].logit > mx) mx = c[i].logit;
    double sum = 0;
    for (int32_t i = 0; i < n; i++) { prob[i] = expf(c[i].logit - mx); sum += prob[i]; }
    for (int32_t i = 0; i < n; i++) prob[i] = (float)(prob[i] / sum);
}

int32_t lm_sampler_sample(lm_sampler *s, const float *logits)
{
    if (!s || !logits) return -1;
    const lm_sampler_params *p = &s->p;
    memcpy(s->logits, logits, sizeof(float) * (size_t)s->n_vocab);
    for (int32_t i = 0; i < s->n_bias; i++) s->logits[s->bias_id[i]] += s->bias[i];
    lm_sampler_penalize(s, s->logits);

    int32_t n = 0;
    for (int32_t i = 0; i < s->n_vocab; i++)
        if (s->allowed[i]) s->cand[n++] = (cand){ s->logits[i], i };
    if (n == 0) return -1;

    if (p->temperature <= 0.0f) {
        cand best = s->cand[0];
        for (int32_t i = 1; i < n; i++) if (s->cand[i].logit > best.logit) best = s->cand[i];
        return best.id;
    }

    int sorted = 0;
    if (p->top_k > 0 && p->top_k < n) {
        select_top(s->cand, n, p->top_k);
        n = p->top_k;
        sort_desc(s->cand, n);
        sorted = 1;
    }
    if (p->top_p < 1.0f && n > 1) {
        /* Same result as sorting everything and cutting at the first prefix whose mass
         * reaches top_p, but only the needed prefix is ordered: select and sort the next
         * 64, 128, 256, … best until the mass is reached (O(n) for peaked distributions). */
        float mx = s->cand[0].logit;
        for (int32_t i = 1; i < n; i++) if (s->cand[i].logit > mx) mx = s->cand[i].logit;
        double z = 0;
        for (int32_t i = 0; i < n; i++) z += expf(s->cand[i].logit - mx);
        double cum = 0;
        int32_t done = sorted ? n : 0, chunk = 64, cut = n;
        for (int32_t i = 0; i < n && cut == n; i++) {
            if (i == done) {
                int32_t want = n - done > chunk ? done + chunk : n;
                if (want < n) select_top(s->cand + done, n - done, want - done);
                sort_desc(s->cand + done, want - done);
                done = want;
                chunk *= 2;
            }
            cum += (float)(expf(s->cand[i].logit - mx) / z);
            if (cum >= p->top_p) cut = i + 1;
        }
        n = cut;
    }
    if (p->min_p > 0.0f && n > 1) {
        float mx = s->cand[0].logit;
        for (int32_t i = 1; i < n; i++) if (s->cand[i].logit > mx) mx = s->cand[i].logit;
        float min_logit = mx + logf(p->min_p);
        int32_t m = 0;
        for (int32_t i = 0; i < n; i++) if (s->cand[i].logit >= min_logit) s->cand[m++] = s->cand[i];
        n = m;
    }
    for (int32_t i = 0; i < n; i++) s->cand[i].logit /= p->temperature;
    softmax(s->cand, s->prob, n);
    double u = lm_rng_f64(&s->rng), cum = 0;
    for (int32_t i = 0; i < n; i++) {
        cum += s->prob[i];
        if (u < cum) return s->cand[i].id;
    }
    return s->cand[n - 1].id; /* rounding: u landed past the last partial sum */
}
