/*
 * loom_perplexity (loom perplexity) vs llama.cpp on the same files and the same token ids:
 * the peer's logits (dlopen, tools/parity/llama_peer.h) go through llama-perplexity's
 * arithmetic (chunks of n_ctx from an empty cache, BOS first, the second half scored,
 * log-softmax with a float max and a double sum of expf), loom's through loom_perplexity.
 * Models: the ~217 M random-weight deepseek2 in f16 and q8_0 on seeded token ids, and the
 * bundled loom-tiny in f16 and in q8_0 (loom_quantize) on a text file. Run through
 * tools/parity/perplexity.
 *
 *   perplexity_parity [--tiny] [--text FILE] [--threads N] [--big-ctx N]   (the ~217 M model's chunk, 512)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "loom.h"
#include "tools/parity/llama_peer.h"
#include "tools/parity/parity_models.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* llama-perplexity's log_softmax(logits)[tok]. */
static double peer_log_prob(const float *l, int V, int tok)
{
    float mx = l[0];
    for (int i = 1; i < V; i++) mx = l[i] > mx ? l[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += expf(l[i] - mx);
    return (double)(l[tok] - mx) - log(sum);
}

/* A loom model and a session of n_ctx C. */
typedef struct loom_side {
    loom_model   *m;
    loom_session *s;
} loom_side;

static int loom_open(const char *path, int C, int n_threads, loom_side *l)
{
    char err[512];
    *l = (loom_side){0};
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = sp.n_batch = C;
    sp.n_threads = n_threads;
    if (loom_model_load(path, loom_model_default_params(), &l->m, err, sizeof err) < 0 ||
        loom_session_create(l->m, sp, &l->s, err, sizeof err) < 0) {
        fprintf(stderr, "loom: %s\n", err);
        loom_model_free(&l->m);
        return -1;
    }
    return 0;
}

/* How far loom's logits are from the peer's over the scored positions. */
typedef struct logit_gap {
    double bound;        /* mean of 2·max_i |Δ logit_i| (|Δ log p| <= 2·max|Δ logit| at each) */
    double apart_bound;  /* the same sum over the positions apart only, over all positions */
    int    n_apart;      /* positions whose max |Δ logit| > APART */
    int    chunks_apart; /* chunks holding such positions: one flip moves the rest of its chunk */
    float  worst;        /* the largest max |Δ logit|, at token worst_at */
    int    worst_at;
    int    apart_at[8];  /* the first positions apart (tokens), to look up their routing gaps */
} logit_gap;

#define APART 0.1f   /* f32 logits agree to ~1e-5; a routing flip moves a position by whole units */
#define MAX_APART 2  /* f32 chunks routed apart allowed (v50: 1 of 14, a gap of 5.2e-5) */
#define STR_(x) #x
#define STR(x) STR_(x)

/* The peer's perplexity of tok[0..n) in chunks of C (ppl, or -1), and its logits' distance
 * from loom's on the same chunks. */
static double peer_ppl(lp_api *p, const char *path, const int32_t *tok, int n, int C, int bos, int n_threads,
                       loom_side *l, logit_gap *g)
{
    void *model = NULL, *ctx = NULL;
    double ppl = -1;
    *g = (logit_gap){.bound = INFINITY, .worst_at = -1};
    if (lp_load(p, path, C, C, n_threads, &model, &ctx) == 0) {
        const int V = p->vocab_n_tokens(p->model_get_vocab(model));
        float *logits = malloc((size_t)C * V * sizeof *logits), *mine = malloc((size_t)C * V * sizeof *mine);
        int32_t *chunk = malloc((size_t)C * sizeof *chunk);
        lp_batch b = p->batch_init(C, 0, 1);
        double nll = 0, sum_bound = 0, sum_apart = 0;
        long count = 0;
        int rc = logits && mine && chunk && V == loom_model_n_vocab(l->m) ? 0 : -1;
        for (int c = 0; rc == 0 && c < n / C; c++) {
            const int apart_before = g->n_apart;
            memcpy(chunk, tok + (size_t)c * C, (size_t)C * sizeof *chunk);
            if (bos >= 0) chunk[0] = bos;
            p->memory_clear(p->get_memory(ctx), true);
            rc = lp_eval(p, ctx, &b, chunk, C, 0, C, 1, logits, V);
            if (rc == 0 && loom_session_prompt(l->s, chunk, C, mine) < 0) rc = -1;
            for (int j = C / 2; rc == 0 && j < C - 1; j++, count++) {
                nll -= peer_log_prob(logits + (size_t)j * V, V, chunk[j + 1]);
                float d = 0;
                for (int i = 0; i < V; i++) d = fmaxf(d, fabsf(logits[(size_t)j * V + i] - mine[(size_t)j * V + i]));
                sum_bound += 2.0 * d;
                if (d > APART) {
                    if (g->n_apart < 8) g->apart_at[g->n_apart] = c * C + j;
                    g->n_apart++, sum_apart += 2.0 * d;
                }
                if (d > g->worst) g->worst = d, g->worst_at = c * C + j;
            }
            g->chunks_apart += g->n_apart > apart_before;
        }
        if (rc == 0 && count) {
            ppl = exp(nll / (double)count);
            g->bound = sum_bound / (double)count;
            g->apart_bound = sum_apart / (double)count;
        }
        loom_session_truncate(l->s, 0);
        p->batch_free(b);
        free(logits);
        free(mine);
        free(chunk);
    }
    if (ctx) p->free_ctx(ctx);
    if (model) p->model_free(model);
    return ppl;
}

static double loom_ppl(loom_side *l, const int32_t *tok, int n, int C, int add_bos)
{
    loom_perplexity_params pp = loom_perplexity_default_params();
    pp.n_ctx = C;
    pp.add_bos = add_bos;
    loom_perplexity_result r;
    if (loom_perplexity(l->s, tok, n, pp, &r) < 0) {
        fprintf(stderr, "loom: %s\n", loom_session_error(l->s));
        return -1;
    }
    return r.ppl;
}

/* One file: both perplexities and their difference in ln ppl (nats per token), which must
 * stay within 1e-4 for f32 (the same arithmetic on equal logits), plus the bound of the
 * positions apart, in at most MAX_APART chunks: there the two sides route a token to other
 * experts by a near-tie and the rest of its chunk reads the changed cache
 * (tools/parity/route_gaps.py finds it); and within the logits' own bound otherwise
 * (docs/PARITY.md: the decoder's f16/q8_0 roundings differ slightly). */
static int compare(lp_api *p, const char *name, const char *path, const int32_t *tok, int n, int C, int bos,
                   int n_threads)
{
    loom_side l;
    if (loom_open(path, C, n_threads, &l) < 0) return 1;
    logit_gap g;
    double t0 = now_s();
    const double b = loom_ppl(&l, tok, n, C, bos >= 0);
    double t1 = now_s();
    const double a = peer_ppl(p, path, tok, n, C, bos, n_threads, &l, &g);
    loom_session_free(&l.s);
    loom_model_free(&l.m);
    const double d = a > 0 && b > 0 ? fabs(log(b / a)) : INFINITY;
    const int f32 = strstr(name, "f32") != NULL;
    const double tol = f32 ? 1e-4 + g.apart_bound : g.bound;
    const int ok = d <= tol && (!f32 || g.chunks_apart <= MAX_APART);
    printf("%-24s %2d chunks of %4d: llama.cpp %.6f  loom %.6f  |Δ ln ppl| %.2e (<= %.2e%s)  %s\n"
           "%-24s largest |Δ logit| %.3g (token %d), %d positions in %d chunks apart by > %.1f; loom's time %.2f s\n",
           name, n / C, C, a, b, d, tol, f32 ? ", 1e-4 + the positions apart, in at most " STR(MAX_APART) " chunks"
           : ", the logits' bound", ok ? "ok" : "FAIL", "", g.worst, g.worst_at, g.n_apart, g.chunks_apart, APART,
           t1 - t0);
    if (f32 && g.n_apart) {
        printf("%-24s apart at token", "");
        for (int i = 0; i < g.n_apart && i < 8; i++) printf(" %d", g.apart_at[i]);
        printf("%s\n", g.n_apart > 8 ? " …" : "");
    }
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *text = "tests/data/text/captions.txt";
    int tiny = 0, n_threads = 2, big_ctx = 512;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tiny")) tiny = 1;
        else if (!strcmp(argv[i], "--text") && i + 1 < argc) text = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--big-ctx") && i + 1 < argc) big_ctx = atoi(argv[++i]);
        else { fprintf(stderr, "usage: perplexity_parity [--tiny] [--text FILE] [--threads N] [--big-ctx N]\n"); return 2; }
    }
    lp_api lp;
    if (lp_open(&lp, NULL, NULL, 0) < 0) return 1;
    mkdir("out", 0777);
    mkdir("out/parity", 0777);
    int failed = 0, runs = 0;
    char err[512];

    /* loom-tiny as bundled (f16), widened to f32 and in q8_0 (loom_quantize), on the text */
    const char *tiny_files[3][2] = {{"loom-tiny f16", "models/loom-tiny.gguf"},
                                    {"loom-tiny f32", "out/parity/loom-tiny-f32.gguf"},
                                    {"loom-tiny q8_0", "out/parity/loom-tiny-q8_0.gguf"}};
    for (int k = 1; k < 3; k++) {
        loom_quantize_params qp = loom_quantize_default_params();
        qp.type = k == 1 ? LOOM_TYPE_F32 : LOOM_TYPE_Q8_0;
        if (loom_quantize("models/loom-tiny.gguf", tiny_files[k][1], qp, NULL, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    loom_model *m = NULL;
    FILE *f = fopen(text, "rb");
    static char buf[1 << 20];
    const size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    if (!len || loom_model_load("models/loom-tiny.gguf", loom_model_default_params(), &m, err, sizeof err) < 0) {
        fprintf(stderr, "cannot read %s or models/loom-tiny.gguf %s\n", text, err);
        return 1;
    }
    const int64_t n = loom_tokenize(m, buf, len, 1, 0, NULL, 0);
    int32_t *tok = malloc((size_t)(n > 0 ? n : 1) * sizeof *tok);
    if (n <= 0 || loom_tokenize(m, buf, len, 1, 0, tok, n) != n) { fprintf(stderr, "cannot tokenize %s\n", text); return 1; }
    const int bos = loom_token_bos(m);
    loom_model_free(&m);
    for (int k = 0; k < 3; k++, runs++)
        failed += compare(&lp, tiny_files[k][0], tiny_files[k][1], tok, (int)n, 256, bos, n_threads);
    free(tok);

    /* the ~217 M random-weight model on seeded ids, as they are (no BOS put first) */
    if (!tiny) {
        const int C = big_ctx, N = 1024 / C * C;
        int32_t *ids = malloc((size_t)N * sizeof *ids);
        uint64_t x = 0x2545F4914F6CDD1Dull;
        const int types[] = {LOOM_TYPE_F32, LOOM_TYPE_F16, LOOM_TYPE_Q8_0};
        for (int k = 0; k < 3; k++) {
            lm_synth_params big = parity_big_params(types[k]);
            for (int i = 0; i < N; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                ids[i] = (int32_t)(x % (uint64_t)big.n_vocab);
            }
            char path[256], name[64];
            snprintf(name, sizeof name, "big-split-sigmoid-%s", loom_type_name(types[k]));
            snprintf(path, sizeof path, "out/parity/%s.gguf", name);
            lm_error e = {0};
            if (lm_synth_write(&big, path, &e) < 0) { fprintf(stderr, "%s: %s\n", path, e.msg); return 1; }
            failed += compare(&lp, name, path, ids, N, C, -1, n_threads);
            runs++;
        }
        free(ids);
    }
    printf("\n%d of %d perplexities within tolerance of llama.cpp's\n", runs - failed, runs);
    return failed ? 1 : 0;
}
