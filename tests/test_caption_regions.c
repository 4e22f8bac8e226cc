/* Captions by region (loom.caption.*): the keys read and checked at load, the question about
 * one region, and the caption composed of the regions' answers. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "include/loom.h"
#include "lib/core/gguf.h"
#include "lib/model.h"
#include "tests/decoder_test_util.h"

static const char *const PHRASES[] = {"in the top left", "at the top", "in the center"};

/* Write a key-only GGUF (regions: n of PHRASES, or none when n < 0; question / empty: NULL
 * leaves the key out; the mirror: n_mirror of mirror, none when n_mirror < 0) and run the loader
 * on it; returns its status, message in e. */
static int load_mirror(const char *path, int n, const char *question, const char *empty, const int32_t *mirror,
                       int n_mirror, loom_caption_regions *r, void **mem, lm_error *e)
{
    lm_gguf_writer *w = lm_gguf_writer_create();
    if (n >= 0) lm_gguf_set_arr_str(w, "loom.caption.regions", PHRASES, (uint64_t)n);
    if (question) lm_gguf_set_str(w, "loom.caption.region_question", question);
    if (empty) lm_gguf_set_str(w, "loom.caption.region_empty", empty);
    if (n_mirror >= 0) lm_gguf_set_arr(w, "loom.caption.region_mirror", LM_GGUF_I32, mirror, (uint64_t)n_mirror);
    lm_gguf_set_u32(w, "loom.image.grid", 16);   /* so a file with no region key is not empty */
    lm_gguf *g = NULL;
    int rc = write_and_open(&w, path, &g);
    if (rc < 0) return rc;
    lm_error_clear(e);
    rc = lm_caption_regions_load(g, r, mem, e);
    lm_gguf_close(&g);   /* the loaded strings are copies: they outlive the file */
    return rc;
}

static int load_keys(const char *path, int n, const char *question, const char *empty, loom_caption_regions *r,
                     void **mem, lm_error *e)
{
    return load_mirror(path, n, question, empty, NULL, -1, r, mem, e);
}

/* loom.caption.region_mirror: optional, n_regions indices, each region its mirror's mirror. */
static void test_mirror(const char *path)
{
    loom_caption_regions r;
    void *mem = NULL;
    lm_error e;
    const int32_t swap[] = {2, 1, 0}, same[] = {0, 1, 2}, not_back[] = {1, 2, 0}, out[] = {0, 1, 3}, neg[] = {-1, 1, 0};
    CHECK(load_mirror(path, 3, "what is {}?", "nothing", swap, 3, &r, &mem, &e) == 0 && r.mirror && r.mirror[0] == 2 &&
          r.mirror[1] == 1 && r.mirror[2] == 0, "mirror read: %s", e.msg);
    free(mem);   /* the mirror is a copy too */
    CHECK(load_mirror(path, 3, "what is {}?", "nothing", same, 3, &r, &mem, &e) == 0 && r.mirror && r.mirror[2] == 2,
          "every region its own mirror: %s", e.msg);
    free(mem);
    CHECK(load_keys(path, 3, "what is {}?", "nothing", &r, &mem, &e) == 0 && !r.mirror, "no mirror key: NULL");
    free(mem);
    CHECK(load_mirror(path, 3, "what is {}?", "nothing", swap, 2, &r, &mem, &e) == LOOM_ERR_FORMAT &&
          strstr(e.msg, "loom.caption.region_mirror must be 3 int32"), "two indices for three regions: %s", e.msg);
    CHECK(load_mirror(path, 3, "what is {}?", "nothing", not_back, 3, &r, &mem, &e) == LOOM_ERR_FORMAT &&
          strstr(e.msg, "region_mirror[0] = 1"), "a mirror that does not come back: %s", e.msg);
    CHECK(load_mirror(path, 3, "what is {}?", "nothing", out, 3, &r, &mem, &e) == LOOM_ERR_FORMAT &&
          strstr(e.msg, "region_mirror[2] = 3"), "an index past the regions: %s", e.msg);
    CHECK(load_mirror(path, 3, "what is {}?", "nothing", neg, 3, &r, &mem, &e) == LOOM_ERR_FORMAT &&
          strstr(e.msg, "region_mirror[0] = -1"), "a negative index: %s", e.msg);
    CHECK(load_mirror(path, -1, NULL, NULL, swap, 3, &r, &mem, &e) == LOOM_ERR_FORMAT &&
          strstr(e.msg, "region_mirror without loom.caption.regions"), "a mirror without regions: %s", e.msg);
}

