/* Audio codec: conv1d decoder/encoder, NNLS mel inversion and fast Griffin-Lim. See audio_codec.h. */
#include "audio/audio_codec.h"

#include "lib/core/blas.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_codec_dsp.h"
#include "audio/rfft.h"
#include "lib/core/codec_common.h"
#include "lib/core/gguf.h"
#include "lib/core/kernels.h"

#define AC_MAX_RES   32
#define AC_MAX_DOWN  8
#define AC_MAX_FFT_THREADS 64   /* FFT plans kept per pool thread (more threads share work) */

typedef struct ac_conv {
    const float *w;   /* [cout][cin][k] */
    const float *b;   /* [cout]         */
    int cin, cout, k, stride, pad, dil;
} ac_conv;

typedef lm_norm_w ac_norm;   /* GroupNorm affine */

typedef struct ac_res {   /* x + conv2(swish(norm2(conv1(swish(norm1(x)))))), C→C */
    ac_norm norm1, norm2;
    ac_conv conv1, conv2;
} ac_res;

struct lm_audio_codec {
    lm_audio_codec_info info;
    int   n_fft, n_bins, C, n_down, n_res, groups, nnls_iters, gl_upsample;
    float mel_floor, mel_offset, mel_scale, eps, gl_alpha;

    /* weights (owned by `weights`) */
    const float *mel_filters;          /* [n_mels][n_bins]            */
    const float *codebook;             /* [K][D], unit rows           */
    ac_conv enc_conv_in, enc_down[AC_MAX_DOWN], enc_conv_out;
    ac_res  enc_res_in, enc_down_res[AC_MAX_DOWN];
    ac_norm enc_norm_out;
    ac_conv dec_conv_in, dec_up[AC_MAX_DOWN], dec_conv_out;
    ac_res  dec_res[AC_MAX_RES], dec_up_res[AC_MAX_DOWN];
    ac_norm dec_norm_out;
    lm_wstore weights;

    /* derived at load */
    float  *window;    /* [n_fft] periodic Hann                          (owned) */
    double *mt;        /* [n_bins][n_mels] Mᵀ in float64                 (owned) */
    double *mtm;       /* [n_bins][n_bins] MᵀM in float64                (owned) */
    int    *band;      /* [n_bins][2] first, last+1 nonzero column of each MᵀM row (owned) */
    lm_rfft *fft[AC_MAX_FFT_THREADS];  /* n_fft-point real FFT per thread (owned); [0] at load,
                                        * others when a larger pool first calls            */
    float   *fft_buf[AC_MAX_FFT_THREADS]; /* [n_fft + 2] frame buffer per thread (owned)   */
    int      n_fft_plans;

    /* scratch sized for cap_frames mel frames; see plan() */
    int64_t cap_frames;
    float  *farena;    /* owned */
    double *darena;    /* owned */
    float  *act[3], *col, *P, *A0, *A, *At, *X, *prev, *spec, *frames, *env, *sig;
    double *mtp, *S, *tmp;
};

/* ---------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------- */

static int load_conv(lm_wload *ld, const char *prefix, int cin, int cout, int k, int stride, int pad, int dil,
                     ac_conv *c)
{
    char name[160];
    float *w, *b;
    snprintf(name, sizeof name, "%.120s.weight", prefix);
    int rc = lm_wload_tensor(ld, name, 3, (int64_t[]){cout, cin, k}, &w);
    if (rc < 0) return rc;
    snprintf(name, sizeof name, "%.120s.bias", prefix);
    if ((rc = lm_wload_tensor(ld, name, 1, (int64_t[]){cout}, &b)) < 0) return rc;
    *c = (ac_conv){w, b, cin, cout, k, stride, pad, dil};
    return 0;
}

static int load_res(lm_wload *ld, const char *prefix, int c, int groups, int dil, ac_res *r)
{
    char p[160];
    int rc;
    snprintf(p, sizeof p, "%.120s.norm1", prefix);
    if ((rc = lm_wload_groupnorm(ld, p, c, groups, &r->norm1)) < 0) return rc;
    snprintf(p, sizeof p, "%.120s.conv1", prefix);
    if ((rc = load_conv(ld, p, c, c, 3, 1, dil, dil, &r->conv1)) < 0) return rc;
    snprintf(p, sizeof p, "%.120s.norm2", prefix);
    if ((rc = lm_wload_groupnorm(ld, p, c, groups, &r->norm2)) < 0) return rc;
    snprintf(p, sizeof p, "%.120s.conv2", prefix);
    return load_conv(ld, p, c, c, 3, 1, 1, 1, &r->conv2);
}

