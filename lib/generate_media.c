/*
 * Constrained media blocks (docs/FORMAT.md "Unified model"): the decoder writes an image,
 * audio or video block whose open / close / frame tokens are forced and whose codes are
 * sampled from the medium's id range only, optionally with classifier-free guidance from a
 * second session that holds the unconditional sequence (both advanced by one batched
 * decoder step per token: loom_session_decode_pair).
 *
 * The block writer (lib/media_block.h) is shared with loom_session_generate, which enters a
 * block when the model samples its open token. Uses the sessions through the public API
 * only; everything (sampler, guided logits) is allocated once per call, nothing per step.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/error.h"
#include "lib/core/sampler.h"
#include "lib/core/tokenizer.h"
#include "lib/media_block.h"
#include "lib/model.h"

loom_media_params loom_media_default_params(int kind)
{
    /* speech: unguided at temperature 0.6 measured best on loom-tiny since it spells its words
     * into the clip (docs/CLI.md, "What speak says") */
    const int audio = kind == LOOM_MEDIA_AUDIO;
    return (loom_media_params){.kind = kind, .cfg_scale = audio ? 1.0f : 3.0f, .temperature = audio ? 0.6f : 1.0f,
                               .top_k = 0, .seed = 0, .max_audio_codes = 250, .n_frames = 0};
}

/* Per kind: the open, close and (video) frame control tokens; the frame entry of image and
 * audio repeats the open token and is unused. */
static const int block_ctl[3][3] = {{LM_CTL_IMAGE, LM_CTL_IMAGE_END, LM_CTL_IMAGE},
                                    {LM_CTL_AUDIO, LM_CTL_AUDIO_END, LM_CTL_AUDIO},
                                    {LM_CTL_VIDEO, LM_CTL_VIDEO_END, LM_CTL_FRAME}};

static const char *kind_name(int kind)
{
    return kind == LOOM_MEDIA_IMAGE ? "images" : kind == LOOM_MEDIA_AUDIO ? "audio" : "video";
}

static void copy_err(char *dst, size_t size, const lm_error *e)
{
    if (dst && size) snprintf(dst, size, "%s", e->msg);
}

int lm_block_describe(const loom_model *m, const loom_media_params *p, lm_block *b, lm_error *e)
{
    const loom_media_vocab *v = &m->vocab;
    const int k = p->kind;
    if (k != LOOM_MEDIA_IMAGE && k != LOOM_MEDIA_AUDIO && k != LOOM_MEDIA_VIDEO)
        return lm_fail(e, LOOM_ERR_INVALID_ARG, "media: unknown kind %d", k);
    const char *what = kind_name(k);
    if (k != LOOM_MEDIA_AUDIO && !v->image_count)
        return lm_fail(e, LOOM_ERR_UNSUPPORTED, "model cannot generate %s: no image code range "
                       "(loom.vocab.image_start / image_count missing)", what);
    if (k != LOOM_MEDIA_AUDIO && !v->image_grid)
        return lm_fail(e, LOOM_ERR_UNSUPPORTED, "model cannot generate %s: loom.image.grid missing", what);
    if (k == LOOM_MEDIA_AUDIO && !v->audio_count)
        return lm_fail(e, LOOM_ERR_UNSUPPORTED, "model cannot generate audio: no audio code range "
                       "(loom.vocab.audio_start / audio_count missing)");
    if (k == LOOM_MEDIA_VIDEO && !v->video_gen_frames && p->n_frames <= 0)
        return lm_fail(e, LOOM_ERR_UNSUPPORTED, "model cannot generate video: loom.video.gen_frames missing");
    if (!m->tok) return lm_fail(e, LOOM_ERR_UNSUPPORTED, "model cannot generate %s: it has no tokenizer", what);
    for (int i = 0; i < 3; i++)
        if (m->ctl[block_ctl[k][i]] < 0)
            return lm_fail(e, LOOM_ERR_UNSUPPORTED, "model cannot generate %s: its tokenizer has no %s token", what,
                           lm_ctl_text[block_ctl[k][i]]);
    const int64_t grid2 = (int64_t)v->image_grid * v->image_grid;
    *b = (lm_block){.kind = k, .open = m->ctl[block_ctl[k][0]], .close = m->ctl[block_ctl[k][1]], .frame = -1,
                    .lo = v->image_start, .hi = v->image_start + v->image_count, .n_frames = 1, .per_frame = grid2};
    if (k == LOOM_MEDIA_AUDIO) {
        if (p->max_audio_codes < 1)
            return lm_fail(e, LOOM_ERR_INVALID_ARG, "media: max_audio_codes %d must be >= 1", p->max_audio_codes);
        b->lo = v->audio_start;
        b->hi = v->audio_start + v->audio_count;
        b->per_frame = p->max_audio_codes;
        b->model_closes = 1;
        b->text_end = v->text_end;
    } else if (k == LOOM_MEDIA_VIDEO) {
        b->frame = m->ctl[LM_CTL_FRAME];
        b->n_frames = p->n_frames > 0 ? p->n_frames : v->video_gen_frames;
        if (b->n_frames > 1024) return lm_fail(e, LOOM_ERR_LIMIT, "media: %d video frames (at most 1024)", b->n_frames);
    }
    return 0;
}

