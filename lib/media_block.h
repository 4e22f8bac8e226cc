/*
 * Writing one constrained media block (docs/FORMAT.md "Constrained media blocks"): its open,
 * <|frame|> and close tokens are forced, its codes are drawn from the medium's id range only
 * (optionally with classifier-free guidance from a second session), and its length is the
 * model's. One writer serves loom_generate_media, which forces the open token after a job's
 * turn, and loom_session_generate, which enters a block when the model samples an open token.
 *
 * Uses the sessions through the public API only. Not public.
 */
#ifndef LOOM_MEDIA_BLOCK_H
#define LOOM_MEDIA_BLOCK_H

#include "lib/core/error.h"
#include "lib/core/sampler.h"
#include "loom.h"

/* The most bytes of loom_media_params.words (a sentence to speak, not a book). */
#define LM_MEDIA_MAX_WORDS_BYTES 65536

/* The tokens of one block and how far it has been written. */
typedef struct lm_block {
    int     kind;                 /* loom_media_kind                                   */
    int32_t open, close, frame;   /* frame: -1 unless video                            */
    int32_t lo, hi;               /* sampled code ids [lo, hi); code = id − lo          */
    int32_t n_frames;             /* image 1, video frames, audio 1                     */
    int64_t per_frame;            /* codes per frame; audio: the most codes             */
    int     model_closes;         /* audio: the close token may be sampled too          */
    /* audio on a loom.audio.words model with params.words: the words spelt in order, codes
     * drawn between them; the close may be drawn only after the last word */
    int32_t text_end;             /* audio: [0, text_end) are text ids; a word is drawn with
                                     their whole mass (any word the model would start there) */
    const int32_t *word_tok;      /* [word_end[n_words − 1]] the words' tokens, not owned */
    const int32_t *word_end;      /* [n_words] where word k's tokens end in word_tok     */
    int32_t n_words;
    /* progress, kept by lm_block_accept */
    int     opened, marked, closed; /* marked: the current frame's <|frame|> is written */
    int32_t frame_i;              /* frames completed                                  */
    int64_t in_frame, n_codes;    /* codes in the current frame / in the whole block    */
    int32_t word_i, word_pos;     /* the word being (or next) spelt, its tokens written */
} lm_block;

/* The block p->kind writes on m (p: max_audio_codes, n_frames), progress zeroed.
 * LOOM_ERR_UNSUPPORTED (message names what is missing) if m cannot generate it. */
int     lm_block_describe(const loom_model *m, const loom_media_params *p, lm_block *b, lm_error *e);
int64_t lm_block_max_codes(const lm_block *b);   /* n_frames · per_frame                   */
int64_t lm_block_max_len(const lm_block *b);     /* tokens: codes + open, close, markers, words */
/* The kind whose block `token` opens (image, audio or video), or -1. */
int     lm_block_kind_of(const loom_model *m, int32_t token);

/* A block left unfinished at the end of hist[0..n): its open token at hist[n − 1 − body],
 * followed only by media codes and <|frame|> markers. Returns body (≥ 0) and sets *open, or
 * -1 when hist does not end inside a block. */
int64_t lm_block_unfinished(const loom_model *m, const int32_t *hist, int64_t n, int32_t *open);

/* Samples a block into s (and u, the unconditional sequence, when guided). */
typedef struct lm_media_writer {
    loom_session     *s, *u;      /* u NULL: no guidance                                */
    lm_sampler       *smp;        /* owned: codes only                                  */
    float            *mix;        /* [n_vocab] guided logits (allowed ids only), owned  */
    int32_t          *codes;      /* [max codes of b] the block's codes, not owned      */
    int32_t          *word_tok;   /* params.words spelt (lm_block.word_tok), owned; mix is
                                     then allocated, guided or not                      */
    int32_t          *word_end;   /* [n_words] (lm_block.word_end), owned               */
    int32_t           n_words;    /* 0: no words to spell                              */
    loom_media_params p;          /* temperature, top-k, cfg, hooks                     */
    lm_block          b;          /* the block being written                            */
    lm_error          e;
} lm_media_writer;

/* Allocate the sampler (and the guided logits when u is given: then p.cfg_scale must not be
 * 0 or 1), and tokenize p.words when m spells speech (loom.audio.words) and p.kind is audio.
 * Nothing else allocates. */
int  lm_media_writer_init(lm_media_writer *w, const loom_model *m, loom_session *s, loom_session *u,
                          loom_media_params p);
void lm_media_writer_free(lm_media_writer *w);
/* Prompt `sess` with prompt[0..n) (n 0: keep what it holds), after checking that it and a
 * block of block_len tokens fit its context (LOOM_ERR_CONTEXT_FULL before any work). */
int  lm_media_writer_prepare(lm_media_writer *w, loom_session *sess, const int32_t *prompt, int64_t n,
                             int64_t block_len);
/* Start writing block b (described; opened: its open token is already in the sessions,
 * else nothing is written yet); its codes go to codes; the sampler restarts from seed. */
void lm_media_writer_begin(lm_media_writer *w, const lm_block *b, int32_t *codes, uint64_t seed, int opened);
/* Record toks[0..n), the block's tokens after its open token that the sessions already hold,
 * as if written (begun with opened = 1). LOOM_ERR_INVALID_ARG if one is not what the block
 * allows there (a code of another medium, a misplaced <|frame|>, a code past the end). */
int  lm_media_writer_replay(lm_media_writer *w, const int32_t *toks, int64_t n);
/* The block's next token: the forced one, or a code (audio: or the close) drawn from the
 * (guided) logits. Negative status (LOOM_ERR_ABORTED by p's hooks) with w->e set. */
int32_t lm_media_writer_next(lm_media_writer *w);
/* Record tok (from lm_media_writer_next) and append it to s (and u): the next logits.
 * After the close token, w->b.closed is set. */
int  lm_media_writer_put(lm_media_writer *w, int32_t tok);

#endif
