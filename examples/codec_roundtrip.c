/*
 * codec_roundtrip — turn media into the discrete tokens loom's decoder reads and writes,
 * and back: an image through the VQ image codec (64×64 → 16×16 codes → PNG) and speech
 * through the audio codec (16 kHz → 25 codes/s → WAV). Uses only include/loom.h.
 *
 *     codec_roundtrip VQ.gguf AUDIOCODEC.gguf IMAGE AUDIO OUT_DIR
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "loom.h"

static int image_roundtrip(const char *vq_path, const char *in, const char *out)
{
    char err[512];
    loom_vq *vq = NULL;
    loom_image img = {0}, rec = {0};
    int32_t *codes = NULL;
    int rc = loom_vq_open(vq_path, (loom_codec_params){0}, &vq, err, sizeof err);
    if (rc < 0) { fprintf(stderr, "%s\n", err); return rc; }
    rc = loom_image_load(in, loom_image_default_params(), &img, err, sizeof err);
    if (rc < 0) { fprintf(stderr, "%s\n", err); goto done; }
    int g = loom_vq_grid(vq);
    codes = malloc(sizeof *codes * (size_t)(g * g));
    if (!codes) { rc = LOOM_ERR_NO_MEMORY; goto done; }
    if ((rc = loom_vq_encode_image(vq, &img, codes)) < 0 || (rc = loom_vq_decode_image(vq, codes, &rec)) < 0) {
        fprintf(stderr, "%s\n", loom_vq_error(vq));
        goto done;
    }
    double se = 0;
    size_t n = (size_t)img.width * img.height * 3;
    for (size_t i = 0; i < n; i++) se += ((double)img.rgb[i] - rec.rgb[i]) * ((double)img.rgb[i] - rec.rgb[i]);
    const char *text[] = {"Software", "loom", "Source", in, "Model", vq_path, NULL};
    if ((rc = loom_image_save_png(&rec, out, text, err, sizeof err)) < 0) { fprintf(stderr, "%s\n", err); goto done; }
    printf("image  %s -> %d×%d codes [%d %d %d …] -> %s  (PSNR %.1f dB)\n", in, g, g, codes[0], codes[1],
           codes[2], out, 10 * log10(255.0 * 255.0 / (se / n)));
done:
    free(codes);
    loom_image_free(&img);
    loom_image_free(&rec);
    loom_vq_free(&vq);
    return rc;
}

static int audio_roundtrip(const char *ac_path, const char *in, const char *out)
{
    char err[512];
    loom_audio_codec *ac = NULL;
    float *pcm = NULL, *syn = NULL;
    int32_t *codes = NULL;
    size_t n = 0;
    int rc = loom_audio_codec_open(ac_path, (loom_codec_params){0}, &ac, err, sizeof err);
    if (rc < 0) { fprintf(stderr, "%s\n", err); return rc; }
    loom_audio_params ap = loom_audio_default_params();
    if ((rc = loom_audio_load(in, &ap, &pcm, &n, err, sizeof err)) < 0) { fprintf(stderr, "%s\n", err); goto done; }
    int64_t nc = loom_audio_codec_n_codes(ac, (int64_t)n);
    int64_t n_syn = nc * loom_audio_codec_samples_per_code(ac);
    codes = malloc(sizeof *codes * (size_t)nc);
    syn = malloc(sizeof *syn * (size_t)n_syn);
    if (!codes || !syn) { rc = LOOM_ERR_NO_MEMORY; goto done; }
    if ((rc = loom_audio_codec_encode(ac, pcm, (int64_t)n, codes)) < 0 ||
        (rc = loom_audio_codec_decode(ac, codes, nc, syn)) < 0) {
        fprintf(stderr, "%s\n", loom_audio_codec_error(ac));
        goto done;
    }
    if ((rc = loom_audio_save_wav(out, syn, (size_t)n_syn, 1, loom_audio_codec_sample_rate(ac), LOOM_WAV_PCM16, err,
                                   sizeof err)) < 0) {
        fprintf(stderr, "%s\n", err);
        goto done;
    }
    printf("audio  %s -> %lld codes (%.1f s) [%d %d %d …] -> %s\n", in, (long long)nc, n / 16000.0, codes[0],
           codes[1], codes[2], out);
done:
    free(codes);
    free(syn);
    loom_audio_pcm_free(&pcm);
    loom_audio_codec_free(&ac);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: codec_roundtrip VQ.gguf AUDIOCODEC.gguf IMAGE AUDIO OUT_DIR\n");
        return 2;
    }
    char png[4096], wav[4096];
    snprintf(png, sizeof png, "%s/image_vq.png", argv[5]);
    snprintf(wav, sizeof wav, "%s/audio_codec.wav", argv[5]);
    if (image_roundtrip(argv[1], argv[3], png) < 0) return 1;
    if (audio_roundtrip(argv[2], argv[4], wav) < 0) return 1;
    return 0;
}
