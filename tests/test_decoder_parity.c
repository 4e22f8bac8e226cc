/*
 * Decoder parity without npm: regenerate the tiny random-weight deepseek2 models
 * (tools/parity/parity_models.h, deterministic) and compare loom's logits at every position
 * with llama.cpp's, committed in data/decoder/ by `tools/parity/decoder --tiny
 * --write-fixtures tests/data/decoder`. Tolerances are the issue's: F32 max |Δ| <= 1e-3 ×
 * std(logits); F16 mean KL <= 1e-4; Q8_0 mean KL <= 1e-3; top-1 agreement >= 99 %.
 * Perplexity: llama-perplexity's arithmetic on the committed llama.cpp logits (one chunk of
 * all positions, the second half scored) against loom_perplexity on the same tokens:
 * |Δ ln ppl| <= 1e-4 for F32 (the same computation), 1e-2 F16, 5e-2 Q8_0 (nats per token;
 * the logits' own differences, above, bound these: |Δ log p| <= 2·max|Δ logit|).
 */
#include "loom.h"
#include "tests/decoder_test_util.h"
#include "tools/parity/parity_models.h"

static float *read_fixture(const char *name, const parity_model *pm, int32_t *tok)
{
    char path[256];
    snprintf(path, sizeof path, "data/decoder/%s.bin", name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint32_t hdr[3];
    float *logits = NULL;
    if (fread(hdr, sizeof hdr, 1, f) == 1 && hdr[0] == 0x46504d4cu && hdr[1] == (uint32_t)pm->n_pos &&
        hdr[2] == (uint32_t)pm->p.n_vocab) {
        const size_t n = (size_t)pm->n_pos * (size_t)pm->p.n_vocab;
        logits = malloc(n * sizeof *logits);
        if (fread(tok, sizeof *tok, (size_t)pm->n_pos, f) != (size_t)pm->n_pos || fread(logits, sizeof *logits, n, f) != n) {
            free(logits);
            logits = NULL;
        }
    }
    fclose(f);
    return logits;
}

/* llama-perplexity's ln ppl of one chunk tok[0..n) from its logits [n][V]. */
static double peer_ln_ppl(const float *logits, const int32_t *tok, int n, int V)
{
    double nll = 0;
    for (int j = n / 2; j < n - 1; j++) {
        const float *l = logits + (size_t)j * V;
        float mx = l[0];
        for (int i = 1; i < V; i++) mx = l[i] > mx ? l[i] : mx;
        double sum = 0;
        for (int i = 0; i < V; i++) sum += expf(l[i] - mx);
        nll -= (double)(l[tok[j + 1]] - mx) - log(sum);
    }
    return nll / (n - 1 - n / 2);
}

static void check_perplexity(const parity_model *pm, loom_session *s, const float *peer, const int32_t *tok)
{
    loom_perplexity_params pp = loom_perplexity_default_params();
    pp.n_ctx = pm->n_pos;
    pp.add_bos = 0;   /* the fixture's tokens as they are */
    loom_perplexity_result r;
    const int rc = loom_perplexity(s, tok, pm->n_pos, pp, &r);
    CHECK(rc == 0 && r.n_chunks == 1 && r.n_scored == pm->n_pos - 1 - pm->n_pos / 2, "%s: perplexity: %s", pm->name,
          loom_session_error(s));
    const double want = peer_ln_ppl(peer, tok, pm->n_pos, pm->p.n_vocab);
    const double tol = pm->p.type == LOOM_TYPE_F32 ? 1e-4 : pm->p.type == LOOM_TYPE_F16 ? 1e-2 : 5e-2;
    CHECK(rc == 0 && fabs(log(r.ppl) - want) <= tol, "%s: ln ppl %.6f, llama.cpp's %.6f (tolerance %g)", pm->name,
          log(r.ppl), want, tol);
}

static void check_model(const parity_model *pm, int n_threads)
{
    char path[256], err[512], why[256];
    tmp_model_path(path, sizeof path, pm->name);
    lm_error e = {0};
    CHECK(lm_synth_write(&pm->p, path, &e) == 0, "%s: write: %s", pm->name, e.msg);
    int32_t tok[64], want[64];
    parity_tokens(pm, want);
    float *peer = read_fixture(pm->name, pm, tok);
    CHECK(peer != NULL, "%s: fixture data/decoder/%s.bin missing or malformed", pm->name, pm->name);
    if (!peer) { unlink(path); return; }
    CHECK(!memcmp(tok, want, (size_t)pm->n_pos * sizeof *tok), "%s: fixture tokens differ from parity_tokens()", pm->name);

    loom_model *m = NULL;
    loom_session *s = NULL;
    int rc = loom_model_load(path, loom_model_default_params(), &m, err, sizeof err);
    CHECK(rc == 0, "%s: load: %s", pm->name, err);
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = pm->n_pos;
    sp.n_threads = n_threads;
    if (rc == 0) CHECK((rc = loom_session_create(m, sp, &s, err, sizeof err)) == 0, "%s: session: %s", pm->name, err);
    float *mine = malloc((size_t)pm->n_pos * pm->p.n_vocab * sizeof *mine);
    if (rc == 0) CHECK((rc = loom_session_prompt(s, want, pm->n_pos, mine)) == 0, "%s: prompt: %s", pm->name, loom_session_error(s));
    if (rc == 0) {
        parity_stats st = parity_compare(peer, mine, pm->n_pos, pm->p.n_vocab);
        int ok = parity_ok(pm->p.type, &st, why, sizeof why);
        CHECK(ok, "%s (%d threads): %s", pm->name, n_threads, why);
        printf("%-26s %d thr  %s\n", pm->name, n_threads, why);
        check_perplexity(pm, s, peer, want);
    }
    free(mine);
    free(peer);
    loom_session_free(&s);
    loom_model_free(&m);
    unlink(path);
}

int main(void)
{
    parity_model models[16];
    const int n = parity_models(models, 16);
    int tiny = 0;
    for (int i = 0; i < n; i++) {
        if (!models[i].tiny) continue;
        tiny++;
        check_model(&models[i], 1);
        check_model(&models[i], 2);
    }
    CHECK(tiny >= 6, "expected the tiny parity models, found %d", tiny);
    return finish();
}
