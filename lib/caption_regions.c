/* Captions by region (loom.caption.*): the keys read at load, the question about one region,
 * and the caption composed from the regions' answers. */
#include <stdlib.h>
#include <string.h>

#include "lib/core/error.h"
#include "lib/core/gguf.h"
#include "lib/model.h"

#define MAX_REGIONS 64
#define MAX_PHRASE  128

static const char *const K_REGIONS = "loom.caption.regions", *const K_QUESTION = "loom.caption.region_question",
                         *const K_EMPTY = "loom.caption.region_empty", *const K_MIRROR = "loom.caption.region_mirror",
                         *const K_MOVER = "loom.describe.mover";

/* A string key's value, checked: 1..MAX_PHRASE bytes. */
static int get_text(const lm_gguf *g, const char *key, const char **out, lm_error *e)
{
    int rc = lm_gguf_get_str(g, key, out, e);
    if (rc < 0) return rc;
    size_t n = strlen(*out);
    if (n < 1 || n > MAX_PHRASE) return lm_fail(e, LOOM_ERR_FORMAT, "model: %s has %zu bytes (1..%d)", key, n, MAX_PHRASE);
    return 0;
}

/* loom.caption.region_mirror, checked: n int32 region indices, each region the mirror of
 * its mirror. *out points into the file's data. */
static int mirror_load(const lm_gguf *g, int32_t n, const int32_t **out, lm_error *e)
{
    const lm_gguf_array *a = NULL;
    int rc = lm_gguf_get_arr(g, K_MIRROR, &a, e);
    if (rc < 0) return rc;
    if (lm_gguf_arr_type(a) != LM_GGUF_I32 || lm_gguf_arr_len(a) != (uint64_t)n)
        return lm_fail(e, LOOM_ERR_FORMAT, "model: %s must be %d int32 region indices, one per region", K_MIRROR, n);
    const int32_t *m = lm_gguf_arr_data(a);
    for (int32_t i = 0; i < n; i++)
        if (m[i] < 0 || m[i] >= n || m[m[i]] != i)
            return lm_fail(e, LOOM_ERR_FORMAT, "model: %s[%d] = %d is not a region whose mirror is region %d", K_MIRROR,
                           i, m[i], i);
    *out = m;
    return 0;
}

int lm_caption_regions_load(const lm_gguf *g, loom_caption_regions *out, void **mem, lm_error *e)
{
    memset(out, 0, sizeof *out);
    *mem = NULL;
    const int has[3] = {lm_gguf_find_kv(g, K_REGIONS) >= 0, lm_gguf_find_kv(g, K_QUESTION) >= 0,
                        lm_gguf_find_kv(g, K_EMPTY) >= 0};
    const int has_mirror = lm_gguf_find_kv(g, K_MIRROR) >= 0, has_mover = lm_gguf_find_kv(g, K_MOVER) >= 0;
    if (!has[0] && !has[1] && !has[2])
        return has_mirror || has_mover ? lm_fail(e, LOOM_ERR_FORMAT, "model: %s without %s", has_mirror ? K_MIRROR : K_MOVER,
                                                 K_REGIONS) : 0;
    if (!has[0] || !has[1] || !has[2])
        return lm_fail(e, LOOM_ERR_FORMAT, "model: %s, %s and %s come together; %s is missing", K_REGIONS, K_QUESTION,
                       K_EMPTY, !has[0] ? K_REGIONS : !has[1] ? K_QUESTION : K_EMPTY);
    const lm_gguf_array *a = NULL;
    const char *question = NULL, *empty = NULL;
    int rc = lm_gguf_get_arr(g, K_REGIONS, &a, e);
    if (rc == 0) rc = get_text(g, K_QUESTION, &question, e);
    if (rc == 0) rc = get_text(g, K_EMPTY, &empty, e);
    if (rc < 0) return rc;
    const uint64_t n = lm_gguf_arr_len(a);
    if (lm_gguf_arr_type(a) != LM_GGUF_STRING || n < 1 || n > MAX_REGIONS)
        return lm_fail(e, LOOM_ERR_FORMAT, "model: %s must be 1..%d strings", K_REGIONS, MAX_REGIONS);
    const int32_t *mirror = NULL;
    if (has_mirror && (rc = mirror_load(g, (int32_t)n, &mirror, e)) < 0) return rc;
    int mover = 0;
    if (has_mover && (rc = lm_gguf_get_bool(g, K_MOVER, &mover, e)) < 0) return rc;
    const char *hole = strstr(question, "{}");
    if (!hole || strstr(hole + 2, "{}"))
        return lm_fail(e, LOOM_ERR_FORMAT, "model: %s \"%s\" must hold \"{}\" exactly once", K_QUESTION, question);
    /* one allocation: the phrase pointers, the mirror, then the strings */
    size_t bytes = n * sizeof(char *) + (mirror ? n * sizeof(int32_t) : 0) + strlen(question) + strlen(empty) + 2;
    for (uint64_t i = 0; i < n; i++) {
        const uint32_t len = lm_gguf_arr_str_len(a, i);
        const char *s = lm_gguf_arr_str(a, i);
        if (!s || len < 1 || len > MAX_PHRASE || memchr(s, '\0', len))
            return lm_fail(e, LOOM_ERR_FORMAT, "model: %s[%llu] must be 1..%d bytes of text", K_REGIONS,
                           (unsigned long long)i, MAX_PHRASE);
        bytes += len + 1;
    }
    char **ptr = malloc(bytes);
    if (!ptr) return lm_fail(e, LOOM_ERR_NO_MEMORY, "model: out of memory");
    int32_t *mir = (int32_t *)(ptr + n);
    if (mirror) memcpy(mir, mirror, n * sizeof *mir);
    char *p = (char *)(mir + (mirror ? n : 0));
    for (uint64_t i = 0; i < n; i++) {
        const uint32_t len = lm_gguf_arr_str_len(a, i);
        ptr[i] = p;
        memcpy(p, lm_gguf_arr_str(a, i), len);
        p[len] = '\0';
        p += len + 1;
    }
    out->question = strcpy(p, question);
    p += strlen(question) + 1;
    out->empty = strcpy(p, empty);
    out->phrases = (const char *const *)ptr;
    out->mirror = mirror ? mir : NULL;
    out->n_regions = (int32_t)n;
    out->describe_mover = mover != 0;
    *mem = ptr;
    return 0;
}

