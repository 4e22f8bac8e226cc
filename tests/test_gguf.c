/* GGUF reader/writer: round trips of every value type and tensor type, key copies and
 * tensors filled at write time, getter errors,
 * tensor lookup checks, the Python-written fixture, and the malformed-file corpus
 * (tests/data/gguf_bad/MANIFEST: each file must fail with the listed status and message). */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/gguf.h"
#include "tests/check.h"
#include "tests/read_file.h"

static char tmp_path[256];

static const char *tmp_file(const char *tag)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/loom_test_gguf_%d_%s.gguf", (int)getpid(), tag);
    return tmp_path;
}

/* Write w to a temp file, free it, reopen the file. */
static lm_gguf *write_and_open(lm_gguf_writer **w, const char *tag)
{
    lm_error err = {0};
    const char *path = tmp_file(tag);
    int rc = lm_gguf_write(*w, path, &err);
    CHECK(rc == 0, "write %s: %s", path, err.msg);
    lm_gguf_writer_free(w);
    CHECK(*w == NULL, "writer_free sets NULL");
    lm_gguf *g = NULL;
    rc = lm_gguf_open(path, &g, &err);
    CHECK(rc == 0 && g, "open %s: %s", path, err.msg);
    unlink(path);
    return g;
}

static int has(const char *msg, const char *sub) { return strstr(msg, sub) != NULL; }

