/* A model over one of the decoder's dimension limits is refused with LOOM_ERR_LIMIT and a
 * message naming the key, its value and the limit (docs/SECURITY.md, "Limits"). The files
 * are a small synthetic model (fuzz/corpus/decoder) with one u32 key patched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loom.h"
#include "tests/check.h"
#include "tests/read_file.h"

#define SEED "../fuzz/corpus/decoder/split-sigmoid-f16-gpt2.gguf"

/* Load SEED with the u32 value of `key` set to v; the loader's message in err. */
static int load_patched(const char *key, uint32_t v, char *err, size_t err_size)
{
    size_t n = 0, kl = strlen(key);
    unsigned char *b = read_file(SEED, &n);
    unsigned char *k = NULL;
    for (size_t i = 8; b && i + kl + 8 <= n && !k; i++)   /* u64 length, key, u32 type 4 (u32) */
        if (!memcmp(b + i, key, kl) && b[i - 8] == kl && b[i + kl] == 4) k = b + i + kl + 4;
    CHECK(k != NULL, "key %s not found in %s", key, SEED);
    if (!k) { free(b); return 0; }
    memcpy(k, &v, 4);
    char path[256];
    snprintf(path, sizeof path, "%s/loom-limits-%d.gguf", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(b, 1, n, f); fclose(f); }
    free(b);
    loom_model *m = NULL;
    int rc = loom_model_load(path, loom_model_default_params(), &m, err, err_size);
    loom_model_free(&m);
    unlink(path);
    return rc;
}

int main(void)
{
    char err[256];
    int rc = load_patched("deepseek2.block_count", 2, err, sizeof err);
    CHECK(rc == 0, "unpatched seed loads: %s", err);

    rc = load_patched("deepseek2.block_count", 5000, err, sizeof err);
    CHECK(rc == LOOM_ERR_LIMIT && strstr(err, "'deepseek2.block_count' is 5000, more than loom's limit of 4096"),
          "block_count: rc %d '%s'", rc, err);
    rc = load_patched("deepseek2.expert_count", 70000, err, sizeof err);
    CHECK(rc == LOOM_ERR_LIMIT && strstr(err, "'deepseek2.expert_count' is 70000, more than loom's limit of 65536"),
          "expert_count: rc %d '%s'", rc, err);
    rc = load_patched("deepseek2.embedding_length", 5u << 20, err, sizeof err);
    CHECK(rc == LOOM_ERR_LIMIT && strstr(err, "embedding_length' is 5242880") && strstr(err, "4194304"),
          "embedding_length: rc %d '%s'", rc, err);
    return finish();
}
