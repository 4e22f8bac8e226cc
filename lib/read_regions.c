/* Pictures read region by region (loom.caption.*), and the object that changes in a clip
 * read so from its first and last frames (loom.describe.mover). Built on the public API. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "include/loom.h"

static int fail(char *err, size_t size, int rc, const char *fmt, ...)
{
    if (err && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The growing text of one answer. */
typedef struct answer_text {
    char  *buf;
    size_t len, cap;
    int    no_memory;
} answer_text;

static int collect(int32_t token, const char *piece, size_t len, void *user)
{
    (void)token;
    answer_text *t = user;
    if (t->len + len + 1 > t->cap) {
        const size_t cap = (t->len + len + 1) * 2;
        char *b = realloc(t->buf, cap);
        if (!b) return t->no_memory = 1;
        t->buf = b;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, piece, len);
    t->len += len;
    t->buf[t->len] = '\0';
    return 0;
}

/* <|bos|><|user|> then the picture (mirrored with `mirror`) into p. */
static int picture_turn(loom_prompt *p, loom_mmproj *mp, const loom_image *img, int mirror, char *err, size_t size)
{
    loom_image flip = {0};
    const loom_image *use = img;
    int rc = 0;
    if (mirror) {
        if ((rc = loom_image_from_rgb(img->rgb, img->width, img->height, 0, &flip, err, size)) < 0) return rc;
        loom_image_mirror(&flip);
        use = &flip;
    }
    loom_prompt_clear(p);
    if (!(rc = loom_prompt_add_special(p, "<|bos|>")) && !(rc = loom_prompt_add_special(p, "<|user|>")))
        rc = loom_prompt_add_image(p, mp, use);
    if (rc < 0) fail(err, size, rc, "%s", loom_prompt_error(p));
    loom_image_free(&flip);
    return rc;
}

/* The question about region i, then <|end|><|assistant|>, into p (cleared). */
static int question_turn(const loom_model *m, loom_prompt *p, int32_t i, char *err, size_t size)
{
    char q[512];
    int rc = loom_caption_region_question(m, i, q, sizeof q);
    if (rc < 0) return fail(err, size, rc, "region question %d too long", i);
    loom_prompt_clear(p);
    if (!(rc = loom_prompt_add_text(p, q)) && !(rc = loom_prompt_add_special(p, "<|end|>")))
        rc = loom_prompt_add_special(p, "<|assistant|>");
    return rc < 0 ? fail(err, size, rc, "%s", loom_prompt_error(p)) : 0;
}

/* Append p to s; the session's error on failure. */
static int append(loom_session *s, const loom_prompt *p, char *err, size_t size)
{
    const int rc = loom_session_append_prompt(s, p);
    return rc < 0 ? fail(err, size, rc, "%s", loom_session_error(s)) : 0;
}

