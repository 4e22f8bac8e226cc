/* loom chat: a conversation with a unified model. Messages may carry images, audio and
 * video; answers are text, and when the model opens an image or audio block loom generates
 * it (constrained to the medium's codes, with guidance) and writes a PNG / WAV.
 * Uses only include/loom.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "loom.h"

void help_chat(void);
int  cmd_chat(int argc, char **argv);

void help_chat(void)
{
    printf("usage: loom chat [options]            interactive (lines from stdin)\n"
           "       loom chat [options] -p TEXT     one message, e.g. with --image\n\n"
           "A conversation: each line you type is a message; the answer streams back. Lines\n"
           "starting with / are commands:\n"
           "  /image PATH   attach a picture to your next message (also /audio, /video)\n"
           "  /reset        start a new conversation\n"
           "  /quit         leave (so does end of input)\n"
           "When the model answers with a picture or a sound (\"Draw: a red circle\", \"Say: hello\"),\n"
           "it is written to OUT_DIR/chat-N.png or .wav and its path is printed.\n\n"
           "  -m, --model PATH       decoder GGUF (default $LOOM_MODEL, else models/loom-tiny.gguf)\n"
           "      --mmproj PATH      media encoders (default <stem>-mmproj.gguf)\n"
           "  -p, --prompt TEXT      send one message and exit\n"
           "      --image/--audio/--video PATH   attach media to that message\n"
           "  -o, --out-dir DIR      where generated media go (default .)\n"
           "  -n, --n-predict N      most tokens per answer (default 512)\n"
           "      --seed N           seed for generated media (temperature 1, guidance 3)\n"
           "  -t, --threads N        threads\n");
}

static volatile int g_interrupted;
static void on_sigint(int sig) { (void)sig; g_interrupted = 1; }

typedef struct chat {
    loom_model       *m;
    loom_mmproj      *mp;           /* may be NULL: text only                               */
    loom_session     *s, *u;        /* conversation; unconditional sequence for guidance    */
    loom_prompt      *p;
    loom_vq          *vq;           /* may be NULL                                          */
    loom_audio_codec *ac;           /* may be NULL                                          */
    loom_media_vocab  v;
    const char       *out_dir;
    int               n_media;
    int               n_turns;
    long long         n_predict;
    uint64_t          seed;
} chat;

static int stream(int32_t token, const char *piece, size_t len, void *user)
{
    (void)token; (void)user;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;
}

/* The model opened a media block (`kind`): generate it, render it, say where it went. */
static int media_block(chat *c, int kind)
{
    char err[512], path[4096];
    int32_t unc[16];
    const int64_t nu = loom_media_prompt(c->m, kind, "", 1, unc, 16);
    loom_media_params mp = loom_media_default_params(kind);
    mp.seed = c->seed + (uint64_t)c->n_media;
    mp.abort_flag = &g_interrupted;
    const int64_t max = loom_media_max_codes(c->m, mp);
    int32_t *codes = max > 0 ? malloc((size_t)max * sizeof *codes) : NULL;
    if (!codes) { cli_error("chat: the model cannot write this medium"); return -1; }
    loom_session_truncate(c->u, 0);
    int64_t n = loom_generate_media(c->m, c->s, NULL, 0, c->u, unc, nu, mp, codes, max, err, sizeof err);
    int rc = n < 0 ? (int)n : 0;
    if (rc < 0) cli_error("chat: %s", err);
    c->n_media++;
    if (!rc && kind == LOOM_MEDIA_IMAGE && c->vq) {
        loom_image img = {0};
        snprintf(path, sizeof path, "%s/chat-%d.png", c->out_dir, c->n_media);
        const char *meta[] = {"Software", "loom chat", NULL};
        rc = loom_vq_decode_image(c->vq, codes, &img);
        if (!rc) rc = loom_image_save_png(&img, path, meta, err, sizeof err);
        loom_image_free(&img);
        if (rc < 0) cli_error("chat: %s", err); else printf("[image: %s]", path);
    } else if (!rc && kind == LOOM_MEDIA_AUDIO && c->ac) {
        const int64_t ns = n * loom_audio_codec_samples_per_code(c->ac);
        float *pcm = malloc((size_t)(ns > 0 ? ns : 1) * sizeof *pcm);
        snprintf(path, sizeof path, "%s/chat-%d.wav", c->out_dir, c->n_media);
        rc = pcm && n > 0 ? loom_audio_codec_decode(c->ac, codes, n, pcm) : LOOM_ERR_INVALID_ARG;
        if (!rc) rc = loom_audio_save_wav(path, pcm, (size_t)ns, 1, loom_audio_codec_sample_rate(c->ac),
                                          LOOM_WAV_PCM16, err, sizeof err);
        free(pcm);
        if (rc < 0) cli_error("chat: could not render the audio (%s)", loom_status_str(rc));
        else printf("[audio: %s, %.1f s]", path, (double)ns / loom_audio_codec_sample_rate(c->ac));
    } else if (!rc) {
        printf("[%lld %s codes; no codec to render them]", (long long)n, kind == LOOM_MEDIA_IMAGE ? "image" : "audio");
    }
    free(codes);
    return rc;
}

