/*
 * GGUF v3 reader and writer. See lib/core/gguf.h for the contract and docs/FORMAT.md
 * ("Container (GGUF v3)") for what is accepted and rejected.
 *
 * Reader layout in memory: one lm_gguf owns an arena (bump allocator in chunks) holding
 * every key, string, array descriptor and misaligned-array copy, plus two hash tables
 * (keys, tensor names) used both for duplicate detection and lookups. Numbers and tensor
 * data stay in the caller's buffer / the mapping.
 *
 * Allocation bound: every count read from the file is checked against the bytes left in
 * the file (each element needs a known minimum number of bytes) before anything is
 * allocated, so memory use is linear in the file size whatever the file claims.
 */
#include "lib/core/gguf.h"
#include "lib/core/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "loom's GGUF reader assumes a little-endian host"
#endif

/* Arrays inside arrays deeper than this are rejected (bounds recursion on hostile input). */
#define GGUF_MAX_DEPTH 8
/* A string (key, value, array element, tensor name) longer than this is rejected. */
#define GGUF_MAX_STR ((uint64_t)UINT32_MAX - 1)
/* Smallest encodings, used to bound counts before allocating. */
#define GGUF_MIN_KV_BYTES     13  /* key length u64 + 0-byte key + type u32 + 1-byte value   */
#define GGUF_MIN_TENSOR_BYTES 32  /* name length + n_dims + 1 dim + type + offset            */
#define GGUF_MIN_ARRAY_BYTES  12  /* element type u32 + count u64                            */
#define GGUF_HEADER_BYTES     24  /* magic, version, tensor count, kv count                  */

const char *lm_gguf_vtype_name(int vtype)
{
    static const char *const names[LM_GGUF_VTYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array",
        "u64", "i64", "f64"};
    return vtype >= 0 && vtype < LM_GGUF_VTYPE_COUNT ? names[vtype] : "?";
}

/* Bytes of one scalar of `vtype`; 0 for string, array and unknown types. */
static size_t vtype_size(int vtype)
{
    switch (vtype) {
    case LM_GGUF_U8: case LM_GGUF_I8: case LM_GGUF_BOOL:  return 1;
    case LM_GGUF_U16: case LM_GGUF_I16:                   return 2;
    case LM_GGUF_U32: case LM_GGUF_I32: case LM_GGUF_F32: return 4;
    case LM_GGUF_U64: case LM_GGUF_I64: case LM_GGUF_F64: return 8;
    default:                                              return 0;
    }
}

static int is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

/* ======================================================================================
 * Arena: chunks of at least 64 KiB; allocations 16-byte aligned; freed all at once.
 * ==================================================================================== */
typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char mem[];
} arena_chunk;

typedef struct arena { arena_chunk *head; } arena;

static void *arena_alloc(arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (cap > SIZE_MAX - sizeof(arena_chunk)) return NULL;
        arena_chunk *c = malloc(sizeof(arena_chunk) + cap);
        if (!c) return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = a->head->mem + a->head->used;
    a->head->used += n;
    return p;
}

static void arena_free(arena *a)
{
    for (arena_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
}

/* ======================================================================================
 * Name index: open addressing over strings (keys, tensor names), FNV-1a hash.
 * ==================================================================================== */
typedef struct name_index {
    int64_t *slot;   /* [cap] entry index + 1, 0 = empty */
    uint64_t cap;    /* power of two, > 2 × entries       */
} name_index;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int name_index_init(name_index *ix, int64_t n)
{
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2 + 1) cap <<= 1;
    ix->slot = calloc(cap, sizeof *ix->slot);
    ix->cap = cap;
    return ix->slot ? 0 : -1;
}

/* Find `name` among names[]; returns its index or -1. With insert_as >= 0, inserts it
 * under that index when absent. */
static int64_t name_index_find(const name_index *ix, const char *name, const char *(*name_of)(const void *, int64_t),
                               const void *ctx, int64_t insert_as)
{
    if (!ix->slot) return -1;
    uint64_t mask = ix->cap - 1;
    for (uint64_t h = fnv1a(name) & mask;; h = (h + 1) & mask) {
        int64_t e = ix->slot[h];
        if (e == 0) {
            if (insert_as >= 0) ix->slot[h] = insert_as + 1;
            return -1;
        }
        if (!strcmp(name_of(ctx, e - 1), name)) return e - 1;
    }
}

/* ======================================================================================
 * Reader structures
 * ==================================================================================== */
struct lm_gguf_array {
    int            type;      /* element vtype                                    */
    uint64_t       n;         /* element count                                    */
    const void    *data;      /* numeric: [n] packed values, aligned; else NULL   */
    const char   **strs;      /* string: [n] NUL-terminated copies; else NULL     */
    uint32_t      *str_lens;  /* string: [n] byte lengths                         */
    lm_gguf_array *items;     /* nested: [n] arrays; else NULL                    */
};

typedef struct gguf_kv {
    const char          *key;      /* arena                                        */
    int                  type;     /* lm_gguf_vtype                                */
    const unsigned char *raw;      /* scalar: its bytes in the buffer              */
    const char          *str;      /* string: NUL-terminated copy (arena)          */
    uint64_t             str_len;  /* string: bytes                                */
    lm_gguf_array       *arr;      /* array (arena)                                */
    const unsigned char *val;      /* the serialized value in the buffer (after the
                                      type id), for lm_gguf_copy_kv                */
    uint64_t             val_len;
} gguf_kv;

struct lm_gguf {
    const unsigned char *buf;      /* the whole file                                */
    uint64_t             size;
    int                  mapped;   /* 1: buf is our mmap, unmapped on close          */
    uint32_t             version, alignment;
    uint64_t             data_start;  /* file offset of the data section            */
    int64_t              n_kv, n_tensors;
    gguf_kv             *kv;       /* [n_kv]                                        */
    lm_gguf_tensor      *tensors;  /* [n_tensors]                                   */
    name_index           kv_ix, tensor_ix;
    arena                arena;
};

static const char *kv_name_of(const void *g, int64_t i) { return ((const lm_gguf *)g)->kv[i].key; }
static const char *tensor_name_of(const void *g, int64_t i) { return ((const lm_gguf *)g)->tensors[i].name; }

/* ======================================================================================
 * Parsing
 * ==================================================================================== */
