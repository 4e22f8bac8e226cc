/*
 * Public "Media codecs" API (include/loom.h) on the parity fixtures: the wrappers give the same
 * results as the library-internal paths that test_vq_parity / test_audio_codec_parity check
 * against PyTorch (RGB8 within 1 level of PyTorch's pixels, codes identical, PCM within 1e-3),
 * report errors through their strings, and accept NULL where documented.
 */
#include "tests/codec_test_util.h"

#include "include/loom.h"

int main(void)
{
    char err[256];
    loom_codec_params p = loom_codec_default_params();
    p.n_threads = 2;
    loom_vq *vq = NULL;
    loom_audio_codec *ac = NULL;
    lm_gguf *vio = NULL, *aio = NULL;
    CHECK(loom_vq_open("data/vq/nope.gguf", p, &vq, err, sizeof err) == LOOM_ERR_IO && !vq && strstr(err, "nope.gguf"),
          "missing file: '%s'", err);
    CHECK(loom_audio_codec_open("data/vq/tiny_vq.gguf", p, &ac, err, sizeof err) == LOOM_ERR_UNSUPPORTED && !ac &&
              strstr(err, "loom-vq"), "VQ file as audio codec: '%s'", err);
    if (loom_vq_open("data/vq/tiny_vq.gguf", p, &vq, err, sizeof err) < 0 ||
        loom_audio_codec_open("data/audio_codec/tiny_ac.gguf", p, &ac, err, sizeof err) < 0 ||
        lm_gguf_open("data/vq/vq_io.gguf", &vio, NULL) < 0 || lm_gguf_open("data/audio_codec/ac_io.gguf", &aio, NULL) < 0) {
        printf("FAIL: %s\n0 passed, 1 failed\n", err);
        return 1;
    }
    const int S = loom_vq_image_size(vq), g = loom_vq_grid(vq);
    CHECK(S == 32 && g == 8 && loom_vq_codebook_size(vq) == 64, "vq info %d %d", S, g);
    const float *codes_f = fixture(vio, "codes_in", 2 * g * g), *pix = fixture(vio, "pixels_out", 2 * S * S * 3);
    const float *img = fixture(vio, "image_in", 2 * S * S * 3), *cref = fixture(vio, "codes_out", 2 * g * g);
    if (codes_f && pix && img && cref) {
        int32_t codes[64];
        uint8_t rgb[32 * 32 * 3];
        float x[3 * 32 * 32];
        for (int i = 0; i < g * g; i++) codes[i] = (int32_t)codes_f[i];
        CHECK(loom_vq_decode(vq, codes, rgb) == 0, "decode: %s", loom_vq_error(vq));
        int worst = 0;
        for (int i = 0; i < S * S * 3; i++) worst = abs(rgb[i] - (int)pix[i]) > worst ? abs(rgb[i] - (int)pix[i]) : worst;
        CHECK(worst <= 1, "RGB8 off by %d", worst);
        CHECK(loom_vq_decode_f32(vq, codes, x) == 0, "decode_f32: %s", loom_vq_error(vq));
        for (int i = 0; i < S * S * 3; i++) rgb[i] = (uint8_t)img[i];
        CHECK(loom_vq_encode(vq, rgb, codes) == 0, "encode: %s", loom_vq_error(vq));
        int same = 0;
        for (int i = 0; i < g * g; i++) same += codes[i] == (int32_t)cref[i];
        CHECK(same == g * g, "%d of %d codes identical", same, g * g);
        /* loom_image round trip: decode_image matches decode, encode_image matches encode */
        loom_image img = {0};
        for (int i = 0; i < g * g; i++) codes[i] = (int32_t)codes_f[i];
        CHECK(loom_vq_decode_image(vq, codes, &img) == 0 && img.width == S && img.height == S,
              "decode_image: %s", loom_vq_error(vq));
        uint8_t rgb2[32 * 32 * 3];
        CHECK(loom_vq_decode(vq, codes, rgb2) == 0 && img.rgb && !memcmp(img.rgb, rgb2, sizeof rgb2),
              "decode_image differs from decode");
        loom_image_free(&img);
        CHECK(loom_image_from_rgb(rgb, S, S, 0, &img, err, sizeof err) == 0, "from_rgb: %s", err);
        int32_t c2[64];
        CHECK(loom_vq_encode_image(vq, &img, c2) == 0,
              "encode_image: %s", loom_vq_error(vq));
        int same2 = 0;
        for (int i = 0; i < g * g; i++) same2 += c2[i] == (int32_t)cref[i];
        CHECK(same2 == g * g, "encode_image: %d of %d codes identical", same2, g * g);
        loom_image_free(&img);
        CHECK(loom_image_from_rgb(rgb, S / 2, S, 0, &img, err, sizeof err) == 0, "from_rgb: %s", err);
        CHECK(loom_vq_encode_image(vq, &img, c2) == LOOM_ERR_INVALID_ARG && strstr(loom_vq_error(vq), "16x32"),
              "wrong-size image: '%s'", loom_vq_error(vq));
        loom_image_free(&img);
        codes[0] = 9999;
        CHECK(loom_vq_decode(vq, codes, rgb) == LOOM_ERR_INVALID_ARG && strstr(loom_vq_error(vq), "9999"),
              "bad code: '%s'", loom_vq_error(vq));
    }
    CHECK(loom_audio_codec_sample_rate(ac) == 16000 && loom_audio_codec_samples_per_code(ac) == 640 &&
              loom_audio_codec_codes_per_second(ac) == 25.0f && loom_audio_codec_codebook_size(ac) == 64, "audio info");
    const float *acodes = fixture(aio, "codes_in", 12), *wav = fixture(aio, "wav_out", 12 * 640);
    if (acodes && wav) {
        int32_t codes[12];
        float *pcm = xmalloc(sizeof(float) * 12 * 640);
        for (int i = 0; i < 12; i++) codes[i] = (int32_t)acodes[i];
        CHECK(loom_audio_codec_decode(ac, codes, 12, pcm) == 0, "audio decode: %s", loom_audio_codec_error(ac));
        CHECK(max_abs_diff(pcm, wav, 12 * 640) <= 1e-3f, "PCM differs by %g", max_abs_diff(pcm, wav, 12 * 640));
        CHECK(loom_audio_codec_n_codes(ac, 12 * 640) == 13, "n_codes %lld", (long long)loom_audio_codec_n_codes(ac, 12 * 640));
        int32_t more[13];
        CHECK(loom_audio_codec_encode(ac, pcm, 12 * 640, more) == 0, "audio encode: %s", loom_audio_codec_error(ac));
        CHECK(loom_audio_codec_decode(ac, codes, 0, pcm) == LOOM_ERR_INVALID_ARG, "0 codes accepted");
        free(pcm);
    }
    loom_vq_free(&vq);
    loom_vq_free(&vq);   /* NULL: no-op */
    CHECK(vq == NULL, "free did not clear");
    loom_audio_codec_free(&ac);
    loom_audio_codec_free(NULL);
    CHECK(loom_vq_image_size(NULL) == 0 && loom_audio_codec_n_codes(NULL, 100) == 0, "NULL handles");
    lm_gguf_close(&vio);
    lm_gguf_close(&aio);
    return finish();
}
