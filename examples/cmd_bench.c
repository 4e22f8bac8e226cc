/* loom bench: prompt-processing and generation speed of a decoder, measured the way
 * llama.cpp's llama-bench measures them (pp: one prompt of N random tokens from an empty
 * cache; tg: N single-token decode steps from an empty cache; a warm-up run of each first;
 * the mean and standard deviation of tokens/s over the repetitions). Uses only loom.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_util.h"
#include "loom.h"

void help_bench(void);
int  cmd_bench(int argc, char **argv);

enum { MAX_THREAD_COUNTS = 16 };

void help_bench(void)
{
    printf("usage: loom bench [-m MODEL] [options]\n\n"
           "Prompt processing (pp) and token generation (tg) speed of a decoder, as llama.cpp's\n"
           "llama-bench measures them: random token ids, an empty cache for every run, one\n"
           "warm-up run, then the mean and standard deviation of tokens/s over the repetitions.\n\n"
           "  -m, --model PATH       decoder GGUF (default $LOOM_MODEL, else models/loom-tiny.gguf)\n"
           "  -p, --n-prompt N       prompt tokens of the pp test (default 512; 0 skips it)\n"
           "  -n, --n-gen N          decode steps of the tg test (default 128; 0 skips it)\n"
           "  -t, --threads LIST     thread counts to run, e.g. 1,2 (default: all CPUs)\n"
           "  -r, --repetitions N    runs per test (default 5)\n"
           "      --bf16             prompt products in bfloat16 on AMX CPUs\n"
           "      --json             one JSON object per test instead of the table\n"
           "  -q, --quiet            no table header or notes\n");
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t next_random(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* One run of a test: seconds, or a negative status (message on the session). */
static double run_once(loom_session *s, int32_t *tok, int n_prompt, int n_gen, int32_t V, int32_t bos, uint64_t *rng)
{
    loom_session_truncate(s, 0);
    const double t0 = now_s();
    if (n_prompt > 0) {
        for (int i = 0; i < n_prompt; i++) tok[i] = (int32_t)(next_random(rng) % (uint64_t)V);
        const int rc = loom_session_prompt(s, tok, n_prompt, NULL);
        if (rc < 0) return rc;
    } else {
        int32_t t = bos >= 0 ? bos : (int32_t)(next_random(rng) % (uint64_t)V);
        for (int i = 0; i < n_gen; i++) {
            const int rc = loom_session_decode(s, t);
            if (rc < 0) return rc;
            t = (int32_t)(next_random(rng) % (uint64_t)V);
        }
    }
    return now_s() - t0;
}

/* "1,2,4" → counts (each 1..1024); the number of them, or -1 with a message. */
static int parse_threads(const char *s, int *out)
{
    int n = 0;
    for (const char *c = s; *c;) {
        char *end;
        const long v = strtol(c, &end, 10);
        if (end == c || v < 1 || v > 1024 || (*end && *end != ',') || n == MAX_THREAD_COUNTS) {
            cli_error("bench: -t: expected up to %d thread counts 1..1024 like 1,2, got '%s'", MAX_THREAD_COUNTS, s);
            return -1;
        }
        out[n++] = (int)v;
        c = *end ? end + 1 : end;
    }
    if (n == 0) cli_error("bench: -t: no thread count in '%s'", s);
    return n ? n : -1;
}

