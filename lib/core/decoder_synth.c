/* Random-weight deepseek2 GGUF writer. See decoder_synth.h. */
#include "lib/core/decoder_synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/gguf.h"
#include "lib/core/types.h"

lm_synth_params lm_synth_tiny_params(void)
{
    return (lm_synth_params){
        .n_vocab = 512, .vocab = LM_SYNTH_VOCAB_SPM, .n_embd = 64, .n_layer = 3, .n_head = 4,
        .q_lora = 32, .kv_lora = 32, .n_nope = 32, .n_rope = 16, .n_v = 32, .mla_split = 1,
        .n_ff = 128, .n_dense_lead = 1, .n_ff_exp = 32, .n_expert = 8, .n_expert_used = 3,
        .n_expert_shared = 1, .n_group = 4, .n_group_used = 2, .gating = 2, .weights_norm = 1,
        .weights_scale = 2.5f, .exp_probs_b = 1, .tied = 0, .yarn = 1, .n_ctx_train = 4096,
        .type = LOOM_TYPE_F32, .seed = 1,
    };
}

/* splitmix64: fixed forever, so regenerated fixtures stay identical (the sampler's RNG is
 * free to change). */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-a, a) from integer arithmetic only (identical on every libm). */
static float uniform(uint64_t *s, float a) { return ((float)(mix(s) >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * a; }

static uint64_t name_seed(uint64_t seed, const char *name)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (const char *c = name; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
    return h;
}

typedef struct synth {
    const lm_synth_params *p;
    lm_gguf_writer *w;
    const char *skip_tensor, *bad_tensor;
    lm_error *err;
    int rc;
} synth;

/* Add a tensor of n_dims dims with values offset + uniform(±amp), stored as `type`. */
static void add(synth *s, const char *name, int type, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
                float offset, float amp)
{
    if (s->rc < 0 || (s->skip_tensor && !strcmp(name, s->skip_tensor))) return;
    if (s->bad_tensor && !strcmp(name, s->bad_tensor)) ne0 += lm_type_block_len(type);
    const int64_t ne[3] = {ne0, ne1, ne2};
    const int64_t rows = ne1 * ne2;
    const size_t rb = lm_row_bytes(type, ne0);
    float *f = malloc((size_t)ne0 * sizeof(float));
    char *data = malloc(rb * (size_t)rows);
    if (!f || !data || rb == 0) {
        s->rc = lm_fail(s->err, rb ? LOOM_ERR_NO_MEMORY : LOOM_ERR_INVALID_ARG,
                        "synth: tensor '%s': cannot store %lld values per row as %s", name, (long long)ne0,
                        loom_type_name(type));
    } else {
        uint64_t st = name_seed(s->p->seed, name);
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t i = 0; i < ne0; i++) f[i] = offset + uniform(&st, amp);
            lm_row_from_f32(type, f, data + (size_t)r * rb, ne0);
        }
        if (lm_gguf_add_tensor(s->w, name, type, n_dims, ne, data) < 0)
            s->rc = lm_fail(s->err, LOOM_ERR_NO_MEMORY, "synth: cannot add tensor '%s'", name);
    }
    free(f);
    free(data);
}

/* A weight {n_in, n_out(, n3)} with standard deviation gain/sqrt(n_in). */
static void weight(synth *s, const char *name, int n_dims, int64_t n_in, int64_t n_out, int64_t n3, float gain)
{
    add(s, name, s->p->type, n_dims, n_in, n_out, n3, 0.0f, gain * sqrtf(3.0f / (float)n_in));
}

static void norm(synth *s, const char *name, int64_t n) { add(s, name, LOOM_TYPE_F32, 1, n, 1, 1, 1.0f, 0.2f); }

static const char *bn(char *buf, int il, const char *what)
{
    snprintf(buf, 96, "blk.%d.%s", il, what);
    return buf;
}

