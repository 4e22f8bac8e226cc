/* loom — the command-line front end. Uses only include/loom.h. See docs/CLI.md. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli_util.h"
#include "loom.h"

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);   /* argv[0] is the subcommand name */
    void (*help)(void);
} command;

static int  cmd_version(int argc, char **argv);
static void help_version(void);
static int  cmd_info(int argc, char **argv);
static void help_info(void);
static int  cmd_quantize(int argc, char **argv);
static void help_quantize(void);
int  cmd_generate(int argc, char **argv);   /* cmd_generate.c */
void help_generate(void);
int  cmd_perplexity(int argc, char **argv); /* cmd_perplexity.c */
void help_perplexity(void);
int  cmd_bench(int argc, char **argv);      /* cmd_bench.c */
void help_bench(void);
int  cmd_caption(int argc, char **argv);     /* cmd_understand.c */
void help_caption(void);
int  cmd_transcribe(int argc, char **argv);
void help_transcribe(void);
int  cmd_describe(int argc, char **argv);
void help_describe(void);
int  cmd_chat(int argc, char **argv);        /* cmd_chat.c */
void help_chat(void);
int  cmd_imagine(int argc, char **argv);    /* cmd_imagine.c */
void help_imagine(void);
int  cmd_speak(int argc, char **argv);      /* cmd_speak.c */
void help_speak(void);
int  cmd_animate(int argc, char **argv);    /* cmd_animate.c */
void help_animate(void);

static const command COMMANDS[] = {
    {"version", "print loom's version and the CPU features it uses", cmd_version, help_version},
    {"info",    "print a model file's metadata and tensor table", cmd_info, help_info},
    {"quantize", "convert a model file's weight matrices to q8_0, f16, bf16 or f32", cmd_quantize, help_quantize},
    {"generate", "continue a prompt with a decoder model (streams text)", cmd_generate, help_generate},
    {"perplexity", "how well a decoder predicts a text file (llama.cpp's measure)", cmd_perplexity, help_perplexity},
    {"bench", "prompt and generation speed of a decoder (llama-bench's measure)", cmd_bench, help_bench},
    {"caption", "describe an image or answer a question about it", cmd_caption, help_caption},
    {"transcribe", "transcribe speech (txt, srt, vtt or json)", cmd_transcribe, help_transcribe},
    {"describe", "describe what happens in a video", cmd_describe, help_describe},
    {"chat", "a conversation: text, images, audio and video in; text, pictures and sound out", cmd_chat, help_chat},
    {"imagine", "draw a picture from a text prompt (PNG)", cmd_imagine, help_imagine},
    {"speak",   "say a text (WAV)", cmd_speak, help_speak},
    {"animate", "animate a text prompt (MP4)", cmd_animate, help_animate},
};
enum { N_COMMANDS = sizeof COMMANDS / sizeof COMMANDS[0] };

