/* loom_model: a decoder GGUF file, its bound weights and (optional) tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/decoder.h"
#include "lib/core/error.h"
#include "lib/core/gguf.h"
#include "lib/core/tokenizer.h"
#include "lib/model.h"

loom_model_params loom_model_default_params(void)
{
    return (loom_model_params){.n_threads = 0, .load_tokenizer = 1};
}

static void copy_err(char *dst, size_t size, const lm_error *e)
{
    if (dst && size) snprintf(dst, size, "%s", e->msg);
}

/* Name of the tensor type most of the weights use (for the description). */
static const char *main_type(const lm_decoder *d)
{
    const lm_decoder_layer *L = &d->layers[d->hp.n_layer - 1];
    return loom_type_name(L->is_moe ? L->gate_exps.type : L->ffn_gate.type);
}

int loom_model_load(const char *path, loom_model_params params, loom_model **out, char *err, size_t err_size)
{
    lm_error e = {0};
    if (!out) return LOOM_ERR_INVALID_ARG;
    *out = NULL;
    loom_model *m = calloc(1, sizeof *m);
    if (!m) {
        lm_fail(&e, LOOM_ERR_NO_MEMORY, "model: out of memory");
        copy_err(err, err_size, &e);
        return e.status;
    }
    int rc = path ? lm_gguf_open(path, &m->gguf, &e) : lm_fail(&e, LOOM_ERR_INVALID_ARG, "model: no path");
    if (rc == 0) rc = lm_decoder_load(m->gguf, &m->dec, &e);
    if (rc == 0 && params.load_tokenizer) {
        const char *kind = NULL;
        lm_error ignore = {0};
        if (lm_gguf_find_kv(m->gguf, "tokenizer.ggml.model") >= 0 &&
            lm_gguf_get_str(m->gguf, "tokenizer.ggml.model", &kind, &ignore) == 0 && !strcmp(kind, "gpt2"))
            rc = lm_tokenizer_load(m->gguf, &m->tok, &e);
    }
    if (rc == 0 && m->tok && lm_tokenizer_n_vocab(m->tok) > m->dec->hp.n_vocab)
        rc = lm_fail(&e, LOOM_ERR_FORMAT, "model: tokenizer has %d tokens but token_embd only %d rows",
                     lm_tokenizer_n_vocab(m->tok), m->dec->hp.n_vocab);
    if (rc == 0) rc = lm_media_vocab_load(m->gguf, m->dec->hp.n_vocab, &m->vocab, &e);
    if (rc == 0) rc = lm_caption_regions_load(m->gguf, &m->regions, &m->regions_mem, &e);
    if (rc == 0) rc = lm_mirror_tokens_load(m->gguf, m->dec->hp.n_vocab, &m->mirror_tokens, &e);
    for (int i = 0; i < LM_CTL_COUNT; i++) m->ctl[i] = m->tok ? lm_tokenizer_find(m->tok, lm_ctl_text[i]) : -1;
    if (rc < 0) {
        copy_err(err, err_size, &e);
        loom_model_free(&m);
        return rc;
    }
    const lm_decoder_hparams *hp = &m->dec->hp;
    snprintf(m->desc, sizeof m->desc, "deepseek2 · %d layers · %d experts (top %d, %d shared) · %s%s",
             hp->n_layer, hp->n_expert, hp->n_expert_used, hp->n_expert_shared, main_type(m->dec),
             hp->mla_split ? "" : " · legacy attn_kv_b");
    *out = m;
    return 0;
}

void loom_model_free(loom_model **m)
{
    if (!m || !*m) return;
    lm_tokenizer_free(&(*m)->tok);
    free((*m)->regions_mem);
    free((*m)->mirror_tokens);
    lm_decoder_free(&(*m)->dec);
    lm_gguf_close(&(*m)->gguf);
    free(*m);
    *m = NULL;
}

int32_t  loom_model_n_vocab(const loom_model *m)     { return m->dec->hp.n_vocab; }
int32_t  loom_model_n_embd(const loom_model *m)      { return m->dec->hp.n_embd; }
int32_t  loom_model_n_layer(const loom_model *m)     { return m->dec->hp.n_layer; }
int32_t  loom_model_n_ctx_train(const loom_model *m) { return m->dec->hp.n_ctx_train; }
uint64_t loom_model_active_bytes(const loom_model *m) { return m->dec->active_bytes; }
const char *loom_model_desc(const loom_model *m)     { return m->desc; }

