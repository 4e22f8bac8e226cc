#include "cli_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loom.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loom: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

const char *cli_default_model(void)
{
    const char *env = getenv("LOOM_MODEL");
    return env && *env ? env : "models/loom-tiny.gguf";
}

int cli_sibling_path(const char *model, const char *suffix, char *buf, size_t size)
{
    size_t n = strlen(model);
    if (n > 5 && !strcmp(model + n - 5, ".gguf")) n -= 5;
    return snprintf(buf, size, "%.*s%s", (int)n, model, suffix) < (int)size ? 0 : -1;
}

int cli_parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno) {
        cli_error("%s: expected an integer, got '%s'", opt, s ? s : "");
        return -1;
    }
    if (v < lo || v > hi) {
        cli_error("%s: %lld is out of range [%lld, %lld]", opt, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || v != v) {
        cli_error("%s: expected a number, got '%s'", opt, s ? s : "");
        return -1;
    }
    if (v < lo || v > hi) {
        cli_error("%s: %g is out of range [%g, %g]", opt, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Value of an option that takes one: argv[*i + 1]. */
static const char *option_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        cli_error("%s: missing value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_common_option(cli_common *c, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    long long v;
    if (cli_is(a, "-m", "--model")) {
        const char *s = option_value(argc, argv, i);
        if (!s) return -1;
        c->model = s;
        return 1;
    }
    if (cli_is(a, "-t", "--threads")) {
        const char *s = option_value(argc, argv, i);
        if (!s || cli_parse_int("--threads", s, 0, 1024, &v) < 0) return -1;
        c->threads = (int)v;
        return 1;
    }
    if (cli_is(a, "--seed", NULL)) {
        const char *s = option_value(argc, argv, i);
        if (!s || cli_parse_int("--seed", s, 0, INT64_MAX, &v) < 0) return -1;
        c->seed = (uint64_t)v;
        return 1;
    }
    if (cli_is(a, "--json", NULL)) { c->json = 1; return 1; }
    if (cli_is(a, "--bf16", NULL)) { c->matmul = LOOM_MATMUL_BF16; return 1; }
    if (cli_is(a, "-q", "--quiet")) { c->quiet = 1; return 1; }
    return 0;
}

void cli_progress_init(cli_progress *p, const char *label, int quiet)
{
    p->label = label;
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->last_permille = -1;
}

void cli_progress_update(cli_progress *p, int64_t done, int64_t total)
{
    if (!p->enabled || total <= 0) return;
    int permille = (int)(done * 1000 / total);
    if (permille == p->last_permille) return;
    p->last_permille = permille;
    enum { WIDTH = 30 };
    int filled = permille * WIDTH / 1000;
    char bar[WIDTH + 1];
    for (int k = 0; k < WIDTH; k++) bar[k] = k < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r%s [%s] %3d.%d%%", p->label, bar, permille / 10, permille % 10);
    fflush(stderr);
}

void cli_progress_done(cli_progress *p)
{
    if (p->enabled && p->last_permille >= 0) fputc('\n', stderr);
    p->last_permille = -1;
}

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 if it is not one. */
static int utf8_len(const unsigned char *s)
{
    const unsigned c = s[0];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (n == 2 && c < 0xC2) return 0;                                    /* overlong       */
    if (n == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))) return 0; /* overlong, surrogate */
    if (n == 4 && ((c == 0xF0 && s[1] < 0x90) || c > 0xF4 || (c == 0xF4 && s[1] >= 0x90))) return 0;
    return n;
}

void cli_json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; p && *p;) {
        const unsigned char ch = *p;
        const int n = utf8_len(p);
        if (n == 0) { fputs("\\ufffd", out); p++; continue; }   /* JSON must be valid UTF-8 */
        if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", out);
        else if (ch == '\t') fputs("\\t", out);
        else if (ch < 0x20 || ch == 0x7f) fprintf(out, "\\u%04x", ch);
        else fwrite(p, 1, (size_t)n, out);
        p += n;
    }
    fputc('"', out);
}