static int vocab_spm(lm_gguf_writer *w, int32_t n)
{
    char **tok = calloc((size_t)n, sizeof *tok);
    float *score = malloc((size_t)n * sizeof *score);
    int32_t *type = malloc((size_t)n * sizeof *type);
    int rc = tok && score && type ? 0 : -1;
    for (int32_t i = 0; rc == 0 && i < n; i++) {
        char buf[32];
        if (i == 0) snprintf(buf, sizeof buf, "<unk>");
        else if (i == 1) snprintf(buf, sizeof buf, "<s>");
        else if (i == 2) snprintf(buf, sizeof buf, "</s>");
        else if (i < 259) snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
        else snprintf(buf, sizeof buf, "\xe2\x96\x81t%d", i); /* "▁t<i>" */
        type[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
        score[i] = i < 259 ? 0.0f : -(float)(i - 259);
        if (!(tok[i] = strdup(buf))) rc = -1;
    }
    if (rc == 0) {
        rc |= lm_gguf_set_str(w, "tokenizer.ggml.model", "llama");
        rc |= lm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, (uint64_t)n);
        rc |= lm_gguf_set_arr(w, "tokenizer.ggml.scores", LM_GGUF_F32, score, (uint64_t)n);
        rc |= lm_gguf_set_arr(w, "tokenizer.ggml.token_type", LM_GGUF_I32, type, (uint64_t)n);
        rc |= lm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        rc |= lm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
        rc |= lm_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        rc |= lm_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
    }
    for (int32_t i = 0; tok && i < n; i++) free(tok[i]);
    free(tok);
    free(score);
    free(type);
    return rc < 0 ? -1 : 0;
}

/* GPT-2 byte-level vocabulary: the 256 byte symbols, merges of a few common pairs, the
 * DeepSeek begin/end tokens, then filler tokens up to n. */
static int vocab_gpt2(lm_gguf_writer *w, int32_t n)
{
    static const char *pairs[][2] = {{"t", "h"}, {"\xc4\xa0", "t"}, {"h", "e"}, {"i", "n"}, {"e", "r"},
                                     {"a", "n"}, {"\xc4\xa0", "a"}, {"o", "n"}, {"th", "e"}, {"\xc4\xa0t", "he"}};
    const int n_pairs = (int)(sizeof pairs / sizeof pairs[0]);
    char **tok = calloc((size_t)n, sizeof *tok);
    int32_t *type = malloc((size_t)n * sizeof *type);
    char *merges[16];
    int rc = tok && type && n >= 256 + n_pairs + 2 ? 0 : -1;
    int extra = 256;
    for (int b = 0; rc == 0 && b < 256; b++) {
        /* GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256+k */
        int cp = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255) ? b : extra++;
        char buf[4];
        if (cp < 0x80) { buf[0] = (char)cp; buf[1] = 0; }
        else { buf[0] = (char)(0xC0 | (cp >> 6)); buf[1] = (char)(0x80 | (cp & 0x3F)); buf[2] = 0; }
        tok[b] = strdup(buf);
        type[b] = 1;
    }
    for (int i = 0; rc == 0 && i < n_pairs; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%s%s", pairs[i][0], pairs[i][1]);
        tok[256 + i] = strdup(buf);
        type[256 + i] = 1;
        snprintf(buf, sizeof buf, "%s %s", pairs[i][0], pairs[i][1]);
        merges[i] = strdup(buf);
    }
    const int32_t bos = 256 + n_pairs, eos = bos + 1;
    for (int32_t i = bos; rc == 0 && i < n; i++) {
        char buf[48];
        if (i == bos) snprintf(buf, sizeof buf, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
        else if (i == eos) snprintf(buf, sizeof buf, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
        else snprintf(buf, sizeof buf, "<|unused_%d|>", i);
        tok[i] = strdup(buf);
        type[i] = i <= eos ? 3 : 5;
    }
    for (int32_t i = 0; rc == 0 && i < n; i++) if (!tok[i]) rc = -1;
    if (rc == 0) {
        rc |= lm_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
        rc |= lm_gguf_set_str(w, "tokenizer.ggml.pre", "gpt2");
        rc |= lm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, (uint64_t)n);
        rc |= lm_gguf_set_arr(w, "tokenizer.ggml.token_type", LM_GGUF_I32, type, (uint64_t)n);
        rc |= lm_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, (uint64_t)n_pairs);
        rc |= lm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
        rc |= lm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
        rc |= lm_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
    }
    for (int32_t i = 0; tok && i < n; i++) free(tok[i]);
    for (int i = 0; rc == 0 && i < n_pairs; i++) free(merges[i]);
    free(tok);
    free(type);
    return rc < 0 ? -1 : 0;
}

