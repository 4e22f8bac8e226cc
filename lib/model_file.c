/* Public "Model files" API (include/loom.h): inspection and type conversion over lib/core/gguf. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/core/gguf.h"
#include "lib/core/kernels.h"
#include "lib/core/threadpool.h"

struct loom_file {
    lm_gguf *g;   /* owned */
};

int loom_file_open(const char *path, loom_file **out, char *err, size_t err_size)
{
    lm_error e = {0};
    int rc;
    if (err && err_size) err[0] = '\0';
    if (!out || !path) {
        rc = lm_fail(&e, LOOM_ERR_INVALID_ARG, "loom_file_open: NULL argument");
    } else {
        *out = NULL;
        loom_file *f = calloc(1, sizeof *f);
        if (!f) {
            rc = lm_fail(&e, LOOM_ERR_NO_MEMORY, "out of memory");
        } else if ((rc = lm_gguf_open(path, &f->g, &e)) < 0) {
            free(f);
        } else {
            *out = f;
        }
    }
    if (rc < 0 && err && err_size) snprintf(err, err_size, "%s", e.msg);
    return rc;
}

void loom_file_close(loom_file **f)
{
    if (!f || !*f) return;
    lm_gguf_close(&(*f)->g);
    free(*f);
    *f = NULL;
}

uint32_t loom_file_version(const loom_file *f) { return f ? lm_gguf_version(f->g) : 0; }
uint32_t loom_file_alignment(const loom_file *f) { return f ? lm_gguf_alignment(f->g) : 0; }
int64_t loom_file_n_kv(const loom_file *f) { return f ? lm_gguf_n_kv(f->g) : 0; }
const char *loom_file_kv_key(const loom_file *f, int64_t i) { return f ? lm_gguf_kv_key(f->g, i) : NULL; }

const char *loom_file_kv_str(const loom_file *f, int64_t i, char *buf, size_t buf_size)
{
    if (!f) {
        if (buf && buf_size) buf[0] = '\0';
        return buf;
    }
    return lm_gguf_kv_to_str(f->g, i, buf, buf_size);
}

const char *loom_file_kv_type(const loom_file *f, int64_t i)
{
    return lm_gguf_vtype_name(f ? lm_gguf_kv_type(f->g, i) : -1);
}

int64_t loom_file_n_tensors(const loom_file *f) { return f ? lm_gguf_n_tensors(f->g) : 0; }

int loom_file_tensor(const loom_file *f, int64_t i, loom_tensor_info *out)
{
    const lm_gguf_tensor *t = f ? lm_gguf_tensor_at(f->g, i) : NULL;
    if (!t || !out) return LOOM_ERR_INVALID_ARG;
    out->name = t->name;
    out->type = t->type;
    out->n_dims = t->n_dims;
    for (int d = 0; d < 4; d++) out->ne[d] = t->ne[d];
    out->offset = t->offset;
    out->n_bytes = t->n_bytes;
    return 0;
}

/* ---- loom_quantize ----------------------------------------------------------------- */

loom_quantize_params loom_quantize_default_params(void)
{
    return (loom_quantize_params){.type = LOOM_TYPE_Q8_0};
}

/* llama.cpp's general.file_type for a file whose matrices are `type` (llama_ftype). */
static uint32_t file_type_of(int type)
{
    switch (type) {
    case LOOM_TYPE_F32:  return 0;
    case LOOM_TYPE_F16:  return 1;
    case LOOM_TYPE_Q8_0: return 7;
    default:             return 32;   /* BF16 */
    }
}

static int ends_with(const char *s, const char *end)
{
    size_t n = strlen(s), k = strlen(end);
    return n >= k && !strcmp(s + n - k, end);
}

/* Whether tensor t becomes `type`, by llama-quantize's rules for the tensors loom's files
 * hold: a weight matrix (or stack of them) of a type loom reads, with rows of whole blocks of
 * `type`; not a norm, a position embedding (added to every row) or a MoE router (its
 * choices flip on small roundings). */
static int converts(const lm_gguf_tensor *t, int type)
{
    return t->n_dims >= 2 && t->type != type && t->ne[0] % lm_type_block_len(type) == 0 &&
           ends_with(t->name, "weight") && !strstr(t->name, "_norm.weight") &&
           !strstr(t->name, "position_embd") && !ends_with(t->name, "ffn_gate_inp.weight");
}

typedef struct convert_job {
    const lm_gguf_tensor *t;
    int      type;     /* target */
    lm_pool *pool;     /* shared by every tensor */
    void    *dst;      /* the tensor's converted bytes, during fill_converted */
    loom_quantize_params p;
    int64_t *done;     /* tensors converted so far, shared */
    int64_t  total;
} convert_job;

enum { CONVERT_CHUNK = 256 };   /* values widened at a time: a multiple of every block length */

/* lm_range_fn: rows [lo, hi) of the job's tensor, widened to f32 a chunk at a time and
 * rounded to the target type. A row's last chunk is whole blocks whenever either side is
 * Q8_0 (its rows are whole blocks of 32), so every chunk starts on a block. */
static void convert_rows(void *arg, long long lo, long long hi)
{
    const convert_job *j = arg;
    const lm_gguf_tensor *t = j->t;
    const int64_t n = t->ne[0];
    const size_t in_row = lm_row_bytes(t->type, n), out_row = lm_row_bytes(j->type, n);
    float tmp[CONVERT_CHUNK];
    for (long long r = lo; r < hi; r++) {
        const char *src = (const char *)t->data + (size_t)r * in_row;
        char *dst = (char *)j->dst + (size_t)r * out_row;
        if (t->type == LOOM_TYPE_F32 && (uintptr_t)src % sizeof(float) == 0) {   /* round in place */
            lm_row_from_f32_fast(j->type, (const float *)src, dst, n);
            continue;
        }
        for (int64_t c = 0; c < n; c += CONVERT_CHUNK) {
            const int64_t k = n - c < CONVERT_CHUNK ? n - c : CONVERT_CHUNK;
            lm_row_to_f32_fast(t->type, src + lm_row_bytes(t->type, c), tmp, k);
            lm_row_from_f32_fast(j->type, tmp, dst + lm_row_bytes(j->type, c), k);
        }
    }
}

