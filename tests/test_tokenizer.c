/*
 * Tokenizer tests: llama.cpp parity on a 621-case corpus (fixtures from
 * tools/parity/tokenizer_parity.sh) for loom's (llama3), DeepSeek-V3's, GPT-2's and
 * llama.cpp's default pre-tokenizers, round
 * trips, special tokens, invalid UTF-8, empty and 1 MB inputs, buffer protocols, BPE merge
 * order on a hand-made vocabulary, and load errors.
 */
#include "tests/tokenizer_test_util.h"

static void test_special(const lm_tokenizer *t)
{
    int32_t user = lm_tokenizer_find(t, "<|user|>"), end = lm_tokenizer_find(t, "<|end|>");
    int32_t image = lm_tokenizer_find(t, "<|image|>"), image_end = lm_tokenizer_find(t, "<|/image|>");
    CHECK(user >= 0 && end >= 0 && image >= 0 && image_end >= 0, "control tokens present");
    CHECK(lm_tokenizer_token_type(t, user) == LM_TOKEN_CONTROL, "<|user|> is CONTROL");
    const char *s = "<|user|>hi there<|end|>";
    int64_t k;
    int32_t *ids = encode(t, s, strlen(s), 0, 1, &k);
    CHECK(ids && k >= 3 && ids[0] == user && ids[k - 1] == end, "parse_special=1 finds control tokens");
    free(ids);
    ids = encode(t, s, strlen(s), 0, 0, &k);
    int found = 0;
    for (int64_t i = 0; ids && i < k; i++) found |= ids[i] == user || ids[i] == end;
    CHECK(ids && !found && k > 3, "parse_special=0 leaves control texts as text");
    free(ids);
    /* BOS */
    ids = encode(t, "x", 1, 1, 0, &k);
    CHECK(ids && k == 2 && ids[0] == lm_tokenizer_bos(t), "add_bos prepends BOS");
    free(ids);
    /* control pieces print only with special */
    char buf[32];
    CHECK(lm_token_to_piece(t, user, 0, buf, sizeof buf) == 0, "control piece hidden without special");
    CHECK(lm_token_to_piece(t, user, 1, buf, sizeof buf) == 8 && memcmp(buf, "<|user|>", 8) == 0,
          "control piece shown with special");
    CHECK(lm_token_to_piece(t, -1, 1, buf, sizeof buf) < 0 &&
          lm_token_to_piece(t, lm_tokenizer_n_vocab(t), 1, buf, sizeof buf) < 0, "bad ids rejected");
}

static void test_empty_and_buffers(const lm_tokenizer *t)
{
    int32_t ids[8] = { -7, -7, -7, -7, -7, -7, -7, -7 };
    CHECK(lm_tokenize(t, "", 0, 0, 1, ids, 8) == 0 && ids[0] == -7, "empty → no tokens");
    CHECK(lm_tokenize(t, NULL, 0, 1, 1, ids, 8) == 1 && ids[0] == lm_tokenizer_bos(t), "empty + bos → [bos]");
    CHECK(lm_tokenize(t, NULL, 3, 0, 0, ids, 8) < 0, "NULL text with a length is an error");
    const char *s = "The quick brown fox, 12345 times! 日本語 😀";
    int64_t n = lm_tokenize(t, s, strlen(s), 0, 0, NULL, 0);
    CHECK(n > 4, "size query returns the count (%lld)", (long long)n);
    int32_t *full = malloc(sizeof(int32_t) * (size_t)n), *part = malloc(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) part[i] = -7;
    CHECK(lm_tokenize(t, s, strlen(s), 0, 0, full, n) == n, "full buffer");
    CHECK(lm_tokenize(t, s, strlen(s), 0, 0, part, n - 2) == n, "short buffer still returns the full count");
    CHECK(memcmp(part, full, sizeof(int32_t) * (size_t)(n - 2)) == 0 && part[n - 2] == -7 && part[n - 1] == -7,
          "short buffer: prefix written, nothing past max_tokens");
    free(full); free(part);
    /* piece buffer protocol */
    int32_t id = lm_tokenizer_find(t, "<|assistant|>");
    char small[4] = { 'x', 'x', 'x', 'x' };
    CHECK(lm_token_to_piece(t, id, 1, small, 3) == 13 && small[3] == 'x' && memcmp(small, "<|a", 3) == 0,
          "piece: needed size returned, nothing written past size");
}