/* The tokenizer.* and loom.vocab.* keys of `path`; *n_tokens gets its vocabulary size. */
static int vocab_copy(lm_gguf_writer *w, const char *path, int32_t *n_tokens, lm_error *err)
{
    lm_gguf *g = NULL;
    int rc = lm_gguf_open(path, &g, err);
    const lm_gguf_array *toks = NULL;
    if (rc == 0) rc = lm_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks, err);
    for (int64_t i = 0; rc == 0 && i < lm_gguf_n_kv(g); i++) {
        const char *key = lm_gguf_kv_key(g, i);
        if ((!strncmp(key, "tokenizer.", 10) || !strncmp(key, "loom.vocab.", 11)) && lm_gguf_copy_kv(w, g, i) < 0)
            rc = lm_fail(err, LOOM_ERR_NO_MEMORY, "synth: cannot copy key '%s'", key);
    }
    if (rc == 0) *n_tokens = (int32_t)lm_gguf_arr_len(toks);
    lm_gguf_close(&g);
    return rc;
}

/* The loom.vocab.* media ranges (after `base` ids) and the media shape keys; `skip` is left
 * out (broken files for the loader tests). */
static int media_keys(lm_gguf_writer *w, const lm_synth_params *p, int32_t base, const char *skip)
{
    int rc = 0;
#define U32(k, v) do { if (!skip || strcmp(skip, k)) rc |= lm_gguf_set_u32(w, k, (uint32_t)(v)); } while (0)
    if (p->image_count > 0) {
        U32("loom.vocab.image_start", base);
        U32("loom.vocab.image_count", p->image_count);
    }
    if (p->audio_count > 0) {
        U32("loom.vocab.audio_start", base + (p->image_count > 0 ? p->image_count : 0));
        U32("loom.vocab.audio_count", p->audio_count);
    }
    if (p->image_grid > 0) U32("loom.image.grid", p->image_grid);
    if (p->video_n_frames > 0) U32("loom.video.n_frames", p->video_n_frames);
    if (p->video_temporal_merge > 0) U32("loom.video.temporal_merge", p->video_temporal_merge);
    if (p->video_gen_frames > 0) U32("loom.video.gen_frames", p->video_gen_frames);
#undef U32
    if (p->audio_words && (!skip || strcmp(skip, "loom.audio.words"))) rc |= lm_gguf_set_bool(w, "loom.audio.words", 1);
    return rc < 0 ? -1 : 0;
}

