/*
 * Constrained media blocks (docs/FORMAT.md "Unified model"): the decoder writes an image,
 * audio or video block whose open / close / frame tokens are forced and whose codes are
 * sampled from the medium's id range only, optionally with classifier-free guidance from a
 * second session that holds the unconditional sequence (both advanced by one batched
 * decoder step per token: loom_session_decode_pair).
 *
 * Uses the sessions through the public API only; everything (sampler, guided logits) is
 * allocated once per block, nothing per step.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/error.h"
#include "lib/core/sampler.h"
#include "lib/core/tokenizer.h"
#include "lib/model.h"

loom_media_params loom_media_default_params(int kind)
{
    return (loom_media_params){.kind = kind, .cfg_scale = 3.0f, .temperature = 1.0f, .top_k = 0,
                               .seed = 0, .max_audio_codes = 250, .n_frames = 0};
}

static const char *kind_name(int kind)
{
    return kind == LOOM_MEDIA_IMAGE ? "images" : kind == LOOM_MEDIA_AUDIO ? "audio" : "video";
}

static void copy_err(char *dst, size_t size, const lm_error *e)
{
    if (dst && size) snprintf(dst, size, "%s", e->msg);
}

/* The block a kind writes: forced tokens, the sampled range, its length. */
typedef struct block {
    int32_t open, close, frame;   /* frame: -1 unless video                           */
    int32_t lo, hi;               /* sampled code ids [lo, hi); code = id − lo         */
    int32_t n_frames;             /* image 1, video frames, audio 1                    */
    int64_t per_frame;            /* codes per frame; audio: the most codes            */
    int     model_closes;         /* audio: the close token may be sampled too          */
} block;

static int describe(const loom_model *m, const loom_media_params *p, block *b, lm_error *e)
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
    const int need[3][3] = {{LM_CTL_IMAGE, LM_CTL_IMAGE_END, LM_CTL_IMAGE},
                            {LM_CTL_AUDIO, LM_CTL_AUDIO_END, LM_CTL_AUDIO},
                            {LM_CTL_VIDEO, LM_CTL_VIDEO_END, LM_CTL_FRAME}};
    for (int i = 0; i < 3; i++)
        if (m->ctl[need[k][i]] < 0)
            return lm_fail(e, LOOM_ERR_UNSUPPORTED, "model cannot generate %s: its tokenizer has no %s token", what,
                           lm_ctl_text[need[k][i]]);
    const int64_t grid2 = (int64_t)v->image_grid * v->image_grid;
    *b = (block){.open = m->ctl[need[k][0]], .close = m->ctl[need[k][1]], .frame = -1,
                 .lo = v->image_start, .hi = v->image_start + v->image_count, .n_frames = 1, .per_frame = grid2};
    if (k == LOOM_MEDIA_AUDIO) {
        if (p->max_audio_codes < 1)
            return lm_fail(e, LOOM_ERR_INVALID_ARG, "media: max_audio_codes %d must be >= 1", p->max_audio_codes);
        b->lo = v->audio_start;
        b->hi = v->audio_start + v->audio_count;
        b->per_frame = p->max_audio_codes;
        b->model_closes = 1;
    } else if (k == LOOM_MEDIA_VIDEO) {
        b->frame = m->ctl[LM_CTL_FRAME];
        b->n_frames = p->n_frames > 0 ? p->n_frames : v->video_gen_frames;
        if (b->n_frames > 1024) return lm_fail(e, LOOM_ERR_LIMIT, "media: %d video frames (at most 1024)", b->n_frames);
    }
    return 0;
}

int loom_model_can_generate(const loom_model *m, int kind, char *err, size_t err_size)
{
    lm_error e = {0};
    block b = {0};
    loom_media_params p = loom_media_default_params(kind);
    int rc = m ? describe(m, &p, &b, &e) : lm_fail(&e, LOOM_ERR_INVALID_ARG, "media: no model");
    copy_err(err, err_size, &e);
    return rc;
}

