/* loom chat: a conversation with a unified model. Messages may carry images, audio and
 * video; answers are text, and when the model opens an image, audio or video block the
 * library writes it (constrained to the medium's codes, with guidance) and chat renders it
 * to a PNG / WAV / MP4.
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
           "When the model answers with a picture, a sound or a video (\"Draw: a red circle\",\n"
           "\"Say: hello\"), it is written to OUT_DIR/chat-N.png, .wav or .mp4 and its path is printed.\n\n"
           "  -m, --model PATH       decoder GGUF (default $LOOM_MODEL, else models/loom-tiny.gguf)\n"
           "      --mmproj PATH      media encoders (default <stem>-mmproj.gguf)\n"
           "  -p, --prompt TEXT      send one message and exit\n"
           "      --image/--audio/--video PATH   attach media to that message\n"
           "  -o, --out-dir DIR      where generated media go (default .)\n"
           "  -n, --n-predict N      most tokens per answer (default 512)\n"
           "      --seed N           seed for generated media (guidance 3, temperature 1;\n"
           "                         speech: unguided, temperature 0.6)\n"
           "  -t, --threads N        threads\n"
           "      --bf16             prefill and encoders in bfloat16 on AMX CPUs (faster;\n"
           "                         values differ from float32 from the 3rd digit)\n");
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
    int               in_media;     /* inside a block the model opened: its tokens are not text */
    int               n_turns;
    long long         n_predict;
    uint64_t          seed;
} chat;

/* Media markers stand on lines of their own; this says whether stdout is at a line's start. */
static int g_line_start = 1;

static void end_line(void)
{
    if (!g_line_start) putchar('\n');
    g_line_start = 1;
}

static int stream(int32_t token, const char *piece, size_t len, void *user)
{
    (void)token;
    if (((chat *)user)->in_media) return 0;   /* a spelt clip's words are not the reply's text */
    fwrite(piece, 1, len, stdout);   /* media codes and control tokens have no text */
    if (len) g_line_start = piece[len - 1] == '\n';
    fflush(stdout);
    return 0;
}

static int render_image(chat *c, const int32_t *codes, const char *path, char *err, size_t err_size)
{
    loom_image img = {0};
    const char *meta[] = {"Software", "loom chat", NULL};
    int rc = loom_vq_decode_image(c->vq, codes, &img);
    if (!rc) rc = loom_image_save_png(&img, path, meta, err, err_size);
    else snprintf(err, err_size, "%s", loom_vq_error(c->vq));
    loom_image_free(&img);
    if (!rc) printf("[image: %s]\n", path);
    return rc;
}

static int render_audio(chat *c, const int32_t *codes, int64_t n, const char *path, char *err, size_t err_size)
{
    const int64_t ns = n * loom_audio_codec_samples_per_code(c->ac);
    float *pcm = malloc((size_t)(ns > 0 ? ns : 1) * sizeof *pcm);
    int rc = pcm && n > 0 ? loom_audio_codec_decode(c->ac, codes, n, pcm) : LOOM_ERR_NO_MEMORY;
    if (rc < 0) snprintf(err, err_size, "cannot render the audio (%s)", loom_status_str(rc));
    else rc = loom_audio_save_wav(path, pcm, (size_t)ns, 1, loom_audio_codec_sample_rate(c->ac), LOOM_WAV_PCM16, err, err_size);
    free(pcm);
    if (!rc) printf("[audio: %s, %.1f s]\n", path, (double)ns / loom_audio_codec_sample_rate(c->ac));
    return rc;
}

/* Frames of grid² codes → the codec's images, 4 frames per second, as `loom animate` writes. */
static int render_video(chat *c, const int32_t *codes, int64_t n, const char *path, char *err, size_t err_size)
{
    const int64_t g2 = (int64_t)c->v.image_grid * c->v.image_grid, S = loom_vq_image_size(c->vq);
    const int n_frames = (int)(n / g2);
    uint8_t *rgb = malloc((size_t)(n_frames > 0 ? n_frames : 1) * S * S * 3);
    int rc = rgb ? 0 : LOOM_ERR_NO_MEMORY;
    for (int f = 0; !rc && f < n_frames; f++)
        if ((rc = loom_vq_decode(c->vq, codes + f * g2, rgb + (size_t)f * S * S * 3)) < 0)
            snprintf(err, err_size, "%s", loom_vq_error(c->vq));
    loom_mp4_params mp = loom_mp4_default_params();
    mp.fps = 4;
    mp.n_threads = 1;   /* as `loom animate`: the same file at any thread count */
    if (!rc) rc = loom_video_write_mp4(path, rgb, n_frames, (int)S, (int)S, NULL, 0, mp, err, err_size);
    else if (rc == LOOM_ERR_NO_MEMORY) snprintf(err, err_size, "out of memory");
    free(rgb);
    if (!rc) printf("[video: %s, %d frames]\n", path, n_frames);
    return rc;
}