static void test_scalars(void)
{
    lm_gguf_writer *w = lm_gguf_writer_create();
    CHECK(w != NULL, "writer_create");
    lm_gguf_set_u8(w, "v.u8", 200);
    lm_gguf_set_i8(w, "v.i8", -100);
    lm_gguf_set_u16(w, "v.u16", 60000);
    lm_gguf_set_i16(w, "v.i16", -30000);
    lm_gguf_set_u32(w, "v.u32", 4000000000u);
    lm_gguf_set_i32(w, "v.i32", -2000000000);
    lm_gguf_set_u64(w, "v.u64", 18000000000000000000ull);
    lm_gguf_set_i64(w, "v.i64", -9000000000000000000ll);
    lm_gguf_set_f32(w, "v.f32", 0.1f);
    lm_gguf_set_f64(w, "v.f64", 1e300);
    lm_gguf_set_f64(w, "v.f64s", -2.5);
    lm_gguf_set_bool(w, "v.bool", 7);
    lm_gguf_set_str(w, "v.str", "héllo\nworld");
    lm_gguf_set_str(w, "v.empty", "");
    lm_gguf_set_u32(w, "v.replaced", 1);
    lm_gguf_set_u32(w, "v.replaced", 2);  /* setting twice replaces */
    lm_gguf *g = write_and_open(&w, "scalars");
    if (!g) return;

    static const struct { const char *key; int type; const char *text; } want[] = {
        {"v.u8", LM_GGUF_U8, "200"}, {"v.i8", LM_GGUF_I8, "-100"}, {"v.u16", LM_GGUF_U16, "60000"},
        {"v.i16", LM_GGUF_I16, "-30000"}, {"v.u32", LM_GGUF_U32, "4000000000"},
        {"v.i32", LM_GGUF_I32, "-2000000000"}, {"v.u64", LM_GGUF_U64, "18000000000000000000"},
        {"v.i64", LM_GGUF_I64, "-9000000000000000000"}, {"v.f32", LM_GGUF_F32, "0.100000001"},
        {"v.f64", LM_GGUF_F64, "1.0000000000000001e+300"}, {"v.f64s", LM_GGUF_F64, "-2.5"}, {"v.bool", LM_GGUF_BOOL, "true"},
        {"v.str", LM_GGUF_STRING, "héllo\\nworld"}, {"v.empty", LM_GGUF_STRING, ""},
        {"v.replaced", LM_GGUF_U32, "2"},
    };
    int n = (int)(sizeof want / sizeof want[0]);
    CHECK(lm_gguf_n_kv(g) == n, "n_kv %lld, want %d", (long long)lm_gguf_n_kv(g), n);
    CHECK(lm_gguf_version(g) == 3, "version");
    CHECK(lm_gguf_alignment(g) == 32, "default alignment");
    for (int i = 0; i < n; i++) {
        int64_t k = lm_gguf_find_kv(g, want[i].key);
        CHECK(k == i, "%s at index %lld (insertion order kept)", want[i].key, (long long)k);
        CHECK(lm_gguf_kv_type(g, k) == want[i].type, "%s type %s", want[i].key, lm_gguf_vtype_name(lm_gguf_kv_type(g, k)));
        CHECK(!strcmp(lm_gguf_kv_key(g, k), want[i].key), "key name");
        char buf[128];
        lm_gguf_kv_to_str(g, k, buf, sizeof buf);
        CHECK(!strcmp(buf, want[i].text), "%s renders '%s', want '%s'", want[i].key, buf, want[i].text);
    }
    CHECK(lm_gguf_find_kv(g, "v.missing") == -1, "missing key index");

    lm_error err = {0};
    uint32_t u32 = 0;
    int64_t i64 = 0;
    float f = 0;
    int b = 0, rc;
    const char *s = NULL;
    CHECK(lm_gguf_get_u32(g, "v.u32", &u32, &err) == 0 && u32 == 4000000000u, "get_u32 u32");
    CHECK(lm_gguf_get_u32(g, "v.u8", &u32, &err) == 0 && u32 == 200, "get_u32 from u8");
    CHECK(lm_gguf_get_u32(g, "v.u16", &u32, &err) == 0 && u32 == 60000, "get_u32 from u16");
    CHECK(lm_gguf_get_i64(g, "v.i8", &i64, &err) == 0 && i64 == -100, "get_i64 from i8");
    CHECK(lm_gguf_get_i64(g, "v.i16", &i64, &err) == 0 && i64 == -30000, "get_i64 from i16");
    CHECK(lm_gguf_get_i64(g, "v.i32", &i64, &err) == 0 && i64 == -2000000000, "get_i64 from i32");
    CHECK(lm_gguf_get_i64(g, "v.i64", &i64, &err) == 0 && i64 == -9000000000000000000ll, "get_i64 i64");
    CHECK(lm_gguf_get_i64(g, "v.u32", &i64, &err) == 0 && i64 == 4000000000ll, "get_i64 from u32");
    CHECK(lm_gguf_get_f32(g, "v.f32", &f, &err) == 0 && f == 0.1f, "get_f32");
    CHECK(lm_gguf_get_f32(g, "v.f64s", &f, &err) == 0 && f == -2.5f, "get_f32 from f64");
    rc = lm_gguf_get_f32(g, "v.f64", &f, &err);
    CHECK(rc == LOOM_ERR_TYPE && has(err.msg, "'v.f64': value 1e+300 does not fit f32"), "f64 1e300 as f32: %s", err.msg);
    CHECK(lm_gguf_get_bool(g, "v.bool", &b, &err) == 0 && b == 1, "get_bool");
    CHECK(lm_gguf_get_str(g, "v.str", &s, &err) == 0 && !strcmp(s, "héllo\nworld"), "get_str");
    CHECK(lm_gguf_get_str(g, "v.empty", &s, &err) == 0 && !strcmp(s, ""), "get_str empty");

    /* Errors name the key. */
    u32 = 77;
    rc = lm_gguf_get_u32(g, "v.nope", &u32, &err);
    CHECK(rc == LOOM_ERR_NOT_FOUND && has(err.msg, "'v.nope' not found") && u32 == 77, "missing: %d %s", rc, err.msg);
    rc = lm_gguf_get_u32(g, "v.str", &u32, &err);
    CHECK(rc == LOOM_ERR_TYPE && has(err.msg, "'v.str' has type string, expected an integer"), "wrong type: %s", err.msg);
    rc = lm_gguf_get_u32(g, "v.i8", &u32, &err);
    CHECK(rc == LOOM_ERR_TYPE && has(err.msg, "'v.i8': value -100 does not fit u32"), "negative to u32: %s", err.msg);
    rc = lm_gguf_get_u32(g, "v.u64", &u32, &err);
    CHECK(rc == LOOM_ERR_TYPE && has(err.msg, "'v.u64': value 18000000000000000000 does not fit u32"), "u64 to u32: %s", err.msg);
    rc = lm_gguf_get_i64(g, "v.u64", &i64, &err);
    CHECK(rc == LOOM_ERR_TYPE && has(err.msg, "does not fit i64"), "u64 to i64: %s", err.msg);
    rc = lm_gguf_get_f32(g, "v.u32", &f, &err);
    CHECK(rc == LOOM_ERR_TYPE && has(err.msg, "'v.u32' has type u32, expected f32 or f64"), "int as float: %s", err.msg);
    rc = lm_gguf_get_bool(g, "v.u8", &b, &err);
    CHECK(rc == LOOM_ERR_TYPE && has(err.msg, "'v.u8'"), "u8 as bool: %s", err.msg);
    rc = lm_gguf_get_str(g, "v.u8", &s, &err);
    CHECK(rc == LOOM_ERR_TYPE && has(err.msg, "expected string"), "u8 as string: %s", err.msg);
    const lm_gguf_array *a = NULL;
    rc = lm_gguf_get_arr(g, "v.str", &a, &err);
    CHECK(rc == LOOM_ERR_TYPE && has(err.msg, "expected array"), "string as array: %s", err.msg);

    /* Optional getters: missing leaves the default, present-but-wrong still fails. */
    u32 = 5; f = 2.5f; b = 3;
    CHECK(lm_gguf_opt_u32(g, "v.nope", &u32, &err) == 0 && u32 == 5, "opt_u32 missing");
    CHECK(lm_gguf_opt_f32(g, "v.nope", &f, &err) == 0 && f == 2.5f, "opt_f32 missing");
    CHECK(lm_gguf_opt_bool(g, "v.nope", &b, &err) == 0 && b == 3, "opt_bool missing");
    CHECK(lm_gguf_opt_u32(g, "v.u16", &u32, &err) == 0 && u32 == 60000, "opt_u32 present");
    CHECK(lm_gguf_opt_u32(g, "v.str", &u32, &err) == LOOM_ERR_TYPE, "opt_u32 wrong type");
    CHECK(lm_gguf_opt_f32(g, "v.str", &f, &err) == LOOM_ERR_TYPE, "opt_f32 wrong type");
    CHECK(lm_gguf_opt_bool(g, "v.str", &b, &err) == LOOM_ERR_TYPE, "opt_bool wrong type");
    lm_gguf_close(&g);
    CHECK(g == NULL, "close sets NULL");
    lm_gguf_close(&g);  /* closing NULL is a no-op */
}

