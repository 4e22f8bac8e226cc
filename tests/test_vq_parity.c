/*
 * VQ image codec vs PyTorch (tools/loompy/vq.py) on the random-weight fixtures made by
 * tools/parity/make_vq_fixtures.py: data/vq/tiny_vq.gguf + data/vq/vq_io.gguf.
 *
 * Tolerances:
 *   decoder output x:   max |x_c - x_torch| <= fixture.tol_dec_out (1e-4) — i.e. 5e-5 in [0,1]
 *                       pixel units, well under the 1e-3 (float sums in another order)
 *   RGB8:               every channel within 1 level of PyTorch's (rounding at .5 boundaries)
 *   encoder z:          max |z_c - z_torch| <= fixture.tol_enc_z (1e-4)
 *   codes:              identical, except where PyTorch's best-vs-second cosine gap < 1e-4
 *                       (codes_gap), where either code is accepted
 * Winograd 3×3 conv vs the naive reference (odd and even sizes, 1 and 2 threads):
 *   |fast − ref| <= 1e-5 · (1 + Σ|w·x| over the window), as test_kernels states for conv.
 * Also: threads (pool of 2) agree with one thread to 1e-5; bad codes and damaged model files
 * fail with the status and a message naming the key or tensor.
 */
#include "tests/codec_test_util.h"

#include "include/loom.h"
#include "lib/core/threadpool.h"
#include "lib/core/kernels.h"
#include "vision/vq.h"
#include "vision/winograd.h"

#define MODEL "data/vq/tiny_vq.gguf"

static void test_decode(lm_vq *vq, const lm_gguf *io, lm_pool *pool)
{
    const lm_vq_info in = lm_vq_get_info(vq);
    const int S = in.image_size, g = in.grid, B = 2;
    const float *codes_f = fixture(io, "codes_in", (int64_t)B * g * g);
    const float *dec = fixture(io, "dec_out", (int64_t)B * 3 * S * S);
    const float *pix = fixture(io, "pixels_out", (int64_t)B * S * S * 3);
    const float tol = fixture_f32(io, "fixture.tol_dec_out", 1e-4f);
    if (!codes_f || !dec || !pix) return;
    int32_t *codes = xmalloc(sizeof(int32_t) * g * g);
    float *x = xmalloc(sizeof(float) * 3 * S * S), *x1 = xmalloc(sizeof(float) * 3 * S * S);
    uint8_t *rgb = xmalloc((size_t)S * S * 3);
    for (int b = 0; b < B; b++) {
        for (int p = 0; p < g * g; p++) codes[p] = (int32_t)codes_f[b * g * g + p];
        lm_error e = {0};
        CHECK(lm_vq_decode(vq, codes, x, pool, &e) == 0, "decode %d: %s", b, e.msg);
        float d = max_abs_diff(x, dec + (size_t)b * 3 * S * S, 3 * S * S);
        printf("image %d: decoder max |dx| = %.3g (tol %.3g; %.3g in [0,1] units)\n", b, d, tol, d / 2);
        CHECK(d <= tol, "image %d: decoder output differs by %g > %g", b, d, tol);
        lm_vq_to_rgb8(x, S, rgb);
        int off1 = 0, worse = 0;
        for (int i = 0; i < S * S * 3; i++) {
            int diff = abs((int)rgb[i] - (int)pix[(size_t)b * S * S * 3 + i]);
            off1 += diff == 1;
            worse += diff > 1;
        }
        printf("image %d: RGB8 %d of %d channels off by 1, %d by more\n", b, off1, S * S * 3, worse);
        CHECK(worse == 0, "image %d: %d RGB8 values differ by more than 1", b, worse);
        /* same codes again, single thread: deterministic and thread-count independent */
        CHECK(lm_vq_decode(vq, codes, x1, NULL, &e) == 0, "decode (1 thread): %s", e.msg);
        CHECK(max_abs_diff(x, x1, 3 * S * S) <= 1e-5f, "image %d: 1 vs 2 threads differ by %g", b,
              max_abs_diff(x, x1, 3 * S * S));
    }
    /* a code outside [0, K) is refused, naming its position */
    codes[5] = in.codebook_size;
    lm_error e = {0};
    CHECK(lm_vq_decode(vq, codes, x, pool, &e) == LOOM_ERR_INVALID_ARG && strstr(e.msg, "(0, 5)"),
          "bad code: status %d '%s'", e.status, e.msg);
    codes[5] = -1;
    CHECK(lm_vq_decode(vq, codes, x, pool, &e) == LOOM_ERR_INVALID_ARG, "negative code accepted");
    free(codes);
    free(x);
    free(x1);
    free(rgb);
}

