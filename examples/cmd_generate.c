/* loom generate: stream text from a decoder model. Uses only include/loom.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "loom.h"

void help_generate(void);
int  cmd_generate(int argc, char **argv);

void help_generate(void)
{
    printf("usage: loom generate -m MODEL (-p PROMPT | --tokens ID,ID,...) [options]\n\n"
           "Streams the model's continuation of PROMPT to stdout.\n\n"
           "  -m, --model PATH       decoder GGUF (llama.cpp deepseek2)\n"
           "  -p, --prompt TEXT      prompt text (needs the model's tokenizer)\n"
           "      --tokens LIST      prompt as comma-separated token ids instead\n"
           "  -n, --n-predict N      tokens to generate (default 128)\n"
           "  -c, --ctx N            context size (default min(4096, training context))\n"
           "      --temperature T    0 = greedy (default 0)\n"
           "      --top-k K          (default off)\n"
           "      --top-p P          (default off)\n"
           "      --min-p P          (default off)\n"
           "      --repeat-penalty R (default 1 = off)\n"
           "      --seed N           sampler seed (same seed, same output)\n"
           "      --no-media-blocks  sample a media block the model opens like text (default:\n"
           "                         constrained to the medium's codes, see docs/CLI.md)\n"
           "      --cfg S            guide media blocks' codes with a second sequence on the\n"
           "                         unconditional turn (default 1 = off; loom chat uses 3,\n"
           "                         speech 1)\n"
           "  -t, --threads N        threads (default: all CPUs)\n"
           "      --bf16             prefill and encoders in bfloat16 on AMX CPUs (faster;\n"
           "                         values differ from float32 from the 3rd digit)\n"
           "      --json             print prompt/generated token ids, text and timings as JSON\n"
           "  -q, --quiet            no progress output\n");
}

static volatile int g_interrupted;
static void on_sigint(int sig) { (void)sig; g_interrupted = 1; }

typedef struct gen_out {
    int      json;
    int32_t *tokens;     /* generated ids (json)  */
    int64_t  n, cap;
    char    *text;       /* generated text (json) */
    size_t   len, text_cap;
} gen_out;

static int on_token(int32_t token, const char *piece, size_t len, void *user)
{
    gen_out *o = user;
    if (!o->json) {
        fwrite(piece, 1, len, stdout);
        fflush(stdout);
        return 0;
    }
    if (o->n == o->cap) {
        int32_t *t = realloc(o->tokens, (size_t)(o->cap = o->cap * 2 + 64) * sizeof *t);
        if (!t) return 1;
        o->tokens = t;
    }
    o->tokens[o->n++] = token;
    if (o->len + len + 1 > o->text_cap) {
        char *t = realloc(o->text, o->text_cap = (o->len + len + 1) * 2);
        if (!t) return 1;
        o->text = t;
    }
    memcpy(o->text + o->len, piece, len);
    o->len += len;
    o->text[o->len] = '\0';
    return 0;
}

static void json_string(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c == '\t') printf("\\t");
        else if (c == '\r') printf("\\r");
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void json_ids(const int32_t *t, int64_t n)
{
    putchar('[');
    for (int64_t i = 0; i < n; i++) printf("%s%d", i ? ", " : "", t[i]);
    putchar(']');
}

/* "1,2,3" → ids; returns the count or -1. */
static int64_t parse_ids(const char *s, int32_t **out)
{
    int64_t n = 1;
    for (const char *c = s; *c; c++) n += *c == ',';
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids) return -1;
    int64_t k = 0;
    for (const char *c = s; *c;) {
        char *end;
        long v = strtol(c, &end, 10);
        if (end == c || v < 0 || v > INT32_MAX || (*end && *end != ',')) { free(ids); return -1; }
        ids[k++] = (int32_t)v;
        c = *end ? end + 1 : end;
    }
    *out = ids;
    return k;
}