static void test_arrays(void)
{
    lm_gguf_writer *w = lm_gguf_writer_create();
    lm_gguf_set_str(w, "pad", "x");  /* a 1-byte string puts the next array at an odd offset */
    int32_t i32s[5] = {1, -2, 3, -4, 2147483647};
    lm_gguf_set_arr(w, "a.i32", LM_GGUF_I32, i32s, 5);
    double f64s[3] = {0.5, -1e-300, 3.0};
    lm_gguf_set_arr(w, "a.f64", LM_GGUF_F64, f64s, 3);
    uint8_t bools[4] = {1, 0, 1, 1};
    lm_gguf_set_arr(w, "a.bool", LM_GGUF_BOOL, bools, 4);
    lm_gguf_set_arr(w, "a.empty", LM_GGUF_U64, NULL, 0);
    const char *strs[4] = {"<s>", "", "a \"quoted\"\tword", "ü"};
    lm_gguf_set_arr_str(w, "a.str", strs, 4);
    enum { N_BIG = 3000 };
    static uint32_t big[N_BIG];
    for (int i = 0; i < N_BIG; i++) big[i] = (uint32_t)i * 7u;
    lm_gguf_set_arr(w, "a.big", LM_GGUF_U32, big, N_BIG);
    uint16_t r0[2] = {1, 2}, r2[3] = {7, 8, 9};
    const void *rows[3] = {r0, NULL, r2};
    uint64_t lens[3] = {2, 0, 3};
    lm_gguf_set_arr_nested(w, "a.nested", LM_GGUF_U16, rows, lens, 3);
    CHECK(lm_gguf_set_arr(w, "a.bad", LM_GGUF_STRING, strs, 1) == LOOM_ERR_INVALID_ARG, "set_arr rejects string elements");
    lm_gguf *g = write_and_open(&w, "arrays");
    if (!g) return;
    lm_error err = {0};
    const lm_gguf_array *a = NULL;

    CHECK(lm_gguf_get_arr(g, "a.i32", &a, &err) == 0, "%s", err.msg);
    CHECK(lm_gguf_arr_type(a) == LM_GGUF_I32 && lm_gguf_arr_len(a) == 5, "i32 array header");
    const int32_t *pi = lm_gguf_arr_data(a);
    CHECK(pi && (uintptr_t)pi % 4 == 0, "i32 data aligned (copied from an odd file offset)");
    CHECK(pi && !memcmp(pi, i32s, sizeof i32s), "i32 values");
    CHECK(lm_gguf_arr_str(a, 0) == NULL && lm_gguf_arr_at(a, 0) == NULL, "numeric array has no strings/items");

    CHECK(lm_gguf_get_arr(g, "a.f64", &a, &err) == 0 && lm_gguf_arr_len(a) == 3, "f64 array");
    const double *pd = lm_gguf_arr_data(a);
    CHECK(pd && (uintptr_t)pd % 8 == 0 && !memcmp(pd, f64s, sizeof f64s), "f64 values, aligned");
    CHECK(lm_gguf_get_arr(g, "a.bool", &a, &err) == 0 && lm_gguf_arr_type(a) == LM_GGUF_BOOL &&
          !memcmp(lm_gguf_arr_data(a), bools, 4), "bool array");
    CHECK(lm_gguf_get_arr(g, "a.empty", &a, &err) == 0 && lm_gguf_arr_len(a) == 0 && lm_gguf_arr_type(a) == LM_GGUF_U64,
          "empty array");

    CHECK(lm_gguf_get_arr(g, "a.str", &a, &err) == 0 && lm_gguf_arr_type(a) == LM_GGUF_STRING && lm_gguf_arr_len(a) == 4,
          "string array header");
    for (uint64_t i = 0; i < 4; i++) {
        CHECK(lm_gguf_arr_str(a, i) && !strcmp(lm_gguf_arr_str(a, i), strs[i]), "string %d", (int)i);
        CHECK(lm_gguf_arr_str_len(a, i) == strlen(strs[i]), "string %d length", (int)i);
    }
    CHECK(lm_gguf_arr_str(a, 4) == NULL && lm_gguf_arr_data(a) == NULL, "string array bounds");

    CHECK(lm_gguf_get_arr(g, "a.nested", &a, &err) == 0 && lm_gguf_arr_type(a) == LM_GGUF_ARRAY && lm_gguf_arr_len(a) == 3,
          "nested header");
    const lm_gguf_array *in0 = lm_gguf_arr_at(a, 0), *in1 = lm_gguf_arr_at(a, 1), *in2 = lm_gguf_arr_at(a, 2);
    CHECK(in0 && lm_gguf_arr_type(in0) == LM_GGUF_U16 && lm_gguf_arr_len(in0) == 2 && !memcmp(lm_gguf_arr_data(in0), r0, 4),
          "nested[0]");
    CHECK(in1 && lm_gguf_arr_len(in1) == 0, "nested[1] empty");
    CHECK(in2 && lm_gguf_arr_len(in2) == 3 && !memcmp(lm_gguf_arr_data(in2), r2, 6), "nested[2]");
    CHECK(lm_gguf_arr_at(a, 3) == NULL, "nested bounds");

    /* Rendering: arrays show type, count and the first items; long ones end in "…". */
    char buf[256];
    lm_gguf_kv_to_str(g, lm_gguf_find_kv(g, "a.i32"), buf, sizeof buf);
    CHECK(!strcmp(buf, "[i32 × 5: 1, -2, 3, -4, 2147483647]"), "i32 render '%s'", buf);
    lm_gguf_kv_to_str(g, lm_gguf_find_kv(g, "a.str"), buf, sizeof buf);
    CHECK(!strcmp(buf, "[string × 4: \"<s>\", \"\", \"a \\\"quoted\\\"\\tword\", \"ü\"]"), "string render '%s'", buf);
    lm_gguf_kv_to_str(g, lm_gguf_find_kv(g, "a.nested"), buf, sizeof buf);
    CHECK(!strcmp(buf, "[array × 3: [u16 × 2: 1, 2], [u16 × 0:], [u16 × 3: 7, 8, 9]]"), "nested render '%s'", buf);
    lm_gguf_kv_to_str(g, lm_gguf_find_kv(g, "a.big"), buf, sizeof buf);
    CHECK(!strcmp(buf, "[u32 × 3000: 0, 7, 14, 21, 28, 35, 42, 49, …]"), "long array summarized: '%s'", buf);
    char small[12];
    lm_gguf_kv_to_str(g, lm_gguf_find_kv(g, "a.big"), small, sizeof small);
    CHECK(strlen(small) == sizeof small - 1 && !strcmp(small + sizeof small - 4, "..."), "truncated render '%s'", small);
    lm_gguf_close(&g);
}

