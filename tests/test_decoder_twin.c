/*
 * loom's C decoder against its PyTorch twin (tools/loompy/decoder.py), the model loom-tiny
 * is trained with: random weights in loom-tiny's layout (split MLA, sigmoid routing with a
 * selection bias, a leading dense layer, a shared expert), logits at every position.
 * Fixtures: tools/parity/make_twin_fixtures.py. Tolerances: F32 max |Δ| <= 1e-3 · std;
 * F16 (loom rounds activations to f16, PyTorch does not) max |Δ| <= 3e-2 · std and the
 * same argmax at every position.
 */
#include <math.h>

#include "loom.h"
#include "tests/decoder_test_util.h"

static void check(const char *name, float tol)
{
    char path[256], err[512];
    snprintf(path, sizeof path, "data/twin/decoder-%s.bin", name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "%s: missing", path);
    if (!f) return;
    char magic[4];
    uint32_t n_pos = 0, n_vocab = 0;
    int ok = fread(magic, 4, 1, f) == 1 && !memcmp(magic, "LMTW", 4) && fread(&n_pos, 4, 1, f) == 1 &&
             fread(&n_vocab, 4, 1, f) == 1 && n_pos > 0 && n_pos <= 4096 && n_vocab > 0 && n_vocab <= 65536;
    CHECK(ok, "%s: bad header", path);
    if (!ok) { fclose(f); return; }
    int32_t *tok = malloc(n_pos * sizeof *tok);
    float *want = malloc((size_t)n_pos * n_vocab * sizeof *want), *got = malloc((size_t)n_pos * n_vocab * sizeof *got);
    ok = fread(tok, sizeof *tok, n_pos, f) == n_pos && fread(want, sizeof *want, (size_t)n_pos * n_vocab, f) == (size_t)n_pos * n_vocab;
    fclose(f);
    CHECK(ok, "%s: truncated", path);

    snprintf(path, sizeof path, "data/twin/decoder-%s.gguf", name);
    loom_model *m = NULL;
    loom_session *s = NULL;
    int rc = loom_model_load(path, loom_model_default_params(), &m, err, sizeof err);
    CHECK(rc == 0, "%s: load: %s", path, err);
    if (rc == 0) {
        CHECK(loom_model_n_vocab(m) == (int32_t)n_vocab, "%s: n_vocab %d", name, loom_model_n_vocab(m));
        loom_session_params sp = loom_session_default_params();
        sp.n_ctx = 128;
        sp.n_threads = 2;
        rc = loom_session_create(m, sp, &s, err, sizeof err);
        CHECK(rc == 0, "%s: session: %s", name, err);
    }
    if (ok && s && loom_session_prompt(s, tok, n_pos, got) == 0) {
        double mean = 0, var = 0, maxd = 0;
        const size_t n = (size_t)n_pos * n_vocab;
        for (size_t i = 0; i < n; i++) mean += want[i];
        mean /= (double)n;
        for (size_t i = 0; i < n; i++) var += (want[i] - mean) * (want[i] - mean);
        const double sd = sqrt(var / (double)n);
        int argmax_same = 0;
        for (uint32_t t = 0; t < n_pos; t++) {
            int a = 0, b = 0;
            for (uint32_t v = 0; v < n_vocab; v++) {
                const size_t i = (size_t)t * n_vocab + v;
                maxd = fmax(maxd, fabs((double)got[i] - want[i]));
                if (want[i] > want[(size_t)t * n_vocab + a]) a = (int)v;
                if (got[i] > got[(size_t)t * n_vocab + b]) b = (int)v;
            }
            argmax_same += a == b;
        }
        printf("%s: max |d| %.3g (%.3g std), argmax agrees at %d/%u positions\n", name, maxd, maxd / sd,
               argmax_same, n_pos);
        CHECK(maxd <= tol * sd, "%s: max |d| %.3g > %.3g", name, maxd, tol * sd);
        CHECK(argmax_same == (int)n_pos, "%s: argmax differs at %u positions", name, n_pos - argmax_same);
    } else {
        CHECK(0, "%s: prompt failed: %s", name, s ? loom_session_error(s) : "no session");
    }
    loom_session_free(&s);
    loom_model_free(&m);
    free(tok);
    free(want);
    free(got);
}

int main(void)
{
    (void)tmp_model_path;
    check("f32", 1e-3f);
    check("f16", 3e-2f);
    return finish();
}