static int set_keys(lm_gguf_writer *w, const lm_synth_params *p, const char *skip)
{
    int rc = 0;
#define U32(k, v) do { if (!skip || strcmp(skip, "deepseek2." k)) rc |= lm_gguf_set_u32(w, "deepseek2." k, (uint32_t)(v)); } while (0)
#define F32(k, v) do { if (!skip || strcmp(skip, "deepseek2." k)) rc |= lm_gguf_set_f32(w, "deepseek2." k, (v)); } while (0)
    if (!skip || strcmp(skip, "general.architecture")) rc |= lm_gguf_set_str(w, "general.architecture", "deepseek2");
    rc |= lm_gguf_set_str(w, "general.name", "loom synthetic deepseek2");
    rc |= lm_gguf_set_u32(w, "general.alignment", 32);
    U32("block_count", p->n_layer);
    U32("context_length", p->n_ctx_train);
    U32("embedding_length", p->n_embd);
    U32("feed_forward_length", p->n_ff);
    U32("attention.head_count", p->n_head);
    U32("attention.head_count_kv", p->mla_split ? 1 : p->n_head); /* MLA is MQA; legacy files are MHA */
    F32("attention.layer_norm_rms_epsilon", 1e-6f);
    U32("leading_dense_block_count", p->n_dense_lead);
    U32("attention.q_lora_rank", p->q_lora);
    U32("attention.kv_lora_rank", p->kv_lora);
    if (p->mla_split) {
        U32("attention.key_length", p->kv_lora + p->n_rope);
        U32("attention.value_length", p->kv_lora);
        U32("attention.key_length_mla", p->n_nope + p->n_rope);
        U32("attention.value_length_mla", p->n_v);
    } else {
        U32("attention.key_length", p->n_nope + p->n_rope);
        U32("attention.value_length", p->n_v);
    }
    U32("rope.dimension_count", p->n_rope);
    F32("rope.freq_base", 10000.0f);
    U32("expert_feed_forward_length", p->n_ff_exp);
    U32("expert_count", p->n_expert);
    U32("expert_used_count", p->n_expert_used);
    U32("expert_shared_count", p->n_expert_shared);
    if (p->n_group > 1) {
        U32("expert_group_count", p->n_group);
        U32("expert_group_used_count", p->n_group_used);
    }
    F32("expert_weights_scale", p->weights_scale);
    if (!skip || strcmp(skip, "deepseek2.expert_weights_norm"))
        rc |= lm_gguf_set_bool(w, "deepseek2.expert_weights_norm", p->weights_norm);
    U32("expert_gating_func", p->gating);
    if (p->yarn) {
        rc |= lm_gguf_set_str(w, "deepseek2.rope.scaling.type", "yarn");
        F32("rope.scaling.factor", 4.0f);
        U32("rope.scaling.original_context_length", p->n_ctx_train / 4);
        F32("rope.scaling.yarn_log_multiplier", 0.1f * 1.0f);
    }
#undef U32
#undef F32
    return rc;
}

