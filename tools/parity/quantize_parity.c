/*
 * loom_quantize against llama.cpp's llama_model_quantize (the peer, loaded with dlopen from
 * node-llama-cpp's prebuilt binaries; see llama_peer.h). Both convert the same random-weight
 * deepseek2 files (tools/parity/parity_models.h) and the bundled loom-tiny decoder; every
 * tensor of the two outputs must have the same type, shape and bytes; keys that differ are
 * listed. Exit 0 when every tensor agrees.
 *   tools/parity/quantize            (builds loom, installs the peer if needed)
 *   build/quantize_parity [--tiny]   (--tiny: leave out the ~217 M-parameter model)
 */
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/core/gguf.h"
#include "loom.h"
#include "tools/parity/llama_peer.h"
#include "tools/parity/parity_models.h"

typedef struct lp_quantize_params {   /* llama_model_quantize_params (include/llama.h) */
    int32_t nthread;
    int32_t ftype;                    /* enum llama_ftype */
    int32_t output_tensor_type, token_embedding_type;
    bool allow_requantize, quantize_output_tensor, only_copy, pure, keep_split, dry_run;
    const void *imatrix, *kv_overrides, *tt_overrides;
    const int32_t *prune_layers;
    size_t max_buf_size;
    char pad_[256];
} lp_quantize_params;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Compare the tensors (by name) and keys of a and b; returns the number of differing tensors. */
static int compare(const char *pa, const char *pb, int verbose)
{
    lm_gguf *a = NULL, *b = NULL;
    lm_error e = {0};
    if (lm_gguf_open(pa, &a, &e) < 0 || lm_gguf_open(pb, &b, &e) < 0) {
        printf("  cannot open: %s\n", e.msg);
        lm_gguf_close(&a);
        return 1;
    }
    int bad = 0, converted = 0;
    for (int64_t i = 0; i < lm_gguf_n_tensors(a); i++) {
        const lm_gguf_tensor *ta = lm_gguf_tensor_at(a, i), *tb = lm_gguf_find_tensor(b, ta->name);
        int same = tb && ta->type == tb->type && !memcmp(ta->ne, tb->ne, sizeof ta->ne) && ta->n_bytes == tb->n_bytes &&
                   ta->data && tb->data && !memcmp(ta->data, tb->data, ta->n_bytes);
        converted += ta->type == LOOM_TYPE_Q8_0 || ta->type == LOOM_TYPE_F16 || ta->type == LOOM_TYPE_BF16;
        if (!same && (bad++ < 8 || verbose))
            printf("  tensor %s: llama.cpp %s, loom %s%s\n", ta->name, loom_type_name(ta->type),
                   tb ? loom_type_name(tb->type) : "missing", tb && ta->type == tb->type ? " (other bytes)" : "");
    }
    if (lm_gguf_n_tensors(a) != lm_gguf_n_tensors(b)) {
        printf("  %" PRId64 " tensors from llama.cpp, %" PRId64 " from loom\n", lm_gguf_n_tensors(a), lm_gguf_n_tensors(b));
        bad++;
    }
    char va[512], vb[512];
    printf("  %" PRId64 " tensors (%d of them in a 16/8-bit type), %d differ; keys:", lm_gguf_n_tensors(a), converted, bad);
    int key_diffs = 0;
    for (int64_t i = 0; i < lm_gguf_n_kv(a); i++) {
        int64_t j = lm_gguf_find_kv(b, lm_gguf_kv_key(a, i));
        if (j < 0) { printf(" %s only in llama.cpp's;", lm_gguf_kv_key(a, i)); key_diffs++; continue; }
        lm_gguf_kv_to_str(a, i, va, sizeof va);
        lm_gguf_kv_to_str(b, j, vb, sizeof vb);
        if (strcmp(va, vb)) { printf(" %s = %s / %s;", lm_gguf_kv_key(a, i), va, vb); key_diffs++; }
    }
    for (int64_t j = 0; j < lm_gguf_n_kv(b); j++)
        if (lm_gguf_find_kv(a, lm_gguf_kv_key(b, j)) < 0) { printf(" %s only in loom's;", lm_gguf_kv_key(b, j)); key_diffs++; }
    printf(key_diffs ? "\n" : " all equal\n");
    lm_gguf_close(&a);
    lm_gguf_close(&b);
    return bad;
}