int cmd_bench(int argc, char **argv)
{
    cli_common c = {0};
    long long n_prompt = 512, n_gen = 128, reps = 5;
    int threads[MAX_THREAD_COUNTS] = {0}, n_threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (cli_is(a, "-t", "--threads") && v) { if ((n_threads = parse_threads(v, threads)) < 0) return EXIT_USAGE; i++; continue; }
        int r = cli_common_option(&c, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        if (cli_is(a, "-p", "--n-prompt") && v) { bad = cli_parse_int(a, v, 0, 1 << 20, &n_prompt); i++; }
        else if (cli_is(a, "-n", "--n-gen") && v) { bad = cli_parse_int(a, v, 0, 1 << 20, &n_gen); i++; }
        else if (cli_is(a, "-r", "--repetitions") && v) { bad = cli_parse_int(a, v, 1, 1000, &reps); i++; }
        else { cli_error("bench: unknown or incomplete option '%s'", a); return EXIT_USAGE; }
        if (bad) return EXIT_USAGE;
    }
    if (!n_prompt && !n_gen) { cli_error("bench: nothing to measure (-p 0 and -n 0)"); return EXIT_USAGE; }
    if (!n_threads) threads[n_threads++] = loom_cpu_count();
    if (!c.model) c.model = cli_default_model();

    char err[512];
    loom_model *m = NULL;
    loom_file *f = NULL;
    if (loom_model_load(c.model, loom_model_default_params(), &m, err, sizeof err) < 0 ||
        loom_file_open(c.model, &f, err, sizeof err) < 0) {
        cli_error("%s", err);
        loom_model_free(&m);
        return EXIT_FAILED;
    }
    double bytes = 0, params = 0;
    for (int64_t i = 0; i < loom_file_n_tensors(f); i++) {
        loom_tensor_info t;
        loom_file_tensor(f, i, &t);
        bytes += (double)t.n_bytes;
        params += (double)t.ne[0] * (double)t.ne[1] * (double)t.ne[2] * (double)t.ne[3];
    }
    loom_file_close(&f);
    const int64_t need = n_prompt > n_gen ? n_prompt : n_gen;
    if (need > loom_model_n_ctx_train(m)) {
        cli_error("bench: a test of %lld tokens is longer than the model's training context (%d)", (long long)need,
                  loom_model_n_ctx_train(m));
        loom_model_free(&m);
        return EXIT_USAGE;
    }
    int32_t *tok = malloc((size_t)(n_prompt > 0 ? n_prompt : 1) * sizeof *tok);
    double *tps = malloc((size_t)reps * sizeof *tps);
    int status = tok && tps ? EXIT_OK : EXIT_FAILED;
    if (status != EXIT_OK) cli_error("bench: out of memory");
    const int32_t V = loom_model_n_vocab(m), bos = loom_token_bos(m);
    if (status == EXIT_OK && !c.json && !c.quiet)
        printf("| model | size | params | threads | test | t/s |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (int k = 0; status == EXIT_OK && k < n_threads; k++) {
        loom_session_params sp = loom_session_default_params();
        sp.n_ctx = (int32_t)need;
        sp.n_batch = (int32_t)(n_prompt > 0 ? n_prompt : 1);
        sp.n_threads = threads[k];
        sp.matmul = c.matmul;
        loom_session *s = NULL;
        if (loom_session_create(m, sp, &s, err, sizeof err) < 0) { cli_error("%s", err); status = EXIT_FAILED; break; }
        for (int test = 0; status == EXIT_OK && test < 2; test++) {
            const int np = test == 0 ? (int)n_prompt : 0, ng = test == 0 ? 0 : (int)n_gen, n = np + ng;
            if (n == 0) continue;
            uint64_t rng = c.seed ? c.seed : 0x9E3779B97F4A7C15ull;
            double mean = 0, sd = 0;
            for (long long r = -1; status == EXIT_OK && r < reps; r++) {   /* r = -1: the warm-up */
                const double dt = run_once(s, tok, np, ng, V, bos, &rng);
                if (dt < 0) { cli_error("bench: %s", loom_session_error(s)); status = EXIT_FAILED; }
                else if (r >= 0) tps[r] = n / (dt > 0 ? dt : 1e-9);
            }
            if (status != EXIT_OK) break;
            for (long long r = 0; r < reps; r++) mean += tps[r] / (double)reps;
            for (long long r = 0; reps > 1 && r < reps; r++) sd += (tps[r] - mean) * (tps[r] - mean) / (double)(reps - 1);
            sd = sqrt(sd);
            char name[32];
            snprintf(name, sizeof name, "%s%d", np ? "pp" : "tg", n);
            if (c.json) {
                printf("{\"model\": ");
                cli_json_str(stdout, c.model);
                printf(", \"desc\": ");
                cli_json_str(stdout, loom_model_desc(m));
                printf(", \"size_bytes\": %.0f, \"params\": %.0f, \"threads\": %d, \"test\": \"%s\", \"n_prompt\": %d, "
                       "\"n_gen\": %d, \"repetitions\": %lld, \"tokens_per_s\": [", bytes, params, threads[k], name, np, ng, reps);
                for (long long r = 0; r < reps; r++) printf("%s%.3f", r ? ", " : "", tps[r]);
                printf("], \"avg_ts\": %.3f, \"stddev_ts\": %.3f}\n", mean, sd);
            } else {
                printf("| %s | %.2f MiB | %.2f M | %d | %s | %.2f ± %.2f |\n", loom_model_desc(m), bytes / 1048576.0,
                       params / 1e6, threads[k], name, mean, sd);
            }
            fflush(stdout);
        }
        loom_session_free(&s);
    }
    if (status == EXIT_OK && !c.json && !c.quiet)
        fprintf(stderr, "loom: %lld runs per test after one warm-up; cpu: %s; matrix products: %s\n", reps,
                loom_cpu_features(), loom_blas_name());
    free(tok);
    free(tps);
    loom_model_free(&m);
    return status;
}
