/* loom caption / transcribe / describe: media in, text out, through a unified model
 * (decoder `<stem>.gguf` + media encoders `<stem>-mmproj.gguf`). Uses only include/loom.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_util.h"
#include "loom.h"

void help_caption(void);
void help_transcribe(void);
void help_describe(void);
int  cmd_caption(int argc, char **argv);
int  cmd_transcribe(int argc, char **argv);
int  cmd_describe(int argc, char **argv);

#define COMMON_HELP \
    "  -m, --model PATH       decoder GGUF (default $LOOM_MODEL, else models/loom-tiny.gguf)\n" \
    "      --mmproj PATH      media encoders (default: <model stem>-mmproj.gguf beside it)\n" \
    "  -n, --n-predict N      most tokens per answer (default 256)\n" \
    "  -b, --beam N           keep the N most probable answers at each step (beam search, 2..8;\n" \
    "                         1: greedy; default 1 for caption, 4 for transcribe, for describe\n" \
    "                         1 where the model has a mirror (two views, below), else 4)\n" \
    "  -t, --threads N        threads (default: all CPUs)\n" \
    "      --bf16             prefill and encoders in bfloat16 on AMX CPUs (faster;\n" \
    "                         values differ from float32 from the 3rd digit)\n" \
    "      --json             print a JSON object per input\n" \
    "  -q, --quiet            no timings on stderr\n"

void help_caption(void)
{
    printf("usage: loom caption [options] IMAGE...\n\n"
           "Describes each PNG or JPEG image (or answers --prompt about it); for several,\n"
           "one PATH<TAB>text line each.\n\n"
           "A model with caption regions (loom.caption.*, loom-tiny) is asked about each region of\n"
           "the picture in its own answer (\"what is in the top left?\") and the caption is made of\n"
           "the answers; --json then also lists them. Where the model also says how its regions\n"
           "mirror (loom.caption.region_mirror), each region is read in the picture and in its mirror\n"
           "image together (greedy answers only).\n\n"
           "  -p, --prompt TEXT      a question or instruction instead of \"Describe the image.\"\n"
           "      --whole            caption in one answer even where the model has caption regions\n"
           "      --no-mirror        read each region in the picture alone\n" COMMON_HELP);
}

void help_transcribe(void)
{
    printf("usage: loom transcribe [options] AUDIO...\n\n"
           "Transcribes speech from any file FFmpeg reads (\"-\" reads stdin). Audio longer than\n"
           "the encoder's window is cut in its pauses into pieces of speech, each transcribed in\n"
           "turn (loom_audio_split: stretches without speech are skipped).\n"
           "Several files: one PATH<TAB>text line each (txt) or one JSON object per line.\n\n"
           "  -f, --format FMT       txt (default), srt, vtt or json (segments with times)\n"
           "      --ctc W            weight 0..1 of the audio's own CTC reading in the beams' scores\n"
           "                         (default 0.3 when the media file has a CTC head and beams\n"
           "                         are on; 0: the decoder alone)\n" COMMON_HELP);
}

void help_describe(void)
{
    printf("usage: loom describe [options] VIDEO...\n\n"
           "Describes what happens in each video (any container/codec FFmpeg decodes);\n"
           "for several, one PATH<TAB>text line each.\n\n"
           "Where the model says which tokens trade places in a mirror image\n"
           "(loom.mirror.token_pairs), the clip and its mirror image are read together, greedily\n"
           "(\"left\" in the one is \"right\" in the other); -b N (N > 1) or --no-mirror reads the\n"
           "clip alone.\n\n"
           "Where the model's descriptions open with the object that changes (loom.describe.mover,\n"
           "with caption regions), the first and last frames are read region by region as loom\n"
           "caption reads a picture, and the description opens with the answer of the first region\n"
           "that changed (\"a large red star\"; the model may leave out words between its first and\n"
           "last). Greedy, with the model's own question only.\n\n"
           "  -p, --prompt TEXT      instead of \"Describe the video.\"\n"
           "      --no-mirror        read the clip alone\n"
           "      --no-mover         do not open the description with the object that changes\n"
           "      --frames N         frames sampled uniformly (default: the model's, 8 for loom-tiny)\n"
           "      --fps F            sample at F frames per second instead of --frames\n"
           "      --max-frames N     refuse videos that would need more frames (default 64)\n" COMMON_HELP);
}

static volatile int g_interrupted;
static void on_sigint(int sig) { (void)sig; g_interrupted = 1; }

/* Options shared by the three commands. */
typedef struct job_opts {
    cli_common  c;
    const char *mmproj;
    const char *prompt;
    const char *format;
    long long   n_predict, beam, frames, max_frames;
    double      fps, ctc;
    int         whole;      /* caption: one answer, not region by region */
    int         no_mirror;  /* caption by region, describe: the media alone, not with its mirror image */
    int         no_mover;   /* describe: no opening with the object that changes (loom_video_mover) */
    const char **inputs;    /* the input paths: argv's own slots, gathered at its front by parse() */
    int          n_inputs;
} job_opts;

