/*
 * Whisper's log-mel spectrogram; the definition is in mel.h.
 *
 * FFT: lm_rfft (audio/rfft.h), loom's mixed-radix real FFT: the 400-point frame runs as one
 * 200-point complex FFT (200 = 4·2·5·5) plus a split step that yields bins 0..200. Each worker
 * holds its own plan (a plan has work buffers), made once in lm_mel_create. libavutil's av_tx
 * was tried first: its AV_TX_FLOAT_RDFT is exact for 400 points in Debian's FFmpeg 5.1, but
 * 400 = 16·25 falls to its naive O(N²) codelet that evaluates sin/cos per term (≈ 2 ms per
 * frame, 6 s for 30 s of audio), so it is unsuitable. The filterbank is stored with each
 * filter's non-zero bin range so the mel product only touches the few bins a filter covers.
 */
#include "audio/mel.h"
#include "audio/rfft.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MEL_MAX_BINS 256
#define MEL_MAX_THREADS 256

typedef struct mel_worker {
    lm_rfft *fft;                         /* this worker's 400-point plan           */
    float    frame[LM_MEL_N_FFT];         /* windowed samples                       */
    float    spec[LM_MEL_N_BINS][2];      /* their spectrum, (re, im) per bin       */
    float    power[LM_MEL_N_BINS];
} mel_worker;

struct lm_mel {
    int         n_mels;
    int         n_threads;
    float       window[LM_MEL_N_FFT];  /* periodic Hann                            */
    float      *filters;               /* [n_mels][201] Slaney filterbank           */
    int        *lo, *hi;               /* [n_mels] non-zero bins of each filter      */
    mel_worker *w;                     /* [n_threads]                                */
};

/* Slaney's mel scale (librosa htk=False): linear below 1 kHz, logarithmic above. */
static double hz_to_mel(double hz)
{
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return hz < min_log_hz ? hz / f_sp : min_log_mel + log(hz / min_log_hz) / logstep;
}

static double mel_to_hz(double mel)
{
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return mel < min_log_mel ? f_sp * mel : min_log_hz * exp(logstep * (mel - min_log_mel));
}

/* librosa.filters.mel(sr=16000, n_fft=400, n_mels, fmin=0, fmax=8000, htk=False,
 * norm="slaney"): triangles between consecutive mel points, each scaled by
 * 2 / (upper edge − lower edge) in Hz. Computed in double, stored as float (as librosa's
 * float32 default does). f: [n_mels][201]. */
static void slaney_filterbank(int n_mels, float *f)
{
    double pts[MEL_MAX_BINS + 2];
    const double mmin = hz_to_mel(0.0), mmax = hz_to_mel(8000.0);
    for (int i = 0; i < n_mels + 2; i++)
        pts[i] = mel_to_hz(mmin + (mmax - mmin) * (double)i / (double)(n_mels + 1));
    for (int m = 0; m < n_mels; m++) {
        const double d0 = pts[m + 1] - pts[m], d1 = pts[m + 2] - pts[m + 1];
        const double enorm = 2.0 / (pts[m + 2] - pts[m]);
        for (int k = 0; k < LM_MEL_N_BINS; k++) {
            const double hz = 16000.0 * (double)k / LM_MEL_N_FFT;
            const double lower = (hz - pts[m]) / d0, upper = (pts[m + 2] - hz) / d1;
            double v = lower < upper ? lower : upper;
            f[(size_t)m * LM_MEL_N_BINS + k] = v > 0 ? (float)(v * enorm) : 0.0f;
        }
    }
}

static void hann_periodic(float *w)
{
    for (int i = 0; i < LM_MEL_N_FFT; i++) w[i] = (float)(0.5 * (1.0 - cos(2.0 * M_PI * i / LM_MEL_N_FFT)));
}

/* Index i of a signal of length n under numpy's "reflect" padding (edge not repeated). */
static int64_t reflect_index(int64_t i, int64_t n)
{
    if (n == 1) return 0;
    const int64_t period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i >= n ? period - i : i;
}

