/*
 * Byte-level BPE tokenizer (GGUF `tokenizer.ggml.model = "gpt2"`), as llama.cpp reads it:
 * tokenizer.ggml.{tokens, merges, token_type, bos_token_id, eos_token_id, padding_token_id,
 * add_bos_token, pre}. Pre-tokenizer split rules are chosen by `tokenizer.ggml.pre`
 * ("deepseek-v3", "gpt2", "loom", …; see docs/FORMAT.md).
 */
#ifndef LM_TOKENIZER_H
#define LM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "lib/core/error.h"
#include "lib/core/gguf.h"

typedef struct lm_tokenizer lm_tokenizer;

/* Token types (llama.cpp's llama_token_type values). */
enum {
    LM_TOKEN_NORMAL = 1, LM_TOKEN_UNKNOWN = 2, LM_TOKEN_CONTROL = 3,
    LM_TOKEN_USER_DEFINED = 4, LM_TOKEN_UNUSED = 5, LM_TOKEN_BYTE = 6,
};

/* Build from a GGUF's metadata. Missing/mistyped keys are errors that name the key.
 * (Implemented in tokenizer_gguf.c.) */
int  lm_tokenizer_load(const lm_gguf *g, lm_tokenizer **out, lm_error *err);

/* The same vocabulary given as plain arrays (what lm_tokenizer_load reads from the GGUF);
 * used by the loader and by tests. Everything is copied. */
typedef struct lm_tokenizer_spec {
    int32_t            n_tokens;
    const char *const *tokens;      /* [n_tokens] token texts (byte-level mapped)          */
    const uint32_t    *token_lens;  /* [n_tokens] byte lengths, or NULL for strlen          */
    const int32_t     *token_types; /* [n_tokens] LM_TOKEN_*, or NULL for all NORMAL         */
    int32_t            n_merges;
    const char *const *merges;      /* [n_merges] "left right", rank = index               */
    const uint32_t    *merge_lens;  /* [n_merges] byte lengths, or NULL for strlen          */
    const char        *pre;         /* tokenizer.ggml.pre; NULL → "default"                 */
    int32_t            bos, eos, pad; /* -1: none; -2: llama.cpp's default for gpt2 (11)    */
    int                add_bos;     /* 0/1, or -1: the pre-tokenizer's default              */
} lm_tokenizer_spec;

/* A spec with no vocabulary, pre NULL, bos = eos = -2, pad = -1, add_bos = -1. */
lm_tokenizer_spec lm_tokenizer_default_spec(void);
int  lm_tokenizer_create(const lm_tokenizer_spec *spec, lm_tokenizer **out, lm_error *err);
void lm_tokenizer_free(lm_tokenizer **t);

int32_t lm_tokenizer_n_vocab(const lm_tokenizer *t);
int32_t lm_tokenizer_bos(const lm_tokenizer *t);  /* -1 if none */
int32_t lm_tokenizer_eos(const lm_tokenizer *t);  /* -1 if none */
int32_t lm_tokenizer_pad(const lm_tokenizer *t);  /* -1 if none */
int     lm_tokenizer_add_bos(const lm_tokenizer *t);
int     lm_tokenizer_token_type(const lm_tokenizer *t, int32_t id);
/* Id of a token's exact text (e.g. "<|image|>"), or -1. */
int32_t lm_tokenizer_find(const lm_tokenizer *t, const char *text);

/* Encode UTF-8 text exactly as llama.cpp's llama_tokenize(add_special = add_bos):
 * invalid UTF-8 never crashes: like llama.cpp, each byte that does not start a well-formed
 * sequence becomes U+FFFD (so only valid UTF-8 round-trips byte-exactly).
 * Special tokens are cut out of the text first, longest text first: USER_DEFINED tokens
 * always, CONTROL and UNKNOWN tokens only when parse_special.
 * add_bos: prepend BOS if the vocabulary has one.
 * Writes up to max_tokens ids; returns the number the full encoding needs (may exceed
 * max_tokens: call again with a bigger buffer), or a negative status (LOOM_ERR_LIMIT for
 * text longer than LM_TOKENIZE_MAX_BYTES). Thread-safe: work buffers are per call,
 * linear in len. */
#define LM_TOKENIZE_MAX_BYTES ((size_t)1 << 29)
int64_t lm_tokenize(const lm_tokenizer *t, const char *text, size_t len, int add_bos,
                    int parse_special, int32_t *out, int64_t max_tokens);

/* The bytes of one token as they print (byte-level mapping undone). Control tokens give
 * their text only if `special`. Returns the byte count (may exceed size; nothing is written
 * past size), or a negative status for an invalid id. Not NUL-terminated. */
int lm_token_to_piece(const lm_tokenizer *t, int32_t id, int special, char *buf, size_t size);

#endif
