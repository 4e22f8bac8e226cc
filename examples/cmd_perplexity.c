/* loom perplexity: how well a decoder predicts a text file, as llama.cpp's llama-perplexity
 * measures it (same chunks, same scored positions), e.g. to see what quantizing a model
 * cost. Uses only include/loom.h. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_util.h"
#include "loom.h"

void help_perplexity(void);
int  cmd_perplexity(int argc, char **argv);

/* Text files up to this size (a 64 MiB text is ~16 M tokens: hours of CPU at this size). */
#define MAX_TEXT_BYTES (64ll << 20)

void help_perplexity(void)
{
    printf("usage: loom perplexity -m MODEL -f TEXT [options]\n\n"
           "Perplexity of the model on a UTF-8 text file (\"-\" reads stdin), computed as\n"
           "llama.cpp's llama-perplexity does: the tokens are cut into chunks of N, each chunk\n"
           "starts with BOS and the second half of each is scored; the running estimate is\n"
           "printed after each chunk, then the final one with its standard error.\n\n"
           "  -m, --model PATH       decoder GGUF (default $LOOM_MODEL, else models/loom-tiny.gguf)\n"
           "  -f, --file PATH        the text (at most 64 MiB)\n"
           "  -c, --ctx N            tokens per chunk (default 512, or the training context if shorter)\n"
           "      --chunks N         only the first N chunks (default: all)\n"
           "      --base PATH        also run the same chunks through PATH (e.g. the original of a\n"
           "                         quantized MODEL): its perplexity, the mean and largest\n"
           "                         KL(base || MODEL) of the next-token distributions and how often\n"
           "                         both rank the same token first\n"
           "  -t, --threads N        threads (default: all CPUs)\n"
           "      --bf16             products in bfloat16 on AMX CPUs (faster; a different number)\n"
           "      --json             one JSON object: the estimate and each chunk's running value\n"
           "  -q, --quiet            no per-chunk values or timings\n");
}

static volatile int g_interrupted;
static void on_sigint(int sig) { (void)sig; g_interrupted = 1; }

/* The whole file (or stdin) NUL-terminated in *out; 0, or -1 with a message printed. */
static int read_text(const char *path, char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) { cli_error("perplexity: cannot open '%s'", path); return -1; }
    size_t cap = 1 << 16, n = 0;   /* reads up to MAX_TEXT_BYTES + 1: one byte more is too large */
    char *buf = malloc(cap + 1);
    int rc = 0;
    if (!buf) { cli_error("perplexity: out of memory reading '%s'", path); rc = -1; }
    while (rc == 0) {
        if (n == cap) {
            const size_t grown = cap * 2 > (size_t)MAX_TEXT_BYTES + 1 ? (size_t)MAX_TEXT_BYTES + 1 : cap * 2;
            char *b = grown > cap ? realloc(buf, grown + 1) : NULL;
            if (!b) { cli_error("perplexity: out of memory reading '%s'", path); rc = -1; break; }
            buf = b;
            cap = grown;
        }
        const size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n > (size_t)MAX_TEXT_BYTES) {
            cli_error("perplexity: '%s' is larger than %lld MiB", path, MAX_TEXT_BYTES >> 20);
            rc = -1;
        } else if (got == 0) {
            if (ferror(f)) { cli_error("perplexity: error reading '%s'", path); rc = -1; }
            break;
        }
    }
    if (f != stdin) fclose(f);
    if (rc < 0) { free(buf); return -1; }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

typedef struct chunk_log {
    double *ppl;       /* running estimate after each chunk (json) */
    int     quiet, json;
} chunk_log;

static int on_chunk(int32_t chunk, int32_t n_chunks, double ppl, void *user)
{
    chunk_log *l = user;
    if (l->ppl) l->ppl[chunk - 1] = ppl;
    if (!l->json && !l->quiet) {
        printf("[%d]%.4f%s", chunk, ppl, chunk == n_chunks ? "\n" : ",");
        fflush(stdout);
    }
    return g_interrupted;
}