/* lm_gguf_fill_fn: byte i = (i * 7 + seed) & 255; a seed of -1 fails. */
static int fill_pattern(void *user, void *dst, size_t n, lm_error *err)
{
    int seed = *(int *)user;
    if (seed < 0) return lm_fail(err, LOOM_ERR_INVALID_ARG, "fill refused");
    for (size_t i = 0; i < n; i++) ((unsigned char *)dst)[i] = (unsigned char)(i * 7 + (size_t)seed);
    return 0;
}

/* Keys copied with lm_gguf_copy_kv (every scalar, string and array type, nested arrays) write
 * the same bytes as the originals; filled tensors equal copied ones; a failing fill leaves
 * an existing file untouched. */
static void test_copy_and_fill(void)
{
    lm_gguf_writer *w = lm_gguf_writer_create();
    lm_gguf_set_u8(w, "u8", 200);
    lm_gguf_set_i8(w, "i8", -5);
    lm_gguf_set_u16(w, "u16", 60000);
    lm_gguf_set_i16(w, "i16", -30000);
    lm_gguf_set_u32(w, "u32", 4000000000u);
    lm_gguf_set_i32(w, "i32", -7);
    lm_gguf_set_u64(w, "u64", 1ull << 60);
    lm_gguf_set_i64(w, "i64", -(1ll << 60));
    lm_gguf_set_f32(w, "f32", 1.5f);
    lm_gguf_set_f64(w, "f64", -2.25);
    lm_gguf_set_bool(w, "bool", 1);
    lm_gguf_set_str(w, "str", "héllo");
    const char *strs[3] = {"a", "", "ccc"};
    lm_gguf_set_arr_str(w, "arr.str", strs, 3);
    float fs[3] = {1, 2, 3};
    lm_gguf_set_arr(w, "arr.f32", LM_GGUF_F32, fs, 3);
    uint16_t r0[2] = {1, 2};
    const void *rows[2] = {r0, NULL};
    uint64_t lens[2] = {2, 0};
    lm_gguf_set_arr_nested(w, "arr.nested", LM_GGUF_U16, rows, lens, 2);
    const int64_t ne[2] = {64, 3};
    unsigned char data[64 * 3 * 2];
    int seed = 3;
    fill_pattern(&seed, data, sizeof data, NULL);
    lm_gguf_add_tensor(w, "t", LOOM_TYPE_F16, 2, ne, data);
    lm_error err = {0};
    char a_path[256], b_path[256];
    snprintf(a_path, sizeof a_path, "%s", tmp_file("copy_a"));
    snprintf(b_path, sizeof b_path, "%s", tmp_file("copy_b"));
    CHECK(lm_gguf_write(w, a_path, &err) == 0, "write: %s", err.msg);
    lm_gguf_writer_free(&w);

    lm_gguf *g = NULL;
    CHECK(lm_gguf_open(a_path, &g, &err) == 0, "open: %s", err.msg);
    lm_gguf_writer *w2 = lm_gguf_writer_create();
    for (int64_t i = 0; g && i < lm_gguf_n_kv(g); i++)
        CHECK(lm_gguf_copy_kv(w2, g, i) == 0, "copy key %lld", (long long)i);
    CHECK(lm_gguf_copy_kv(w2, g, lm_gguf_n_kv(g)) == LOOM_ERR_INVALID_ARG, "copy_kv past the end");
    CHECK(lm_gguf_add_tensor_fill(w2, "t", LOOM_TYPE_F16, 2, ne, fill_pattern, &seed) == 0, "add_tensor_fill");
    CHECK(lm_gguf_add_tensor_fill(w2, "u", LOOM_TYPE_F16, 2, ne, NULL, &seed) == LOOM_ERR_INVALID_ARG, "NULL fill");
    CHECK(lm_gguf_add_tensor_fill(w2, "t", LOOM_TYPE_F16, 2, ne, fill_pattern, &seed) == LOOM_ERR_INVALID_ARG,
          "duplicate filled tensor");
    CHECK(lm_gguf_write(w2, b_path, &err) == 0, "write copy: %s", err.msg);
    size_t na = 0, nb = 0;
    unsigned char *a = read_file(a_path, &na), *b = read_file(b_path, &nb);
    CHECK(a && b && na == nb && !memcmp(a, b, na),
          "copied keys + filled tensor: %zu bytes against the original's %zu, or different bytes", nb, na);
    free(b);

    /* a failing fill: error passed on, the existing file at b_path unchanged */
    int refuse = -1;
    lm_gguf_writer *w3 = lm_gguf_writer_create();
    lm_gguf_set_u32(w3, "k", 1);
    lm_gguf_add_tensor_fill(w3, "t", LOOM_TYPE_F16, 2, ne, fill_pattern, &refuse);
    CHECK(lm_gguf_write(w3, b_path, &err) == LOOM_ERR_INVALID_ARG && has(err.msg, "fill refused"), "failing fill: '%s'", err.msg);
    b = read_file(b_path, &nb);
    CHECK(a && b && nb == na && !memcmp(a, b, na), "a failing fill changed the file");
    free(a);
    free(b);
    lm_gguf_writer_free(&w3);
    lm_gguf_writer_free(&w2);
    lm_gguf_close(&g);
    unlink(a_path);
    unlink(b_path);
}

