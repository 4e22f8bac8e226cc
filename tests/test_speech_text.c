/* loom_speech_pieces: the text `loom speak` gives the model, normalised and cut into sentences. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "loom.h"

/* The pieces of text joined by " | ", or "ERR <status>: <message>". */
static const char *pieces(const char *text, size_t max_chars)
{
    static char out[4096];
    char err[256], **p = NULL;
    size_t n = 0;
    const int rc = loom_speech_pieces(text, max_chars, &p, &n, err, sizeof err);
    if (rc < 0) {
        snprintf(out, sizeof out, "ERR %d: %s", rc, err);
        return out;
    }
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (i) strncat(out, " | ", sizeof out - strlen(out) - 1);
        strncat(out, p[i], sizeof out - strlen(out) - 1);
    }
    loom_speech_pieces_free(&p, n);
    CHECK(p == NULL, "free sets the pointer to NULL");
    return out;
}

#define EXPECT(text, max, want)                                                             \
    do {                                                                                    \
        const char *got = pieces(text, max);                                                \
        CHECK(!strcmp(got, want), "%s\n  got  '%s'\n  want '%s'", #text, got, want);        \
    } while (0)

int main(void)
{
    /* what the training transcripts look like passes unchanged */
    EXPECT("maria caught the box", 160, "maria caught the box");
    /* case, punctuation, sentences */
    EXPECT("Maria caught the box.", 160, "maria caught the box");
    EXPECT("  Hello, World!  How are you?\nFine; thanks: bye", 160, "hello world | how are you | fine | thanks | bye");
    EXPECT("\"Quoted\" (words) -- and - dashes / slashes", 160, "quoted words and dashes slashes");
    EXPECT("Don't stop. It's Bob's", 160, "don't stop | it's bob's");
    EXPECT("Don\xe2\x80\x99t \xe2\x80\x9cquote\xe2\x80\x9d", 160, "don't quote");
    EXPECT("wait\xe2\x80\xa6 then go", 160, "wait | then go");
    EXPECT("caf\xc3\xa9\xc2\xa0noir", 160, "caf\xc3\xa9 noir");
    /* numbers as the transcripts spell them */
    EXPECT("7 cats", 160, "seven cats");
    EXPECT("It costs 1204 dollars", 160, "it costs one thousand two hundred four dollars");
    EXPECT("1,000,000 and 20,5", 160, "one million and twenty five");   /* a comma only marks a place to cut */
    EXPECT("3.25 is 99% & 0", 160, "three point two five is ninety nine percent and zero");
    EXPECT("2+2", 160, "two plus two");
    EXPECT("007 and 1234567890123", 160,
           "zero zero seven and one two three four five six seven eight nine zero one two three");
    EXPECT("999999999999", 160,
           "nine hundred ninety nine billion nine hundred ninety nine million nine hundred ninety nine "
           "thousand nine hundred ninety nine");
    EXPECT("room 101. Done", 160, "room one hundred one | done");
    /* long sentences: cut at a comma that fits, else a space */
    EXPECT("one two three four five six, seven eight nine ten", 30, "one two three four five six | seven eight nine ten");
    EXPECT("one two three four five six seven eight nine ten", 30, "one two three four five six | seven eight nine ten");
    EXPECT("ab, cdefgh ijklmnop qrstuvwx yzabcdef ghij", 20, "ab cdefgh ijklmnop | qrstuvwx yzabcdef | ghij");
    EXPECT("abcdefghijklmnopqrstuvwxyz short", 16, "abcdefghijklmnopqrstuvwxyz | short");
    /* no words */
    const char *r = pieces("... !?, -- ", 160);
    CHECK(!strncmp(r, "ERR -1: ", 8) && strstr(r, "nothing to say"), "punctuation alone: %s", r);
    r = pieces("", 160);
    CHECK(!strncmp(r, "ERR -1: ", 8), "empty text: %s", r);
    r = pieces("hello", 8);
    CHECK(!strncmp(r, "ERR -1: ", 8) && strstr(r, "16 or more"), "max_chars 8: %s", r);
    /* bounds */
    char **p = NULL;
    size_t n = 5;
    char err[200];
    CHECK(loom_speech_pieces(NULL, 160, &p, &n, err, sizeof err) == LOOM_ERR_INVALID_ARG && !p && n == 0, "NULL text");
    CHECK(loom_speech_pieces("hi", 160, NULL, &n, err, sizeof err) == LOOM_ERR_INVALID_ARG, "NULL out");
    const size_t big = (1u << 20) + 1;
    char *t = malloc(big + 1);
    memset(t, 'a', big);
    t[big] = 0;
    CHECK(loom_speech_pieces(t, 160, &p, &n, err, sizeof err) == LOOM_ERR_LIMIT && strstr(err, "1048577 bytes"),
          "more than 1 MiB: %s", err);
    /* a 1 MiB word: said in parts of 255 bytes, every byte kept */
    t[big - 1] = 0;
    CHECK(loom_speech_pieces(t, 160, &p, &n, err, sizeof err) == 0, "1 MiB word: %s", err);
    size_t letters = 0;
    for (size_t i = 0; i < n; i++)
        for (const char *c = p[i]; *c; c++) letters += *c == 'a';
    CHECK(letters == big - 1, "every letter kept: %zu of %zu", letters, big - 1);
    loom_speech_pieces_free(&p, n);
    loom_speech_pieces_free(&p, n);   /* twice: a no-op */
    loom_speech_pieces_free(NULL, 0);
    free(t);
    return finish();
}
