/*
 * GGUF v3 reader (mmap, validated) and writer.
 *
 * The reader trusts nothing in the file: every count, string length, dimension, offset and
 * byte size is checked against the file size and for integer overflow before it is used.
 * Keys, string values and tensor names are copied out as NUL-terminated strings owned by
 * the lm_gguf; tensor data and numeric arrays point into the mapping.
 */
#ifndef LM_GGUF_H
#define LM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "lib/core/error.h"
#include "lib/core/types.h"

#define LM_GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define LM_GGUF_DEFAULT_ALIGNMENT 32
#define LM_GGUF_MAX_DIMS 4

typedef enum lm_gguf_vtype {
    LM_GGUF_U8 = 0, LM_GGUF_I8 = 1, LM_GGUF_U16 = 2, LM_GGUF_I16 = 3,
    LM_GGUF_U32 = 4, LM_GGUF_I32 = 5, LM_GGUF_F32 = 6, LM_GGUF_BOOL = 7,
    LM_GGUF_STRING = 8, LM_GGUF_ARRAY = 9, LM_GGUF_U64 = 10, LM_GGUF_I64 = 11,
    LM_GGUF_F64 = 12,
    LM_GGUF_VTYPE_COUNT
} lm_gguf_vtype;

const char *lm_gguf_vtype_name(int vtype); /* "u32", "string", "array", …; "?" if unknown */

typedef struct lm_gguf lm_gguf;

typedef struct lm_gguf_tensor {
    const char *name;                 /* owned by the lm_gguf                     */
    int         type;                 /* ggml type id (may be one loom can't use)  */
    int         n_dims;               /* 1..4                                      */
    int64_t     ne[LM_GGUF_MAX_DIMS]; /* ne[0] fastest; unused dims are 1          */
    uint64_t    offset;               /* from the start of the data section        */
    uint64_t    n_bytes;              /* 0 if the type is unknown to loom          */
    const void *data;                 /* into the mapping; NULL if type unknown    */
} lm_gguf_tensor;

/* Open and validate a file (mmap, read-only). */
int  lm_gguf_open(const char *path, lm_gguf **out, lm_error *err);
/* Validate a buffer the caller keeps alive for the lifetime of the result (fuzzing, tests). */
int  lm_gguf_open_memory(const void *buf, size_t size, lm_gguf **out, lm_error *err);
void lm_gguf_close(lm_gguf **g);

uint32_t lm_gguf_version(const lm_gguf *g);
uint32_t lm_gguf_alignment(const lm_gguf *g);
uint64_t lm_gguf_file_size(const lm_gguf *g);

/* --- metadata ------------------------------------------------------------------------ */
int64_t     lm_gguf_n_kv(const lm_gguf *g);
const char *lm_gguf_kv_key(const lm_gguf *g, int64_t i);
int         lm_gguf_kv_type(const lm_gguf *g, int64_t i);       /* lm_gguf_vtype */
int64_t     lm_gguf_find_kv(const lm_gguf *g, const char *key); /* index or -1   */
/* Human-readable value of entry i into buf (arrays: type, count and first items). */
const char *lm_gguf_kv_to_str(const lm_gguf *g, int64_t i, char *buf, size_t size);

/* Typed getters. Missing key → LOOM_ERR_NOT_FOUND, wrong type (or an integer that does not
 * fit the requested type) → LOOM_ERR_TYPE; the message names the key. Integer getters
 * accept any integer vtype whose value fits; float getters accept f32 and f64. */
int lm_gguf_get_u32(const lm_gguf *g, const char *key, uint32_t *out, lm_error *err);
int lm_gguf_get_i64(const lm_gguf *g, const char *key, int64_t *out, lm_error *err);
int lm_gguf_get_f32(const lm_gguf *g, const char *key, float *out, lm_error *err);
int lm_gguf_get_bool(const lm_gguf *g, const char *key, int *out, lm_error *err);
int lm_gguf_get_str(const lm_gguf *g, const char *key, const char **out, lm_error *err);
/* Same, but a missing key leaves *out untouched and returns 0 (optional keys). */
int lm_gguf_opt_u32(const lm_gguf *g, const char *key, uint32_t *out, lm_error *err);
int lm_gguf_opt_f32(const lm_gguf *g, const char *key, float *out, lm_error *err);
int lm_gguf_opt_bool(const lm_gguf *g, const char *key, int *out, lm_error *err);

/* Arrays. For numeric element types, *data points at n packed little-endian values, aligned
 * for the element type (into the mapping, or a copy owned by the lm_gguf when the file's copy
 * is misaligned); for strings use lm_gguf_arr_str. Nested arrays: elements are themselves arrays,
 * reachable with lm_gguf_arr_at. */