typedef struct cursor {
    const unsigned char *p;
    uint64_t  size, pos;
    lm_gguf  *g;
    lm_error *err;
    char      what[160];   /* what is being read, for messages: "key 3 ('general.name')" */
} cursor;

static uint64_t left(const cursor *c) { return c->size - c->pos; }

static int need(cursor *c, uint64_t n, const char *field)
{
    if (n <= left(c)) return 0;
    return lm_fail(c->err, LOOM_ERR_FORMAT,
                   "%s: %s (%" PRIu64 " bytes at offset %" PRIu64 ") runs past end of file (%" PRIu64 " bytes)",
                   c->what, field, n, c->pos, c->size);
}

static int rd_u32(cursor *c, const char *field, uint32_t *v)
{
    if (need(c, 4, field)) return LOOM_ERR_FORMAT;
    memcpy(v, c->p + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int rd_u64(cursor *c, const char *field, uint64_t *v)
{
    if (need(c, 8, field)) return LOOM_ERR_FORMAT;
    memcpy(v, c->p + c->pos, 8);
    c->pos += 8;
    return 0;
}

/* Read a length-prefixed string, copy it NUL-terminated into the arena. With no_nul, a
 * NUL byte inside is an error (keys and tensor names must be C strings). */
static int rd_str(cursor *c, const char *field, int no_nul, const char **out, uint64_t *len_out)
{
    uint64_t n;
    int rc = rd_u64(c, field, &n);
    if (rc) return rc;
    if (n > GGUF_MAX_STR)
        return lm_fail(c->err, LOOM_ERR_FORMAT, "%s: %s length %" PRIu64 " is too large", c->what, field, n);
    if (n > left(c))
        return lm_fail(c->err, LOOM_ERR_FORMAT,
                       "%s: %s length %" PRIu64 " runs past end of file (%" PRIu64 " bytes left at offset %" PRIu64 ")",
                       c->what, field, n, left(c), c->pos);
    const unsigned char *src = c->p + c->pos;
    if (no_nul && memchr(src, 0, n))
        return lm_fail(c->err, LOOM_ERR_FORMAT, "%s: %s contains a NUL byte", c->what, field);
    char *s = arena_alloc(&c->g->arena, n + 1);
    if (!s) return lm_fail(c->err, LOOM_ERR_NO_MEMORY, "%s: out of memory for %s", c->what, field);
    memcpy(s, src, n);
    s[n] = '\0';
    c->pos += n;
    *out = s;
    if (len_out) *len_out = n;
    return 0;
}

/* Array body after the "array" type id: element type, count, elements. */
static int rd_array(cursor *c, lm_gguf_array *a, int depth)
{
    uint32_t et;
    uint64_t n;
    int rc;
    if ((rc = rd_u32(c, "array element type", &et)) || (rc = rd_u64(c, "array count", &n))) return rc;
    memset(a, 0, sizeof *a);
    a->type = (int)et;
    if (et >= LM_GGUF_VTYPE_COUNT)
        return lm_fail(c->err, LOOM_ERR_FORMAT, "%s: unknown array element type %" PRIu32, c->what, et);
    size_t es = vtype_size((int)et);
    if (es) {  /* numeric: one range check, no per-element work */
        if (n > left(c) / es)
            return lm_fail(c->err, LOOM_ERR_FORMAT,
                           "%s: array of %" PRIu64 " %s runs past end of file (%" PRIu64 " bytes left)",
                           c->what, n, lm_gguf_vtype_name((int)et), left(c));
        const unsigned char *src = c->p + c->pos;
        if ((uintptr_t)src % es) {  /* keep arr_data aligned for its element type */
            void *copy = arena_alloc(&c->g->arena, n * es);
            if (!copy && n) return lm_fail(c->err, LOOM_ERR_NO_MEMORY, "%s: out of memory for array", c->what);
            if (n) memcpy(copy, src, n * es);
            src = copy;
        }
        a->data = src;
        a->n = n;
        c->pos += n * es;
        return 0;
    }
    if (et == LM_GGUF_STRING) {
        if (n > left(c) / 8)
            return lm_fail(c->err, LOOM_ERR_FORMAT,
                           "%s: array of %" PRIu64 " strings runs past end of file (%" PRIu64 " bytes left)",
                           c->what, n, left(c));
        a->strs = arena_alloc(&c->g->arena, n * sizeof *a->strs);
        a->str_lens = arena_alloc(&c->g->arena, n * sizeof *a->str_lens);
        if (n && (!a->strs || !a->str_lens))
            return lm_fail(c->err, LOOM_ERR_NO_MEMORY, "%s: out of memory for string array", c->what);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t len;
            if ((rc = rd_str(c, "array string", 0, &a->strs[i], &len))) return rc;
            a->str_lens[i] = (uint32_t)len;
            a->n = i + 1;
        }
        return 0;
    }
    /* nested arrays */
    if (depth >= GGUF_MAX_DEPTH)
        return lm_fail(c->err, LOOM_ERR_LIMIT, "%s: arrays nested deeper than %d levels", c->what, GGUF_MAX_DEPTH);
    if (n > left(c) / GGUF_MIN_ARRAY_BYTES)
        return lm_fail(c->err, LOOM_ERR_FORMAT,
                       "%s: array of %" PRIu64 " arrays runs past end of file (%" PRIu64 " bytes left)",
                       c->what, n, left(c));
    a->items = arena_alloc(&c->g->arena, n * sizeof *a->items);
    if (n && !a->items) return lm_fail(c->err, LOOM_ERR_NO_MEMORY, "%s: out of memory for nested array", c->what);
    for (uint64_t i = 0; i < n; i++) {
        if ((rc = rd_array(c, &a->items[i], depth + 1))) return rc;
        a->n = i + 1;
    }
    return 0;
}

static int rd_kv(cursor *c, int64_t i)
{
    gguf_kv *kv = &c->g->kv[i];
    uint32_t t;
    int rc;
    snprintf(c->what, sizeof c->what, "key %" PRId64, i);
    if ((rc = rd_str(c, "key", 1, &kv->key, NULL))) return rc;
    snprintf(c->what, sizeof c->what, "key %" PRId64 " ('%.100s')", i, kv->key);
    if (name_index_find(&c->g->kv_ix, kv->key, kv_name_of, c->g, i) >= 0)
        return lm_fail(c->err, LOOM_ERR_FORMAT, "%s: duplicate key", c->what);
    if ((rc = rd_u32(c, "value type", &t))) return rc;
    if (t >= LM_GGUF_VTYPE_COUNT)
        return lm_fail(c->err, LOOM_ERR_FORMAT, "%s: unknown value type %" PRIu32, c->what, t);
    kv->type = (int)t;
    const uint64_t start = c->pos;
    if (t == LM_GGUF_STRING) {
        rc = rd_str(c, "string value", 0, &kv->str, &kv->str_len);
    } else if (t == LM_GGUF_ARRAY) {
        kv->arr = arena_alloc(&c->g->arena, sizeof *kv->arr);
        if (!kv->arr) return lm_fail(c->err, LOOM_ERR_NO_MEMORY, "%s: out of memory", c->what);
        rc = rd_array(c, kv->arr, 1);
    } else {
        size_t n = vtype_size((int)t);
        if ((rc = need(c, n, "value"))) return rc;
        kv->raw = c->p + c->pos;
        c->pos += n;
    }
    kv->val = c->p + start;
    kv->val_len = c->pos - start;
    return rc;
}

/* Bytes of a tensor of a loom type; 0 with *ok = 0 if ne[0] is not whole blocks or the
 * size overflows 64 bits. */
static uint64_t tensor_bytes(int type, const int64_t ne[LM_GGUF_MAX_DIMS], int *ok)
{
    uint64_t bl = (uint64_t)lm_type_block_len(type), bb = lm_type_block_bytes(type), bytes;
    *ok = 0;
    if ((uint64_t)ne[0] % bl) return 0;
    if (__builtin_mul_overflow((uint64_t)ne[0] / bl, bb, &bytes)) return 0;
    for (int d = 1; d < LM_GGUF_MAX_DIMS; d++)
        if (__builtin_mul_overflow(bytes, (uint64_t)ne[d], &bytes)) return 0;
    *ok = 1;
    return bytes;
}

static int rd_tensor_info(cursor *c, int64_t i)
{
    lm_gguf_tensor *t = &c->g->tensors[i];
    uint32_t nd, type;
    int rc;
    snprintf(c->what, sizeof c->what, "tensor %" PRId64, i);
    if ((rc = rd_str(c, "name", 1, &t->name, NULL))) return rc;
    snprintf(c->what, sizeof c->what, "tensor %" PRId64 " ('%.100s')", i, t->name);
    if (name_index_find(&c->g->tensor_ix, t->name, tensor_name_of, c->g, i) >= 0)
        return lm_fail(c->err, LOOM_ERR_FORMAT, "%s: duplicate tensor name", c->what);
    if ((rc = rd_u32(c, "n_dims", &nd))) return rc;
    if (nd < 1 || nd > LM_GGUF_MAX_DIMS)
        return lm_fail(c->err, LOOM_ERR_FORMAT, "%s: n_dims %" PRIu32 " is not in 1..%d", c->what, nd, LM_GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    int64_t n_elem = 1;
    for (int d = 0; d < LM_GGUF_MAX_DIMS; d++) {
        uint64_t v = 1;
        if (d < (int)nd && (rc = rd_u64(c, "dimension", &v))) return rc;
        if (v > INT64_MAX)
            return lm_fail(c->err, LOOM_ERR_FORMAT, "%s: dimension %d is negative (%" PRId64 ")", c->what, d, (int64_t)v);
        t->ne[d] = (int64_t)v;
        if (__builtin_mul_overflow(n_elem, t->ne[d], &n_elem))
            return lm_fail(c->err, LOOM_ERR_FORMAT, "%s: element count overflows 64 bits", c->what);
    }
    if ((rc = rd_u32(c, "type", &type))) return rc;
    if (type > INT32_MAX)
        return lm_fail(c->err, LOOM_ERR_FORMAT, "%s: type id %" PRIu32 " out of range", c->what, type);
    t->type = (int)type;
    if ((rc = rd_u64(c, "offset", &t->offset))) return rc;
    if (lm_type_supported(t->type)) {
        int ok;
        t->n_bytes = tensor_bytes(t->type, t->ne, &ok);
        if (!ok) {
            if (t->ne[0] % lm_type_block_len(t->type))
                return lm_fail(c->err, LOOM_ERR_FORMAT, "%s: row of %" PRId64 " %s values is not a multiple of the block size %" PRId64,
                               c->what, t->ne[0], loom_type_name(t->type), lm_type_block_len(t->type));
            return lm_fail(c->err, LOOM_ERR_FORMAT, "%s: byte size overflows 64 bits", c->what);
        }
    }
    return 0;
}

/* Checks that need the data section's start: alignment and range of every tensor. */
static int check_tensor_data(lm_gguf *g, lm_error *err)
{
    uint64_t data_size = g->size - g->data_start;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        lm_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return lm_fail(err, LOOM_ERR_FORMAT, "tensor %" PRId64 " ('%.100s'): offset %" PRIu64 " is not a multiple of alignment %" PRIu32,
                           i, t->name, t->offset, g->alignment);
        if (t->offset > data_size || t->n_bytes > data_size - t->offset)
            return lm_fail(err, LOOM_ERR_FORMAT,
                           "tensor %" PRId64 " ('%.100s'): data [%" PRIu64 ", +%" PRIu64 ") runs past end of file (data section is %" PRIu64 " bytes)",
                           i, t->name, t->offset, t->n_bytes, data_size);
        t->data = lm_type_supported(t->type) ? g->buf + g->data_start + t->offset : NULL;
    }
    return 0;
}

static int parse(lm_gguf *g, lm_error *err)
{
    cursor c = {.p = g->buf, .size = g->size, .g = g, .err = err};
    uint32_t magic = 0;
    uint64_t n_tensors = 0, n_kv = 0;
    int rc;
    snprintf(c.what, sizeof c.what, "header");
    if (g->size < GGUF_HEADER_BYTES)
        return lm_fail(err, LOOM_ERR_FORMAT, "file too short for a GGUF header (%" PRIu64 " bytes, need %d)",
                       g->size, GGUF_HEADER_BYTES);
    rd_u32(&c, "magic", &magic);
    rd_u32(&c, "version", &g->version);
    if (magic != LM_GGUF_MAGIC)
        return lm_fail(err, LOOM_ERR_FORMAT, "not a GGUF file (magic 0x%08" PRIx32 ", want 0x%08" PRIx32 " \"GGUF\")",
                       magic, LM_GGUF_MAGIC);
    if (g->version == 0x03000000u)
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "big-endian GGUF is not supported");
    if (g->version != 3)
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "GGUF version %" PRIu32 " is not supported (loom reads version 3)", g->version);
    rd_u64(&c, "tensor count", &n_tensors);
    rd_u64(&c, "kv count", &n_kv);
    if (n_kv > left(&c) / GGUF_MIN_KV_BYTES)
        return lm_fail(err, LOOM_ERR_FORMAT, "key count %" PRIu64 " cannot fit in the %" PRIu64 " bytes left in the file",
                       n_kv, left(&c));
    if (n_tensors > left(&c) / GGUF_MIN_TENSOR_BYTES)
        return lm_fail(err, LOOM_ERR_FORMAT, "tensor count %" PRIu64 " cannot fit in the %" PRIu64 " bytes left in the file",
                       n_tensors, left(&c));
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors || name_index_init(&g->kv_ix, (int64_t)n_kv) || name_index_init(&g->tensor_ix, (int64_t)n_tensors))
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "out of memory for %" PRIu64 " keys and %" PRIu64 " tensors", n_kv, n_tensors);

    for (uint64_t i = 0; i < n_kv; i++) {
        if ((rc = rd_kv(&c, (int64_t)i))) return rc;
        g->n_kv = (int64_t)i + 1;
    }

    g->alignment = LM_GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = lm_gguf_find_kv(g, "general.alignment");
    if (ai >= 0) {
        const gguf_kv *kv = &g->kv[ai];
        if (kv->type != LM_GGUF_U32)
            return lm_fail(err, LOOM_ERR_FORMAT, "general.alignment has type %s, must be u32", lm_gguf_vtype_name(kv->type));
        uint32_t a;
        memcpy(&a, kv->raw, 4);
        if (!is_pow2(a))
            return lm_fail(err, LOOM_ERR_FORMAT, "general.alignment %" PRIu32 " is not a nonzero power of two", a);
        g->alignment = a;
    }

    for (uint64_t i = 0; i < n_tensors; i++) {
        if ((rc = rd_tensor_info(&c, (int64_t)i))) return rc;
        g->n_tensors = (int64_t)i + 1;
    }

    uint64_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
    g->data_start = c.pos + pad;
    if (g->n_tensors && g->data_start > g->size)
        return lm_fail(err, LOOM_ERR_FORMAT, "data section starts at %" PRIu64 ", past end of file (%" PRIu64 " bytes)",
                       g->data_start, g->size);
    if (g->data_start > g->size) g->data_start = g->size;  /* no tensors: no data section needed */
    return check_tensor_data(g, err);
}

