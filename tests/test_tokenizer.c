/*
 * Tokenizer tests: llama.cpp parity on a 621-case corpus (fixtures from
 * tools/parity/tokenizer_parity.sh) for loom's and DeepSeek-V3's pre-tokenizers, round
 * trips, special tokens, invalid UTF-8, empty and 1 MB inputs, buffer protocols, BPE merge
 * order on a hand-made vocabulary, and load errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/core/tokenizer.h"

static int g_pass, g_fail;
#define CHECK(cond, ...) do { if (cond) g_pass++; else { g_fail++; \
    printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int hexval(int c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

static size_t unhex(const char *p, char *out)
{
    size_t n = 0;
    for (; hexval(p[0]) >= 0 && hexval(p[1]) >= 0; p += 2) out[n++] = (char)(hexval(p[0]) * 16 + hexval(p[1]));
    return n;
}

/* ---- vocabulary from tests/data/tokenizer/vocab.txt (the GGUF's content, as text) ---- */
typedef struct vocab_file {
    char **tok; uint32_t *tok_len; int32_t *type; int32_t n_tok;
    char **mer; uint32_t *mer_len; int32_t n_mer;
    int32_t bos, eos, pad;
} vocab_file;

static int vocab_read(const char *path, vocab_file *v)
{
    memset(v, 0, sizeof *v);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    int cap_t = 0, cap_m = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == 'T') {
            if (v->n_tok == cap_t) {
                cap_t = cap_t ? 2 * cap_t : 1024;
                v->tok = realloc(v->tok, sizeof(char *) * cap_t);
                v->tok_len = realloc(v->tok_len, sizeof(uint32_t) * cap_t);
                v->type = realloc(v->type, sizeof(int32_t) * cap_t);
            }
            char *sp = strchr(line + 2, ' ');
            v->type[v->n_tok] = atoi(line + 2);
            v->tok[v->n_tok] = malloc(strlen(sp));
            v->tok_len[v->n_tok] = (uint32_t)unhex(sp + 1, v->tok[v->n_tok]);
            v->n_tok++;
        } else if (line[0] == 'M') {
            if (v->n_mer == cap_m) {
                cap_m = cap_m ? 2 * cap_m : 1024;
                v->mer = realloc(v->mer, sizeof(char *) * cap_m);
                v->mer_len = realloc(v->mer_len, sizeof(uint32_t) * cap_m);
            }
            v->mer[v->n_mer] = malloc(strlen(line));
            v->mer_len[v->n_mer] = (uint32_t)unhex(line + 2, v->mer[v->n_mer]);
            v->n_mer++;
        } else if (line[0] == 'S') {
            char key[16];
            int val;
            if (sscanf(line + 2, "%15s %d", key, &val) == 2) {
                if (!strcmp(key, "bos")) v->bos = val;
                if (!strcmp(key, "eos")) v->eos = val;
                if (!strcmp(key, "pad")) v->pad = val;
            }
        }
    }
    fclose(f);
    return v->n_tok > 0 ? 0 : -1;
}

static void vocab_free(vocab_file *v)
{
    for (int i = 0; i < v->n_tok; i++) free(v->tok[i]);
    for (int i = 0; i < v->n_mer; i++) free(v->mer[i]);
    free(v->tok); free(v->tok_len); free(v->type); free(v->mer); free(v->mer_len);
}

static lm_tokenizer *make(const vocab_file *v, const char *pre)
{
    lm_tokenizer_spec s = lm_tokenizer_default_spec();
    s.n_tokens = v->n_tok; s.tokens = (const char *const *)v->tok; s.token_lens = v->tok_len;
    s.token_types = v->type; s.n_merges = v->n_mer; s.merges = (const char *const *)v->mer;
    s.merge_lens = v->mer_len; s.pre = pre; s.bos = v->bos; s.eos = v->eos; s.pad = v->pad;
    s.add_bos = 1;
    lm_tokenizer *t = NULL;
    lm_error err = { 0 };
    if (lm_tokenizer_create(&s, &t, &err) < 0) printf("create(%s): %s\n", pre, err.msg);
    return t;
}

/* ---- helpers --------------------------------------------------------------------------- */
/* Encode into a malloc'd array using the size-query protocol. */
static int32_t *encode(const lm_tokenizer *t, const char *s, size_t n, int bos, int special, int64_t *count)
{
    int64_t k = lm_tokenize(t, s, n, bos, special, NULL, 0);
    *count = k;
    if (k < 0) return NULL;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(k + 1));
    int64_t k2 = lm_tokenize(t, s, n, bos, special, ids, k);
    if (k2 != k) { free(ids); *count = -100; return NULL; }
    return ids;
}

/* Concatenate pieces into a malloc'd buffer. */
static char *decode(const lm_tokenizer *t, const int32_t *ids, int64_t n, int special, size_t *len)
{
    size_t cap = 64, at = 0;
    char *buf = malloc(cap);
    for (int64_t i = 0; i < n; i++) {
        int need = lm_token_to_piece(t, ids[i], special, buf + at, cap - at);
        if (need < 0) { free(buf); return NULL; }
        if ((size_t)need > cap - at) {
            while ((size_t)need > cap - at) cap *= 2;
            buf = realloc(buf, cap);
            lm_token_to_piece(t, ids[i], special, buf + at, cap - at);
        }
        at += (size_t)need;
    }
    *len = at;
    return buf;
}