/* Tensors of every loom type, data checked byte-exact, at alignment 32 and 64. */
static void test_tensors(uint32_t alignment)
{
    enum { N = 96 };
    float f32[N];
    uint16_t f16[N], bf16[N];
    lm_block_q8_0 q8[N / LM_QK8_0];
    for (int i = 0; i < N; i++) {
        f32[i] = (float)i * 0.25f - 7.0f;
        f16[i] = lm_f32_to_f16(f32[i]);
        bf16[i] = lm_f32_to_bf16(f32[i]);
    }
    for (int b = 0; b < N / LM_QK8_0; b++) {
        q8[b].d = lm_f32_to_f16(0.5f + (float)b);
        for (int j = 0; j < LM_QK8_0; j++) q8[b].qs[j] = (int8_t)(j * 4 - 64 + b);
    }
    lm_gguf_writer *w = lm_gguf_writer_create();
    if (alignment != 32) lm_gguf_set_u32(w, "general.alignment", alignment);
    lm_gguf_set_str(w, "general.architecture", "test");
    int64_t ne_f32[2] = {3, 32}, ne_f16[1] = {N}, ne_bf16[3] = {8, 4, 3}, ne_q8[2] = {32, 3}, ne_one[1] = {1};
    CHECK(lm_gguf_add_tensor(w, "one", LOOM_TYPE_F32, 1, ne_one, f32) == 0, "add one");  /* 4 bytes: forces padding */
    CHECK(lm_gguf_add_tensor(w, "w.f32", LOOM_TYPE_F32, 2, ne_f32, f32) == 0, "add f32");
    CHECK(lm_gguf_add_tensor(w, "w.f16", LOOM_TYPE_F16, 1, ne_f16, f16) == 0, "add f16");
    CHECK(lm_gguf_add_tensor(w, "w.bf16", LOOM_TYPE_BF16, 3, ne_bf16, bf16) == 0, "add bf16");
    CHECK(lm_gguf_add_tensor(w, "w.q8_0", LOOM_TYPE_Q8_0, 2, ne_q8, q8) == 0, "add q8_0");
    CHECK(lm_gguf_add_tensor(w, "w.f16", LOOM_TYPE_F16, 1, ne_f16, f16) == LOOM_ERR_INVALID_ARG, "duplicate name rejected");
    int64_t ne_bad[1] = {33};
    CHECK(lm_gguf_add_tensor(w, "w.bad", LOOM_TYPE_Q8_0, 1, ne_bad, q8) == LOOM_ERR_INVALID_ARG, "partial q8 block rejected");
    CHECK(lm_gguf_add_tensor(w, "w.bad", 12, 1, ne_one, q8) == LOOM_ERR_INVALID_ARG, "unknown type rejected");
    char tag[16];
    snprintf(tag, sizeof tag, "t%u", alignment);
    lm_gguf *g = write_and_open(&w, tag);
    if (!g) return;
    CHECK(lm_gguf_alignment(g) == alignment, "alignment %u read back as %u", alignment, lm_gguf_alignment(g));
    CHECK(lm_gguf_n_tensors(g) == 5, "5 tensors");

    static const struct { const char *name; int type, n_dims; int64_t ne[4]; size_t n_bytes; } want[] = {
        {"one", LOOM_TYPE_F32, 1, {1, 1, 1, 1}, 4},
        {"w.f32", LOOM_TYPE_F32, 2, {3, 32, 1, 1}, N * 4},
        {"w.f16", LOOM_TYPE_F16, 1, {N, 1, 1, 1}, N * 2},
        {"w.bf16", LOOM_TYPE_BF16, 3, {8, 4, 3, 1}, N * 2},
        {"w.q8_0", LOOM_TYPE_Q8_0, 2, {32, 3, 1, 1}, 3 * 34},
    };
    const void *src[] = {f32, f32, f16, bf16, q8};
    const uint8_t *base = NULL;
    for (int i = 0; i < 5; i++) {
        const lm_gguf_tensor *t = lm_gguf_tensor_at(g, i);
        CHECK(t && lm_gguf_find_tensor(g, want[i].name) == t, "%s found at %d", want[i].name, i);
        if (!t) continue;
        if (i == 0) base = (const uint8_t *)t->data - t->offset;
        CHECK(t->type == want[i].type && t->n_dims == want[i].n_dims, "%s type/n_dims", t->name);
        CHECK(!memcmp(t->ne, want[i].ne, sizeof t->ne), "%s ne", t->name);
        CHECK(t->n_bytes == want[i].n_bytes, "%s n_bytes %llu", t->name, (unsigned long long)t->n_bytes);
        CHECK(t->offset % alignment == 0, "%s offset %llu aligned to %u", t->name, (unsigned long long)t->offset, alignment);
        CHECK((size_t)((const uint8_t *)t->data - base) % alignment == 0 && (const uint8_t *)t->data - base == (ptrdiff_t)t->offset,
              "%s data at data section + offset", t->name);
        CHECK(t->data && !memcmp(t->data, src[i], t->n_bytes), "%s data byte-exact", t->name);
    }
    CHECK(((uintptr_t)base % alignment) == 0, "data section start aligned to %u in the file", alignment);
    CHECK(lm_gguf_tensor_at(g, 5) == NULL && lm_gguf_tensor_at(g, -1) == NULL && lm_gguf_find_tensor(g, "nope") == NULL,
          "tensor lookup bounds");

    /* Checked lookup. */
    lm_error err = {0};
    const lm_gguf_tensor *t = NULL;
    int64_t exact[2] = {3, 32}, any_rows[2] = {3, -1}, wrong[2] = {3, 31}, as3[3] = {3, 32, 1}, as1[1] = {3};
    CHECK(lm_gguf_get_tensor(g, "w.f32", 2, exact, &t, &err) == 0 && t && !strcmp(t->name, "w.f32"), "get exact: %s", err.msg);
    CHECK(lm_gguf_get_tensor(g, "w.f32", 2, any_rows, &t, &err) == 0, "-1 matches anything: %s", err.msg);
    CHECK(lm_gguf_get_tensor(g, "w.f32", 3, as3, &t, &err) == 0, "extra dim of 1 matches: %s", err.msg);
    int rc = lm_gguf_get_tensor(g, "w.f32", 2, wrong, &t, &err);
    CHECK(rc == LOOM_ERR_TYPE && has(err.msg, "tensor 'w.f32' has shape [3, 32], expected [3, 31]"), "mismatch: %d %s", rc, err.msg);
    rc = lm_gguf_get_tensor(g, "w.f32", 1, as1, &t, &err);
    CHECK(rc == LOOM_ERR_TYPE && has(err.msg, "'w.f32'") && has(err.msg, "expected [3]"), "trailing dim not 1: %s", err.msg);
    rc = lm_gguf_get_tensor(g, "w.missing", 2, exact, &t, &err);
    CHECK(rc == LOOM_ERR_NOT_FOUND && has(err.msg, "tensor 'w.missing' not found"), "not found: %s", err.msg);
    rc = lm_gguf_get_tensor(g, "w.f32", 5, exact, &t, &err);
    CHECK(rc == LOOM_ERR_INVALID_ARG, "n_dims 5 is a bad argument");
    lm_gguf_close(&g);
}