static void test_invalid_utf8(const lm_tokenizer *t)
{
    /* every single byte and every pair starting with a lead byte must tokenize */
    int ok = 1;
    for (int a = 0; a < 256 && ok; a++)
        for (int b = 0; b < 256 && ok; b++) {
            char s[3] = { (char)a, (char)b, (char)0xe2 };
            int32_t ids[16];
            int64_t k = lm_tokenize(t, s, 3, 0, 1, ids, 16);
            ok = k > 0 && k <= 16;
            for (int64_t i = 0; ok && i < k; i++) ok = ids[i] >= 0 && ids[i] < lm_tokenizer_n_vocab(t);
        }
    CHECK(ok, "all 2-byte prefixes + a truncated sequence tokenize to valid ids");
    /* a bad byte becomes U+FFFD: same ids as the text with U+FFFD written out */
    int32_t a[16], b[16];
    int64_t ka = lm_tokenize(t, "x\xffy", 3, 0, 0, a, 16), kb = lm_tokenize(t, "x\xef\xbf\xbdy", 5, 0, 0, b, 16);
    CHECK(ka == kb && ka > 0 && memcmp(a, b, sizeof(int32_t) * (size_t)ka) == 0, "0xFF → U+FFFD");
}

static void fill_random_text(char *s, size_t n, unsigned seed)
{
    static const char *const parts[] = { "hello ", "world", ", ", "12345", "\n", "  ", "日本語",
                                         "😀", "é", "don't ", "<|user|>", "\t", "...", "x" };
    size_t at = 0;
    while (at < n) {
        seed = seed * 1103515245u + 12345u;
        const char *p = parts[(seed >> 16) % (sizeof parts / sizeof *parts)];
        size_t l = strlen(p);
        if (at + l > n) l = n - at;
        memcpy(s + at, p, l);
        at += l;
    }
}

static void test_long(const lm_tokenizer *t, const char *name)
{
    const size_t n = 1 << 20;
    char *s = malloc(n);
    struct { const char *what; int kind; } cases[] = { { "mixed text", 0 }, { "one letter", 1 },
        { "spaces", 2 }, { "digits", 3 }, { "random bytes", 4 } };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        unsigned r = 99;
        switch (cases[c].kind) {
        case 0: fill_random_text(s, n, 1); break;
        case 1: memset(s, 'a', n); break;
        case 2: memset(s, ' ', n); break;
        case 3: for (size_t i = 0; i < n; i++) s[i] = (char)('0' + i % 10); break;
        default: for (size_t i = 0; i < n; i++) { r = r * 1103515245u + 12345u; s[i] = (char)(r >> 16); } break;
        }
        /* CPU time (other load on the machine does not count): ~0.1-1 s per MiB here,
         * ~5x that with sanitizers; a quadratic step on 1 MiB would take ~10^12 operations */
        int64_t k;
        double t0 = now();
        int32_t *ids = encode(t, s, n, 0, 1, &k);
        double dt = now() - t0;
        CHECK(ids && k > 0 && dt < 60.0, "%s 1 MiB %s: %.3f s CPU", name, cases[c].what, dt);
        if (cases[c].kind < 4 && ids) {
            size_t dl = 0;
            char *dec = decode(t, ids, k, 1, &dl);
            CHECK(dec && dl == n && memcmp(dec, s, n) == 0, "%s 1 MiB %s round trip", name, cases[c].what);
            free(dec);
        }
        printf("%s: 1 MiB %-12s → %8lld tokens, %.3f s CPU (2 passes: size query + encode)\n",
               name, cases[c].what, (long long)k, dt);
        free(ids);
    }
    free(s);
}

