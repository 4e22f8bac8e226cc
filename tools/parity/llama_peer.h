/*
 * llama.cpp (the peer) loaded with dlopen from node-llama-cpp's prebuilt linux-x64 binaries,
 * for parity checks and benchmarks. Header-only; used by tools/parity/peer.c and
 * bench/bench_decoder.c. Not part of libloom.
 *
 * The struct layouts below mirror include/llama.h of the exact llama.cpp release the binary
 * was built from (node-llama-cpp 3.22.1 ships it as llama/gitRelease.bundle, commit
 * de3ff815ea7d). They are only ever filled by the library's own *_default_params() and then
 * changed field by field; lp_open() checks every default it knows against the source, so a
 * layout mismatch is reported instead of corrupting memory. The structs are padded so a
 * larger real struct could never be written past our buffer.
 */
#ifndef LOOM_LLAMA_PEER_H
#define LOOM_LLAMA_PEER_H

#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LP_BINS "peer/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"

typedef struct lp_model_params {            /* llama_model_params */
    void *devices;
    const void *tensor_buft_overrides;
    int32_t n_gpu_layers;
    int32_t split_mode;
    int32_t load_mode;
    int32_t lazy_mode;
    int32_t main_gpu;
    const float *tensor_split;
    void *progress_callback;
    void *progress_callback_user_data;
    const void *kv_overrides;
    bool vocab_only, check_tensors, use_extra_bufts, no_host, no_alloc, load_mtp;
    char pad_[256];
} lp_model_params;

typedef struct lp_context_params {          /* llama_context_params */
    uint32_t n_ctx, n_batch, n_ubatch, n_seq_max, n_rs_seq, n_outputs_max, n_outputs_max_per_seq;
    int32_t  n_threads, n_threads_batch;
    int32_t  ctx_type, rope_scaling_type, pooling_type, attention_type, flash_attn_type;
    float    rope_freq_base, rope_freq_scale, yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow;
    uint32_t yarn_orig_ctx;
    float    defrag_thold;
    void    *cb_eval, *cb_eval_user_data;
    int32_t  type_k, type_v;
    void    *abort_callback, *abort_callback_data;
    bool     embeddings, offload_kqv, no_perf, op_offload, swa_full, kv_unified;
    void    *samplers;
    size_t   n_samplers;
    void    *ctx_other;
    char     pad_[256];
} lp_context_params;

typedef struct lp_batch {                   /* llama_batch */
    int32_t   n_tokens;
    int32_t  *token;
    float    *embd;
    int32_t  *pos;
    int32_t  *n_seq_id;
    int32_t **seq_id;
    int8_t   *logits;
} lp_batch;

typedef struct lp_api {
    void *lib;
    char  cpu_variant[64];  /* which libggml-cpu-*.so got loaded */
    void (*backend_init)(void);
    void (*load_all_from_path)(const char *dir);
    void *(*backend_load)(const char *path);
    void (*log_set)(void (*cb)(int, const char *, void *), void *user);
    lp_model_params (*model_default_params)(void);
    lp_context_params (*context_default_params)(void);
    void *(*model_load)(const char *path, lp_model_params p);
    void (*model_free)(void *model);
    void *(*init_from_model)(void *model, lp_context_params p);
    void (*free_ctx)(void *ctx);
    lp_batch (*batch_init)(int32_t n_tokens, int32_t embd, int32_t n_seq_max);
    void (*batch_free)(lp_batch b);
    int32_t (*decode)(void *ctx, lp_batch b);
    float *(*get_logits_ith)(void *ctx, int32_t i);
    void *(*get_memory)(const void *ctx);
    void (*memory_clear)(void *mem, bool data);
    bool (*memory_seq_rm)(void *mem, int32_t seq, int32_t p0, int32_t p1);
    const void *(*model_get_vocab)(const void *model);
    int32_t (*vocab_n_tokens)(const void *vocab);
    void (*set_n_threads)(void *ctx, int32_t n, int32_t n_batch);
} lp_api;