/* Frame t of pcm[n], windowed, into dst[400]. */
static void load_frame(const float *pcm, int64_t n, int64_t t, const float *window, float *dst)
{
    const int64_t start = t * LM_MEL_HOP - LM_MEL_N_FFT / 2;
    if (start >= 0 && start + LM_MEL_N_FFT <= n) {
        for (int i = 0; i < LM_MEL_N_FFT; i++) dst[i] = pcm[start + i] * window[i];
    } else {
        for (int i = 0; i < LM_MEL_N_FFT; i++) dst[i] = pcm[reflect_index(start + i, n)] * window[i];
    }
}

/* w->power [201] = |X[k]|², k = 0..200, of the windowed frame w->frame [400]. */
static void frame_power(mel_worker *w)
{
    lm_rfft_forward(w->fft, w->frame, &w->spec[0][0]);
    for (int k = 0; k < LM_MEL_N_BINS; k++) w->power[k] = w->spec[k][0] * w->spec[k][0] + w->spec[k][1] * w->spec[k][1];
}

void lm_mel_free(lm_mel **pm)
{
    if (!pm || !*pm) return;
    lm_mel *m = *pm;
    if (m->w)
        for (int i = 0; i < m->n_threads; i++) lm_rfft_free(&m->w[i].fft);
    free(m->w);
    free(m->filters);
    free(m->lo);
    free(m->hi);
    free(m);
    *pm = NULL;
}

int lm_mel_create(int n_mels, int n_threads, lm_mel **out, lm_error *err)
{
    if (!out) return lm_fail(err, LOOM_ERR_INVALID_ARG, "mel: out is NULL");
    *out = NULL;
    if (n_mels < 1 || n_mels > MEL_MAX_BINS)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "mel: %d mel bins outside 1..%d", n_mels, MEL_MAX_BINS);
    if (n_threads < 1) n_threads = 1;
    if (n_threads > MEL_MAX_THREADS) n_threads = MEL_MAX_THREADS;
    lm_mel *m = calloc(1, sizeof *m);
    if (!m) return lm_fail(err, LOOM_ERR_NO_MEMORY, "mel: out of memory");
    m->n_mels = n_mels;
    m->n_threads = n_threads;
    m->filters = malloc((size_t)n_mels * LM_MEL_N_BINS * sizeof *m->filters);
    m->lo = malloc((size_t)n_mels * sizeof *m->lo);
    m->hi = malloc((size_t)n_mels * sizeof *m->hi);
    m->w = calloc((size_t)n_threads, sizeof *m->w);
    if (!m->filters || !m->lo || !m->hi || !m->w) goto oom;
    hann_periodic(m->window);
    slaney_filterbank(n_mels, m->filters);
    for (int i = 0; i < n_mels; i++) {
        const float *f = m->filters + (size_t)i * LM_MEL_N_BINS;
        int lo = 0, hi = LM_MEL_N_BINS;
        while (lo < hi && f[lo] == 0.0f) lo++;
        while (hi > lo && f[hi - 1] == 0.0f) hi--;
        m->lo[i] = lo;
        m->hi[i] = hi;
    }
    for (int i = 0; i < n_threads; i++)
        if (!(m->w[i].fft = lm_rfft_create(LM_MEL_N_FFT))) goto oom;
    *out = m;
    return 0;
oom:
    lm_mel_free(&m);
    return lm_fail(err, LOOM_ERR_NO_MEMORY, "mel: out of memory");
}

int lm_mel_n_mels(const lm_mel *m) { return m ? m->n_mels : 0; }

const float *lm_mel_filters(const lm_mel *m) { return m ? m->filters : NULL; }

typedef struct mel_job {
    lm_mel      *m;
    const float *pcm;
    int64_t      n, n_frames;
    float       *out;   /* [n_mels][n_frames] */
} mel_job;

