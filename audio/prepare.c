/* Preparing a recording for a speech model trained on single sentences at one level
 * (audio/audio.h: lm_audio_split, lm_audio_normalize). Cutting blindly every window cuts
 * through words, and a window that holds several sentences is not what such a model hears:
 * loom-tiny wrote the first sentence of each 10 s window and stopped (WER 90 % on 25 s
 * recordings of its test voices). Cut instead in the pauses, give each piece the quiet margins
 * the training clips had, and their level: loom-tiny's WER was 40.7 % at -20 dB (val, 1.9 %
 * as recorded). */
#include <math.h>
#include <stdlib.h>

#include "audio/audio.h"

#define QUIET_DB    14.0   /* speech: 14 dB or more above the recording's quiet level,       */
#define LOUD_DB      6.0   /* or at most 6 dB below its loud level, whichever is lower        */
#define PAUSE_S     0.25   /* a pause: at least this long without speech                      */
#define LEAD_S      0.10   /* quiet kept before a piece's speech (the data's 0.1 s pad)       */
#define TRAIL_S     0.40   /* and after it (the pad plus espeak-ng's own trailing silence)    */

/* Sum of squares of pcm[a, b), clipped to [0, n); NaN and infinite samples count as 0. */
static double energy(const float *pcm, int64_t n, int64_t a, int64_t b)
{
    if (a < 0) a = 0;
    if (b > n) b = n;
    double s = 0;
    for (int64_t i = a; i < b; i++)
        if (isfinite(pcm[i])) s += (double)pcm[i] * pcm[i];
    return s;
}

int64_t lm_audio_cut(const float *pcm, int64_t n, int64_t max_len, int sample_rate)
{
    if (n <= 0 || max_len <= 0) return 0;
    if (n <= max_len) return n;
    const int64_t hop = sample_rate >= 100 ? sample_rate / 100 : 1;   /* 10 ms steps */
    const int64_t half = 5 * hop;                                      /* 0.1 s measured */
    const int64_t lo = max_len - max_len * 2 / 5;                      /* the last 40 % */
    if (!pcm || max_len - lo < 2 * half) return max_len;               /* too short to choose */
    int64_t best = max_len;
    double best_e = energy(pcm, n, max_len - half, max_len + half);
    for (int64_t c = max_len - hop; c >= lo; c -= hop) {               /* ties keep the longer piece */
        const double e = energy(pcm, n, c - half, c + half);
        if (e < best_e) best_e = e, best = c;
    }
    return best;
}

/* Above digital silence: at least one 16-bit step (what rounds to 0 in a 16-bit file is silent). */
static int audible(float x) { return isfinite(x) && fabsf(x) >= 1.0f / 32768; }

static int cmp_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

typedef struct {
    lm_audio_span *v;
    int64_t        n, cap;
} span_list;

static int push(span_list *s, int64_t a, int64_t b)
{
    if (s->n == s->cap) {
        const int64_t cap = s->cap ? 2 * s->cap : 16;
        lm_audio_span *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        s->v = v, s->cap = cap;
    }
    s->v[s->n++] = (lm_audio_span){a, b};
    return 0;
}

/* Piece [a, b) trimmed to LEAD_S before its first speech frame and TRAIL_S after its last;
 * dropped when it holds no speech or less than 0.1 s is left. */
static int push_trimmed(span_list *s, const unsigned char *speech, int64_t nf, int64_t hop, int sample_rate,
                        int64_t a, int64_t b)
{
    int64_t f0 = a / hop, f1 = (b + hop - 1) / hop;
    if (f1 > nf) f1 = nf;
    while (f0 < f1 && !speech[f0]) f0++;
    while (f1 > f0 && !speech[f1 - 1]) f1--;
    if (f0 == f1) return 0;
    const int64_t a2 = f0 * hop - (int64_t)(LEAD_S * sample_rate), b2 = f1 * hop + (int64_t)(TRAIL_S * sample_rate);
    if (a2 > a) a = a2;
    if (b2 < b) b = b2;
    return b - a < sample_rate / 10 ? 0 : push(s, a, b);
}

typedef struct {
    const float         *pcm;
    const unsigned char *speech;   /* [nf] 1 where a 10 ms frame holds speech */
    int64_t              nf, hop, max_len;
    int                  sample_rate;
} splitter;

/* The pieces of [a, b), a stretch between pauses: more than one when it is longer than max_len. */
static int emit(const splitter *sp, span_list *s, int64_t a, int64_t b)
{
    int rc = 0;
    while (!rc && b - a > sp->max_len) {
        const int64_t len = lm_audio_cut(sp->pcm + a, b - a, sp->max_len, sp->sample_rate);
        rc = push_trimmed(s, sp->speech, sp->nf, sp->hop, sp->sample_rate, a, a + len);
        a += len;
    }
    return rc || b <= a ? rc : push_trimmed(s, sp->speech, sp->nf, sp->hop, sp->sample_rate, a, b);
}

