/* Helpers shared by the loom CLI's subcommands: option parsing, progress bar, messages. */
#ifndef LOOM_CLI_UTIL_H
#define LOOM_CLI_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Exit codes of the loom command (documented in docs/CLI.md). */
enum {
    EXIT_OK      = 0,
    EXIT_FAILED  = 1,  /* the job failed: bad input file, model error, … */
    EXIT_USAGE   = 2,  /* bad command line                                */
    EXIT_ABORTED = 130 /* interrupted (Ctrl-C)                            */
};

/* Options every subcommand understands. */
typedef struct cli_common {
    const char *model;    /* --model / -m PATH          */
    int         threads;  /* --threads / -t N (0 = all) */
    uint64_t    seed;     /* --seed N                   */
    int         json;     /* --json                     */
    int         quiet;    /* --quiet / -q               */
    int         matmul;   /* --bf16: LOOM_MATMUL_BF16   */
} cli_common;

/* Try to consume argv[*i] (and its value) as a common option. Returns 1 if consumed, 0 if
 * not a common option, -1 on a bad value (message printed). */
int cli_common_option(cli_common *c, int argc, char **argv, int *i);

/* The model a command uses without -m: $LOOM_MODEL if set, else models/loom-tiny.gguf. */
const char *cli_default_model(void);

/* A model's companion file: "<dir>/foo.gguf" → "<dir>/foo<suffix>" (e.g. "-mmproj.gguf").
 * Returns 0, or -1 (nothing useful in buf) when it does not fit in size. */
int cli_sibling_path(const char *model, const char *suffix, char *buf, size_t size);

/* 1 when the argument a is the option spelt s1 or s2 (s2 NULL: one spelling). */
static inline int cli_is(const char *a, const char *s1, const char *s2)
{
    return !strcmp(a, s1) || (s2 && !strcmp(a, s2));
}

/* Parse an integer / float option value; print "loom: OPTION: …" and return -1 if bad. */
int cli_parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out);
int cli_parse_float(const char *opt, const char *s, double lo, double hi, double *out);

/* Write s as a JSON string literal (quotes, backslashes and control characters escaped;
 * bytes that are not well-formed UTF-8 become \ufffd, so the output is always valid JSON). */
void cli_json_str(FILE *out, const char *s);

/* "loom: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A progress bar drawn on stderr only when stderr is a terminal and !quiet. */
typedef struct cli_progress {
    const char *label;
    int         enabled;
    int         last_permille;
} cli_progress;
void cli_progress_init(cli_progress *p, const char *label, int quiet);
void cli_progress_update(cli_progress *p, int64_t done, int64_t total);
void cli_progress_done(cli_progress *p);

#endif
