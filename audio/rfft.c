/* Mixed-radix real FFT (see rfft.h).
 *
 * A real transform of even size n runs as one complex transform of size h = n/2 on
 * z[j] = x[2j] + i·x[2j+1], followed by the usual split step. The complex transform is a
 * recursive decimation in time over the factors of h (4 and 2 first, then odd primes), with
 * dedicated butterflies for 2, 3, 4 and 5 and a direct DFT for larger factors. */
#include "audio/rfft.h"
#include "audio/rfft_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline cpx cmul(cpx a, cpx b) { return (cpx){a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
static inline cpx cadd(cpx a, cpx b) { return (cpx){a.re + b.re, a.im + b.im}; }
static inline cpx csub(cpx a, cpx b) { return (cpx){a.re - b.re, a.im - b.im}; }
static inline cpx cconj(cpx a) { return (cpx){a.re, -a.im}; }

lm_rfft *lm_rfft_create(int n)
{
    if (n < 2 || n % 2 || n > (1 << 24)) return NULL;
    lm_rfft *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n;
    p->h = n / 2;
    int r = p->h;
    while (r > 1 && p->nf < MAX_FACTORS) {
        int q = r % 4 == 0 ? 4 : r % 2 == 0 ? 2 : 3;
        while (r % q) q += 2;   /* smallest odd factor */
        p->f[p->nf++] = q;
        r /= q;
    }
    p->tw = malloc(sizeof(cpx) * p->h);
    p->split = malloc(sizeof(cpx) * p->h);
    p->z = malloc(sizeof(cpx) * p->h);
    p->Z = malloc(sizeof(cpx) * p->h);
    p->tmp = malloc(sizeof(cpx) * p->h);
    p->lanes = aligned_alloc(64, sizeof(float) * 2 * LM_RFFT_LANES * (3 * (size_t)p->h + 2));
    if (r > 1 || !p->tw || !p->split || !p->z || !p->Z || !p->tmp || !p->lanes) {
        lm_rfft_free(&p);
        return NULL;
    }
    for (int k = 0; k < p->h; k++) {
        double a = -2.0 * M_PI * k / p->h, b = -2.0 * M_PI * k / n;
        p->tw[k] = (cpx){(float)cos(a), (float)sin(a)};
        p->split[k] = (cpx){(float)cos(b), (float)sin(b)};
    }
    return p;
}

void lm_rfft_free(lm_rfft **pp)
{
    if (!pp || !*pp) return;
    lm_rfft *p = *pp;
    free(p->tw);
    free(p->split);
    free(p->z);
    free(p->Z);
    free(p->tmp);
    free(p->lanes);
    free(p);
    *pp = NULL;
}

/* out[0..len) = DFT_len of in[0], in[s], in[2s], … (forward sign). */
static void fft_rec(const lm_rfft *p, cpx *out, const cpx *in, int len, int s, const int *f)
{
    const int r = f[0], m = len / r, ts = p->h / len;   /* W_len^j = tw[j·ts] */
    if (m == 1)
        for (int q = 0; q < r; q++) out[q] = in[q * s];
    else
        for (int q = 0; q < r; q++) fft_rec(p, out + q * m, in + q * s, m, s * r, f + 1);
    const cpx *tw = p->tw;
    switch (r) {
    case 2:
        for (int k = 0; k < m; k++) {
            cpx a = out[k], b = cmul(out[k + m], tw[k * ts]);
            out[k] = cadd(a, b);
            out[k + m] = csub(a, b);
        }
        break;
    case 4:
        for (int k = 0; k < m; k++) {
            cpx a0 = out[k], a1 = cmul(out[k + m], tw[k * ts]), a2 = cmul(out[k + 2 * m], tw[2 * k * ts]),
                a3 = cmul(out[k + 3 * m], tw[3 * k * ts]);
            cpx s02 = cadd(a0, a2), d02 = csub(a0, a2), s13 = cadd(a1, a3), d13 = csub(a1, a3);
            cpx d13_mi = {d13.im, -d13.re};   /* −i·(a1 − a3) */
            out[k] = cadd(s02, s13);
            out[k + m] = cadd(d02, d13_mi);
            out[k + 2 * m] = csub(s02, s13);
            out[k + 3 * m] = csub(d02, d13_mi);
        }
        break;
    case 3: {
        const float c = -0.5f, sn = -0.86602540378443864676f;   /* e^{-2πi/3} */
        for (int k = 0; k < m; k++) {
            cpx a0 = out[k], a1 = cmul(out[k + m], tw[k * ts]), a2 = cmul(out[k + 2 * m], tw[2 * k * ts]);
            cpx s = cadd(a1, a2), d = csub(a1, a2);
            cpx t = {a0.re + c * s.re, a0.im + c * s.im};
            cpx u = {-sn * d.im, sn * d.re};   /* i·sn·d */
            out[k] = cadd(a0, s);
            out[k + m] = cadd(t, u);
            out[k + 2 * m] = csub(t, u);
        }
        break;
    }
    case 5: {
        const float c1 = 0.30901699437494742410f, c2 = -0.80901699437494742410f;   /* cos 2π/5, cos 4π/5 */
        const float s1 = -0.95105651629515357212f, s2 = -0.58778525229247312917f;  /* −sin 2π/5, −sin 4π/5 */
        for (int k = 0; k < m; k++) {
            cpx a0 = out[k], a1 = cmul(out[k + m], tw[k * ts]), a2 = cmul(out[k + 2 * m], tw[2 * k * ts]),
                a3 = cmul(out[k + 3 * m], tw[3 * k * ts]), a4 = cmul(out[k + 4 * m], tw[4 * k * ts]);
            cpx s14 = cadd(a1, a4), d14 = csub(a1, a4), s23 = cadd(a2, a3), d23 = csub(a2, a3);
            cpx t1 = {a0.re + c1 * s14.re + c2 * s23.re, a0.im + c1 * s14.im + c2 * s23.im};
            cpx t2 = {a0.re + c2 * s14.re + c1 * s23.re, a0.im + c2 * s14.im + c1 * s23.im};
            /* i·(s1·d14 + s2·d23) and i·(s2·d14 − s1·d23) */
            cpx u1 = {-(s1 * d14.im + s2 * d23.im), s1 * d14.re + s2 * d23.re};
            cpx u2 = {-(s2 * d14.im - s1 * d23.im), s2 * d14.re - s1 * d23.re};
            out[k] = cadd(a0, cadd(s14, s23));
            out[k + m] = cadd(t1, u1);
            out[k + 4 * m] = csub(t1, u1);
            out[k + 2 * m] = cadd(t2, u2);
            out[k + 3 * m] = csub(t2, u2);
        }
        break;
    }
    default: {   /* direct DFT of size r per group; W_r^j = tw[j · (h / r)] */
        cpx *t = p->tmp;   /* r ≤ h values; only the current group is live */
        const int rs = p->h / r;
        for (int k = 0; k < m; k++) {
            for (int q = 0; q < r; q++) t[q] = cmul(out[k + q * m], tw[(int64_t)q * k * ts % p->h]);
            for (int v = 0; v < r; v++) {
                cpx acc = {0.0f, 0.0f};
                for (int q = 0; q < r; q++) acc = cadd(acc, cmul(t[q], tw[(int64_t)((q * v) % r) * rs]));
                out[k + v * m] = acc;
            }
        }
    }
    }
}