static void test_writer_errors(void)
{
    lm_gguf_writer *w = lm_gguf_writer_create();
    lm_gguf_set_u32(w, "general.alignment", 48);
    lm_error err = {0};
    int rc = lm_gguf_write(w, tmp_file("align48"), &err);
    CHECK(rc == LOOM_ERR_INVALID_ARG && has(err.msg, "48 is not a power of two"), "alignment 48: %s", err.msg);
    lm_gguf_set_u64(w, "general.alignment", 64);
    rc = lm_gguf_write(w, tmp_file("align64"), &err);
    CHECK(rc == LOOM_ERR_INVALID_ARG && has(err.msg, "must be a u32"), "alignment u64: %s", err.msg);
    lm_gguf_set_u32(w, "general.alignment", 64);
    rc = lm_gguf_write(w, "/nonexistent-dir/x.gguf", &err);
    CHECK(rc == LOOM_ERR_IO && has(err.msg, "/nonexistent-dir/x.gguf"), "io error names path: %s", err.msg);
    lm_gguf_writer_free(&w);
    lm_gguf_writer_free(&w);  /* NULL: no-op */
    lm_gguf *g = NULL;
    rc = lm_gguf_open("data/gguf/does-not-exist.gguf", &g, &err);
    CHECK(rc == LOOM_ERR_IO && g == NULL && has(err.msg, "does-not-exist.gguf"), "missing file: %s", err.msg);
}

/* Entries of dir (not . and ..). */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static int file_is(const char *path, const char *text)
{
    char buf[64] = "";
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    return n == strlen(text) && !memcmp(buf, text, n);
}

static void set_fsize(rlim_t limit)
{
    struct rlimit rl;
    getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = limit;
    setrlimit(RLIMIT_FSIZE, &rl);
}

/* A write that fails half-way (file-size limit) or cannot start (missing folder) leaves the
 * existing file as it was and no temporary file; the same write without the limit replaces it. */