static int load_model(lm_audio_codec *ac, lm_wload *ld)
{
    uint32_t sr, n_fft, hop, n_mels, K, D, C, n_down, n_res, G, nnls, gl_iters, gl_up, dil[AC_MAX_RES];
    float cps;
    int n_dil, rc;
    if ((rc = lm_wload_arch(ld, "loom-audiocodec")) < 0) return rc;
    if ((rc = lm_wload_u32(ld, "loom.ac.sample_rate", 1000, 192000, &sr)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.ac.n_fft", 16, 8192, &n_fft)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.ac.hop", 1, 8192, &hop)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.ac.n_mels", 1, 1024, &n_mels)) < 0 ||
        (rc = lm_wload_f32(ld, "loom.ac.mel_floor", 1e-30f, 1.0f, &ac->mel_floor)) < 0 ||
        (rc = lm_wload_f32(ld, "loom.ac.mel_offset", -100.0f, 100.0f, &ac->mel_offset)) < 0 ||
        (rc = lm_wload_f32(ld, "loom.ac.mel_scale", 1e-3f, 1000.0f, &ac->mel_scale)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.ac.codebook_size", 1, 1u << 20, &K)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.ac.embed_dim", 1, 4096, &D)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.ac.ch", 1, 4096, &C)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.ac.n_down", 0, AC_MAX_DOWN, &n_down)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.ac.dec_res_blocks", 0, AC_MAX_RES, &n_res)) < 0 ||
        (rc = lm_wload_u32_arr(ld, "loom.ac.dec_dilations", AC_MAX_RES, 1, 1024, dil, &n_dil)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.ac.norm_groups", 1, 4096, &G)) < 0 ||
        (rc = lm_wload_f32(ld, "loom.ac.norm_eps", 0.0f, 1.0f, &ac->eps)) < 0 ||
        (rc = lm_wload_f32(ld, "loom.ac.codes_per_second", 1e-3f, 1e6f, &cps)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.ac.nnls_iters", 0, 10000, &nnls)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.ac.gl_iters", 0, 10000, &gl_iters)) < 0 ||
        (rc = lm_wload_u32(ld, "loom.ac.gl_upsample", 1, 64, &gl_up)) < 0 ||
        (rc = lm_wload_f32(ld, "loom.ac.gl_alpha", 0.0f, 10.0f, &ac->gl_alpha)) < 0)
        return rc;
    if (n_fft % 2)
        return lm_fail(ld->err, LOOM_ERR_UNSUPPORTED, "loom.ac.n_fft = %u: only even FFT sizes are supported", n_fft);
    if (hop % gl_up)
        return lm_fail(ld->err, LOOM_ERR_FORMAT, "loom.ac.hop = %u is not divisible by loom.ac.gl_upsample = %u", hop,
                       gl_up);
    if ((uint32_t)n_dil != n_res)
        return lm_fail(ld->err, LOOM_ERR_FORMAT, "loom.ac.dec_dilations has %d entries, dec_res_blocks is %u", n_dil,
                       n_res);
    const double want_cps = (double)sr / hop / (double)(1u << n_down);
    if (fabs(cps - want_cps) > 1e-3 * want_cps)
        return lm_fail(ld->err, LOOM_ERR_FORMAT,
                       "loom.ac.codes_per_second = %g, but sample_rate / hop / 2^n_down = %g", (double)cps, want_cps);
    ac->info = (lm_audio_codec_info){(int)sr, (int)hop, (int)n_mels, 1 << n_down, (int)K, (int)D, (float)want_cps,
                                     (int)gl_iters};
    ac->n_fft = (int)n_fft;
    ac->n_bins = (int)n_fft / 2 + 1;
    ac->C = (int)C;
    ac->n_down = (int)n_down;
    ac->n_res = (int)n_res;
    ac->groups = (int)G;
    ac->nnls_iters = (int)nnls;
    ac->gl_upsample = (int)gl_up;

    float *t;
    if ((rc = lm_wload_tensor(ld, "ac.mel_filters", 2, (int64_t[]){n_mels, ac->n_bins}, &t)) < 0) return rc;
    ac->mel_filters = t;
    if ((rc = lm_wload_tensor(ld, "ac.codebook", 2, (int64_t[]){K, D}, &t)) < 0) return rc;
    ac->codebook = t;

    const int c = (int)C, g = (int)G;
    char p[64];
    /* encoder */
    if ((rc = load_conv(ld, "ac.enc.conv_in", (int)n_mels, c, 3, 1, 1, 1, &ac->enc_conv_in)) < 0 ||
        (rc = load_res(ld, "ac.enc.res_in", c, g, 1, &ac->enc_res_in)) < 0)
        return rc;
    for (int i = 0; i < (int)n_down; i++) {
        snprintf(p, sizeof p, "ac.enc.down.%d.conv", i);
        if ((rc = load_conv(ld, p, c, c, 4, 2, 1, 1, &ac->enc_down[i])) < 0) return rc;
        snprintf(p, sizeof p, "ac.enc.down.%d.res", i);
        if ((rc = load_res(ld, p, c, g, 3, &ac->enc_down_res[i])) < 0) return rc;
    }
    if ((rc = lm_wload_groupnorm(ld, "ac.enc.norm_out", c, g, &ac->enc_norm_out)) < 0 ||
        (rc = load_conv(ld, "ac.enc.conv_out", c, (int)D, 3, 1, 1, 1, &ac->enc_conv_out)) < 0)
        return rc;
    /* decoder */
    if ((rc = load_conv(ld, "ac.dec.conv_in", (int)D, c, 3, 1, 1, 1, &ac->dec_conv_in)) < 0) return rc;
    for (int j = 0; j < (int)n_res; j++) {
        snprintf(p, sizeof p, "ac.dec.res.%d", j);
        if ((rc = load_res(ld, p, c, g, (int)dil[j], &ac->dec_res[j])) < 0) return rc;
    }
    for (int i = 0; i < (int)n_down; i++) {
        snprintf(p, sizeof p, "ac.dec.up.%d.conv", i);
        if ((rc = load_conv(ld, p, c, c, 3, 1, 1, 1, &ac->dec_up[i])) < 0) return rc;
        snprintf(p, sizeof p, "ac.dec.up.%d.res", i);
        if ((rc = load_res(ld, p, c, g, 1, &ac->dec_up_res[i])) < 0) return rc;
    }
    if ((rc = lm_wload_groupnorm(ld, "ac.dec.norm_out", c, g, &ac->dec_norm_out)) < 0 ||
        (rc = load_conv(ld, "ac.dec.conv_out", c, (int)n_mels, 3, 1, 1, 1, &ac->dec_conv_out)) < 0)
        return rc;
    return lm_wload_finish(ld);
}

