/* The vocabulary's mirror (loom.mirror.token_pairs): tokens that trade places in an answer
 * about a picture or video mirrored left to right (" left" ↔ " right"). */
#include <stdlib.h>

#include "lib/core/error.h"
#include "lib/core/gguf.h"
#include "lib/model.h"

static const char *const K_PAIRS = "loom.mirror.token_pairs";

int lm_mirror_tokens_load(const lm_gguf *g, int32_t n_vocab, int32_t **out, lm_error *e)
{
    *out = NULL;
    if (lm_gguf_find_kv(g, K_PAIRS) < 0) return 0;
    const lm_gguf_array *a = NULL;
    int rc = lm_gguf_get_arr(g, K_PAIRS, &a, e);
    if (rc < 0) return rc;
    const uint64_t n = lm_gguf_arr_len(a);
    if (lm_gguf_arr_type(a) != LM_GGUF_I32 || n < 2 || n % 2 || n > (uint64_t)n_vocab)
        return lm_fail(e, LOOM_ERR_FORMAT, "model: %s must be pairs of int32 token ids (2..%d entries, even)", K_PAIRS,
                       n_vocab);
    const int32_t *pairs = lm_gguf_arr_data(a);
    int32_t *map = malloc((size_t)n_vocab * sizeof *map);
    if (!map) return lm_fail(e, LOOM_ERR_NO_MEMORY, "model: out of memory");
    for (int32_t t = 0; t < n_vocab; t++) map[t] = t;
    for (uint64_t i = 0; i < n; i += 2) {
        const int32_t x = pairs[i], y = pairs[i + 1];
        if (x < 0 || x >= n_vocab || y < 0 || y >= n_vocab || x == y || map[x] != x || map[y] != y) {
            free(map);
            return lm_fail(e, LOOM_ERR_FORMAT, "model: %s pair %llu (%d, %d): two different tokens in 0..%d, each in "
                           "one pair", K_PAIRS, (unsigned long long)(i / 2), x, y, n_vocab - 1);
        }
        map[x] = y;
        map[y] = x;
    }
    *out = map;
    return 0;
}

const int32_t *loom_model_mirror_tokens(const loom_model *m) { return m ? m->mirror_tokens : NULL; }
