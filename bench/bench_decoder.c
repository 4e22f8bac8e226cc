/*
 * Decoder speed, loom vs llama.cpp (the peer, dlopened) on the same ~217 M-parameter
 * random-weight deepseek2 file (32 experts, top 4 + 1 shared), F16 and Q8_0, 1 and 2
 * threads: 512-token prefill tok/s and decode tok/s, their ratios, and the decode
 * roofline (active weight bytes per token ÷ measured read bandwidth). Also the resident
 * memory after loading (weights are mmapped, not copied).
 *
 *   bench_decoder [--dir DIR] [--threads 1,2] [--types f16,q8_0] [--prompt 512] [--decode 32] [--rounds 3]
 *                 [--cpu-time] [--bf16]
 * Run from the source root (it finds the peer under peer/; see docs/BENCHMARKS.md).
 * --bf16: loom's prefill products in bf16 on AMX (LOOM_MATMUL_BF16); llama.cpp as it comes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/core/threadpool.h"
#include "lib/model.h"
#include "loom.h"
#include "tools/parity/llama_peer.h"
#include "tools/parity/parity_models.h"

/* Wall time, or with --cpu-time this process's CPU time: on a machine shared with other
 * jobs, a 1-thread run's CPU time leaves out the time slices other jobs took (it still
 * includes their cache and memory contention). Not meaningful with 2 threads (spinning
 * workers count). */
static clockid_t g_clock = CLOCK_MONOTONIC;
static int       g_matmul = LOOM_MATMUL_F32;   /* --bf16: LOOM_MATMUL_BF16 */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(g_clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* VmRSS / VmHWM of this process in MiB. */
static double proc_mib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n)) v = atof(line + n + 1) / 1024.0;
    if (f) fclose(f);
    return v;
}

/* --- memory read bandwidth (the decode roofline's denominator) ------------------------ */
typedef struct bw_task { const float *buf; size_t n; float sums[64]; } bw_task;

static void bw_read(void *arg, int ith, int nth)
{
    bw_task *t = arg;
    long long lo, hi;
    lm_split((long long)t->n, ith, nth, &lo, &hi);
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (long long i = lo; i + 8 <= hi; i += 8) {
        s0 += t->buf[i]; s1 += t->buf[i + 1]; s2 += t->buf[i + 2]; s3 += t->buf[i + 3];
        s4 += t->buf[i + 4]; s5 += t->buf[i + 5]; s6 += t->buf[i + 6]; s7 += t->buf[i + 7];
    }
    t->sums[ith] = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

/* Best of 5 passes over a 512 MiB buffer, GB/s. */
static double read_bandwidth(int n_threads)
{
    const size_t n = (size_t)128 << 20; /* floats */
    float *buf = malloc(n * sizeof *buf);
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = (float)((i * 2654435761u) >> 20 & 1023); /* no two pages alike */
    lm_pool *pool = lm_pool_create(n_threads);
    bw_task t = {.buf = buf, .n = n};
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = now_s();
        lm_pool_run(pool, bw_read, &t);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    lm_pool_free(&pool);
    free(buf);
    return (double)n * sizeof(float) / best / 1e9;
}

static void random_tokens(int32_t *t, int n, int n_vocab, uint64_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = i == 0 ? 1 : (int32_t)(3 + (seed >> 33) % (uint64_t)(n_vocab - 3));
    }
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

/* Both engines on one file, interleaved: each round runs loom's prefill, llama.cpp's
 * prefill, loom's decode steps, llama.cpp's decode steps; the best round of each counts
 * (the machine is shared, so the minimum time is the least disturbed one). */
typedef struct bench_run {
    double loom_pp, peer_pp, loom_tg, peer_tg, rss_load;
    double loom_tg_floatx;   /* Q8_0: decode with float x on the q8 grid (the path before int8 dots) */
    double loom_pp_absorbed; /* prefill with the absorbed MLA form forced                    */
} bench_run;

/* n greedy decode steps from `tok`; seconds. */
static double loom_decode_steps(loom_session *s, int32_t tok, int n, int V)
{
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        if (loom_session_decode(s, tok) < 0) { fprintf(stderr, "loom: %s\n", loom_session_error(s)); break; }
        tok = argmax(loom_session_logits(s), V);
    }
    return now_s() - t0;
}

