/* The loom-tiny vocabulary in models/ (byte-level BPE trained on the synthetic corpus by
 * tools/data/corpus.py + tools/loompy/bpe.py) loads in the C tokenizer, round-trips text,
 * is compact on in-domain text and has every control token of the unified model. */
#include <stdio.h>
#include <string.h>

#include "lib/core/gguf.h"
#include "lib/core/tokenizer.h"
#include "tests/check.h"

static int roundtrip(const lm_tokenizer *t, const char *s, int64_t *n_tok)
{
    int32_t ids[512];
    char out[4096];
    size_t len = 0;
    int64_t n = lm_tokenize(t, s, strlen(s), 0, 0, ids, 512);
    if (n < 0 || n > 512) return 0;
    for (int64_t i = 0; i < n; i++) {
        int k = lm_token_to_piece(t, ids[i], 0, out + len, sizeof out - len);
        if (k < 0 || len + (size_t)k >= sizeof out) return 0;
        len += (size_t)k;
    }
    *n_tok = n;
    return len == strlen(s) && memcmp(out, s, len) == 0;
}

static int words(const char *s)
{
    int n = 0;
    for (const char *p = s; *p; p++) n += (*p != ' ' && (p == s || p[-1] == ' '));
    return n;
}

int main(void)
{
    lm_error e = {0};
    lm_gguf *g = NULL;
    lm_tokenizer *t = NULL;
    CHECK(lm_gguf_open("../models/loom-tiny-vocab.gguf", &g, &e) == 0, "open: %s", e.msg);
    CHECK(g && lm_tokenizer_load(g, &t, &e) == 0, "load: %s", e.msg);
    if (!t) return finish();

    const char *in_domain[] = {
        "a large purple triangle at the top and a medium orange square on the left",
        "eight times zero is zero",
        "a large red star at the bottom changes colour to white while a small purple hexagon "
        "stays in the bottom right, on a gray background",
        "what colour is the square? orange",
    };
    int64_t toks = 0, nw = 0;
    for (int i = 0; i < 4; i++) {
        int64_t n = 0;
        CHECK(roundtrip(t, in_domain[i], &n), "round trip of '%s'", in_domain[i]);
        toks += n;
        nw += words(in_domain[i]);
    }
    printf("in-domain: %lld tokens for %lld words\n", (long long)toks, (long long)nw);
    CHECK(toks <= nw * 13 / 10, "%lld tokens for %lld words: vocabulary not fitted to the corpus",
          (long long)toks, (long long)nw);

    int64_t n = 0;
    CHECK(roundtrip(t, "zebras jumped over 12345 quixotic llamas \xe2\x9c\x93", &n), "out-of-domain round trip");

    const char *ctrl[] = {"<|bos|>", "<|eos|>", "<|pad|>", "<|user|>", "<|assistant|>", "<|end|>",
                          "<|image|>", "<|/image|>", "<|audio|>", "<|/audio|>", "<|video|>",
                          "<|/video|>", "<|frame|>"};
    int32_t prev = -1;
    for (int i = 0; i < 13; i++) {
        int32_t id = lm_tokenizer_find(t, ctrl[i]);
        CHECK(id > prev && lm_tokenizer_token_type(t, id) == LM_TOKEN_CONTROL, "%s: id %d", ctrl[i], id);
        prev = id;
        int32_t got[4];
        CHECK(lm_tokenize(t, ctrl[i], strlen(ctrl[i]), 0, 1, got, 4) == 1 && got[0] == id,
              "%s parses as one special token", ctrl[i]);
    }
    CHECK(lm_tokenizer_bos(t) == lm_tokenizer_find(t, "<|bos|>"), "BOS is <|bos|>");
    CHECK(lm_tokenizer_eos(t) == lm_tokenizer_find(t, "<|eos|>"), "EOS is <|eos|>");

    lm_tokenizer_free(&t);
    lm_gguf_close(&g);
    return finish();
}