int lm_gguf_open_memory(const void *buf, size_t size, lm_gguf **out, lm_error *err)
{
    if (!out) return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_gguf_open_memory: out is NULL");
    *out = NULL;
    if (!buf && size) return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_gguf_open_memory: buffer is NULL");
    lm_gguf *g = calloc(1, sizeof *g);
    if (!g) return lm_fail(err, LOOM_ERR_NO_MEMORY, "out of memory");
    g->buf = buf;
    g->size = size;
    int rc = parse(g, err);
    if (rc) {
        lm_gguf_close(&g);
        return rc;
    }
    lm_error_clear(err);
    *out = g;
    return 0;
}

int lm_gguf_open(const char *path, lm_gguf **out, lm_error *err)
{
    if (!out || !path) return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_gguf_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lm_fail(err, LOOM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int stat_failed = fstat(fd, &st) < 0;
    if (stat_failed || !S_ISREG(st.st_mode)) {
        int e = stat_failed ? errno : 0;
        close(fd);
        return lm_fail(err, LOOM_ERR_IO, "%s: not a regular file%s%s", path, e ? ": " : "", e ? strerror(e) : "");
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return lm_fail(err, LOOM_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
        }
    }
    close(fd);
    lm_error tmp = {0};
    int rc = lm_gguf_open_memory(map, size, out, &tmp);
    if (rc) {
        if (map) munmap(map, size);
        return lm_fail(err, rc, "%s: %s", path, tmp.msg);
    }
    (*out)->mapped = map != NULL;
    lm_error_clear(err);
    return 0;
}

void lm_gguf_close(lm_gguf **pg)
{
    if (!pg || !*pg) return;
    lm_gguf *g = *pg;
    if (g->mapped) munmap((void *)g->buf, g->size);
    arena_free(&g->arena);
    free(g->kv);
    free(g->tensors);
    free(g->kv_ix.slot);
    free(g->tensor_ix.slot);
    free(g);
    *pg = NULL;
}

uint32_t lm_gguf_version(const lm_gguf *g) { return g ? g->version : 0; }
uint32_t lm_gguf_alignment(const lm_gguf *g) { return g ? g->alignment : 0; }
uint64_t lm_gguf_file_size(const lm_gguf *g) { return g ? g->size : 0; }

/* ======================================================================================
 * Metadata access
 * ==================================================================================== */
int64_t lm_gguf_n_kv(const lm_gguf *g) { return g ? g->n_kv : 0; }

const char *lm_gguf_kv_key(const lm_gguf *g, int64_t i)
{
    return g && i >= 0 && i < g->n_kv ? g->kv[i].key : NULL;
}

int lm_gguf_kv_type(const lm_gguf *g, int64_t i)
{
    return g && i >= 0 && i < g->n_kv ? g->kv[i].type : -1;
}

int64_t lm_gguf_find_kv(const lm_gguf *g, const char *key)
{
    if (!g || !key) return -1;
    return name_index_find(&g->kv_ix, key, kv_name_of, g, -1);
}

/* A bounded text builder: appends while there is room, then marks itself truncated. */
typedef struct text {
    char  *buf;
    size_t size, len;
    int    full;
} text;

static void text_add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(text *t, const char *fmt, ...)
{
    if (t->full || t->size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= t->size - t->len) {
        t->full = 1;
        t->len = t->size - 1;
    } else {
        t->len += (size_t)n;
    }
}

/* String bytes with control characters, quotes and backslashes escaped C-style. */
static void text_add_escaped(text *t, const char *s, uint64_t n, int quoted)
{
    if (quoted) text_add(t, "\"");
    for (uint64_t i = 0; i < n && !t->full; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') text_add(t, "\\n");
        else if (ch == '\t') text_add(t, "\\t");
        else if (ch == '\r') text_add(t, "\\r");
        else if (ch == '\\' || (quoted && ch == '"')) text_add(t, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f) text_add(t, "\\x%02x", ch);
        else text_add(t, "%c", ch);
    }
    if (quoted) text_add(t, "\"");
}

static void text_add_scalar(text *t, int type, const void *p)
{
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
            uint64_t u64; int64_t i64; float f32; double f64; } v;
    memcpy(&v, p, vtype_size(type));
    switch (type) {
    case LM_GGUF_U8:   text_add(t, "%u", v.u8); break;
    case LM_GGUF_I8:   text_add(t, "%d", v.i8); break;
    case LM_GGUF_U16:  text_add(t, "%u", v.u16); break;
    case LM_GGUF_I16:  text_add(t, "%d", v.i16); break;
    case LM_GGUF_U32:  text_add(t, "%" PRIu32, v.u32); break;
    case LM_GGUF_I32:  text_add(t, "%" PRId32, v.i32); break;
    case LM_GGUF_U64:  text_add(t, "%" PRIu64, v.u64); break;
    case LM_GGUF_I64:  text_add(t, "%" PRId64, v.i64); break;
    case LM_GGUF_F32:  text_add(t, "%.9g", (double)v.f32); break;
    case LM_GGUF_F64:  text_add(t, "%.17g", v.f64); break;
    case LM_GGUF_BOOL: text_add(t, "%s", v.u8 ? "true" : "false"); break;
    default:           text_add(t, "?"); break;
    }
}

