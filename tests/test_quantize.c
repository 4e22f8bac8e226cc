/*
 * loom_quantize (`loom quantize`): a synthetic F32 decoder converted to Q8_0 / F16 / BF16
 * has, tensor for tensor, the bytes of the same model written directly in that type
 * (lib/core/decoder_synth.c rounds the same F32 values; its router and norms stay F32, as
 * loom_quantize leaves them), every key of the input and llama.cpp's general.file_type and
 * general.quantization_version; it
 * loads and gives the direct file's logits. The bundled loom-tiny files convert and load.
 * Bad inputs (missing, malformed, unknown tensor types, the output being the input, a bad
 * type, an unwritable output) fail with a message and leave no file behind.
 */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

#include "lib/core/gguf.h"
#include "tests/decoder_test_util.h"

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Every key of `a` is in `b` with the same type and text; b has no other keys but
 * general.file_type (`file_type`) and general.quantization_version (2). */
static void check_keys(const lm_gguf *a, const lm_gguf *b, uint32_t file_type, const char *tag)
{
    static char va[4096], vb[4096];
    int64_t extra = 0;
    for (int64_t i = 0; i < lm_gguf_n_kv(a); i++) {
        const char *key = lm_gguf_kv_key(a, i);
        int64_t j = lm_gguf_find_kv(b, key);
        CHECK(j >= 0, "%s: key '%s' lost", tag, key);
        if (j < 0) continue;
        CHECK(lm_gguf_kv_type(a, i) == lm_gguf_kv_type(b, j), "%s: key '%s' changed type", tag, key);
        CHECK(!strcmp(lm_gguf_kv_to_str(a, i, va, sizeof va), lm_gguf_kv_to_str(b, j, vb, sizeof vb)),
              "%s: key '%s': '%s' became '%s'", tag, key, va, vb);
    }
    for (int64_t j = 0; j < lm_gguf_n_kv(b); j++)
        if (lm_gguf_find_kv(a, lm_gguf_kv_key(b, j)) < 0) extra++;
    uint32_t ft = 99;
    lm_error e = {0};
    CHECK(lm_gguf_get_u32(b, "general.file_type", &ft, &e) == 0 && ft == file_type,
          "%s: general.file_type %u, expected %u", tag, ft, file_type);
    uint32_t qv = 0;
    CHECK(lm_gguf_get_u32(b, "general.quantization_version", &qv, &e) == 0 && qv == 2,
          "%s: general.quantization_version %u", tag, qv);
    CHECK(extra == (lm_gguf_find_kv(a, "general.file_type") < 0) + (lm_gguf_find_kv(a, "general.quantization_version") < 0),
          "%s: %lld new keys", tag, (long long)extra);
}

/* Same tensors, in the same order, with the same names, shapes, types and bytes. */
static void check_same_tensors(const lm_gguf *want, const lm_gguf *got, const char *tag)
{
    CHECK(lm_gguf_n_tensors(want) == lm_gguf_n_tensors(got), "%s: %lld tensors, expected %lld", tag,
          (long long)lm_gguf_n_tensors(got), (long long)lm_gguf_n_tensors(want));
    int bad = 0;
    for (int64_t i = 0; i < lm_gguf_n_tensors(want) && i < lm_gguf_n_tensors(got); i++) {
        const lm_gguf_tensor *a = lm_gguf_tensor_at(want, i), *b = lm_gguf_tensor_at(got, i);
        int same = !strcmp(a->name, b->name) && a->type == b->type && a->n_dims == b->n_dims &&
                   !memcmp(a->ne, b->ne, sizeof a->ne) && a->n_bytes == b->n_bytes &&
                   !memcmp(a->data, b->data, a->n_bytes);
        if (!same && bad++ < 5)
            printf("  %s: tensor %lld '%s' (%s) differs from '%s' (%s)\n", tag, (long long)i, b->name,
                   loom_type_name(b->type), a->name, loom_type_name(a->type));
    }
    CHECK(bad == 0, "%s: %d tensors differ", tag, bad);
}

static void on_progress(int64_t done, int64_t total, void *user)
{
    int64_t *seen = user;   /* [calls, last done, last total, out-of-order] */
    seen[0]++;
    if (done != seen[1] + 1 || total != (seen[2] ? seen[2] : total)) seen[3]++;
    seen[1] = done;
    seen[2] = total;
}

