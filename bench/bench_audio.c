/*
 * Audio front end + encoder: loom vs PyTorch on the same weights and the same 30 s of audio.
 *
 *   bench_audio [--config tiny|base] [--threads N] [--reps R] [--src DIR] [--bf16]
 *
 * Shells out to /usr/bin/python3 -m tools.loompy.audio --bench, which writes random
 * weights (encoder.gguf) and 30 s of audio (audio.wav) into a temporary folder and times
 * Whisper's torch path (torch.stft log-mel + the reference encoder) with the same thread
 * count. loom then times lm_mel_compute + lm_audio_encoder_encode on those files. Both
 * report the best of R runs after a warm-up; the ratio is torch time / loom time.
 * The physical limit is GEMM peak: the encoder's GFLOP/s is printed next to its time.
 * --bf16 runs loom's matrix products in bf16 on AMX (lm_pool_set_matmul_bf16; torch stays f32).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audio/audio.h"
#include "audio/audio_encoder.h"
#include "audio/mel.h"
#include "lib/core/gguf.h"
#include "lib/core/threadpool.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Source tree root: --src, else derived from this file's path. */
static void default_src(char *buf, size_t n)
{
    snprintf(buf, n, "%s", __FILE__);
    char *p = strstr(buf, "/bench/bench_audio.c");
    if (p) *p = '\0';
    else snprintf(buf, n, ".");
}

/* Encoder multiply-adds ×2 for T2 frames (projections, attention, FFN, convs, projector). */
static double encoder_flops(const lm_audio_hparams *h, int64_t T)
{
    double T2 = (double)((T - 1) / 2 + 1), d = h->d;
    double conv = 2.0 * T * d * h->n_mel * 3 + 2.0 * T2 * d * d * 3;
    double blk = 2.0 * T2 * d * d * 4 + 2.0 * T2 * T2 * d * 2 + 2.0 * T2 * d * h->n_ff * 2;
    double n_tok = ceil(T2 / h->stack);
    double proj = 2.0 * n_tok * (d * h->stack * h->d_proj + (double)h->d_proj * h->d_proj);
    return conv + blk * h->n_layer + proj;
}

int main(int argc, char **argv)
{
    const char *config = "tiny";
    int threads = 2, reps = 3, bf16 = 0;
    char src[1024];
    default_src(src, sizeof src);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) config = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--src") && i + 1 < argc) snprintf(src, sizeof src, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--bf16")) bf16 = 1;
        else {
            fprintf(stderr, "usage: bench_audio [--config tiny|base] [--threads N] [--reps R] [--src DIR] [--bf16]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 256 || reps < 1 || reps > 100 || strspn(config, "abcdefghijklmnopqrstuvwxyz") != strlen(config)) {
        fprintf(stderr, "bench_audio: bad --threads, --reps or --config\n");
        return 2;
    }
    char dir[] = "/tmp/loom_bench_audio.XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }

    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && OMP_NUM_THREADS=%d /usr/bin/python3 -m tools.loompy.audio --bench '%s' --config %s "
             "--threads %d --reps %d",
             src, threads, dir, config, threads, reps);
    FILE *p = popen(cmd, "r");
    double t_mel = -1, t_enc = -1;
    char line[512];
    while (p && fgets(line, sizeof line, p))
        if (sscanf(line, "TORCH mel_ms=%lf enc_ms=%lf", &t_mel, &t_enc) == 2) break;
    if (p) while (fgets(line, sizeof line, p)) {}
    if (!p || pclose(p) != 0 || t_mel < 0) {
        fprintf(stderr, "bench_audio: the PyTorch side failed (%s)\n", cmd);
        return 1;
    }

    char path[1100];
    lm_error err = {0};
    float *pcm = NULL;
    int64_t n = 0;
    snprintf(path, sizeof path, "%s/audio.wav", dir);
    if (lm_audio_read_all(path, NULL, 0, &pcm, &n, &err) < 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    snprintf(path, sizeof path, "%s/encoder.gguf", dir);
    lm_gguf *g = NULL;
    lm_audio_encoder *enc = NULL;
    lm_mel *mel = NULL;
    lm_pool *pool = lm_pool_create(threads);
    lm_pool_set_matmul_bf16(pool, bf16);
    if (lm_gguf_open(path, &g, &err) < 0 || lm_audio_encoder_load(g, &enc, &err) < 0 ||
        lm_mel_create(lm_audio_encoder_hparams(enc)->n_mel, threads, &mel, &err) < 0) {
        fprintf(stderr, "bench_audio: %s\n", err.msg);
        return 1;
    }
    const lm_audio_hparams *hp = lm_audio_encoder_hparams(enc);
    const int64_t T = lm_mel_n_frames(n);
    float *m = malloc((size_t)(T * hp->n_mel) * sizeof *m);
    float *out = malloc((size_t)(lm_audio_encoder_n_tokens(enc, T) * hp->d_proj) * sizeof *out);
    double b_mel = INFINITY, b_enc = INFINITY;
    for (int r = 0; r <= reps; r++) {   /* run 0 warms up */
        double t0 = now();
        int rc = lm_mel_compute(mel, pcm, n, m, pool, &err);
        double t1 = now();
        if (rc == 0) rc = lm_audio_encoder_encode(enc, m, T, out, pool, &err);
        double t2 = now();
        if (rc < 0) { fprintf(stderr, "bench_audio: %s\n", err.msg); return 1; }
        if (r > 0) {
            b_mel = fmin(b_mel, t1 - t0);
            b_enc = fmin(b_enc, t2 - t1);
        }
    }
    double l_mel = b_mel * 1e3, l_enc = b_enc * 1e3, gf = encoder_flops(hp, T) / 1e9;
    printf("audio front end + encoder, 30 s of audio (%lld mel frames), config %s "
           "(d %d, %d layers, %d heads, ff %d), %d threads, best of %d\n",
           (long long)T, config, hp->d, hp->n_layer, hp->n_head, hp->n_ff, threads, reps);
    printf("  %-8s %10s %10s %10s\n", "", "mel ms", "enc ms", "total ms");
    printf("  %-8s %10.2f %10.2f %10.2f\n", "torch", t_mel, t_enc, t_mel + t_enc);
    printf("  %-8s %10.2f %10.2f %10.2f\n", "loom", l_mel, l_enc, l_mel + l_enc);
    printf("  speedup  mel %.2fx  encoder %.2fx  total %.2fx (target >= 1.5x)\n", t_mel / l_mel, t_enc / l_enc,
           (t_mel + t_enc) / (l_mel + l_enc));
    printf("  encoder: %.1f GFLOP, loom %.1f GFLOP/s, torch %.1f GFLOP/s\n", gf, gf / b_enc, gf / (t_enc / 1e3));
    free(m);
    free(out);
    free(pcm);
    lm_mel_free(&mel);
    lm_audio_encoder_free(&enc);
    lm_gguf_close(&g);
    lm_pool_free(&pool);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", dir);
    return 0;
}