enum { ARRAY_SHOW = 8 };  /* array elements shown before "…" */

static void text_add_array(text *t, const lm_gguf_array *a)
{
    text_add(t, "[%s × %" PRIu64 ":", lm_gguf_vtype_name(a->type), a->n);
    uint64_t show = a->n < ARRAY_SHOW ? a->n : ARRAY_SHOW;
    for (uint64_t i = 0; i < show && !t->full; i++) {
        text_add(t, i ? ", " : " ");
        if (a->type == LM_GGUF_STRING) text_add_escaped(t, a->strs[i], a->str_lens[i], 1);
        else if (a->type == LM_GGUF_ARRAY) text_add_array(t, &a->items[i]);
        else text_add_scalar(t, a->type, (const char *)a->data + i * vtype_size(a->type));
    }
    text_add(t, "%s]", a->n > show ? ", …" : "");
}

const char *lm_gguf_kv_to_str(const lm_gguf *g, int64_t i, char *buf, size_t size)
{
    if (!buf || !size) return buf;
    buf[0] = '\0';
    if (!g || i < 0 || i >= g->n_kv) return buf;
    const gguf_kv *kv = &g->kv[i];
    text t = {buf, size, 0, 0};
    if (kv->type == LM_GGUF_STRING) text_add_escaped(&t, kv->str, kv->str_len, 0);
    else if (kv->type == LM_GGUF_ARRAY) text_add_array(&t, kv->arr);
    else text_add_scalar(&t, kv->type, kv->raw);
    if (t.full && size >= 4) memcpy(buf + size - 4, "...", 4);  /* mark truncation */
    return buf;
}