int loom_caption_read_regions(const loom_model *m, loom_mmproj *mp, loom_session *s, loom_session *s2,
                              const loom_image *img, int32_t n_predict, char **answers, loom_generate_stats *stats,
                              char *err, size_t err_size)
{
    loom_caption_regions r = {0};
    if (!m || !mp || !s || s2 == s || !img || !img->rgb || n_predict < 1 || !answers)
        return fail(err, err_size, LOOM_ERR_INVALID_ARG, "read regions: bad argument");
    loom_model_caption_regions(m, &r);
    if (r.n_regions < 1) return fail(err, err_size, LOOM_ERR_INVALID_ARG, "read regions: the model has no caption regions");
    memset(answers, 0, (size_t)r.n_regions * sizeof *answers);
    const int views = s2 && r.mirror ? 2 : 1;
    loom_session *ss[2] = {s, s2};
    loom_prompt *pic[2] = {NULL, NULL}, *q[2] = {NULL, NULL};
    int32_t keep[2] = {0, 0};
    answer_text a = {0};
    loom_generate_stats total = {0};
    int rc = 0;
    double t0 = now_ms();
    for (int v = 0; v < views && !rc; v++) {
        if ((rc = loom_prompt_create(m, &pic[v])) < 0 || (rc = loom_prompt_create(m, &q[v])) < 0) {
            fail(err, err_size, rc, "read regions: out of memory");
            break;
        }
        if (!(rc = picture_turn(pic[v], mp, img, v == 1, err, err_size))) {
            loom_session_truncate(ss[v], 0);
            rc = append(ss[v], pic[v], err, err_size);
            keep[v] = loom_session_n_past(ss[v]);
        }
    }
    total.prompt_ms = now_ms() - t0;
    for (int32_t i = 0; i < r.n_regions && !rc; i++) {
        t0 = now_ms();
        for (int v = 0; v < views && !rc; v++) {
            rc = question_turn(m, q[v], v ? r.mirror[i] : i, err, err_size);
            loom_session_truncate(ss[v], keep[v]);
            if (!rc) rc = append(ss[v], q[v], err, err_size);
        }
        total.prompt_ms += now_ms() - t0;
        if (rc) break;
        loom_generate_params gp = loom_generate_default_params();
        gp.n_predict = n_predict;
        gp.view2 = views == 2 ? s2 : NULL;
        gp.view2_tokens = views == 2 ? loom_model_mirror_tokens(m) : NULL;
        gp.on_token = collect;
        gp.user_data = &a;
        a.len = 0;
        if (a.buf) a.buf[0] = '\0';
        loom_generate_stats st = {0};
        const int64_t n = loom_session_generate(s, NULL, 0, gp, &st);
        total.decode_ms += st.decode_ms;
        total.n_generated += st.n_generated;
        if (n < 0) rc = fail(err, err_size, (int)n, "%s", loom_session_error(s));
        else if (a.no_memory || !(answers[i] = strdup(a.buf ? a.buf : "")))
            rc = fail(err, err_size, LOOM_ERR_NO_MEMORY, "read regions: out of memory");
    }
    for (int v = 0; v < 2; v++) {
        loom_prompt_free(&pic[v]);
        loom_prompt_free(&q[v]);
    }
    free(a.buf);
    if (rc < 0)
        for (int32_t i = 0; i < r.n_regions; i++) free(answers[i]), answers[i] = NULL;
    if (stats) *stats = total;
    return rc;
}

/* Frame i of v as a picture. */
static int frame_image(const loom_video *v, int i, loom_image *out, char *err, size_t size)
{
    return loom_image_from_rgb(loom_video_frame(v, i), loom_video_width(v), loom_video_height(v), 0, out, err, size);
}

int loom_video_mover(const loom_model *m, loom_mmproj *mp, loom_session *s, loom_session *s2, const loom_video *v,
                     int32_t n_predict, char **out, char *err, size_t err_size)
{
    if (out) *out = NULL;
    if (!m || !v || !out) return fail(err, err_size, LOOM_ERR_INVALID_ARG, "video mover: bad argument");
    loom_caption_regions r = {0};
    loom_model_caption_regions(m, &r);
    if (r.n_regions < 1) return fail(err, err_size, LOOM_ERR_INVALID_ARG, "video mover: the model has no caption regions");
    const int last = loom_video_n_frames(v) - 1;
    if (last < 1) return 0;   /* one frame: nothing can change */
    char **ans = calloc(2 * (size_t)r.n_regions, sizeof *ans);
    if (!ans) return fail(err, err_size, LOOM_ERR_NO_MEMORY, "video mover: out of memory");
    int rc = 0;
    for (int k = 0; k < 2 && !rc; k++) {   /* the first frame, then the last */
        loom_image img = {0};
        rc = frame_image(v, k ? last : 0, &img, err, err_size);
        if (!rc) rc = loom_caption_read_regions(m, mp, s, s2, &img, n_predict, ans + k * r.n_regions, NULL, err, err_size);
        loom_image_free(&img);
    }
    for (int32_t i = 0; i < r.n_regions && !rc; i++) {
        const char *before = ans[i], *after = ans[r.n_regions + i];
        if (!strcmp(before, after)) continue;
        if (!(*out = strdup(strcmp(before, r.empty) ? before : after)))
            rc = fail(err, err_size, LOOM_ERR_NO_MEMORY, "video mover: out of memory");
        break;
    }
    for (int32_t i = 0; i < 2 * r.n_regions; i++) free(ans[i]);
    free(ans);
    return rc;
}
