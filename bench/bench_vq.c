/*
 * Media codec speed, loom vs PyTorch on the same weights and thread count:
 *   - seconds per decoded image (codes → RGB8), VQ codec
 *   - seconds per second of audio (codes → mel → NNLS + Griffin-Lim → PCM), audio codec
 *
 *   bench_vq [--threads N] [--iters N] [--seconds S] [--vq PATH] [--ac PATH] [--no-torch] [--cpu-time]
 *
 * Without --vq/--ac, random-weight models at loom-tiny's shapes (VQ 64×64, ch 32, mult 1,1,2,
 * K 1024; audio ch 128, 6+2 ResBlocks, 32 Griffin-Lim iterations) are written to /tmp by
 * tools/bench/codec_torch.py. The PyTorch timings shell out to /usr/bin/python3 with the same
 * thread count (torch.set_num_threads). Each timing is the best (minimum) of --iters runs after
 * one warm-up: on a shared machine other load only ever adds time, so the minimum is the most
 * repeatable figure for both sides. --cpu-time times both sides by process CPU time instead
 * of wall time (loom: CLOCK_PROCESS_CPUTIME_ID; torch: time.process_time), which leaves out
 * the slices other jobs take on a shared machine; only meaningful with --threads 1.
 * Run from the repository root (or set LOOM_ROOT).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "include/loom.h"

static int g_cpu_time;

static double now(void)
{
    struct timespec ts;
    clock_gettime(g_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Run a shell command and parse its "seconds X" line; negative on failure. */
static double torch_seconds(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f) return -1.0;
    char line[256];
    double s = -1.0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "seconds %lf", &s) == 1) break;
    while (fgets(line, sizeof line, f)) {}
    return pclose(f) == 0 ? s : -1.0;
}

static uint32_t g_rng = 12345;
static int32_t rand_code(int k)
{
    g_rng = g_rng * 1664525u + 1013904223u;
    return (int32_t)((g_rng >> 8) % (uint32_t)k);
}

