/*
 * Byte-level BPE tokenizer with llama.cpp's exact behaviour for `tokenizer.ggml.model = gpt2`
 * (src/llama-vocab.cpp, src/unicode.cpp of the llama.cpp bundled with node-llama-cpp 3.22.1):
 *
 *   text ─► special-token partition ─► UTF-8 → code points (bad bytes → U+FFFD)
 *        ─► pre-tokenizer split (per tokenizer.ggml.pre) ─► per word: BPE merges on bytes
 *        ─► token ids (a symbol with no token falls back to its single-byte tokens)
 *
 * Work is done in raw-byte space: the GPT-2 byte↔unicode mapping is a bijection, so merges
 * and vocabulary entries are un-mapped once at load and words never need re-mapping.
 * Merge ranks and vocabulary lookups are open-addressing hash tables; BPE uses a binary
 * heap keyed by (rank, left position), so a word of n bytes costs O(n log n).
 */
#include "lib/core/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/unicode_table.h"

/* ---------------------------------------------------------------------------------------
 * Unicode helpers
 * ------------------------------------------------------------------------------------- */
#define UCAT_WS 0x100u /* extra bit: Unicode White_Space (llama.cpp's list) */

static unsigned ucat_of(uint32_t cp)
{
    if (cp >= 0x110000u) return LM_UCAT_UNDEF;
    int lo = 0, hi = lm_ucat_n_ranges - 1;            /* last range with start <= cp */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if ((lm_ucat_ranges[mid] >> 8) <= cp) lo = mid; else hi = mid - 1;
    }
    return lm_ucat_ranges[lo] & 0xffu;
}

static int is_unicode_ws(uint32_t cp)
{
    if ((cp >= 0x09 && cp <= 0x0d) || cp == 0x20) return 1;
    if (cp < 0x85) return 0;
    return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

static unsigned cpt_flags(uint32_t cp) { return ucat_of(cp) | (is_unicode_ws(cp) ? UCAT_WS : 0); }

/* Decode like llama.cpp's unicode_cpt_from_utf8: lead byte decides the length, the
 * continuation bytes must be 10xxxxxx and present; no overlong or surrogate checks (they
 * decode to their value). Anything else is one byte of U+FFFD. A 4-byte form above
 * U+10FFFF (llama.cpp throws there) is also treated as a bad lead byte. */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t b = s[0];
    if (b < 0x80) { *cp = b; return 1; }
    if ((b & 0x40) == 0) goto bad;
    if ((b & 0x20) == 0) {
        if (n < 2 || (s[1] & 0xc0) != 0x80) goto bad;
        *cp = ((uint32_t)(b & 0x1f) << 6) | (s[1] & 0x3f);
        return 2;
    }
    if ((b & 0x10) == 0) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) goto bad;
        *cp = ((uint32_t)(b & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        return 3;
    }
    if ((b & 0x08) == 0) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            goto bad;
        uint32_t v = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
                     ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
        if (v > 0x10ffff) goto bad;
        *cp = v;
        return 4;
    }
bad:
    *cp = 0xfffd;
    return 1;
}

static size_t utf8_encode(uint32_t cp, uint8_t *o)
{
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = 0xc0 | (cp >> 6); o[1] = 0x80 | (cp & 0x3f); return 2; }
    if (cp < 0x10000) {
        o[0] = 0xe0 | (cp >> 12); o[1] = 0x80 | ((cp >> 6) & 0x3f); o[2] = 0x80 | (cp & 0x3f);
        return 3;
    }
    o[0] = 0xf0 | (cp >> 18); o[1] = 0x80 | ((cp >> 12) & 0x3f);
    o[2] = 0x80 | ((cp >> 6) & 0x3f); o[3] = 0x80 | (cp & 0x3f);
    return 4;
}

/* ---------------------------------------------------------------------------------------
 * GPT-2 byte ↔ unicode mapping: printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100.. in byte order. All mapped code points are < 324.
 * ------------------------------------------------------------------------------------- */
#define MAPPED_CP_MAX 324

static void byte_map_init(uint16_t byte_cp[256], int16_t cp_byte[MAPPED_CP_MAX])
{
    int n = 0;
    for (int i = 0; i < MAPPED_CP_MAX; i++) cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
        byte_cp[b] = (uint16_t)(keep ? b : 256 + n++);
        cp_byte[byte_cp[b]] = (int16_t)b;
    }
}

/* ---------------------------------------------------------------------------------------
 * Hash tables (open addressing, linear probing, power-of-two capacity, int32 slots)
 * ------------------------------------------------------------------------------------- */
static uint64_t hash_bytes(const uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ seed ^ (n * 0xff51afd7ed558ccdull);
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ull; h ^= h >> 29;
    return h;
}

static uint32_t table_cap_for(size_t n)
{
    uint32_t cap = 16;
    while (cap < 2 * n + 1) cap <<= 1;
    return cap;
}

typedef enum pre_type { PRE_DEFAULT, PRE_GPT2, PRE_LLAMA3, PRE_DEEPSEEK3 } pre_type;

typedef struct merge_entry {
    uint64_t off;     /* into merge_pool: left bytes then right bytes */
    uint32_t la, lb;  /* raw byte lengths                              */
    int32_t  rank;
} merge_entry;

struct lm_tokenizer {
    int32_t   n_vocab;
    char     *text_pool;    /* token texts as stored (mapped), concatenated           */
    uint64_t *text_off;     /* [n_vocab + 1] offsets into text_pool                    */
    uint8_t  *raw_pool;     /* token texts un-mapped to raw bytes (where possible)     */
    uint64_t *raw_off;      /* [n_vocab + 1]; raw_off[i] == raw_off[i+1] ⇒ not mapped   */
    int8_t   *type;         /* [n_vocab] LM_TOKEN_*, 0 for undefined                    */
    int32_t  *text_slots;   /* [text_mask + 1] mapped text → id                         */
    uint32_t  text_mask;
    int32_t  *raw_slots;    /* [raw_mask + 1] raw bytes → id (tokens that un-map)       */
    uint32_t  raw_mask;
    uint8_t  *merge_pool;
    merge_entry *merges;    /* [n_merges] kept merges                                   */
    int32_t   n_merges;
    int32_t  *merge_slots;  /* [merge_mask + 1] index into merges                       */
    uint32_t  merge_mask;
    int32_t  *special;      /* [n_special] CONTROL/USER_DEFINED/UNKNOWN ids, longest first */
    int32_t   n_special;
    int32_t   bos, eos, pad;
    int       add_bos, ignore_merges;
    pre_type  pre;
    uint16_t  byte_cp[256];
    int16_t   cp_byte[MAPPED_CP_MAX];
};