/* FFT plans and frame buffers for n threads (only the first call with a larger pool allocates). */
static int ensure_fft_plans(lm_audio_codec *ac, int n, lm_error *err)
{
    if (n > AC_MAX_FFT_THREADS) n = AC_MAX_FFT_THREADS;
    for (; ac->n_fft_plans < n; ac->n_fft_plans++) {
        const int i = ac->n_fft_plans;
        ac->fft[i] = lm_rfft_create(ac->n_fft);
        ac->fft_buf[i] = malloc(sizeof(float) * (ac->n_fft + 2));
        if (!ac->fft[i] || !ac->fft_buf[i]) {
            lm_rfft_free(&ac->fft[i]);
            free(ac->fft_buf[i]);
            ac->fft_buf[i] = NULL;
            return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio codec: cannot plan a %d-point real FFT", ac->n_fft);
        }
    }
    return 0;
}

/* Window, Mᵀ and MᵀM in float64, FFT plans. */
static int prepare_dsp(lm_audio_codec *ac, lm_error *err)
{
    const int N = ac->n_fft, B = ac->n_bins, M = ac->info.n_mels;
    ac->window = malloc(sizeof(float) * N);
    ac->mt = malloc(sizeof(double) * B * M);
    ac->mtm = malloc(sizeof(double) * B * B);
    ac->band = malloc(sizeof(int) * 2 * B);
    if (!ac->window || !ac->mt || !ac->mtm || !ac->band)
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio codec: out of memory");
    for (int n = 0; n < N; n++) ac->window[n] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * n / N));   /* periodic */
    for (int k = 0; k < B; k++)
        for (int m = 0; m < M; m++) ac->mt[(size_t)k * M + m] = (double)ac->mel_filters[(size_t)m * B + k];
    lm_dgemm(LM_NO_TRANS, LM_TRANS, B, B, M, 1.0, ac->mt, M, ac->mt, M, 0.0, ac->mtm, B);
    /* Mel filters are narrow triangles, so MᵀM is banded: the NNLS product only needs each
     * row's nonzero span (exact zeros elsewhere add nothing to the float64 sums). */
    for (int k = 0; k < B; k++) {
        int lo = 0, hi = B;
        while (lo < B && ac->mtm[(size_t)k * B + lo] == 0.0) lo++;
        while (hi > lo && ac->mtm[(size_t)k * B + hi - 1] == 0.0) hi--;
        ac->band[2 * k] = lo;
        ac->band[2 * k + 1] = hi;
    }
    return ensure_fft_plans(ac, 1, err);
    return 0;
}

/* Scratch for inputs of up to T mel frames (decode: codes·2^n_down; encode: padded frames;
 * vocode: T). Grows, never shrinks; a length already seen never allocates. */
