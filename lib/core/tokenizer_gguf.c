/*
 * lm_tokenizer_load: read tokenizer.ggml.* from a GGUF into an lm_tokenizer_spec, the way
 * llama.cpp's llama_vocab::load does for `tokenizer.ggml.model = "gpt2"`.
 * Kept apart from tokenizer.c so the BPE core does not depend on the GGUF reader.
 */
#include "lib/core/tokenizer.h"

#include <stdlib.h>
#include <string.h>

/* A string array as pointers + lengths (pointing into the GGUF); caller frees both. */
static int read_str_array(const lm_gguf *g, const char *key, int required, const char ***strs,
                          uint32_t **lens, int32_t *n, lm_error *err)
{
    *strs = NULL; *lens = NULL; *n = 0;
    if (!required && lm_gguf_find_kv(g, key) < 0) return 0;
    const lm_gguf_array *a = NULL;
    int rc = lm_gguf_get_arr(g, key, &a, err);
    if (rc) return rc;
    if (lm_gguf_arr_type(a) != LM_GGUF_STRING)
        return lm_fail(err, LOOM_ERR_TYPE, "%s: expected an array of strings, got %s", key,
                       lm_gguf_vtype_name(lm_gguf_arr_type(a)));
    uint64_t len = lm_gguf_arr_len(a);
    if (len > INT32_MAX) return lm_fail(err, LOOM_ERR_LIMIT, "%s: %llu entries, more than the limit of %d", key,
                                        (unsigned long long)len, INT32_MAX);
    *strs = malloc(sizeof(char *) * (len ? len : 1));
    *lens = malloc(sizeof(uint32_t) * (len ? len : 1));
    if (!*strs || !*lens) {
        free(*strs); free(*lens); *strs = NULL; *lens = NULL;
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "%s: out of memory", key);
    }
    for (uint64_t i = 0; i < len; i++) {
        (*strs)[i] = lm_gguf_arr_str(a, i);
        (*lens)[i] = lm_gguf_arr_str_len(a, i);
    }
    *n = (int32_t)len;
    return 0;
}

/* Optional token id key: absent leaves *id alone. */
static int opt_id(const lm_gguf *g, const char *key, int32_t *id, lm_error *err)
{
    uint32_t v = 0;
    if (lm_gguf_find_kv(g, key) < 0) return 0;
    int rc = lm_gguf_get_u32(g, key, &v, err);
    if (rc) return rc;
    *id = v > INT32_MAX ? INT32_MAX : (int32_t)v;
    return 0;
}

int lm_tokenizer_load(const lm_gguf *g, lm_tokenizer **out, lm_error *err)
{
    if (!out) return lm_fail(err, LOOM_ERR_INVALID_ARG, "tokenizer: out is NULL");
    *out = NULL;
    if (!g) return lm_fail(err, LOOM_ERR_INVALID_ARG, "tokenizer: no GGUF");
    const char *model = NULL;
    int rc = lm_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (rc) return rc;
    if (strcmp(model, "gpt2") != 0)
        return lm_fail(err, LOOM_ERR_UNSUPPORTED,
                       "tokenizer.ggml.model = '%s': only byte-level BPE ('gpt2') is supported", model);

    lm_tokenizer_spec s = lm_tokenizer_default_spec();
    const char **toks = NULL, **merges = NULL;
    uint32_t *tok_lens = NULL, *merge_lens = NULL;
    int32_t *types = NULL;
    rc = read_str_array(g, "tokenizer.ggml.tokens", 1, &toks, &tok_lens, &s.n_tokens, err);
    if (!rc) rc = read_str_array(g, "tokenizer.ggml.merges", 1, &merges, &merge_lens, &s.n_merges, err);
    if (!rc && lm_gguf_find_kv(g, "tokenizer.ggml.token_type") >= 0) {
        const lm_gguf_array *a = NULL;
        rc = lm_gguf_get_arr(g, "tokenizer.ggml.token_type", &a, err);
        if (!rc && lm_gguf_arr_type(a) != LM_GGUF_I32)
            rc = lm_fail(err, LOOM_ERR_TYPE, "tokenizer.ggml.token_type: expected i32 array, got %s",
                         lm_gguf_vtype_name(lm_gguf_arr_type(a)));
        if (!rc && lm_gguf_arr_len(a) < (uint64_t)s.n_tokens)
            rc = lm_fail(err, LOOM_ERR_FORMAT, "tokenizer.ggml.token_type: %llu entries for %d tokens",
                         (unsigned long long)lm_gguf_arr_len(a), s.n_tokens);
        if (!rc) {
            /* copied: the mapping gives no alignment guarantee for int32 reads */
            types = malloc(sizeof(int32_t) * (size_t)(s.n_tokens ? s.n_tokens : 1));
            if (!types) rc = lm_fail(err, LOOM_ERR_NO_MEMORY, "tokenizer: out of memory");
            else memcpy(types, lm_gguf_arr_data(a), sizeof(int32_t) * (size_t)s.n_tokens);
        }
    }
    const char *pre = NULL;
    if (!rc && lm_gguf_find_kv(g, "tokenizer.ggml.pre") >= 0)
        rc = lm_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err);
    if (!rc) rc = opt_id(g, "tokenizer.ggml.bos_token_id", &s.bos, err);
    if (!rc) rc = opt_id(g, "tokenizer.ggml.eos_token_id", &s.eos, err);
    if (!rc) rc = opt_id(g, "tokenizer.ggml.padding_token_id", &s.pad, err);
    if (!rc && lm_gguf_find_kv(g, "tokenizer.ggml.add_bos_token") >= 0) {
        int b = 0;
        rc = lm_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, err);
        s.add_bos = b != 0;
    }
    if (!rc) {
        /* llama.cpp ignores an out-of-range special id (keeps its default); loom rejects it
         * in lm_tokenizer_create with a message naming the key. */
        s.tokens = toks; s.token_lens = tok_lens; s.token_types = types;
        s.merges = merges; s.merge_lens = merge_lens; s.pre = pre;
        rc = lm_tokenizer_create(&s, out, err);
    }
    free(toks); free(tok_lens); free(merges); free(merge_lens); free(types);
    return rc;
}