/* Synth F32 → loom_quantize(type) equals synth(type), byte for byte; logits equal too. */
static void test_matches_direct(int type, uint32_t file_type)
{
    char tag[32], p32[256], pdirect[256], pconv[256], err[512];
    snprintf(tag, sizeof tag, "f32->%s", loom_type_name(type));
    lm_synth_params sp = lm_synth_tiny_params();
    lm_error e = {0};
    tmp_model_path(p32, sizeof p32, "q-f32");
    tmp_model_path(pdirect, sizeof pdirect, "q-direct");
    tmp_model_path(pconv, sizeof pconv, "q-conv");
    CHECK(lm_synth_write(&sp, p32, &e) == 0, "%s: synth f32: %s", tag, e.msg);
    sp.type = type;
    CHECK(lm_synth_write(&sp, pdirect, &e) == 0, "%s: synth: %s", tag, e.msg);

    loom_quantize_params qp = loom_quantize_default_params();
    CHECK(qp.type == LOOM_TYPE_Q8_0 && qp.n_threads == 0, "default type %d, threads %d", qp.type, qp.n_threads);
    qp.type = type;
    qp.n_threads = 1;
    int64_t seen[4] = {0};
    qp.on_progress = on_progress;
    qp.user_data = seen;
    loom_quantize_stats st = {0};
    int rc = loom_quantize(p32, pconv, qp, &st, err, sizeof err);
    CHECK(rc == 0, "%s: loom_quantize: %s", tag, err);

    lm_gguf *g32 = NULL, *gd = NULL, *gc = NULL;
    if (rc == 0 && lm_gguf_open(p32, &g32, &e) == 0 && lm_gguf_open(pdirect, &gd, &e) == 0 &&
        lm_gguf_open(pconv, &gc, &e) == 0) {
        check_same_tensors(gd, gc, tag);
        check_keys(g32, gc, file_type, tag);
        int64_t n_conv = 0, n_router = 0;
        uint64_t bytes_in = 0, bytes_out = 0;
        for (int64_t i = 0; i < lm_gguf_n_tensors(gc); i++) {
            const lm_gguf_tensor *t = lm_gguf_tensor_at(gc, i);
            n_conv += t->type == type;
            n_router += strstr(t->name, "ffn_gate_inp") != NULL;
            bytes_in += lm_gguf_tensor_at(g32, i)->n_bytes;
            bytes_out += t->n_bytes;
        }
        CHECK(n_router > 0 && n_conv > 10, "%s: %lld converted, %lld routers", tag, (long long)n_conv, (long long)n_router);
        CHECK(st.n_converted == n_conv && st.n_tensors == lm_gguf_n_tensors(gc) && st.bytes_in == bytes_in &&
              st.bytes_out == bytes_out,
              "%s: stats %lld/%lld tensors, %llu -> %llu bytes; expected %lld, %llu -> %llu", tag,
              (long long)st.n_converted, (long long)st.n_tensors, (unsigned long long)st.bytes_in,
              (unsigned long long)st.bytes_out, (long long)n_conv, (unsigned long long)bytes_in,
              (unsigned long long)bytes_out);
        CHECK(seen[0] == n_conv && seen[1] == n_conv && seen[2] == n_conv && seen[3] == 0,
              "%s: progress called %lld times, last %lld/%lld, %lld out of order", tag, (long long)seen[0],
              (long long)seen[1], (long long)seen[2], (long long)seen[3]);
    } else {
        CHECK(0, "%s: open: %s", tag, e.msg);
    }
    lm_gguf_close(&g32);
    lm_gguf_close(&gd);

    /* Any thread count writes the same file. */
    char pthr[256];
    tmp_model_path(pthr, sizeof pthr, "q-threads");
    qp.n_threads = 3;
    qp.on_progress = NULL;
    lm_gguf *gt = NULL;
    CHECK(loom_quantize(p32, pthr, qp, NULL, err, sizeof err) == 0 && lm_gguf_open(pthr, &gt, &e) == 0,
          "%s: 3 threads: %s / %s", tag, err, e.msg);
    if (gt && gc) check_same_tensors(gc, gt, "3 threads against 1");
    lm_gguf_close(&gt);
    lm_gguf_close(&gc);
    unlink(pthr);

    /* The converted file runs like the direct one. */
    loom_model *md = NULL, *mc = NULL;
    loom_session *sd = NULL, *sc = NULL;
    const int32_t prompt[] = {1, 17, 300, 42, 99, 5};
    if (loom_model_load(pdirect, loom_model_default_params(), &md, err, sizeof err) == 0 &&
        loom_model_load(pconv, loom_model_default_params(), &mc, err, sizeof err) == 0 &&
        loom_session_create(md, loom_session_default_params(), &sd, err, sizeof err) == 0 &&
        loom_session_create(mc, loom_session_default_params(), &sc, err, sizeof err) == 0) {
        CHECK(loom_session_prompt(sd, prompt, 6, NULL) == 0 && loom_session_prompt(sc, prompt, 6, NULL) == 0,
              "%s: prompt", tag);
        CHECK(!memcmp(loom_session_logits(sd), loom_session_logits(sc), sizeof(float) * (size_t)loom_model_n_vocab(md)),
              "%s: logits of the converted file differ from the direct file's", tag);
    } else {
        CHECK(0, "%s: load: %s", tag, err);
    }
    loom_session_free(&sd);
    loom_session_free(&sc);
    loom_model_free(&md);
    loom_model_free(&mc);
    unlink(p32);
    unlink(pdirect);
    unlink(pconv);
}