static int parse(const char *cmd, int argc, char **argv, job_opts *o)
{
    *o = (job_opts){.n_predict = 256, .frames = 0, .max_frames = 64, .ctc = 0.3, .inputs = (const char **)argv + 1};
    for (int i = 1; i < argc; i++) {
        int r = cli_common_option(&o->c, argc, argv, &i);
        if (r < 0) return -1;
        if (r > 0) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (cli_is(a, "--mmproj", NULL) && v) { o->mmproj = v; i++; }
        else if (cli_is(a, "-p", "--prompt") && v && strcmp(cmd, "transcribe")) { o->prompt = v; i++; }
        else if (cli_is(a, "--whole", NULL) && !strcmp(cmd, "caption")) o->whole = 1;
        else if (cli_is(a, "--no-mirror", NULL) && strcmp(cmd, "transcribe")) o->no_mirror = 1;
        else if (cli_is(a, "--no-mover", NULL) && !strcmp(cmd, "describe")) o->no_mover = 1;
        else if (cli_is(a, "-f", "--format") && v && !strcmp(cmd, "transcribe")) { o->format = v; i++; }
        else if (cli_is(a, "--ctc", NULL) && v && !strcmp(cmd, "transcribe")) { bad = cli_parse_float(a, v, 0, 1, &o->ctc); i++; }
        else if (cli_is(a, "-n", "--n-predict") && v) { bad = cli_parse_int(a, v, 1, 1 << 20, &o->n_predict); i++; }
        else if (cli_is(a, "-b", "--beam") && v) { bad = cli_parse_int(a, v, 1, 8, &o->beam); i++; }
        else if (cli_is(a, "--frames", NULL) && v && !strcmp(cmd, "describe")) { bad = cli_parse_int(a, v, 1, 4096, &o->frames); i++; }
        else if (cli_is(a, "--fps", NULL) && v && !strcmp(cmd, "describe")) { bad = cli_parse_float(a, v, 1e-3, 1000, &o->fps); i++; }
        else if (cli_is(a, "--max-frames", NULL) && v && !strcmp(cmd, "describe")) { bad = cli_parse_int(a, v, 1, 4096, &o->max_frames); i++; }
        else if (a[0] == '-' && a[1] && strcmp(a, "-")) { cli_error("%s: unknown or incomplete option '%s'", cmd, a); return -1; }
        else o->inputs[o->n_inputs++] = a;   /* slot 1 + n_inputs <= i: one already read */
        if (bad) return -1;
    }
    if (o->n_inputs == 0) { cli_error("%s: no input file (see 'loom %s --help')", cmd, cmd); return -1; }
    if (o->n_inputs > 1 && o->format && (!strcmp(o->format, "srt") || !strcmp(o->format, "vtt"))) {
        cli_error("transcribe: --format %s takes one input file (txt and json take several)", o->format);
        return -1;
    }
    if (o->format && strcmp(o->format, "txt") && strcmp(o->format, "srt") && strcmp(o->format, "vtt") && strcmp(o->format, "json")) {
        cli_error("transcribe: --format: expected txt, srt, vtt or json, got '%s'", o->format);
        return -1;
    }
    if (o->frames && o->fps > 0) { cli_error("describe: give --frames or --fps, not both"); return -1; }
    if (!o->beam && strcmp(cmd, "describe")) o->beam = strcmp(cmd, "caption") ? 4 : 1;   /* where beams measured
                                                                     better (docs/CLI.md); describe: job_open */
    if (!o->c.model) o->c.model = cli_default_model();
    return 0;
}