typedef struct lm_gguf_array lm_gguf_array;  /* owned by the lm_gguf */
int lm_gguf_get_arr(const lm_gguf *g, const char *key, const lm_gguf_array **out, lm_error *err);
int         lm_gguf_arr_type(const lm_gguf_array *a);   /* element vtype */
uint64_t    lm_gguf_arr_len(const lm_gguf_array *a);
const void *lm_gguf_arr_data(const lm_gguf_array *a);   /* numeric elements, else NULL */
const char *lm_gguf_arr_str(const lm_gguf_array *a, uint64_t i);           /* NULL if not */
uint32_t    lm_gguf_arr_str_len(const lm_gguf_array *a, uint64_t i);       /* bytes       */
const lm_gguf_array *lm_gguf_arr_at(const lm_gguf_array *a, uint64_t i);   /* nested      */

/* --- tensors ------------------------------------------------------------------------- */
int64_t               lm_gguf_n_tensors(const lm_gguf *g);
const lm_gguf_tensor *lm_gguf_tensor_at(const lm_gguf *g, int64_t i);
const lm_gguf_tensor *lm_gguf_find_tensor(const lm_gguf *g, const char *name); /* or NULL */
/* Look up a tensor and check it: n_dims dims must equal ne[0..n_dims-1] (a -1 entry
 * matches anything); trailing dims of the file tensor must be 1. The type must be one loom
 * computes with. Errors name the tensor and what was expected. */
int lm_gguf_get_tensor(const lm_gguf *g, const char *name, int n_dims, const int64_t *ne,
                       const lm_gguf_tensor **out, lm_error *err);

/* --- writer -------------------------------------------------------------------------- */
typedef struct lm_gguf_writer lm_gguf_writer;

lm_gguf_writer *lm_gguf_writer_create(void);    /* NULL on out-of-memory */
void            lm_gguf_writer_free(lm_gguf_writer **w);

/* Setting a key twice replaces it. Values and arrays are copied. */
int lm_gguf_set_u8(lm_gguf_writer *w, const char *key, uint8_t v);
int lm_gguf_set_i8(lm_gguf_writer *w, const char *key, int8_t v);
int lm_gguf_set_u16(lm_gguf_writer *w, const char *key, uint16_t v);
int lm_gguf_set_i16(lm_gguf_writer *w, const char *key, int16_t v);
int lm_gguf_set_u32(lm_gguf_writer *w, const char *key, uint32_t v);
int lm_gguf_set_i32(lm_gguf_writer *w, const char *key, int32_t v);
int lm_gguf_set_u64(lm_gguf_writer *w, const char *key, uint64_t v);
int lm_gguf_set_i64(lm_gguf_writer *w, const char *key, int64_t v);
int lm_gguf_set_f32(lm_gguf_writer *w, const char *key, float v);
int lm_gguf_set_f64(lm_gguf_writer *w, const char *key, double v);
int lm_gguf_set_bool(lm_gguf_writer *w, const char *key, int v);
int lm_gguf_set_str(lm_gguf_writer *w, const char *key, const char *v);
/* Numeric array of `n` elements of `elem_type` (not string/array). */
int lm_gguf_set_arr(lm_gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n);
int lm_gguf_set_arr_str(lm_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
/* Array of `n` numeric arrays: element i has len[i] values of `elem_type` at data[i]. */
int lm_gguf_set_arr_nested(lm_gguf_writer *w, const char *key, int elem_type,
                           const void *const *data, const uint64_t *len, uint64_t n);

/* Add a tensor; `data` (lm_row_bytes(type, ne[0]) * ne[1] * ne[2] * ne[3] bytes) is copied. */
int lm_gguf_add_tensor(lm_gguf_writer *w, const char *name, int type, int n_dims,
                       const int64_t *ne, const void *data);

/* A tensor whose bytes are made while the file is written: fill(user, dst, n_bytes, err)
 * writes all n_bytes into dst (a buffer lm_gguf_write owns and reuses) and returns 0, or a
 * negative LOOM_ERR_* with err set, which abandons the file. Memory stays at the largest
 * filled tensor instead of the whole model (loom_quantize). */
typedef int (*lm_gguf_fill_fn)(void *user, void *dst, size_t n_bytes, lm_error *err);
int lm_gguf_add_tensor_fill(lm_gguf_writer *w, const char *name, int type, int n_dims,
                            const int64_t *ne, lm_gguf_fill_fn fill, void *user);

/* Copy key i of `g` with its value, whatever its type (nested arrays too), byte for byte. */
int lm_gguf_copy_kv(lm_gguf_writer *w, const lm_gguf *g, int64_t i);

/* Write the file (alignment from "general.alignment" if set, which must be a u32 power of
 * two, else 32), atomically (lib/core/outfile.h): a failure leaves no partial file and an
 * existing file at `path` untouched. */
int lm_gguf_write(lm_gguf_writer *w, const char *path, lm_error *err);

#endif