static int32_t text_find(const lm_tokenizer *t, const void *s, size_t n)
{
    uint32_t i = (uint32_t)hash_bytes(s, n, 1) & t->text_mask;
    for (;; i = (i + 1) & t->text_mask) {
        int32_t id = t->text_slots[i];
        if (id < 0) return -1;
        uint64_t a = t->text_off[id], b = t->text_off[id + 1];
        if (b - a == n && memcmp(t->text_pool + a, s, n) == 0) return id;
    }
}

static int32_t raw_find(const lm_tokenizer *t, const uint8_t *s, size_t n)
{
    uint32_t i = (uint32_t)hash_bytes(s, n, 2) & t->raw_mask;
    for (;; i = (i + 1) & t->raw_mask) {
        int32_t id = t->raw_slots[i];
        if (id < 0) return -1;
        uint64_t a = t->raw_off[id], b = t->raw_off[id + 1];
        if (b - a == n && memcmp(t->raw_pool + a, s, n) == 0) return id;
    }
}

/* Rank of merging left = s[0, la) with right = s[la, la + lb), or -1. */
static int32_t merge_rank(const lm_tokenizer *t, const uint8_t *s, uint32_t la, uint32_t lb)
{
    if (t->n_merges == 0) return -1;
    uint32_t i = (uint32_t)hash_bytes(s, (size_t)la + lb, la) & t->merge_mask;
    for (;; i = (i + 1) & t->merge_mask) {
        int32_t m = t->merge_slots[i];
        if (m < 0) return -1;
        const merge_entry *e = &t->merges[m];
        if (e->la == la && e->lb == lb && memcmp(t->merge_pool + e->off, s, (size_t)la + lb) == 0)
            return e->rank;
    }
}

/* Un-map a byte-level token text to raw bytes; returns the length or -1 if some code
 * point is not one of the 256 mapped ones (or the text is not valid UTF-8). */
static long unmap_text(const lm_tokenizer *t, const uint8_t *s, size_t n, uint8_t *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = utf8_decode(s + i, n - i, &cp);
        if (cp == 0xfffd && !(n - i >= 3 && s[i] == 0xef && s[i + 1] == 0xbf && s[i + 2] == 0xbd))
            return -1;
        if (cp >= MAPPED_CP_MAX || t->cp_byte[cp] < 0) return -1;
        out[o++] = (uint8_t)t->cp_byte[cp];
        i += k;
    }
    return (long)o;
}

/* ---------------------------------------------------------------------------------------
 * Construction
 * ------------------------------------------------------------------------------------- */
lm_tokenizer_spec lm_tokenizer_default_spec(void)
{
    lm_tokenizer_spec s;
    memset(&s, 0, sizeof s);
    s.bos = -2; s.eos = -2; s.pad = -1; s.add_bos = -1;
    return s;
}

void lm_tokenizer_free(lm_tokenizer **pt)
{
    if (!pt || !*pt) return;
    lm_tokenizer *t = *pt;
    free(t->text_pool); free(t->text_off); free(t->raw_pool); free(t->raw_off);
    free(t->type); free(t->text_slots); free(t->raw_slots); free(t->merge_pool);
    free(t->merges); free(t->merge_slots); free(t->special);
    free(t);
    *pt = NULL;
}

