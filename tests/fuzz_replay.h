/*
 * Replays fuzz inputs through a fuzz target's entry point inside an ordinary test, so every
 * build (gcc included, no libFuzzer) runs them, under ASan+UBSan in `scripts/test --sanitize`:
 * the target's seed corpus fuzz/corpus/<name>/ and its crash regressions
 * tests/data/fuzz/<name>/ (inputs that once crashed, kept after the fix). A test file is
 *
 *     #include "fuzz/fuzz_<name>.c"
 *     #include "tests/fuzz_replay.h"
 *     FUZZ_REPLAY_MAIN("<name>")        // FUZZ_REPLAY_MAIN_INIT if it has LLVMFuzzerInitialize
 *
 * A harness check that fails traps (the test dies with the input's name printed first).
 * Results go to stderr: some targets discard stdout.
 */
#ifndef LOOM_TESTS_FUZZ_REPLAY_H
#define LOOM_TESTS_FUZZ_REPLAY_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct replay_input {
    char     name[300];
    uint8_t *data;
    size_t   size;
} replay_input;

/* Append every file of dir (readdir order; dot files, README and MANIFEST skipped). */
static int replay_read_dir(const char *dir, replay_input **in, int *n)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "README") || !strcmp(e->d_name, "MANIFEST")) continue;
        replay_input r = {0};
        snprintf(r.name, sizeof r.name, "%s/%s", dir, e->d_name);
        FILE *f = fopen(r.name, "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        r.size = len > 0 ? (size_t)len : 0;
        r.data = malloc(r.size ? r.size : 1);
        int ok = r.data && fread(r.data, 1, r.size, f) == r.size;
        fclose(f);
        replay_input *grown = ok ? realloc(*in, (size_t)(*n + 1) * sizeof **in) : NULL;
        if (!grown) { free(r.data); continue; }
        *in = grown;
        (*in)[(*n)++] = r;
    }
    closedir(d);
    return 0;
}

static int replay_main(const char *name, int (*init)(int *, char ***))
{
    char seeds[256], crashes[256];
    snprintf(seeds, sizeof seeds, "../fuzz/corpus/%s", name);
    snprintf(crashes, sizeof crashes, "data/fuzz/%s", name);
    replay_input *in = NULL;
    int n = 0;
    replay_read_dir(seeds, &in, &n);
    const int n_seeds = n;
    replay_read_dir(crashes, &in, &n);   /* read everything first: init may chdir */
    if (init) {
        int argc = 1;
        char *args[] = {(char *)"replay", NULL}, **argv = args;
        init(&argc, &argv);
    }
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "%s\n", in[i].name);
        LLVMFuzzerTestOneInput(in[i].data, in[i].size);
        free(in[i].data);
    }
    free(in);
    fprintf(stderr, "replayed %d seeds and %d crash regressions through fuzz_%s\n", n_seeds, n - n_seeds, name);
    return n_seeds > 0 ? 0 : 1;   /* an empty seed corpus is a broken checkout */
}

#define FUZZ_REPLAY_MAIN(name)      int main(void) { return replay_main(name, NULL); }
#define FUZZ_REPLAY_MAIN_INIT(name) int main(void) { return replay_main(name, LLVMFuzzerInitialize); }

#endif