/* lm_gguf_fill_fn: the tensor converted, its rows shared among the pool's threads. */
static int fill_converted(void *user, void *dst, size_t n_bytes, lm_error *err)
{
    convert_job *j = user;
    (void)n_bytes;  /* = lm_row_bytes(type, ne[0]) · rows: the writer sized it from the same shape */
    (void)err;
    j->dst = dst;
    lm_pool_for(j->pool, j->t->ne[1] * j->t->ne[2] * j->t->ne[3], 16, convert_rows, j);
    j->dst = NULL;
    if (j->p.on_progress) j->p.on_progress(++*j->done, j->total, j->p.user_data);
    return 0;
}

/* The tensors in `in` order, converted or referenced, and every key. */
static int quantize_plan(const lm_gguf *g, lm_gguf_writer *w, convert_job *jobs, loom_quantize_stats *st,
                         lm_error *e)
{
    const int type = jobs[0].type;
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < lm_gguf_n_kv(g); i++)
        if (lm_gguf_copy_kv(w, g, i) < 0) rc = lm_fail(e, LOOM_ERR_NO_MEMORY, "out of memory copying key '%s'", lm_gguf_kv_key(g, i));
    /* as llama-quantize writes them: the file type, and ggml's quantization format version */
    if (rc == 0 && (lm_gguf_set_u32(w, "general.file_type", file_type_of(type)) < 0 ||
                    lm_gguf_set_u32(w, "general.quantization_version", 2) < 0))
        rc = lm_fail(e, LOOM_ERR_NO_MEMORY, "out of memory");
    for (int64_t i = 0; rc == 0 && i < lm_gguf_n_tensors(g); i++) {
        const lm_gguf_tensor *t = lm_gguf_tensor_at(g, i);
        if (!t->data)
            return lm_fail(e, LOOM_ERR_UNSUPPORTED, "tensor '%s' has ggml type %d, which loom cannot read (it converts f32, f16, bf16 and q8_0)",
                           t->name, t->type);
        st->n_tensors++;
        st->bytes_in += t->n_bytes;
        if (!converts(t, type)) {
            st->bytes_out += t->n_bytes;
            if (lm_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data) < 0)
                rc = lm_fail(e, LOOM_ERR_NO_MEMORY, "out of memory copying tensor '%s'", t->name);
            continue;
        }
        convert_job *j = &jobs[st->n_converted++];
        *j = (convert_job){.t = t, .type = type, .pool = jobs[0].pool, .p = jobs[0].p, .done = jobs[0].done};
        st->bytes_out += lm_row_bytes(type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        if (lm_gguf_add_tensor_fill(w, t->name, type, t->n_dims, t->ne, fill_converted, j) < 0)
            rc = lm_fail(e, LOOM_ERR_NO_MEMORY, "out of memory for tensor '%s'", t->name);
    }
    for (int64_t k = 0; k < st->n_converted; k++) jobs[k].total = st->n_converted;
    return rc;
}

int loom_quantize(const char *in_path, const char *out_path, loom_quantize_params p,
                  loom_quantize_stats *stats, char *err, size_t err_size)
{
    lm_error e = {0};
    lm_gguf *g = NULL;
    lm_gguf_writer *w = NULL;
    convert_job *jobs = NULL;
    loom_quantize_stats st = {0};
    struct stat si, so;
    int64_t done = 0;
    int rc = 0;
    if (err && err_size) err[0] = '\0';
    if (!in_path || !out_path)
        rc = lm_fail(&e, LOOM_ERR_INVALID_ARG, "loom_quantize: NULL path");
    else if (p.type != LOOM_TYPE_F32 && p.type != LOOM_TYPE_F16 && p.type != LOOM_TYPE_BF16 && p.type != LOOM_TYPE_Q8_0)
        rc = lm_fail(&e, LOOM_ERR_INVALID_ARG, "loom_quantize: type %d is not f32, f16, bf16 or q8_0", p.type);
    else if (stat(in_path, &si) == 0 && stat(out_path, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
        rc = lm_fail(&e, LOOM_ERR_INVALID_ARG, "%s: the output is the input file; write the converted model elsewhere", out_path);
    if (rc == 0) rc = lm_gguf_open(in_path, &g, &e);
    if (rc == 0) {
        w = lm_gguf_writer_create();
        jobs = calloc((size_t)lm_gguf_n_tensors(g) + 1, sizeof *jobs);
        lm_pool *pool = lm_pool_create(p.n_threads);
        if (!w || !jobs || !pool) {
            lm_pool_free(&pool);
            rc = lm_fail(&e, LOOM_ERR_NO_MEMORY, "out of memory");
        } else {
            jobs[0] = (convert_job){.type = p.type, .pool = pool, .p = p, .done = &done};
        }
    }
    if (rc == 0) rc = quantize_plan(g, w, jobs, &st, &e);
    if (rc == 0) rc = lm_gguf_write(w, out_path, &e);
    if (jobs) lm_pool_free(&jobs[0].pool);
    free(jobs);
    lm_gguf_writer_free(&w);
    lm_gguf_close(&g);
    if (rc == 0 && stats) *stats = st;
    if (rc < 0 && err && err_size) snprintf(err, err_size, "%s", e.msg);
    return rc;
}
