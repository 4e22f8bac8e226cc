/* lm_rfft_forward_many_avx512 / lm_rfft_inverse_many_avx512 (see rfft.h): LM_RFFT_LANES real
 * transforms at once, one per lane of a 16-float vector. Each butterfly of rfft.c's fft_rec is
 * repeated here with vectors in place of floats and the same expression trees (ISO C mode
 * does not contract a·b + c into FMAs), so every lane equals lm_rfft_forward / _inverse bit
 * for bit; tests/test_audio_codec_parity.c checks that. The frames are transposed into
 * lane-major order on the way in and out by 16 × 16 register transposes. Compiled with
 * AVX-512 (GCC vector extensions lower to zmm). */
#include <immintrin.h>
#include <string.h>

#include "audio/rfft.h"
#include "audio/rfft_impl.h"

typedef float v16 __attribute__((vector_size(64), aligned(64)));
typedef struct cv {
    v16 re, im;
} cv;

static inline cv vmul(cv a, cpx b) { return (cv){a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
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

/* In place: r[k][l] ↔ r[l][k] for a 16 × 16 block (unpack 32-bit, 64-bit, then 128-bit lanes). */
static void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4)
        for (int k = 0; k < 2; k++) {
            const __m512d a = _mm512_castps_pd(t[i + k]), b = _mm512_castps_pd(t[i + 2 + k]);
            r[i + k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            r[i + 2 + k] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
    /* now 128-bit lane q of r[4g + i] holds column 4q + {0, 2, 1, 3}[i] of rows 4g .. 4g+3:
     * collect lane q of the four groups */
    for (int i = 0; i < 4; i++) {
        const int cm = i == 1 ? 2 : i == 2 ? 1 : i;
        const __m512 a0 = r[i], a1 = r[4 + i], a2 = r[8 + i], a3 = r[12 + i];
        const __m512 b0 = _mm512_shuffle_f32x4(a0, a1, 0x44), b1 = _mm512_shuffle_f32x4(a0, a1, 0xEE);
        const __m512 b2 = _mm512_shuffle_f32x4(a2, a3, 0x44), b3 = _mm512_shuffle_f32x4(a2, a3, 0xEE);
        t[cm] = _mm512_shuffle_f32x4(b0, b2, 0x88);
        t[4 + cm] = _mm512_shuffle_f32x4(b0, b2, 0xDD);
        t[8 + cm] = _mm512_shuffle_f32x4(b1, b3, 0x88);
        t[12 + cm] = _mm512_shuffle_f32x4(b1, b3, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

static inline __mmask16 first_n(int64_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* dst[c·16 + l] = src[l·stride + c] (· win[c] if win) for c < ncols; lanes l >= nl are 0. */
static void lanes_in(float *dst, const float *src, int64_t stride, int nl, int ncols, const float *win)
{
    __m512 r[16];
    for (int c0 = 0; c0 < ncols; c0 += 16) {
        const __mmask16 m = first_n(ncols - c0);
        const __m512 w = win ? _mm512_maskz_loadu_ps(m, win + c0) : _mm512_set1_ps(1.0f);
        for (int l = 0; l < 16; l++) {
            r[l] = l < nl ? _mm512_maskz_loadu_ps(m, src + l * stride + c0) : _mm512_setzero_ps();
            if (win) r[l] = _mm512_mul_ps(r[l], w);
        }
        transpose16(r);
        for (int k = 0; k < 16 && c0 + k < ncols; k++) _mm512_store_ps(dst + (c0 + k) * 16, r[k]);
    }
}

/* dst[l·stride + c] = src[c·16 + l] for l < nl, c < ncols. */
static void lanes_out(float *dst, int64_t stride, int nl, const float *src, int ncols)
{
    __m512 r[16];
    for (int c0 = 0; c0 < ncols; c0 += 16) {
        const __mmask16 m = first_n(ncols - c0);
        for (int k = 0; k < 16; k++) r[k] = c0 + k < ncols ? _mm512_load_ps(src + (c0 + k) * 16) : _mm512_setzero_ps();
        transpose16(r);
        for (int l = 0; l < nl; l++) _mm512_mask_storeu_ps(dst + l * stride + c0, m, r[l]);
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
    cv *z = (cv *)p->lanes, *Z = z + h + 1, *tmp = Z + h;   /* z [h + 1]: X[h] as well */
    for (int g = 0; g < count; g += LM_RFFT_LANES) {
        const int nl = count - g < LM_RFFT_LANES ? count - g : LM_RFFT_LANES;
        /* z[j] = (x[2j], x[2j+1]) per lane (× window): z as floats is the transposed frames */
        lanes_in((float *)z, x + (int64_t)g * xs, xs, nl, 2 * h, win);
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
        z[h].re = Z[0].re - Z[0].im;   /* X[h] = (Z[0].re − Z[0].im, 0) */
        z[h].im = zero;
        z[0].im = zero;
        lanes_out(X + (int64_t)g * Xs, Xs, nl, (const float *)z, 2 * h + 2);
    }
}

void lm_rfft_inverse_many_avx512(lm_rfft *p, int count, const float *X, int64_t Xs, const float *win, float *x,
                                 int64_t xs)
{
    const int h = p->h;
    cv *z = (cv *)p->lanes, *Z = z + h + 1, *in = Z + h;   /* `in` [h + 1] doubles as generic-radix scratch */
    for (int g = 0; g < count; g += LM_RFFT_LANES) {
        const int nl = count - g < LM_RFFT_LANES ? count - g : LM_RFFT_LANES;
        lanes_in((float *)in, X + (int64_t)g * Xs, Xs, nl, 2 * h + 2, NULL);   /* in[k] = X[k], k <= h */
        const v16 xh_re = in[h].re;
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
        float *y = (float *)z;   /* z[j] = (x[2j], x[2j+1]) per lane, × window */
        for (int j = 0; j < h; j++) {
            const v16 re = Z[j].re * inv, im = -Z[j].im * inv;
            ((v16 *)y)[2 * j] = win ? re * win[2 * j] : re;
            ((v16 *)y)[2 * j + 1] = win ? im * win[2 * j + 1] : im;
        }
        lanes_out(x + (int64_t)g * xs, xs, nl, y, 2 * h);
    }
}
