/* loom speak: text → audio codes (guided) → audio codec → WAV. Uses only include/loom.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_media.h"

void help_speak(void);
int  cmd_speak(int argc, char **argv);

void help_speak(void)
{
    printf("usage: loom speak -m MODEL -p TEXT -o OUT.wav [options]\n\n"
           "Says TEXT: the model writes audio codes (chat turn \"Say: TEXT\") until it closes the\n"
           "clip or --seconds is reached, and the audio codec renders them as 16-bit mono WAV.\n\n");
    media_help_common();
    printf("      --seconds S        longest clip (default 10)\n"
           "      --codec PATH       audio codec (default: MODEL's <stem>-audiocodec.gguf)\n");
}

static int speak_option(media_job *j, const char *opt, const char *val, int *i)
{
    if (strcmp(opt, "--codec") && strcmp(opt, "--seconds")) return 0;
    if (!val) { cli_error("speak: %s: missing value", opt); return -1; }
    if (!strcmp(opt, "--codec")) j->codec = val;
    else if (cli_parse_float(opt, val, 0.04, 3600, &j->seconds) < 0) return -1;
    ++*i;
    return 1;
}

/* --best-of: a candidate as the transcription turn hears it. */
static int read_speech(const media_job *j, loom_mmproj *mp, loom_prompt *p, void *ac)
{
    const int64_t n = j->n_codes * loom_audio_codec_samples_per_code(ac);
    float *pcm = malloc((size_t)(n > 0 ? n : 1) * sizeof *pcm);
    int rc = pcm ? loom_audio_codec_decode(ac, j->codes, j->n_codes, pcm) : LOOM_ERR_NO_MEMORY;
    if (rc < 0) cli_error("speak: %s", pcm ? loom_audio_codec_error(ac) : "out of memory");
    else if ((rc = loom_prompt_add_audio(p, mp, pcm, n)) < 0) cli_error("speak: --best-of: %s", loom_prompt_error(p));
    free(pcm);
    return rc;
}

int cmd_speak(int argc, char **argv)
{
    media_job j = {.cmd = "speak", .kind = LOOM_MEDIA_AUDIO, .codec_suffix = "-audiocodec.gguf", .seconds = 10};
    int st = media_parse(&j, argc, argv, speak_option);
    if (st != EXIT_OK) return st;
    char err[600];
    loom_audio_codec *ac = NULL;
    float *pcm = NULL;
    st = media_load(&j);
    if (st == EXIT_OK && loom_audio_codec_open(j.codec_path, media_codec_params(&j), &ac, err, sizeof err) < 0) {
        cli_error("speak: audio codec: %s (give --codec PATH)", err);
        st = EXIT_FAILED;
    }
    if (st == EXIT_OK) st = media_check_codebook(&j, "audio", loom_audio_codec_codebook_size(ac), j.v.audio_count);
    if (st == EXIT_OK) {
        const double n = ceil(j.seconds * loom_audio_codec_codes_per_second(ac));
        j.p.max_audio_codes = n < 1 ? 1 : (int32_t)n;
        st = media_generate_best(&j, read_speech, ac);
    }
    const int64_t n_samples = j.n_codes * (ac ? loom_audio_codec_samples_per_code(ac) : 0);
    if (st == EXIT_OK && (!(pcm = malloc((size_t)n_samples * sizeof *pcm)) ||
                          loom_audio_codec_decode(ac, j.codes, j.n_codes, pcm) < 0)) {
        cli_error("speak: %s", pcm ? loom_audio_codec_error(ac) : "out of memory");
        st = EXIT_FAILED;
    }
    if (st == EXIT_OK) st = media_check_interrupt(&j);
    const int rate = ac ? loom_audio_codec_sample_rate(ac) : 0;
    if (st == EXIT_OK && loom_audio_save_wav(j.out, pcm, (size_t)n_samples, 1, rate, LOOM_WAV_PCM16, err, sizeof err) < 0) {
        cli_error("speak: %s", err);
        st = EXIT_FAILED;
    }
    if (st == EXIT_OK) {
        char what[64];
        snprintf(what, sizeof what, "%.2f s at %d Hz", (double)n_samples / rate, rate);
        st = media_report(&j, what);
    }
    free(pcm);
    loom_audio_codec_free(&ac);
    media_done(&j);
    return st;
}