static int plan(lm_audio_codec *ac, int64_t T, lm_error *err)
{
    if (T <= ac->cap_frames) return 0;
    if (T > LM_AC_MAX_FRAMES)
        return lm_fail(err, LOOM_ERR_LIMIT, "audio of %lld mel frames exceeds the limit of %d", (long long)T,
                       LM_AC_MAX_FRAMES);
    const int64_t B = ac->n_bins, M = ac->info.n_mels, k = ac->gl_upsample;
    int64_t ch = ac->C;
    if (M > ch) ch = M;
    if (ac->info.embed_dim > ch) ch = ac->info.embed_dim;
    const int64_t Tg = (T - 1) * k + 1;                              /* Griffin-Lim frames      */
    const int64_t n_sig = (int64_t)ac->info.hop * (T + 1) + ac->n_fft; /* ≥ any padded signal  */
    const int64_t n_act = ch * T, n_col = 4 * ch * T;
    const int64_t n_f = 3 * n_act + n_col + M * T + B * T + 2 * B * Tg + 3 * 2 * B * Tg + Tg * ac->n_fft + 2 * n_sig;
    const int64_t n_d = 3 * B * T;
    float *f = malloc(sizeof(float) * (size_t)n_f);
    double *d = malloc(sizeof(double) * (size_t)n_d);
    if (!f || !d) {
        free(f);
        free(d);
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "audio codec scratch for %lld frames: out of memory", (long long)T);
    }
    free(ac->farena);
    free(ac->darena);
    ac->farena = f;
    ac->darena = d;
    for (int i = 0; i < 3; i++, f += n_act) ac->act[i] = f;
    ac->col = f, f += n_col;
    ac->P = f, f += M * T;
    ac->A0 = f, f += B * T;
    ac->A = f, f += B * Tg;
    ac->At = f, f += B * Tg;
    ac->X = f, f += 2 * B * Tg;
    ac->prev = f, f += 2 * B * Tg;
    ac->spec = f, f += 2 * B * Tg;
    ac->frames = f, f += Tg * ac->n_fft;
    ac->env = f, f += n_sig;
    ac->sig = f;
    ac->mtp = d, ac->S = d + B * T, ac->tmp = d + 2 * B * T;
    ac->cap_frames = T;
    return 0;
}

int lm_audio_codec_open(const char *path, lm_audio_codec **out, lm_error *err)
{
    if (!out || !path) return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_audio_codec_open: NULL argument");
    *out = NULL;
    lm_audio_codec *ac = calloc(1, sizeof *ac);
    if (!ac) return lm_fail(err, LOOM_ERR_NO_MEMORY, "out of memory");
    lm_gguf *g = NULL;
    lm_wload ld = {0};
    int rc = lm_gguf_open(path, &g, err);
    if (rc == 0) rc = lm_wload_init(&ld, g, &ac->weights, err);
    if (rc == 0) rc = load_model(ac, &ld);
    lm_wload_done(&ld);
    lm_gguf_close(&g);
    if (rc == 0) rc = prepare_dsp(ac, err);
    if (rc == 0) rc = plan(ac, 100, err);   /* one second up front */
    if (rc < 0) {
        if (err && strncmp(err->msg, path, strlen(path)) != 0) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            lm_fail(err, rc, "%s: %s", path, msg);
        }
        lm_audio_codec_free(&ac);
        return rc;
    }
    *out = ac;
    return 0;
}

void lm_audio_codec_free(lm_audio_codec **pac)
{
    if (!pac || !*pac) return;
    lm_audio_codec *ac = *pac;
    lm_wstore_free(&ac->weights);
    for (int i = 0; i < ac->n_fft_plans; i++) {
        lm_rfft_free(&ac->fft[i]);
        free(ac->fft_buf[i]);
    }
    free(ac->window);
    free(ac->mt);
    free(ac->mtm);
    free(ac->band);
    free(ac->farena);
    free(ac->darena);
    free(ac);
    *pac = NULL;
}

lm_audio_codec_info lm_audio_codec_get_info(const lm_audio_codec *ac)
{
    lm_audio_codec_info none = {0};
    return ac ? ac->info : none;
}

/* ---------------------------------------------------------------------------------------
 * Conv stacks
 * ------------------------------------------------------------------------------------- */

static int64_t conv_out_len(const ac_conv *c, int64_t L)
{
    return (L + 2 * c->pad - c->dil * (c->k - 1) - 1) / c->stride + 1;
}

static void conv(lm_audio_codec *ac, const ac_conv *c, float *y, const float *x, int64_t L, lm_pool *pool)
{
    lm_conv1d_dilated(y, x, c->w, c->b, c->cin, L, c->cout, c->k, c->stride, c->pad, c->dil, ac->col, pool);
}