/* Entry for `key` of one of the accepted types (bit i of `types_mask` = vtype i). */
static int find_typed(const lm_gguf *g, const char *key, unsigned types_mask, const char *want,
                      const gguf_kv **out, lm_error *err)
{
    if (!g || !key) return lm_fail(err, LOOM_ERR_INVALID_ARG, "gguf getter: NULL argument");
    int64_t i = lm_gguf_find_kv(g, key);
    if (i < 0) return lm_fail(err, LOOM_ERR_NOT_FOUND, "key '%s' not found", key);
    const gguf_kv *kv = &g->kv[i];
    if (!(types_mask >> kv->type & 1))
        return lm_fail(err, LOOM_ERR_TYPE, "key '%s' has type %s, expected %s", key, lm_gguf_vtype_name(kv->type), want);
    *out = kv;
    return 0;
}

#define INT_TYPES_MASK ((1u << LM_GGUF_U8) | (1u << LM_GGUF_I8) | (1u << LM_GGUF_U16) | (1u << LM_GGUF_I16) | \
                        (1u << LM_GGUF_U32) | (1u << LM_GGUF_I32) | (1u << LM_GGUF_U64) | (1u << LM_GGUF_I64))

/* Integer value of an entry as sign + magnitude so every integer type compares exactly. */
static void kv_int(const gguf_kv *kv, int *neg, uint64_t *mag)
{
    int64_t s = 0;
    uint64_t u = 0;
    int is_signed = 1;
    switch (kv->type) {
    case LM_GGUF_U8:  { uint8_t v;  memcpy(&v, kv->raw, 1); u = v; is_signed = 0; break; }
    case LM_GGUF_U16: { uint16_t v; memcpy(&v, kv->raw, 2); u = v; is_signed = 0; break; }
    case LM_GGUF_U32: { uint32_t v; memcpy(&v, kv->raw, 4); u = v; is_signed = 0; break; }
    case LM_GGUF_U64: { memcpy(&u, kv->raw, 8); is_signed = 0; break; }
    case LM_GGUF_I8:  { int8_t v;  memcpy(&v, kv->raw, 1); s = v; break; }
    case LM_GGUF_I16: { int16_t v; memcpy(&v, kv->raw, 2); s = v; break; }
    case LM_GGUF_I32: { int32_t v; memcpy(&v, kv->raw, 4); s = v; break; }
    default:          { memcpy(&s, kv->raw, 8); break; }
    }
    if (!is_signed) { *neg = 0; *mag = u; return; }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
}

/* An integer entry by key, as kv_int's sign + magnitude. */
static int find_int(const lm_gguf *g, const char *key, const gguf_kv **kv, int *neg, uint64_t *mag, lm_error *err)
{
    int rc = find_typed(g, key, INT_TYPES_MASK, "an integer", kv, err);
    if (rc) return rc;
    kv_int(*kv, neg, mag);
    return 0;
}

static int int_range_error(const gguf_kv *kv, int neg, uint64_t mag, const char *want, lm_error *err)
{
    return lm_fail(err, LOOM_ERR_TYPE, "key '%s': value %s%" PRIu64 " does not fit %s", kv->key, neg ? "-" : "", mag, want);
}

