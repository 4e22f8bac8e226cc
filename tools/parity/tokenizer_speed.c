/*
 * Tokenize the same 1 MiB of mixed text with llama.cpp (peer libllama, C API) and with loom,
 * check the ids are identical, and print the speed ratio measured in this one run.
 * Built and run by tools/parity/tokenizer_parity.sh:
 *
 *   tokenizer_speed MODEL.gguf VOCAB.gguf
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llama.h"
#include "lib/core/gguf.h"
#include "lib/core/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void quiet(enum ggml_log_level level, const char *text, void *user) { (void)level; (void)text; (void)user; }

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: %s MODEL.gguf VOCAB.gguf\n", argv[0]); return 2; }
    static const char *const parts[] = { "hello ", "world", ", ", "12345", "\n", "  ", "日本語",
                                         "😀", "é", "don't ", "<|user|>", "\t", "...", "x" };
    const size_t n = 1 << 20;
    char *s = malloc(n + 1);
    unsigned seed = 1;
    for (size_t at = 0; at < n;) {
        seed = seed * 1103515245u + 12345u;
        const char *p = parts[(seed >> 16) % (sizeof parts / sizeof *parts)];
        size_t l = strlen(p) < n - at ? strlen(p) : n - at;
        memcpy(s + at, p, l);
        at += l;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    lm_gguf *g = NULL;
    lm_tokenizer *t = NULL;
    lm_error err = { 0 };
    if (!model || lm_gguf_open(argv[2], &g, &err) || lm_tokenizer_load(g, &t, &err)) {
        fprintf(stderr, "load failed: %s\n", err.msg);
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int32_t *a = malloc(sizeof(int32_t) * 2 * n), *b = malloc(sizeof(int32_t) * 2 * n);
    double best_l = 1e9, best_m = 1e9;
    int32_t na = 0;
    int64_t nb = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        na = llama_tokenize(vocab, s, (int32_t)n, a, (int32_t)(2 * n), false, true);
        double t1 = now();
        nb = lm_tokenize(t, s, n, 0, 1, b, (int64_t)(2 * n));
        double t2 = now();
        if (t1 - t0 < best_l) best_l = t1 - t0;
        if (t2 - t1 < best_m) best_m = t2 - t1;
    }
    int same = na == nb && memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0;
    printf("1 MiB mixed text, %d tokens: llama.cpp %.1f ms, loom %.1f ms (best of 3) → loom %.2fx llama.cpp's speed; ids %s\n",
           na, best_l * 1e3, best_m * 1e3, best_l / best_m, same ? "identical" : "DIFFER");
    lm_tokenizer_free(&t);
    lm_gguf_close(&g);
    llama_model_free(model);
    free(a); free(b); free(s);
    return same ? 0 : 1;
}