int lm_audio_split(const float *pcm, int64_t n, int sample_rate, int64_t max_len,
                   lm_audio_span **spans, int64_t *n_spans, lm_error *err)
{
    if (!spans || !n_spans) return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio split: no place for the pieces");
    *spans = NULL, *n_spans = 0;
    if (!pcm || n <= 0 || max_len <= 0 || sample_rate < 100)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio split: %lld samples at %d Hz in pieces of at most %lld",
                       (long long)n, sample_rate, (long long)max_len);
    /* digital silence at either end is left out: no recording of the data has any (noise runs
     * through them), and loom-tiny read 0.5 s of it before and after each test recording as
     * other words (WER 16.3 -> 71.2 %) */
    int64_t first = 0, last = n;
    while (first < n && !audible(pcm[first])) first++;
    while (last > first && !audible(pcm[last - 1])) last--;
    if (first == last) return 0;              /* nothing but silence: no pieces */
    span_list s = {0};
    if (last - first <= max_len) {            /* it fits: whole, as the model was trained */
        if (push(&s, first, last)) return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio split: out of memory");
        *spans = s.v, *n_spans = 1;
        return 0;
    }
    if (first || last < n) {                  /* the rest on the audible part, offsets shifted back */
        int rc = lm_audio_split(pcm + first, last - first, sample_rate, max_len, spans, n_spans, err);
        for (int64_t i = 0; i < *n_spans; i++) (*spans)[i].start += first, (*spans)[i].end += first;
        return rc;
    }
    const int64_t hop = sample_rate / 100, nf = n / hop;
    float *db = malloc((size_t)nf * sizeof *db), *sorted = malloc((size_t)nf * sizeof *sorted);
    unsigned char *speech = malloc((size_t)nf);
    int rc = db && sorted && speech ? 0 : -1;
    if (!rc) {
        /* 10 ms frames' power, averaged over the 0.1 s around each, in dB: a running sum over
         * the frames' energies (one pass over the samples however long the recording) */
        for (int64_t f = 0; f < nf; f++) sorted[f] = (float)energy(pcm, n, f * hop, (f + 1) * hop);
        double run = 0;                       /* the energy of frames [f - 5, f + 5) */
        for (int64_t f = 0; f < 5 && f < nf; f++) run += sorted[f];
        for (int64_t f = 0; f < nf; f++) {
            db[f] = (float)(10.0 * log10((run > 0 ? run : 0) / (double)(10 * hop) + 1e-10));
            if (f + 5 < nf) run += sorted[f + 5];
            if (f >= 5) run -= sorted[f - 5];
        }
        for (int64_t f = 0; f < nf; f++) sorted[f] = db[f];
        qsort(sorted, (size_t)nf, sizeof *sorted, cmp_float);
        /* speech: 14 dB above the quietest tenth, or within 6 dB of the loudest tenth where the
         * quiet is too rare to set a level (continuous speech, a steady tone) */
        const float quiet = sorted[(nf - 1) / 10], loud = sorted[(nf - 1) * 9 / 10];
        const float level = quiet + QUIET_DB < loud - LOUD_DB ? quiet + QUIET_DB : loud - LOUD_DB;
        for (int64_t f = 0; f < nf; f++) speech[f] = db[f] >= level;
        const splitter sp = {pcm, speech, nf, hop, max_len, sample_rate};
        int64_t at = 0;                       /* where the current stretch began */
        for (int64_t f = 0; f < nf && !rc; ) {
            if (speech[f]) { f++; continue; }
            int64_t g = f;
            while (g < nf && !speech[g]) g++;
            if (f > 0 && g < nf && g - f >= (int64_t)(PAUSE_S * 100)) {   /* a pause: cut in its middle */
                const int64_t cut = (f + g) / 2 * hop;
                rc = emit(&sp, &s, at, cut);
                at = cut;
            }
            f = g;
        }
        if (!rc) rc = emit(&sp, &s, at, n);
    }
    free(db), free(sorted), free(speech);
    if (rc) {
        free(s.v);
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio split: out of memory");
    }
    *spans = s.v, *n_spans = s.n;
    return 0;
}

float lm_audio_normalize(float *pcm, int64_t n, float peak)
{
    float m = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(pcm[i]) && fabsf(pcm[i]) > m) m = fabsf(pcm[i]);
    if (m < 1.0f / 32768 || !(peak > 0)) return 1.0f;   /* silence, or no level asked for */
    const float g = peak / m;
    for (int64_t i = 0; i < n; i++) pcm[i] *= g;
    return g;
}