static void mel_frames(void *arg, int ith, int nth)
{
    mel_job *j = arg;
    lm_mel *m = j->m;
    mel_worker *w = &m->w[ith];
    long long t0, t1;
    lm_split(j->n_frames, ith, nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        load_frame(j->pcm, j->n, t, m->window, w->frame);
        frame_power(w);
        for (int i = 0; i < m->n_mels; i++) {
            const float *f = m->filters + (size_t)i * LM_MEL_N_BINS;
            float s = 0;
            for (int k = m->lo[i]; k < m->hi[i]; k++) s += f[k] * w->power[k];
            j->out[(size_t)i * (size_t)j->n_frames + (size_t)t] = log10f(s > 1e-10f ? s : 1e-10f);
        }
    }
}

int lm_mel_log(lm_mel *m, const float *pcm, int64_t n, float *out, lm_pool *pool, lm_error *err)
{
    if (!m || (!pcm && n > 0) || n < 0)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "mel: bad arguments");
    if (lm_pool_size(pool) > m->n_threads)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "mel: pool has %d threads, the plan was made for %d",
                       lm_pool_size(pool), m->n_threads);
    mel_job j = {m, pcm, n, lm_mel_n_frames(n), out};
    if (j.n_frames == 0) return 0;
    if (!out) return lm_fail(err, LOOM_ERR_INVALID_ARG, "mel: no output buffer");
    lm_pool_run(pool, mel_frames, &j);
    return 0;
}

void lm_mel_normalize(float *x, int64_t n)
{
    if (n <= 0) return;
    float mx = x[0];
    for (int64_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    const float floor_ = mx - 8.0f;
    for (int64_t i = 0; i < n; i++) x[i] = ((x[i] > floor_ ? x[i] : floor_) + 4.0f) / 4.0f;
}

int lm_mel_compute(lm_mel *m, const float *pcm, int64_t n, float *out, lm_pool *pool, lm_error *err)
{
    int rc = lm_mel_log(m, pcm, n, out, pool, err);
    if (rc == 0) lm_mel_normalize(out, lm_mel_n_frames(n) * m->n_mels);
    return rc;
}

int lm_mel_compute_ref(int n_mels, const float *pcm, int64_t n, float *out, lm_error *err)
{
    if (n_mels < 1 || n_mels > MEL_MAX_BINS || n < 0 || (!pcm && n > 0))
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "mel ref: bad arguments");
    const int64_t nf = lm_mel_n_frames(n);
    float *f = malloc((size_t)n_mels * LM_MEL_N_BINS * sizeof *f);
    if (!f) return lm_fail(err, LOOM_ERR_NO_MEMORY, "mel ref: out of memory");
    slaney_filterbank(n_mels, f);
    float win[LM_MEL_N_FFT], fr[LM_MEL_N_FFT];
    double power[LM_MEL_N_BINS], cs[LM_MEL_N_FFT], sn[LM_MEL_N_FFT];
    hann_periodic(win);
    for (int i = 0; i < LM_MEL_N_FFT; i++) {
        cs[i] = cos(2.0 * M_PI * i / LM_MEL_N_FFT);
        sn[i] = sin(2.0 * M_PI * i / LM_MEL_N_FFT);
    }
    for (int64_t t = 0; t < nf; t++) {
        load_frame(pcm, n, t, win, fr);
        for (int k = 0; k < LM_MEL_N_BINS; k++) {
            double re = 0, im = 0;
            for (int i = 0; i < LM_MEL_N_FFT; i++) {
                const int a = (i * k) % LM_MEL_N_FFT;
                re += fr[i] * cs[a];
                im -= fr[i] * sn[a];
            }
            power[k] = re * re + im * im;
        }
        for (int m = 0; m < n_mels; m++) {
            double s = 0;
            for (int k = 0; k < LM_MEL_N_BINS; k++) s += (double)f[(size_t)m * LM_MEL_N_BINS + k] * power[k];
            out[(size_t)m * (size_t)nf + (size_t)t] = (float)log10(s > 1e-10 ? s : 1e-10);
        }
    }
    free(f);
    lm_mel_normalize(out, nf * n_mels);
    return 0;
}