/* Convert `in` with both, to the type of llama ftype `ftype`; returns differing tensors. */
static int run_one(uint32_t (*quantize)(const char *, const char *, const lp_quantize_params *),
                   lp_quantize_params (*defaults)(void), const char *name, const char *in, int ftype, int type,
                   int verbose)
{
    char out_llama[512], out_loom[512], err[512];
    snprintf(out_llama, sizeof out_llama, "out/parity/quantize-llama-%s-%s.gguf", name, loom_type_name(type));
    snprintf(out_loom, sizeof out_loom, "out/parity/quantize-loom-%s-%s.gguf", name, loom_type_name(type));
    printf("%s -> %s\n", name, loom_type_name(type));
    lp_quantize_params qp = defaults();
    if (qp.ftype != 7 || !qp.quantize_output_tensor || qp.only_copy || qp.pure || qp.dry_run) {
        printf("  llama_model_quantize_params layout does not match this libllama\n");
        return 1;
    }
    qp.nthread = 2;
    qp.ftype = ftype;
    const double t0 = now_s();
    if (quantize(in, out_llama, &qp) != 0) {
        printf("  llama.cpp could not convert it\n");
        return 1;
    }
    loom_quantize_params lq = loom_quantize_default_params();
    lq.type = type;
    lq.n_threads = 2;
    const double t1 = now_s();
    if (loom_quantize(in, out_loom, lq, NULL, err, sizeof err) < 0) {
        printf("  loom: %s\n", err);
        return 1;
    }
    const double t2 = now_s();
    printf("  wall time, 2 threads each: llama.cpp %.3f s, loom %.3f s (loom fsyncs its output): %.2fx\n", t1 - t0, t2 - t1,
           (t1 - t0) / (t2 - t1));
    int bad = compare(out_llama, out_loom, verbose);
    if (!bad) {
        unlink(out_llama);
        unlink(out_loom);
    }
    return bad;
}

int main(int argc, char **argv)
{
    int tiny = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tiny")) tiny = 1;
        else if (!strcmp(argv[i], "--verbose")) verbose = 1;
        else { fprintf(stderr, "usage: quantize_parity [--tiny] [--verbose]\n"); return 2; }
    }
    lp_api lp;
    if (lp_open(&lp, NULL, NULL, 0) < 0) return 1;
    uint32_t (*quantize)(const char *, const char *, const lp_quantize_params *);
    lp_quantize_params (*defaults)(void);
    *(void **)&quantize = dlsym(lp.lib, "llama_model_quantize");
    *(void **)&defaults = dlsym(lp.lib, "llama_model_quantize_default_params");
    if (!quantize || !defaults) { fprintf(stderr, "peer: no llama_model_quantize\n"); return 1; }
    mkdir("out", 0777);
    mkdir("out/parity", 0777);

    /* sources: the parity models in f32 (every target) and f16 / bf16 (to q8_0) */
    lm_synth_params a = lm_synth_tiny_params(), big = parity_big_params(LOOM_TYPE_F16);
    parity_model pm[16];
    const int n_pm = parity_models(pm, 16);
    int failed = 0, runs = 0;
    for (int k = 0; k < n_pm; k++) {
        if (pm[k].p.type != LOOM_TYPE_F32 || (tiny && !pm[k].tiny)) continue;
        char in[512];
        lm_error e = {0};
        snprintf(in, sizeof in, "out/parity/%s.gguf", pm[k].name);
        if (lm_synth_write(&pm[k].p, in, &e) < 0) { printf("%s: %s\n", in, e.msg); return 1; }
        failed += run_one(quantize, defaults, pm[k].name, in, 7, LOOM_TYPE_Q8_0, verbose) != 0;
        failed += run_one(quantize, defaults, pm[k].name, in, 1, LOOM_TYPE_F16, verbose) != 0;
        failed += run_one(quantize, defaults, pm[k].name, in, 32, LOOM_TYPE_BF16, verbose) != 0;
        runs += 3;
    }
    struct { const char *name; lm_synth_params p; int type; } src[] = {
        {"tiny-split-sigmoid-f16", a, LOOM_TYPE_F16}, {"tiny-split-sigmoid-bf16", a, LOOM_TYPE_BF16},
        {"big-split-sigmoid-f16", big, LOOM_TYPE_F16},
    };
    for (size_t k = 0; k < sizeof src / sizeof src[0]; k++) {
        if (tiny && !strncmp(src[k].name, "big", 3)) continue;
        char in[512];
        lm_error e = {0};
        src[k].p.type = src[k].type;
        snprintf(in, sizeof in, "out/parity/%s.gguf", src[k].name);
        if (lm_synth_write(&src[k].p, in, &e) < 0) { printf("%s: %s\n", in, e.msg); return 1; }
        failed += run_one(quantize, defaults, src[k].name, in, 7, LOOM_TYPE_Q8_0, verbose) != 0;
        runs++;
    }
    /* the bundled decoder (f16) */
    struct stat st;
    if (stat("models/loom-tiny.gguf", &st) == 0) {
        failed += run_one(quantize, defaults, "loom-tiny", "models/loom-tiny.gguf", 7, LOOM_TYPE_Q8_0, verbose) != 0;
        runs++;
    }
    printf("\n%d of %d conversions byte-identical to llama.cpp's\n", runs - failed, runs);
    return failed ? 1 : 0;
}
