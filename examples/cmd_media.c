/* The machinery `loom imagine`, `loom speak` and `loom animate` share (see cmd_media.h). */
#include "cmd_media.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile int g_interrupted;
static void on_sigint(int sig) { (void)sig; g_interrupted = 1; }

void media_help_common(void)
{
    printf("  -m, --model PATH       unified decoder GGUF (with loom.vocab.* ranges)\n"
           "  -p, --prompt TEXT      what to make (or give it as the only positional argument)\n"
           "  -o, --output PATH      file to write (appears atomically; nothing on failure or Ctrl-C)\n"
           "      --cfg S            classifier-free guidance scale (default 3, speak 1; 0 or 1 = off, half the work)\n"
           "      --seed N           sampler seed (default 0; same seed, same output)\n"
           "      --temp T           sampling temperature (default 1, speak 0.6; 0 = greedy)\n"
           "      --top-k K          sample among the K likeliest codes (default 0 = all)\n"
           "  -t, --threads N        threads (default: all CPUs)\n"
           "      --bf16             prefill and encoders in bfloat16 on AMX CPUs (faster;\n"
           "                         values differ from float32 from the 3rd digit)\n"
           "      --best-of N        make N candidates (seeds seed … seed+N-1) and keep the one the\n"
           "                         model itself reads back as the prompt most likely (default 1)\n"
           "      --mmproj PATH      media encoders for --best-of (default: MODEL's <stem>-mmproj.gguf)\n"
           "      --json             print a JSON summary on stdout\n"
           "  -q, --quiet            no progress bar or summary line\n");
}