static int pre_from_name(const char *name, pre_type *pre, int *ignore_merges, int *add_bos)
{
    static const char *const llama3[] = { "llama3", "llama-v3", "llama-bpe", "falcon3",
                                          "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                                          "jina-v5-nano", "loom", NULL };
    static const char *const gpt2[] = { "gpt2", "gpt-2", "phi-2", "jina-es", "jina-de",
                                        "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
                                        "mellum", "modern-bert", "jina-v1-en", "jina-v2-code",
                                        "roberta-bpe", "mpt", "olmo", "jais", NULL };
    *ignore_merges = 0; *add_bos = 0;
    if (!name || strcmp(name, "default") == 0) { *pre = PRE_DEFAULT; return 0; }
    if (strcmp(name, "deepseek-v3") == 0) { *pre = PRE_DEEPSEEK3; return 0; }
    for (int i = 0; llama3[i]; i++)
        if (strcmp(name, llama3[i]) == 0) {
            *pre = PRE_LLAMA3; *ignore_merges = 1; *add_bos = 1;
            return 0;
        }
    for (int i = 0; gpt2[i]; i++)
        if (strcmp(name, gpt2[i]) == 0) { *pre = PRE_GPT2; return 0; }
    return -1;
}

/* Order special ids by text length, longest first; equal lengths by id. */
static int cmp_special(const void *a, const void *b, void *ctx)
{
    const lm_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint64_t lx = t->text_off[x + 1] - t->text_off[x], ly = t->text_off[y + 1] - t->text_off[y];
    if (lx != ly) return lx > ly ? -1 : 1;
    return x < y ? -1 : (x > y);
}

static void sort_special(lm_tokenizer *t)
{
    /* insertion sort keeps this reentrant; the special list is short (tens to ~1000) */
    for (int32_t i = 1; i < t->n_special; i++) {
        int32_t v = t->special[i], j = i;
        while (j > 0 && cmp_special(&t->special[j - 1], &v, t) > 0) {
            t->special[j] = t->special[j - 1];
            j--;
        }
        t->special[j] = v;
    }
}

int lm_tokenizer_create(const lm_tokenizer_spec *spec, lm_tokenizer **out, lm_error *err)
{
    if (!out) return lm_fail(err, LOOM_ERR_INVALID_ARG, "tokenizer: out is NULL");
    *out = NULL;
    if (!spec || spec->n_tokens <= 0 || !spec->tokens)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "tokenizer: empty vocabulary");
    if (spec->n_merges < 0 || (spec->n_merges > 0 && !spec->merges))
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "tokenizer: bad merges array");

    lm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return lm_fail(err, LOOM_ERR_NO_MEMORY, "tokenizer: out of memory");
    byte_map_init(t->byte_cp, t->cp_byte);
    const int32_t n = spec->n_tokens;
    t->n_vocab = n;

    int def_add_bos = 0;
    if (pre_from_name(spec->pre, &t->pre, &t->ignore_merges, &def_add_bos) < 0) {
        lm_tokenizer_free(&t);
        return lm_fail(err, LOOM_ERR_UNSUPPORTED,
                       "tokenizer.ggml.pre: unknown pre-tokenizer '%s'", spec->pre);
    }
    t->add_bos = spec->add_bos < 0 ? def_add_bos : spec->add_bos != 0;

    /* token texts; an empty text becomes "[EMPTY_<id>]" as in llama.cpp */
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!spec->tokens[i]) {
            lm_tokenizer_free(&t);
            return lm_fail(err, LOOM_ERR_FORMAT, "tokenizer.ggml.tokens[%d] is NULL", i);
        }
        uint64_t l = spec->token_lens ? spec->token_lens[i] : strlen(spec->tokens[i]);
        total += l ? l : 24;
    }
    t->text_pool = malloc(total ? total : 1);
    t->text_off = malloc(sizeof(uint64_t) * ((size_t)n + 1));
    t->raw_pool = malloc(total ? total : 1);
    t->raw_off = malloc(sizeof(uint64_t) * ((size_t)n + 1));
    t->type = malloc((size_t)n);
    t->special = malloc(sizeof(int32_t) * (size_t)n);
    t->text_mask = table_cap_for((size_t)n) - 1;
    t->raw_mask = t->text_mask;
    t->text_slots = malloc(sizeof(int32_t) * ((size_t)t->text_mask + 1));
    t->raw_slots = malloc(sizeof(int32_t) * ((size_t)t->raw_mask + 1));
    if (!t->text_pool || !t->text_off || !t->raw_pool || !t->raw_off || !t->type ||
        !t->special || !t->text_slots || !t->raw_slots) {
        lm_tokenizer_free(&t);
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "tokenizer: out of memory for %d tokens", n);
    }
    memset(t->text_slots, 0xff, sizeof(int32_t) * ((size_t)t->text_mask + 1));
    memset(t->raw_slots, 0xff, sizeof(int32_t) * ((size_t)t->raw_mask + 1));

    uint64_t to = 0, ro = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t l = spec->token_lens ? spec->token_lens[i] : strlen(spec->tokens[i]);
        t->text_off[i] = to;
        if (l) memcpy(t->text_pool + to, spec->tokens[i], l);
        else l = (size_t)snprintf(t->text_pool + to, 24, "[EMPTY_%d]", i);
        to += l;
        int32_t ty = spec->token_types ? spec->token_types[i] : LM_TOKEN_NORMAL;
        t->type[i] = (int8_t)((ty >= LM_TOKEN_NORMAL && ty <= LM_TOKEN_BYTE) ? ty : 0);
        if (t->type[i] == LM_TOKEN_CONTROL || t->type[i] == LM_TOKEN_USER_DEFINED ||
            t->type[i] == LM_TOKEN_UNKNOWN)
            t->special[t->n_special++] = i;
    }
    t->text_off[n] = to;
    for (int32_t i = 0; i < n; i++) {
        const uint8_t *s = (const uint8_t *)t->text_pool + t->text_off[i];
        size_t l = t->text_off[i + 1] - t->text_off[i];
        uint32_t h = (uint32_t)hash_bytes(s, l, 1) & t->text_mask;
        while (t->text_slots[h] >= 0) {
            int32_t o = t->text_slots[h];
            if (t->text_off[o + 1] - t->text_off[o] == l &&
                memcmp(t->text_pool + t->text_off[o], s, l) == 0) {
                lm_fail(err, LOOM_ERR_FORMAT,
                        "tokenizer.ggml.tokens: token %d '%.*s' duplicates token %d", i,
                        (int)(l > 64 ? 64 : l), (const char *)s, o);
                lm_tokenizer_free(&t);
                return err ? err->status : LOOM_ERR_FORMAT;
            }
            h = (h + 1) & t->text_mask;
        }
        t->text_slots[h] = i;
        t->raw_off[i] = ro;
        long rl = unmap_text(t, s, l, t->raw_pool + ro);
        if (rl > 0) {
            uint32_t g = (uint32_t)hash_bytes(t->raw_pool + ro, (size_t)rl, 2) & t->raw_mask;
            while (t->raw_slots[g] >= 0) g = (g + 1) & t->raw_mask;
            t->raw_slots[g] = i;
            ro += (uint64_t)rl;
        }
    }
    t->raw_off[n] = ro;

    /* merges "left right" (split at the first space after the first byte), un-mapped;
     * the first occurrence of a pair keeps its rank, pairs that cannot occur are dropped */
    if (spec->n_merges > 0) {
        uint64_t mtotal = 0;
        for (int32_t i = 0; i < spec->n_merges; i++) {
            if (!spec->merges[i]) {
                lm_tokenizer_free(&t);
                return lm_fail(err, LOOM_ERR_FORMAT, "tokenizer.ggml.merges[%d] is NULL", i);
            }
            mtotal += spec->merge_lens ? spec->merge_lens[i] : strlen(spec->merges[i]);
        }
        t->merge_pool = malloc(mtotal ? mtotal : 1);
        t->merges = malloc(sizeof(merge_entry) * (size_t)spec->n_merges);
        t->merge_mask = table_cap_for((size_t)spec->n_merges) - 1;
        t->merge_slots = malloc(sizeof(int32_t) * ((size_t)t->merge_mask + 1));
        if (!t->merge_pool || !t->merges || !t->merge_slots) {
            lm_tokenizer_free(&t);
            return lm_fail(err, LOOM_ERR_NO_MEMORY, "tokenizer: out of memory for merges");
        }
        memset(t->merge_slots, 0xff, sizeof(int32_t) * ((size_t)t->merge_mask + 1));
        uint64_t mo = 0;
        for (int32_t i = 0; i < spec->n_merges; i++) {
            const uint8_t *s = (const uint8_t *)spec->merges[i];
            size_t l = spec->merge_lens ? spec->merge_lens[i] : strlen(spec->merges[i]);
            const uint8_t *sp = l > 1 ? memchr(s + 1, ' ', l - 1) : NULL;
            if (!sp) continue;
            size_t a = (size_t)(sp - s);
            long la = unmap_text(t, s, a, t->merge_pool + mo);
            if (la <= 0) continue;
            long lb = unmap_text(t, sp + 1, l - a - 1, t->merge_pool + mo + la);
            if (lb <= 0) continue;
            const uint8_t *k = t->merge_pool + mo;
            uint32_t h = (uint32_t)hash_bytes(k, (size_t)(la + lb), (uint64_t)la) & t->merge_mask;
            int dup = 0;
            for (; t->merge_slots[h] >= 0; h = (h + 1) & t->merge_mask) {
                const merge_entry *e = &t->merges[t->merge_slots[h]];
                if (e->la == (uint32_t)la && e->lb == (uint32_t)lb &&
                    memcmp(t->merge_pool + e->off, k, (size_t)(la + lb)) == 0) { dup = 1; break; }
            }
            if (dup) continue;
            merge_entry *e = &t->merges[t->n_merges];
            e->off = mo; e->la = (uint32_t)la; e->lb = (uint32_t)lb; e->rank = i;
            t->merge_slots[h] = t->n_merges++;
            mo += (uint64_t)(la + lb);
        }
    }

    /* special ids; -2 asks for llama.cpp's gpt2 default (11, if the vocabulary has it) */
    int32_t ids[3] = { spec->bos, spec->eos, spec->pad };
    for (int k = 0; k < 3; k++) {
        if (ids[k] == -2) ids[k] = 11 < n ? 11 : -1;
        if (ids[k] < -1 || ids[k] >= n) {
            static const char *const key[3] = { "bos_token_id", "eos_token_id", "padding_token_id" };
            int32_t bad = ids[k];
            lm_tokenizer_free(&t);
            return lm_fail(err, LOOM_ERR_FORMAT, "tokenizer.ggml.%s = %d is outside the %d-token vocabulary",
                           key[k], bad, n);
        }
    }
    t->bos = ids[0]; t->eos = ids[1]; t->pad = ids[2];
    sort_special(t);
    *out = t;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Accessors
 * ------------------------------------------------------------------------------------- */