int lm_gguf_get_u32(const lm_gguf *g, const char *key, uint32_t *out, lm_error *err)
{
    const gguf_kv *kv = NULL;
    int neg;
    uint64_t mag;
    int rc = find_int(g, key, &kv, &neg, &mag, err);
    if (rc) return rc;
    if (neg || mag > UINT32_MAX) return int_range_error(kv, neg, mag, "u32", err);
    *out = (uint32_t)mag;
    return 0;
}

int lm_gguf_get_i64(const lm_gguf *g, const char *key, int64_t *out, lm_error *err)
{
    const gguf_kv *kv = NULL;
    int neg;
    uint64_t mag;
    int rc = find_int(g, key, &kv, &neg, &mag, err);
    if (rc) return rc;
    if (!neg && mag > INT64_MAX) return int_range_error(kv, neg, mag, "i64", err);
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;  /* mag <= 2^63 when negative */
    return 0;
}

int lm_gguf_get_f32(const lm_gguf *g, const char *key, float *out, lm_error *err)
{
    const gguf_kv *kv = NULL;
    int rc = find_typed(g, key, (1u << LM_GGUF_F32) | (1u << LM_GGUF_F64), "f32 or f64", &kv, err);
    if (rc) return rc;
    if (kv->type == LM_GGUF_F32) {
        memcpy(out, kv->raw, 4);
    } else {
        double d;
        memcpy(&d, kv->raw, 8);
        if (isfinite(d) && fabs(d) > FLT_MAX)  /* converting it would be undefined behaviour */
            return lm_fail(err, LOOM_ERR_TYPE, "key '%s': value %g does not fit f32", key, d);
        *out = (float)d;
    }
    return 0;
}

int lm_gguf_get_bool(const lm_gguf *g, const char *key, int *out, lm_error *err)
{
    const gguf_kv *kv = NULL;
    int rc = find_typed(g, key, 1u << LM_GGUF_BOOL, "bool", &kv, err);
    if (rc) return rc;
    *out = kv->raw[0] != 0;
    return 0;
}

int lm_gguf_get_str(const lm_gguf *g, const char *key, const char **out, lm_error *err)
{
    const gguf_kv *kv = NULL;
    int rc = find_typed(g, key, 1u << LM_GGUF_STRING, "string", &kv, err);
    if (rc) return rc;
    *out = kv->str;
    return 0;
}

int lm_gguf_opt_u32(const lm_gguf *g, const char *key, uint32_t *out, lm_error *err)
{
    if (g && key && lm_gguf_find_kv(g, key) < 0) return 0;
    return lm_gguf_get_u32(g, key, out, err);
}

int lm_gguf_opt_f32(const lm_gguf *g, const char *key, float *out, lm_error *err)
{
    if (g && key && lm_gguf_find_kv(g, key) < 0) return 0;
    return lm_gguf_get_f32(g, key, out, err);
}

int lm_gguf_opt_bool(const lm_gguf *g, const char *key, int *out, lm_error *err)
{
    if (g && key && lm_gguf_find_kv(g, key) < 0) return 0;
    return lm_gguf_get_bool(g, key, out, err);
}

int lm_gguf_get_arr(const lm_gguf *g, const char *key, const lm_gguf_array **out, lm_error *err)
{
    const gguf_kv *kv = NULL;
    int rc = find_typed(g, key, 1u << LM_GGUF_ARRAY, "array", &kv, err);
    if (rc) return rc;
    *out = kv->arr;
    return 0;
}

int lm_gguf_arr_type(const lm_gguf_array *a) { return a ? a->type : -1; }
uint64_t lm_gguf_arr_len(const lm_gguf_array *a) { return a ? a->n : 0; }
const void *lm_gguf_arr_data(const lm_gguf_array *a) { return a ? a->data : NULL; }

const char *lm_gguf_arr_str(const lm_gguf_array *a, uint64_t i)
{
    return a && a->strs && i < a->n ? a->strs[i] : NULL;
}

uint32_t lm_gguf_arr_str_len(const lm_gguf_array *a, uint64_t i)
{
    return a && a->strs && i < a->n ? a->str_lens[i] : 0;
}

const lm_gguf_array *lm_gguf_arr_at(const lm_gguf_array *a, uint64_t i)
{
    return a && a->items && i < a->n ? &a->items[i] : NULL;
}

/* ======================================================================================
 * Tensors
 * ==================================================================================== */
int64_t lm_gguf_n_tensors(const lm_gguf *g) { return g ? g->n_tensors : 0; }

const lm_gguf_tensor *lm_gguf_tensor_at(const lm_gguf *g, int64_t i)
{
    return g && i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const lm_gguf_tensor *lm_gguf_find_tensor(const lm_gguf *g, const char *name)
{
    if (!g || !name) return NULL;
    int64_t i = name_index_find(&g->tensor_ix, name, tensor_name_of, g, -1);
    return i >= 0 ? &g->tensors[i] : NULL;
}

/* "[4096, 32, 1]" (-1 shown as "*") */
static void text_add_shape(text *t, int n_dims, const int64_t *ne)
{
    text_add(t, "[");
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 0) text_add(t, "%s*", d ? ", " : "");
        else text_add(t, "%s%" PRId64, d ? ", " : "", ne[d]);
    }
    text_add(t, "]");
}

int lm_gguf_get_tensor(const lm_gguf *g, const char *name, int n_dims, const int64_t *ne,
                       const lm_gguf_tensor **out, lm_error *err)
{
    if (!g || !name || !out || (n_dims && !ne) || n_dims < 0 || n_dims > LM_GGUF_MAX_DIMS)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_gguf_get_tensor('%s'): bad arguments", name ? name : "(null)");
    const lm_gguf_tensor *t = lm_gguf_find_tensor(g, name);
    if (!t) return lm_fail(err, LOOM_ERR_NOT_FOUND, "tensor '%s' not found", name);
    if (!lm_type_supported(t->type))
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "tensor '%s' has type id %d, which loom cannot compute with (f32, f16, bf16, q8_0)",
                       name, t->type);
    int ok = 1;
    for (int d = 0; d < LM_GGUF_MAX_DIMS; d++) {
        int64_t want = d < n_dims ? ne[d] : 1;
        if (want >= 0 && t->ne[d] != want) ok = 0;
    }
    if (!ok) {
        char got[96], exp[96];
        text a = {got, sizeof got, 0, 0}, b = {exp, sizeof exp, 0, 0};
        text_add_shape(&a, t->n_dims, t->ne);
        text_add_shape(&b, n_dims, ne);
        return lm_fail(err, LOOM_ERR_TYPE, "tensor '%s' has shape %s, expected %s", name, got, exp);
    }
    size_t elem_align = t->type == LOOM_TYPE_F32 ? 4 : 2;  /* q8_0 blocks start with an f16 */
    if ((uintptr_t)t->data % elem_align)
        return lm_fail(err, LOOM_ERR_FORMAT, "tensor '%s': data is not %zu-byte aligned in memory", name, elem_align);
    *out = t;
    return 0;
}