/* Q8_0 → F32 widens every converted value exactly (d · q), and converting a file to its own
 * type copies it. */
static void test_widen_and_same_type(void)
{
    char p8[256], p32[256], p8b[256], err[512];
    lm_synth_params sp = lm_synth_tiny_params();
    sp.type = LOOM_TYPE_Q8_0;
    lm_error e = {0};
    tmp_model_path(p8, sizeof p8, "w-q8");
    tmp_model_path(p32, sizeof p32, "w-f32");
    tmp_model_path(p8b, sizeof p8b, "w-q8b");
    CHECK(lm_synth_write(&sp, p8, &e) == 0, "synth: %s", e.msg);
    loom_quantize_params qp = loom_quantize_default_params();
    qp.type = LOOM_TYPE_F32;
    CHECK(loom_quantize(p8, p32, qp, NULL, err, sizeof err) == 0, "q8_0->f32: %s", err);
    qp.type = LOOM_TYPE_Q8_0;
    loom_quantize_stats st = {0};
    CHECK(loom_quantize(p8, p8b, qp, &st, err, sizeof err) == 0, "q8_0->q8_0: %s", err);
    CHECK(st.n_converted == 0 && st.bytes_in == st.bytes_out, "q8_0->q8_0 converted %lld tensors", (long long)st.n_converted);
    lm_gguf *g8 = NULL, *g32 = NULL, *g8b = NULL;
    if (lm_gguf_open(p8, &g8, &e) == 0 && lm_gguf_open(p32, &g32, &e) == 0 && lm_gguf_open(p8b, &g8b, &e) == 0) {
        check_same_tensors(g8, g8b, "q8_0->q8_0");
        int64_t bad = 0, n_widened = 0;
        for (int64_t i = 0; i < lm_gguf_n_tensors(g8); i++) {
            const lm_gguf_tensor *a = lm_gguf_tensor_at(g8, i), *b = lm_gguf_tensor_at(g32, i);
            if (a->type != LOOM_TYPE_Q8_0) continue;
            n_widened++;
            const lm_block_q8_0 *blk = a->data;
            const float *f = b->data;
            const int64_t n = a->ne[0] * a->ne[1] * a->ne[2] * a->ne[3];
            for (int64_t k = 0; k < n; k++)
                bad += b->type != LOOM_TYPE_F32 || f[k] != lm_f16_to_f32(blk[k / 32].d) * (float)blk[k / 32].qs[k % 32];
        }
        CHECK(n_widened > 10 && bad == 0, "q8_0->f32: %lld of the values in %lld tensors are not d·q", (long long)bad,
              (long long)n_widened);
    } else {
        CHECK(0, "open: %s", e.msg);
    }
    lm_gguf_close(&g8);
    lm_gguf_close(&g32);
    lm_gguf_close(&g8b);
    unlink(p8);
    unlink(p32);
    unlink(p8b);
}

/* The bundled decoder and media encoders convert, load and caption like the originals. */
static void test_bundled(void)
{
    static const char *const files[] = {"../models/loom-tiny.gguf", "../models/loom-tiny-mmproj.gguf",
                                        "../models/loom-tiny-vq.gguf", "../models/loom-tiny-audiocodec.gguf"};
    char out[256], err[512];
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        tmp_model_path(out, sizeof out, "bundled");
        loom_quantize_stats st = {0};
        int rc = loom_quantize(files[f], out, loom_quantize_default_params(), &st, err, sizeof err);
        CHECK(rc == 0, "%s: %s", files[f], err);
        /* the decoder and encoders shrink; the codecs' kernels (rows of 1-3) stay as they are */
        if (f < 2) CHECK(st.n_converted > 10 && st.bytes_out < st.bytes_in * 0.6, "%s: %lld converted, %llu -> %llu bytes",
                         files[f], (long long)st.n_converted, (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out);
        if (f == 0) {
            loom_model *m = NULL;
            CHECK(loom_model_load(out, loom_model_default_params(), &m, err, sizeof err) == 0, "load q8_0 tiny: %s", err);
            loom_model_free(&m);
        }
        unlink(out);
    }
}