/* The loaded model, its media encoders and one session (two for a caption in two views). */
typedef struct job {
    loom_model   *m;
    loom_mmproj  *mp;
    loom_session *s;
    loom_prompt  *p;
    loom_session *s2;           /* the mirror image's session and turn, made when first needed */
    loom_prompt  *p2;
    const float  *ctc;          /* [ctc_frames][classes] the prompt's audio read by CTC, or NULL */
    int32_t       opening[64];  /* the answer's opening (loom_generate_params.opening), n_opening of them */
    int32_t       n_opening;
    int64_t       ctc_frames;
    float         ctc_weight;
} job;

static void job_close(job *j)
{
    loom_prompt_free(&j->p);
    loom_session_free(&j->s);
    loom_prompt_free(&j->p2);
    loom_session_free(&j->s2);
    loom_mmproj_free(&j->mp);
    loom_model_free(&j->m);
}

static loom_session_params session_params(const job_opts *o)
{
    loom_session_params sp = loom_session_default_params();
    sp.n_threads = o->c.threads;
    sp.matmul = o->c.matmul;
    sp.sampler.seed = o->c.seed;
    return sp;
}

static int job_open(job_opts *o, job *j)
{
    char err[512], path[4096];
    *j = (job){0};
    loom_model_params mpar = loom_model_default_params();
    mpar.n_threads = o->c.threads;
    if (loom_model_load(o->c.model, mpar, &j->m, err, sizeof err) < 0) { cli_error("%s", err); return -1; }
    if (!loom_model_has_tokenizer(j->m)) { cli_error("%s: the model has no tokenizer", o->c.model); job_close(j); return -1; }
    if (!o->beam) o->beam = loom_model_mirror_tokens(j->m) && !o->no_mirror ? 1 : 4;   /* describe: two views */
    const char *mmproj = o->mmproj;
    if (!mmproj) {
        if (cli_sibling_path(o->c.model, "-mmproj.gguf", path, sizeof path) < 0) { cli_error("model path too long"); job_close(j); return -1; }
        mmproj = path;
    }
    loom_mmproj_params pp = loom_mmproj_default_params();
    pp.n_threads = o->c.threads;
    pp.matmul = o->c.matmul;
    if (loom_mmproj_load(mmproj, pp, &j->mp, err, sizeof err) < 0) {
        cli_error("%s (the media encoders; give --mmproj PATH)", err);
        job_close(j);
        return -1;
    }
    if (loom_session_create(j->m, session_params(o), &j->s, err, sizeof err) < 0 || loom_prompt_create(j->m, &j->p) < 0) {
        cli_error("%s", err);
        job_close(j);
        return -1;
    }
    loom_session_set_abort(j->s, NULL, &g_interrupted, NULL);
    return 0;
}

typedef struct text_out {
    char  *buf;
    size_t len, cap;
} text_out;

static int collect(int32_t token, const char *piece, size_t len, void *user)
{
    (void)token;
    text_out *t = user;
    if (t->len + len + 1 > t->cap) {
        size_t cap = (t->len + len + 1) * 2;
        char *b = realloc(t->buf, cap);
        if (!b) return 1;
        t->buf = b;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, piece, len);
    t->len += len;
    t->buf[t->len] = '\0';
    return 0;
}