int cmd_generate(int argc, char **argv)
{
    cli_common c = {0};
    const char *prompt = NULL, *ids = NULL;
    long long n_predict = 128, n_ctx = 0, top_k = 0;
    double temp = 0, top_p = 1, min_p = 0, rep = 1;
    int media_blocks = 1;
    double cfg = 1;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_option(&c, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (cli_is(a, "-p", "--prompt") && v) { prompt = v; i++; }
        else if (cli_is(a, "--tokens", "--ids") && v) { ids = v; i++; }
        else if (cli_is(a, "-n", "--n-predict") && v) { bad = cli_parse_int(a, v, 0, 1 << 24, &n_predict); i++; }
        else if (cli_is(a, "-c", "--ctx") && v) { bad = cli_parse_int(a, v, 0, 1 << 24, &n_ctx); i++; }
        else if (cli_is(a, "--temperature", "--temp") && v) { bad = cli_parse_float(a, v, 0, 100, &temp); i++; }
        else if (cli_is(a, "--top-k", "--topk") && v) { bad = cli_parse_int(a, v, 0, 1 << 30, &top_k); i++; }
        else if (cli_is(a, "--top-p", "--topp") && v) { bad = cli_parse_float(a, v, 0, 1, &top_p); i++; }
        else if (cli_is(a, "--min-p", "--minp") && v) { bad = cli_parse_float(a, v, 0, 1, &min_p); i++; }
        else if (cli_is(a, "--repeat-penalty", "--repeat_penalty") && v) { bad = cli_parse_float(a, v, 0, 100, &rep); i++; }
        else if (cli_is(a, "--no-media-blocks", NULL)) media_blocks = 0;
        else if (cli_is(a, "--cfg", NULL) && v) { bad = cli_parse_float(a, v, 0, 100, &cfg); i++; }
        else { cli_error("generate: unknown or incomplete option '%s'", a); return EXIT_USAGE; }
        if (bad) return EXIT_USAGE;
    }
    if (!c.model) { cli_error("generate: no model (-m MODEL)"); return EXIT_USAGE; }
    if (!prompt == !ids) { cli_error("generate: give exactly one of -p PROMPT or --tokens IDS"); return EXIT_USAGE; }

    char err[512];
    loom_model_params mp = loom_model_default_params();
    mp.n_threads = c.threads;
    loom_model *m = NULL;
    if (loom_model_load(c.model, mp, &m, err, sizeof err) < 0) { cli_error("%s", err); return EXIT_FAILED; }

    int32_t *toks = NULL;
    int64_t n_tok = 0;
    if (ids) {
        if ((n_tok = parse_ids(ids, &toks)) <= 0) { cli_error("generate: --tokens: expected ids like 1,2,3"); loom_model_free(&m); return EXIT_USAGE; }
    } else {
        if (!loom_model_has_tokenizer(m)) {
            cli_error("generate: %s has no gpt2 tokenizer; give the prompt with --tokens", c.model);
            loom_model_free(&m);
            return EXIT_FAILED;
        }
        const size_t len = strlen(prompt);
        n_tok = loom_tokenize(m, prompt, len, 1, 0, NULL, 0);
        toks = n_tok > 0 ? malloc((size_t)n_tok * sizeof *toks) : NULL;
        if (n_tok <= 0 || !toks || loom_tokenize(m, prompt, len, 1, 0, toks, n_tok) != n_tok) {
            cli_error("generate: cannot tokenize the prompt (%s)", n_tok < 0 ? loom_status_str((int)n_tok) : "empty");
            free(toks);
            loom_model_free(&m);
            return EXIT_FAILED;
        }
    }

    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = (int32_t)n_ctx;
    sp.n_threads = c.threads;
    sp.matmul = c.matmul;
    sp.sampler.temperature = (float)temp;
    sp.sampler.top_k = (int32_t)top_k;
    sp.sampler.top_p = (float)top_p;
    sp.sampler.min_p = (float)min_p;
    sp.sampler.repeat_penalty = (float)rep;
    sp.sampler.seed = c.seed;
    loom_session *s = NULL, *u = NULL;   /* u: the unconditional sequence of guidance */
    const int guided = media_blocks && cfg != 0 && cfg != 1;
    if (loom_session_create(m, sp, &s, err, sizeof err) < 0 ||
        (guided && loom_session_create(m, sp, &u, err, sizeof err) < 0)) {
        cli_error("%s", err);
        loom_session_free(&s);
        free(toks);
        loom_model_free(&m);
        return EXIT_FAILED;
    }
    gen_out out = {.json = c.json};
    loom_generate_params gp = loom_generate_default_params();
    gp.n_predict = (int32_t)n_predict;
    gp.media_blocks = media_blocks;
    for (int k = 0; k < LOOM_MEDIA_KIND_COUNT; k++) {   /* temperatures: the media defaults */
        gp.media[k].seed = c.seed;
        gp.media[k].cfg_scale = (float)cfg;
    }
    gp.media_uncond = u;
    gp.on_token = on_token;
    gp.abort_flag = &g_interrupted;
    gp.user_data = &out;
    signal(SIGINT, on_sigint);
    loom_generate_stats st = {0};
    int64_t rc = loom_session_generate(s, toks, n_tok, gp, &st);
    signal(SIGINT, SIG_DFL);
    const double pt = st.prompt_ms > 0 ? st.n_prompt * 1e3 / st.prompt_ms : 0;
    /* the first generated token comes from the prompt's logits: decode steps = n - 1 */
    const double dt = st.decode_ms > 0 && st.n_generated > 1 ? (st.n_generated - 1) * 1e3 / st.decode_ms : 0;
    int status = EXIT_OK;
    if (rc < 0) {
        if (rc == LOOM_ERR_ABORTED) status = EXIT_ABORTED;
        else { cli_error("generate: %s", loom_session_error(s)); status = EXIT_FAILED; }
    }
    if (c.json) {
        printf("{\"model\": ");
        json_string(loom_model_desc(m), strlen(loom_model_desc(m)));
        printf(", \"prompt_tokens\": ");
        json_ids(toks, n_tok);
        printf(", \"tokens\": ");
        json_ids(out.tokens, out.n);
        printf(", \"text\": ");
        json_string(out.text ? out.text : "", out.len);
        printf(", \"n_prompt\": %lld, \"n_generated\": %lld, \"prompt_ms\": %.3f, \"decode_ms\": %.3f, "
               "\"prompt_tok_s\": %.2f, \"decode_tok_s\": %.2f, \"status\": \"%s\"}\n",
               (long long)st.n_prompt, (long long)st.n_generated, st.prompt_ms, st.decode_ms, pt, dt,
               rc < 0 ? loom_status_str((int)rc) : "ok");
    } else {
        putchar('\n');
        if (!c.quiet)
            fprintf(stderr, "loom: %lld prompt tokens (%.1f tok/s), %lld generated (%.1f tok/s)\n",
                    (long long)st.n_prompt, pt, (long long)st.n_generated, dt);
    }
    free(out.tokens);
    free(out.text);
    free(toks);
    loom_session_free(&u);
    loom_session_free(&s);
    loom_model_free(&m);
    return status;
}
