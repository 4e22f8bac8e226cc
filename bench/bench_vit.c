/* Vision encoder throughput: loom vs PyTorch on the same random-weight GGUF, same threads,
 * same batch, measured in one run.
 *
 *   bench_vit [--threads N] [--batch B] [--iters K] [--size 224 --patch 16 --width 384
 *             --layers 6 --heads 6 --ff 1536 --proj 512] [--bf16 1]
 *
 * Run from the repository root (it calls /usr/bin/python3 -m tools.loompy.vision to write
 * the model and to time torch with torch.set_num_threads(N)). loom is timed K times before
 * and K times after torch's 2K runs, so both sides get the same chances at a quiet machine;
 * the best run of each side is reported, with their ratio and the GFLOP/s each reached,
 * next to the physical limit: the rate of one large F32 GEMM (1024³) through lm_matmul,
 * i.e. OpenBLAS with the same threads. --bf16 1 runs loom's products in bf16 on AMX
 * (lm_pool_set_matmul_bf16; torch stays f32) and the limit is then that GEMM in bf16. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/core/gguf.h"
#include "lib/core/threadpool.h"
#include "vision/vit.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int threads = 2, batch = 1, iters = 10, bf16 = 0;
    int size = 224, patch = 16, width = 384, layers = 6, heads = 6, ff = 1536, proj = 512;
    struct { const char *name; int *v; } opts[] = {
        {"--threads", &threads}, {"--batch", &batch}, {"--iters", &iters}, {"--size", &size},
        {"--patch", &patch}, {"--width", &width}, {"--layers", &layers}, {"--heads", &heads},
        {"--ff", &ff}, {"--proj", &proj}, {"--bf16", &bf16},
    };
    for (int i = 1; i < argc; i++) {
        int ok = 0;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (!strcmp(argv[i], opts[k].name) && i + 1 < argc) {
                *opts[k].v = atoi(argv[++i]);
                ok = 1;
            }
        if (!ok) {
            fprintf(stderr, "usage: bench_vit [--threads N] [--batch B] [--iters K] [--size S] [--patch P] "
                            "[--width D] [--layers L] [--heads H] [--ff F] [--proj E] [--bf16 1]\n");
            return 2;
        }
    }
    if (access("tools/loompy/vision.py", R_OK) != 0) {
        fprintf(stderr, "bench_vit: run from the repository root (tools/loompy/vision.py not found)\n");
        return 2;
    }
    char model[64], cmd[512];
    snprintf(model, sizeof model, "/tmp/loom_bench_vit_%d.gguf", (int)getpid());
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -m tools.loompy.vision random --out %s --size %d --patch %d --width %d "
             "--layers %d --heads %d --ff %d --hidden %d --proj %d", model, size, patch, width, layers, heads,
             ff, proj, proj);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_vit: writing the model failed: %s\n", cmd);
        return 1;
    }

    lm_error e = {0};
    lm_gguf *g = NULL;
    lm_vit *vit = NULL;
    lm_vit_ctx *ctx = NULL;
    lm_pool *pool = lm_pool_create(threads);
    lm_pool_set_matmul_bf16(pool, bf16);
    if (lm_gguf_open(model, &g, &e) < 0 || lm_vit_load(g, &vit, &e) < 0 ||
        lm_vit_ctx_create(vit, batch, &ctx, &e) < 0) {
        fprintf(stderr, "bench_vit: %s\n", e.msg);
        return 1;
    }
    const lm_vit_hparams *hp = lm_vit_hparams_of(vit);
    const size_t n_in = 3 * (size_t)hp->image_size * hp->image_size;
    const size_t n_out = (size_t)lm_vit_n_tokens(vit) * lm_vit_n_embd_out(vit);
    float *x = malloc(sizeof *x * n_in * batch), *y = malloc(sizeof *y * n_out * batch);
    srand(1);
    for (size_t i = 0; i < n_in * batch; i++) x[i] = (float)rand() / RAND_MAX * 2.0f - 1.0f;
    lm_vit_encode(ctx, x, batch, y, pool, &e);   /* warm-up */
    double best = 1e30, torch_ips = 0;
    for (int phase = 0; phase < 2; phase++) {
        for (int it = 0; it < iters; it++) {
            double t0 = now();
            if (lm_vit_encode(ctx, x, batch, y, pool, &e) < 0) {
                fprintf(stderr, "bench_vit: %s\n", e.msg);
                return 1;
            }
            double t = now() - t0;
            best = t < best ? t : best;
        }
        if (phase == 0) {
            snprintf(cmd, sizeof cmd,
                     "/usr/bin/python3 -m tools.loompy.vision bench --gguf %s --threads %d --batch %d --iters %d",
                     model, threads, batch, 2 * iters);
            FILE *p = popen(cmd, "r");
            char line[256];
            while (p && fgets(line, sizeof line, p))
                if (sscanf(line, "torch_images_per_s %lf", &torch_ips) == 1) break;
            if (p) pclose(p);
        }
    }
    const double loom_ips = batch / best;
    remove(model);

    /* the GEMM ceiling: one 1024x1024x1024 F32 product through lm_matmul on this pool */
    const int G = 1024;
    float *A = malloc(sizeof *A * G * G), *Bm = malloc(sizeof *Bm * G * G), *C = malloc(sizeof *C * G * G);
    for (size_t i = 0; i < (size_t)G * G; i++) A[i] = Bm[i] = (float)(i % 13) * 0.01f;
    lm_matrix W = {LOOM_TYPE_F32, G, G, sizeof(float) * G, Bm};
    double gbest = 1e30;
    for (int it = 0; it < 2 * iters; it++) {
        double t0 = now();
        lm_matmul(&W, A, G, C, pool);
        double t = now() - t0;
        gbest = t < gbest ? t : gbest;
    }
    const double gemm_gflops = 2.0 * G * G * G / gbest * 1e-9;
    free(A);
    free(Bm);
    free(C);

    /* multiply-adds per image: patch embedding, blocks, projector */
    const double T = hp->n_patches, d = hp->n_embd, Tm = hp->n_tokens_out;
    const double macs = T * 3 * hp->patch_size * hp->patch_size * d +
                        hp->n_layer * (4 * T * d * d + 2 * T * d * hp->n_ff + 2 * T * T * d) +
                        Tm * d * hp->merge * hp->merge * hp->n_mm_hidden + Tm * (double)hp->n_mm_hidden * hp->n_embd_out;
    printf("vision encoder %dpx/%d, width %d, %d layers, %d heads, ff %d -> %d tokens x %d; batch %d, %d threads\n",
           hp->image_size, hp->patch_size, hp->n_embd, hp->n_layer, hp->n_head, hp->n_ff, lm_vit_n_tokens(vit),
           lm_vit_n_embd_out(vit), batch, lm_pool_size(pool));
    printf("  %.2f GFLOP per image\n", 2 * macs * 1e-9);
    printf("  limit: %.1f GFLOP/s for one 1024^3 F32 GEMM (%s, same threads) = %.2f images/s\n", gemm_gflops,
           lm_pool_matmul_bf16(pool) ? "bf16 products on AMX" : "OpenBLAS", gemm_gflops / (2 * macs * 1e-9));
    printf("  loom : %8.2f images/s  (%.1f GFLOP/s, %.0f%% of the GEMM limit)\n", loom_ips,
           loom_ips * 2 * macs * 1e-9, 100.0 * loom_ips * 2 * macs * 1e-9 / gemm_gflops);
    if (torch_ips > 0) {
        printf("  torch: %8.2f images/s  (%.1f GFLOP/s)\n", torch_ips, torch_ips * 2 * macs * 1e-9);
        printf("  ratio loom/torch: %.2fx\n", loom_ips / torch_ips);
    } else
        printf("  torch: not measured (is python3-torch installed?)\n");
    free(x);
    free(y);
    lm_vit_ctx_free(&ctx);
    lm_vit_free(&vit);
    lm_gguf_close(&g);
    lm_pool_free(&pool);
    return 0;
}