/* Hand-made vocabulary: merge order decides, ties go left, and pieces fall back to bytes. */
static void test_merge_order(void)
{
    /* byte tokens for a, b, c, then merges "b c" (rank 0), "a b" (1), "a bc" (2) */
    const char *toks[] = { "a", "b", "c", "bc", "ab", "abc", "Ġ" };
    const char *merges[] = { "b c", "a b", "a bc" };
    lm_tokenizer_spec s = lm_tokenizer_default_spec();
    s.n_tokens = 7; s.tokens = toks; s.n_merges = 3; s.merges = merges; s.pre = "gpt2";
    lm_tokenizer *t = NULL;
    lm_error err = { 0 };
    CHECK(lm_tokenizer_create(&s, &t, &err) == 0, "hand vocab: %s", err.msg);
    if (!t) return;
    int32_t ids[8];
    int64_t k = lm_tokenize(t, "abc", 3, 0, 0, ids, 8);
    CHECK(k == 1 && ids[0] == 5, "abc → b+c first (rank 0), then a+bc → [abc]");
    k = lm_tokenize(t, "ab", 2, 0, 0, ids, 8);
    CHECK(k == 1 && ids[0] == 4, "ab → [ab]");
    k = lm_tokenize(t, "abab", 4, 0, 0, ids, 8);
    CHECK(k == 2 && ids[0] == 4 && ids[1] == 4, "abab → [ab ab]");
    k = lm_tokenize(t, "a d", 3, 0, 0, ids, 8);   /* ' ' → Ġ exists, 'd' has no token: dropped */
    CHECK(k == 2 && ids[0] == 0 && ids[1] == 6, "unknown byte dropped like llama.cpp (%lld)", (long long)k);
    CHECK(lm_tokenizer_bos(t) == -1, "no BOS default when the vocabulary is smaller than 12");
    lm_tokenizer_free(&t);
    CHECK(t == NULL, "free sets NULL");
    lm_tokenizer_free(&t);
    lm_tokenizer_free(NULL);

    /* errors name the problem */
    const char *dup[] = { "a", "b", "a" };
    s.n_tokens = 3; s.tokens = dup; s.n_merges = 0;
    CHECK(lm_tokenizer_create(&s, &t, &err) == LOOM_ERR_FORMAT && strstr(err.msg, "duplicates"),
          "duplicate token rejected: %s", err.msg);
    s.tokens = toks; s.n_tokens = 7; s.pre = "no-such-pre";
    CHECK(lm_tokenizer_create(&s, &t, &err) == LOOM_ERR_UNSUPPORTED && strstr(err.msg, "no-such-pre"),
          "unknown pre rejected: %s", err.msg);
    s.pre = "gpt2"; s.bos = 99;
    CHECK(lm_tokenizer_create(&s, &t, &err) == LOOM_ERR_FORMAT && strstr(err.msg, "bos_token_id"),
          "out-of-range bos rejected: %s", err.msg);
    CHECK(t == NULL, "no tokenizer on failure");
}

int main(void)
{
    vocab_file v;
    if (vocab_read("data/tokenizer/vocab.txt", &v) < 0) {
        printf("cannot read data/tokenizer/vocab.txt\n0 passed, 1 failed\n");
        return 1;
    }
    lm_tokenizer *loom = make(&v, "loom"), *ds = make(&v, "deepseek-v3");
    CHECK(loom && ds, "tokenizers built from the fixture vocabulary");
    if (loom && ds) {
        CHECK(lm_tokenizer_n_vocab(loom) == v.n_tok && lm_tokenizer_add_bos(loom) == 1, "n_vocab, add_bos");
        test_parity(loom, "data/tokenizer/expect-loom.txt", "loom (llama3)");
        test_parity(ds, "data/tokenizer/expect-deepseek-v3.txt", "deepseek-v3");
        lm_tokenizer *gpt2 = make(&v, "gpt-2"), *def = make(&v, "default");
        CHECK(gpt2 && def, "gpt-2 and default tokenizers");
        if (gpt2) test_parity(gpt2, "data/tokenizer/expect-gpt2.txt", "gpt-2");
        if (def) test_parity(def, "data/tokenizer/expect-default.txt", "default");
        lm_tokenizer_free(&gpt2);
        lm_tokenizer_free(&def);
        test_special(loom);
        test_special(ds);
        test_empty_and_buffers(loom);
        test_invalid_utf8(loom);
        test_invalid_utf8(ds);
        test_long(loom, "loom");
        test_long(ds, "deepseek-v3");
    }
    test_merge_order();
    lm_tokenizer_free(&loom);
    lm_tokenizer_free(&ds);
    vocab_free(&v);
    return finish();
}