static void lp_quiet_log(int level, const char *text, void *user) { (void)level; (void)text; (void)user; }
static void lp_verbose_log(int level, const char *text, void *user) { (void)level; (void)user; fputs(text, stderr); }

/* Name of the libggml-cpu-*.so mapped into this process (after a model load). */
static inline void lp_find_cpu_variant(char *out, size_t size)
{
    snprintf(out, size, "?");
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, "libggml-cpu-");
        if (!p) continue;
        char *e = strstr(p, ".so");
        if (e) *e = 0;
        snprintf(out, size, "%s", p + strlen("libggml-cpu-"));
        break;
    }
    fclose(f);
}

/* Load the peer from `bins` (NULL: $LOOM_PEER_BINS or LP_BINS under the cwd). cpu: NULL to
 * let ggml pick the best libggml-cpu variant, or a variant name ("zen4", "skylakex", …).
 * Returns 0, or -1 with a message on stderr. */
static inline int lp_open(lp_api *a, const char *bins, const char *cpu, int verbose)
{
    memset(a, 0, sizeof *a);
    if (!bins) bins = getenv("LOOM_PEER_BINS") ? getenv("LOOM_PEER_BINS") : LP_BINS;
    char path[1024];
    snprintf(path, sizeof path, "%s/libllama.v0.5.0.so", bins);
    a->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!a->lib) { fprintf(stderr, "peer: %s\n", dlerror()); return -1; }
    snprintf(path, sizeof path, "%s/libggml.v0.5.0.so", bins);
    void *gg = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!gg) { fprintf(stderr, "peer: %s\n", dlerror()); return -1; }
#define SYM(lib, field, name) do { *(void **)&a->field = dlsym(lib, name); \
        if (!a->field) { fprintf(stderr, "peer: missing symbol %s\n", name); return -1; } } while (0)
    SYM(a->lib, backend_init, "llama_backend_init");
    SYM(gg, load_all_from_path, "ggml_backend_load_all_from_path");
    SYM(gg, backend_load, "ggml_backend_load");
    SYM(a->lib, log_set, "llama_log_set");
    SYM(a->lib, model_default_params, "llama_model_default_params");
    SYM(a->lib, context_default_params, "llama_context_default_params");
    SYM(a->lib, model_load, "llama_model_load_from_file");
    SYM(a->lib, model_free, "llama_model_free");
    SYM(a->lib, init_from_model, "llama_init_from_model");
    SYM(a->lib, free_ctx, "llama_free");
    SYM(a->lib, batch_init, "llama_batch_init");
    SYM(a->lib, batch_free, "llama_batch_free");
    SYM(a->lib, decode, "llama_decode");
    SYM(a->lib, get_logits_ith, "llama_get_logits_ith");
    SYM(a->lib, get_memory, "llama_get_memory");
    SYM(a->lib, memory_clear, "llama_memory_clear");
    SYM(a->lib, memory_seq_rm, "llama_memory_seq_rm");
    SYM(a->lib, model_get_vocab, "llama_model_get_vocab");
    SYM(a->lib, vocab_n_tokens, "llama_vocab_n_tokens");
    SYM(a->lib, set_n_threads, "llama_set_n_threads");
