/* libFuzzer entry: the byte-level BPE tokenizer with the bundled vocabulary
 * (models/loom-tiny-vocab.gguf), in three modes chosen by the first input byte:
 *   encode  arbitrary bytes, with/without BOS and special-token parsing: every id is in the
 *           vocabulary, the count needed is the same whatever the buffer size;
 *   decode  the rest of the input as int32 ids (any value): invalid ids are an error, valid
 *           ones write nothing past the buffer size they are given;
 *   round trip  valid UTF-8 encodes and decodes back to exactly the same bytes.
 *   scripts/fuzz 60 fuzz_tokenizer        (seeds: fuzz/corpus/tokenizer) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/gguf.h"
#include "lib/core/tokenizer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lm_gguf      *g_gguf;
static lm_tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    lm_error err = {0};
    if (lm_gguf_open(LOOM_SOURCE_DIR "/models/loom-tiny-vocab.gguf", &g_gguf, &err) != 0 ||
        lm_tokenizer_load(g_gguf, &g_tok, &err) != 0)
        __builtin_trap();   /* the bundled vocabulary must load */
    return 0;
}

/* Length of the well-formed UTF-8 prefix (RFC 3629: no overlongs, surrogates, > U+10FFFF). */
static size_t utf8_valid_prefix(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > n) break;
        uint32_t cp = k == 1 ? c : c & (0x7f >> k);
        size_t j = 1;
        for (; j < k && (s[i + j] & 0xc0) == 0x80; j++) cp = cp << 6 | (s[i + j] & 0x3f);
        if (j < k) break;
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) break;
        i += k;
    }
    return i;
}

static void check_ids(const int32_t *ids, int64_t n)
{
    const int32_t n_vocab = lm_tokenizer_n_vocab(g_tok);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab) __builtin_trap();
}

static int64_t encode(const char *text, size_t len, int add_bos, int parse_special, int32_t **ids)
{
    int64_t need = lm_tokenize(g_tok, text, len, add_bos, parse_special, NULL, 0);
    if (need < 0) __builtin_trap();          /* inputs are far below the length limit */
    *ids = malloc((size_t)(need ? need : 1) * sizeof **ids);
    if (!*ids) return -1;
    if (lm_tokenize(g_tok, text, len, add_bos, parse_special, *ids, need) != need) __builtin_trap();
    check_ids(*ids, need);
    /* a short buffer still reports the full count and holds the same first ids */
    if (need > 1) {
        int32_t head[1];
        if (lm_tokenize(g_tok, text, len, add_bos, parse_special, head, 1) != need || head[0] != (*ids)[0])
            __builtin_trap();
    }
    return need;
}

static void fuzz_decode(const uint8_t *data, size_t size, int special)
{
    char buf[64];
    for (size_t i = 0; i + 4 <= size; i += 4) {
        int32_t id;
        memcpy(&id, data + i, 4);
        if (i & 4) id %= lm_tokenizer_n_vocab(g_tok) + 8;   /* mostly near-valid ids */
        size_t cap = data[i] % sizeof buf;
        memset(buf, 0x5a, sizeof buf);
        int n = lm_token_to_piece(g_tok, id, special, buf, cap);
        int valid = id >= 0 && id < lm_tokenizer_n_vocab(g_tok);
        if (valid != (n >= 0)) __builtin_trap();
        for (size_t k = cap; k < sizeof buf; k++)
            if (buf[k] != 0x5a) __builtin_trap();   /* nothing written past cap */
    }
}

static void fuzz_roundtrip(const char *text, size_t len, int parse_special)
{
    len = utf8_valid_prefix((const uint8_t *)text, len);
    int32_t *ids = NULL;
    int64_t n = encode(text, len, 0, parse_special, &ids);
    char *out = n >= 0 ? malloc(len + 1) : NULL;
    size_t got = 0;
    for (int64_t i = 0; out && i < n; i++) {
        int k = lm_token_to_piece(g_tok, ids[i], parse_special, out + got, len + 1 - got);
        if (k < 0 || got + (size_t)k > len) __builtin_trap();   /* longer than the input */
        got += (size_t)k;
    }
    if (out && (got != len || memcmp(out, text, len))) __builtin_trap();
    free(out);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const int mode = data[0] % 3, add_bos = (data[0] >> 2) & 1, special = (data[0] >> 3) & 1;
    const char *text = (const char *)data + 1;
    const size_t len = size - 1;
    if (mode == 0) {
        int32_t *ids = NULL;
        encode(text, len, add_bos, special, &ids);
        free(ids);
    } else if (mode == 1) {
        fuzz_decode(data + 1, len, special);
    } else {
        fuzz_roundtrip(text, len, special);
    }
    return 0;
}