void lm_rfft_forward(lm_rfft *p, const float *x, float *X)
{
    const int h = p->h;
    for (int j = 0; j < h; j++) p->z[j] = (cpx){x[2 * j], x[2 * j + 1]};
    if (h > 1) fft_rec(p, p->Z, p->z, h, 1, p->f);
    else p->Z[0] = p->z[0];
    /* split: E[k] = (Z[k] + conj Z[h−k]) / 2, O[k] = (Z[k] − conj Z[h−k]) / 2i, X[k] = E + W_n^k O */
    cpx *out = (cpx *)X;
    for (int k = 0; k <= h / 2; k++) {
        cpx a = p->Z[k], b = cconj(p->Z[(h - k) % h]);
        cpx e = {0.5f * (a.re + b.re), 0.5f * (a.im + b.im)};
        cpx d = csub(a, b);
        cpx o = {0.5f * d.im, -0.5f * d.re};
        cpx wo = cmul(p->split[k], o);
        out[k] = cadd(e, wo);
        /* X[h − k] from the same pair: E[h − k] = conj E[k], O[h − k] = conj O[k] */
        if (k != 0 && k != h - k) {
            out[h - k] = cadd(cconj(e), cmul(p->split[h - k], cconj(o)));
        }
    }
    out[h] = (cpx){p->Z[0].re - p->Z[0].im, 0.0f};
    out[0].im = 0.0f;
}

void lm_rfft_inverse(lm_rfft *p, const float *X, float *x)
{
    const int h = p->h;
    const cpx *in = (const cpx *)X;
    /* undo the split: Z[k] = E[k] + i·O[k] with E = (X[k] + conj X[h−k]) / 2,
     * O = (X[k] − conj X[h−k]) · conj(W_n^k) / 2; imaginary parts of X[0], X[h] ignored */
    for (int k = 0; k < h; k++) {
        cpx a = in[k], b = cconj(in[h - k]);
        if (k == 0) {
            a.im = 0.0f;
            b.im = 0.0f;   /* b = conj X[h] */
        }
        cpx e = {0.5f * (a.re + b.re), 0.5f * (a.im + b.im)};
        cpx d = csub(a, b);
        cpx o = cmul((cpx){0.5f * d.re, 0.5f * d.im}, cconj(p->split[k]));
        /* inverse transform through the forward one: conj(FFT(conj(Z))) */
        p->z[k] = cconj((cpx){e.re - o.im, e.im + o.re});
    }
    if (h > 1) fft_rec(p, p->Z, p->z, h, 1, p->f);
    else p->Z[0] = p->z[0];
    const float inv = 1.0f / (float)h;   /* z = IFFT_h(Z) = (1/h)·conj(FFT(conj Z)); x = z unpacked, 1/n·2 */
    for (int j = 0; j < h; j++) {
        x[2 * j] = p->Z[j].re * inv;
        x[2 * j + 1] = -p->Z[j].im * inv;
    }
}

void lm_rfft_forward_ref(int n, const float *x, float *X)
{
    for (int k = 0; k <= n / 2; k++) {
        double re = 0.0, im = 0.0;
        for (int j = 0; j < n; j++) {
            double a = -2.0 * M_PI * (double)((int64_t)j * k % n) / n;
            re += x[j] * cos(a);
            im += x[j] * sin(a);
        }
        X[2 * k] = (float)re;
        X[2 * k + 1] = (float)im;
    }
}

void lm_rfft_inverse_ref(int n, const float *X, float *x)
{
    for (int j = 0; j < n; j++) {
        double acc = X[0] + ((j % 2) ? -X[n] : X[n]);   /* DC and Nyquist, real parts only */
        for (int k = 1; k < n / 2; k++) {
            double a = 2.0 * M_PI * (double)((int64_t)j * k % n) / n;
            acc += 2.0 * (X[2 * k] * cos(a) - X[2 * k + 1] * sin(a));
        }
        x[j] = (float)(acc / n);
    }
}