static void norm(lm_audio_codec *ac, const ac_norm *n, float *y, const float *x, int64_t L, lm_pool *pool)
{
    lm_codec_norm(y, x, n->w, n->b, n->c, L, ac->groups, ac->eps, 1, pool);
}

/* a[C][L] in place; t1, t2 scratch. */
static void res(lm_audio_codec *ac, const ac_res *r, float *a, float *t1, float *t2, int64_t L, lm_pool *pool)
{
    norm(ac, &r->norm1, t1, a, L, pool);
    conv(ac, &r->conv1, t2, t1, L, pool);
    norm(ac, &r->norm2, t2, t2, L, pool);
    conv(ac, &r->conv2, t1, t2, L, pool);
    lm_codec_add(a, t1, (int64_t)r->conv2.cout * L);
}

static void run_decoder(lm_audio_codec *ac, const int32_t *codes, int64_t n, float *x, lm_pool *pool)
{
    const int D = ac->info.embed_dim;
    float *a = ac->act[0], *t1 = ac->act[1], *t2 = ac->act[2];
    for (int64_t p = 0; p < n; p++)
        for (int d = 0; d < D; d++) t1[d * n + p] = ac->codebook[(size_t)codes[p] * D + d];
    conv(ac, &ac->dec_conv_in, a, t1, n, pool);
    int64_t L = n;
    for (int j = 0; j < ac->n_res; j++) res(ac, &ac->dec_res[j], a, t1, t2, L, pool);
    for (int i = 0; i < ac->n_down; i++) {
        for (int64_t c = 0; c < ac->C; c++)        /* nearest ×2 in time */
            for (int64_t t = 0; t < L; t++) t1[c * 2 * L + 2 * t] = t1[c * 2 * L + 2 * t + 1] = a[c * L + t];
        L *= 2;
        conv(ac, &ac->dec_up[i], a, t1, L, pool);
        res(ac, &ac->dec_up_res[i], a, t1, t2, L, pool);
    }
    norm(ac, &ac->dec_norm_out, t1, a, L, pool);
    conv(ac, &ac->dec_conv_out, x, t1, L, pool);
}

int lm_audio_codec_decode_mel(lm_audio_codec *ac, const int32_t *codes, int64_t n, float *x, lm_pool *pool,
                              lm_error *err)
{
    if (!ac || !codes || !x || n <= 0)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_audio_codec_decode_mel: NULL argument or %lld codes",
                       (long long)n);
    for (int64_t p = 0; p < n; p++)
        if (codes[p] < 0 || codes[p] >= ac->info.codebook_size)
            return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio code %d at position %lld is outside [0, %d)", codes[p],
                           (long long)p, ac->info.codebook_size);
    if (n > LM_AC_MAX_FRAMES / ac->info.frames_per_code)
        return lm_fail(err, LOOM_ERR_LIMIT, "%lld audio codes exceed the limit of %d", (long long)n,
                       LM_AC_MAX_FRAMES / ac->info.frames_per_code);
    int rc = plan(ac, n * ac->info.frames_per_code, err);
    if (rc < 0) return rc;
    run_decoder(ac, codes, n, x, pool);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * STFT / iSTFT with torch.stft / torch.istft conventions (center=True, reflect padding,
 * periodic Hann, onesided). Spectra are frame-major: spec[t][k] = (re, im).
 * ------------------------------------------------------------------------------------- */

typedef struct fft_task {
    lm_audio_codec *ac;
    const float    *in;     /* stft: padded signal; istft: spectra [T][B][2]      */
    float          *out;    /* stft: spectra; istft: output samples               */
    int64_t         T;      /* frames                                             */
    int64_t         length; /* istft: output samples                              */
    int             hop;
    int             avx512; /* batch the FFTs 16 frames at a time (rfft_avx512.c)  */
} fft_task;

static void stft_part(void *arg, int ith, int nth)
{
    const fft_task *t = arg;
    lm_audio_codec *ac = t->ac;
    const int N = ac->n_fft, B = ac->n_bins;
    long long lo, hi;
    lm_split(t->T, ith, nth, &lo, &hi);
    float *buf = ac->fft_buf[ith];   /* callers run this on at most n_fft_plans threads */
    if (t->avx512) {
        lm_rfft_forward_many_avx512(ac->fft[ith], (int)(hi - lo), t->in + lo * t->hop, t->hop, ac->window,
                                    t->out + lo * 2 * B, 2 * B);
        return;
    }
    for (long long f = lo; f < hi; f++) {
        for (int n = 0; n < N; n++) buf[n] = t->in[f * t->hop + n] * ac->window[n];
        lm_rfft_forward(ac->fft[ith], buf, t->out + f * 2 * B);
    }
}