/* Strict UTF-8; with surrogates_ok, U+D800..DFFF pass (llama.cpp decodes them as code
 * points, so they survive tokenization unchanged). */
static int utf8_valid(const unsigned char *s, size_t n, int surrogates_ok)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > n) return 0;
        for (unsigned j = 1; j < k; j++) if ((s[i + j] & 0xc0) != 0x80) return 0;
        uint32_t v = k == 1 ? c : k == 2 ? c & 0x1f : k == 3 ? c & 0x0f : c & 0x07;
        for (unsigned j = 1; j < k; j++) v = (v << 6) | (s[i + j] & 0x3f);
        if ((k == 2 && v < 0x80) || (k == 3 && v < 0x800) || (k == 4 && (v < 0x10000 || v > 0x10ffff)) ||
            (!surrogates_ok && v >= 0xd800 && v <= 0xdfff)) return 0;
        i += k;
    }
    return 1;
}

/* ---- tests ----------------------------------------------------------------------------- */
static void test_parity(const lm_tokenizer *t, const char *expect_path, const char *name)
{
    FILE *fc = fopen("data/tokenizer/corpus.txt", "r"), *fe = fopen(expect_path, "r");
    CHECK(fc && fe, "open corpus / %s", expect_path);
    if (!fc || !fe) { if (fc) fclose(fc); if (fe) fclose(fe); return; }
    static char line[1 << 17], exp[1 << 17], bytes[1 << 16];
    int n_case = 0, n_bad = 0, n_rt = 0, n_rt_bad = 0, n_invalid = 0;
    while (fgets(line, sizeof line, fc) && fgets(exp, sizeof exp, fe)) {
        int special = line[0] == '1';
        size_t n = unhex(line + 2, bytes);
        int64_t k;
        int32_t *ids = encode(t, bytes, n, 0, special, &k);
        /* compare with llama.cpp's ids */
        char got[1 << 16];
        size_t at = 0;
        got[0] = 0;
        for (int64_t i = 0; ids && i < k && at + 16 < sizeof got; i++)
            at += (size_t)snprintf(got + at, sizeof got - at, i ? " %d" : "%d", ids[i]);
        exp[strcspn(exp, "\n")] = 0;
        if (!ids || strcmp(got, exp) != 0) {
            if (n_bad < 5) printf("  %s mismatch, case %d (%s): loom [%s] llama.cpp [%s]\n", name, n_case, line, got, exp);
            n_bad++;
        }
        /* round trip (valid UTF-8: exact; invalid: the U+FFFD-normalized text is stable) */
        size_t dl = 0;
        char *dec = ids ? decode(t, ids, k, special, &dl) : NULL;
        if (utf8_valid((const unsigned char *)bytes, n, 0)) {
            n_rt++;
            if (!dec || dl != n || memcmp(dec, bytes, n) != 0) {
                if (n_rt_bad < 5) printf("  round trip: case %d (%s)\n", n_case, line);
                n_rt_bad++;
            }
        } else if (dec) {
            n_invalid++;
            int64_t k2;
            int32_t *ids2 = encode(t, dec, dl, 0, special, &k2);
            size_t dl2 = 0;
            char *dec2 = ids2 ? decode(t, ids2, k2, special, &dl2) : NULL;
            if (!dec2 || dl2 != dl || memcmp(dec, dec2, dl) != 0 || !utf8_valid((unsigned char *)dec, dl, 1)) {
                if (n_rt_bad < 5) printf("  unstable: case %d (%s)\n", n_case, line);
                n_rt_bad++;
            }
            free(ids2); free(dec2);
        }
        free(dec);
        free(ids);
        n_case++;
    }
    fclose(fc); fclose(fe);
    CHECK(n_case >= 500, "%s: only %d corpus cases", name, n_case);
    CHECK(n_bad == 0, "%s: %d of %d cases differ from llama.cpp", name, n_bad, n_case);
    CHECK(n_rt_bad == 0, "%s: %d round-trip failures", name, n_rt_bad);
    printf("%s: %d cases identical to llama.cpp (%d), %d valid-UTF-8 round trips, %d invalid-UTF-8 cases stable\n",
           name, n_case - n_bad, n_case, n_rt, n_invalid);
}

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
        double t0 = now();
        int64_t k;
        int32_t *ids = encode(t, s, n, 0, 1, &k);
        double dt = now() - t0;
        /* 1 MiB takes ~1 s (5 s with sanitizers); a quadratic BPE would take hours */
        CHECK(ids && k > 0 && dt < 30.0, "%s 1 MiB %s: %lld tokens in %.3f s", name, cases[c].what, (long long)k, dt);
        if (cases[c].kind < 4 && ids) {
            size_t dl = 0;
            char *dec = decode(t, ids, k, 1, &dl);
            CHECK(dec && dl == n && memcmp(dec, s, n) == 0, "%s 1 MiB %s round trip", name, cases[c].what);
            free(dec);
        }
        printf("%s: 1 MiB %-12s → %8lld tokens, %.3f s (2 passes: size query + encode)\n", name,
               cases[c].what, (long long)k, dt);
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
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