int cmd_perplexity(int argc, char **argv)
{
    cli_common c = {0};
    const char *file = NULL, *base_path = NULL;
    long long n_ctx = 0, max_chunks = 0;   /* n_ctx 0: min(512, the training context) */
    for (int i = 1; i < argc; i++) {
        int r = cli_common_option(&c, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (cli_is(a, "-f", "--file") && v) { file = v; i++; }
        else if (cli_is(a, "-c", "--ctx") && v) { bad = cli_parse_int(a, v, 4, 1 << 20, &n_ctx); i++; }
        else if (cli_is(a, "--base", NULL) && v) { base_path = v; i++; }
        else if (cli_is(a, "--chunks", NULL) && v) { bad = cli_parse_int(a, v, 1, 1 << 30, &max_chunks); i++; }
        else { cli_error("perplexity: unknown or incomplete option '%s'", a); return EXIT_USAGE; }
        if (bad) return EXIT_USAGE;
    }
    if (!file) { cli_error("perplexity: no text (-f FILE; see 'loom perplexity --help')"); return EXIT_USAGE; }
    if (!c.model) c.model = cli_default_model();

    char err[512], *text = NULL;
    size_t len = 0;
    if (read_text(file, &text, &len) < 0) return EXIT_FAILED;
    loom_model_params mp = loom_model_default_params();
    mp.n_threads = c.threads;
    loom_model *m = NULL, *bm = NULL;
    if (loom_model_load(c.model, mp, &m, err, sizeof err) < 0) { cli_error("%s", err); free(text); return EXIT_FAILED; }
    int status = EXIT_FAILED;
    int32_t *toks = NULL;
    double *running = NULL;
    loom_session *s = NULL, *bs = NULL;
    if (base_path && loom_model_load(base_path, mp, &bm, err, sizeof err) < 0) { cli_error("perplexity: --base: %s", err); goto done; }
    if (!loom_model_has_tokenizer(m)) { cli_error("perplexity: %s has no tokenizer", c.model); goto done; }
    if (n_ctx == 0) n_ctx = loom_model_n_ctx_train(m) < 512 ? loom_model_n_ctx_train(m) : 512;
    if (n_ctx > loom_model_n_ctx_train(m)) {
        cli_error("perplexity: --ctx %lld is more than the model's training context (%d)", n_ctx, loom_model_n_ctx_train(m));
        status = EXIT_USAGE;
        goto done;
    }
    const int64_t n_tok = loom_tokenize(m, text, len, 1, 0, NULL, 0);
    toks = n_tok > 0 ? malloc((size_t)n_tok * sizeof *toks) : NULL;
    if (n_tok <= 0 || !toks || loom_tokenize(m, text, len, 1, 0, toks, n_tok) != n_tok) {
        cli_error("perplexity: cannot tokenize '%s' (%s)", file, n_tok < 0 ? loom_status_str((int)n_tok) : "out of memory");
        goto done;
    }
    if (n_tok < n_ctx) {
        cli_error("perplexity: '%s' is %lld tokens, fewer than one chunk of %lld (give a smaller --ctx)", file,
                  (long long)n_tok, n_ctx);
        goto done;
    }
    const int64_t n_chunks = max_chunks && max_chunks < n_tok / n_ctx ? max_chunks : n_tok / n_ctx;
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = (int32_t)n_ctx;
    sp.n_batch = (int32_t)n_ctx;
    sp.n_threads = c.threads;
    sp.matmul = c.matmul;
    if (loom_session_create(m, sp, &s, err, sizeof err) < 0 || (bm && loom_session_create(bm, sp, &bs, err, sizeof err) < 0)) {
        cli_error("%s", err);
        goto done;
    }
    chunk_log clog = {.quiet = c.quiet, .json = c.json};
    if (c.json && !(clog.ppl = running = calloc((size_t)n_chunks, sizeof *running))) { cli_error("perplexity: out of memory"); goto done; }
    if (!c.json && !c.quiet)
        fprintf(stderr, "loom: %lld tokens; %lld chunks of %lld, scoring the last %lld tokens of each\n", (long long)n_tok,
                (long long)n_chunks, n_ctx, n_ctx - 1 - n_ctx / 2);
    loom_perplexity_params pp = loom_perplexity_default_params();
    pp.n_ctx = (int32_t)n_ctx;
    pp.n_chunks = (int32_t)n_chunks;
    pp.on_chunk = on_chunk;
    pp.user_data = &clog;
    pp.base = bs;
    loom_perplexity_result r;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    signal(SIGINT, on_sigint);
    const int rc = loom_perplexity(s, toks, n_tok, pp, &r);
    signal(SIGINT, SIG_DFL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (rc < 0 && rc != LOOM_ERR_ABORTED) { cli_error("%s", loom_session_error(s)); goto done; }
    status = rc == LOOM_ERR_ABORTED ? EXIT_ABORTED : EXIT_OK;
    if (c.json) {
        printf("{\"model\": ");
        cli_json_str(stdout, c.model);
        printf(", \"file\": ");
        cli_json_str(stdout, file);
        printf(", \"n_tokens\": %lld, \"n_ctx\": %lld, \"n_chunks\": %d, \"n_scored\": %lld, \"ppl\": %.6f, "
               "\"ppl_err\": %.6f, \"nll\": %.8f, \"seconds\": %.3f, \"status\": \"%s\", \"chunks\": [",
               (long long)n_tok, n_ctx, r.n_chunks, (long long)r.n_scored, r.ppl, r.ppl_err, r.nll, secs,
               rc < 0 ? loom_status_str(rc) : "ok");
        for (int32_t i = 0; i < r.n_chunks; i++) printf("%s%.6f", i ? ", " : "", running[i]);
        printf("]");
        if (bs) {
            printf(", \"base\": ");
            cli_json_str(stdout, base_path);
            printf(", \"base_ppl\": %.6f, \"kl_mean\": %.8f, \"kl_max\": %.8f, \"same_top\": %.6f", r.base_ppl,
                   r.kl_mean, r.kl_max, r.same_top);
        }
        printf("}\n");
    } else if (r.n_chunks > 0) {
        if (rc < 0 && !c.quiet) putchar('\n');
        printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
        if (bs)
            printf("Against %s: PPL(base) = %.4f, ln(PPL/PPL(base)) = %.6f; KL(base || model) mean %.6f, max %.6f; "
                   "same top token %.2f %%\n", base_path, r.base_ppl, log(r.ppl / r.base_ppl), r.kl_mean, r.kl_max,
                   100 * r.same_top);
        if (!c.quiet)
            fprintf(stderr, "loom: %d chunks, %lld tokens scored, %.2f s (%.1f tokens/s)%s\n", r.n_chunks,
                    (long long)r.n_scored, secs, secs > 0 ? r.n_chunks * (double)n_ctx / secs : 0,
                    rc < 0 ? "; interrupted" : "");
    }
done:
    free(running);
    loom_session_free(&bs);
    loom_model_free(&bm);
    loom_session_free(&s);
    free(toks);
    loom_model_free(&m);
    free(text);
    return status;
}