/* Answer the message in c->p: text streams out, media blocks are generated and saved. */
static int answer(chat *c)
{
    int rc = loom_prompt_add_special(c->p, "<|end|>");
    if (!rc) rc = loom_prompt_add_special(c->p, "<|assistant|>");
    if (!rc) rc = loom_session_append_prompt(c->s, c->p);
    if (rc < 0) { cli_error("chat: %s", loom_session_error(c->s)); return rc; }
    const int32_t img_open = loom_token_find(c->m, "<|image|>"), aud_open = loom_token_find(c->m, "<|audio|>");
    const int32_t end = loom_token_eot(c->m), eos = loom_token_eos(c->m);
    char piece[256];
    for (long long i = 0; i < c->n_predict && !g_interrupted; i++) {
        const int32_t t = loom_session_sample(c->s);
        if (t < 0) { cli_error("chat: %s", loom_session_error(c->s)); return t; }
        if (t == end || t == eos) {
            putchar('\n');
            return loom_session_decode(c->s, end >= 0 ? end : t);   /* the turn stays in the cache */
        }
        if ((t == img_open && c->v.image_count) || (t == aud_open && c->v.audio_count)) {
            if ((rc = media_block(c, t == img_open ? LOOM_MEDIA_IMAGE : LOOM_MEDIA_AUDIO)) < 0) return rc;
            continue;   /* the block is in the cache; the model goes on after it */
        }
        const int k = loom_token_to_piece(c->m, t, 0, piece, sizeof piece);
        stream(t, piece, k > 0 ? (size_t)(k < (int)sizeof piece ? k : (int)sizeof piece) : 0, NULL);
        if ((rc = loom_session_decode(c->s, t)) < 0) { cli_error("chat: %s", loom_session_error(c->s)); return rc; }
    }
    putchar('\n');
    return g_interrupted ? LOOM_ERR_ABORTED : 0;
}

/* Start a user message (a new conversation begins with <|bos|>). */
static int begin_message(chat *c)
{
    loom_prompt_clear(c->p);
    int rc = loom_session_n_past(c->s) == 0 ? loom_prompt_add_special(c->p, "<|bos|>") : 0;
    return rc ? rc : loom_prompt_add_special(c->p, "<|user|>");
}

static int attach(chat *c, const char *what, const char *path)
{
    char err[512];
    int rc;
    if (!c->mp) { cli_error("chat: no media encoders loaded (--mmproj)"); return -1; }
    if (!strcmp(what, "image")) {
        loom_image img = {0};
        rc = loom_image_load(path, loom_image_default_params(), &img, err, sizeof err);
        if (!rc && (rc = loom_prompt_add_image(c->p, c->mp, &img)) < 0) snprintf(err, sizeof err, "%s", loom_prompt_error(c->p));
        loom_image_free(&img);
    } else if (!strcmp(what, "audio")) {
        float *pcm = NULL;
        size_t n = 0;
        rc = loom_audio_load(path, NULL, &pcm, &n, err, sizeof err);
        if (!rc && (rc = loom_prompt_add_audio(c->p, c->mp, pcm, (int64_t)n)) < 0) snprintf(err, sizeof err, "%s", loom_prompt_error(c->p));
        loom_audio_pcm_free(&pcm);
    } else {
        loom_video *v = NULL;
        loom_video_params vp = loom_video_default_params();
        vp.n_frames = loom_model_video_frames(c->m);
        rc = loom_video_sample(path, vp, &v, err, sizeof err);
        if (!rc && (rc = loom_prompt_add_video(c->p, c->mp, v)) < 0) snprintf(err, sizeof err, "%s", loom_prompt_error(c->p));
        loom_video_free(&v);
    }
    if (rc < 0) cli_error("chat: %s", err);
    return rc;
}

static void chat_close(chat *c)
{
    loom_prompt_free(&c->p);
    loom_session_free(&c->s);
    loom_session_free(&c->u);
    loom_vq_free(&c->vq);
    loom_audio_codec_free(&c->ac);
    loom_mmproj_free(&c->mp);
    loom_model_free(&c->m);
}

/* "<stem><suffix>" for a model path "<stem>.gguf". */
static const char *beside(const char *model, const char *suffix, char *buf, size_t size)
{
    size_t n = strlen(model);
    if (n > 5 && !strcmp(model + n - 5, ".gguf")) n -= 5;
    snprintf(buf, size, "%.*s%s", (int)n, model, suffix);
    return buf;
}