#undef SYM
    a->log_set(verbose ? lp_verbose_log : lp_quiet_log, NULL);
    if (cpu) {
        snprintf(path, sizeof path, "%s/libggml-cpu-%s.so", bins, cpu);
        if (!a->backend_load(path)) { fprintf(stderr, "peer: cannot load %s\n", path); return -1; }
    } else {
        a->load_all_from_path(bins);
    }
    a->backend_init();

    /* layout check: every default the release's source sets */
    lp_model_params mp = a->model_default_params();
    lp_context_params cp = a->context_default_params();
    int ok = mp.devices == NULL && mp.n_gpu_layers == -1 && mp.split_mode == 1 && mp.load_mode == -1 &&
             mp.lazy_mode == 1 && mp.main_gpu == 0 && !mp.vocab_only && !mp.check_tensors &&
             mp.use_extra_bufts && !mp.no_host && !mp.no_alloc && !mp.load_mtp &&
             cp.n_ctx == 512 && cp.n_batch == 2048 && cp.n_ubatch == 512 && cp.n_seq_max == 1 &&
             cp.n_rs_seq == 0 && cp.n_outputs_max == 0 && cp.n_outputs_max_per_seq == 1 &&
             cp.flash_attn_type == -1 && cp.yarn_ext_factor == -1.0f && cp.yarn_beta_slow == -1.0f &&
             cp.yarn_orig_ctx == 0 && cp.defrag_thold == -1.0f && cp.type_k == 1 && cp.type_v == 1 &&
             cp.abort_callback == NULL && !cp.embeddings && cp.offload_kqv && cp.no_perf &&
             cp.op_offload && cp.swa_full && !cp.kv_unified && cp.samplers == NULL && cp.n_samplers == 0 &&
             cp.ctx_other == NULL;
    if (!ok) { fprintf(stderr, "peer: llama.h struct layout does not match this libllama\n"); return -1; }
    return 0;
}

/* Load a model on the CPU with F32 K/V cache and flash attention off, n_ctx positions.
 * use_extra_bufts = 0 avoids the AMX repack path that aborts on deepseek2 F16/Q8_0. */
static inline int lp_load(lp_api *a, const char *path, int n_ctx, int n_batch, int n_threads, void **model, void **ctx)
{
    lp_model_params mp = a->model_default_params();
    mp.n_gpu_layers = 0;
    mp.use_extra_bufts = false;
    *model = a->model_load(path, mp);
    if (!*model) { fprintf(stderr, "peer: llama.cpp cannot load %s\n", path); return -1; }
    lp_context_params cp = a->context_default_params();
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_batch = cp.n_ubatch = (uint32_t)n_batch;
    cp.n_outputs_max = 0;
    cp.n_outputs_max_per_seq = 0;
    cp.n_threads = cp.n_threads_batch = n_threads;
    cp.flash_attn_type = 0;
    cp.type_k = cp.type_v = 0; /* GGML_TYPE_F32 */
    cp.offload_kqv = false;
    cp.op_offload = false;
    *ctx = a->init_from_model(*model, cp);
    if (!*ctx) { fprintf(stderr, "peer: llama.cpp cannot create a context for %s\n", path); return -1; }
    lp_find_cpu_variant(a->cpu_variant, sizeof a->cpu_variant);
    return 0;
}

/* Evaluate tokens[0..n) at positions pos0…; logits of every position into out[n][n_vocab]
 * when out, else only the last (returned by get_logits_ith(-1)). Chunks of n_batch. */
static inline int lp_eval(lp_api *a, void *ctx, lp_batch *b, const int32_t *tokens, int n, int pos0, int n_batch,
                   int all, float *out, int n_vocab)
{
    for (int done = 0; done < n;) {
        int m = n - done < n_batch ? n - done : n_batch;
        b->n_tokens = m;
        for (int i = 0; i < m; i++) {
            b->token[i] = tokens[done + i];
            b->pos[i] = pos0 + done + i;
            b->n_seq_id[i] = 1;
            b->seq_id[i][0] = 0;
            b->logits[i] = (int8_t)(all || done + i == n - 1);
        }
        if (a->decode(ctx, *b) != 0) { fprintf(stderr, "peer: llama_decode failed\n"); return -1; }
        if (out && all)
            for (int i = 0; i < m; i++)
                memcpy(out + (size_t)(done + i) * n_vocab, a->get_logits_ith(ctx, i), (size_t)n_vocab * sizeof(float));
        done += m;
    }
    if (out && !all) memcpy(out, a->get_logits_ith(ctx, -1), (size_t)n_vocab * sizeof(float));
    return 0;
}

#endif