static void test_load(const char *path)
{
    loom_caption_regions r;
    void *mem = NULL;
    lm_error e;
    CHECK(load_keys(path, -1, NULL, NULL, &r, &mem, &e) == 0 && r.n_regions == 0 && !mem, "no keys: none");
    CHECK(load_keys(path, 3, "what is {}?", "nothing", &r, &mem, &e) == 0 && r.n_regions == 3, "good: %s", e.msg);
    if (r.n_regions == 3)
        CHECK(!strcmp(r.phrases[2], "in the center") && !strcmp(r.question, "what is {}?") && !strcmp(r.empty, "nothing"),
              "strings copied: %s / %s / %s", r.phrases[2], r.question, r.empty);
    free(mem);
    CHECK(load_keys(path, 3, "what is {}?", NULL, &r, &mem, &e) == LOOM_ERR_FORMAT &&
          strstr(e.msg, "loom.caption.region_empty is missing"), "half the keys: %s", e.msg);
    CHECK(load_keys(path, 0, "what is {}?", "nothing", &r, &mem, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "1..64"),
          "no regions: %s", e.msg);
    CHECK(load_keys(path, 3, "what is there?", "nothing", &r, &mem, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "exactly once"),
          "question without {}: %s", e.msg);
    CHECK(load_keys(path, 3, "{} or {}?", "nothing", &r, &mem, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "exactly once"),
          "question with two {}: %s", e.msg);
    CHECK(load_keys(path, 3, "what is {}?", "", &r, &mem, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "region_empty has 0 bytes"),
          "empty answer of 0 bytes: %s", e.msg);
    /* a string where the array should be: a type error that names the key */
    lm_gguf_writer *w = lm_gguf_writer_create();
    lm_gguf_set_str(w, "loom.caption.regions", "in the top left");
    lm_gguf_set_str(w, "loom.caption.region_question", "what is {}?");
    lm_gguf_set_str(w, "loom.caption.region_empty", "nothing");
    lm_gguf *g = NULL;
    CHECK(write_and_open(&w, path, &g) == 0, "write and open");
    if (g) {
        lm_error_clear(&e);
        CHECK(lm_caption_regions_load(g, &r, &mem, &e) == LOOM_ERR_TYPE && strstr(e.msg, "loom.caption.regions"),
              "not an array: %d %s", lm_caption_regions_load(g, &r, &mem, &e), e.msg);
        lm_gguf_close(&g);
    }
}

/* loom.describe.mover: a bool, only with the region keys. mover: 1 / 0 true / false, -1
 * absent, 2 a u32 where the bool should be; regions: with the three region keys. */
static int load_mover(const char *path, int regions, int mover, loom_caption_regions *r, void **mem, lm_error *e)
{
    lm_gguf_writer *w = lm_gguf_writer_create();
    if (regions) {
        lm_gguf_set_arr_str(w, "loom.caption.regions", PHRASES, 3);
        lm_gguf_set_str(w, "loom.caption.region_question", "what is {}?");
        lm_gguf_set_str(w, "loom.caption.region_empty", "nothing");
    }
    if (mover == 0 || mover == 1) lm_gguf_set_bool(w, "loom.describe.mover", mover);
    if (mover == 2) lm_gguf_set_u32(w, "loom.describe.mover", 1);
    lm_gguf_set_u32(w, "loom.image.grid", 16);
    lm_gguf *g = NULL;
    int rc = write_and_open(&w, path, &g);
    if (rc < 0) return rc;
    lm_error_clear(e);
    rc = lm_caption_regions_load(g, r, mem, e);
    lm_gguf_close(&g);
    return rc;
}

static void test_mover(const char *path)
{
    loom_caption_regions r;
    void *mem = NULL;
    lm_error e = {0};
    CHECK(load_mover(path, 1, 1, &r, &mem, &e) == 0 && r.describe_mover == 1, "mover true: %s", e.msg);
    free(mem);
    CHECK(load_mover(path, 1, 0, &r, &mem, &e) == 0 && r.describe_mover == 0, "mover false: %s", e.msg);
    free(mem);
    CHECK(load_mover(path, 1, -1, &r, &mem, &e) == 0 && r.describe_mover == 0, "no mover key: %s", e.msg);
    free(mem);
    mem = NULL;
    CHECK(load_mover(path, 0, 1, &r, &mem, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "loom.describe.mover without"),
          "mover without regions: %s", e.msg);
    CHECK(load_mover(path, 1, 2, &r, &mem, &e) == LOOM_ERR_TYPE && strstr(e.msg, "loom.describe.mover"),
          "mover not a bool: %s", e.msg);
}

static void test_compose(void)
{
    loom_model m = {0};   /* only the regions are read */
    m.regions = (loom_caption_regions){.n_regions = 3, .phrases = PHRASES, .question = "what is {}?", .empty = "nothing"};
    char q[64];
    CHECK(loom_caption_region_question(&m, 1, q, sizeof q) == 19 && !strcmp(q, "what is at the top?"), "question: %s", q);
    CHECK(loom_caption_region_question(&m, 3, q, sizeof q) == LOOM_ERR_INVALID_ARG, "region out of range");
    CHECK(loom_caption_region_question(&m, 0, q, 10) == LOOM_ERR_LIMIT, "small buffer");
    char c[128];
    const char *none[] = {"nothing", "nothing", "nothing"}, *one[] = {"nothing", "a red star", "nothing"},
               *two[] = {"a red star", "nothing", "a blue ring"}, *three[] = {"a red star", "a cyan cross", "a blue ring"};
    CHECK(loom_caption_compose(&m, none, c, sizeof c) == 7 && !strcmp(c, "nothing"), "none: %s", c);
    CHECK(loom_caption_compose(&m, one, c, sizeof c) > 0 && !strcmp(c, "a red star at the top"), "one: %s", c);
    CHECK(loom_caption_compose(&m, two, c, sizeof c) > 0 && !strcmp(c, "a red star in the top left and a blue ring in the center"),
          "two: %s", c);
    CHECK(loom_caption_compose(&m, three, c, sizeof c) > 0 &&
          !strcmp(c, "a red star in the top left, a cyan cross at the top and a blue ring in the center"), "three: %s", c);
    CHECK(loom_caption_compose(&m, three, c, 20) == LOOM_ERR_LIMIT && strlen(c) < 20, "small buffer: %s", c);
    loom_model plain = {0};
    CHECK(loom_caption_compose(&plain, none, c, sizeof c) == LOOM_ERR_INVALID_ARG, "a model without regions");
    loom_caption_regions r;
    CHECK(loom_model_caption_regions(&plain, &r) == 0 && r.n_regions == 0, "plain: no regions");
}

int main(void)
{
    char path[256];
    tmp_model_path(path, sizeof path, "regions");
    test_load(path);
    test_mirror(path);
    test_mover(path);
    unlink(path);
    test_compose();
    return finish();
}
