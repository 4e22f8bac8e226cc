/* loom imagine: text → image codes (guided) → VQ decoder → PNG. Uses only include/loom.h. */
#include <stdio.h>
#include <string.h>

#include "cmd_media.h"

void help_imagine(void);
int  cmd_imagine(int argc, char **argv);

void help_imagine(void)
{
    printf("usage: loom imagine -m MODEL -p PROMPT -o OUT.png [options]\n\n"
           "Draws PROMPT: the model writes grid² image codes (chat turn \"Draw: PROMPT\"), the VQ\n"
           "codec renders them, and the PNG records model, prompt, seed, cfg, temperature, top-k,\n"
           "best-of and loom's version in tEXt chunks (the seed alone, with --best-of 1, makes the\n"
           "same picture again). --best-of N captions each candidate with the model and keeps the\n"
           "one whose caption is most likely the prompt.\n\n");
    media_help_common();
    printf("      --vq PATH          VQ image codec (default: MODEL's <stem>-vq.gguf)\n");
}

static int imagine_option(media_job *j, const char *opt, const char *val, int *i)
{
    if (strcmp(opt, "--vq")) return 0;
    if (!val) { cli_error("imagine: --vq: missing value"); return -1; }
    j->codec = val;
    ++*i;
    return 1;
}

/* --best-of: a candidate as the caption turn sees it. */
static int read_image(const media_job *j, loom_mmproj *mp, loom_prompt *p, void *vq)
{
    loom_image img = {0};
    int rc = loom_vq_decode_image(vq, j->codes, &img);
    if (rc < 0) cli_error("imagine: %s", loom_vq_error(vq));
    else if ((rc = loom_prompt_add_image(p, mp, &img)) < 0) cli_error("imagine: --best-of: %s", loom_prompt_error(p));
    loom_image_free(&img);
    return rc;
}

int cmd_imagine(int argc, char **argv)
{
    media_job j = {.cmd = "imagine", .kind = LOOM_MEDIA_IMAGE, .codec_suffix = "-vq.gguf"};
    int st = media_parse(&j, argc, argv, imagine_option);
    if (st != EXIT_OK) return st;
    char err[600];
    loom_vq *vq = NULL;
    loom_image img = {0};
    st = media_load(&j);
    if (st == EXIT_OK) st = media_open_vq(&j, &vq);
    if (st == EXIT_OK) st = media_generate_best(&j, read_image, vq);
    if (st == EXIT_OK && loom_vq_decode_image(vq, j.codes, &img) < 0) {
        cli_error("imagine: %s", loom_vq_error(vq));
        st = EXIT_FAILED;
    }
    if (st == EXIT_OK) st = media_check_interrupt(&j);
    if (st == EXIT_OK) {
        char seed[32], cfg[32], temp[32], top_k[32], best_of[32], software[64];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)j.p.seed);
        snprintf(cfg, sizeof cfg, "%g", j.p.cfg_scale);
        snprintf(temp, sizeof temp, "%g", j.p.temperature);
        snprintf(top_k, sizeof top_k, "%d", j.p.top_k);
        snprintf(best_of, sizeof best_of, "%lld", j.best_of > 1 ? j.best_of : 1);
        snprintf(software, sizeof software, "loom %s", loom_version());
        const char *text[] = {"Software", software, "model", j.c.model, "prompt", j.prompt, "seed", seed,
                              "cfg", cfg, "temperature", temp, "top-k", top_k, "best-of", best_of, NULL};
        if (loom_image_save_png(&img, j.out, text, err, sizeof err) < 0) {
            cli_error("imagine: %s", err);
            st = EXIT_FAILED;
        }
    }
    if (st == EXIT_OK) {
        char what[64];
        snprintf(what, sizeof what, "%d×%d PNG", img.width, img.height);
        st = media_report(&j, what);
    }
    loom_image_free(&img);
    loom_vq_free(&vq);
    media_done(&j);
    return st;
}
