/*
 * simple_caption — the smallest complete loom program: caption a picture with a unified model,
 * through include/loom.h only. Read it top to bottom; every loom call is one step of the job.
 *
 *     simple_caption MODEL.gguf MODEL-mmproj.gguf IMAGE [QUESTION]
 *     simple_caption models/loom-tiny.gguf models/loom-tiny-mmproj.gguf examples/media/scene1.png
 *
 * It prints what `loom caption --whole` prints for the same picture (one greedy answer;
 * tests/test_example_simple_caption.sh checks that; `loom caption` on a model with caption
 * regions asks region by region instead: loom_caption_compose in loom.h). Built as build/simple_caption; after
 * `cmake --install`: cc simple_caption.c $(pkg-config --cflags --libs loom)
 */
#include <stdio.h>

#include "loom.h"

/* Called with each generated token's text as it comes. */
static int print_piece(int32_t token, const char *piece, size_t len, void *user_data)
{
    (void)token;
    (void)user_data;
    fwrite(piece, 1, len, stdout);
    return 0;   /* nonzero would stop generation */
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s MODEL.gguf MODEL-mmproj.gguf IMAGE [QUESTION]\n", argv[0]);
        return 2;
    }
    char err[512];
    loom_model *model = NULL;       /* the decoder: weights and tokenizer, read-only */
    loom_mmproj *mp = NULL;         /* the media encoders: picture -> embedding rows  */
    loom_session *s = NULL;         /* one conversation's state: the K/V cache        */
    loom_prompt *p = NULL;          /* control tokens, text and media rows, in order  */
    loom_image img = {0};
    int rc = loom_model_load(argv[1], loom_model_default_params(), &model, err, sizeof err);
    if (rc == 0) rc = loom_mmproj_load(argv[2], loom_mmproj_default_params(), &mp, err, sizeof err);
    if (rc == 0) rc = loom_session_create(model, loom_session_default_params(), &s, err, sizeof err);
    if (rc == 0) rc = loom_image_load(argv[3], loom_image_default_params(), &img, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err);
        goto done;
    }

    /* The user's turn: the picture, then the question (docs/FORMAT.md, "Unified model"). */
    rc = loom_prompt_create(model, &p);
    if (rc == 0) rc = loom_prompt_add_special(p, "<|bos|>");
    if (rc == 0) rc = loom_prompt_add_special(p, "<|user|>");
    if (rc == 0) rc = loom_prompt_add_image(p, mp, &img);
    if (rc == 0) rc = loom_prompt_add_text(p, argc == 5 ? argv[4] : "Describe the image.");
    if (rc == 0) rc = loom_prompt_add_special(p, "<|end|>");
    if (rc == 0) rc = loom_prompt_add_special(p, "<|assistant|>");
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", argv[3], p ? loom_prompt_error(p) : loom_status_str(rc));
        goto done;
    }

    /* The model's answer: read the prompt, then generate until it ends its turn. */
    loom_generate_params gp = loom_generate_default_params();
    gp.on_token = print_piece;
    rc = loom_session_append_prompt(s, p);
    if (rc == 0) {
        int64_t n = loom_session_generate(s, NULL, 0, gp, NULL);
        rc = n < 0 ? (int)n : 0;
    }
    if (rc < 0) fprintf(stderr, "%s\n", loom_session_error(s));
    else printf("\n");

done:
    loom_image_free(&img);
    loom_prompt_free(&p);
    loom_session_free(&s);
    loom_mmproj_free(&mp);
    loom_model_free(&model);
    return rc < 0 ? 1 : 0;
}