static void test_encode(lm_vq *vq, const lm_gguf *io, lm_pool *pool)
{
    const lm_vq_info in = lm_vq_get_info(vq);
    const int S = in.image_size, g = in.grid, D = in.embed_dim, B = 2;
    const float *img = fixture(io, "image_in", (int64_t)B * S * S * 3);
    const float *z_ref = fixture(io, "enc_z", (int64_t)B * D * g * g);
    const float *codes_ref = fixture(io, "codes_out", (int64_t)B * g * g);
    const float *gap = fixture(io, "codes_gap", (int64_t)B * g * g);
    const float tol = fixture_f32(io, "fixture.tol_enc_z", 1e-4f);
    if (!img || !z_ref || !codes_ref || !gap) return;
    uint8_t *rgb = xmalloc((size_t)S * S * 3);
    int32_t *codes = xmalloc(sizeof(int32_t) * g * g);
    float *z = xmalloc(sizeof(float) * D * g * g);
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < S * S * 3; i++) rgb[i] = (uint8_t)img[(size_t)b * S * S * 3 + i];
        lm_error e = {0};
        CHECK(lm_vq_encode(vq, rgb, codes, z, pool, &e) == 0, "encode %d: %s", b, e.msg);
        float d = max_abs_diff(z, z_ref + (size_t)b * D * g * g, D * g * g);
        int same = 0, near_tie = 0, wrong = 0;
        for (int p = 0; p < g * g; p++) {
            int ref = (int)codes_ref[b * g * g + p];
            if (codes[p] == ref) same++;
            else if (gap[b * g * g + p] < 1e-4f) near_tie++;
            else wrong++;
        }
        printf("image %d: encoder max |dz| = %.3g (tol %.3g); codes %d identical, %d near-tie swaps, %d wrong\n", b,
               d, tol, same, near_tie, wrong);
        CHECK(d <= tol, "image %d: encoder z differs by %g > %g", b, d, tol);
        CHECK(wrong == 0, "image %d: %d codes differ from PyTorch", b, wrong);
    }
    free(rgb);
    free(codes);
    free(z);
}

/* A damaged copy of the model must fail with `status` and a message containing `what`. */
static void expect_load_error(const gguf_edit *ed, int status, const char *what)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/loom_test_vq_%d.gguf", (int)getpid());
    if (gguf_copy_edited(MODEL, path, ed) != 0) {
        CHECK(0, "could not write the edited model %s", path);
        return;
    }
    lm_vq *vq = NULL;
    lm_error e = {0};
    int rc = lm_vq_open(path, &vq, &e);
    CHECK(rc == status && vq == NULL && strstr(e.msg, what), "edited model: want status %d naming '%s', got %d '%s'",
          status, what, rc, e.msg);
    lm_vq_free(&vq);
    unlink(path);
}

static void test_load_errors(void)
{
    lm_vq *vq = NULL;
    lm_error e = {0};
    CHECK(lm_vq_open("data/vq/missing.gguf", &vq, &e) == LOOM_ERR_IO && vq == NULL, "missing file: %d '%s'",
          e.status, e.msg);
    CHECK(lm_vq_open("data/vq/vq_io.gguf", &vq, &e) == LOOM_ERR_UNSUPPORTED && strstr(e.msg, "loom-fixture"),
          "fixture file as model: %d '%s'", e.status, e.msg);
    expect_load_error(&(gguf_edit){.drop_tensor = "vq.dec.up.1.res.0.conv2.weight"}, LOOM_ERR_NOT_FOUND,
                      "vq.dec.up.1.res.0.conv2.weight");
    expect_load_error(&(gguf_edit){.flatten_tensor = "vq.enc.mid_attn.q.weight"}, LOOM_ERR_TYPE,
                      "vq.enc.mid_attn.q.weight");
    expect_load_error(&(gguf_edit){.extra_tensor = "vq.dec.spare"}, LOOM_ERR_FORMAT, "vq.dec.spare");
    expect_load_error(&(gguf_edit){.drop_key = "loom.vq.norm_groups"}, LOOM_ERR_NOT_FOUND, "loom.vq.norm_groups");
    expect_load_error(&(gguf_edit){.u32_key = "loom.vq.grid", .u32_val = 9}, LOOM_ERR_FORMAT, "loom.vq.grid");
    expect_load_error(&(gguf_edit){.u32_key = "loom.vq.norm_groups", .u32_val = 3}, LOOM_ERR_FORMAT, "GroupNorm");
    expect_load_error(&(gguf_edit){.u32_key = "loom.vq.ch", .u32_val = 16}, LOOM_ERR_TYPE, "vq.enc.conv_in.weight");
    expect_load_error(&(gguf_edit){.u32_key = "loom.vq.dec_res_blocks", .u32_val = 0}, LOOM_ERR_FORMAT,
                      "loom.vq.dec_res_blocks");
}

