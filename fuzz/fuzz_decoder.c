/* libFuzzer entry: arbitrary bytes as a `deepseek2` model file through the public loader,
 * loom_model_load (GGUF mmap reader, hyperparameters, every tensor bound and shape-checked,
 * the optional gpt2 tokenizer). The input is written to an in-memory file (memfd) so the
 * loader's real open/fstat/mmap path runs. A model that loads is used a little: its
 * description, a tokenize/detokenize round when it has a tokenizer, and one decode step in a
 * small session when its weights are small.
 *   scripts/fuzz 60 fuzz_decoder          (seeds: fuzz/corpus/decoder, from
 *                                          fuzz/make_decoder_seeds.c and tools/make_bad_gguf.py) */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz/memfd_file.h"
#include "loom.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    memfd_file_init("loom-fuzz-model");
    return 0;
}

static void use_model(loom_model *m)
{
    volatile size_t sink = strlen(loom_model_desc(m));
    if (loom_model_has_tokenizer(m)) {
        int32_t ids[64];
        char text[256];
        int64_t n = loom_tokenize(m, "a <|image|> b\xff", 14, 1, 1, ids, 64);
        if (n > 64) n = 64;
        if (n > 0) sink += (size_t)loom_detokenize(m, ids, n, 1, text, sizeof text);
    }
    /* one decode step: compute is bounded by the weight bytes, which the input bounds */
    if (loom_model_active_bytes(m) <= (1u << 20) && loom_model_n_vocab(m) > 0) {
        loom_session_params sp = loom_session_default_params();
        sp.n_ctx = 4;
        sp.n_batch = 2;
        sp.n_threads = 1;
        loom_session *s = NULL;
        if (loom_session_create(m, sp, &s, NULL, 0) == 0) {
            int32_t prompt[2] = {0, loom_model_n_vocab(m) - 1};
            if (loom_session_prompt(s, prompt, 2, NULL) == 0) sink += (size_t)loom_session_sample(s);
            loom_session_free(&s);
        }
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memfd_file_put(data, size) != 0) return 0;
    loom_model_params p = loom_model_default_params();
    p.n_threads = 1;
    p.load_tokenizer = size == 0 || (data[size - 1] & 1) == 0;
    loom_model *m = NULL;
    char err[256];
    int rc = loom_model_load(g_path, p, &m, err, sizeof err);
    if (rc == 0) {
        if (!m) __builtin_trap();
        use_model(m);
        loom_model_free(&m);
    } else if (m != NULL || rc > 0 || !err[0]) {
        __builtin_trap();   /* a failure leaves no model and always says why */
    }
    return 0;
}