/* "<|bos|><|user|>" — the caller adds the content — then end_turn() adds "<|end|><|assistant|>". */
static int begin_turn(loom_prompt *p)
{
    loom_prompt_clear(p);
    int rc = loom_prompt_add_special(p, "<|bos|>");
    return rc ? rc : loom_prompt_add_special(p, "<|user|>");
}

static int end_turn(loom_prompt *p, const char *text)
{
    int rc = loom_prompt_add_text(p, text);
    if (!rc) rc = loom_prompt_add_special(p, "<|end|>");
    return rc ? rc : loom_prompt_add_special(p, "<|assistant|>");
}

/* Run the prompt after the first `keep` cached positions and generate the answer into *out
 * (reset first). keep2 >= 0: j->p2 runs after keep2 of j->s2's, the second view. */
static int answer_views(job *j, const job_opts *o, int32_t keep, int32_t keep2, text_out *out, loom_generate_stats *st)
{
    out->len = 0;
    if (out->buf) out->buf[0] = '\0';
    loom_session_truncate(j->s, keep);
    if (keep2 >= 0) loom_session_truncate(j->s2, keep2);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = loom_session_append_prompt(j->s, j->p);
    if (rc < 0) { cli_error("%s", loom_session_error(j->s)); return rc; }
    if (keep2 >= 0 && (rc = loom_session_append_prompt(j->s2, j->p2)) < 0) { cli_error("%s", loom_session_error(j->s2)); return rc; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    loom_generate_params gp = loom_generate_default_params();
    gp.n_predict = (int32_t)o->n_predict;
    gp.n_beams = (int32_t)o->beam;
    if (j->ctc && gp.n_beams > 1) {
        gp.ctc_logprobs = j->ctc;
        gp.ctc_frames = j->ctc_frames;
        gp.ctc_classes = loom_mmproj_ctc_classes(j->mp);
        gp.ctc_weight = j->ctc_weight;
    }
    gp.view2 = keep2 >= 0 ? j->s2 : NULL;
    gp.view2_tokens = keep2 >= 0 ? loom_model_mirror_tokens(j->m) : NULL;   /* view 2 is the mirror image */
    gp.opening = j->n_opening ? j->opening : NULL;
    gp.n_opening = j->n_opening;
    gp.on_token = collect;
    gp.user_data = out;
    gp.abort_flag = &g_interrupted;
    int64_t n = loom_session_generate(j->s, NULL, 0, gp, st);
    st->n_prompt = loom_prompt_n(j->p);   /* the prompt ran above, not inside generate */
    st->prompt_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (n < 0 && n != LOOM_ERR_ABORTED) cli_error("%s", loom_session_error(j->s));
    return n < 0 ? (int)n : 0;
}

static int answer(job *j, const job_opts *o, text_out *out, loom_generate_stats *st)
{
    return answer_views(j, o, 0, -1, out, st);
}

static int finish_status(int rc) { return rc == LOOM_ERR_ABORTED ? EXIT_ABORTED : rc < 0 ? EXIT_FAILED : EXIT_OK; }

/* One input of a command: its answer printed, or a message and a negative status. */
typedef int (*input_fn)(job *j, const job_opts *o, const char *path, text_out *out);

/* The model is loaded once; the inputs run in the order given, until one fails. */
static int run_inputs(const char *cmd, int argc, char **argv, input_fn one)
{
    job_opts o;
    if (parse(cmd, argc, argv, &o) < 0) return EXIT_USAGE;
    job j;
    if (job_open(&o, &j) < 0) return EXIT_FAILED;
    text_out out = {0};
    int rc = 0;
    signal(SIGINT, on_sigint);
    for (int i = 0; i < o.n_inputs && rc == 0; i++) {
        rc = one(&j, &o, o.inputs[i], &out);
        fflush(stdout);
    }
    signal(SIGINT, SIG_DFL);
    free(out.buf);
    job_close(&j);
    return finish_status(rc);
}

/* Text output of an answer: the answer alone for one input, `PATH<TAB>answer` for several. */
static void print_answer(const job_opts *o, const char *path, const char *text)
{
    if (o->n_inputs > 1) printf("%s\t", path);
    printf("%s\n", text);
}

/* j->p2 at the start of the mirror image's turn (its session and prompt made the first time). */
static int mirror_view(job *j, const job_opts *o, const char *cmd)
{
    char err[512] = "out of memory";
    int rc = 0;
    if (!j->s2 && !(rc = loom_session_create(j->m, session_params(o), &j->s2, err, sizeof err)))
        loom_session_set_abort(j->s2, NULL, &g_interrupted, NULL);
    if (!rc && !j->p2) rc = loom_prompt_create(j->m, &j->p2);
    if (rc < 0) { cli_error("%s: the mirror image's session: %s", cmd, err); return rc; }
    return begin_turn(j->p2);
}

/* A model with caption regions: each region asked in its own answer
 * (loom_caption_read_regions; with the model's region mirror and greedy answers, in the
 * picture and its mirror image together), the answers kept in answers[] and the caption
 * composed of them. */
static int caption_by_region(job *j, const job_opts *o, const loom_caption_regions *r, const loom_image *img,
                             char **answers, text_out *out, loom_generate_stats *st)
{
    char err[512];
    const int views = r->mirror && !o->no_mirror && o->beam <= 1 ? 2 : 1;
    int rc = views == 2 ? mirror_view(j, o, "caption") : 0;
    if (!rc && (rc = loom_caption_read_regions(j->m, j->mp, j->s, views == 2 ? j->s2 : NULL, img, (int32_t)o->n_predict,
                                               answers, st, err, sizeof err)) < 0 && rc != LOOM_ERR_ABORTED)
        cli_error("caption: %s", err);
    if (rc < 0) return rc;
    size_t need = strlen(r->empty) + 1;
    for (int32_t i = 0; i < r->n_regions; i++) need += strlen(answers[i]) + strlen(r->phrases[i]) + 6;
    if (out->cap < need) {
        char *b = realloc(out->buf, need);
        if (!b) return LOOM_ERR_NO_MEMORY;
        out->buf = b;
        out->cap = need;
    }
    int64_t n = loom_caption_compose(j->m, (const char *const *)answers, out->buf, out->cap);
    if (n < 0) return (int)n;
    out->len = (size_t)n;
    return 0;
}

static int caption_one(job *j, const job_opts *o, const char *path, text_out *out)
{
    char err[512];
    loom_image img = {0};
    loom_generate_stats st = {0};
    int rc = loom_image_load(path, loom_image_default_params(), &img, err, sizeof err);
    if (rc < 0) { cli_error("%s", err); return rc; }
    loom_caption_regions r = {0};
    loom_model_caption_regions(j->m, &r);
    const int by_region = r.n_regions > 0 && !o->prompt && !o->whole;
    char **answers = by_region ? calloc((size_t)r.n_regions, sizeof *answers) : NULL;
    if (by_region && !answers) rc = LOOM_ERR_NO_MEMORY;
    if (!rc && by_region) rc = caption_by_region(j, o, &r, &img, answers, out, &st);
    if (!rc && !by_region && !(rc = begin_turn(j->p)) && (rc = loom_prompt_add_image(j->p, j->mp, &img)) < 0)
        cli_error("%s: %s", path, loom_prompt_error(j->p));
    if (!rc && !by_region) rc = end_turn(j->p, o->prompt ? o->prompt : "Describe the image.");
    if (!rc && !by_region) rc = answer(j, o, out, &st);
    loom_image_free(&img);
    if (rc == LOOM_ERR_NO_MEMORY) cli_error("%s: out of memory", path);
    const char *text = out->buf ? out->buf : "";
    if (!rc && o->c.json) {
        printf("{\"image\": ");
        cli_json_str(stdout, path);
        printf(", \"text\": ");
        cli_json_str(stdout, text);
        if (by_region) {
            printf(", \"regions\": [");
            for (int32_t i = 0; i < r.n_regions; i++) {
                if (i) printf(", ");
                cli_json_str(stdout, answers[i]);
            }
            printf("]");
        }
        printf(", \"prompt_ms\": %.1f, \"decode_ms\": %.1f, \"n_generated\": %lld}\n", st.prompt_ms, st.decode_ms,
               (long long)st.n_generated);
    } else if (!rc) {
        print_answer(o, path, text);
        if (!o->c.quiet)
            fprintf(stderr, "loom: %s: %.0f ms prompt, %lld tokens in %.0f ms%s\n", path, st.prompt_ms,
                    (long long)st.n_generated, st.decode_ms, by_region ? " (by region)" : "");
    }
    for (int32_t i = 0; by_region && answers && i < r.n_regions; i++) free(answers[i]);
    free(answers);
    return rc;
}

int cmd_caption(int argc, char **argv) { return run_inputs("caption", argc, argv, caption_one); }

/* loom.describe.mover: the object that changes in v (loom_video_mover, in the views the
 * description will use) into *mover and its tokens into j->opening; none where no region
 * changed. */
static int describe_opening(job *j, const job_opts *o, int views, const loom_video *v, char **mover)
{
    char err[512];
    int rc = loom_video_mover(j->m, j->mp, j->s, views == 2 ? j->s2 : NULL, v, (int32_t)o->n_predict, mover, err, sizeof err);
    if (rc < 0) {
        if (rc != LOOM_ERR_ABORTED) cli_error("describe: the object that changes: %s", err);
        return rc;
    }
    const int64_t n = *mover ? loom_tokenize(j->m, *mover, strlen(*mover), 0, 0, j->opening, 64) : 0;
    if (n < 0 || n > 64) {
        cli_error("describe: the object that changes, \"%s\": %s", *mover, n < 0 ? loom_status_str((int)n) : "over 64 tokens");
        return n < 0 ? (int)n : LOOM_ERR_LIMIT;
    }
    j->n_opening = (int32_t)n;
    return 0;
}

static int describe_one(job *j, const job_opts *o, const char *path, text_out *out)
{
    char err[512], *mover = NULL;
    loom_video_params vp = loom_video_default_params();
    vp.n_frames = o->fps > 0 ? 0 : o->frames > 0 ? (int)o->frames : loom_model_video_frames(j->m);
    vp.fps = o->fps;
    vp.max_frames = (int)o->max_frames;
    vp.n_threads = o->c.threads;
    loom_video *v = NULL;
    loom_generate_stats st = {0};
    loom_caption_regions r = {0};
    loom_model_caption_regions(j->m, &r);
    /* two views: the clip's mirror image asks the same question; the mover: greedy, the model's
       own question (docs/CLI.md) */
    const int views = loom_model_mirror_tokens(j->m) && !o->no_mirror && o->beam <= 1 ? 2 : 1;
    const int by_mover = r.describe_mover && !o->no_mover && !o->prompt && o->beam <= 1;
    const char *question = o->prompt ? o->prompt : "Describe the video.";
    double t0 = 0;
    int rc = loom_video_sample(path, vp, &v, err, sizeof err);
    if (rc < 0) cli_error("%s", err);
    if (!rc && views == 2) rc = mirror_view(j, o, "describe");
    if (!rc && by_mover) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t0 = (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
        rc = describe_opening(j, o, views, v, &mover);
        clock_gettime(CLOCK_MONOTONIC, &t);
        t0 = (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6 - t0;
    }
    if (!rc) rc = begin_turn(j->p);
    if (!rc && (rc = loom_prompt_add_video(j->p, j->mp, v)) < 0) cli_error("%s: %s", path, loom_prompt_error(j->p));
    if (!rc) rc = end_turn(j->p, question);
    if (!rc && views == 2) {   /* v is mirrored and back: its frames are in the prompt already */
        loom_video_mirror(v);
        if ((rc = loom_prompt_add_video(j->p2, j->mp, v)) < 0) cli_error("%s: %s", path, loom_prompt_error(j->p2));
        if (!rc) rc = end_turn(j->p2, question);
        loom_video_mirror(v);
    }
    if (!rc) rc = answer_views(j, o, 0, views == 2 ? 0 : -1, out, &st);
    j->n_opening = 0;
    if (!rc) {
        const char *text = out->buf ? out->buf : "";
        if (o->c.json) {
            printf("{\"video\": ");
            cli_json_str(stdout, path);
            printf(", \"frames\": [");
            for (int i = 0; i < loom_video_n_frames(v); i++) printf("%s%.3f", i ? ", " : "", loom_video_frame_time(v, i));
            printf("], \"text\": ");
            cli_json_str(stdout, text);
            if (by_mover) {
                printf(", \"mover\": ");
                if (mover) cli_json_str(stdout, mover);
                else printf("null");
                printf(", \"mover_ms\": %.1f", t0);
            }
            printf(", \"prompt_ms\": %.1f, \"decode_ms\": %.1f}\n", st.prompt_ms, st.decode_ms);
        } else {
            print_answer(o, path, text);
            if (!o->c.quiet) {
                fprintf(stderr, "loom: %s: %d frames, %.0f ms prompt, %lld tokens in %.0f ms", path,
                        loom_video_n_frames(v), st.prompt_ms, (long long)st.n_generated, st.decode_ms);
                if (by_mover) fprintf(stderr, ", %s in %.0f ms", mover ? "the object that changes read" : "no object changes", t0);
                fputc('\n', stderr);
            }
        }
    }
    free(mover);
    loom_video_free(&v);
    return rc;
}

int cmd_describe(int argc, char **argv) { return run_inputs("describe", argc, argv, describe_one); }

/* "00:01:02,345" (srt) or "00:01:02.345" (vtt). */
static void print_time(double t, char sep)
{
    long long ms = (long long)(t * 1000.0 + 0.5);
    printf("%02lld:%02lld:%02lld%c%03lld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, sep, ms % 1000);
}

/* <|audio|> rows <|/audio|> for pcm[0..n); with a CTC head, --ctc > 0 and beams, also the rows
 * read by CTC for the answer's scores (j->ctc). *buf: the rows then the log-probabilities. */
static int add_audio(job *j, const job_opts *o, const char *path, const float *pcm, int64_t n, float **buf)
{
    const int64_t rows = loom_mmproj_audio_rows(j->mp, n);
    const int64_t C = o->ctc > 0 && o->beam > 1 ? loom_mmproj_ctc_classes(j->mp) : 0;
    if (rows < 1 || C < 1) {   /* loom_prompt_add_audio names what is wrong with the clip */
        int rc = loom_prompt_add_audio(j->p, j->mp, pcm, n);
        if (rc < 0) cli_error("%s: %s", path, loom_prompt_error(j->p));
        return rc;
    }
    const int64_t E = loom_mmproj_n_embd(j->mp);
    free(*buf);
    *buf = malloc((size_t)rows * (size_t)(E + C) * sizeof **buf);
    if (!*buf) { cli_error("%s: out of memory", path); return LOOM_ERR_NO_MEMORY; }
    float *lp = *buf + rows * E;
    int rc = loom_mmproj_encode_audio(j->mp, pcm, n, *buf);
    if (!rc) rc = loom_mmproj_audio_ctc(j->mp, *buf, rows, lp);
    if (rc < 0) { cli_error("%s: %s", path, loom_mmproj_error(j->mp)); return rc; }
    if ((rc = loom_prompt_add_special(j->p, "<|audio|>")) == 0 && (rc = loom_prompt_add_rows(j->p, *buf, rows)) == 0)
        rc = loom_prompt_add_special(j->p, "<|/audio|>");
    if (rc < 0) { cli_error("%s: %s", path, loom_prompt_error(j->p)); return rc; }
    j->ctc = lp;
    j->ctc_frames = rows;
    j->ctc_weight = (float)o->ctc;
    return 0;
}

static int transcribe_one(job *j, const job_opts *o, const char *path, text_out *out)
{
    const char *fmt = o->format ? o->format : "txt";
    char err[512];
    float *pcm = NULL, *buf = NULL;
    size_t n = 0;
    int rc = loom_audio_load(path, NULL, &pcm, &n, err, sizeof err);
    if (rc < 0) cli_error("%s", err);
    if (!rc && !loom_mmproj_has_audio(j->mp)) {
        cli_error("%s has no audio encoder", o->mmproj ? o->mmproj : "the media file");
        rc = LOOM_ERR_UNSUPPORTED;
    }
    const int64_t win = rc ? 0 : loom_mmproj_audio_max_samples(j->mp);
    if (!strcmp(fmt, "vtt") && !rc) printf("WEBVTT\n\n");
    if (!strcmp(fmt, "json") && !rc) {
        printf("{\"file\": ");
        cli_json_str(stdout, path);
        printf(", \"duration\": %.3f, \"segments\": [", (double)n / 16000.0);
    }
    if (!strcmp(fmt, "txt") && !rc && o->n_inputs > 1) printf("%s\t", path);
    loom_audio_span *spans = NULL;      /* one sentence per piece: cut in the pauses */
    size_t n_spans = 0;
    if (!rc) {
        rc = loom_audio_split(pcm, n, 16000, win, &spans, &n_spans, err, sizeof err);
        if (rc < 0) cli_error("%s: %s", path, err);
    }
    int seg = 0;
    for (size_t k = 0; !rc && k < n_spans; k++) {
        const int64_t at = spans[k].start, len = spans[k].end - spans[k].start;
        loom_audio_normalize(pcm + at, (size_t)len, LOOM_SPEECH_PEAK);   /* the training clips' level */
        loom_generate_stats st = {0};
        rc = begin_turn(j->p);
        if (!rc) rc = add_audio(j, o, path, pcm + at, len, &buf);
        if (!rc) rc = end_turn(j->p, "Transcribe the audio.");
        if (!rc) rc = answer(j, o, out, &st);
        if (rc) break;
        const double t0 = (double)at / 16000.0, t1 = (double)(at + len) / 16000.0;
        const char *text = out->buf ? out->buf : "";
        if (!strcmp(fmt, "txt")) {
            printf("%s%s", seg ? " " : "", text);
        } else if (!strcmp(fmt, "json")) {
            printf("%s{\"start\": %.3f, \"end\": %.3f, \"text\": ", seg ? ", " : "", t0, t1);
            cli_json_str(stdout, text);
            putchar('}');
        } else {
            const char sep = !strcmp(fmt, "srt") ? ',' : '.';
            if (sep == ',') printf("%d\n", seg + 1);
            print_time(t0, sep);
            printf(" --> ");
            print_time(t1, sep);
            printf("\n%s\n\n", text);
        }
        fflush(stdout);
        seg++;
    }
    if (!strcmp(fmt, "json") && (seg || !rc)) printf("]}\n");
    else if (!strcmp(fmt, "txt") && (seg || (!rc && o->n_inputs > 1))) putchar('\n');
    loom_audio_spans_free(&spans);
    loom_audio_pcm_free(&pcm);
    free(buf);
    j->ctc = NULL;
    return rc;
}

int cmd_transcribe(int argc, char **argv) { return run_inputs("transcribe", argc, argv, transcribe_one); }