static void test_writer_atomic(void)
{
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "/tmp/loom_test_gguf_%d_XXXXXX", (int)getpid());
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp %s", dir); return; }
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f && fputs("the previous file", f) >= 0, "write the old file");
    if (f) fclose(f);

    enum { N = 64 * 1024 };   /* 256 KiB of tensor data, far past the limit below */
    float *data = calloc(N, sizeof *data);
    lm_gguf_writer *w = lm_gguf_writer_create();
    const int64_t ne[1] = {N};
    CHECK(data && w && lm_gguf_set_str(w, "general.name", "big") == 0 &&
          lm_gguf_add_tensor(w, "big", LOOM_TYPE_F32, 1, ne, data) == 0, "build writer");
    lm_error err = {0};
    signal(SIGXFSZ, SIG_IGN);   /* writes past the limit fail with EFBIG instead */
    set_fsize(4096);
    int rc = lm_gguf_write(w, path, &err);
    set_fsize(RLIM_INFINITY);
    CHECK(rc == LOOM_ERR_IO && has(err.msg, path) && has(err.msg, "write failed"), "write past the limit: %d %s", rc, err.msg);
    CHECK(file_is(path, "the previous file"), "a failed write changed the existing file");
    CHECK(count_entries(dir) == 1, "a failed write left a temporary file (%d entries)", count_entries(dir));

    char nowhere[400];
    snprintf(nowhere, sizeof nowhere, "%s/no/such/dir/x.gguf", dir);
    rc = lm_gguf_write(w, nowhere, &err);
    CHECK(rc == LOOM_ERR_IO && has(err.msg, nowhere), "missing folder: %d %s", rc, err.msg);
    CHECK(count_entries(dir) == 1, "a write into a missing folder left a file");

    rc = lm_gguf_write(w, path, &err);
    CHECK(rc == 0, "write without the limit: %s", err.msg);
    struct stat st;
    const mode_t um = umask(0);
    umask(um);
    CHECK(stat(path, &st) == 0 && st.st_size > N * 4 && (st.st_mode & 0777) == (0666 & ~um),
          "the new file replaced the old one, with the usual permissions (not mkstemp's 0600)");
    CHECK(count_entries(dir) == 1, "a write left a temporary file (%d entries)", count_entries(dir));
    lm_gguf *g = NULL;
    CHECK(lm_gguf_open(path, &g, &err) == 0 && lm_gguf_n_tensors(g) == 1, "reopen: %s", err.msg);
    lm_gguf_close(&g);
    lm_gguf_writer_free(&w);
    free(data);
    unlink(path);
    rmdir(dir);
}

/* The fixture written by tools/make_bad_gguf.py (Python writer) reads back as written. */
static void test_python_fixture(void)
{
    lm_gguf *g = NULL;
    lm_error err = {0};
    CHECK(lm_gguf_open("data/gguf/tiny.gguf", &g, &err) == 0, "tiny.gguf: %s", err.msg);
    if (!g) return;
    const char *arch = NULL;
    uint32_t ctx = 0;
    CHECK(lm_gguf_get_str(g, "general.architecture", &arch, &err) == 0 && !strcmp(arch, "tiny"), "arch");
    CHECK(lm_gguf_get_u32(g, "tiny.context_length", &ctx, &err) == 0 && ctx == 128, "context_length");
    const lm_gguf_array *tok = NULL, *sc = NULL;
    CHECK(lm_gguf_get_arr(g, "tokenizer.ggml.tokens", &tok, &err) == 0 && lm_gguf_arr_len(tok) == 1000, "1000 tokens");
    CHECK(lm_gguf_get_arr(g, "tokenizer.ggml.scores", &sc, &err) == 0 && lm_gguf_arr_len(sc) == 1000, "1000 scores");
    int ok = tok && sc;
    for (int i = 0; ok && i < 1000; i++) {
        char want[16];
        snprintf(want, sizeof want, "tok%d", i);
        ok = !strcmp(lm_gguf_arr_str(tok, (uint64_t)i), want) && ((const float *)lm_gguf_arr_data(sc))[i] == (float)-i;
    }
    CHECK(ok, "token strings and scores");
    /* x[r][c] = (r*64 + c - 100) / 16, stored as f16, bf16 and q8_0 (ne = [64, 4]). */
    int64_t ne[2] = {64, 4};
    const lm_gguf_tensor *t16 = NULL, *tb = NULL, *tq = NULL;
    CHECK(lm_gguf_get_tensor(g, "token_embd.weight", 2, ne, &t16, &err) == 0 && t16->type == LOOM_TYPE_F16, "%s", err.msg);
    CHECK(lm_gguf_get_tensor(g, "blk.0.attn_q.weight", 2, ne, &tb, &err) == 0 && tb->type == LOOM_TYPE_BF16, "%s", err.msg);
    CHECK(lm_gguf_get_tensor(g, "blk.0.ffn_up.weight", 2, ne, &tq, &err) == 0 && tq->type == LOOM_TYPE_Q8_0, "%s", err.msg);
    if (t16 && tb && tq) {
        float row[256];
        int exact16 = 1, exactb = 1;
        for (int i = 0; i < 256; i++) {
            float x = ((float)i - 100.0f) / 16.0f;
            exact16 &= ((const uint16_t *)t16->data)[i] == lm_f32_to_f16(x);
            exactb &= ((const uint16_t *)tb->data)[i] == lm_f32_to_bf16(x);
        }
        CHECK(exact16, "f16 bits match lm_f32_to_f16");
        CHECK(exactb, "bf16 bits match lm_f32_to_bf16");
        lm_row_to_f32(LOOM_TYPE_Q8_0, tq->data, row, 256);
        float max_err = 0;
        for (int i = 0; i < 256; i++) max_err = fmaxf(max_err, fabsf(row[i] - ((float)i - 100.0f) / 16.0f));
        /* q8_0 error ≤ half a step: amax/127/2 with amax ≤ 9.7 → ≤ 0.04 */
        CHECK(max_err <= 0.04f, "q8_0 dequantized within 0.04 (max %g)", (double)max_err);
    }
    lm_gguf_close(&g);
}

