/* Vision parity against the PyTorch reference (fixtures from tools/parity/make_vision_fixtures.py):
 *  - resize (bilinear, bicubic; antialiased shrink + enlarge) vs torch F.interpolate(antialias=True):
 *    max abs diff <= 5e-4 on the 0..255 scale (float32 accumulation order differs);
 *  - full preprocessing (fit + resize + normalise) vs torch: max abs diff <= 1e-4 (normalised units);
 *  - encoder + projector on torch's own preprocessed input: max abs diff <= 1e-4 * max|ref|;
 *  - end to end (loom's PNG decode + preprocessing + encoder): <= 1e-3 * max|ref|. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/gguf.h"
#include "lib/core/threadpool.h"
#include "vision/image.h"
#include "vision/preprocess.h"
#include "vision/vit.h"
#include "lib/core/kernels_impl.h"
#include "lib/core/kernels.h"
#include "tests/check.h"
#include "tests/read_file.h"

#define D "data/vision/"

static float max_abs(const float *a, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fabsf(a[i]) > m ? fabsf(a[i]) : m;
    return m;
}

static float max_diff(const float *a, const float *b, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d;   /* NaN propagates */
    }
    return m;
}

static const char *IMGS[2] = {"wide", "tall"};

static void test_resize(void)
{
    for (int i = 0; i < 2; i++) {
        char path[128], err[256];
        snprintf(path, sizeof path, D "img_%s.png", IMGS[i]);
        loom_image img;
        int rc = loom_image_load(path, loom_image_default_params(), &img, err, sizeof err);
        CHECK(rc == 0, "%s: %s", path, err);
        if (rc) continue;
        for (int f = 0; f < 2; f++) {
            const char *fname = f == LM_RESIZE_BILINEAR ? "bilinear" : "bicubic";
            snprintf(path, sizeof path, D "resize_%s_%s.f32", fname, IMGS[i]);
            const size_t n = 3 * 17 * 64;
            float *ref = read_f32(path, n), *out = malloc(sizeof *out * n);
            CHECK(ref != NULL, "%s missing or wrong size", path);
            lm_resample_axis ax = {img.width, 0, img.width, 64, 0, 64}, ay = {img.height, 0, img.height, 17, 0, 17};
            const uint8_t fill[3] = {0, 0, 0};
            lm_error e = {0};
            rc = lm_resample_rgb8(img.rgb, (size_t)img.width * 3, &ax, &ay, f, fill, out, &e);
            CHECK(rc == 0, "resample: %s", e.msg);
            if (ref && rc == 0) {
                float d = max_diff(out, ref, n);
                CHECK(d <= 5e-4f, "resize %s %s: max diff %g (0..255 scale)", fname, IMGS[i], d);
                printf("resize %-8s %-4s %dx%d -> 64x17: max |loom - torch| = %.2e (of 255)\n", fname, IMGS[i],
                       img.width, img.height, d);
            }
            free(ref);
            free(out);
        }
        loom_image_free(&img);
    }
    /* bad geometry is refused, not read out of bounds */
    lm_resample_axis bad = {10, 5, 10, 4, 0, 4}, ok = {10, 0, 10, 4, 0, 4};
    uint8_t px[300] = {0};
    float out[48];
    lm_error e = {0};
    const uint8_t fill[3] = {0, 0, 0};
    CHECK(lm_resample_rgb8(px, 30, &bad, &ok, 0, fill, out, &e) == LOOM_ERR_INVALID_ARG, "bad axis accepted");
    CHECK(lm_resample_rgb8(px, 30, &ok, &ok, 7, fill, out, &e) == LOOM_ERR_INVALID_ARG, "bad filter accepted");
}

