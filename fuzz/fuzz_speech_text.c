/* libFuzzer entry: loom_speech_pieces on arbitrary bytes (the text `loom speak` is given).
 * The first byte sets max_chars (16..271); the rest, up to its first NUL, is the text. Every
 * call returns 0 with at least one piece, or a negative status with a message. Each piece is
 * non-empty, without leading, trailing or double spaces, holds only what the normaliser
 * writes (a-z, space, apostrophe, UTF-8 bytes outside ASCII), and is at most max_chars long
 * unless it is a single word.
 *   scripts/fuzz 60 fuzz_speech_text     (seeds: fuzz/corpus/speech_text) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HARNESS_CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const size_t max_chars = 16 + data[0];
    char *text = malloc(size);
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    char err[256] = "", **p = NULL;
    size_t n = 0;
    const int rc = loom_speech_pieces(text, max_chars, &p, &n, err, sizeof err);
    if (rc < 0) {
        HARNESS_CHECK(err[0] && !p && n == 0);
    } else {
        HARNESS_CHECK(rc == 0 && p && n >= 1);
        for (size_t i = 0; i < n; i++) {
            const char *s = p[i];
            const size_t len = strlen(s);
            HARNESS_CHECK(len > 0 && s[0] != ' ' && s[len - 1] != ' ' && !strstr(s, "  "));
            HARNESS_CHECK(len <= max_chars || !strchr(s, ' '));
            for (size_t k = 0; k < len; k++) {
                const unsigned char c = (unsigned char)s[k];
                HARNESS_CHECK((c >= 'a' && c <= 'z') || c == ' ' || c == '\'' || c >= 0x80);
            }
        }
    }
    loom_speech_pieces_free(&p, n);
    HARNESS_CHECK(!p);
    free(text);
    return 0;
}