int64_t lm_block_max_codes(const lm_block *b) { return b->n_frames * b->per_frame; }
int64_t lm_block_max_len(const lm_block *b)
{
    return 2 + lm_block_max_codes(b) + (b->frame >= 0 ? b->n_frames : 0) + (b->n_words ? b->word_end[b->n_words - 1] : 0);
}

int lm_block_kind_of(const loom_model *m, int32_t token)
{
    for (int k = 0; token >= 0 && k < 3; k++)
        if (m->ctl[block_ctl[k][0]] == token) return k;
    return -1;
}

int64_t lm_block_unfinished(const loom_model *m, const int32_t *hist, int64_t n, int32_t *open)
{
    const loom_media_vocab *v = &m->vocab;
    int64_t j = n - 1;
    for (; j >= 0; j--) {   /* back over codes and frame markers */
        const int32_t t = hist[j];
        const int body = (t >= v->image_start && t < v->image_start + v->image_count) ||
                         (t >= v->audio_start && t < v->audio_start + v->audio_count) ||
                         (t >= 0 && t == m->ctl[LM_CTL_FRAME]);
        if (!body) break;
    }
    if (j < 0 || lm_block_kind_of(m, hist[j]) < 0) return -1;
    *open = hist[j];
    return n - 1 - j;
}

static int32_t word_start(const lm_block *b, int32_t k) { return k ? b->word_end[k - 1] : 0; }

/* The token that must come next, or -1 when a code (or block_extra) is to be drawn. */
static int32_t block_forced(const lm_block *b)
{
    if (!b->opened) return b->open;
    if (b->frame_i == b->n_frames) return b->close;
    if (b->frame >= 0 && !b->marked) return b->frame;
    if (b->word_pos > 0) return b->word_tok[word_start(b, b->word_i) + b->word_pos];   /* the rest of a word */
    return -1;
}

/* The one token besides the codes that may be drawn: the next word's first token while words
 * are left to spell, else (audio) the close; -1 if none. */
static int32_t block_extra(const lm_block *b)
{
    if (b->word_i < b->n_words) return b->word_tok[word_start(b, b->word_i)];
    return b->model_closes ? b->close : -1;
}

/* 1 when the block spells words and the next is to start: the extra token is its first. */
static int word_next(const lm_block *b) { return b->word_i < b->n_words && b->word_pos == 0; }

