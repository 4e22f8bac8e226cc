/*
 * Shared by the tokenizer tests: check macro, hex/encode/decode helpers, the vocab.txt
 * reader, and the llama.cpp parity check over data/tokenizer/corpus.txt.
 */
#ifndef TOKENIZER_TEST_UTIL_H
#define TOKENIZER_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/core/tokenizer.h"
#include "tests/check.h"

/* CPU seconds of this process: unlike wall time, unaffected by other load on the machine. */
static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline int hexval(int c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

static inline size_t unhex(const char *p, char *out)
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

static inline int vocab_read(const char *path, vocab_file *v)
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

static inline void vocab_free(vocab_file *v)
{
    for (int i = 0; i < v->n_tok; i++) free(v->tok[i]);
    for (int i = 0; i < v->n_mer; i++) free(v->mer[i]);
    free(v->tok); free(v->tok_len); free(v->type); free(v->mer); free(v->mer_len);
}

static inline lm_tokenizer *make(const vocab_file *v, const char *pre)
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
static inline int32_t *encode(const lm_tokenizer *t, const char *s, size_t n, int bos, int special, int64_t *count)
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
static inline char *decode(const lm_tokenizer *t, const int32_t *ids, int64_t n, int special, size_t *len)
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
static inline int utf8_valid(const unsigned char *s, size_t n, int surrogates_ok)
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
static inline void test_parity(const lm_tokenizer *t, const char *expect_path, const char *name)
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

#endif
