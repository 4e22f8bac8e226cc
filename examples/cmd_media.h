/* Shared by `loom imagine`, `loom speak` and `loom animate`: options, model and codec
 * discovery, guided generation with a progress bar and Ctrl-C. Uses only include/loom.h. */
#ifndef LOOM_CMD_MEDIA_H
#define LOOM_CMD_MEDIA_H

#include "cli_util.h"
#include "loom.h"

typedef struct media_job {
    const char *cmd;          /* "imagine", …                                            */
    int         kind;         /* loom_media_kind                                         */
    cli_common  c;
    const char *prompt, *out;
    const char *codec;        /* --vq / --codec PATH, else <stem><codec_suffix>          */
    const char *codec_suffix; /* "-vq.gguf", "-audiocodec.gguf"                          */
    char        codec_path[1024];
    loom_media_params p;
    double      seconds;      /* speak: --seconds (each piece's)                          */
    int         verbatim;     /* speak: --verbatim, the text as given in one piece        */
    long long   pieces;       /* speak: sentences said one by one (0: not speak)          */
    long long   frames, size; /* animate: --frames, --size                               */
    double      fps;          /* animate: --fps                                          */
    long long   best_of;      /* --best-of N: candidates to rank (1: no ranking)          */
    const char *mmproj;       /* --mmproj PATH, else <stem>-mmproj.gguf (ranking reads it)*/
    /* filled by media_load / media_generate */
    loom_model *m;
    loom_media_vocab v;
    int32_t    *codes;        /* [n_codes], owned                                        */
    int64_t     n_codes;
    double      gen_seconds;  /* all candidates, their reading included                  */
    double      logprob;      /* best-of: the kept candidate's log p(prompt | its media)   */
} media_job;

/* Parse argv into j (j->cmd, kind, codec_suffix set by the caller, the rest zeroed).
 * `extra` handles command-specific options: returns 1 consumed (advancing *i), 0 unknown,
 * -1 bad value (message printed). Returns 0, or EXIT_USAGE. */
typedef int (*media_option_fn)(media_job *j, const char *opt, const char *val, int *i);
int media_parse(media_job *j, int argc, char **argv, media_option_fn extra);

/* Load the model, check it can make the medium and resolve the codec path into
 * j->codec_path (the command opens the codec before generating, so a bad codec fails fast).
 * Returns EXIT_OK or EXIT_FAILED (message printed). Ctrl-C is caught from here on. */
int media_load(media_job *j);

/* Check a codec's codebook against the model's code range ("image" / "audio"). */
int media_check_codebook(const media_job *j, const char *what, int codebook, int32_t model_count);

/* The codecs' settings for this job: its thread count (-t). */
loom_codec_params media_codec_params(const media_job *j);

/* Open the VQ codec at j->codec_path into *vq and check it against the model (codebook,
 * grid). Returns EXIT_OK or EXIT_FAILED (message printed; *vq may need freeing). */
int media_open_vq(const media_job *j, loom_vq **vq);

/* Run the (guided) generation into j->codes with a progress bar. Returns EXIT_OK,
 * EXIT_FAILED or EXIT_ABORTED (message printed). */
int media_generate(media_job *j);

/* Best-of-N: how a command hands a candidate (j->codes) to the media encoders: render it
 * and add it to p (loom_prompt_add_image / _audio). ctx is the command's codec. Returns 0
 * or a negative status (message printed). */
typedef int (*media_read_fn)(const media_job *j, loom_mmproj *mp, loom_prompt *p, void *ctx);

/* media_generate, or with --best-of N > 1: N candidates with seeds seed, seed+1, …, each
 * read back by the model (its caption / transcript turn, "Describe the image." etc.) and
 * scored by log p(prompt | candidate) (loom_session_score); j->codes and j->p.seed end as
 * the best candidate's, so `--seed <that seed>` alone makes it again. */
int media_generate_best(media_job *j, media_read_fn read, void *ctx);

/* EXIT_ABORTED (message printed) once Ctrl-C was pressed during the job, else EXIT_OK:
 * asked right before writing, so an interrupted job leaves no file. */
int media_check_interrupt(const media_job *j);

/* Print the "wrote …" line (or the --json summary) and return EXIT_OK. */
int media_report(const media_job *j, const char *what);

/* Release what media_load / media_generate allocated and restore Ctrl-C's default. */
void media_done(media_job *j);

/* Help lines every media command shares. */
void media_help_common(void);

#endif