/* x [L] (L > n_fft/2) → spec [n_frames][n_bins][2], n_frames = 1 + L / hop; keeps the first
 * `keep` frames. Uses ac->sig for the padded signal; frames split across the pool. */
static void stft(lm_audio_codec *ac, const float *x, int64_t L, int hop, int64_t keep, float *spec, lm_pool *pool)
{
    const int N = ac->n_fft, half = N / 2;
    float *xp = ac->sig;
    for (int64_t i = 0; i < L + N; i++) {
        int64_t j = i - half;
        if (j < 0) j = -j;                  /* reflect, edge sample not repeated */
        else if (j >= L) j = 2 * (L - 1) - j;
        xp[i] = x[j];
    }
    int64_t n_frames = 1 + L / hop;
    if (n_frames > keep) n_frames = keep;
    fft_task t = {ac, xp, spec, n_frames, 0, hop, !strcmp(lm_kernels_name(), "avx512")};
    lm_pool_run(lm_pool_size(pool) <= ac->n_fft_plans ? pool : NULL, stft_part, &t);
}

/* Frame f of the iSTFT: irfft (1/N, as torch.istft) times the window, into frames[f]. */
static void istft_frames_part(void *arg, int ith, int nth)
{
    const fft_task *t = arg;
    lm_audio_codec *ac = t->ac;
    const int N = ac->n_fft, B = ac->n_bins;
    long long lo, hi;
    lm_split(t->T, ith, nth, &lo, &hi);
    if (t->avx512) {
        lm_rfft_inverse_many_avx512(ac->fft[ith], (int)(hi - lo), t->in + lo * 2 * B, 2 * B, ac->window,
                                    ac->frames + lo * N, N);
        return;
    }
    for (long long f = lo; f < hi; f++) {
        float *fr = ac->frames + f * N;
        lm_rfft_inverse(ac->fft[ith], t->in + f * 2 * B, fr);
        for (int n = 0; n < N; n++) fr[n] *= ac->window[n];
    }
}

/* Overlap-add over this thread's range of output samples: the frames overlapping it are added
 * in increasing order (the same float additions, per sample, as one sequential pass), then
 * divided by the overlap-added squared window. Samples split across the pool. */
static void istft_ola_part(void *arg, int ith, int nth)
{
    const fft_task *t = arg;
    lm_audio_codec *ac = t->ac;
    const int64_t N = ac->n_fft, half = N / 2, hop = t->hop;
    long long lo, hi;
    lm_split(t->length, ith, nth, &lo, &hi);
    if (lo >= hi) return;
    float *y = t->out, *env = ac->env;
    for (long long i = lo; i < hi; i++) y[i] = env[i] = 0.0f;
    const int64_t p0 = half + lo, p1 = half + hi;   /* padded positions [p0, p1) */
    int64_t f = p0 - N + 1 <= 0 ? 0 : (p0 - N + 1 + hop - 1) / hop;
    int64_t f_last = (p1 - 1) / hop;
    if (f_last > t->T - 1) f_last = t->T - 1;
    for (; f <= f_last; f++) {
        const int64_t s = f * hop > p0 ? f * hop : p0, e = f * hop + N < p1 ? f * hop + N : p1;
        const float *fr = ac->frames + f * N - f * hop, *w = ac->window - f * hop;   /* indexed by position */
        for (int64_t p = s; p < e; p++) {
            y[p - half] += fr[p];
            env[p - half] += w[p] * w[p];
        }
    }
    for (long long i = lo; i < hi; i++) y[i] /= env[i];
}

/* spec [T][n_bins][2] → y [length], length = (T − 1)·hop (torch.istft, center=True). */
static void istft(lm_audio_codec *ac, const float *spec, int64_t T, int hop, float *y, lm_pool *pool)
{
    fft_task t = {ac, spec, y, T, (T - 1) * hop, hop, !strcmp(lm_kernels_name(), "avx512")};
    lm_pool_run(lm_pool_size(pool) <= ac->n_fft_plans ? pool : NULL, istft_frames_part, &t);
    lm_pool_run(pool, istft_ola_part, &t);
}

/* ---------------------------------------------------------------------------------------
 * Vocoder
 * ------------------------------------------------------------------------------------- */