static void test_model(const char *mname, lm_pool *pool)
{
    char path[128];
    snprintf(path, sizeof path, D "vit_%s.gguf", mname);
    lm_gguf *g = NULL;
    lm_vit *vit = NULL;
    lm_vit_ctx *ctx = NULL;
    lm_error e = {0};
    int rc = lm_gguf_open(path, &g, &e);
    CHECK(rc == 0, "%s: %s", path, e.msg);
    if (rc) return;
    rc = lm_vit_load(g, &vit, &e);
    CHECK(rc == 0, "load %s: %s", path, e.msg);
    if (rc) { lm_gguf_close(&g); return; }
    const lm_vit_hparams *hp = lm_vit_hparams_of(vit);
    const int S = hp->image_size, nt = lm_vit_n_tokens(vit), no = lm_vit_n_embd_out(vit);
    CHECK(nt == (hp->merge == 2 ? 4 : 16) && no == 40, "%s: %d tokens x %d", mname, nt, no);
    /* vit_mlp.gguf has q/k/v back to back (fused GEMM path), vit_merge.gguf interleaved */
    CHECK(lm_vit_n_fused_qkv(vit) == (strcmp(mname, "mlp") == 0 ? hp->n_layer : 0), "%s: %d fused layers",
          mname, lm_vit_n_fused_qkv(vit));
    rc = lm_vit_ctx_create(vit, 2, &ctx, &e);
    CHECK(rc == 0, "ctx: %s", e.msg);
    const size_t n_in = 3 * (size_t)S * S, n_out = (size_t)nt * no;
    float *chw = malloc(sizeof *chw * 2 * n_in), *emb = malloc(sizeof *emb * 2 * n_out);
    float *mine = malloc(sizeof *mine * n_in);
    lm_preprocess pp = lm_vit_preprocess_params(vit);
    for (int i = 0; ctx && i < 2; i++) {
        char p2[128], err[256];
        snprintf(p2, sizeof p2, D "pre_%s_%s.f32", mname, IMGS[i]);
        float *pre = read_f32(p2, n_in);
        snprintf(p2, sizeof p2, D "emb_%s_%s.f32", mname, IMGS[i]);
        float *ref = read_f32(p2, n_out);
        CHECK(pre && ref, "fixtures for %s/%s missing", mname, IMGS[i]);
        if (!pre || !ref) { free(pre); free(ref); continue; }
        /* preprocessing: PNG → loom's fit/resize/normalise vs torch */
        snprintf(p2, sizeof p2, D "img_%s.png", IMGS[i]);
        loom_image img;
        rc = loom_image_load(p2, loom_image_default_params(), &img, err, sizeof err);
        CHECK(rc == 0, "%s: %s", p2, err);
        if (rc == 0) {
            rc = lm_image_preprocess(&img, &pp, mine, &e);
            CHECK(rc == 0, "preprocess: %s", e.msg);
            float d = max_diff(mine, pre, n_in);
            CHECK(d <= 1e-4f, "%s/%s preprocess: max diff %g", mname, IMGS[i], d);
            printf("preprocess %-5s %-4s (%s, %s): max |loom - torch| = %.2e (normalised units)\n", mname, IMGS[i],
                   pp.fit == LM_FIT_PAD ? "pad" : pp.fit == LM_FIT_CROP ? "crop" : "stretch",
                   pp.filter == LM_RESIZE_BICUBIC ? "bicubic" : "bilinear", d);
            loom_image_free(&img);
        }
        /* encoder on torch's input, batched as 2 copies (batch rows must not mix) */
        memcpy(chw, pre, sizeof *chw * n_in);
        memcpy(chw + n_in, pre, sizeof *chw * n_in);
        rc = lm_vit_encode(ctx, chw, 2, emb, pool, &e);
        CHECK(rc == 0, "encode: %s", e.msg);
        const float scale = max_abs(ref, n_out);
        float d0 = max_diff(emb, ref, n_out), d1 = max_diff(emb + n_out, ref, n_out);
        CHECK(d0 <= 1e-4f * scale && d1 <= 1e-4f * scale, "%s/%s encoder: max diff %g, %g (limit %g)", mname,
              IMGS[i], d0, d1, 1e-4f * scale);
        printf("encoder    %-5s %-4s: max |loom - torch| = %.2e = %.2e x max|ref| (%d tokens x %d)\n", mname,
               IMGS[i], d0, d0 / scale, nt, no);
        /* end to end: loom's own preprocessed input */
        rc = lm_vit_encode(ctx, mine, 1, emb, pool, &e);
        float d2 = max_diff(emb, ref, n_out);
        CHECK(rc == 0 && d2 <= 1e-3f * scale, "%s/%s end-to-end: max diff %g", mname, IMGS[i], d2);
        free(pre);
        free(ref);
    }
    /* misuse is refused */
    CHECK(lm_vit_encode(ctx, chw, 3, emb, pool, &e) == LOOM_ERR_INVALID_ARG, "batch over the planned size");
    free(chw);
    free(emb);
    free(mine);
    lm_vit_ctx_free(&ctx);
    lm_vit_ctx_free(&ctx);
    lm_vit_free(&vit);
    lm_vit_free(&vit);
    CHECK(vit == NULL && ctx == NULL, "free sets NULL");
    lm_gguf_close(&g);
}

