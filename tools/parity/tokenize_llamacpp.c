/*
 * Tokenize a corpus with llama.cpp's C API (the peer's prebuilt libllama, vocab only) and
 * print the ids: the byte-exact twin of tokenize_llamacpp.mjs, needed for the invalid-UTF-8
 * cases that a JS string cannot carry. Built by tools/parity/tokenizer_parity.sh against
 * the llama.h of the same release (from the peer's git bundle).
 *
 *   tokenize_llamacpp MODEL.gguf CORPUS.txt > IDS.txt
 *
 * CORPUS.txt: "<parse_special 0|1> <hex bytes>" per line; output: ids per line (no BOS).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gguf CORPUS.txt\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    FILE *f = fopen(argv[2], "r");
    if (!f) { perror(argv[2]); return 1; }
    size_t cap = 1 << 20;
    char *line = malloc(cap), *bytes = malloc(cap);
    llama_token *ids = malloc(sizeof(llama_token) * cap);
    while (fgets(line, (int)cap, f)) {
        size_t n = 0;
        int special = line[0] == '1';
        for (char *p = line + 2; hexval(p[0]) >= 0 && hexval(p[1]) >= 0; p += 2)
            bytes[n++] = (char)(hexval(p[0]) * 16 + hexval(p[1]));
        int32_t k = llama_tokenize(vocab, bytes, (int32_t)n, ids, (int32_t)cap, false, special);
        if (k < 0) { fprintf(stderr, "llama_tokenize failed (%d)\n", k); return 1; }
        for (int32_t i = 0; i < k; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    }
    fclose(f);
    free(line); free(bytes); free(ids);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