int lm_synth_write_broken(const lm_synth_params *params, const char *path, const char *skip_key,
                          const char *skip_tensor, const char *bad_tensor, lm_error *err)
{
    lm_synth_params q = *params;   /* n_vocab grows to hold the media ranges */
    const lm_synth_params *p = &q;
    const int min_vocab = p->vocab == LM_SYNTH_VOCAB_SPM ? 259 : 268;
    if (p->n_vocab < min_vocab || p->n_layer < 1 || p->n_embd < 1 || p->n_expert < 1)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "synth: n_vocab %d (>= %d) / n_layer / n_embd / n_expert invalid",
                       p->n_vocab, min_vocab);
    synth s = {.p = p, .w = lm_gguf_writer_create(), .skip_tensor = skip_tensor, .bad_tensor = bad_tensor, .err = err};
    if (!s.w) return lm_fail(err, LOOM_ERR_NO_MEMORY, "synth: out of memory");
    int32_t base = p->n_vocab;
    int vrc = p->vocab_from ? vocab_copy(s.w, p->vocab_from, &base, err)
            : p->vocab == LM_SYNTH_VOCAB_SPM ? vocab_spm(s.w, p->n_vocab) : vocab_gpt2(s.w, p->n_vocab);
    if (vrc < 0 && p->vocab_from) s.rc = vrc;
    q.n_vocab = base + (p->image_count > 0 ? p->image_count : 0) + (p->audio_count > 0 ? p->audio_count : 0);
    if (s.rc == 0 && (vrc < 0 || media_keys(s.w, p, base, skip_key) < 0 || set_keys(s.w, p, skip_key) < 0))
        s.rc = lm_fail(err, LOOM_ERR_NO_MEMORY, "synth: cannot set keys");

    const int64_t E = p->n_embd, H = p->n_head, dq = p->n_nope + p->n_rope;
    const float bg = p->branch_gain > 0 ? p->branch_gain : 0.5f;
    char n[96];
    add(&s, "token_embd.weight", p->type, 2, E, p->n_vocab, 1, 0.0f, 1.0f);
    norm(&s, "output_norm.weight", E);
    if (!p->tied) weight(&s, "output.weight", 2, E, p->n_vocab, 1, 3.0f);
    for (int il = 0; il < p->n_layer; il++) {
        norm(&s, bn(n, il, "attn_norm.weight"), E);
        if (p->q_lora > 0) {
            weight(&s, bn(n, il, "attn_q_a.weight"), 2, E, p->q_lora, 1, 1.0f);
            norm(&s, bn(n, il, "attn_q_a_norm.weight"), p->q_lora);
            weight(&s, bn(n, il, "attn_q_b.weight"), 2, p->q_lora, H * dq, 1, 1.0f);
        } else {
            weight(&s, bn(n, il, "attn_q.weight"), 2, E, H * dq, 1, 1.0f);
        }
        weight(&s, bn(n, il, "attn_kv_a_mqa.weight"), 2, E, p->kv_lora + p->n_rope, 1, 1.0f);
        norm(&s, bn(n, il, "attn_kv_a_norm.weight"), p->kv_lora);
        if (p->mla_split) {
            weight(&s, bn(n, il, "attn_k_b.weight"), 3, p->n_nope, p->kv_lora, H, 1.0f);
            weight(&s, bn(n, il, "attn_v_b.weight"), 3, p->kv_lora, p->n_v, H, 1.0f);
        } else {
            weight(&s, bn(n, il, "attn_kv_b.weight"), 2, p->kv_lora, H * (p->n_nope + p->n_v), 1, 1.0f);
        }
        weight(&s, bn(n, il, "attn_output.weight"), 2, H * p->n_v, E, 1, bg);
        norm(&s, bn(n, il, "ffn_norm.weight"), E);
        if (il < p->n_dense_lead) {
            weight(&s, bn(n, il, "ffn_gate.weight"), 2, E, p->n_ff, 1, 1.0f);
            weight(&s, bn(n, il, "ffn_up.weight"), 2, E, p->n_ff, 1, 1.0f);
            weight(&s, bn(n, il, "ffn_down.weight"), 2, p->n_ff, E, 1, bg);
            continue;
        }
        /* the router stays F32, as converters keep it */
        add(&s, bn(n, il, "ffn_gate_inp.weight"), LOOM_TYPE_F32, 2, E, p->n_expert, 1, 0.0f, (p->router_gain > 0 ? p->router_gain : 3.0f) * sqrtf(3.0f / (float)E));
        if (p->exp_probs_b) add(&s, bn(n, il, "exp_probs_b.bias"), LOOM_TYPE_F32, 1, p->n_expert, 1, 1, 0.0f, p->bias_amp > 0 ? p->bias_amp : 0.1f);
        weight(&s, bn(n, il, "ffn_gate_exps.weight"), 3, E, p->n_ff_exp, p->n_expert, 1.0f);
        weight(&s, bn(n, il, "ffn_up_exps.weight"), 3, E, p->n_ff_exp, p->n_expert, 1.0f);
        weight(&s, bn(n, il, "ffn_down_exps.weight"), 3, p->n_ff_exp, E, p->n_expert, bg);
        if (p->n_expert_shared > 0) {
            const int64_t FS = (int64_t)p->n_ff_exp * p->n_expert_shared;
            weight(&s, bn(n, il, "ffn_gate_shexp.weight"), 2, E, FS, 1, 1.0f);
            weight(&s, bn(n, il, "ffn_up_shexp.weight"), 2, E, FS, 1, 1.0f);
            weight(&s, bn(n, il, "ffn_down_shexp.weight"), 2, FS, E, 1, bg);
        }
    }
    if (s.rc == 0) s.rc = lm_gguf_write(s.w, path, err);
    lm_gguf_writer_free(&s.w);
    return s.rc;
}

int lm_synth_write(const lm_synth_params *p, const char *path, lm_error *err)
{
    return lm_synth_write_broken(p, path, NULL, NULL, NULL, err);
}
