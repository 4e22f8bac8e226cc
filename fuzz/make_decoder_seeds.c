/* Writes the seed corpus of fuzz_decoder into DIR: the smallest synthetic deepseek2 models
 * (lib/core/decoder_synth.c) in each layout the loader knows (MLA split / legacy attn_kv_b,
 * q_lora or not, tied head, gpt2 tokenizer or SPM vocab, F32/F16/BF16/Q8_0, softmax /
 * sigmoid / sqrt-softplus gating, YaRN) plus broken copies (a key or tensor missing, a
 * tensor with the wrong shape). The malformed-GGUF seeds come from tools/make_bad_gguf.py
 * (tests/data/gguf_bad). Deterministic; regenerate and commit:
 *   build-fuzz/fuzz/make_decoder_seeds fuzz/corpus/decoder */
#include <stdio.h>

#include "lib/core/decoder_synth.h"
#include "loom.h"

/* Every width but the rope's (Q8_0 rows need multiples of 32). */
static void set_width(lm_synth_params *p, int w)
{
    p->n_embd = p->q_lora = p->kv_lora = p->n_nope = p->n_v = p->n_ff = p->n_ff_exp = w;
}

static lm_synth_params small(void)
{
    lm_synth_params p = lm_synth_tiny_params();
    p.n_vocab = 268;
    p.vocab = LM_SYNTH_VOCAB_GPT2;
    p.n_layer = 2;
    p.n_head = 2;
    p.n_rope = 8;
    set_width(&p, 16);
    p.n_expert = 4;
    p.n_expert_used = 2;
    p.n_group = 2;
    p.n_group_used = 1;
    p.n_ctx_train = 64;
    p.type = LOOM_TYPE_F16;
    return p;
}

static int n_written, n_failed;

static void put(const char *dir, const char *name, const lm_synth_params *p, const char *skip_key,
                const char *skip_tensor, const char *bad_tensor)
{
    char path[512];
    lm_error e = {0};
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    if (lm_synth_write_broken(p, path, skip_key, skip_tensor, bad_tensor, &e) == 0) {
        n_written++;
    } else {
        fprintf(stderr, "%s: %s\n", name, e.msg);
        n_failed++;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_decoder_seeds DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    lm_synth_params p = small();
    put(dir, "split-sigmoid-f16-gpt2", &p, NULL, NULL, NULL);
    p.type = LOOM_TYPE_Q8_0;
    set_width(&p, 32);
    put(dir, "split-sigmoid-q8_0", &p, NULL, NULL, NULL);
    p = small();
    p.type = LOOM_TYPE_BF16;
    p.gating = 4;
    p.q_lora = 0;
    p.tied = 1;
    put(dir, "split-sqrtsp-bf16-tied-noqlora", &p, NULL, NULL, NULL);
    p = small();
    p.type = LOOM_TYPE_F32;
    p.vocab = LM_SYNTH_VOCAB_SPM;
    p.n_vocab = 259;
    p.mla_split = 0;
    p.gating = 1;
    p.n_group = 1;
    p.n_group_used = 1;
    p.yarn = 0;
    p.exp_probs_b = 0;
    p.n_expert_shared = 0;
    p.n_rope = 4;
    set_width(&p, 8);
    put(dir, "legacy-softmax-f32-spm", &p, NULL, NULL, NULL);
    p = small();
    put(dir, "missing-key-expert-count", &p, "deepseek2.expert_count", NULL, NULL);
    put(dir, "missing-key-architecture", &p, "general.architecture", NULL, NULL);
    put(dir, "missing-tensor-k-b", &p, NULL, "blk.1.attn_k_b.weight", NULL);
    put(dir, "bad-shape-gate-exps", &p, NULL, NULL, "blk.1.ffn_gate_exps.weight");
    put(dir, "bad-shape-token-embd", &p, NULL, NULL, "token_embd.weight");
    printf("make_decoder_seeds: %d files written to %s, %d failed\n", n_written, dir, n_failed);
    return n_failed != 0;
}
