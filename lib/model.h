/* Internals of loom_model shared by model.c and session.c (not public). */
#ifndef LOOM_MODEL_H
#define LOOM_MODEL_H

#include "lib/core/decoder.h"
#include "lib/core/gguf.h"
#include "lib/core/tokenizer.h"

/* Control tokens of the unified model (docs/FORMAT.md "Tokenizer"), looked up by text. */
enum {
    LM_CTL_BOS, LM_CTL_USER, LM_CTL_ASSISTANT, LM_CTL_END, LM_CTL_IMAGE, LM_CTL_IMAGE_END,
    LM_CTL_AUDIO, LM_CTL_AUDIO_END, LM_CTL_VIDEO, LM_CTL_VIDEO_END, LM_CTL_FRAME, LM_CTL_COUNT
};
extern const char *const lm_ctl_text[LM_CTL_COUNT];   /* "<|bos|>", … */

/* Read and check loom.vocab.*, loom.image.grid and loom.video.* (absent keys stay 0). */
int lm_media_vocab_load(const lm_gguf *g, int32_t n_vocab, loom_media_vocab *out, lm_error *err);
/* loom.caption.* → *out, its strings in *mem (free it; NULL when the keys are absent). */
int lm_caption_regions_load(const lm_gguf *g, loom_caption_regions *out, void **mem, lm_error *err);
/* loom.mirror.token_pairs → *out, [n_vocab] each token's mirror (malloc'ed; NULL when absent). */
int lm_mirror_tokens_load(const lm_gguf *g, int32_t n_vocab, int32_t **out, lm_error *err);

struct loom_model {
    lm_gguf      *gguf;     /* the mapped file; weights point into it, owned          */
    lm_decoder   *dec;      /* bound weights and hyperparameters, owned               */
    lm_tokenizer *tok;      /* NULL when the file has no gpt2 tokenizer, owned        */
    char          desc[192];
    loom_media_vocab vocab;      /* ranges and media shapes (zeros when absent)        */
    int32_t       ctl[LM_CTL_COUNT]; /* control token ids, -1 when the tokenizer lacks one */
    loom_caption_regions regions;     /* loom.caption.* (n_regions 0 when absent)          */
    void         *regions_mem;       /* the strings regions points at, owned               */
    int32_t      *mirror_tokens;     /* [n_vocab] loom.mirror.token_pairs as a map, or NULL, owned */
};

/* The decoder state of a session (tests and benchmarks: lm_decoder_state_set_tuning). */
lm_decoder_state *lm_session_decoder_state(loom_session *s);
/* The session's next step computes logits only for ids [lo, hi) and extra (-1: none), the
 * others -INFINITY (lm_decoder_state_limit_logits): media writers inside a block. */
void lm_session_limit_logits(loom_session *s, int32_t lo, int32_t hi, int32_t extra);
/* [loom_session_n_past(s)] the token at each cached position (-1: an embedding row). */
const int32_t *lm_session_history(const loom_session *s);

#endif