/* A file with a key removed or a tensor of the wrong shape is a clear error. */
static void test_bad_models(void)
{
    lm_gguf *g = NULL;
    lm_error e = {0};
    lm_vit *vit = NULL;
    /* the image GGUF is fine for gguf but is not a vision model: clip.* keys missing */
    CHECK(lm_gguf_open(D "vit_mlp.gguf", &g, &e) == 0, "%s", e.msg);
    lm_gguf_close(&g);
    lm_gguf_writer *w = lm_gguf_writer_create();
    lm_gguf_set_u32(w, "clip.vision.image_size", 32);
    const char *tmp = "/tmp/loom_test_vit_bad.gguf";
    CHECK(lm_gguf_write(w, tmp, &e) == 0, "write: %s", e.msg);
    lm_gguf_writer_free(&w);
    CHECK(lm_gguf_open(tmp, &g, &e) == 0, "open: %s", e.msg);
    int rc = lm_vit_load(g, &vit, &e);
    CHECK(rc == LOOM_ERR_NOT_FOUND && strstr(e.msg, "clip.vision.patch_size"), "missing key: %d %s", rc, e.msg);
    CHECK(vit == NULL, "no encoder on failure");
    lm_gguf_close(&g);
    remove(tmp);
}

/* The AVX2 GELU/softmax against the portable kernels over a sweep of inputs. */
static void test_simd_kernels(void)
{
    const lm_cpu_caps *caps = lm_cpu_caps_get();
    if (!(caps->avx2 && caps->fma)) {
        printf("no AVX2+FMA: SIMD kernel check skipped\n");
        return;
    }
    enum { N = 4003 };   /* odd: exercises the scalar tail */
    static float x[N], y[N], r[N], b[N];
    for (int i = 0; i < N; i++) {
        x[i] = -12.0f + 24.0f * i / (N - 1);
        b[i] = 0.01f * (i % 7) - 0.03f;
    }
    for (int i = 0; i < N; i++) { y[i] = x[i]; r[i] = x[i] + b[i]; }
    lm_bias_gelu_erf_avx2(y, b, N);
    lm_gelu_erf(r, r, N);
    float worst = 0;
    for (int i = 0; i < N; i++) {
        float d = fabsf(y[i] - r[i]) / fmaxf(1.0f, fabsf(r[i]));
        worst = d > worst || d != d ? d : worst;
    }
    CHECK(worst <= 5e-7f, "AVX2 GELU vs lm_gelu_erf: max error %g", worst);
    printf("AVX2 GELU vs reference on [-12, 12]: max error %.2e (relative to max(1,|y|))\n", worst);
    for (int i = 0; i < N; i++) y[i] = r[i] = 30.0f * sinf(0.37f * i);
    lm_softmax_avx2(y, N);
    lm_softmax(r, N);
    worst = 0;
    for (int i = 0; i < N; i++) {
        float d = fabsf(y[i] - r[i]) / fmaxf(r[i], 1e-30f);
        if (r[i] > 1e-30f) worst = d > worst || d != d ? d : worst;
    }
    CHECK(worst <= 1e-5f, "AVX2 softmax vs lm_softmax: max relative error %g", worst);
    printf("AVX2 softmax vs reference: max relative error %.2e\n", worst);
}

int main(void)
{
    test_simd_kernels();
    lm_pool *pool = lm_pool_create(2);
    test_resize();
    test_model("mlp", pool);
    test_model("merge", pool);
    test_model("mlp", NULL);   /* single-threaded path gives the same answers */
    test_bad_models();
    lm_pool_free(&pool);
    return finish();
}