int lm_audio_codec_vocode(lm_audio_codec *ac, const float *x, int64_t T, int gl_iters, float *pcm, float *mag,
                          lm_pool *pool, lm_error *err)
{
    if (!ac || !x || !pcm) return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_audio_codec_vocode: NULL argument");
    const int B = ac->n_bins, M = ac->info.n_mels, k = ac->gl_upsample, hop = ac->info.hop, hop_g = hop / k;
    if (T < 2 || (T - 1) * hop <= ac->n_fft / 2)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "vocoder needs more than %d samples of signal, %lld frames give %lld",
                       ac->n_fft / 2, (long long)T, (long long)((T - 1) * hop));
    int rc = plan(ac, T, err);
    if (rc == 0) rc = ensure_fft_plans(ac, lm_pool_size(pool), err);
    if (rc < 0) return rc;
    if (gl_iters < 0) gl_iters = ac->info.gl_iters;

    /* 1. mel power P = 10^(x·scale − offset), float32 as in the reference */
    for (int64_t i = 0; i < M * T; i++) ac->P[i] = powf(10.0f, x[i] * ac->mel_scale - ac->mel_offset);
    /* 2. NNLS in float64: S ← MᵀP; S ← S ⊙ MᵀP / (MᵀM S + 1e-10) */
    double *mtp = ac->mtp, *S = ac->S, *tmp = ac->tmp;
    for (int64_t i = 0; i < M * T; i++) tmp[i] = (double)ac->P[i];
    lm_dgemm(LM_NO_TRANS, LM_NO_TRANS, B, (int)T, M, 1.0, ac->mt, M, tmp, (int)T, 0.0, mtp,
                (int)T);
    memcpy(S, mtp, sizeof(double) * B * T);
    const int avx512 = !strcmp(lm_kernels_name(), "avx512");
    for (int it = 0; it < ac->nnls_iters; it++) {
        if (avx512) lm_ac_nnls_iter_avx512(S, tmp, mtp, ac->mtm, ac->band, B, T);
        else lm_ac_nnls_iter_body(S, tmp, mtp, ac->mtm, ac->band, B, T);
    }
    /* 3. A = sqrt(float(S)), then linear upsampling in time to Tg frames */
    for (int64_t i = 0; i < B * T; i++) ac->A0[i] = sqrtf((float)S[i]);
    if (mag) memcpy(mag, ac->A0, sizeof(float) * B * T);
    const int64_t Tg = (T - 1) * k + 1;
    float *A = ac->A0;
    if (k > 1) {
        A = ac->A;
        for (int64_t j = 0; j < Tg; j++) {
            const float pos = (float)j / (float)k;
            int64_t i0 = (int64_t)floorf(pos);
            if (i0 > T - 1) i0 = T - 1;
            const int64_t i1 = i0 + 1 < T ? i0 + 1 : T - 1;
            const float w = pos - (float)i0;
            for (int b = 0; b < B; b++) A[b * Tg + j] = ac->A0[b * T + i0] * (1.0f - w) + ac->A0[b * T + i1] * w;
        }
    }
    /* 4. fast Griffin-Lim: X = A (phase 0), prev = 0; At = A frame-major [Tg][B] */
    float *X = ac->X, *prev = ac->prev, *C = ac->spec, *At = ac->At;
    for (int64_t t = 0; t < Tg; t++)
        for (int b = 0; b < B; b++) {
            At[t * B + b] = X[(t * B + b) * 2] = A[b * Tg + t];
            X[(t * B + b) * 2 + 1] = 0.0f;
        }
    memset(prev, 0, sizeof(float) * 2 * B * Tg);
    const int64_t L = (Tg - 1) * hop_g;
    float *y = pcm;   /* (T − 1)·hop ≤ T·hop samples: the caller's buffer holds the iterate */
    const float alpha = ac->gl_alpha;
    for (int it = 0; it < gl_iters; it++) {
        istft(ac, X, Tg, hop_g, y, pool);
        stft(ac, y, L, hop_g, Tg, C, pool);
        if (avx512) lm_ac_gl_update_avx512(X, prev, C, At, alpha, B * Tg);
        else lm_ac_gl_update_body(X, prev, C, At, alpha, B * Tg);
    }
    istft(ac, X, Tg, hop_g, y, pool);
    /* 5. pad to T·hop, peak-normalise to 0.9 */
    const int64_t n = T * hop;
    for (int64_t i = L; i < n; i++) y[i] = 0.0f;
    float peak = 0.0f;
    for (int64_t i = 0; i < n; i++) peak = fmaxf(peak, fabsf(y[i]));
    if (peak > 0.9f) {
        const float s = (float)(0.9 / (double)peak);
        for (int64_t i = 0; i < n; i++) y[i] *= s;
    }
    return 0;
}