/* ======================================================================================
 * Writer
 * ==================================================================================== */
typedef struct bytes {
    unsigned char *p;
    size_t len, cap;
    int    oom;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->oom) return;
    if (n > SIZE_MAX - b->len) { b->oom = 1; return; }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(bytes *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(bytes *b, uint64_t v) { put(b, &v, 8); }
static void put_str(bytes *b, const char *s)
{
    size_t n = strlen(s);
    put_u64(b, n);
    put(b, s, n);
}

typedef struct wkv {
    char   *key;
    int     type;
    bytes   val;    /* serialized value (after the type id) */
} wkv;

typedef struct wtensor {
    char    *name;
    int      type, n_dims;
    int64_t  ne[LM_GGUF_MAX_DIMS];
    void    *data;     /* owned copy, or NULL when fill produces the bytes at write time */
    size_t   n_bytes;
    lm_gguf_fill_fn fill;
    void    *fill_user;
} wtensor;

struct lm_gguf_writer {
    wkv     *kv;
    size_t   n_kv, cap_kv;
    wtensor *t;
    size_t   n_t, cap_t;
};

lm_gguf_writer *lm_gguf_writer_create(void) { return calloc(1, sizeof(lm_gguf_writer)); }

void lm_gguf_writer_free(lm_gguf_writer **pw)
{
    if (!pw || !*pw) return;
    lm_gguf_writer *w = *pw;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val.p);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
    *pw = NULL;
}

/* Store (or replace) key with a serialized value; takes ownership of val.p. */
static int set_value(lm_gguf_writer *w, const char *key, int type, bytes val)
{
    if (!w || !key || val.oom) {
        free(val.p);
        return val.oom ? LOOM_ERR_NO_MEMORY : LOOM_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key)) continue;
        free(w->kv[i].val.p);
        w->kv[i].type = type;
        w->kv[i].val = val;
        return 0;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *kv = realloc(w->kv, cap * sizeof *kv);
        if (!kv) { free(val.p); return LOOM_ERR_NO_MEMORY; }
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) { free(val.p); return LOOM_ERR_NO_MEMORY; }
    w->kv[w->n_kv++] = (wkv){k, type, val};
    return 0;
}

static int set_scalar(lm_gguf_writer *w, const char *key, int type, const void *v)
{
    bytes b = {0};
    put(&b, v, vtype_size(type));
    return set_value(w, key, type, b);
}

int lm_gguf_set_u8(lm_gguf_writer *w, const char *key, uint8_t v) { return set_scalar(w, key, LM_GGUF_U8, &v); }
int lm_gguf_set_i8(lm_gguf_writer *w, const char *key, int8_t v) { return set_scalar(w, key, LM_GGUF_I8, &v); }
int lm_gguf_set_u16(lm_gguf_writer *w, const char *key, uint16_t v) { return set_scalar(w, key, LM_GGUF_U16, &v); }
int lm_gguf_set_i16(lm_gguf_writer *w, const char *key, int16_t v) { return set_scalar(w, key, LM_GGUF_I16, &v); }
int lm_gguf_set_u32(lm_gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, LM_GGUF_U32, &v); }
int lm_gguf_set_i32(lm_gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, LM_GGUF_I32, &v); }
int lm_gguf_set_u64(lm_gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, LM_GGUF_U64, &v); }
int lm_gguf_set_i64(lm_gguf_writer *w, const char *key, int64_t v) { return set_scalar(w, key, LM_GGUF_I64, &v); }
int lm_gguf_set_f32(lm_gguf_writer *w, const char *key, float v) { return set_scalar(w, key, LM_GGUF_F32, &v); }
int lm_gguf_set_f64(lm_gguf_writer *w, const char *key, double v) { return set_scalar(w, key, LM_GGUF_F64, &v); }

int lm_gguf_set_bool(lm_gguf_writer *w, const char *key, int v)
{
    uint8_t b = v != 0;
    return set_scalar(w, key, LM_GGUF_BOOL, &b);
}

int lm_gguf_set_str(lm_gguf_writer *w, const char *key, const char *v)
{
    if (!v) return LOOM_ERR_INVALID_ARG;
    bytes b = {0};
    put_str(&b, v);
    return set_value(w, key, LM_GGUF_STRING, b);
}

/* Element type + count + packed numeric values. */
static int put_numeric_array(bytes *b, int elem_type, const void *data, uint64_t n)
{
    size_t es = vtype_size(elem_type);
    if (!es || (n && !data) || n > SIZE_MAX / es) return LOOM_ERR_INVALID_ARG;
    put_u32(b, (uint32_t)elem_type);
    put_u64(b, n);
    put(b, data, (size_t)n * es);
    return 0;
}

int lm_gguf_set_arr(lm_gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n)
{
    bytes b = {0};
    int rc = put_numeric_array(&b, elem_type, data, n);
    if (rc) { free(b.p); return rc; }
    return set_value(w, key, LM_GGUF_ARRAY, b);
}

int lm_gguf_set_arr_str(lm_gguf_writer *w, const char *key, const char *const *v, uint64_t n)
{
    if (n && !v) return LOOM_ERR_INVALID_ARG;
    bytes b = {0};
    put_u32(&b, LM_GGUF_STRING);
    put_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) {
        if (!v[i]) { free(b.p); return LOOM_ERR_INVALID_ARG; }
        put_str(&b, v[i]);
    }
    return set_value(w, key, LM_GGUF_ARRAY, b);
}

int lm_gguf_set_arr_nested(lm_gguf_writer *w, const char *key, int elem_type,
                           const void *const *data, const uint64_t *len, uint64_t n)
{
    if (n && (!data || !len)) return LOOM_ERR_INVALID_ARG;
    bytes b = {0};
    put_u32(&b, LM_GGUF_ARRAY);
    put_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) {
        int rc = put_numeric_array(&b, elem_type, data[i], len[i]);
        if (rc) { free(b.p); return rc; }
    }
    return set_value(w, key, LM_GGUF_ARRAY, b);
}

