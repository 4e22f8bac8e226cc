/* loom speak: text → sentences (loom_speech_pieces) → audio codes of each (guided), joined →
 * audio codec → WAV. Uses only include/loom.h. */
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
           "Says TEXT: sentence by sentence, each written as its model's speech was transcribed\n"
           "(lowercase words, numbers in words, no punctuation), the model writes audio codes (chat\n"
           "turn \"Say: SENTENCE\") until it closes the clip or --seconds is reached; the codes of\n"
           "all sentences, joined, are rendered by the audio codec as one 16-bit mono WAV.\n\n");
    media_help_common();
    printf("      --seconds S        longest clip of one sentence (default 10)\n"
           "      --verbatim         say TEXT as given, in one clip (no sentences, no normalising)\n"
           "      --codec PATH       audio codec (default: MODEL's <stem>-audiocodec.gguf)\n");
}

/* Longest sentence said in one clip, in characters: loom-tiny's longest training sentences
 * (about 150 characters at 165 words a minute) fill its 10 s. */
#define SPEAK_PIECE_CHARS 150

static int speak_option(media_job *j, const char *opt, const char *val, int *i)
{
    if (!strcmp(opt, "--verbatim")) { j->verbatim = 1; return 1; }
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

/* Say each piece (the prompt itself when there are none: --verbatim) with the job's seed and
 * join their codes into j->codes. */
static int speak_pieces(media_job *j, char **pieces, size_t n_pieces, loom_audio_codec *ac)
{
    if (!n_pieces) return media_generate_best(j, read_speech, ac);
    const char *prompt = j->prompt;
    const uint64_t seed = j->p.seed;
    int32_t *all = NULL;
    int64_t n_all = 0;
    double seconds = 0, logprob = 0;
    int st = EXIT_OK;
    for (size_t k = 0; st == EXIT_OK && k < n_pieces; k++) {
        j->prompt = pieces[k];
        j->p.seed = seed;
        if ((st = media_generate_best(j, read_speech, ac)) != EXIT_OK) break;
        int32_t *t = realloc(all, (size_t)(n_all + j->n_codes) * sizeof *t);
        if (!t) { cli_error("speak: out of memory"); st = EXIT_FAILED; break; }
        all = t;
        memcpy(all + n_all, j->codes, (size_t)j->n_codes * sizeof *all);
        n_all += j->n_codes;
        seconds += j->gen_seconds;
        logprob += j->logprob;
    }
    j->prompt = prompt;
    j->p.seed = seed;
    free(j->codes);
    j->codes = all;
    j->n_codes = st == EXIT_OK ? n_all : 0;
    j->gen_seconds = seconds;
    j->logprob = logprob;
    j->pieces = (long long)n_pieces;
    return st;
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
    char **pieces = NULL;
    size_t n_pieces = 0;
    if (st == EXIT_OK && !j.verbatim && loom_speech_pieces(j.prompt, SPEAK_PIECE_CHARS, &pieces, &n_pieces, err, sizeof err) < 0) {
        cli_error("speak: %s", err);
        st = EXIT_USAGE;
    }
    if (st == EXIT_OK) {
        const double n = ceil(j.seconds * loom_audio_codec_codes_per_second(ac));
        j.p.max_audio_codes = n < 1 ? 1 : (int32_t)n;
        st = speak_pieces(&j, pieces, n_pieces, ac);
    }
    loom_speech_pieces_free(&pieces, n_pieces);
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