int     loom_model_has_tokenizer(const loom_model *m) { return m->tok != NULL; }
int32_t loom_token_bos(const loom_model *m) { return m->tok ? lm_tokenizer_bos(m->tok) : -1; }
int32_t loom_token_eos(const loom_model *m) { return m->tok ? lm_tokenizer_eos(m->tok) : -1; }
int32_t loom_token_find(const loom_model *m, const char *text) { return m->tok && text ? lm_tokenizer_find(m->tok, text) : -1; }

int64_t loom_tokenize(const loom_model *m, const char *text, size_t len, int add_bos, int parse_special,
                      int32_t *out, int64_t max_tokens)
{
    if (!m->tok) return LOOM_ERR_UNSUPPORTED;
    if (!text || max_tokens < 0 || (!out && max_tokens > 0)) return LOOM_ERR_INVALID_ARG;
    return lm_tokenize(m->tok, text, len, add_bos, parse_special, out, max_tokens);
}

int loom_token_to_piece(const loom_model *m, int32_t token, int special, char *buf, size_t size)
{
    if (!m->tok) return LOOM_ERR_UNSUPPORTED;
    return lm_token_to_piece(m->tok, token, special, buf, size);
}

int64_t loom_detokenize(const loom_model *m, const int32_t *tokens, int64_t n, int special, char *buf, size_t size)
{
    if (!m->tok) return LOOM_ERR_UNSUPPORTED;
    if (n < 0 || (!tokens && n > 0) || (!buf && size > 0)) return LOOM_ERR_INVALID_ARG;
    int64_t len = 0;
    char piece[256];
    for (int64_t i = 0; i < n; i++) {
        int k = lm_token_to_piece(m->tok, tokens[i], special, piece, sizeof piece);
        if (k < 0) return k;
        const size_t have = k < (int)sizeof piece ? (size_t)k : sizeof piece;
        for (size_t j = 0; j < have; j++)
            if ((size_t)len + j < size) buf[len + (int64_t)j] = piece[j];
        len += k;
    }
    if (size) buf[(size_t)len < size ? (size_t)len : size - 1] = '\0';
    return len;
}

/* ---- unified-model layout -------------------------------------------------------------- */
const char *const lm_ctl_text[LM_CTL_COUNT] = {
    "<|bos|>", "<|user|>", "<|assistant|>", "<|end|>", "<|image|>", "<|/image|>",
    "<|audio|>", "<|/audio|>", "<|video|>", "<|/video|>", "<|frame|>",
};

static int opt_i32(const lm_gguf *g, const char *key, int32_t *out, lm_error *e)
{
    uint32_t v = 0;
    int rc = lm_gguf_opt_u32(g, key, &v, e);
    if (rc == 0 && v > (uint32_t)INT32_MAX) rc = lm_fail(e, LOOM_ERR_FORMAT, "model: %s = %u is too large", key, v);
    *out = (int32_t)v;
    return rc;
}

/* A range [start, start + count) of the id space, named for messages. */
typedef struct id_range { const char *name; int64_t lo, hi; } id_range;

/* start/count keys come in pairs: both or neither, count > 0, inside the vocabulary. */
static int check_pair(const lm_gguf *g, const char *start_key, const char *count_key, int32_t start,
                      int32_t count, int32_t n_vocab, lm_error *e)
{
    const int has_start = lm_gguf_find_kv(g, start_key) >= 0, has_count = lm_gguf_find_kv(g, count_key) >= 0;
    if (has_start != has_count)
        return lm_fail(e, LOOM_ERR_FORMAT, "model: %s without %s", has_start ? start_key : count_key,
                       has_start ? count_key : start_key);
    if (has_count && count == 0) return lm_fail(e, LOOM_ERR_FORMAT, "model: %s is 0", count_key);
    if ((int64_t)start + count > n_vocab)
        return lm_fail(e, LOOM_ERR_FORMAT, "model: %s + %s = %lld exceeds the %d-token vocabulary", start_key,
                       count_key, (long long)start + count, n_vocab);
    return 0;
}

