/* lm_rfft_forward_many_avx512 / lm_rfft_inverse_many_avx512 (see rfft.h): LM_RFFT_LANES real
 * transforms at once, one per lane of a 16-float vector. Each butterfly of rfft.c's fft_rec is
 * repeated here with vectors in place of floats and the same expression trees (ISO C mode
 * does not contract a·b + c into FMAs), so every lane equals lm_rfft_forward / _inverse bit
 * for bit; tests/test_mel.c checks that. The frames are transposed into lane-major order on
 * the way in and out. Compiled with AVX-512 (GCC vector extensions lower to zmm). */
#include <string.h>

#include "audio/rfft.h"
#include "audio/rfft_impl.h"

typedef float v16 __attribute__((vector_size(64), aligned(64)));
typedef struct cv {
    v16 re, im;
} cv;

static inline cv vmul(cv a, cpx b) { return (cv){a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
static inline cv vmulv(cv a, cv b) { return (cv){a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
static inline cv vadd(cv a, cv b) { return (cv){a.re + b.re, a.im + b.im}; }
static inline cv vsub(cv a, cv b) { return (cv){a.re - b.re, a.im - b.im}; }
static inline cv vconj(cv a) { return (cv){a.re, -a.im}; }

/* out[0..len) = DFT_len of in[0], in[s], …: rfft.c's fft_rec, lane-parallel. */
static void fft_rec_v(const lm_rfft *p, cv *out, const cv *in, cv *tmp, int len, int s, const int *f)
{
    const int r = f[0], m = len / r, ts = p->h / len;
    if (m == 1)
        for (int q = 0; q < r; q++) out[q] = in[q * s];
    else
        for (int q = 0; q < r; q++) fft_rec_v(p, out + q * m, in + q * s, tmp, m, s * r, f + 1);
    const cpx *tw = p->tw;
    switch (r) {
    case 2:
        for (int k = 0; k < m; k++) {
            cv a = out[k], b = vmul(out[k + m], tw[k * ts]);
            out[k] = vadd(a, b);
            out[k + m] = vsub(a, b);
        }
        break;
    case 4:
        for (int k = 0; k < m; k++) {
            cv a0 = out[k], a1 = vmul(out[k + m], tw[k * ts]), a2 = vmul(out[k + 2 * m], tw[2 * k * ts]),
               a3 = vmul(out[k + 3 * m], tw[3 * k * ts]);
            cv s02 = vadd(a0, a2), d02 = vsub(a0, a2), s13 = vadd(a1, a3), d13 = vsub(a1, a3);
            cv d13_mi = {d13.im, -d13.re};
            out[k] = vadd(s02, s13);
            out[k + m] = vadd(d02, d13_mi);
            out[k + 2 * m] = vsub(s02, s13);
            out[k + 3 * m] = vsub(d02, d13_mi);
        }
        break;
    case 3: {
        const float c = -0.5f, sn = -0.86602540378443864676f;
        for (int k = 0; k < m; k++) {
            cv a0 = out[k], a1 = vmul(out[k + m], tw[k * ts]), a2 = vmul(out[k + 2 * m], tw[2 * k * ts]);
            cv sm = vadd(a1, a2), d = vsub(a1, a2);
            cv t = {a0.re + c * sm.re, a0.im + c * sm.im};
            cv u = {-sn * d.im, sn * d.re};
            out[k] = vadd(a0, sm);
            out[k + m] = vadd(t, u);
            out[k + 2 * m] = vsub(t, u);
        }
        break;
    }
    case 5: {
        const float c1 = 0.30901699437494742410f, c2 = -0.80901699437494742410f;
        const float s1 = -0.95105651629515357212f, s2 = -0.58778525229247312917f;
        for (int k = 0; k < m; k++) {
            cv a0 = out[k], a1 = vmul(out[k + m], tw[k * ts]), a2 = vmul(out[k + 2 * m], tw[2 * k * ts]),
               a3 = vmul(out[k + 3 * m], tw[3 * k * ts]), a4 = vmul(out[k + 4 * m], tw[4 * k * ts]);
            cv s14 = vadd(a1, a4), d14 = vsub(a1, a4), s23 = vadd(a2, a3), d23 = vsub(a2, a3);
            cv t1 = {a0.re + c1 * s14.re + c2 * s23.re, a0.im + c1 * s14.im + c2 * s23.im};
            cv t2 = {a0.re + c2 * s14.re + c1 * s23.re, a0.im + c2 * s14.im + c1 * s23.im};
            cv u1 = {-(s1 * d14.im + s2 * d23.im), s1 * d14.re + s2 * d23.re};
            cv u2 = {-(s2 * d14.im - s1 * d23.im), s2 * d14.re - s1 * d23.re};
            out[k] = vadd(a0, vadd(s14, s23));
            out[k + m] = vadd(t1, u1);
            out[k + 4 * m] = vsub(t1, u1);
            out[k + 2 * m] = vadd(t2, u2);
            out[k + 3 * m] = vsub(t2, u2);
        }
        break;
    }
    default: {
        const int rs = p->h / r;
        for (int k = 0; k < m; k++) {
            for (int q = 0; q < r; q++) tmp[q] = vmul(out[k + q * m], tw[(int64_t)q * k * ts % p->h]);
            for (int v = 0; v < r; v++) {
                cv acc = {{0}, {0}};
                for (int q = 0; q < r; q++) acc = vadd(acc, vmul(tmp[q], tw[(int64_t)((q * v) % r) * rs]));
                out[k + v * m] = acc;
            }
        }
    }
    }
}

static void transform(const lm_rfft *p, cv *Z, const cv *z, cv *tmp)
{
    if (p->h > 1) fft_rec_v(p, Z, z, tmp, p->h, 1, p->f);
    else Z[0] = z[0];
}

void lm_rfft_forward_many_avx512(lm_rfft *p, int count, const float *x, int64_t xs, const float *win, float *X,
                                 int64_t Xs)
{
    const int h = p->h;
    cv *z = (cv *)p->lanes, *Z = z + h, *tmp = Z + h;
    for (int g = 0; g < count; g += LM_RFFT_LANES) {
        const int nl = count - g < LM_RFFT_LANES ? count - g : LM_RFFT_LANES;
        for (int j = 0; j < h; j++) {   /* transpose in (× window); idle lanes zero */
            float *re = (float *)&z[j].re, *im = (float *)&z[j].im;
            for (int l = 0; l < LM_RFFT_LANES; l++) {
                const float *xl = x + (int64_t)(g + (l < nl ? l : 0)) * xs;
                re[l] = l < nl ? (win ? xl[2 * j] * win[2 * j] : xl[2 * j]) : 0.0f;
                im[l] = l < nl ? (win ? xl[2 * j + 1] * win[2 * j + 1] : xl[2 * j + 1]) : 0.0f;
            }
        }
        transform(p, Z, z, tmp);
        for (int k = 0; k <= h / 2; k++) {   /* split, as lm_rfft_forward; results into z */
            cv a = Z[k], b = vconj(Z[(h - k) % h]);
            cv e = {0.5f * (a.re + b.re), 0.5f * (a.im + b.im)};
            cv d = vsub(a, b);
            cv o = {0.5f * d.im, -0.5f * d.re};
            const cpx sp = p->split[k];
            cv wo = {sp.re * o.re - sp.im * o.im, sp.re * o.im + sp.im * o.re};
            z[k] = vadd(e, wo);
            if (k != 0 && k != h - k) {
                const cpx sq = p->split[h - k];
                cv oc = vconj(o);
                z[h - k] = vadd(vconj(e), (cv){sq.re * oc.re - sq.im * oc.im, sq.re * oc.im + sq.im * oc.re});
            }
        }
        const v16 zero = {0};
        const v16 ny = Z[0].re - Z[0].im;
        z[0].im = zero;
        for (int l = 0; l < nl; l++) {   /* transpose out */
            float *Xl = X + (int64_t)(g + l) * Xs;
            for (int k = 0; k < h; k++) {
                Xl[2 * k] = z[k].re[l];
                Xl[2 * k + 1] = z[k].im[l];
            }
            Xl[2 * h] = ny[l];
            Xl[2 * h + 1] = 0.0f;
        }
    }
}

void lm_rfft_inverse_many_avx512(lm_rfft *p, int count, const float *X, int64_t Xs, const float *win, float *x,
                                 int64_t xs)
{
    const int h = p->h;
    cv *z = (cv *)p->lanes, *Z = z + h, *in = Z + h;   /* `in` doubles as generic-radix scratch */
    for (int g = 0; g < count; g += LM_RFFT_LANES) {
        const int nl = count - g < LM_RFFT_LANES ? count - g : LM_RFFT_LANES;
        /* in[k] = X[k] for k < h, Z[0] = X[h] (only its real part is used) */
        for (int k = 0; k <= h; k++) {
            cv *dst = k < h ? &in[k] : &Z[0];
            float *re = (float *)&dst->re, *im = (float *)&dst->im;
            for (int l = 0; l < LM_RFFT_LANES; l++) {
                const float *Xl = X + (int64_t)(g + (l < nl ? l : 0)) * Xs;
                re[l] = l < nl ? Xl[2 * k] : 0.0f;
                im[l] = l < nl ? Xl[2 * k + 1] : 0.0f;
            }
        }
        const v16 xh_re = Z[0].re;
        for (int k = 0; k < h; k++) {   /* undo the split, as lm_rfft_inverse */
            cv a = in[k], b;
            if (k == 0) {
                a.im = (v16){0};
                b = (cv){xh_re, (v16){0}};   /* conj X[h] with its imaginary part ignored */
            } else b = vconj(in[h - k]);
            cv e = {0.5f * (a.re + b.re), 0.5f * (a.im + b.im)};
            cv d = vsub(a, b);
            const cpx sc = {p->split[k].re, -p->split[k].im};
            cv o = vmul((cv){0.5f * d.re, 0.5f * d.im}, sc);
            z[k] = vconj((cv){e.re - o.im, e.im + o.re});
        }
        transform(p, Z, z, in);
        const float inv = 1.0f / (float)h;
        for (int l = 0; l < nl; l++) {
            float *xl = x + (int64_t)(g + l) * xs;
            for (int j = 0; j < h; j++) {
                xl[2 * j] = Z[j].re[l] * inv;
                xl[2 * j + 1] = -Z[j].im[l] * inv;
            }
            if (win)
                for (int j = 0; j < 2 * h; j++) xl[j] *= win[j];
        }
    }
}