int64_t loom_media_max_codes(const loom_model *m, loom_media_params p)
{
    block b = {0};
    int rc = m ? describe(m, &p, &b, NULL) : LOOM_ERR_INVALID_ARG;
    return rc < 0 ? rc : b.n_frames * b.per_frame;
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

/* ---- generation ------------------------------------------------------------------------ */
typedef struct media_run {
    loom_session     *s, *u;      /* conditional; unconditional (NULL: no guidance)     */
    float             cfg;
    lm_sampler       *smp;        /* owned                                              */
    float            *mix;        /* [n_vocab] guided logits (allowed ids only), owned  */
    loom_media_params p;
    lm_error          e;
} media_run;

static int session_fail(media_run *r, loom_session *s, int rc)
{
    return lm_fail(&r->e, rc, "%s%s", s == r->u ? "unconditional session: " : "", loom_session_error(s));
}

/* Append one token to both sequences (computes the next logits): with guidance as one
 * decoder step of two rows, which reads the weights once for both. */
static int feed(media_run *r, int32_t tok)
{
    int rc = r->u ? loom_session_decode_pair(r->s, tok, r->u, tok) : loom_session_decode(r->s, tok);
    return rc < 0 ? session_fail(r, r->s, rc) : 0;
}

/* Sample from the allowed ids [lo, hi) (+ extra when >= 0) of the (guided) logits. */
static int32_t draw(media_run *r, int32_t lo, int32_t hi, int32_t extra)
{
    const float *l = loom_session_logits(r->s);
    if (r->u) {
        const float *lu = loom_session_logits(r->u);
        lm_logits_cfg(r->mix, l, lu, r->cfg, lo, hi);
        if (extra >= 0) lm_logits_cfg(r->mix, l, lu, r->cfg, extra, extra + 1);
        l = r->mix;
    }
    const int32_t t = lm_sampler_sample(r->smp, l);
    return t >= 0 ? t : lm_fail(&r->e, LOOM_ERR_INVALID_ARG, "media: every code is masked out");
}

static int aborted(const loom_media_params *p)
{
    return (p->abort_flag && *p->abort_flag) || (p->should_abort && p->should_abort(p->user_data));
}

/* Sample up to b->per_frame codes of one frame into codes; returns the count. */
static int64_t sample_frame(media_run *r, const block *b, int32_t *codes, int64_t done, int64_t total)
{
    for (int64_t i = 0; i < b->per_frame; i++) {
        if (aborted(&r->p)) return lm_fail(&r->e, LOOM_ERR_ABORTED, "media generation aborted");
        const int32_t t = draw(r, b->lo, b->hi, b->model_closes ? b->close : -1);
        if (t < 0) return t;
        if (t == b->close) return i;              /* the model ended the clip */
        codes[i] = t - b->lo;
        int rc = feed(r, t);
        if (rc < 0) return rc;
        if (r->p.on_progress) r->p.on_progress(done + i + 1, total, r->p.user_data);
    }
    return b->per_frame;
}

static int64_t run_block(media_run *r, const block *b, int32_t *codes)
{
    const int64_t total = b->n_frames * b->per_frame;
    lm_sampler_allow_only(r->smp, b->lo, b->hi);
    if (b->model_closes) lm_sampler_allow_range(r->smp, b->close, b->close + 1);
    int64_t n = 0;
    int rc = feed(r, b->open);
    for (int32_t f = 0; rc == 0 && f < b->n_frames; f++) {
        if (b->frame >= 0 && (rc = feed(r, b->frame)) < 0) break;
        const int64_t k = sample_frame(r, b, codes + n, n, total);
        if (k < 0) return k;
        n += k;
    }
    if (rc == 0) rc = feed(r, b->close);
    return rc < 0 ? rc : n;
}

/* Prompt one session (n 0: keep what it holds) and check the block fits its context. */
static int prepare(media_run *r, loom_session *s, const int32_t *prompt, int64_t n, int64_t block_len)
{
    const int64_t past = n > 0 ? n : loom_session_n_past(s);
    if (past + block_len > loom_session_n_ctx(s))
        return lm_fail(&r->e, LOOM_ERR_CONTEXT_FULL, "context full: %lld prompt tokens + a %lld-token block exceed n_ctx %d",
                       (long long)past, (long long)block_len, loom_session_n_ctx(s));
    if (n == 0) return 0;
    int rc = loom_session_prompt(s, prompt, n, NULL);
    return rc < 0 ? session_fail(r, s, rc) : 0;
}

static int64_t generate(const loom_model *m, media_run *r, const int32_t *prompt, int64_t n_prompt,
                        const int32_t *uprompt, int64_t n_uncond, int32_t *codes, int64_t max_codes)
{
    const loom_media_params *p = &r->p;
    block b = {0};
    int rc = describe(m, p, &b, &r->e);
    if (rc < 0) return rc;
    const int64_t max = b.n_frames * b.per_frame;
    if (!codes || max_codes < max)
        return lm_fail(&r->e, LOOM_ERR_LIMIT, "media: the codes buffer holds %lld codes, the block needs %lld",
                       (long long)max_codes, (long long)max);
    if (!isfinite(p->cfg_scale) || !isfinite(p->temperature))
        return lm_fail(&r->e, LOOM_ERR_INVALID_ARG, "media: cfg_scale and temperature must be finite");
    if (n_prompt < 0 || n_uncond < 0 || (n_prompt > 0 && !prompt) || (n_uncond > 0 && !uprompt))
        return lm_fail(&r->e, LOOM_ERR_INVALID_ARG, "media: prompt without tokens");
    const int guided = p->cfg_scale != 0.0f && p->cfg_scale != 1.0f;
    if (guided && (!r->u || r->u == r->s))
        return lm_fail(&r->e, LOOM_ERR_INVALID_ARG, "media: cfg scale %g needs a second session for the "
                       "unconditional sequence (scale 0 or 1 turns guidance off)", p->cfg_scale);
    if (!guided) r->u = NULL;
    const int64_t block_len = 2 + max + (b.frame >= 0 ? b.n_frames : 0);
    if ((rc = prepare(r, r->s, prompt, n_prompt, block_len)) < 0) return rc;
    if (r->u && (rc = prepare(r, r->u, uprompt, n_uncond, block_len)) < 0) return rc;

    const int32_t V = loom_model_n_vocab(m);
    lm_sampler_params sp = lm_sampler_default_params();
    sp.temperature = p->temperature;
    sp.top_k = p->top_k;
    sp.penalty_last_n = 0;
    sp.seed = p->seed;
    r->cfg = p->cfg_scale;
    r->smp = lm_sampler_create(sp, V);
    r->mix = r->u ? calloc((size_t)V, sizeof *r->mix) : NULL;
    if (!r->smp || (r->u && !r->mix)) return lm_fail(&r->e, LOOM_ERR_NO_MEMORY, "media: out of memory");
    return run_block(r, &b, codes);
}

int64_t loom_generate_media(const loom_model *m, loom_session *s, const int32_t *prompt, int64_t n_prompt,
                            loom_session *uncond, const int32_t *uncond_prompt, int64_t n_uncond,
                            loom_media_params p, int32_t *codes, int64_t max_codes, char *err, size_t err_size)
{
    media_run r = {.s = s, .u = uncond, .p = p};
    int64_t rc = m && s ? generate(m, &r, prompt, n_prompt, uncond_prompt, n_uncond, codes, max_codes)
                        : lm_fail(&r.e, LOOM_ERR_INVALID_ARG, "media: no model or session");
    lm_sampler_free(&r.smp);
    free(r.mix);
    if (rc < 0) copy_err(err, err_size, &r.e);
    else if (err && err_size) err[0] = '\0';
    return rc;
}