int cmd_chat(int argc, char **argv)
{
    cli_common o = {0};
    const char *mmproj = NULL, *prompt = NULL, *media[16][2];
    int n_media = 0;
    chat c = {.out_dir = ".", .n_predict = 512};
    for (int i = 1; i < argc; i++) {
        int r = cli_common_option(&o, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--mmproj") && v) { mmproj = v; i++; }
        else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && v) { prompt = v; i++; }
        else if ((!strcmp(a, "-o") || !strcmp(a, "--out-dir")) && v) { c.out_dir = v; i++; }
        else if ((!strcmp(a, "-n") || !strcmp(a, "--n-predict")) && v) {
            if (cli_parse_int(a, v, 1, 1 << 20, &c.n_predict) < 0) return EXIT_USAGE;
            i++;
        } else if ((!strcmp(a, "--image") || !strcmp(a, "--audio") || !strcmp(a, "--video")) && v && n_media < 16) {
            media[n_media][0] = a + 2;
            media[n_media++][1] = v;
            i++;
        } else { cli_error("chat: unknown or incomplete option '%s'", a); return EXIT_USAGE; }
    }
    if (n_media && !prompt) { cli_error("chat: --image/--audio/--video go with -p TEXT (interactively, use /image PATH)"); return EXIT_USAGE; }
    const char *model = o.model ? o.model : cli_default_model();
    char err[512], path[4096];
    loom_model_params mpar = loom_model_default_params();
    mpar.n_threads = o.threads;
    if (loom_model_load(model, mpar, &c.m, err, sizeof err) < 0) { cli_error("%s", err); return EXIT_FAILED; }
    loom_model_media_vocab(c.m, &c.v);
    c.seed = o.seed;
    loom_mmproj_params pp = loom_mmproj_default_params();
    pp.n_threads = o.threads;
    if (loom_mmproj_load(mmproj ? mmproj : beside(model, "-mmproj.gguf", path, sizeof path), pp, &c.mp, err, sizeof err) < 0) {
        if (mmproj || n_media) { cli_error("%s", err); chat_close(&c); return EXIT_FAILED; }
        c.mp = NULL;   /* text-only chat */
    }
    loom_codec_params cp = loom_codec_default_params();
    cp.n_threads = o.threads;
    if (c.v.image_count) loom_vq_open(beside(model, "-vq.gguf", path, sizeof path), cp, &c.vq, NULL, 0);
    if (c.v.audio_count) loom_audio_codec_open(beside(model, "-audiocodec.gguf", path, sizeof path), cp, &c.ac, NULL, 0);
    loom_session_params sp = loom_session_default_params();
    sp.n_threads = o.threads;
    if (loom_session_create(c.m, sp, &c.s, err, sizeof err) < 0 || loom_session_create(c.m, sp, &c.u, err, sizeof err) < 0 ||
        loom_prompt_create(c.m, &c.p) < 0) {
        cli_error("%s", err);
        chat_close(&c);
        return EXIT_FAILED;
    }
    signal(SIGINT, on_sigint);
    int rc = 0;
    if (prompt) {
        rc = begin_message(&c);
        for (int i = 0; !rc && i < n_media; i++) rc = attach(&c, media[i][0], media[i][1]);
        if (!rc) rc = loom_prompt_add_text(c.p, prompt);
        if (!rc) rc = answer(&c);
    } else {
        char line[8192];
        int started = 0;
        if (!o.quiet) fprintf(stderr, "loom chat: %s. Type a message; /image PATH attaches a picture; /quit leaves.\n",
                              loom_model_desc(c.m));
        while (!g_interrupted && fgets(line, sizeof line, stdin)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!started && (rc = begin_message(&c)) < 0) break;
            started = 1;
            if (!strcmp(line, "/quit")) break;
            if (!strcmp(line, "/reset")) { loom_session_truncate(c.s, 0); started = 0; continue; }
            if (!strncmp(line, "/image ", 7) || !strncmp(line, "/audio ", 7) || !strncmp(line, "/video ", 7)) {
                line[6] = 0;
                attach(&c, line + 1, line + 7);   /* a bad file is reported; the chat goes on */
                continue;
            }
            if ((rc = loom_prompt_add_text(c.p, line)) < 0 || (rc = answer(&c)) < 0) break;
            started = 0;
        }
    }
    signal(SIGINT, SIG_DFL);
    chat_close(&c);
    return rc == LOOM_ERR_ABORTED || g_interrupted ? EXIT_ABORTED : rc < 0 ? EXIT_FAILED : EXIT_OK;
}