/* Record tok; returns 1 if it was a code (stored in codes). */
static int block_accept(lm_block *b, int32_t tok, int32_t *codes)
{
    if (!b->opened) { b->opened = 1; return 0; }
    if (tok == b->close) { b->closed = 1; return 0; }
    if (b->frame >= 0 && !b->marked) { b->marked = 1; return 0; }
    if (tok < b->lo || tok >= b->hi) {   /* a word's token (the only others allowed here) */
        if (word_start(b, b->word_i) + ++b->word_pos == b->word_end[b->word_i]) {
            b->word_i++;
            b->word_pos = 0;
        }
        return 0;
    }
    codes[b->n_codes++] = tok - b->lo;
    if (++b->in_frame == b->per_frame) {
        b->frame_i++;
        b->in_frame = 0;
        b->marked = 0;
    }
    return 1;
}

static int is_blank(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* words split at white space, each tokenized as " word" (as the prompt's text spells it, and
 * as training wrote it: tools/train/unified.py speech_body) into w->word_tok / word_end. */
static int spell_words(lm_media_writer *w, const loom_model *m, const char *words)
{
    const size_t len = strlen(words);
    if (len > LM_MEDIA_MAX_WORDS_BYTES)
        return lm_fail(&w->e, LOOM_ERR_LIMIT, "media: %zu bytes of words to speak (at most %d)", len,
                       LM_MEDIA_MAX_WORDS_BYTES);
    /* byte-level tokens: at most one per byte of " word" */
    char *one = malloc(len + 2);
    w->word_tok = malloc((2 * len + 1) * sizeof *w->word_tok);
    w->word_end = malloc((len / 2 + 1) * sizeof *w->word_end);
    int rc = one && w->word_tok && w->word_end ? 0 : lm_fail(&w->e, LOOM_ERR_NO_MEMORY, "media: out of memory");
    int32_t n_tok = 0;
    for (const char *c = words; rc == 0 && *c;) {
        while (is_blank(*c)) c++;
        const char *end = c;
        while (*end && !is_blank(*end)) end++;
        if (end == c) break;
        one[0] = ' ';
        memcpy(one + 1, c, (size_t)(end - c));
        const int64_t k = lm_tokenize(m->tok, one, (size_t)(end - c) + 1, 0, 0, w->word_tok + n_tok,
                                      (int64_t)(2 * len + 1) - n_tok);
        if (k <= 0 || n_tok + k > (int64_t)(2 * len + 1))
            rc = lm_fail(&w->e, k < 0 ? (int)k : LOOM_ERR_INVALID_ARG, "media: cannot tokenize the word '%.*s'",
                         (int)(end - c), c);
        else {
            n_tok += (int32_t)k;
            w->word_end[w->n_words++] = n_tok;
        }
        c = end;
    }
    free(one);
    return rc;
}

int loom_model_can_generate(const loom_model *m, int kind, char *err, size_t err_size)
{
    lm_error e = {0};
    lm_block b = {0};
    loom_media_params p = loom_media_default_params(kind);
    int rc = m ? lm_block_describe(m, &p, &b, &e) : lm_fail(&e, LOOM_ERR_INVALID_ARG, "media: no model");
    copy_err(err, err_size, &e);
    return rc;
}

int64_t loom_media_max_codes(const loom_model *m, loom_media_params p)
{
    lm_block b = {0};
    int rc = m ? lm_block_describe(m, &p, &b, NULL) : LOOM_ERR_INVALID_ARG;
    return rc < 0 ? rc : lm_block_max_codes(&b);
}

int64_t loom_media_block_len(const loom_model *m, loom_media_params p)
{
    lm_media_writer w = {0};
    lm_block b = {0};
    int64_t rc = m ? lm_block_describe(m, &p, &b, NULL) : LOOM_ERR_INVALID_ARG;
    if (rc == 0 && p.kind == LOOM_MEDIA_AUDIO && m->vocab.audio_words && m->vocab.text_end > 0 && p.words)
        rc = spell_words(&w, m, p.words);
    if (rc == 0) {
        b.word_end = w.word_end;
        b.n_words = w.n_words;
        rc = lm_block_max_len(&b);
    }
    lm_media_writer_free(&w);
    return rc;
}

int64_t loom_media_prompt(const loom_model *m, int kind, const char *text, int unconditional, int32_t *out,
                          int64_t max_tokens)
{
    static const char *const prefix[3] = {"Draw: ", "Say: ", "Animate: "};
    if (!m || kind < 0 || kind > 2 || max_tokens < 0 || (!out && max_tokens > 0) || (!text && !unconditional))
        return LOOM_ERR_INVALID_ARG;
    const int ids[] = {LM_CTL_BOS, LM_CTL_USER, LM_CTL_END, LM_CTL_ASSISTANT};
    for (int i = 0; i < 4; i++)
        if (!m->tok || m->ctl[ids[i]] < 0) return LOOM_ERR_UNSUPPORTED;
    int64_t n = 0;
#define PUT(tok) do { if (n < max_tokens) out[n] = (tok); n++; } while (0)
    PUT(m->ctl[LM_CTL_BOS]);
    PUT(m->ctl[LM_CTL_USER]);
    if (!unconditional) {
        const size_t len = strlen(prefix[kind]) + strlen(text);
        char *content = malloc(len + 1);
        if (!content) return LOOM_ERR_NO_MEMORY;
        snprintf(content, len + 1, "%s%s", prefix[kind], text);
        const int64_t room = max_tokens > n ? max_tokens - n : 0;
        const int64_t k = lm_tokenize(m->tok, content, len, 0, 0, room ? out + n : NULL, room);
        free(content);
        if (k < 0) return k;
        n += k;
    }
    PUT(m->ctl[LM_CTL_END]);
    PUT(m->ctl[LM_CTL_ASSISTANT]);
#undef PUT
    return n;
}

/* ---- the block writer (lib/media_block.h) --------------------------------------------- */
static int session_fail(lm_media_writer *w, loom_session *s, int rc)
{
    return lm_fail(&w->e, rc, "%s%s", s == w->u ? "unconditional session: " : "", loom_session_error(s));
}


int lm_media_writer_init(lm_media_writer *w, const loom_model *m, loom_session *s, loom_session *u,
                         loom_media_params p)
{
    *w = (lm_media_writer){.s = s, .u = u, .p = p};
    const int32_t V = loom_model_n_vocab(m);
    lm_sampler_params sp = lm_sampler_default_params();
    sp.temperature = p.temperature;
    sp.top_k = p.top_k;
    sp.penalty_last_n = 0;
    sp.seed = p.seed;
    w->smp = lm_sampler_create(sp, V);
    const int spell = p.kind == LOOM_MEDIA_AUDIO && m->vocab.audio_words && m->vocab.text_end > 0 && p.words;
    w->mix = u || spell ? calloc((size_t)V, sizeof *w->mix) : NULL;
    if (!w->smp || ((u || spell) && !w->mix)) return lm_fail(&w->e, LOOM_ERR_NO_MEMORY, "media: out of memory");
    return spell ? spell_words(w, m, p.words) : 0;
}

void lm_media_writer_free(lm_media_writer *w)
{
    lm_sampler_free(&w->smp);
    free(w->mix);
    free(w->word_tok);
    free(w->word_end);
    w->mix = NULL;
    w->word_tok = w->word_end = NULL;
    w->n_words = 0;
}

int lm_media_writer_prepare(lm_media_writer *w, loom_session *sess, const int32_t *prompt, int64_t n,
                            int64_t block_len)
{
    const int64_t past = n > 0 ? n : loom_session_n_past(sess);
    if (past + block_len > loom_session_n_ctx(sess))
        return lm_fail(&w->e, LOOM_ERR_CONTEXT_FULL, "context full: %lld prompt tokens + a %lld-token block exceed n_ctx %d",
                       (long long)past, (long long)block_len, loom_session_n_ctx(sess));
    if (n == 0) return 0;
    int rc = loom_session_prompt(sess, prompt, n, NULL);
    return rc < 0 ? session_fail(w, sess, rc) : 0;
}

void lm_media_writer_begin(lm_media_writer *w, const lm_block *b, int32_t *codes, uint64_t seed, int opened)
{
    w->b = *b;
    w->b.opened = opened;
    w->codes = codes;
    lm_sampler_reset(w->smp, seed);
    lm_sampler_allow_only(w->smp, b->lo, b->hi);
    if (b->model_closes) lm_sampler_allow_range(w->smp, b->close, b->close + 1);
}

int lm_media_writer_replay(lm_media_writer *w, const int32_t *toks, int64_t n)
{
    static const char *const name[3] = {"image", "audio", "video"};
    for (int64_t i = 0; i < n; i++) {
        const int32_t f = block_forced(&w->b), t = toks[i], x = block_extra(&w->b);
        if (f >= 0 ? t != f : (t < w->b.lo || t >= w->b.hi) && (t != x || t == w->b.close))
            return lm_fail(&w->e, LOOM_ERR_INVALID_ARG, "the prompt ends inside an unfinished %s block whose "
                           "token %lld after the open token (id %d) cannot stand there (expected %s)", name[w->b.kind],
                           (long long)i + 1, t, f == w->b.close ? "the block's end: it has all its codes"
                                              : f >= 0 ? "<|frame|>" : "a code of that medium");
        block_accept(&w->b, t, w->codes);
    }
    return 0;
}

static int aborted(const loom_media_params *p)
{
    return (p->abort_flag && *p->abort_flag) || (p->should_abort && p->should_abort(p->user_data));
}

int32_t lm_media_writer_next(lm_media_writer *w)
{
    const int32_t forced = block_forced(&w->b);
    if (forced >= 0) return forced;
    if (aborted(&w->p)) return lm_fail(&w->e, LOOM_ERR_ABORTED, "media generation aborted");
    const float *l = loom_session_logits(w->s);
    const int32_t x = block_extra(&w->b);
    const int word = word_next(&w->b);   /* x is the next word's first token */
    if (w->b.n_words) {   /* the codes and the next word's first token (or, at the end, the close) */
        lm_sampler_allow_only(w->smp, w->b.lo, w->b.hi);
        if (x >= 0) lm_sampler_allow_range(w->smp, x, x + 1);
    }
    if (w->u) {   /* guided: l_u + s·(l_c − l_u) over the allowed ids (the mask hides the rest) */
        const float *lu = loom_session_logits(w->u);
        lm_logits_cfg(w->mix, l, lu, w->p.cfg_scale, w->b.lo, w->b.hi);
        if (word) lm_logits_cfg(w->mix, l, lu, w->p.cfg_scale, 0, w->b.text_end);
        else if (x >= 0) lm_logits_cfg(w->mix, l, lu, w->p.cfg_scale, x, x + 1);
    } else if (word) {
        memcpy(w->mix + w->b.lo, l + w->b.lo, (size_t)(w->b.hi - w->b.lo) * sizeof *l);
        memcpy(w->mix, l, (size_t)w->b.text_end * sizeof *l);
    }
    if (word) {   /* the model's wish for any word now is the next word's: all text ids' mass */
        float top = -INFINITY, sum = 0;
        for (int32_t i = 0; i < w->b.text_end; i++) top = fmaxf(top, w->mix[i]);
        for (int32_t i = 0; i < w->b.text_end; i++) sum += expf(w->mix[i] - top);
        w->mix[x] = top + logf(sum);
    }
    if (w->u || word) l = w->mix;
    const int32_t t = lm_sampler_sample(w->smp, l);
    return t >= 0 ? t : lm_fail(&w->e, LOOM_ERR_INVALID_ARG, "media: every code is masked out");
}

int lm_media_writer_put(lm_media_writer *w, int32_t tok)
{
    const int is_code = block_accept(&w->b, tok, w->codes);
    /* inside the block the next token is forced or one of the medium's codes (or its end):
     * only those logits are computed (the output head is the largest matrix) */
    if (!w->b.closed) {
        const int32_t f = block_forced(&w->b);
        const int32_t lo = f >= 0 ? f : w->b.lo, hi = f >= 0 ? f + 1 : w->b.hi;
        const int32_t extra = f < 0 ? block_extra(&w->b) : -1;
        if (f >= 0 || !word_next(&w->b)) {   /* a free step before a word reads every text id */
            lm_session_limit_logits(w->s, lo, hi, extra);
            if (w->u) lm_session_limit_logits(w->u, lo, hi, extra);
        }
    }
    /* with guidance one decoder step of two rows, which reads the weights once for both */
    int rc = w->u ? loom_session_decode_pair(w->s, tok, w->u, tok) : loom_session_decode(w->s, tok);
    if (rc < 0) return session_fail(w, w->s, rc);
    if (is_code && w->p.on_progress) w->p.on_progress(w->b.n_codes, lm_block_max_codes(&w->b), w->p.user_data);
    return 0;
}

/* ---- loom_generate_media ------------------------------------------------------------------ */
static int64_t generate(const loom_model *m, lm_media_writer *w, loom_media_params p, loom_session *s,
                        loom_session *u, const int32_t *prompt, int64_t n_prompt, const int32_t *uprompt,
                        int64_t n_uncond, int32_t *codes, int64_t max_codes)
{
    lm_block b = {0};
    int rc = lm_block_describe(m, &p, &b, &w->e);
    if (rc < 0) return rc;
    const int64_t max = lm_block_max_codes(&b);
    if (!codes || max_codes < max)
        return lm_fail(&w->e, LOOM_ERR_LIMIT, "media: the codes buffer holds %lld codes, the block needs %lld",
                       (long long)max_codes, (long long)max);
    if (!isfinite(p.cfg_scale) || !isfinite(p.temperature))
        return lm_fail(&w->e, LOOM_ERR_INVALID_ARG, "media: cfg_scale and temperature must be finite");
    if (n_prompt < 0 || n_uncond < 0 || (n_prompt > 0 && !prompt) || (n_uncond > 0 && !uprompt))
        return lm_fail(&w->e, LOOM_ERR_INVALID_ARG, "media: prompt without tokens");
    const int guided = p.cfg_scale != 0.0f && p.cfg_scale != 1.0f;
    if (guided && (!u || u == s))
        return lm_fail(&w->e, LOOM_ERR_INVALID_ARG, "media: cfg scale %g needs a second session for the "
                       "unconditional sequence (scale 0 or 1 turns guidance off)", p.cfg_scale);
    if ((rc = lm_media_writer_init(w, m, s, guided ? u : NULL, p)) < 0) return rc;
    b.word_tok = w->word_tok;
    b.word_end = w->word_end;
    b.n_words = w->n_words;
    if ((rc = lm_media_writer_prepare(w, s, prompt, n_prompt, lm_block_max_len(&b))) < 0) return rc;
    if (w->u && (rc = lm_media_writer_prepare(w, w->u, uprompt, n_uncond, lm_block_max_len(&b))) < 0) return rc;
    lm_media_writer_begin(w, &b, codes, p.seed, 0);
    while (!w->b.closed) {
        const int32_t t = lm_media_writer_next(w);
        if (t < 0) return t;
        if ((rc = lm_media_writer_put(w, t)) < 0) return rc;
    }
    return w->b.n_codes;
}

int64_t loom_generate_media(const loom_model *m, loom_session *s, const int32_t *prompt, int64_t n_prompt,
                            loom_session *uncond, const int32_t *uncond_prompt, int64_t n_uncond,
                            loom_media_params p, int32_t *codes, int64_t max_codes, char *err, size_t err_size)
{
    lm_media_writer w = {0};
    int64_t rc = m && s ? generate(m, &w, p, s, uncond, prompt, n_prompt, uncond_prompt, n_uncond, codes, max_codes)
                        : lm_fail(&w.e, LOOM_ERR_INVALID_ARG, "media: no model or session");
    lm_media_writer_free(&w);
    if (rc < 0) copy_err(err, err_size, &w.e);
    else if (err && err_size) err[0] = '\0';
    return rc;
}
