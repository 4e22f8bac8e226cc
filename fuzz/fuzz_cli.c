/* libFuzzer entry: the `loom` command line. The input, split at NUL bytes, is an argv vector
 * (argv[1] the command); it runs through the real CLI — examples/loom.c's main (built here as
 * loom_cli_main), every command's option loop, cli_common_option, cli_parse_int/float —
 * which must return an exit code (0, 1 or 2), never crash or exit. The option helpers are
 * also checked directly: a parsed value is inside its range, JSON strings carry no raw
 * control characters.
 *
 * Sandbox: the process works in an empty, deleted temporary directory, '/' is removed from
 * every argument and LOOM_* environment variables are unset, so no file can be named: each
 * model/media path the parsers accept fails to open, and nothing heavier than parsing runs.
 * stdin is /dev/null and stdout is discarded (-close_fd_mask=2 silences stderr too).
 * Run it with absolute corpus/artifact paths (scripts/fuzz does).
 *   scripts/fuzz 60 fuzz_cli              (seeds: fuzz/corpus/cli, dictionary fuzz/cli.dict) */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "examples/cli_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int loom_cli_main(int argc, char **argv);   /* examples/loom.c's main, renamed by the build */

enum { MAX_ARGS = 64 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[] = "/tmp/loom-fuzz-cli-XXXXXX";
    if (!mkdtemp(dir) || chdir(dir) != 0) __builtin_trap();
    rmdir(dir);   /* the cwd lives on, empty and unnamed: nothing can be created in it */
    if (!freopen("/dev/null", "r", stdin) || !freopen("/dev/null", "w", stdout)) __builtin_trap();
    /* LOOM_* variables (LOOM_MODEL: a default model path) could name files outside */
    extern char **environ;
    for (int i = 0; environ[i];) {
        const char *eq = strchr(environ[i], '=');
        if (strncmp(environ[i], "LOOM_", 5) || !eq) { i++; continue; }
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - environ[i]), environ[i]);
        if (unsetenv(name) != 0) i++;
    }
    return 0;
}

/* The option helpers' contracts, on one argument. */
static void check_helpers(const char *s)
{
    long long v = 0;
    if (cli_parse_int("--n", s, -5, 1 << 20, &v) == 0 && (v < -5 || v > 1 << 20)) __builtin_trap();
    double d = 0;
    if (cli_parse_float("--f", s, 0, 1, &d) == 0 && !(d >= 0 && d <= 1)) __builtin_trap();
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return;
    cli_json_str(m, s);
    fclose(m);
    if (len < 2 || buf[0] != '"' || buf[len - 1] != '"') __builtin_trap();
    for (size_t i = 1; i + 1 < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c < 0x20 || c == 0x7f) __builtin_trap();
        if (c == '\\') i++;                               /* escape and its character */
        else if (c == '"') __builtin_trap();              /* unescaped quote inside */
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    if (!copy) return 0;
    size_t n = 0;
    for (size_t i = 0; i < size; i++)
        if (data[i] != '/') copy[n++] = (char)data[i];
    copy[n] = '\0';
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = (char *)"loom";
    for (size_t i = 0; i < n && argc <= MAX_ARGS;) {   /* NUL-separated arguments */
        argv[argc++] = copy + i;
        i += strlen(copy + i) + 1;
    }
    argv[argc] = NULL;
    for (int i = 1; i < argc; i++) check_helpers(argv[i]);
    int rc = loom_cli_main(argc, argv);
    if (rc != EXIT_OK && rc != EXIT_FAILED && rc != EXIT_USAGE) __builtin_trap();
    fflush(stdout);
    free(copy);
    return 0;
}