static void test_winograd(lm_pool *pool)
{
    /* {cin, cout, H, W}: odd sizes, 1×1, rows of more than 16 tiles (full and masked zmm blocks),
     * cout not a multiple of 8 or 4 */
    static const int shapes[][4] = {{3, 4, 7, 5},  {8, 8, 8, 8},   {5, 2, 1, 1},  {16, 9, 13, 6},
                                    {2, 3, 2, 9},  {7, 13, 5, 67}, {32, 3, 9, 64}, {17, 16, 33, 34}};
    const int has512 = lm_cpu_caps_get()->avx512f;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int ci = shapes[s][0], co = shapes[s][1], H = shapes[s][2], W = shapes[s][3];
        float *x = xmalloc(sizeof(float) * ci * H * W), *w = xmalloc(sizeof(float) * co * ci * 9);
        float *b = xmalloc(sizeof(float) * co), *u = xmalloc(sizeof(float) * 16 * co * ci);
        float *y = xmalloc(sizeof(float) * co * H * W), *r = xmalloc(sizeof(float) * co * H * W);
        float *scr = xmalloc(sizeof(float) * lm_winograd3x3_scratch(ci, co, H, W));
        float *ax = xmalloc(sizeof(float) * ci * H * W), *aw = xmalloc(sizeof(float) * co * ci * 9);
        float *mag = xmalloc(sizeof(float) * co * H * W);
        for (int i = 0; i < ci * H * W; i++) ax[i] = fabsf(x[i] = sinf(0.91f * i + (float)s));
        for (int i = 0; i < co * ci * 9; i++) aw[i] = fabsf(w[i] = cosf(0.37f * i * i));
        for (int i = 0; i < co; i++) b[i] = 0.1f * i - 0.2f;
        lm_winograd3x3_weights(u, w, co, ci);
        lm_conv2d_ref(r, x, w, b, ci, H, W, co, 3, 1, 1);
        lm_conv2d_ref(mag, ax, aw, NULL, ci, H, W, co, 3, 1, 1);   /* Σ|w·x| per output */
        for (int pass = 0; pass < 6; pass++) {   /* dispatch, portable, AVX-512; 1 and 2 threads */
            lm_pool *p = pass % 2 ? pool : NULL;
            const int kind = pass / 2;
            if (kind == 2 && !has512) continue;
            for (int i = 0; i < co * H * W; i++) y[i] = NAN;
            if (kind == 0) lm_winograd3x3_conv(y, x, u, b, ci, co, H, W, scr, p);
            else if (kind == 1) lm_winograd3x3_conv_ref(y, x, u, b, ci, co, H, W, scr, p);
            else lm_winograd3x3_conv_avx512(y, x, u, b, ci, co, H, W, scr, p);
            int bad = 0;
            for (int i = 0; i < co * H * W; i++) bad += !(fabsf(y[i] - r[i]) <= 1e-5f * (1.0f + mag[i]));
            CHECK(bad == 0, "winograd %dx%d cin %d cout %d (%s, %s): %d outputs off", H, W, ci, co,
                  kind == 0 ? "dispatch" : kind == 1 ? "portable" : "avx512", p ? "2 threads" : "1 thread", bad);
        }
        free(x), free(w), free(b), free(u), free(y), free(r), free(scr), free(ax), free(aw), free(mag);
    }
}

int main(void)
{
    lm_vq *vq = NULL;
    lm_gguf *io = NULL;
    lm_error e = {0};
    if (lm_vq_open(MODEL, &vq, &e) < 0 || lm_gguf_open("data/vq/vq_io.gguf", &io, &e) < 0) {
        printf("FAIL: %s\n0 passed, 1 failed\n", e.msg);
        lm_vq_free(&vq);
        return 1;
    }
    lm_vq_info in = lm_vq_get_info(vq);
    CHECK(in.image_size == 32 && in.grid == 8 && in.codebook_size == 64 && in.embed_dim == 8,
          "info: %d %d %d %d", in.image_size, in.grid, in.codebook_size, in.embed_dim);
    lm_pool *pool = lm_pool_create(2);
    test_winograd(pool);
    test_decode(vq, io, pool);
    if (lm_kernels_select("ref") == 0) {   /* the portable path: OpenBLAS Winograd, SSE2 norms */
        printf("portable kernels:\n");
        test_decode(vq, io, pool);
        lm_kernels_select("auto");
    }
    test_encode(vq, io, pool);
    test_load_errors();
    lm_pool_free(&pool);
    lm_gguf_close(&io);
    lm_vq_free(&vq);
    return finish();
}