int lm_media_vocab_load(const lm_gguf *g, int32_t n_vocab, loom_media_vocab *out, lm_error *e)
{
    loom_media_vocab v = {0};
    int rc = 0;
    rc = rc ? rc : opt_i32(g, "loom.vocab.text_end", &v.text_end, e);
    rc = rc ? rc : opt_i32(g, "loom.vocab.control_end", &v.control_end, e);
    rc = rc ? rc : opt_i32(g, "loom.vocab.image_start", &v.image_start, e);
    rc = rc ? rc : opt_i32(g, "loom.vocab.image_count", &v.image_count, e);
    rc = rc ? rc : opt_i32(g, "loom.vocab.audio_start", &v.audio_start, e);
    rc = rc ? rc : opt_i32(g, "loom.vocab.audio_count", &v.audio_count, e);
    rc = rc ? rc : opt_i32(g, "loom.image.grid", &v.image_grid, e);
    rc = rc ? rc : opt_i32(g, "loom.video.n_frames", &v.video_n_frames, e);
    rc = rc ? rc : opt_i32(g, "loom.video.temporal_merge", &v.video_temporal_merge, e);
    rc = rc ? rc : opt_i32(g, "loom.video.gen_frames", &v.video_gen_frames, e);
    int words = 0;
    rc = rc ? rc : lm_gguf_opt_bool(g, "loom.audio.words", &words, e);
    v.audio_words = words != 0;
    if (rc < 0) return rc;
    rc = check_pair(g, "loom.vocab.image_start", "loom.vocab.image_count", v.image_start, v.image_count, n_vocab, e);
    if (rc == 0)
        rc = check_pair(g, "loom.vocab.audio_start", "loom.vocab.audio_count", v.audio_start, v.audio_count, n_vocab, e);
    if (rc < 0) return rc;
    if (v.text_end > n_vocab || v.control_end > n_vocab || (v.control_end && v.control_end < v.text_end))
        return lm_fail(e, LOOM_ERR_FORMAT, "model: loom.vocab.text_end %d / control_end %d do not fit the %d-token vocabulary",
                       v.text_end, v.control_end, n_vocab);
    const id_range r[] = {
        {"text", 0, v.text_end}, {"control", v.text_end, v.control_end},
        {"image", v.image_start, (int64_t)v.image_start + v.image_count},
        {"audio", v.audio_start, (int64_t)v.audio_start + v.audio_count},
    };
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            if (r[i].lo < r[i].hi && r[j].lo < r[j].hi && r[i].lo < r[j].hi && r[j].lo < r[i].hi)
                return lm_fail(e, LOOM_ERR_FORMAT, "model: the %s range [%lld, %lld) overlaps the %s range [%lld, %lld)",
                               r[i].name, (long long)r[i].lo, (long long)r[i].hi, r[j].name, (long long)r[j].lo,
                               (long long)r[j].hi);
    /* grid² · frames codes must stay far from int32 overflow */
    const struct { const char *key; int32_t v; int32_t max; } shape[] = {
        {"loom.image.grid", v.image_grid, 1024}, {"loom.video.n_frames", v.video_n_frames, 4096},
        {"loom.video.temporal_merge", v.video_temporal_merge, 4096}, {"loom.video.gen_frames", v.video_gen_frames, 1024},
    };
    for (int i = 0; i < 4; i++)
        if (lm_gguf_find_kv(g, shape[i].key) >= 0 && (shape[i].v < 1 || shape[i].v > shape[i].max))
            return lm_fail(e, LOOM_ERR_FORMAT, "model: %s = %d is outside 1..%d", shape[i].key, shape[i].v, shape[i].max);
    if (v.video_n_frames && v.video_temporal_merge && v.video_n_frames % v.video_temporal_merge)
        return lm_fail(e, LOOM_ERR_FORMAT, "model: loom.video.n_frames %d is not a multiple of loom.video.temporal_merge %d",
                       v.video_n_frames, v.video_temporal_merge);
    *out = v;
    return 0;
}

int loom_model_media_vocab(const loom_model *m, loom_media_vocab *out)
{
    if (!m || !out) return LOOM_ERR_INVALID_ARG;
    *out = m->vocab;
    return 0;
}