int media_parse(media_job *j, int argc, char **argv, media_option_fn extra)
{
    j->p = loom_media_default_params(j->kind);
    for (int i = 1; i < argc; i++) {
        int r = cli_common_option(&j->c, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double f;
        long long k;
        if (a[0] != '-' || !a[1]) {
            if (j->prompt) { cli_error("%s: more than one prompt ('%s', '%s'); quote the prompt", j->cmd, j->prompt, a); return EXIT_USAGE; }
            j->prompt = a;
            continue;
        }
        if ((r = extra ? extra(j, a, v, &i) : 0) < 0) return EXIT_USAGE;
        if (r > 0) continue;
        if (!v) { cli_error("%s: unknown or incomplete option '%s'", j->cmd, a); return EXIT_USAGE; }
        if (cli_is(a, "-p", "--prompt")) j->prompt = v;
        else if (cli_is(a, "-o", "--output")) j->out = v;
        else if (cli_is(a, "--cfg", "--cfg-scale")) { if (cli_parse_float(a, v, 0, 100, &f) < 0) return EXIT_USAGE; j->p.cfg_scale = (float)f; }
        else if (cli_is(a, "--temp", "--temperature")) { if (cli_parse_float(a, v, 0, 100, &f) < 0) return EXIT_USAGE; j->p.temperature = (float)f; }
        else if (cli_is(a, "--top-k", "--topk")) { if (cli_parse_int(a, v, 0, 1 << 30, &k) < 0) return EXIT_USAGE; j->p.top_k = (int32_t)k; }
        else if (cli_is(a, "--best-of", NULL)) { if (cli_parse_int(a, v, 1, 64, &j->best_of) < 0) return EXIT_USAGE; }
        else if (cli_is(a, "--mmproj", NULL)) j->mmproj = v;
        else { cli_error("%s: unknown option '%s'", j->cmd, a); return EXIT_USAGE; }
        i++;
    }
    j->p.seed = j->c.seed;
    if (!j->c.model) j->c.model = cli_default_model();
    if (!j->prompt) { cli_error("%s: no prompt (-p TEXT)", j->cmd); return EXIT_USAGE; }
    if (!j->out) { cli_error("%s: no output file (-o PATH)", j->cmd); return EXIT_USAGE; }
    return EXIT_OK;
}

int media_load(media_job *j)
{
    signal(SIGINT, on_sigint);
    char err[600];
    if (j->codec) snprintf(j->codec_path, sizeof j->codec_path, "%s", j->codec);
    else if (cli_sibling_path(j->c.model, j->codec_suffix, j->codec_path, sizeof j->codec_path) < 0) {
        cli_error("%s: model path too long", j->cmd);
        return EXIT_FAILED;
    }
    loom_model_params mp = loom_model_default_params();
    mp.n_threads = j->c.threads;
    if (loom_model_load(j->c.model, mp, &j->m, err, sizeof err) < 0) { cli_error("%s: %s", j->cmd, err); return EXIT_FAILED; }
    if (loom_model_can_generate(j->m, j->kind, err, sizeof err) < 0) {
        cli_error("%s: %s: %s", j->cmd, j->c.model, err);
        return EXIT_FAILED;
    }
    loom_model_media_vocab(j->m, &j->v);
    return EXIT_OK;
}

int media_check_codebook(const media_job *j, const char *what, int codebook, int32_t model_count)
{
    if (codebook == model_count) return EXIT_OK;
    cli_error("%s: %s has %d %s codes but %s has %d: they are not one model's files", j->cmd, j->codec_path,
              codebook, what, j->c.model, model_count);
    return EXIT_FAILED;
}

loom_codec_params media_codec_params(const media_job *j)
{
    loom_codec_params cp = loom_codec_default_params();
    cp.n_threads = j->c.threads;
    return cp;
}

int media_open_vq(const media_job *j, loom_vq **vq)
{
    char err[600];
    if (loom_vq_open(j->codec_path, media_codec_params(j), vq, err, sizeof err) < 0) {
        cli_error("%s: VQ codec: %s (give --vq PATH)", j->cmd, err);
        return EXIT_FAILED;
    }
    int st = media_check_codebook(j, "image", loom_vq_codebook_size(*vq), j->v.image_count);
    if (st == EXIT_OK && loom_vq_grid(*vq) != j->v.image_grid) {
        cli_error("%s: %s has a %d×%d code grid but %s draws %d×%d", j->cmd, j->codec_path, loom_vq_grid(*vq),
                  loom_vq_grid(*vq), j->c.model, j->v.image_grid, j->v.image_grid);
        st = EXIT_FAILED;
    }
    return st;
}

static void on_progress(int64_t done, int64_t total, void *user) { cli_progress_update(user, done, total); }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Tokens of the job's (un)conditional turn, malloc'ed; NULL on failure (message printed). */
static int32_t *turn(const media_job *j, int unconditional, int64_t *n)
{
    *n = loom_media_prompt(j->m, j->kind, j->prompt, unconditional, NULL, 0);
    int32_t *t = *n > 0 ? malloc((size_t)*n * sizeof *t) : NULL;
    if (!t || loom_media_prompt(j->m, j->kind, j->prompt, unconditional, t, *n) != *n) {
        cli_error("%s: cannot tokenize the prompt (%s)", j->cmd, *n < 0 ? loom_status_str((int)*n) : "out of memory");
        free(t);
        return NULL;
    }
    return t;
}

int media_generate(media_job *j)
{
    char err[600];
    if (j->kind == LOOM_MEDIA_AUDIO) j->p.words = j->prompt;   /* spelt by loom.audio.words models */
    const int64_t max = loom_media_max_codes(j->m, j->p), block = loom_media_block_len(j->m, j->p);
    const int guided = j->p.cfg_scale != 0.0f && j->p.cfg_scale != 1.0f;
    int64_t n_cond = 0, n_unc = 0;
    int32_t *cond = turn(j, 0, &n_cond), *unc = guided ? turn(j, 1, &n_unc) : NULL;
    free(j->codes);
    j->codes = max > 0 ? malloc((size_t)max * sizeof *j->codes) : NULL;
    int status = cond && (unc || !guided) && j->codes ? EXIT_OK : EXIT_FAILED;
    if (status == EXIT_OK && (max <= 0 || block <= 0)) {
        cli_error("%s: %s", j->cmd, loom_status_str((int)(max <= 0 ? max : block)));
        status = EXIT_FAILED;
    }
    loom_session *s = NULL, *u = NULL;
    loom_session_params sp = loom_session_default_params();
    sp.n_threads = j->c.threads;
    sp.matmul = j->c.matmul;
    sp.n_ctx = (int32_t)(n_cond + block);
    if (status == EXIT_OK && (loom_session_create(j->m, sp, &s, err, sizeof err) < 0 ||
                              (guided && loom_session_create(j->m, sp, &u, err, sizeof err) < 0))) {
        cli_error("%s: %s", j->cmd, err);
        status = EXIT_FAILED;
    }
    if (status == EXIT_OK) {
        cli_progress bar;
        char label[64];
        snprintf(label, sizeof label, j->best_of > 1 ? "%s %llu/%lld" : "%s", j->cmd,
                 (unsigned long long)(j->p.seed - j->c.seed + 1), j->best_of);
        cli_progress_init(&bar, label, j->c.quiet);
        loom_media_params p = j->p;
        p.on_progress = on_progress;
        p.user_data = &bar;
        p.abort_flag = &g_interrupted;
        const double t0 = now_s();
        j->n_codes = loom_generate_media(j->m, s, cond, n_cond, u, unc, n_unc, p, j->codes, max, err, sizeof err);
        j->gen_seconds = now_s() - t0;
        cli_progress_done(&bar);
        if (j->n_codes == LOOM_ERR_ABORTED) {
            cli_error("%s: interrupted; nothing written", j->cmd);
            status = EXIT_ABORTED;
        } else if (j->n_codes < 0) {
            cli_error("%s: %s", j->cmd, err);
            status = EXIT_FAILED;
        } else if (j->n_codes == 0) {
            cli_error("%s: the model closed the block without a single code; try another --seed", j->cmd);
            status = EXIT_FAILED;
        }
    }
    loom_session_free(&s);
    loom_session_free(&u);
    free(cond);
    free(unc);
    return status;
}

/* The turn that reads a candidate back, with the medium's trained question. */
static const char *const read_question[LOOM_MEDIA_KIND_COUNT] = {"Describe the image.", "Transcribe the audio.",
                                                                  "Describe the video."};

/* The answer a candidate is scored on: the prompt's text tokens, then <|end|> (so a
 * candidate with more in it than the prompt says scores lower). malloc'ed; NULL on failure. */
static int32_t *read_answer(const media_job *j, int64_t *n)
{
    const int32_t end = loom_token_find(j->m, "<|end|>");
    const size_t len = strlen(j->prompt);
    *n = loom_tokenize(j->m, j->prompt, len, 0, 0, NULL, 0);
    int32_t *t = *n >= 0 && end >= 0 ? malloc((size_t)(*n + 1) * sizeof *t) : NULL;
    if (!t || loom_tokenize(j->m, j->prompt, len, 0, 0, t, *n) != *n) {
        cli_error("%s: --best-of: cannot tokenize the prompt%s", j->cmd, end < 0 ? " (the model has no <|end|>)" : "");
        free(t);
        return NULL;
    }
    t[(*n)++] = end;
    return t;
}

/* log p(answer | <|bos|><|user|> candidate question <|end|><|assistant|>) into *lp. */
static int read_back(media_job *j, loom_mmproj *mp, loom_prompt *p, loom_session *s, media_read_fn read, void *ctx,
                     const int32_t *answer, int64_t n_answer, double *lp)
{
    loom_prompt_clear(p);
    int rc = loom_prompt_add_special(p, "<|bos|>");
    if (!rc) rc = loom_prompt_add_special(p, "<|user|>");
    if (!rc && (rc = read(j, mp, p, ctx)) < 0) return rc;
    if (!rc) rc = loom_prompt_add_text(p, read_question[j->kind]);
    if (!rc) rc = loom_prompt_add_special(p, "<|end|>");
    if (!rc) rc = loom_prompt_add_special(p, "<|assistant|>");
    if (rc < 0) { cli_error("%s: --best-of: %s", j->cmd, loom_prompt_error(p)); return rc; }
    loom_session_truncate(s, 0);
    if ((rc = loom_session_append_prompt(s, p)) < 0 || (rc = loom_session_score(s, answer, n_answer, lp)) < 0)
        cli_error("%s: --best-of: %s", j->cmd, loom_session_error(s));
    return rc;
}

int media_generate_best(media_job *j, media_read_fn read, void *ctx)
{
    if (j->best_of <= 1) return media_generate(j);
    char err[600], path[1024];
    const char *mmproj = j->mmproj;
    if (!mmproj && cli_sibling_path(j->c.model, "-mmproj.gguf", path, sizeof path) == 0) mmproj = path;
    loom_mmproj_params mpp = loom_mmproj_default_params();
    mpp.n_threads = j->c.threads;
    mpp.matmul = j->c.matmul;
    loom_session_params sp = loom_session_default_params();
    sp.n_threads = j->c.threads;
    sp.matmul = j->c.matmul;
    loom_mmproj *mp = NULL;
    loom_prompt *p = NULL;
    loom_session *s = NULL;
    int64_t n_answer = 0, best_n = 0;
    int32_t *answer = NULL, *best = NULL;
    int status = EXIT_OK;
    if (!mmproj || loom_mmproj_load(mmproj, mpp, &mp, err, sizeof err) < 0) {
        cli_error("%s: --best-of reads the candidates back: %s (give --mmproj PATH)", j->cmd,
                  mmproj ? err : "model path too long");
        status = EXIT_FAILED;
    } else if (loom_prompt_create(j->m, &p) < 0 || loom_session_create(j->m, sp, &s, err, sizeof err) < 0) {
        cli_error("%s: %s", j->cmd, p ? err : "out of memory");
        status = EXIT_FAILED;
    } else if (!(answer = read_answer(j, &n_answer))) {
        status = EXIT_FAILED;
    }
    const uint64_t seed0 = j->p.seed;
    uint64_t best_seed = seed0;
    double best_lp = -HUGE_VAL, seconds = 0;
    for (long long k = 0; status == EXIT_OK && k < j->best_of; k++) {
        j->p.seed = seed0 + (uint64_t)k;
        const double t0 = now_s();
        double lp = 0;
        status = media_generate(j);
        if (status == EXIT_OK && read_back(j, mp, p, s, read, ctx, answer, n_answer, &lp) < 0) status = EXIT_FAILED;
        seconds += now_s() - t0;
        if (status != EXIT_OK) break;
        if (!j->c.quiet && !j->c.json)
            fprintf(stderr, "loom: %s: candidate %lld/%lld (seed %llu): log p(prompt) = %.3f\n", j->cmd, k + 1,
                    j->best_of, (unsigned long long)j->p.seed, lp);
        if (lp > best_lp) {
            int32_t *b = realloc(best, (size_t)j->n_codes * sizeof *b);
            if (!b) { cli_error("%s: out of memory", j->cmd); status = EXIT_FAILED; break; }
            best = b;
            memcpy(best, j->codes, (size_t)j->n_codes * sizeof *best);
            best_n = j->n_codes;
            best_lp = lp;
            best_seed = j->p.seed;
        }
    }
    if (status == EXIT_OK) {
        memcpy(j->codes, best, (size_t)best_n * sizeof *best);   /* j->codes holds loom_media_max_codes */
        j->n_codes = best_n;
        j->p.seed = best_seed;
        j->logprob = best_lp;
        j->gen_seconds = seconds;
    }
    free(best);
    free(answer);
    loom_session_free(&s);
    loom_prompt_free(&p);
    loom_mmproj_free(&mp);
    return status;
}

int media_check_interrupt(const media_job *j)
{
    if (!g_interrupted) return EXIT_OK;
    cli_error("%s: interrupted; nothing written", j->cmd);
    return EXIT_ABORTED;
}

int media_report(const media_job *j, const char *what)
{
    if (j->c.json) {
        printf("{\"output\": ");
        cli_json_str(stdout, j->out);
        printf(", \"model\": ");
        cli_json_str(stdout, j->c.model);
        printf(", \"codec\": ");
        cli_json_str(stdout, j->codec_path);
        printf(", \"prompt\": ");
        cli_json_str(stdout, j->prompt);
        printf(", \"codes\": %lld, \"seed\": %llu, \"cfg\": %g, \"temperature\": %g, \"top_k\": %d, "
               "\"generate_s\": %.3f", (long long)j->n_codes, (unsigned long long)j->p.seed, j->p.cfg_scale,
               j->p.temperature, j->p.top_k, j->gen_seconds);
        if (j->best_of > 1) printf(", \"best_of\": %lld, \"logprob\": %.4f", j->best_of, j->logprob);
        if (j->pieces) printf(", \"pieces\": %lld", j->pieces);
        printf("}\n");
    } else if (!j->c.quiet) {
        if (j->best_of > 1)
            fprintf(stderr, "loom: %s: wrote %s (%s; seed %llu, the best of %lld, in %.2f s)\n", j->cmd, j->out,
                    what, (unsigned long long)j->p.seed, j->best_of, j->gen_seconds);
        else
            fprintf(stderr, "loom: %s: wrote %s (%s; %lld codes in %.2f s)\n", j->cmd, j->out, what,
                    (long long)j->n_codes, j->gen_seconds);
    }
    return EXIT_OK;
}

void media_done(media_job *j)
{
    free(j->codes);
    j->codes = NULL;
    loom_model_free(&j->m);
    signal(SIGINT, SIG_DFL);
}