int main(int argc, char **argv)
{
    int threads = 1, iters = 10, torch = 1;
    double secs = 5.0;
    const char *vq_path = NULL, *ac_path = NULL, *py = "/usr/bin/python3";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) secs = atof(argv[++i]);
        else if (!strcmp(argv[i], "--vq") && i + 1 < argc) vq_path = argv[++i];
        else if (!strcmp(argv[i], "--ac") && i + 1 < argc) ac_path = argv[++i];
        else if (!strcmp(argv[i], "--no-torch")) torch = 0;
        else if (!strcmp(argv[i], "--cpu-time")) g_cpu_time = 1;
        else {
            fprintf(stderr, "usage: bench_vq [--threads N] [--iters N] [--seconds S] [--vq PATH] [--ac PATH] [--no-torch] "
                            "[--cpu-time]\n");
            return 2;
        }
    }
    if (threads < 1 || iters < 1 || secs <= 0.0) {
        fprintf(stderr, "bench_vq: --threads, --iters and --seconds must be positive\n");
        return 2;
    }
    const char *root = getenv("LOOM_ROOT") ? getenv("LOOM_ROOT") : ".";
    char cmd[1024], made[64];
    snprintf(made, sizeof made, "/tmp/loom_bench_%d", (int)getpid());
    if (!vq_path || !ac_path) {
        snprintf(cmd, sizeof cmd, "%s %s/tools/bench/codec_torch.py make %s", py, root, made);
        if (system(cmd) != 0) {
            fprintf(stderr, "bench_vq: could not make models with: %s\n", cmd);
            return 1;
        }
    }
    static char vq_made[96], ac_made[96];
    snprintf(vq_made, sizeof vq_made, "%s/vq.gguf", made);
    snprintf(ac_made, sizeof ac_made, "%s/ac.gguf", made);
    if (!vq_path) vq_path = vq_made;
    if (!ac_path) ac_path = ac_made;

    loom_codec_params p = loom_codec_default_params();
    p.n_threads = threads;
    char err[256];
    loom_vq *vq = NULL;
    loom_audio_codec *ac = NULL;
    if (loom_vq_open(vq_path, p, &vq, err, sizeof err) < 0 || loom_audio_codec_open(ac_path, p, &ac, err, sizeof err) < 0) {
        fprintf(stderr, "bench_vq: %s\n", err);
        return 1;
    }
    double *t = malloc(sizeof(double) * iters);

    /* VQ: one image per call */
    const int S = loom_vq_image_size(vq), g = loom_vq_grid(vq), K = loom_vq_codebook_size(vq);
    int32_t *codes = malloc(sizeof(int32_t) * g * g);
    uint8_t *rgb = malloc((size_t)S * S * 3);
    for (int i = 0; i < g * g; i++) codes[i] = rand_code(K);
    loom_vq_decode(vq, codes, rgb);   /* warm-up */
    for (int it = 0; it < iters; it++) {
        double t0 = now();
        if (loom_vq_decode(vq, codes, rgb) < 0) {
            fprintf(stderr, "bench_vq: %s\n", loom_vq_error(vq));
            return 1;
        }
        t[it] = now() - t0;
    }
    qsort(t, iters, sizeof *t, cmp_double);
    const double vq_loom = t[0];

    /* audio: `secs` seconds of codes per call */
    const int64_t n = (int64_t)(secs * loom_audio_codec_codes_per_second(ac) + 0.5);
    const double real_secs = (double)n / loom_audio_codec_codes_per_second(ac);
    int32_t *acodes = malloc(sizeof(int32_t) * n);
    float *pcm = malloc(sizeof(float) * n * loom_audio_codec_samples_per_code(ac));
    for (int64_t i = 0; i < n; i++) acodes[i] = rand_code(loom_audio_codec_codebook_size(ac));
    loom_audio_codec_decode(ac, acodes, n, pcm);   /* warm-up, plans scratch */
    for (int it = 0; it < iters; it++) {
        double t0 = now();
        if (loom_audio_codec_decode(ac, acodes, n, pcm) < 0) {
            fprintf(stderr, "bench_vq: %s\n", loom_audio_codec_error(ac));
            return 1;
        }
        t[it] = (now() - t0) / real_secs;
    }
    qsort(t, iters, sizeof *t, cmp_double);
    const double ac_loom = t[0];

    printf("threads %d, cpu: %s, best of %d, %s time\n", threads, loom_cpu_features(), iters,
           g_cpu_time ? "process CPU" : "wall");
    printf("VQ decode %dx%d (grid %d, K %d):   loom %.4f s/image", S, S, g, K, vq_loom);
    double vq_torch = -1.0, ac_torch = -1.0;
    if (torch) {
        snprintf(cmd, sizeof cmd, "%s %s/tools/bench/codec_torch.py vq %s %d %d%s", py, root, vq_path, threads, iters,
                 g_cpu_time ? " --cpu-time" : "");
        vq_torch = torch_seconds(cmd);
    }
    if (vq_torch > 0) printf("   torch %.4f s/image   speed-up %.2fx\n", vq_torch, vq_torch / vq_loom);
    else printf("\n");
    printf("audio decode %.1f s (%lld codes):   loom %.4f s per audio second", real_secs, (long long)n, ac_loom);
    if (torch) {
        snprintf(cmd, sizeof cmd, "%s %s/tools/bench/codec_torch.py ac %s %d %d %g%s", py, root, ac_path, threads,
                 iters, real_secs, g_cpu_time ? " --cpu-time" : "");
        ac_torch = torch_seconds(cmd);
    }
    if (ac_torch > 0) printf("   torch %.4f   speed-up %.2fx\n", ac_torch, ac_torch / ac_loom);
    else printf("\n");

    if (!strncmp(vq_path, made, strlen(made))) {
        unlink(vq_made);
        unlink(ac_made);
        rmdir(made);
    }
    free(t);
    free(codes);
    free(rgb);
    free(acodes);
    free(pcm);
    loom_vq_free(&vq);
    loom_audio_codec_free(&ac);
    return 0;
}
