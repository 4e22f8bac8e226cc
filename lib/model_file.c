/* Public "Model files" API (include/loom.h): read-only inspection over lib/core/gguf. */
#include <stdio.h>
#include <stdlib.h>

#include "lib/core/gguf.h"

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
