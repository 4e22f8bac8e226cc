/* libFuzzer target for the GGUF reader: any input must either fail cleanly or give a handle
 * whose every entry, array element and tensor can be walked, and every key copied into a
 * writer (lm_gguf_copy_kv), without a sanitizer report. */
#include <stdint.h>
#include <string.h>

#include "lib/core/gguf.h"

static uint64_t walk_array(const lm_gguf_array *a, int depth)
{
    uint64_t h = lm_gguf_arr_len(a);
    int type = lm_gguf_arr_type(a);
    for (uint64_t i = 0; i < lm_gguf_arr_len(a) && i < 64; i++) {
        if (type == LM_GGUF_STRING) {
            const char *s = lm_gguf_arr_str(a, i);
            h += strlen(s) + lm_gguf_arr_str_len(a, i);
        } else if (type == LM_GGUF_ARRAY) {
            h += walk_array(lm_gguf_arr_at(a, i), depth + 1);
        }
    }
    const unsigned char *d = lm_gguf_arr_data(a);
    if (d && lm_gguf_arr_len(a)) h += d[0];  /* first and last byte are in bounds */
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lm_gguf *g = NULL;
    lm_error err = {0};
    if (lm_gguf_open_memory(data, size, &g, &err) != 0) return 0;
    char buf[256];
    volatile uint64_t sink = 0;
    lm_gguf_writer *w = lm_gguf_writer_create();   /* loom_quantize copies keys byte for byte */
    for (int64_t i = 0; i < lm_gguf_n_kv(g); i++) {
        const char *key = lm_gguf_kv_key(g, i);
        if (w && lm_gguf_copy_kv(w, g, i) == LOOM_ERR_INVALID_ARG) __builtin_trap();
        sink += strlen(lm_gguf_kv_to_str(g, i, buf, sizeof buf));
        if (lm_gguf_find_kv(g, key) != i) __builtin_trap();  /* keys are unique and indexed */
        uint32_t u; int64_t v; float f; int b; const char *s; const lm_gguf_array *a;
        lm_gguf_get_u32(g, key, &u, &err);
        lm_gguf_get_i64(g, key, &v, &err);
        lm_gguf_get_f32(g, key, &f, &err);
        lm_gguf_get_bool(g, key, &b, &err);
        if (lm_gguf_get_str(g, key, &s, &err) == 0) sink += strlen(s);
        if (lm_gguf_get_arr(g, key, &a, &err) == 0) sink += walk_array(a, 0);
    }
    for (int64_t i = 0; i < lm_gguf_n_tensors(g); i++) {
        const lm_gguf_tensor *t = lm_gguf_tensor_at(g, i);
        if (lm_gguf_find_tensor(g, t->name) != t) __builtin_trap();
        const lm_gguf_tensor *ok = NULL;
        int64_t any[4] = {-1, -1, -1, -1};
        if (lm_gguf_get_tensor(g, t->name, t->n_dims, any, &ok, &err) == 0 && ok->n_bytes) {
            const unsigned char *p = ok->data;
            sink += p[0] + p[ok->n_bytes - 1];  /* the whole range is inside the input */
        }
    }
    (void)sink;
    lm_gguf_writer_free(&w);
    lm_gguf_close(&g);
    return 0;
}
