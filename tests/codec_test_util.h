/*
 * Helpers shared by the media-codec parity tests (test_vq_parity.c, test_audio_codec_parity.c):
 * CHECK counting, fixture tensors as floats, and a GGUF rewriter that produces damaged copies
 * of a model (a tensor dropped, reshaped or added, a key changed) for the loader's error paths.
 */
#ifndef CODEC_TEST_UTIL_H
#define CODEC_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/core/gguf.h"
#include "lib/core/types.h"
#include "tests/check.h"

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        printf("out of memory\n");
        exit(2);
    }
    return p;
}

/* An F32 fixture tensor with exactly n values (pointer into the mapping), or NULL + FAIL. */
static inline const float *fixture(const lm_gguf *g, const char *name, int64_t n)
{
    const lm_gguf_tensor *t = lm_gguf_find_tensor(g, name);
    int64_t have = t ? t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3] : -1;
    CHECK(t && t->type == LOOM_TYPE_F32 && have == n, "fixture tensor '%s': want %lld f32 values, have %lld", name,
          (long long)n, (long long)have);
    return t && t->type == LOOM_TYPE_F32 && have == n ? t->data : NULL;
}

static inline float fixture_f32(const lm_gguf *g, const char *key, float dflt)
{
    float v = dflt;
    lm_gguf_opt_f32(g, key, &v, NULL);
    return v;
}

static inline float max_abs_diff(const float *a, const float *b, int64_t n)
{
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d;   /* NaN propagates as a failure */
    }
    return m;
}

/* What to change while copying a model file. */
typedef struct gguf_edit {
    const char *drop_tensor;      /* leave this tensor out                         */
    const char *flatten_tensor;   /* write this tensor as 1-D (same values)         */
    const char *extra_tensor;     /* add a 1-D f32 tensor of 4 zeros with this name */
    const char *u32_key;          /* set this u32 key to u32_val                    */
    uint32_t    u32_val;
    const char *drop_key;         /* leave this key out                             */
} gguf_edit;

/* Add every key and tensor of g to w with `ed` applied. 0 on success. Handles the key types
 * the codec and encoder files use (u32, f32, bool, string, numeric arrays). */
static inline int gguf_copy_into(lm_gguf_writer *w, const lm_gguf *g, const gguf_edit *ed)
{
    int rc = w ? 0 : -1;
    for (int64_t i = 0; rc == 0 && i < lm_gguf_n_kv(g); i++) {
        const char *key = lm_gguf_kv_key(g, i);
        if (ed->drop_key && !strcmp(key, ed->drop_key)) continue;
        switch (lm_gguf_kv_type(g, i)) {
        case LM_GGUF_U32: {
            uint32_t v = 0;
            rc = lm_gguf_get_u32(g, key, &v, NULL);
            if (ed->u32_key && !strcmp(key, ed->u32_key)) v = ed->u32_val;
            if (!rc) rc = lm_gguf_set_u32(w, key, v);
            break;
        }
        case LM_GGUF_F32: {
            float v = 0;
            rc = lm_gguf_get_f32(g, key, &v, NULL);
            if (!rc) rc = lm_gguf_set_f32(w, key, v);
            break;
        }
        case LM_GGUF_BOOL: {
            int v = 0;
            rc = lm_gguf_get_bool(g, key, &v, NULL);
            if (!rc) rc = lm_gguf_set_bool(w, key, v);
            break;
        }
        case LM_GGUF_STRING: {
            const char *v = NULL;
            rc = lm_gguf_get_str(g, key, &v, NULL);
            if (!rc) rc = lm_gguf_set_str(w, key, v);
            break;
        }
        case LM_GGUF_ARRAY: {
            const lm_gguf_array *a = NULL;
            rc = lm_gguf_get_arr(g, key, &a, NULL);
            if (!rc) rc = lm_gguf_set_arr(w, key, lm_gguf_arr_type(a), lm_gguf_arr_data(a), lm_gguf_arr_len(a));
            break;
        }
        default:
            rc = -1;
        }
    }
    for (int64_t i = 0; rc == 0 && i < lm_gguf_n_tensors(g); i++) {
        const lm_gguf_tensor *t = lm_gguf_tensor_at(g, i);
        if (ed->drop_tensor && !strcmp(t->name, ed->drop_tensor)) continue;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        int n_dims = t->n_dims;
        if (ed->flatten_tensor && !strcmp(t->name, ed->flatten_tensor)) {
            ne[0] = ne[0] * ne[1] * ne[2] * ne[3];
            ne[1] = ne[2] = ne[3] = 1;
            n_dims = 1;
        }
        rc = lm_gguf_add_tensor(w, t->name, t->type, n_dims, ne, t->data);
    }
    return rc;
}

/* Copy `src` to `dst` with `ed` applied. 0 on success. */
static inline int gguf_copy_edited(const char *src, const char *dst, const gguf_edit *ed)
{
    lm_gguf *g = NULL;
    if (lm_gguf_open(src, &g, NULL) < 0) return -1;
    lm_gguf_writer *w = lm_gguf_writer_create();
    int rc = gguf_copy_into(w, g, ed);
    if (rc == 0 && ed->extra_tensor) {
        float z[4] = {0};
        rc = lm_gguf_add_tensor(w, ed->extra_tensor, LOOM_TYPE_F32, 1, (int64_t[]){4}, z);
    }
    if (rc == 0) rc = lm_gguf_write(w, dst, NULL);
    lm_gguf_writer_free(&w);
    lm_gguf_close(&g);
    return rc;
}

#endif