static int bench_pair(lp_api *a, const char *path, int nt, const int32_t *prompt, int n_prompt, int n_decode,
                      int rounds, bench_run *r)
{
    char err[512];
    loom_model *m = NULL;
    loom_session *s = NULL;
    if (loom_model_load(path, loom_model_default_params(), &m, err, sizeof err) < 0) { fprintf(stderr, "loom: %s\n", err); return -1; }
    r->rss_load = proc_mib("VmRSS:");
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = n_prompt + n_decode + 8;
    sp.n_batch = n_prompt;
    sp.n_threads = nt;
    sp.matmul = g_matmul;
    if (loom_session_create(m, sp, &s, err, sizeof err) < 0) { fprintf(stderr, "loom: %s\n", err); loom_model_free(&m); return -1; }
    void *model = NULL, *ctx = NULL;
    if (lp_load(a, path, n_prompt + n_decode + 8, n_prompt, nt, &model, &ctx) < 0) return -1;
    const int V = loom_model_n_vocab(m);
    lp_batch b = a->batch_init(n_prompt, 0, 1);
    float *logits = malloc((size_t)V * sizeof *logits);
    double lpp = 1e30, ppp = 1e30, ltg = 1e30, ptg = 1e30, ltgf = 1e30, lppa = 1e30;
    for (int round = 0; round < rounds; round++) {
        loom_session_truncate(s, 0);
        double t0 = now_s();
        loom_session_prompt(s, prompt, n_prompt, NULL);
        double dt = now_s() - t0;
        if (dt < lpp) lpp = dt;

        lm_decoder_state_set_tuning(lm_session_decoder_state(s), LM_MLA_ABSORBED, 0); /* absorbed form only */
        loom_session_truncate(s, 0);
        t0 = now_s();
        loom_session_prompt(s, prompt, n_prompt, NULL);
        dt = now_s() - t0;
        if (dt < lppa) lppa = dt;
        lm_decoder_state_set_tuning(lm_session_decoder_state(s), LM_MLA_AUTO, 0);

        a->memory_clear(a->get_memory(ctx), true);
        t0 = now_s();
        lp_eval(a, ctx, &b, prompt, n_prompt, 0, n_prompt, 0, logits, V);
        dt = now_s() - t0;
        if (dt < ppp) ppp = dt;

        loom_session_truncate(s, n_prompt);
        int32_t tok = argmax(loom_session_logits(s), V);
        dt = loom_decode_steps(s, tok, n_decode, V);
        if (dt < ltg) ltg = dt;
        if (m->dec->layers[0].kv_a.type == LOOM_TYPE_Q8_0) {
            lm_decoder_state_set_tuning(lm_session_decoder_state(s), LM_MLA_AUTO, 1); /* float-x Q8_0 kernels */
            loom_session_truncate(s, n_prompt);
            dt = loom_decode_steps(s, tok, n_decode, V);
            if (dt < ltgf) ltgf = dt;
            lm_decoder_state_set_tuning(lm_session_decoder_state(s), LM_MLA_AUTO, 0);
        }

        tok = argmax(logits, V);
        t0 = now_s();
        for (int i = 0; i < n_decode; i++) {
            if (lp_eval(a, ctx, &b, &tok, 1, n_prompt + i, 1, 0, logits, V) < 0) break;
            tok = argmax(logits, V);
        }
        dt = now_s() - t0;
        if (dt < ptg) ptg = dt;
        a->memory_seq_rm(a->get_memory(ctx), 0, n_prompt, -1);
    }
    r->loom_pp = n_prompt / lpp;
    r->loom_pp_absorbed = n_prompt / lppa;
    r->peer_pp = n_prompt / ppp;
    r->loom_tg = n_decode / ltg;
    r->loom_tg_floatx = ltgf < 1e30 ? n_decode / ltgf : 0;
    r->peer_tg = n_decode / ptg;
    free(logits);
    a->batch_free(b);
    a->free_ctx(ctx);
    a->model_free(model);
    loom_session_free(&s);
    loom_model_free(&m);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = "out/bench", *threads = "1,2", *types = "f16,q8_0";
    int n_prompt = 512, n_decode = 32, rounds = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = argv[++i];
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) types = argv[++i];
        else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) n_prompt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--decode") && i + 1 < argc) n_decode = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cpu-time")) g_clock = CLOCK_PROCESS_CPUTIME_ID;
        else if (!strcmp(argv[i], "--bf16")) g_matmul = LOOM_MATMUL_BF16;
        else { fprintf(stderr, "usage: %s [--dir DIR] [--threads 1,2] [--types f16,q8_0] [--prompt N] [--decode N] [--rounds N] [--cpu-time] [--bf16]\n", argv[0]); return 2; }
    }
    if (n_prompt < 1 || n_decode < 1 || rounds < 1) return 2;
    mkdir("out", 0755);
    mkdir(dir, 0755);
    lp_api peer;
    if (lp_open(&peer, NULL, NULL, 0) < 0) return 1;

    printf("decoder benchmark: loom vs llama.cpp, %d-token prefill, %d decode steps, best of %d interleaved rounds%s%s\n"
           "CPU features: %s\n", n_prompt, n_decode, rounds,
           g_clock == CLOCK_MONOTONIC ? "" : " (process CPU time, not wall time)",
           g_matmul == LOOM_MATMUL_BF16 ? ", loom's prefill products in bf16 (AMX)" : "", loom_cpu_features());
    printf("%-5s %3s | %10s %10s %6s | %9s %9s %6s | %9s %6s | %s\n", "type", "thr", "loom pp/s", "llama pp/s",
           "ratio", "loom tg/s", "llama tg/s", "ratio", "roofline", "loom%", "RSS after load / file");
    for (const char *t = types; *t;) {
        char tname[16];
        size_t tl = strcspn(t, ",");
        snprintf(tname, sizeof tname, "%.*s", (int)tl, t);
        t += tl + (t[tl] == ',');
        const int type = !strcmp(tname, "f16") ? LOOM_TYPE_F16 : !strcmp(tname, "q8_0") ? LOOM_TYPE_Q8_0 :
                         !strcmp(tname, "bf16") ? LOOM_TYPE_BF16 : LOOM_TYPE_F32;
        lm_synth_params p = parity_big_params(type);
        char path[512];
        snprintf(path, sizeof path, "%s/big-%s.gguf", dir, tname);
        lm_error e = {0};
        if (lm_synth_write(&p, path, &e) < 0) { fprintf(stderr, "%s\n", e.msg); return 1; }
        struct stat st;
        stat(path, &st);
        int32_t *prompt = malloc((size_t)n_prompt * sizeof *prompt);
        random_tokens(prompt, n_prompt, p.n_vocab, 42);

        char errbuf[256];
        loom_model *m = NULL;
        if (loom_model_load(path, loom_model_default_params(), &m, errbuf, sizeof errbuf) < 0) { fprintf(stderr, "%s\n", errbuf); return 1; }
        const double active = (double)loom_model_active_bytes(m);
        loom_model_free(&m);

        for (const char *th = threads; *th;) {
            const int nt = atoi(th);
            th += strcspn(th, ",");
            th += *th == ',';
            if (nt < 1) continue;
            bench_run r = {0};
            if (bench_pair(&peer, path, nt, prompt, n_prompt, n_decode, rounds, &r) < 0) return 1;
            const double bw = read_bandwidth(nt);
            const double roof = bw * 1e9 / active;
            printf("%-5s %3d | %10.1f %10.1f %5.2fx | %9.1f %9.1f %5.2fx | %9.1f %5.0f%% | %.0f / %.0f MiB\n",
                   tname, nt, r.loom_pp, r.peer_pp, r.loom_pp / r.peer_pp, r.loom_tg, r.peer_tg,
                   r.loom_tg / r.peer_tg, roof, 100 * r.loom_tg / roof, r.rss_load, (double)st.st_size / (1 << 20));
            printf("      active weights %.1f MiB/token, read bandwidth %.1f GB/s (%d thr)\n", active / (1 << 20), bw, nt);
            printf("      loom prefill: auto MLA form %.1f tok/s vs absorbed only %.1f tok/s: %.2fx\n", r.loom_pp,
                   r.loom_pp_absorbed, r.loom_pp / r.loom_pp_absorbed);
            if (r.loom_tg_floatx > 0)
                printf("      loom Q8_0 decode: int8 dots %.1f tok/s vs float x %.1f tok/s: %.2fx\n", r.loom_tg,
                       r.loom_tg_floatx, r.loom_tg / r.loom_tg_floatx);
            fflush(stdout);
        }
        free(prompt);
    }
    printf("llama.cpp CPU backend: libggml-cpu-%s.so (use_extra_bufts=0, F32 KV cache, flash attention off)\n",
           peer.cpu_variant);
    return 0;
}
