/*
 * Decoder parity with llama.cpp: write random-weight deepseek2 models with loom's GGUF
 * writer, feed the same token ids to llama.cpp (dlopen) and to loom, compare the logits at
 * every position against the tolerances. Run through tools/parity/decoder.
 *
 *   decoder_parity [--tiny] [--only NAME] [--threads N] [--dir DIR] [--cpu VARIANT]
 *                  [--write-fixtures DIR] [--verbose]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loom.h"
#include "tools/parity/llama_peer.h"
#include "tools/parity/parity_models.h"

static int run_loom(const char *path, const int32_t *tok, int n, int n_threads, float *out)
{
    char err[512];
    loom_model *m = NULL;
    loom_session *s = NULL;
    if (loom_model_load(path, loom_model_default_params(), &m, err, sizeof err) < 0) {
        fprintf(stderr, "loom: %s\n", err);
        return -1;
    }
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = n;
    sp.n_threads = n_threads;
    int rc = loom_session_create(m, sp, &s, err, sizeof err);
    if (rc < 0) fprintf(stderr, "loom: %s\n", err);
    if (rc == 0 && (rc = loom_session_prompt(s, tok, n, out)) < 0) fprintf(stderr, "loom: %s\n", loom_session_error(s));
    loom_session_free(&s);
    loom_model_free(&m);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = "out/parity", *only = NULL, *cpu = NULL, *fixtures = NULL;
    int tiny_only = 0, n_threads = 2, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tiny")) tiny_only = 1;
        else if (!strcmp(argv[i], "--verbose")) verbose = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--cpu") && i + 1 < argc) cpu = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--write-fixtures") && i + 1 < argc) fixtures = argv[++i];
        else { fprintf(stderr, "usage: %s [--tiny] [--only NAME] [--threads N] [--dir DIR] [--cpu VARIANT] "
                       "[--write-fixtures DIR] [--verbose]\n", argv[0]); return 2; }
    }
    mkdir("out", 0755);
    mkdir(dir, 0755);
    lp_api peer;
    if (lp_open(&peer, NULL, cpu, verbose) < 0) return 1;

    parity_model models[16];
    const int n_models = parity_models(models, 16);
    int failed = 0, ran = 0;
    for (int i = 0; i < n_models; i++) {
        const parity_model *pm = &models[i];
        if ((tiny_only && !pm->tiny) || (only && !strstr(pm->name, only))) continue;
        char path[512], why[256];
        snprintf(path, sizeof path, "%s/%s.gguf", dir, pm->name);
        lm_error e = {0};
        if (lm_synth_write(&pm->p, path, &e) < 0) { fprintf(stderr, "%s: %s\n", pm->name, e.msg); return 1; }
        const int n = pm->n_pos, V = pm->p.n_vocab;
        int32_t *tok = malloc((size_t)n * sizeof *tok);
        float *a = malloc((size_t)n * V * sizeof *a), *b = malloc((size_t)n * V * sizeof *b);
        parity_tokens(pm, tok);
        void *model = NULL, *ctx = NULL;
        int rc = lp_load(&peer, path, n, n, n_threads, &model, &ctx);
        if (rc == 0 && peer.vocab_n_tokens(peer.model_get_vocab(model)) != V) {
            fprintf(stderr, "%s: llama.cpp sees %d tokens, expected %d\n", pm->name,
                    peer.vocab_n_tokens(peer.model_get_vocab(model)), V);
            rc = -1;
        }
        lp_batch batch = peer.batch_init(n, 0, 1);
        if (rc == 0) rc = lp_eval(&peer, ctx, &batch, tok, n, 0, n, 1, a, V);
        peer.batch_free(batch);
        if (ctx) peer.free_ctx(ctx);
        if (model) peer.model_free(model);
        if (rc == 0) rc = run_loom(path, tok, n, n_threads, b);
        if (rc == 0) {
            parity_stats st = parity_compare(a, b, n, V);
            int ok = parity_ok(pm->p.type, &st, why, sizeof why);
            printf("%-26s %3d pos  %s  %s\n", pm->name, n, why, ok ? "ok" : "FAIL");
            failed += !ok;
            for (int t = 0; verbose && t < n; t++) {
                parity_stats pt = parity_compare(a + (size_t)t * V, b + (size_t)t * V, 1, V);
                printf("  pos %3d tok %6d  max|Δ| %.3g  KL %.3g\n", t, tok[t], pt.max_abs, pt.mean_kl);
            }
            if (fixtures && pm->tiny) {
                char fp[512];
                snprintf(fp, sizeof fp, "%s/%s.bin", fixtures, pm->name);
                if (parity_fixture_write(fp, tok, a, n, V) < 0) { fprintf(stderr, "cannot write %s\n", fp); failed++; }
            }
        } else {
            printf("%-26s error\n", pm->name);
            failed++;
        }
        ran++;
        free(tok);
        free(a);
        free(b);
    }
    printf("llama.cpp CPU backend: libggml-cpu-%s.so; %d models, %d failed\n", peer.cpu_variant, ran, failed);
    return failed ? 1 : 0;
}