int lm_audio_codec_decode(lm_audio_codec *ac, const int32_t *codes, int64_t n, float *pcm, lm_pool *pool,
                          lm_error *err)
{
    if (!ac || !pcm) return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_audio_codec_decode: NULL argument");
    if (n <= 0 || n > LM_AC_MAX_FRAMES / ac->info.frames_per_code)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "%lld audio codes: need 1..%d", (long long)n,
                       LM_AC_MAX_FRAMES / ac->info.frames_per_code);
    /* Plan first: planning may move the arena, and x lives in it (act[0], which the decoder's
     * last conv may write and the vocoder never touches). */
    int rc = plan(ac, n * ac->info.frames_per_code, err);
    if (rc == 0) rc = lm_audio_codec_decode_mel(ac, codes, n, ac->act[0], pool, err);
    if (rc < 0) return rc;
    return lm_audio_codec_vocode(ac, ac->act[0], n * ac->info.frames_per_code, -1, pcm, NULL, pool, err);
}

int64_t lm_audio_codec_n_codes(const lm_audio_codec *ac, int64_t n_samples)
{
    if (!ac || n_samples < 0) return 0;
    const int64_t frames = n_samples / ac->info.hop + 1, f = ac->info.frames_per_code;
    return (frames + f - 1) / f;
}

/* ---------------------------------------------------------------------------------------
 * Encoder: PCM → log-mel → conv encoder → codes
 * ------------------------------------------------------------------------------------- */

int lm_audio_codec_encode(lm_audio_codec *ac, const float *pcm, int64_t n_samples, int32_t *codes, float *mel,
                          float *z, lm_pool *pool, lm_error *err)
{
    if (!ac || !pcm || !codes) return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_audio_codec_encode: NULL argument");
    const int B = ac->n_bins, M = ac->info.n_mels, hop = ac->info.hop, f = ac->info.frames_per_code;
    if (n_samples <= ac->n_fft / 2)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "audio of %lld samples is too short to encode (needs > %d)",
                       (long long)n_samples, ac->n_fft / 2);
    if (n_samples / hop + 1 > LM_AC_MAX_FRAMES - f)
        return lm_fail(err, LOOM_ERR_LIMIT, "audio of %lld samples exceeds the limit of %d mel frames",
                       (long long)n_samples, LM_AC_MAX_FRAMES);
    const int64_t T = n_samples / hop + 1, n_codes = lm_audio_codec_n_codes(ac, n_samples), Tp = n_codes * f;
    int rc = plan(ac, Tp + 1, err);   /* + 1: the padded signal of stft needs (T + 1)·hop */
    if (rc == 0) rc = ensure_fft_plans(ac, lm_pool_size(pool), err);
    if (rc < 0) return rc;
    /* power spectrum |X|² [T][B] (frame-major) → mel [M][Tp] = filters · power, log10, pad */
    stft(ac, pcm, n_samples, hop, T, ac->spec, pool);
    float *pw = ac->A;   /* [B][T] */
    for (int64_t t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            const float re = ac->spec[(t * B + b) * 2], im = ac->spec[(t * B + b) * 2 + 1];
            const float m = hypotf(re, im);   /* torch: abs() then ** 2 */
            pw[b * T + t] = m * m;
        }
    float *x = ac->act[0];
    lm_sgemm_pool(pool, LM_NO_TRANS, LM_NO_TRANS, M, (int)T, B, 1.0f, ac->mel_filters, B, pw, (int)T, 0.0f,
                  ac->P, (int)T);
    const float floor_x = (float)((log10((double)ac->mel_floor) + ac->mel_offset) / ac->mel_scale);
    for (int m = 0; m < M; m++) {
        for (int64_t t = 0; t < T; t++)
            x[m * Tp + t] = (log10f(fmaxf(ac->P[m * T + t], ac->mel_floor)) + ac->mel_offset) / ac->mel_scale;
        for (int64_t t = T; t < Tp; t++) x[m * Tp + t] = floor_x;
    }
    if (mel)
        for (int m = 0; m < M; m++) memcpy(mel + m * T, x + m * Tp, sizeof(float) * T);
    /* encoder */
    float *a = ac->act[1], *t1 = ac->act[2], *t2 = ac->act[0];
    conv(ac, &ac->enc_conv_in, a, x, Tp, pool);
    int64_t L = Tp;
    res(ac, &ac->enc_res_in, a, t1, t2, L, pool);
    for (int i = 0; i < ac->n_down; i++) {
        conv(ac, &ac->enc_down[i], t1, a, L, pool);
        L = conv_out_len(&ac->enc_down[i], L);
        float *s = a;
        a = t1;
        t1 = s;
        res(ac, &ac->enc_down_res[i], a, t1, t2, L, pool);
    }
    norm(ac, &ac->enc_norm_out, t1, a, L, pool);
    conv(ac, &ac->enc_conv_out, t2, t1, L, pool);
    lm_codec_argmax_cosine(ac->codebook, ac->info.codebook_size, ac->info.embed_dim, t2, L, codes);
    if (z) memcpy(z, t2, sizeof(float) * ac->info.embed_dim * L);
    return 0;
}