/* Write a copy of `src` whose first tensor has ggml type `type_id` (a type loom cannot read). */
static int write_unknown_type(const char *src, const char *dst, uint32_t type_id)
{
    struct stat st;
    FILE *f = fopen(src, "rb");
    unsigned char *buf = f && stat(src, &st) == 0 ? malloc((size_t)st.st_size) : NULL;
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    if (f) fclose(f);
    lm_gguf *g = NULL;
    lm_error e = {0};
    if (!buf || n != (size_t)st.st_size || lm_gguf_open(src, &g, &e) < 0) {
        free(buf);
        return -1;
    }
    const lm_gguf_tensor *t = lm_gguf_tensor_at(g, 0);
    size_t len = strlen(t->name);
    unsigned char *p = NULL;
    for (size_t i = 0; i + len + 8 < n && !p; i++)   /* u64 length, name, n_dims, dims, type */
        if (!memcmp(buf + i + 8, t->name, len) && buf[i] == len) p = buf + i + 8 + len + 4 + 8 * (size_t)t->n_dims;
    lm_gguf_close(&g);
    if (p) memcpy(p, &type_id, 4);
    f = p ? fopen(dst, "wb") : NULL;
    int ok = f && fwrite(buf, 1, n, f) == n;
    free(buf);
    return f && fclose(f) == 0 && ok ? 0 : -1;
}

static void test_bad_inputs(void)
{
    char in[256], out[256], bad[256], err[512];
    lm_synth_params sp = lm_synth_tiny_params();
    lm_error e = {0};
    tmp_model_path(in, sizeof in, "bad-in");
    tmp_model_path(out, sizeof out, "bad-out");
    tmp_model_path(bad, sizeof bad, "bad-file");
    CHECK(lm_synth_write(&sp, in, &e) == 0, "synth: %s", e.msg);
    loom_quantize_params qp = loom_quantize_default_params();

    CHECK(loom_quantize("/nonexistent/m.gguf", out, qp, NULL, err, sizeof err) == LOOM_ERR_IO &&
          strstr(err, "/nonexistent/m.gguf") && !file_exists(out), "missing input: '%s'", err);

    struct stat before, after;
    stat(in, &before);
    CHECK(loom_quantize(in, in, qp, NULL, err, sizeof err) == LOOM_ERR_INVALID_ARG && strstr(err, "the output is the input"),
          "same file: '%s'", err);
    stat(in, &after);
    CHECK(before.st_ino == after.st_ino && before.st_size == after.st_size && before.st_mtime == after.st_mtime,
          "same file: the input was touched");

    qp.type = 2;   /* q4_0: not one loom computes with */
    CHECK(loom_quantize(in, out, qp, NULL, err, sizeof err) == LOOM_ERR_INVALID_ARG && strstr(err, "type 2") &&
          !file_exists(out), "bad type: '%s'", err);
    qp = loom_quantize_default_params();

    CHECK(loom_quantize(in, "/nonexistent-dir/out.gguf", qp, NULL, err, sizeof err) < 0 && strstr(err, "/nonexistent-dir"),
          "unwritable output: '%s'", err);

    /* a truncated file */
    FILE *f = fopen(in, "rb"), *g = fopen(bad, "wb");
    static unsigned char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (g) fwrite(buf, 1, n / 2, g);
    if (f) fclose(f);
    if (g) fclose(g);
    CHECK(loom_quantize(bad, out, qp, NULL, err, sizeof err) == LOOM_ERR_FORMAT && err[0] && !file_exists(out),
          "truncated input: '%s'", err);

    /* a k-quant tensor (ggml type 12, q4_K) */
    CHECK(write_unknown_type(in, bad, 12) == 0, "could not write the q4_K file");
    int rc = loom_quantize(bad, out, qp, NULL, err, sizeof err);
    CHECK(rc == LOOM_ERR_UNSUPPORTED && strstr(err, "'token_embd.weight' has ggml type 12"), "q4_K input: %d '%s'", rc, err);
    CHECK(!file_exists(out), "q4_K input: an output file was left");

    CHECK(loom_quantize(NULL, out, qp, NULL, err, sizeof err) == LOOM_ERR_INVALID_ARG, "NULL input");
    unlink(in);
    unlink(bad);
    unlink(out);
}

int main(void)
{
    test_matches_direct(LOOM_TYPE_Q8_0, 7);
    test_matches_direct(LOOM_TYPE_F16, 1);
    test_matches_direct(LOOM_TYPE_BF16, 32);
    test_widen_and_same_type();
    test_bundled();
    test_bad_inputs();
    return finish();
}