static int status_by_name(const char *s)
{
    static const struct { const char *name; int status; } t[] = {
        {"LOOM_OK", LOOM_OK}, {"LOOM_ERR_INVALID_ARG", LOOM_ERR_INVALID_ARG}, {"LOOM_ERR_NO_MEMORY", LOOM_ERR_NO_MEMORY},
        {"LOOM_ERR_IO", LOOM_ERR_IO}, {"LOOM_ERR_FORMAT", LOOM_ERR_FORMAT}, {"LOOM_ERR_UNSUPPORTED", LOOM_ERR_UNSUPPORTED},
        {"LOOM_ERR_NOT_FOUND", LOOM_ERR_NOT_FOUND}, {"LOOM_ERR_TYPE", LOOM_ERR_TYPE}, {"LOOM_ERR_LIMIT", LOOM_ERR_LIMIT},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(s, t[i].name)) return t[i].status;
    return 1;  /* never a real status */
}

/* Open `path` (from the file or from memory) and, if `tensor` is given, look it up. */
static int open_case(const char *path, int from_memory, const char *tensor, lm_error *err)
{
    lm_gguf *g = NULL;
    int rc;
    unsigned char *buf = NULL;
    if (from_memory) {
        size_t n = 0;
        buf = read_file(path, &n);
        if (!buf) return lm_fail(err, LOOM_ERR_IO, "cannot read %s", path);
        rc = lm_gguf_open_memory(buf, n, &g, err);
    } else {
        rc = lm_gguf_open(path, &g, err);
    }
    if (rc != 0 && g) {
        rc = lm_fail(err, 1, "handle returned on failure");
    } else if (rc == 0 && tensor) {
        const lm_gguf_tensor *t = NULL;
        int64_t any[1] = {-1};
        rc = lm_gguf_get_tensor(g, tensor, 1, any, &t, err);
    }
    lm_gguf_close(&g);
    free(buf);
    return rc;
}

static void test_bad_corpus(void)
{
    FILE *m = fopen("data/gguf_bad/MANIFEST", "r");
    CHECK(m != NULL, "data/gguf_bad/MANIFEST readable");
    if (!m) return;
    char line[1024];
    int n_cases = 0;
    while (fgets(line, sizeof line, m)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#') continue;
        char *file = strtok(line, "\t"), *status = strtok(NULL, "\t"), *msg = strtok(NULL, "\t"), *tensor = strtok(NULL, "\t");
        CHECK(file && status && msg, "manifest line has 3+ fields");
        if (!file || !status || !msg) continue;
        n_cases++;
        char path[512];
        snprintf(path, sizeof path, "data/gguf_bad/%s", file);
        int want = status_by_name(status);
        for (int mem = 0; mem < 2; mem++) {
            lm_error err = {0};
            int rc = open_case(path, mem, tensor, &err);
            CHECK(rc == want, "%s (%s): status %d (%s), want %s; message: %s", file, mem ? "memory" : "file", rc,
                  loom_status_str(rc), status, err.msg);
            CHECK(has(err.msg, msg), "%s (%s): message '%s' lacks '%s'", file, mem ? "memory" : "file", err.msg, msg);
            if (!mem && !tensor) CHECK(has(err.msg, path), "%s: message names the file: %s", file, err.msg);
        }
    }
    fclose(m);
    CHECK(n_cases >= 18, "corpus has %d cases", n_cases);
}

/* Every truncation of a valid file fails cleanly (no crash, FORMAT, no handle). */
static void test_truncations(void)
{
    FILE *f = fopen("data/gguf/tiny.gguf", "rb");
    CHECK(f != NULL, "tiny.gguf");
    if (!f) return;
    static unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    lm_gguf *g = NULL;
    lm_error err = {0};
    int bad = 0;
    for (size_t cut = 0; cut < n; cut += (cut < 4096 ? 1 : 97)) {
        int rc = lm_gguf_open_memory(buf, cut, &g, &err);
        if (rc != LOOM_ERR_FORMAT || g) {
            if (!bad) fprintf(stderr, "cut at %zu: rc %d (%s)\n", cut, rc, err.msg);
            bad++;
        }
        lm_gguf_close(&g);
    }
    CHECK(bad == 0, "%d truncations did not fail with LOOM_ERR_FORMAT", bad);
    CHECK(lm_gguf_open_memory(buf, n, &g, &err) == 0, "whole file opens from memory: %s", err.msg);
    lm_gguf_close(&g);
}

int main(void)
{
    test_scalars();
    test_arrays();
    test_tensors(32);
    test_tensors(64);
    test_writer_errors();
    test_writer_atomic();
    test_copy_and_fill();
    test_python_fixture();
    test_bad_corpus();
    test_truncations();
    return finish();
}
