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