int32_t lm_tokenizer_n_vocab(const lm_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t lm_tokenizer_bos(const lm_tokenizer *t) { return t ? t->bos : -1; }
int32_t lm_tokenizer_eos(const lm_tokenizer *t) { return t ? t->eos : -1; }
int32_t lm_tokenizer_pad(const lm_tokenizer *t) { return t ? t->pad : -1; }
int     lm_tokenizer_add_bos(const lm_tokenizer *t) { return t ? t->add_bos : 0; }

int lm_tokenizer_token_type(const lm_tokenizer *t, int32_t id)
{
    if (!t || id < 0 || id >= t->n_vocab) return LOOM_ERR_INVALID_ARG;
    return t->type[id];
}

int32_t lm_tokenizer_find(const lm_tokenizer *t, const char *text)
{
    if (!t || !text) return -1;
    return text_find(t, text, strlen(text));
}

/* ---------------------------------------------------------------------------------------
 * Per-call work buffers (sized from the input; freed before lm_tokenize returns)
 * ------------------------------------------------------------------------------------- */
typedef struct sym { uint32_t off, n; int32_t prev, next; } sym;
typedef struct bigram { int32_t rank, left, right; uint32_t size; } bigram;

typedef struct work {
    uint32_t *cp;       /* [cap_cp] code points of the current fragment               */
    uint8_t  *col;      /* [cap_cp] collapsed class byte per code point (deepseek-v3)  */
    uint32_t *seg_a;    /* [cap_cp] piece lengths (ping)                               */
    uint32_t *seg_b;    /* [cap_cp] piece lengths (pong)                               */
    size_t    cap_cp;
    uint8_t  *word;     /* [cap_w] UTF-8 of the current word                          */
    sym      *syms;     /* [cap_w]                                                     */
    bigram   *heap;     /* [3 * cap_w]                                                 */
    size_t    cap_w;
    int32_t  *out;      /* caller's buffer */
    int64_t   max_out, n_out;
} work;

static void work_free(work *w)
{
    free(w->cp); free(w->col); free(w->seg_a); free(w->seg_b);
    free(w->word); free(w->syms); free(w->heap);
}

static int work_reserve_cp(work *w, size_t n)
{
    if (n <= w->cap_cp) return 0;
    if (n > SIZE_MAX / 8) return LOOM_ERR_NO_MEMORY;
    free(w->cp); free(w->col); free(w->seg_a); free(w->seg_b);
    w->cp = malloc(n * sizeof(uint32_t)); w->col = malloc(n);
    w->seg_a = malloc(n * sizeof(uint32_t)); w->seg_b = malloc(n * sizeof(uint32_t));
    w->cap_cp = n;
    if (!w->cp || !w->col || !w->seg_a || !w->seg_b) { w->cap_cp = 0; return LOOM_ERR_NO_MEMORY; }
    return 0;
}

static int work_reserve_word(work *w, size_t n)
{
    if (n <= w->cap_w) return 0;
    if (n > SIZE_MAX / (3 * sizeof(bigram)) || n > INT32_MAX / 4) return LOOM_ERR_NO_MEMORY;
    size_t cap = w->cap_w ? w->cap_w : 64;
    while (cap < n) cap *= 2;
    free(w->word); free(w->syms); free(w->heap);
    w->word = malloc(cap); w->syms = malloc(cap * sizeof(sym)); w->heap = malloc(3 * cap * sizeof(bigram));
    w->cap_w = cap;
    if (!w->word || !w->syms || !w->heap) { w->cap_w = 0; return LOOM_ERR_NO_MEMORY; }
    return 0;
}

static void emit(work *w, int32_t id)
{
    if (w->n_out < w->max_out) w->out[w->n_out] = id;
    w->n_out++;
}

/* ---------------------------------------------------------------------------------------
 * Pre-tokenizer: piece lists. A stage reads the pieces of `in` and writes finer pieces
 * to `out` (their lengths sum to the same code point count).
 * ------------------------------------------------------------------------------------- */
typedef struct pieces { uint32_t *len; size_t n; } pieces;

static void piece_add(pieces *p, size_t len) { if (len) p->len[p->n++] = (uint32_t)len; }

/* A matcher returns the length of the match starting at pos (0: none) within [pos, end). */
typedef size_t (*match_fn)(const work *w, size_t pos, size_t end);

/* std::regex_iterator semantics (llama.cpp's unicode_regex_split_stl): search for the
 * leftmost match from the previous match's end; unmatched code points between matches
 * form one piece. */
static void split_search(const work *w, const pieces *in, pieces *out, match_fn m)
{
    size_t start = 0;
    out->n = 0;
    for (size_t k = 0; k < in->n; k++) {
        size_t end = start + in->len[k], gap = start;
        for (size_t p = start; p < end;) {
            size_t l = m(w, p, end);
            if (l) { piece_add(out, p - gap); piece_add(out, l); p += l; gap = p; }
            else p++;
        }
        piece_add(out, end - gap);
        start = end;
    }
}

/* Collapsed classes: llama.cpp runs \p{..} regexes with std::regex over one byte per code
 * point: ASCII stays itself, other whitespace → 0x0B, else a byte per class. */
enum { COL_OTHER = 0xd0, COL_N = 0xd1, COL_L = 0xd2, COL_P = 0xd3, COL_M = 0xd4, COL_S = 0xd5 };

static uint8_t collapse(uint32_t cp)
{
    if (cp < 128) return (uint8_t)cp;
    if (is_unicode_ws(cp)) return 0x0b;
    switch (ucat_of(cp)) {
    case LM_UCAT_NUMBER: return COL_N;
    case LM_UCAT_LETTER: return COL_L;
    case LM_UCAT_PUNCT: return COL_P;
    case LM_UCAT_MARK: return COL_M;
    case LM_UCAT_SYMBOL: return COL_S;
    default: return COL_OTHER;
    }
}

static int col_alpha(uint8_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static int col_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static int col_n(uint8_t c) { return c == COL_N || col_digit(c); }
static int col_l(uint8_t c) { return c == COL_L || col_alpha(c); }
/* ASCII members llama.cpp gives \p{P} and \p{S} in collapsed regexes */
static int col_p(uint8_t c) { return c == COL_P || (c < 128 && c && strchr("!\"#%&'()*,-./:;?@[\\]_{}", c)); }
static int col_s(uint8_t c) { return c == COL_S || (c < 128 && c && strchr("$+<=>^`|~", c)); }
static int col_ws(uint8_t c) { return c == ' ' || (c >= 0x09 && c <= 0x0d); } /* \s, "C" locale */
static int col_ascii_punct(uint8_t c)
{
    return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
           (c >= 0x7b && c <= 0x7e);
}

/* \p{N}{1,3} */
static size_t m_num3(const work *w, size_t p, size_t end)
{
    size_t q = p;
    while (q < end && q - p < 3 && col_n(w->col[q])) q++;
    return q - p;
}

/* \p{N}+ */
static size_t m_num_run(const work *w, size_t p, size_t end)
{
    size_t q = p;
    while (q < end && col_n(w->col[q])) q++;
    return q - p;
}

/* [\p{P}\$\+<=>\^~\|]+ */
static size_t m_punct_run(const work *w, size_t p, size_t end)
{
    size_t q = p;
    while (q < end && (col_p(w->col[q]) || (w->col[q] && strchr("$+<=>^~|", w->col[q])))) q++;
    return q - p;
}

/* [0-9][0-9][0-9] (no \p: matched on code points) */
static size_t m_digit3(const work *w, size_t p, size_t end)
{
    if (end - p < 3) return 0;
    for (int i = 0; i < 3; i++)
        if (w->cp[p + i] < '0' || w->cp[p + i] > '9') return 0;
    return 3;
}

/* [一-龥぀-ゟ゠-ヿ]+ (no \p: matched on code points) */
static size_t m_cjk_kana(const work *w, size_t p, size_t end)
{
    size_t q = p;
    for (; q < end; q++) {
        uint32_t c = w->cp[q];
        if (!((c >= 0x4e00 && c <= 0x9fa5) || (c >= 0x3040 && c <= 0x30ff))) break;
    }
    return q - p;
}

/* DeepSeek-V3's third regex, alternatives tried in order with backtracking as ECMAScript
 * does:  [!-/:-@[-`{-~][A-Za-z]+ | [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
 *      | ' '?[\p{P}\p{S}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+ */
static int col_lm(uint8_t c) { return col_l(c) || c == COL_M; }
static int col_ps(uint8_t c) { return col_p(c) || col_s(c); }

static size_t m_deepseek3(const work *w, size_t p, size_t end)
{
    const uint8_t *c = w->col;
    size_t q;
    if (col_ascii_punct(c[p]) && p + 1 < end && col_alpha(c[p + 1])) {
        for (q = p + 1; q < end && col_alpha(c[q]); q++) {}
        return q - p;
    }
    int opt = c[p] != '\r' && c[p] != '\n' && !col_l(c[p]) && !col_ps(c[p]);
    if ((opt && p + 1 < end && col_lm(c[p + 1])) || col_lm(c[p])) {
        for (q = p + 1; q < end && col_lm(c[q]); q++) {}
        return q - p;
    }
    if ((c[p] == ' ' && p + 1 < end && col_ps(c[p + 1])) || col_ps(c[p])) {
        for (q = p + 1; q < end && col_ps(c[q]); q++) {}
        while (q < end && (c[q] == '\r' || c[q] == '\n')) q++;
        return q - p;
    }
    size_t e = p, last_rn = 0;
    int has_rn = 0;
    for (; e < end && col_ws(c[e]); e++)
        if (c[e] == '\r' || c[e] == '\n') { last_rn = e; has_rn = 1; }
    if (has_rn) return last_rn + 1 - p;
    if (e > p) {
        if (e == end) return e - p;
        return e - p >= 2 ? e - 1 - p : e - p;
    }
    return 0;
}

/* llama.cpp's hand-written splitters for the GPT-2 and Llama-3 regexes. They differ from
 * a regex engine in small ways (an unmatched code point is its own piece), so they are
 * reproduced step by step. */
typedef struct cursor { const uint32_t *cp; size_t ini, end, prev_end; pieces *out; } cursor;

static uint32_t cur_cp(const cursor *c, size_t pos) { return pos >= c->ini && pos < c->end ? c->cp[pos] : 0xffffffffu; }
static unsigned cur_fl(const cursor *c, size_t pos) { return pos >= c->ini && pos < c->end ? cpt_flags(c->cp[pos]) : 0; }
static size_t cur_add(cursor *c, size_t end)
{
    size_t len = end - c->prev_end;
    piece_add(c->out, len);
    c->prev_end = end;
    return len;
}

static int is_contraction(const cursor *c, size_t pos, int fold, size_t *len)
{
    if (cur_cp(c, pos) != '\'' || pos + 1 >= c->end) return 0;
    uint32_t a = cur_cp(c, pos + 1);
    if (fold && a >= 'A' && a <= 'Z') a += 32;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') { *len = 2; return 1; }
    if (pos + 2 < c->end) {
        uint32_t b = cur_cp(c, pos + 2);
        if (fold && b >= 'A' && b <= 'Z') b += 32;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) { *len = 3; return 1; }
    }
    return 0;
}

#define F_L LM_UCAT_LETTER
#define F_N LM_UCAT_NUMBER

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
static void split_gpt2(const work *w, const pieces *in, pieces *out)
{
    size_t start = 0;
    out->n = 0;
    for (size_t k = 0; k < in->n; k++) {
        cursor c = { w->cp, start, start + in->len[k], start, out };
        start = c.end;
        for (size_t pos = c.ini; pos < c.end;) {
            uint32_t cp = cur_cp(&c, pos);
            unsigned fl = cur_fl(&c, pos);
            size_t clen;
            if (is_contraction(&c, pos, 0, &clen)) { pos += cur_add(&c, pos + clen); continue; }
            unsigned f2 = cp == ' ' ? cur_fl(&c, pos + 1) : fl;
            if (f2 & F_L) {
                pos += cp == ' ';
                while (f2 & F_L) f2 = cur_fl(&c, ++pos);
                cur_add(&c, pos);
                continue;
            }
            if (f2 & F_N) {
                pos += cp == ' ';
                while (f2 & F_N) f2 = cur_fl(&c, ++pos);
                cur_add(&c, pos);
                continue;
            }
            if (!(f2 & (UCAT_WS | F_L | F_N)) && f2) {
                pos += cp == ' ';
                while (!(f2 & (UCAT_WS | F_L | F_N)) && f2) f2 = cur_fl(&c, ++pos);
                cur_add(&c, pos);
                continue;
            }
            size_t nws = 0;
            while (cur_fl(&c, pos + nws) & UCAT_WS) nws++;
            if (nws > 1 && cur_cp(&c, pos + nws) != 0xffffffffu) { pos += nws - 1; cur_add(&c, pos); continue; }
            if (nws > 0) { pos += nws; cur_add(&c, pos); continue; }
            cur_add(&c, ++pos);
        }
    }
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
 * |\s*[\r\n]+|\s+(?!\S)|\s+ */
static void split_llama3(const work *w, const pieces *in, pieces *out)
{
    size_t start = 0;
    out->n = 0;
    for (size_t k = 0; k < in->n; k++) {
        cursor c = { w->cp, start, start + in->len[k], start, out };
        start = c.end;
        for (size_t pos = c.ini; pos < c.end;) {
            uint32_t cp = cur_cp(&c, pos);
            unsigned fl = cur_fl(&c, pos);
            size_t clen;
            if (is_contraction(&c, pos, 1, &clen)) { pos += cur_add(&c, pos + clen); continue; }
            if (!(cp == '\r' || cp == '\n' || (fl & F_N))) {
                if ((fl & F_L) || (cur_fl(&c, pos + 1) & F_L)) {
                    pos++;
                    while (cur_fl(&c, pos) & F_L) pos++;
                    cur_add(&c, pos);
                    continue;
                }
            }
            if (fl & F_N) {
                size_t ini = pos;
                while (cur_fl(&c, pos) & F_N) {
                    if (++pos - ini >= 3) { cur_add(&c, pos); ini = pos; }
                }
                cur_add(&c, pos);
                continue;
            }
            unsigned f2 = cp == ' ' ? cur_fl(&c, pos + 1) : fl;
            if (!(f2 & (UCAT_WS | F_L | F_N)) && fl) {
                pos += cp == ' ';
                while (!(f2 & (UCAT_WS | F_L | F_N)) && f2) f2 = cur_fl(&c, ++pos);
                uint32_t c2 = cur_cp(&c, pos);
                while (c2 == '\r' || c2 == '\n') c2 = cur_cp(&c, ++pos);
                cur_add(&c, pos);
                continue;
            }
            size_t nws = 0, last_rn = 0;
            while (cur_fl(&c, pos + nws) & UCAT_WS) {
                uint32_t c2 = cur_cp(&c, pos + nws);
                if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
                nws++;
            }
            if (last_rn > 0) { pos = last_rn; cur_add(&c, pos); continue; }
            if (nws > 1 && cur_cp(&c, pos + nws) != 0xffffffffu) { pos += nws - 1; cur_add(&c, pos); continue; }
            if (nws > 0) { pos += nws; cur_add(&c, pos); continue; }
            cur_add(&c, ++pos);
        }
    }
}

/* Split w->cp[0, n) into words; returns the final piece list. */
static pieces pre_split(const lm_tokenizer *t, work *w, size_t n)
{
    pieces a = { w->seg_a, 0 }, b = { w->seg_b, 0 };
    pieces *cur = &a, *nxt = &b, *tmp;
    piece_add(cur, n);
#define STAGE(call) do { call; tmp = cur; cur = nxt; nxt = tmp; } while (0)
    switch (t->pre) {
    case PRE_GPT2:
        STAGE(split_gpt2(w, cur, nxt));
        break;
    case PRE_LLAMA3:
        STAGE(split_llama3(w, cur, nxt));
        break;
    case PRE_DEEPSEEK3:
        for (size_t i = 0; i < n; i++) w->col[i] = collapse(w->cp[i]);
        STAGE(split_search(w, cur, nxt, m_num3));
        STAGE(split_search(w, cur, nxt, m_cjk_kana));
        STAGE(split_search(w, cur, nxt, m_deepseek3));
        break;
    case PRE_DEFAULT:
        for (size_t i = 0; i < n; i++) w->col[i] = collapse(w->cp[i]);
        STAGE(split_search(w, cur, nxt, m_punct_run));
        STAGE(split_gpt2(w, cur, nxt));
        STAGE(split_search(w, cur, nxt, m_num_run));
        STAGE(split_search(w, cur, nxt, m_digit3));
        break;
    }
#undef STAGE
    return *cur; /* lengths live in w->seg_a or w->seg_b */
}

/* ---------------------------------------------------------------------------------------
 * BPE on one word (raw UTF-8 bytes in w->word[0, n))
 * ------------------------------------------------------------------------------------- */
static int bigram_less(const bigram *a, const bigram *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(bigram *h, size_t *n, bigram v)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_less(&v, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static bigram heap_pop(bigram *h, size_t *n)
{
    bigram top = h[0], v = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const bigram *best = &v;
        if (l < *n && bigram_less(&h[l], best)) { m = l; best = &h[l]; }
        if (r < *n && bigram_less(&h[r], best)) { m = r; }
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = v;
    return top;
}

static void try_bigram(const lm_tokenizer *t, work *w, size_t *hn, int32_t left, int32_t right)
{
    if (left < 0 || right < 0) return;
    const sym *L = &w->syms[left], *R = &w->syms[right];
    int32_t rank = merge_rank(t, w->word + L->off, L->n, R->n);
    if (rank < 0) return;
    bigram b = { rank, left, right, L->n + R->n };
    heap_push(w->heap, hn, b);
}

/* Emit a finished symbol: its token, or else (like llama.cpp) the tokens of each single
 * byte of its byte-level text that exist. */
static void emit_symbol(const lm_tokenizer *t, work *w, const uint8_t *s, size_t n)
{
    int32_t id = raw_find(t, s, n);
    if (id >= 0) { emit(w, id); return; }
    for (size_t i = 0; i < n; i++) {
        uint8_t m[4];
        uint16_t cp = t->byte_cp[s[i]];
        size_t ml = utf8_encode(cp, m);
        for (size_t j = 0; j < ml; j++) {
            id = text_find(t, &m[j], 1);
            if (id >= 0) emit(w, id);
        }
    }
}

static void bpe_word(const lm_tokenizer *t, work *w, size_t n)
{
    if (t->ignore_merges) {
        int32_t id = raw_find(t, w->word, n);
        if (id >= 0) { emit(w, id); return; }
    }
    for (size_t i = 0; i < n; i++) {
        w->syms[i].off = (uint32_t)i; w->syms[i].n = 1;
        w->syms[i].prev = (int32_t)i - 1;
        w->syms[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    size_t hn = 0;
    for (size_t i = 1; i < n; i++) try_bigram(t, w, &hn, (int32_t)i - 1, (int32_t)i);
    while (hn) {
        bigram b = heap_pop(w->heap, &hn);
        sym *L = &w->syms[b.left], *R = &w->syms[b.right];
        /* stale: one side was merged away or grew since the pair was queued */
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size || L->next != b.right) continue;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) w->syms[R->next].prev = b.left;
        try_bigram(t, w, &hn, L->prev, b.left);
        try_bigram(t, w, &hn, b.left, L->next);
    }
    for (int32_t i = 0; i >= 0 && n; i = w->syms[i].next)
        emit_symbol(t, w, w->word + w->syms[i].off, w->syms[i].n);
}

/* Encode one text fragment (no special tokens in it). */
static int encode_text(const lm_tokenizer *t, work *w, const uint8_t *s, size_t len)
{
    if (len == 0) return 0;
    int rc = work_reserve_cp(w, len);
    if (rc) return rc;
    size_t n = 0;
    for (size_t i = 0; i < len;) i += utf8_decode(s + i, len - i, &w->cp[n++]);
    const pieces wp = pre_split(t, w, n), *words = &wp;
    size_t at = 0, max_word = 0;   /* longest word in UTF-8 bytes */
    for (size_t k = 0; k < words->n; k++) {
        size_t b = 0;
        for (size_t i = at; i < at + words->len[k]; i++)
            b += w->cp[i] < 0x80 ? 1 : w->cp[i] < 0x800 ? 2 : w->cp[i] < 0x10000 ? 3 : 4;
        if (b > max_word) max_word = b;
        at += words->len[k];
    }
    at = 0;
    rc = work_reserve_word(w, max_word);
    if (rc) return rc;
    for (size_t k = 0; k < words->n; k++) {
        size_t wl = 0;
        for (size_t i = at; i < at + words->len[k]; i++) wl += utf8_encode(w->cp[i], w->word + wl);
        at += words->len[k];
        bpe_word(t, w, wl);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Special-token partition (llama.cpp's tokenizer_st_partition): for each special token,
 * longest first, cut its non-overlapping occurrences out of every remaining text fragment.
 * ------------------------------------------------------------------------------------- */
typedef struct frag { int32_t token; size_t off, len; } frag; /* token < 0: text */

typedef struct frags { frag *v; size_t n, cap; } frags;

static int frags_push(frags *f, int32_t token, size_t off, size_t len)
{
    if (token < 0 && len == 0) return 0;
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 16;
        frag *v = realloc(f->v, cap * sizeof *v);
        if (!v) return LOOM_ERR_NO_MEMORY;
        f->v = v; f->cap = cap;
    }
    f->v[f->n++] = (frag){ token, off, len };
    return 0;
}

static int partition(const lm_tokenizer *t, const char *text, size_t len, int parse_special, frags *out)
{
    frags cur = { 0 }, nxt = { 0 };
    int rc = frags_push(&cur, -1, 0, len);
    for (int32_t k = 0; k < t->n_special && !rc; k++) {
        int32_t id = t->special[k];
        if (!parse_special && t->type[id] != LM_TOKEN_USER_DEFINED) continue;
        const char *tt = t->text_pool + t->text_off[id];
        size_t tl = t->text_off[id + 1] - t->text_off[id];
        nxt.n = 0;
        for (size_t i = 0; i < cur.n && !rc; i++) {
            frag f = cur.v[i];
            if (f.token >= 0 || f.len < tl) { rc = frags_push(&nxt, f.token, f.off, f.len); continue; }
            size_t p = f.off, end = f.off + f.len;
            while (!rc) {
                const char *m = memmem(text + p, end - p, tt, tl);
                if (!m) { rc = frags_push(&nxt, -1, p, end - p); break; }
                size_t at = (size_t)(m - text);
                rc = frags_push(&nxt, -1, p, at - p);
                if (!rc) rc = frags_push(&nxt, id, 0, 0);
                p = at + tl;
            }
        }
        frags tmp = cur; cur = nxt; nxt = tmp;
    }
    free(nxt.v);
    if (rc) { free(cur.v); return rc; }
    *out = cur;
    return 0;
}

int64_t lm_tokenize(const lm_tokenizer *t, const char *text, size_t len, int add_bos,
                    int parse_special, int32_t *out, int64_t max_tokens)
{
    if (!t || (!text && len) || max_tokens < 0 || (!out && max_tokens > 0)) return LOOM_ERR_INVALID_ARG;
    /* a bad byte re-encodes as 3 (U+FFFD): keep every word's byte count inside int32 */
    if (len > LM_TOKENIZE_MAX_BYTES) return LOOM_ERR_LIMIT;
    work w;
    memset(&w, 0, sizeof w);
    w.out = out; w.max_out = max_tokens;
    if (add_bos && t->bos >= 0) emit(&w, t->bos);
    if (len == 0) return w.n_out;
    frags f = { 0 };
    int rc = partition(t, text, len, parse_special, &f);
    for (size_t i = 0; i < f.n && !rc; i++) {
        if (f.v[i].token >= 0) emit(&w, f.v[i].token);
        else rc = encode_text(t, &w, (const uint8_t *)text + f.v[i].off, f.v[i].len);
    }
    free(f.v);
    work_free(&w);
    return rc ? rc : w.n_out;
}

/* ---------------------------------------------------------------------------------------
 * Pieces
 * ------------------------------------------------------------------------------------- */
static int put(char *buf, size_t size, size_t *n, const void *s, size_t l)
{
    if (*n < size) memcpy(buf + *n, s, (*n + l <= size) ? l : size - *n);
    *n += l;
    return 0;
}

int lm_token_to_piece(const lm_tokenizer *t, int32_t id, int special, char *buf, size_t size)
{
    if (!t || id < 0 || id >= t->n_vocab || (!buf && size)) return LOOM_ERR_INVALID_ARG;
    const uint8_t *s = (const uint8_t *)t->text_pool + t->text_off[id];
    size_t l = t->text_off[id + 1] - t->text_off[id], n = 0;
    int ty = t->type[id];
    if (ty == LM_TOKEN_CONTROL || ty == LM_TOKEN_UNKNOWN) {
        if (!special) return 0;
        put(buf, size, &n, s, l);
    } else if (ty == LM_TOKEN_USER_DEFINED) {
        put(buf, size, &n, s, l);
    } else if (ty == LM_TOKEN_NORMAL) {
        /* un-map each code point; one that is not a mapped byte prints like llama.cpp's
         * "[UNK_BYTE_0x<hex><token text>]" */
        for (size_t i = 0; i < l;) {
            uint32_t cp;
            uint8_t e[4];
            size_t k = utf8_decode(s + i, l - i, &cp);
            i += k;
            if (cp < MAPPED_CP_MAX && t->cp_byte[cp] >= 0) {
                uint8_t b = (uint8_t)t->cp_byte[cp];
                put(buf, size, &n, &b, 1);
            } else {
                static const char hex[] = "0123456789abcdef";
                size_t el = utf8_encode(cp, e);
                put(buf, size, &n, "[UNK_BYTE_0x", 12);
                for (size_t j = 0; j < el; j++) {
                    char h[2] = { hex[e[j] >> 4], hex[e[j] & 15] };
                    put(buf, size, &n, h, 2);
                }
                put(buf, size, &n, s, l);
                put(buf, size, &n, "]", 1);
            }
        }
    } else if (ty == LM_TOKEN_BYTE) {
        /* "<0xAB>" form, else the un-mapped first code point */
        unsigned v = 0;
        if (l == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>') {
            for (int j = 3; j < 5; j++) {
                char c = (char)s[j];
                v = v * 16 + (unsigned)(c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 0);
            }
        } else {
            uint32_t cp;
            utf8_decode(s, l, &cp);
            v = (cp < MAPPED_CP_MAX && t->cp_byte[cp] >= 0) ? (unsigned)t->cp_byte[cp] : 0;
        }
        uint8_t b = (uint8_t)v;
        put(buf, size, &n, &b, 1);
    }
    if (n > (size_t)INT32_MAX) return LOOM_ERR_LIMIT;
    return (int)n;
}
