/*
 * lm_tokenizer_load: the committed vocabulary GGUFs load into the same tokenizer as the
 * vocab.txt dump, agree with llama.cpp on the parity corpus, and malformed tokenizer keys
 * are errors that name the key.
 */
#include "tests/tokenizer_test_util.h"

#include <unistd.h>

#include "lib/core/gguf.h"

static lm_tokenizer *load(const char *path, lm_error *err)
{
    lm_gguf *g = NULL;
    lm_tokenizer *t = NULL;
    if (lm_gguf_open(path, &g, err) == 0) lm_tokenizer_load(g, &t, err);
    lm_gguf_close(&g);
    return t;
}

static void test_same_as_dump(const lm_tokenizer *a, const lm_tokenizer *b, const char *name)
{
    int same = lm_tokenizer_n_vocab(a) == lm_tokenizer_n_vocab(b) && lm_tokenizer_bos(a) == lm_tokenizer_bos(b) &&
               lm_tokenizer_eos(a) == lm_tokenizer_eos(b) && lm_tokenizer_pad(a) == lm_tokenizer_pad(b) &&
               lm_tokenizer_add_bos(a) == lm_tokenizer_add_bos(b);
    for (int32_t i = 0; same && i < lm_tokenizer_n_vocab(a); i++) {
        char pa[256], pb[256];
        int la = lm_token_to_piece(a, i, 1, pa, sizeof pa), lb = lm_token_to_piece(b, i, 1, pb, sizeof pb);
        same = lm_tokenizer_token_type(a, i) == lm_tokenizer_token_type(b, i) && la == lb &&
               la >= 0 && la <= (int)sizeof pa && memcmp(pa, pb, (size_t)la) == 0;
    }
    CHECK(same, "%s: GGUF tokenizer matches the vocab.txt one (ids, types, pieces, specials)", name);
}

/* Write a tokenizer GGUF with one thing wrong and check the error names it. */
typedef enum { BAD_NO_MODEL, BAD_MODEL, BAD_NO_TOKENS, BAD_TYPES_TYPE, BAD_TYPES_SHORT, BAD_BOS, BAD_PRE } bad_kind;

static void test_bad(bad_kind kind, int want_status, const char *want_in_msg)
{
    const char *toks[] = { "a", "b", "ab", "<|end|>" };
    const char *merges[] = { "a b" };
    int32_t types[] = { 1, 1, 1, 3 };
    float ftypes[] = { 1, 1, 1, 3 };
    lm_gguf_writer *w = lm_gguf_writer_create();
    if (kind != BAD_NO_MODEL) lm_gguf_set_str(w, "tokenizer.ggml.model", kind == BAD_MODEL ? "llama" : "gpt2");
    lm_gguf_set_str(w, "tokenizer.ggml.pre", kind == BAD_PRE ? "klingon" : "llama3");
    if (kind != BAD_NO_TOKENS) lm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    lm_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    if (kind == BAD_TYPES_TYPE) lm_gguf_set_arr(w, "tokenizer.ggml.token_type", LM_GGUF_F32, ftypes, 4);
    else lm_gguf_set_arr(w, "tokenizer.ggml.token_type", LM_GGUF_I32, types, kind == BAD_TYPES_SHORT ? 3 : 4);
    lm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", kind == BAD_BOS ? 4 : 3);
    char path[64];
    snprintf(path, sizeof path, "/tmp/loom_tok_bad_%d_%d.gguf", (int)kind, (int)getpid());
    lm_error err = { 0 };
    int wrc = lm_gguf_write(w, path, &err);
    lm_gguf_writer_free(&w);
    CHECK(wrc == 0, "write %s: %s", path, err.msg);
    lm_gguf *g = NULL;
    lm_tokenizer *t = NULL;
    int rc = lm_gguf_open(path, &g, &err);
    if (rc == 0) rc = lm_tokenizer_load(g, &t, &err);
    CHECK(rc == want_status && t == NULL && strstr(err.msg, want_in_msg),
          "bad case %d: status %d (want %d), message '%s' should name '%s'", (int)kind, rc, want_status,
          err.msg, want_in_msg);
    lm_tokenizer_free(&t);
    lm_gguf_close(&g);
    remove(path);
}

int main(void)
{
    vocab_file v;
    if (vocab_read("data/tokenizer/vocab.txt", &v) < 0) {
        printf("cannot read data/tokenizer/vocab.txt\n0 passed, 1 failed\n");
        return 1;
    }
    static const struct { const char *gguf, *pre, *expect, *name; } files[] = {
        { "data/tokenizer/vocab-loom.gguf", "loom", "data/tokenizer/expect-loom.txt", "loom GGUF" },
        { "data/tokenizer/vocab-deepseek-v3.gguf", "deepseek-v3", "data/tokenizer/expect-deepseek-v3.txt",
          "deepseek-v3 GGUF" },
    };
    for (int i = 0; i < 2; i++) {
        lm_error err = { 0 };
        lm_tokenizer *t = load(files[i].gguf, &err), *ref = make(&v, files[i].pre);
        CHECK(t != NULL, "load %s: %s", files[i].gguf, err.msg);
        if (t && ref) {
            test_same_as_dump(t, ref, files[i].name);
            test_parity(t, files[i].expect, files[i].name);
        }
        lm_tokenizer_free(&t);
        lm_tokenizer_free(&ref);
    }
    vocab_free(&v);
    test_bad(BAD_NO_MODEL, LOOM_ERR_NOT_FOUND, "tokenizer.ggml.model");
    test_bad(BAD_MODEL, LOOM_ERR_UNSUPPORTED, "llama");
    test_bad(BAD_NO_TOKENS, LOOM_ERR_NOT_FOUND, "tokenizer.ggml.tokens");
    test_bad(BAD_TYPES_TYPE, LOOM_ERR_TYPE, "tokenizer.ggml.token_type");
    test_bad(BAD_TYPES_SHORT, LOOM_ERR_FORMAT, "tokenizer.ggml.token_type");
    test_bad(BAD_BOS, LOOM_ERR_FORMAT, "bos_token_id");
    test_bad(BAD_PRE, LOOM_ERR_UNSUPPORTED, "klingon");
    return finish();
}