/* A media block of the answer (loom_session_generate wrote it, constrained and guided)
 * ended: render it with the codec beside the model and say where it went. */
static void on_media(int event, int kind, const int32_t *codes, int64_t n, void *user)
{
    chat *c = user;
    c->in_media = event == LOOM_MEDIA_BEGIN;
    if (event != LOOM_MEDIA_END) return;
    static const char *const ext[3] = {"png", "wav", "mp4"}, *const name[3] = {"image", "audio", "video"};
    char err[512] = "", path[4096];
    snprintf(path, sizeof path, "%s/chat-%d.%s", c->out_dir, ++c->n_media, ext[kind]);
    const int has_codec = kind == LOOM_MEDIA_AUDIO ? c->ac != NULL : c->vq != NULL;
    end_line();
    int rc = !has_codec ? 0 : kind == LOOM_MEDIA_IMAGE ? render_image(c, codes, path, err, sizeof err)
           : kind == LOOM_MEDIA_AUDIO ? render_audio(c, codes, n, path, err, sizeof err)
           : render_video(c, codes, n, path, err, sizeof err);
    if (!has_codec) printf("[%lld %s codes; no codec to render them]\n", (long long)n, name[kind]);
    if (rc < 0) cli_error("chat: %s", err);
    fflush(stdout);
}

/* The words an audio block spells on a model with loom.audio.words: a message in the
 * grammar of its text-to-speech turns, "Say: TEXT", is TEXT as `loom speak` reads it
 * (loom_speech_pieces, joined). NULL for any other message or model: codes only, as in its
 * training's interleaved turns ("Say: TEXT Then write it down." wrote a clip of codes only,
 * then the words; after a spelt clip the model ends its reply). Owned by the caller. */
static char *spoken_words(const chat *c, const char *msg)
{
    static const char say[] = "Say: ", then[] = " Then write it down.";
    const size_t n = strlen(msg);
    if (!c->v.audio_words || strncmp(msg, say, sizeof say - 1) ||
        (n >= sizeof then - 1 && !strcmp(msg + n - (sizeof then - 1), then)))
        return NULL;
    char **pieces = NULL, err[256], *words = NULL;
    size_t n_pieces = 0, len = 0;
    if (loom_speech_pieces(msg + sizeof say - 1, 1 << 20, &pieces, &n_pieces, err, sizeof err) == 0) {
        for (size_t i = 0; i < n_pieces; i++) len += strlen(pieces[i]) + 1;
        if ((words = calloc(len + 1, 1)))
            for (size_t i = 0; i < n_pieces; i++) strcat(strcat(words, i ? " " : ""), pieces[i]);
    }
    loom_speech_pieces_free(&pieces, n_pieces);
    return words;
}

/* Answer the message msg, already in c->p: text streams out; media blocks the model opens are
 * written by loom_session_generate (with the medium's default settings; speech spelt with the
 * message's words where spoken_words finds them) and rendered. */
