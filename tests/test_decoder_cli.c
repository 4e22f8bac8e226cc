/* `loom generate` end to end on a tiny random-weight model (the binary comes from $LOOM_BIN). */
#include <sys/wait.h>
#include "lib/core/decoder_synth.h"
#include "tests/decoder_test_util.h"

/* Run `cmd`, capture stdout into buf; returns the exit status. */
static int run(const char *cmd, char *buf, size_t size)
{
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(buf, 1, size - 1, p);
    buf[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void)
{
    const char *bin = getenv("LOOM_BIN");
    if (!bin) { printf("LOOM_BIN not set\n0 passed, 1 failed\n"); return 1; }
    char path[256], cmd[1024], out[8192];
    tmp_model_path(path, sizeof path, "cli");
    lm_synth_params p = lm_synth_tiny_params();
    lm_error e = {0};
    CHECK(lm_synth_write(&p, path, &e) == 0, "write: %s", e.msg);

    snprintf(cmd, sizeof cmd, "%s generate -m %s --tokens 1,17,300,42 -n 6 --json 2>&1", bin, path);
    CHECK(run(cmd, out, sizeof out) == 0, "generate --json failed: %s", out);
    CHECK(strstr(out, "\"prompt_tokens\": [1, 17, 300, 42]") != NULL, "prompt tokens: %s", out);
    CHECK(strstr(out, "\"n_generated\": 6") != NULL, "6 tokens generated: %s", out);
    CHECK(strstr(out, "\"decode_tok_s\":") && strstr(out, "\"prompt_tok_s\":"), "timings: %s", out);
    /* greedy is deterministic: the same tokens twice */
    char again[8192];
    run(cmd, again, sizeof again);
    const char *a = strstr(out, "\"tokens\":"), *b = strstr(again, "\"tokens\":");
    CHECK(a && b && !strncmp(a, b, (size_t)(strchr(a, ']') - a)), "greedy output differs between runs");

    snprintf(cmd, sizeof cmd, "%s generate -m %s -p hello -n 2 2>&1", bin, path);
    CHECK(run(cmd, out, sizeof out) == 1 && strstr(out, "tokenizer"), "text prompt without a tokenizer: %s", out);
    snprintf(cmd, sizeof cmd, "%s generate -m %s --tokens 1,2 -n 100 --ctx 8 2>&1", bin, path);
    CHECK(run(cmd, out, sizeof out) == 1 && strstr(out, "context full"), "context overflow: %s", out);
    snprintf(cmd, sizeof cmd, "%s generate -m %s --tokens 1,x 2>&1", bin, path);
    CHECK(run(cmd, out, sizeof out) == 2, "bad --tokens is a usage error: %s", out);
    snprintf(cmd, sizeof cmd, "%s generate -m /nonexistent.gguf --tokens 1 2>&1", bin);
    CHECK(run(cmd, out, sizeof out) == 1 && strstr(out, "nonexistent"), "missing model: %s", out);
    snprintf(cmd, sizeof cmd, "%s generate --help", bin);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "--temperature"), "help: %s", out);
    unlink(path);

    /* a gpt2 (byte-level BPE) vocabulary: text prompts work, merges apply, BOS is prepended */
    p.vocab = LM_SYNTH_VOCAB_GPT2;
    CHECK(lm_synth_write(&p, path, &e) == 0, "write gpt2: %s", e.msg);
    snprintf(cmd, sizeof cmd, "%s generate -m %s -p 'the theater' -n 3 --json 2>&1", bin, path);
    CHECK(run(cmd, out, sizeof out) == 0, "generate -p: %s", out);
    /* BOS 266, "the" 264 (t h → th, th e → the), " the" = Ġ 32 + the 264 (t h ranks before Ġ t),
     * "a" 97, "t" 116, "er" 260 */
    CHECK(strstr(out, "\"prompt_tokens\": [266, 264, 32, 264, 97, 116, 260]") != NULL, "gpt2 tokens: %s", out);
    CHECK(strstr(out, "\"n_generated\": 3") != NULL, "3 generated: %s", out);
    unlink(path);
    return finish();
}