int loom_model_caption_regions(const loom_model *m, loom_caption_regions *out)
{
    if (!m || !out) return LOOM_ERR_INVALID_ARG;
    *out = m->regions;
    return 0;
}

/* Append n bytes of s at *len in buf (size bytes); LIMIT when they do not fit with a NUL. */
static int put(char *buf, size_t size, size_t *len, const char *s, size_t n)
{
    if (*len + n + 1 > size) return LOOM_ERR_LIMIT;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
    return 0;
}

int loom_caption_region_question(const loom_model *m, int32_t i, char *buf, size_t size)
{
    if (!m || !buf || i < 0 || i >= m->regions.n_regions) return LOOM_ERR_INVALID_ARG;
    const char *q = m->regions.question, *hole = strstr(q, "{}"), *phrase = m->regions.phrases[i];
    size_t len = 0;
    int rc = put(buf, size, &len, q, (size_t)(hole - q));
    if (!rc) rc = put(buf, size, &len, phrase, strlen(phrase));
    if (!rc) rc = put(buf, size, &len, hole + 2, strlen(hole + 2));
    return rc < 0 ? rc : (int)len;
}

int64_t loom_caption_compose(const loom_model *m, const char *const *answers, char *buf, size_t size)
{
    if (!m || !answers || !buf || !m->regions.n_regions) return LOOM_ERR_INVALID_ARG;
    const loom_caption_regions *r = &m->regions;
    int n_parts = 0, last = -1;
    for (int32_t i = 0; i < r->n_regions; i++) {
        if (!answers[i]) return LOOM_ERR_INVALID_ARG;
        if (strcmp(answers[i], r->empty)) n_parts++, last = i;
    }
    size_t len = 0;
    if (size) buf[0] = '\0';
    if (!n_parts) return put(buf, size, &len, r->empty, strlen(r->empty)) < 0 ? LOOM_ERR_LIMIT : (int64_t)len;
    int done = 0, rc = 0;
    for (int32_t i = 0; i < r->n_regions && !rc; i++) {
        if (!strcmp(answers[i], r->empty)) continue;
        if (done) rc = i == last ? put(buf, size, &len, " and ", 5) : put(buf, size, &len, ", ", 2);
        if (!rc) rc = put(buf, size, &len, answers[i], strlen(answers[i]));
        if (!rc) rc = put(buf, size, &len, " ", 1);
        if (!rc) rc = put(buf, size, &len, r->phrases[i], strlen(r->phrases[i]));
        done++;
    }
    return rc < 0 ? rc : (int64_t)len;
}
