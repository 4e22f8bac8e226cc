/* loom — the command-line front end. Uses only include/loom.h. See docs/CLI.md. */
#include <stdio.h>
#include <string.h>

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
int  cmd_generate(int argc, char **argv);   /* cmd_generate.c */
void help_generate(void);

static const command COMMANDS[] = {
    {"version", "print loom's version and the CPU features it uses", cmd_version, help_version},
    {"generate", "continue a prompt with a decoder model (streams text)", cmd_generate, help_generate},
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

static void help_version(void) { printf("usage: loom version\n\nPrints the library version and the CPU features the kernels use.\n"); }

static int cmd_version(int argc, char **argv)
{
    if (argc > 1) {
        cli_error("version: unexpected argument '%s'", argv[1]);
        return EXIT_USAGE;
    }
    printf("loom %s\ncpus: %d\nfeatures: %s\n", loom_version(), loom_cpu_count(), loom_cpu_features());
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
