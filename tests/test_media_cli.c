/* `loom imagine / speak / animate` end to end on a random-weight unified decoder (loom-tiny's
 * vocabulary with 1024 image + 1024 audio codes) and the bundled loom-tiny codecs: the files
 * are valid PNG / WAV / MP4, the PNG carries its metadata, the same seed gives the same
 * bytes, bad options and mismatched files give clear errors, Ctrl-C leaves nothing behind.
 * The binary comes from $LOOM_BIN. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "include/loom.h"
#include "tests/decoder_test_util.h"
#include "tests/read_file.h"

static const char *bin;
static char dir[320], model[400], cmd[4096], out[16384];

/* Run a loom command line (stdout + stderr into out); returns the exit status. */
static int loom(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int loom(const char *fmt, ...)
{
    char args[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    /* one thread unless the call names its own */
    snprintf(cmd, sizeof cmd, "cd %s && %s %s%s 2>&1", dir, bin, args, strstr(args, " -t ") ? "" : " -t 1");
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    unsigned char *x = read_file(a, &na), *y = read_file(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static const char *text_value(char **text, int n, const char *key)
{
    for (int i = 0; i < n; i++) if (!strcmp(text[2 * i], key)) return text[2 * i + 1];
    return NULL;
}

static int write_model(const char *path, int image_count, int grid)
{
    lm_synth_params p = lm_synth_tiny_params();
    p.vocab_from = "../models/loom-tiny-vocab.gguf";
    p.image_count = image_count; p.audio_count = 1024; p.image_grid = grid; p.video_gen_frames = 4;
    lm_error e = {0};
    int rc = lm_synth_write(&p, path, &e);
    CHECK(rc == 0, "write %s: %s", path, e.msg);
    return rc;
}

static void test_imagine(void)
{
    char png[500], png2[500], err[256];
    snprintf(png, sizeof png, "%s/a.png", dir);
    snprintf(png2, sizeof png2, "%s/b.png", dir);
    CHECK(loom("imagine -m m.gguf -p 'a red circle' -o a.png --seed 7 --cfg 2.5 --temp 0.9 --top-k 50") == 0, "imagine: %s", out);
    CHECK(strstr(out, "wrote a.png") != NULL, "summary line: %s", out);
    loom_image img = {0};
    CHECK(loom_image_load(png, loom_image_default_params(), &img, err, sizeof err) == 0 && img.width == 64 &&
          img.height == 64, "PNG decodes to 64×64: %s", err);
    loom_image_free(&img);
    char **text = NULL;
    int n = 0;
    CHECK(loom_png_read_text(png, &text, &n, err, sizeof err) == 0, "tEXt: %s", err);
    if (text) {
        const char *want[][2] = {{"model", "m.gguf"}, {"prompt", "a red circle"}, {"seed", "7"}, {"cfg", "2.5"},
                                 {"temperature", "0.9"}, {"top-k", "50"}, {"Software", "loom 0.1.0"}};
        for (int i = 0; i < 7; i++) {
            const char *v = text_value(text, n, want[i][0]);
            CHECK(v && !strcmp(v, want[i][1]), "tEXt %s = '%s' (want '%s')", want[i][0], v ? v : "(none)", want[i][1]);
        }
        free(text);
    }
    /* same seed → byte-identical file; another seed → another picture */
    CHECK(loom("imagine -m m.gguf -p 'a red circle' -o b.png --seed 7 --cfg 2.5 --temp 0.9 --top-k 50 -q") == 0 &&
          out[0] == '\0', "imagine -q is silent: %s", out);
    CHECK(same_file(png, png2), "same seed, same PNG bytes");
    CHECK(loom("imagine -m m.gguf -p 'a red circle' -o b.png --seed 8 --cfg 2.5 --temp 0.9 --top-k 50") == 0, "seed 8: %s", out);
    CHECK(!same_file(png, png2), "another seed, another PNG");
    /* positional prompt, no guidance, --json, the codec named explicitly */
    CHECK(loom("imagine -m ../m.gguf 'a blue square' -o c.png --cfg 1 --vq m-vq.gguf --json") == 0 &&
          strstr(out, "\"codes\": 256") && strstr(out, "\"cfg\": 1"), "positional + json: %s", out);
}

static void test_speak_animate(void)
{
    char path[500], err[256];
    CHECK(loom("speak -m m.gguf -p 'hello there' -o a.wav --seconds 2") == 0, "speak: %s", out);
    snprintf(path, sizeof path, "%s/a.wav", dir);
    float *pcm = NULL;
    size_t n = 0;
    CHECK(loom_audio_load(path, NULL, &pcm, &n, err, sizeof err) == 0 && n > 0 && n <= 32000 && n % 640 == 0,
          "WAV: %zu samples (%s)", n, err);
    loom_audio_pcm_free(&pcm);

    CHECK(loom("animate -m m.gguf -p 'a ball bounces' -o a.mp4 --cfg 1") == 0, "animate: %s", out);
    snprintf(path, sizeof path, "%s/a.mp4", dir);
    loom_video_info vi;
    CHECK(loom_video_probe(path, loom_video_default_params(), &vi, err, sizeof err) == 0 && vi.width == 256 &&
          vi.height == 256 && vi.n_frames == 4 && vi.fps > 3.99 && vi.fps < 4.01,
          "MP4 256×256, 4 frames at 4 fps: %dx%d %lld %g (%s)", vi.width, vi.height, (long long)vi.n_frames, vi.fps, err);
    CHECK(loom("animate -m m.gguf -p 'a ball' -o b.mp4 --cfg 1 --frames 2 --size 128 --fps 8") == 0, "animate opts: %s", out);
    snprintf(path, sizeof path, "%s/b.mp4", dir);
    CHECK(loom_video_probe(path, loom_video_default_params(), &vi, err, sizeof err) == 0 && vi.width == 128 &&
          vi.n_frames == 2, "MP4 128×128, 2 frames: %dx%d %lld", vi.width, vi.height, (long long)vi.n_frames);
}

/* loom chat with the bundled loom-tiny: the model answers "Draw:" / "Animate:" with a media
 * block that loom_session_generate writes (constrained, guided) and chat renders; the
 * picture equals `loom imagine`'s with the same seed. The prompts are in the training
 * grammar, so that which block the model opens does not hang on one version's weights. */
static void test_chat_media(const char *tiny)
{
    char a[500], b[500], err[256];
    CHECK(loom("chat -m %s -p 'Draw: a large red circle in the center' --seed 3 -o .", tiny) == 0 && strstr(out, "[image: ./chat-1.png]"),
          "chat draws: %s", out);
    CHECK(loom("imagine -m %s -p 'a large red circle in the center' --seed 3 -q -o i.png", tiny) == 0, "imagine: %s", out);
    snprintf(a, sizeof a, "%s/chat-1.png", dir);
    snprintf(b, sizeof b, "%s/i.png", dir);
    loom_image x = {0}, y = {0};
    CHECK(loom_image_load(a, loom_image_default_params(), &x, err, sizeof err) == 0 &&
          loom_image_load(b, loom_image_default_params(), &y, err, sizeof err) == 0 && x.width == 64 && y.width == 64 &&
          !memcmp(x.rgb, y.rgb, 64 * 64 * 3), "chat's picture equals imagine's (%s)", err);
    loom_image_free(&x);
    loom_image_free(&y);
    /* speech: chat's audio blocks take speak's defaults (unguided, temperature 0.6), and the
     * WAV does not depend on the thread count: chat at one thread, speak at two. (Before the
     * pooled matrix products split by shape alone, the audio codec's last-bit differences
     * between thread counts grew into different samples.) */
    CHECK(loom("chat -m %s -p 'Say: the red circle' --seed 2 -o .", tiny) == 0 && strstr(out, "[audio: ./chat-1.wav"),
          "chat speaks: %s", out);
    /* a model that spells its speech spells "red circle" inside the clip: not reply text */
    const char *clip = strstr(out, "[audio:");
    CHECK(clip && strspn(out, " \n") == (size_t)(clip - out), "nothing printed before the clip: %s", out);
    CHECK(loom("speak -m %s -p 'the red circle' --seed 2 -q -o s.wav -t 2", tiny) == 0, "speak: %s", out);
    snprintf(a, sizeof a, "%s/chat-1.wav", dir);
    snprintf(b, sizeof b, "%s/s.wav", dir);
    CHECK(same_file(a, b), "chat's WAV equals speak's");
    /* speak says the text as its speech was transcribed (loom_speech_pieces): capitals and a
     * full stop change nothing; two sentences are said one by one and their codes joined */
    CHECK(loom("speak -m %s -p 'The Red circle.' --seed 2 -q -o s2.wav -t 2", tiny) == 0, "speak: %s", out);
    snprintf(a, sizeof a, "%s/s2.wav", dir);
    CHECK(same_file(a, b), "'The Red circle.' is said as 'the red circle'");
    long long n1 = -1, n2 = -1, n12 = -1;
    const char *c;
    if (loom("speak -m %s -p 'the red circle' --json -o s.wav", tiny) == 0 && (c = strstr(out, "\"codes\": ")))
        n1 = atoll(c + 9);
    if (loom("speak -m %s -p 'a blue square' --json -o s.wav", tiny) == 0 && (c = strstr(out, "\"codes\": ")))
        n2 = atoll(c + 9);
    CHECK(loom("speak -m %s -p 'The red circle! A blue square?' --json -o s.wav", tiny) == 0 &&
          strstr(out, "\"pieces\": 2") && (c = strstr(out, "\"codes\": ")) && (n12 = atoll(c + 9)) == n1 + n2 && n1 > 0 && n2 > 0,
          "two sentences: %lld codes = %lld + %lld (%s)", n12, n1, n2, out);
    CHECK(loom("speak -m %s -p 'The red circle! A blue square?' --verbatim --json -o s.wav", tiny) == 0 &&
          !strstr(out, "\"pieces\""), "--verbatim: one clip (%s)", out);
    CHECK(loom("speak -m %s -p '?! ...' -o s.wav", tiny) == 2 && strstr(out, "nothing to say"), "no words: %s", out);
    CHECK(loom("chat -m %s -p 'Animate: a small blue square moves from the left to the center, on a gray background' "
               "--seed 1 -o .", tiny) == 0 &&
          strstr(out, "[video: ./chat-1.mp4, 4 frames]"), "chat animates: %s", out);
    snprintf(a, sizeof a, "%s/chat-1.mp4", dir);
    loom_video_info vi;
    CHECK(loom_video_probe(a, loom_video_default_params(), &vi, err, sizeof err) == 0 && vi.width == 64 && vi.n_frames == 4,
          "chat's MP4: %dx%d, %lld frames (%s)", vi.width, vi.height, (long long)vi.n_frames, err);
    /* the same clip from `loom animate` at two threads (chat ran at one): the codes and the
     * MP4 (x264 on one thread in both) do not depend on the thread count */
    CHECK(loom("animate -m %s -p 'a small blue square moves from the left to the center, on a gray background' "
               "--seed 1 -o an.mp4 -t 2 --size 64 --fps 4 -q", tiny) == 0, "animate: %s", out);
    snprintf(b, sizeof b, "%s/an.mp4", dir);
    CHECK(same_file(a, b), "chat's MP4 at one thread equals animate's at two");
}

static void test_errors(void)
{
    CHECK(loom("imagine -m m.gguf -p x") == 2 && strstr(out, "no output file"), "no -o: %s", out);
    CHECK(loom("imagine -m m.gguf -o x.png") == 2 && strstr(out, "no prompt"), "no prompt: %s", out);
    CHECK(loom("imagine -p x -o x.png") == 1 && strstr(out, "loom-tiny.gguf"), "default model (absent here): %s", out);
    CHECK(loom("imagine -m m.gguf -p x -o x.png --cfg abc") == 2 && strstr(out, "--cfg"), "bad cfg: %s", out);
    CHECK(loom("imagine -m m.gguf -p x -o x.png --top-k -3") == 2 && strstr(out, "--top-k"), "bad top-k: %s", out);
    CHECK(loom("imagine -m m.gguf -p x -o x.png --temp") == 2 && strstr(out, "--temp"), "missing value: %s", out);
    CHECK(loom("imagine -m m.gguf -p x -o x.png --bogus 1") == 2 && strstr(out, "--bogus"), "unknown option: %s", out);
    CHECK(loom("imagine -m m.gguf -p x y -o x.png") == 2 && strstr(out, "more than one prompt"), "two prompts: %s", out);
    CHECK(loom("animate -m m.gguf -p x -o x.mp4 --size 255") == 2 && strstr(out, "odd"), "odd size: %s", out);
    CHECK(loom("speak -m m.gguf -p x -o x.wav --seconds 0") == 2 && strstr(out, "--seconds"), "0 s: %s", out);
    CHECK(loom("imagine -m nothere.gguf -p x -o x.png") == 1 && strstr(out, "nothere.gguf"), "missing model: %s", out);
    /* the codec is looked for next to the model, and must match it */
    CHECK(loom("imagine -m ../m.gguf -p x -o x.png") == 1 && strstr(out, "m-vq.gguf") && strstr(out, "--vq"),
          "no sibling VQ: %s", out);
    CHECK(loom("speak -m m.gguf -p x -o x.wav --codec m-vq.gguf") == 1 && strstr(out, "audio codec"), "VQ as audio codec: %s", out);
    CHECK(loom("imagine -m small.gguf -p x -o x.png --vq m-vq.gguf") == 1 && strstr(out, "not one model's files"),
          "codebook mismatch: %s", out);
    CHECK(loom("imagine -m grid8.gguf -p x -o x.png --vq m-vq.gguf") == 1 && strstr(out, "grid"), "grid mismatch: %s", out);
    CHECK(loom("imagine -m plain.gguf -p x -o x.png --vq m-vq.gguf") == 1 && strstr(out, "cannot generate images"),
          "plain decoder: %s", out);
    CHECK(loom("imagine --help") == 0 && strstr(out, "--cfg") && strstr(out, "--vq"), "help: %s", out);
    char path[500];
    snprintf(path, sizeof path, "%s/x.png", dir);
    CHECK(access(path, F_OK) != 0, "failed runs wrote nothing");
}

/* Entries of dir whose name starts with prefix. */
static int count_prefixed(const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += !strncmp(e->d_name, prefix, strlen(prefix));
    if (d) closedir(d);
    return n;
}

static void test_sigint(void)
{
    char path[500];
    snprintf(path, sizeof path, "%s/int.mp4", dir);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0) _exit(127);
        if (!freopen("/dev/null", "w", stderr)) _exit(127);
        execl(bin, bin, "animate", "-m", "m.gguf", "-p", "a long one", "-o", "int.mp4", "--frames", "15", "-t", "1",
              (char *)NULL);
        _exit(127);
    }
    struct timespec t = {.tv_sec = 0, .tv_nsec = 400 * 1000 * 1000};
    nanosleep(&t, NULL);
    kill(pid, SIGINT);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 130, "Ctrl-C exits 130 (status %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    CHECK(access(path, F_OK) != 0 && count_prefixed("int") == 0, "no output or temporary file after Ctrl-C");
}

/* The generated ids of a `loom generate --json` run (out), copied into ids. */
static int generated_ids(char *ids, size_t n)
{
    const char *a = strstr(out, "\"tokens\": ["), *b = a ? strchr(a, ']') : NULL;
    if (!b || (size_t)(b - a) >= n) return -1;
    memcpy(ids, a, (size_t)(b - a));
    ids[b - a] = '\0';
    return 0;
}

/* loom generate --cfg: a prompt that ends inside an image block (<|bos|> <|user|>
 * <|assistant|> <|image|>) is finished with its 256 codes and the close token; guided codes
 * repeat with the seed and differ from unguided ones. */
/* --best-of N on the bundled loom-tiny: N candidates with seeds seed … seed+N-1, each scored
 * by the model reading it back; the kept one is the best scored, it equals the single run
 * with its seed, and its score is what loom_session_score gives for the written picture. */
static void test_best_of(const char *tiny)
{
    char a[500], b[500], err[256];
    CHECK(loom("imagine -m %s -p 'a large red circle in the center' --seed 5 --best-of 4 -o best.png", tiny) == 0,
          "imagine --best-of 4: %s", out);
    double lp[4], top = -1e30;
    unsigned long long seed[4], kept = 0, best = 0;
    int n = 0;
    for (const char *q = out; n < 4 && (q = strstr(q, "candidate ")); q++)
        if (sscanf(q, "candidate %*d/4 (seed %llu): log p(prompt) = %lf", &seed[n], &lp[n]) == 2) n++;
    CHECK(n == 4, "four candidate lines: %s", out);
    for (int k = 0; k < n; k++) {
        CHECK(seed[k] == 5 + (unsigned)k, "candidate %d has seed %llu", k, seed[k]);
        if (lp[k] > top) { top = lp[k]; best = seed[k]; }
    }
    const char *w = strstr(out, "wrote best.png");
    CHECK(w && sscanf(w, "wrote best.png (64×64 PNG; seed %llu, the best of 4", &kept) == 1 && kept == best,
          "kept seed %llu, the best scored is %llu: %s", kept, best, out);
    snprintf(a, sizeof a, "%s/best.png", dir);
    char **text = NULL;
    int nt = 0;
    CHECK(loom_png_read_text(a, &text, &nt, err, sizeof err) == 0, "tEXt: %s", err);
    char want[32];
    snprintf(want, sizeof want, "%llu", kept);
    const char *ts = text ? text_value(text, nt, "seed") : NULL, *tb = text ? text_value(text, nt, "best-of") : NULL;
    CHECK(ts && !strcmp(ts, want) && tb && !strcmp(tb, "4"), "tEXt seed %s best-of %s", ts ? ts : "-", tb ? tb : "-");
    free(text);
    CHECK(loom("imagine -m %s -p 'a large red circle in the center' --seed %llu -q -o one.png", tiny, kept) == 0,
          "imagine --seed %llu: %s", kept, out);
    snprintf(b, sizeof b, "%s/one.png", dir);
    loom_image x = {0}, y = {0};
    CHECK(loom_image_load(a, loom_image_default_params(), &x, err, sizeof err) == 0 &&
          loom_image_load(b, loom_image_default_params(), &y, err, sizeof err) == 0 && x.width == 64 && y.width == 64 &&
          !memcmp(x.rgb, y.rgb, 64 * 64 * 3), "the kept candidate equals --seed %llu alone (%s)", kept, err);
    /* the written picture, read back through the library, scores what the command printed */
    loom_model *m = NULL;
    loom_mmproj *mp = NULL;
    loom_session *s = NULL;
    loom_prompt *p = NULL;
    char mmproj[600];
    snprintf(mmproj, sizeof mmproj, "%.*s-mmproj.gguf", (int)(strlen(tiny) - 5), tiny);
    int rc = loom_model_load(tiny, loom_model_default_params(), &m, err, sizeof err) |
             loom_mmproj_load(mmproj, loom_mmproj_default_params(), &mp, err, sizeof err);
    if (!rc) rc = loom_session_create(m, loom_session_default_params(), &s, err, sizeof err) | loom_prompt_create(m, &p);
    if (!rc) {
        rc = loom_prompt_add_special(p, "<|bos|>") | loom_prompt_add_special(p, "<|user|>") |
             loom_prompt_add_image(p, mp, &x) | loom_prompt_add_text(p, "Describe the image.") |
             loom_prompt_add_special(p, "<|end|>") | loom_prompt_add_special(p, "<|assistant|>");
        int32_t ids[64];
        const int64_t k = loom_tokenize(m, "a large red circle in the center", 32, 0, 0, ids, 63);
        double got = 0;
        if (!rc && k > 0 && k < 63) {
            ids[k] = loom_token_find(m, "<|end|>");
            rc = loom_session_append_prompt(s, p) | loom_session_score(s, ids, k + 1, &got);
        }
        CHECK(!rc && k > 0 && fabs(got - top) < 2e-3, "library score %.4f, the command's %.4f", got, top);
    }
    CHECK(!rc, "loading loom-tiny: %s", err);
    loom_image_free(&x);
    loom_image_free(&y);
    loom_prompt_free(&p);
    loom_session_free(&s);
    loom_mmproj_free(&mp);
    loom_model_free(&m);
    /* speak and animate rank their candidates the same way */
    CHECK(loom("speak -m %s -p 'the red circle' --best-of 2 --json -o s2.wav", tiny) == 0 &&
          strstr(out, "\"best_of\": 2") && strstr(out, "\"logprob\": -"), "speak --best-of 2: %s", out);
    CHECK(loom("animate -m %s -p 'a small blue square moves from the left to the center, on a gray background' "
               "--best-of 2 --size 64 -o a2.mp4", tiny) == 0 && strstr(out, "candidate 2/2 (seed 1)") &&
          strstr(out, "the best of 2"), "animate --best-of 2: %s", out);
    /* refusals: the count's range, and media encoders that are not there (nothing written) */
    CHECK(loom("imagine -m %s -p x -o x.png --best-of 0", tiny) == 2 && strstr(out, "--best-of"), "best-of 0: %s", out);
    CHECK(loom("imagine -m %s -p x -o x.png --best-of 65", tiny) == 2 && strstr(out, "--best-of"), "best-of 65: %s", out);
    CHECK(loom("imagine -m %s -p x -o x.png --best-of 2 --mmproj nothere.gguf", tiny) == 1 &&
          strstr(out, "nothere.gguf") && strstr(out, "--mmproj"), "missing --mmproj: %s", out);
    CHECK(loom("imagine -m m.gguf -p x -o x.png --best-of 2") == 1 && strstr(out, "m-mmproj.gguf"),
          "no sibling mmproj: %s", out);
    snprintf(a, sizeof a, "%s/x.png", dir);
    CHECK(access(a, F_OK) != 0, "refused runs wrote nothing");
}

static void test_generate_cfg(const char *tiny)
{
    char err[256], ids[64], plain[4096], guided[4096];
    loom_model *m = NULL;
    if (loom_model_load(tiny, loom_model_default_params(), &m, err, sizeof err) < 0) {
        CHECK(0, "load %s: %s", tiny, err);
        return;
    }
    snprintf(ids, sizeof ids, "%d,%d,%d,%d", loom_token_find(m, "<|bos|>"), loom_token_find(m, "<|user|>"),
             loom_token_find(m, "<|assistant|>"), loom_token_find(m, "<|image|>"));
    loom_model_free(&m);
    CHECK(loom("generate -m %s --tokens %s -n 1 --json --seed 1 -q", tiny, ids) == 0 &&
          strstr(out, "\"n_generated\": 257") && generated_ids(plain, sizeof plain) == 0, "unguided block: %s", out);
    CHECK(loom("generate -m %s --tokens %s -n 1 --json --seed 1 -q --cfg 3", tiny, ids) == 0 &&
          strstr(out, "\"n_generated\": 257") && generated_ids(guided, sizeof guided) == 0, "guided block: %s", out);
    CHECK(strcmp(plain, guided) != 0, "--cfg 3 gave the unguided codes");
    CHECK(loom("generate -m %s --tokens %s -n 1 --json --seed 1 -q --cfg 3", tiny, ids) == 0 &&
          generated_ids(plain, sizeof plain) == 0 && !strcmp(plain, guided), "guided codes differ between runs");
    CHECK(loom("generate -m %s --tokens %s --cfg x", tiny, ids) == 2 && strstr(out, "--cfg"), "bad --cfg: %s", out);
}

int main(void)
{
    if (!(bin = getenv("LOOM_BIN"))) { printf("LOOM_BIN not set\n0 passed, 1 failed\n"); return 1; }
    char tmpl[256], path[400];
    (void)tmp_model_path;
    snprintf(tmpl, sizeof tmpl, "%s/loom-media-cli-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpl)) { printf("mkdtemp failed\n0 passed, 1 failed\n"); return 1; }
    /* tmpl/m.gguf alone; tmpl/sub/ (the commands' folder) holds m.gguf with its codecs */
    snprintf(dir, sizeof dir, "%s/sub", tmpl);
    mkdir(dir, 0700);
    snprintf(model, sizeof model, "%s/m.gguf", tmpl);
    char cwd[512];
    if (!getcwd(cwd, sizeof cwd)) return 1;
    const struct { const char *name, *target; } links[] = {
        {"sub/m-vq.gguf", "models/loom-tiny-vq.gguf"}, {"sub/m-audiocodec.gguf", "models/loom-tiny-audiocodec.gguf"}};
    for (int i = 0; i < 2; i++) {
        char target[700];
        snprintf(path, sizeof path, "%s/%s", tmpl, links[i].name);
        snprintf(target, sizeof target, "%s/../%s", cwd, links[i].target);
        CHECK(symlink(target, path) == 0, "link %s", path);
    }
    if (write_model(model, 1024, 16) == 0) {
        snprintf(path, sizeof path, "%s/m.gguf", dir);
        write_model(path, 1024, 16);
        snprintf(path, sizeof path, "%s/small.gguf", dir);
        write_model(path, 512, 16);
        snprintf(path, sizeof path, "%s/grid8.gguf", dir);
        write_model(path, 1024, 8);
        lm_synth_params p = lm_synth_tiny_params();
        lm_error e = {0};
        snprintf(path, sizeof path, "%s/plain.gguf", dir);
        CHECK(lm_synth_write(&p, path, &e) == 0, "plain: %s", e.msg);
        test_imagine();
        test_speak_animate();
        test_errors();
        test_sigint();
        char tiny[600];
        snprintf(tiny, sizeof tiny, "%s/../models/loom-tiny.gguf", cwd);
        test_chat_media(tiny);
        test_generate_cfg(tiny);
        test_best_of(tiny);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpl);
    CHECK(system(cmd) == 0, "cleanup");
    return finish();
}