static int answer(chat *c, const char *msg)
{
    int rc = loom_prompt_add_special(c->p, "<|end|>");
    if (!rc) rc = loom_prompt_add_special(c->p, "<|assistant|>");
    if (!rc) rc = loom_session_append_prompt(c->s, c->p);
    if (rc < 0) { cli_error("chat: %s", loom_session_error(c->s)); return rc; }
    loom_generate_params gp = loom_generate_default_params();
    gp.n_predict = (int32_t)c->n_predict;
    gp.on_token = stream;
    gp.on_media = on_media;
    gp.abort_flag = &g_interrupted;
    gp.user_data = c;
    for (int k = 0; k < LOOM_MEDIA_KIND_COUNT; k++)   /* the k-th block of the chat: seed + k */
        gp.media[k].seed = c->seed + (uint64_t)c->n_media;
    gp.media_uncond = c->u;
    char *words = spoken_words(c, msg);
    gp.media[LOOM_MEDIA_AUDIO].words = words;
    g_line_start = 0;   /* the answer ends with a newline, even an empty one */
    const int64_t n = loom_session_generate(c->s, NULL, 0, gp, NULL);
    free(words);
    end_line();
    if (n < 0) {
        if (n != LOOM_ERR_ABORTED) cli_error("chat: %s", loom_session_error(c->s));
        return (int)n;
    }
    /* the turn stays in the cache, closed */
    const int32_t end = loom_token_eot(c->m) >= 0 ? loom_token_eot(c->m) : loom_token_eos(c->m);
    if (end >= 0 && (rc = loom_session_decode(c->s, end)) < 0) cli_error("chat: %s", loom_session_error(c->s));
    return rc;
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
        loom_audio_span *sp = NULL;       /* the clip without digital silence at its ends, at the training level */
        size_t k = 0;
        rc = loom_audio_load(path, NULL, &pcm, &n, err, sizeof err);
        if (!rc) rc = loom_audio_split(pcm, n, 16000, (int64_t)n, &sp, &k, err, sizeof err);
        if (!rc && k == 0) rc = LOOM_ERR_FORMAT, snprintf(err, sizeof err, "%s: nothing but silence", path);
        if (!rc) loom_audio_normalize(pcm + sp[0].start, (size_t)(sp[0].end - sp[0].start), LOOM_SPEECH_PEAK);
        if (!rc && (rc = loom_prompt_add_audio(c->p, c->mp, pcm + sp[0].start, sp[0].end - sp[0].start)) < 0)
            snprintf(err, sizeof err, "%s", loom_prompt_error(c->p));
        loom_audio_spans_free(&sp);
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

/* Context: the usual text room (min(4096, training context)) plus the longest media block
 * the model can write (a loom-tiny video block alone is 1030 tokens). */
static int32_t chat_ctx(const chat *c)
{
    const int32_t train = loom_model_n_ctx_train(c->m);
    int64_t longest = 0;
    for (int k = LOOM_MEDIA_IMAGE; k <= LOOM_MEDIA_VIDEO; k++) {
        const int64_t n = loom_media_max_codes(c->m, loom_media_default_params(k));
        const int64_t len = n + 2 + (k == LOOM_MEDIA_VIDEO ? c->v.video_gen_frames : 0);
        if (n > 0 && len > longest) longest = len;
    }
    return (int32_t)((train < 4096 ? train : 4096) + longest);
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
        if (cli_is(a, "--mmproj", NULL) && v) { mmproj = v; i++; }
        else if (cli_is(a, "-p", "--prompt") && v) { prompt = v; i++; }
        else if (cli_is(a, "-o", "--out-dir") && v) { c.out_dir = v; i++; }
        else if (cli_is(a, "-n", "--n-predict") && v) {
            if (cli_parse_int(a, v, 1, 1 << 20, &c.n_predict) < 0) return EXIT_USAGE;
            i++;
        } else if ((cli_is(a, "--image", "--audio") || cli_is(a, "--video", NULL)) && v && n_media < 16) {
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
    pp.matmul = o.matmul;
    if (loom_mmproj_load(mmproj ? mmproj : beside(model, "-mmproj.gguf", path, sizeof path), pp, &c.mp, err, sizeof err) < 0) {
        if (mmproj || n_media) { cli_error("%s", err); chat_close(&c); return EXIT_FAILED; }
        c.mp = NULL;   /* text-only chat */
    }
    loom_codec_params cp = loom_codec_default_params();
    cp.n_threads = o.threads;
    if (c.v.image_count && c.v.image_grid) loom_vq_open(beside(model, "-vq.gguf", path, sizeof path), cp, &c.vq, NULL, 0);
    if (c.vq && loom_vq_grid(c.vq) != c.v.image_grid) loom_vq_free(&c.vq);   /* not this model's codec */
    if (c.v.audio_count) loom_audio_codec_open(beside(model, "-audiocodec.gguf", path, sizeof path), cp, &c.ac, NULL, 0);
    loom_session_params sp = loom_session_default_params();
    sp.n_threads = o.threads;
    sp.matmul = o.matmul;
    sp.n_ctx = chat_ctx(&c);
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
        if (!rc) rc = answer(&c, prompt);
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
            if ((rc = loom_prompt_add_text(c.p, line)) < 0 || (rc = answer(&c, line)) < 0) break;
            started = 0;
        }
    }
    signal(SIGINT, SIG_DFL);
    chat_close(&c);
    return rc == LOOM_ERR_ABORTED || g_interrupted ? EXIT_ABORTED : rc < 0 ? EXIT_FAILED : EXIT_OK;
}
