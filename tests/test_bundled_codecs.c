/* The trained loom-tiny codecs in models/ work through loom's C path on the example media:
 * the VQ image codec reconstructs each example scene (PSNR; PyTorch measured 37.3 dB mean on
 * the 1000 test scenes) and the audio codec re-synthesizes the example utterance (log-mel L1;
 * PyTorch measured 3.6 dB on the held-out voices). See docs/TINY.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "audio/mel.h"
#include "include/loom.h"
#include "tests/check.h"

static void check_vq(void)
{
    char err[512];
    loom_vq *vq = NULL;
    loom_codec_params p = {0};
    int rc = loom_vq_open("../models/loom-tiny-vq.gguf", p, &vq, err, sizeof err);
    CHECK(rc == 0, "open VQ: %s", err);
    if (rc) return;
    const char *scenes[] = {"../examples/media/scene1.png", "../examples/media/scene2.png",
                            "../examples/media/scene3.png"};
    int G = loom_vq_grid(vq);
    int32_t *codes = malloc(sizeof(int32_t) * G * G);
    double sum_psnr = 0;
    for (int k = 0; k < 3; k++) {
        loom_image img = {0}, rec = {0};
        rc = loom_image_load(scenes[k], loom_image_default_params(), &img, err, sizeof err);
        CHECK(rc == 0, "%s: %s", scenes[k], err);
        if (rc) continue;
        CHECK(loom_vq_encode_image(vq, &img, codes) == 0, "encode: %s", loom_vq_error(vq));
        CHECK(loom_vq_decode_image(vq, codes, &rec) == 0, "decode: %s", loom_vq_error(vq));
        double se = 0;
        size_t n = (size_t)img.width * img.height * 3;
        for (size_t i = 0; i < n; i++) {
            double d = (double)img.rgb[i] - rec.rgb[i];
            se += d * d;
        }
        double psnr = 10 * log10(255.0 * 255.0 / (se / n));
        printf("vq %s: PSNR %.2f dB\n", scenes[k], psnr);
        CHECK(psnr >= 28.0, "%s: PSNR %.2f dB < 28", scenes[k], psnr);
        sum_psnr += psnr;
        loom_image_free(&img);
        loom_image_free(&rec);
    }
    /* v65's decoder: 35.5 dB on these three; the first one's 33.5 */
    CHECK(sum_psnr / 3 >= 34.5, "mean PSNR %.2f dB < 34.5", sum_psnr / 3);
    free(codes);
    loom_vq_free(&vq);
}

/* Mean |Δ log10 mel| × 10 over frames both signals have, after Whisper's max−8 clamp. */
static double mel_l1_db(const float *a, int64_t na, const float *b, int64_t nb)
{
    lm_mel *m = NULL;
    lm_error e = {0};
    if (lm_mel_create(80, 1, &m, &e) < 0) return 1e9;
    int64_t fa = lm_mel_n_frames(na), fb = lm_mel_n_frames(nb), f = fa < fb ? fa : fb;
    float *ma = malloc(sizeof(float) * 80 * fa), *mb = malloc(sizeof(float) * 80 * fb);
    lm_mel_log(m, a, na, ma, NULL, &e);
    lm_mel_log(m, b, nb, mb, NULL, &e);
    float mx = -1e30f;
    for (int64_t i = 0; i < 80 * fa; i++) mx = ma[i] > mx ? ma[i] : mx;
    double s = 0;
    for (int j = 0; j < 80; j++)
        for (int64_t t = 0; t < f; t++) {
            float x = fmaxf(ma[j * fa + t], mx - 8), y = fmaxf(mb[j * fb + t], mx - 8);
            s += fabs(x - y);
        }
    free(ma);
    free(mb);
    lm_mel_free(&m);
    return 10 * s / (80.0 * f);
}

static void check_audio_codec(void)
{
    char err[512];
    loom_audio_codec *ac = NULL;
    loom_codec_params p = {0};
    int rc = loom_audio_codec_open("../models/loom-tiny-audiocodec.gguf", p, &ac, err, sizeof err);
    CHECK(rc == 0, "open audio codec: %s", err);
    if (rc) return;
    float *pcm = NULL;
    size_t n = 0;
    loom_audio_params ap = loom_audio_default_params();
    rc = loom_audio_load("../examples/media/speech.wav", &ap, &pcm, &n, err, sizeof err);
    CHECK(rc == 0, "speech.wav: %s", err);
    if (rc) { loom_audio_codec_free(&ac); return; }
    int64_t nc = loom_audio_codec_n_codes(ac, (int64_t)n);
    CHECK(nc > 0 && nc <= (int64_t)n / 320 + 2, "%lld codes for %zu samples", (long long)nc, n);
    int32_t *codes = malloc(sizeof(int32_t) * nc);
    int64_t n_out = nc * loom_audio_codec_samples_per_code(ac);
    float *out = malloc(sizeof(float) * n_out);
    CHECK(loom_audio_codec_encode(ac, pcm, (int64_t)n, codes) == 0, "encode: %s", loom_audio_codec_error(ac));
    CHECK(loom_audio_codec_decode(ac, codes, nc, out) == 0, "decode: %s", loom_audio_codec_error(ac));
    double l1 = mel_l1_db(pcm, (int64_t)n, out, n_out);
    printf("audio codec: %lld codes (%.1f codes/s), log-mel L1 %.2f dB\n", (long long)nc,
           nc * 16000.0 / n, l1);
    CHECK(nc * 16000.0 / n <= 50.5, "more than 50 codes/s");
    CHECK(l1 <= 6.0, "log-mel L1 %.2f dB > 6", l1);
    free(codes);
    free(out);
    loom_audio_pcm_free(&pcm);
    loom_audio_codec_free(&ac);
}

int main(void)
{
    check_vq();
    check_audio_codec();
    return finish();
}