static void usage(FILE *out)
{
    fprintf(out, "usage: loom COMMAND [options]\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out, "\n'loom COMMAND --help' describes a command. Exit codes: 0 ok, 1 failed, 2 usage, 130 interrupted.\n");
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

static void help_version(void) { printf("usage: loom version\n\nPrints the library version, the CPU features the kernels use and what runs the matrix\nproducts (OpenBLAS and the kernel core it runs, or the slow reference).\n"); }

static int cmd_version(int argc, char **argv)
{
    if (argc > 1) {
        cli_error("version: unexpected argument '%s'", argv[1]);
        return EXIT_USAGE;
    }
    printf("loom %s\ncpus: %d\nfeatures: %s\nmatrix products: %s\n", loom_version(), loom_cpu_count(),
           loom_cpu_features(), loom_blas_name());
    return EXIT_OK;
}

static void help_info(void)
{
    printf("usage: loom info [--json] MODEL.gguf\n"
           "       loom info [--json] --model MODEL.gguf\n\n"
           "Validates a GGUF v3 file and prints its metadata (key, type, value) and its tensor\n"
           "table (name, type, shape in ggml order with the fastest dimension first, bytes).\n"
           "Long arrays are summarized: element type, count and the first items.\n\n"
           "  --json   one JSON object on stdout: {\"file\", \"version\", \"alignment\",\n"
           "           \"metadata\": [{\"key\", \"type\", \"value\"}],\n"
           "           \"tensors\": [{\"name\", \"type\", \"type_id\", \"shape\", \"offset\", \"bytes\"}]}\n"
           "           (array values are the summary text)\n\n"
           "Exit status 1 if the file is missing or malformed; the message names the problem.\n");
}

/* "f16", or "type12" for an id loom cannot compute with. */
static const char *type_label(int type, char *buf, size_t n)
{
    const char *name = loom_type_name(type);
    if (strcmp(name, "?")) return name;
    snprintf(buf, n, "type%d", type);
    return buf;
}

static void shape_text(const loom_tensor_info *t, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int d = 0; d < t->n_dims && len < n; d++)
        len += (size_t)snprintf(buf + len, n - len, "%s%" PRId64, d ? ", " : "[", t->ne[d]);
    if (len < n) snprintf(buf + len, n - len, "]");
}

/* A metadata value as JSON: numbers and booleans bare, everything else as a string. */
static void json_value(const char *type, const char *text)
{
    int is_float = !strcmp(type, "f32") || !strcmp(type, "f64");
    int finite = !strpbrk(text, "ni");  /* "inf", "nan" are not JSON numbers */
    int bare = !strcmp(type, "bool") || (is_float && finite) ||
               (type[0] == 'u' || type[0] == 'i');  /* u8 … i64 */
    if (bare) fputs(text, stdout);
    else cli_json_str(stdout, text);
}

static int cmd_info(int argc, char **argv)
{
    cli_common c = {0};
    for (int i = 1; i < argc; i++) {
        int r = cli_common_option(&c, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        if (argv[i][0] == '-' && argv[i][1]) {
            cli_error("info: unknown option '%s'", argv[i]);
            return EXIT_USAGE;
        }
        if (c.model) {
            cli_error("info: more than one model file given ('%s', '%s')", c.model, argv[i]);
            return EXIT_USAGE;
        }
        c.model = argv[i];
    }
    if (!c.model) {
        cli_error("info: missing MODEL.gguf (try 'loom info --help')");
        return EXIT_USAGE;
    }
    loom_file *f = NULL;
    char err[600];
    if (loom_file_open(c.model, &f, err, sizeof err) < 0) {
        cli_error("info: %s", err);
        return EXIT_FAILED;
    }
    static char value[2048];
    char tbuf[16], shape[96];
    int64_t n_kv = loom_file_n_kv(f), n_t = loom_file_n_tensors(f);
    loom_tensor_info t;
    if (c.json) {
        printf("{\"file\": ");
        cli_json_str(stdout, c.model);
        printf(", \"version\": %u, \"alignment\": %u,\n \"metadata\": [", loom_file_version(f), loom_file_alignment(f));
        for (int64_t i = 0; i < n_kv; i++) {
            const char *type = loom_file_kv_type(f, i);
            printf("%s\n  {\"key\": ", i ? "," : "");
            cli_json_str(stdout, loom_file_kv_key(f, i));
            printf(", \"type\": \"%s\", \"value\": ", type);
            json_value(type, loom_file_kv_str(f, i, value, sizeof value));
            printf("}");
        }
        printf("],\n \"tensors\": [");
        for (int64_t i = 0; i < n_t; i++) {
            loom_file_tensor(f, i, &t);
            printf("%s\n  {\"name\": ", i ? "," : "");
            cli_json_str(stdout, t.name);
            printf(", \"type\": \"%s\", \"type_id\": %d, \"shape\": [", type_label(t.type, tbuf, sizeof tbuf), t.type);
            for (int d = 0; d < t.n_dims; d++) printf("%s%" PRId64, d ? ", " : "", t.ne[d]);
            printf("], \"offset\": %" PRIu64 ", \"bytes\": %" PRIu64 "}", t.offset, t.n_bytes);
        }
        printf("]}\n");
        loom_file_close(&f);
        return EXIT_OK;
    }

    printf("%s: GGUF v%u, alignment %u, %" PRId64 " metadata keys, %" PRId64 " tensors\n\nmetadata:\n",
           c.model, loom_file_version(f), loom_file_alignment(f), n_kv, n_t);
    int kw = 0, nw = 4;
    for (int64_t i = 0; i < n_kv; i++) {
        int len = (int)strlen(loom_file_kv_key(f, i));
        if (len > kw) kw = len < 48 ? len : 48;
    }
    for (int64_t i = 0; i < n_kv; i++)
        printf("  %-*s %-6s %s\n", kw, loom_file_kv_key(f, i), loom_file_kv_type(f, i),
               loom_file_kv_str(f, i, value, sizeof value));
    for (int64_t i = 0; i < n_t; i++) {
        loom_file_tensor(f, i, &t);
        int len = (int)strlen(t.name);
        if (len > nw) nw = len < 64 ? len : 64;
    }
    printf("\ntensors:\n  %-*s %-6s %-24s %12s\n", nw, "name", "type", "shape", "bytes");
    uint64_t total = 0;
    for (int64_t i = 0; i < n_t; i++) {
        loom_file_tensor(f, i, &t);
        shape_text(&t, shape, sizeof shape);
        printf("  %-*s %-6s %-24s %12" PRIu64 "\n", nw, t.name, type_label(t.type, tbuf, sizeof tbuf), shape, t.n_bytes);
        total += t.n_bytes;
    }
    printf("  total: %" PRIu64 " bytes in %" PRId64 " tensors\n", total, n_t);
    /* by type, in order of first appearance: what a converted file holds at a glance
     * (one pass; a file of many odd type ids lumps the 33rd on into "other") */
    enum { MAX_TYPES = 32 };
    struct { int type; int64_t count; uint64_t bytes; } by[MAX_TYPES + 1] = {{0}};
    int n_by = 0;
    for (int64_t i = 0; i < n_t; i++) {
        loom_file_tensor(f, i, &t);
        int k = 0;
        while (k < n_by && by[k].type != t.type) k++;
        if (k == n_by && n_by < MAX_TYPES) by[n_by++].type = t.type;
        if (k == MAX_TYPES) by[MAX_TYPES].type = -1;
        by[k].count++;
        by[k].bytes += t.n_bytes;
    }
    printf("  by type:");
    for (int k = 0; k <= MAX_TYPES; k++) {
        if (!by[k].count) continue;
        printf("%s %s %" PRId64 " (%" PRIu64 " bytes)", k ? "," : "", k == MAX_TYPES ? "other" : type_label(by[k].type, tbuf, sizeof tbuf),
               by[k].count, by[k].bytes);
    }
    printf("\n");
    loom_file_close(&f);
    return EXIT_OK;
}

static void help_quantize(void)
{
    printf("usage: loom quantize [-q] [-t N] IN.gguf OUT.gguf [TYPE]\n\n"
           "Writes a copy of a model file (decoder, -mmproj, codec) with its weight matrices in\n"
           "TYPE: q8_0 (the default), f16, bf16 or f32. Norms, biases, position embeddings, MoE\n"
           "routers and kernels with rows shorter than a block stay as they are; every metadata\n"
           "key is kept, general.file_type names the new type. OUT is written atomically and\n"
           "may not be IN itself. A file holding types loom cannot read (llama.cpp's k-quants)\n"
           "is refused with the tensor's name.\n\n"
           "  -t, --threads N   threads (default 0: all CPUs; the output is the same)\n"
           "  -q, --quiet       no progress bar\n\n"
           "Prints how many tensors were converted and the tensor data's size before and after.\n"
           "Exit status 1 if IN is missing or malformed or OUT cannot be written.\n");
}

static void on_quantize_progress(int64_t done, int64_t total, void *user)
{
    cli_progress_update(user, done, total);
}

static int cmd_quantize(int argc, char **argv)
{
    const char *path[3] = {0};
    int n_path = 0, quiet = 0;
    long long threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
            quiet = 1;
        } else if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) {
            if (i + 1 == argc) {
                cli_error("quantize: %s needs a value", argv[i]);
                return EXIT_USAGE;
            }
            if (cli_parse_int(argv[i], argv[i + 1], 0, 1024, &threads) < 0) return EXIT_USAGE;
            i++;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_error("quantize: unknown option '%s'", argv[i]);
            return EXIT_USAGE;
        } else if (n_path == 3) {
            cli_error("quantize: unexpected argument '%s' (IN.gguf OUT.gguf [TYPE])", argv[i]);
            return EXIT_USAGE;
        } else {
            path[n_path++] = argv[i];
        }
    }
    if (n_path < 2) {
        cli_error("quantize: missing %s (try 'loom quantize --help')", n_path ? "OUT.gguf" : "IN.gguf and OUT.gguf");
        return EXIT_USAGE;
    }
    loom_quantize_params qp = loom_quantize_default_params();
    qp.n_threads = (int32_t)threads;
    if (path[2]) {
        static const int types[] = {LOOM_TYPE_Q8_0, LOOM_TYPE_F16, LOOM_TYPE_BF16, LOOM_TYPE_F32};
        qp.type = -1;
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
            if (!strcasecmp(path[2], loom_type_name(types[k]))) qp.type = types[k];
        if (qp.type < 0) {
            cli_error("quantize: unknown type '%s' (q8_0, f16, bf16 or f32)", path[2]);
            return EXIT_USAGE;
        }
    }
    cli_progress bar;
    cli_progress_init(&bar, "quantize", quiet);
    qp.on_progress = on_quantize_progress;
    qp.user_data = &bar;
    loom_quantize_stats st;
    char err[600];
    int rc = loom_quantize(path[0], path[1], qp, &st, err, sizeof err);
    cli_progress_done(&bar);
    if (rc < 0) {
        cli_error("quantize: %s", err);
        return EXIT_FAILED;
    }
    printf("%s -> %s (%s): %" PRId64 " of %" PRId64 " tensors converted, tensor data %.2f MB -> %.2f MB\n",
           path[0], path[1], loom_type_name(qp.type), st.n_converted, st.n_tensors, st.bytes_in / 1e6,
           st.bytes_out / 1e6);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) { usage(stderr); return EXIT_USAGE; }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], COMMANDS[i].name)) continue;
        if (wants_help(argc - 1, argv + 1)) { COMMANDS[i].help(); return EXIT_OK; }
        return COMMANDS[i].run(argc - 1, argv + 1);
    }
    cli_error("unknown command '%s' (try 'loom --help')", argv[1]);
    return EXIT_USAGE;
}