/* Append a tensor entry (name, shape, size) after checking it; data is the caller's. */
static int add_entry(lm_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                     wtensor **out)
{
    if (!w || !name || !ne || n_dims < 1 || n_dims > LM_GGUF_MAX_DIMS || !lm_type_supported(type))
        return LOOM_ERR_INVALID_ARG;
    wtensor t = {.type = type, .n_dims = n_dims};
    for (int d = 0; d < LM_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 0) return LOOM_ERR_INVALID_ARG;
    }
    int ok;
    uint64_t nb = tensor_bytes(type, t.ne, &ok);
    if (!ok || nb > SIZE_MAX) return LOOM_ERR_INVALID_ARG;
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return LOOM_ERR_INVALID_ARG;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 16;
        wtensor *p = realloc(w->t, cap * sizeof *p);
        if (!p) return LOOM_ERR_NO_MEMORY;
        w->t = p;
        w->cap_t = cap;
    }
    t.n_bytes = (size_t)nb;
    if (!(t.name = strdup(name))) return LOOM_ERR_NO_MEMORY;
    w->t[w->n_t] = t;
    *out = &w->t[w->n_t++];
    return 0;
}

int lm_gguf_add_tensor(lm_gguf_writer *w, const char *name, int type, int n_dims,
                       const int64_t *ne, const void *data)
{
    wtensor *t;
    int rc = add_entry(w, name, type, n_dims, ne, &t);
    if (rc < 0) return rc;
    rc = t->n_bytes && !data ? LOOM_ERR_INVALID_ARG : 0;
    if (rc == 0 && !(t->data = malloc(t->n_bytes ? t->n_bytes : 1))) rc = LOOM_ERR_NO_MEMORY;
    if (rc < 0) {  /* take the entry back */
        free(t->name);
        w->n_t--;
        return rc;
    }
    if (t->n_bytes) memcpy(t->data, data, t->n_bytes);
    return 0;
}

int lm_gguf_add_tensor_fill(lm_gguf_writer *w, const char *name, int type, int n_dims,
                            const int64_t *ne, lm_gguf_fill_fn fill, void *user)
{
    if (!fill) return LOOM_ERR_INVALID_ARG;
    wtensor *t;
    int rc = add_entry(w, name, type, n_dims, ne, &t);
    if (rc < 0) return rc;
    t->fill = fill;
    t->fill_user = user;
    return 0;
}

int lm_gguf_copy_kv(lm_gguf_writer *w, const lm_gguf *g, int64_t i)
{
    if (!w || !g || i < 0 || i >= g->n_kv) return LOOM_ERR_INVALID_ARG;
    const gguf_kv *kv = &g->kv[i];
    bytes b = {0};
    put(&b, kv->val, (size_t)kv->val_len);
    return set_value(w, kv->key, kv->type, b);
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static const unsigned char ZEROS[256];  /* alignment padding source */

static void put_zeros(bytes *b, uint64_t n)
{
    for (size_t k; n; n -= k) {
        k = n < sizeof ZEROS ? (size_t)n : sizeof ZEROS;
        put(b, ZEROS, k);
    }
}

static int write_zeros(FILE *f, uint64_t n)
{
    for (size_t k; n; n -= k) {
        k = n < sizeof ZEROS ? (size_t)n : sizeof ZEROS;
        if (fwrite(ZEROS, 1, k, f) != k) return 0;
    }
    return 1;
}

int lm_gguf_write(lm_gguf_writer *w, const char *path, lm_error *err)
{
    if (!w || !path) return lm_fail(err, LOOM_ERR_INVALID_ARG, "lm_gguf_write: NULL argument");
    uint32_t alignment = LM_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment")) continue;
        if (w->kv[i].type != LM_GGUF_U32)
            return lm_fail(err, LOOM_ERR_INVALID_ARG, "%s: general.alignment must be a u32", path);
        memcpy(&alignment, w->kv[i].val.p, 4);
        if (!is_pow2(alignment))
            return lm_fail(err, LOOM_ERR_INVALID_ARG, "%s: general.alignment %" PRIu32 " is not a power of two", path, alignment);
    }

    bytes head = {0};
    put_u32(&head, LM_GGUF_MAGIC);
    put_u32(&head, 3);
    put_u64(&head, w->n_t);
    put_u64(&head, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&head, w->kv[i].key);
        put_u32(&head, (uint32_t)w->kv[i].type);
        put(&head, w->kv[i].val.p, w->kv[i].val.len);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        offset = align_up(offset, alignment);
        put_str(&head, t->name);
        put_u32(&head, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(&head, (uint64_t)t->ne[d]);
        put_u32(&head, (uint32_t)t->type);
        put_u64(&head, offset);
        offset += t->n_bytes;
    }
    put_zeros(&head, align_up(head.len, alignment) - head.len);
    if (head.oom) {
        free(head.p);
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "%s: out of memory serializing metadata", path);
    }

    lm_outfile o;
    int rc = lm_outfile_open(&o, path, err);
    if (rc < 0) {
        free(head.p);
        return rc;
    }
    int ok = fwrite(head.p, 1, head.len, o.f) == head.len;
    free(head.p);
    size_t fill_max = 0;  /* one buffer serves every filled tensor */
    for (size_t i = 0; i < w->n_t; i++)
        if (w->t[i].fill && w->t[i].n_bytes > fill_max) fill_max = w->t[i].n_bytes;
    void *buf = fill_max ? malloc(fill_max) : NULL;
    if (fill_max && !buf) {
        lm_outfile_abort(&o);
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "%s: no memory for a tensor of %zu bytes", path, fill_max);
    }
    offset = 0;
    for (size_t i = 0; ok && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        const void *data = t->data;
        if (t->fill) {
            if ((rc = t->fill(t->fill_user, buf, t->n_bytes, err)) < 0) {
                free(buf);
                lm_outfile_abort(&o);
                return rc;
            }
            data = buf;
        }
        ok = write_zeros(o.f, align_up(offset, alignment) - offset);
        offset = align_up(offset, alignment);
        ok = ok && fwrite(data, 1, t->n_bytes, o.f) == t->n_bytes;
        offset += t->n_bytes;
    }
    free(buf);
    if ((rc = lm_outfile_commit(&o, ok, err)) < 0) return rc;
    lm_error_clear(err);
    return 0;
}
