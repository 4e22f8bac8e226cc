/* Text to say, as a speech model trained on transcripts reads it (audio/audio.h:
 * lm_speech_pieces). loom-tiny's speech was transcribed in lowercase words without
 * punctuation, numbers spelled out; given "Maria caught the box." it said "go forward" (the
 * capital and the full stop are byte tokens it never saw after "Say: "), and a paragraph ran
 * past the 10 s its clips were trained on. So: one normalised sentence per piece. */
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"

#define SPEECH_TEXT_MAX (1 << 20)   /* bytes of input read; longer is LOOM_ERR_LIMIT */

typedef struct {
    char  *s;
    size_t n, cap;
} buf;

static int put(buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + n + 1 > cap) cap *= 2;
        char *t = realloc(b->s, cap);
        if (!t) return -1;
        b->s = t, b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}

/* A word: after a space unless the buffer is empty or ends at a boundary. */
static int word(buf *b, const char *w)
{
    if (b->n && b->s[b->n - 1] != '\n' && b->s[b->n - 1] != ',' && put(b, " ", 1)) return -1;
    return put(b, w, strlen(w));
}

static const char *const ONES[20] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                                     "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                                     "seventeen", "eighteen", "nineteen"};
static const char *const TENS[10] = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};

/* 1 ≤ n ≤ 999 in words, as the training transcripts spell them ("one hundred four"). */
static int hundreds(buf *b, int n)
{
    if (n >= 100 && (word(b, ONES[n / 100]) || word(b, "hundred"))) return -1;
    n %= 100;
    if (n >= 20) {
        if (word(b, TENS[n / 10])) return -1;
        n %= 10;
    }
    return n ? word(b, ONES[n]) : 0;
}

/* 0 ≤ n < 10^12: "one thousand two hundred four", "three million". */
static int number(buf *b, long long n)
{
    static const char *const SCALE[4] = {"billion", "million", "thousand", ""};
    static const long long DIV[4] = {1000000000LL, 1000000LL, 1000LL, 1LL};
    if (n == 0) return word(b, ONES[0]);
    for (int i = 0; i < 4; i++) {
        const int part = (int)(n / DIV[i] % 1000);
        if (part && (hundreds(b, part) || (*SCALE[i] && word(b, SCALE[i])))) return -1;
    }
    return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* U+2000..U+206F (UTF-8 E2 80 xx, E2 81 xx): spaces, dashes, quotes, ellipsis; punctuation, not letters. */
static int general_punct(const char *t, size_t n, size_t i)
{
    return i + 2 < n && (unsigned char)t[i] == 0xE2 && ((unsigned char)t[i + 1] == 0x80 || (unsigned char)t[i + 1] == 0x81);
}

/* A byte of a word: an ASCII letter, or UTF-8 outside ASCII (other scripts' letters) except
 * general punctuation and the no-break space (C2 A0). */
static int is_letter(const char *t, size_t n, size_t i)
{
    const unsigned char c = (unsigned char)t[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    if (c < 0x80 || general_punct(t, n, i)) return 0;
    if (c == 0xC2 && i + 1 < n && (unsigned char)t[i + 1] == 0xA0) return 0;
    return 1;
}

/* Digits at t[*i]: "1,024.5" → "one thousand twenty four point five"; a leading zero or more
 * than 12 digits, digit by digit. Advances *i past what it read. */
static int digits(buf *b, const char *t, size_t n, size_t *i)
{
    char d[64];
    size_t k = 0, j = *i;
    while (j < n && k < sizeof d - 1) {
        if (is_digit(t[j])) d[k++] = t[j++];
        else if (t[j] == ',' && k && j + 3 < n && is_digit(t[j + 1]) && is_digit(t[j + 2]) &&
                 is_digit(t[j + 3]) && (j + 4 >= n || !is_digit(t[j + 4])))
            j++;   /* a thousands separator: a comma before exactly three digits */
        else break;
    }
    d[k] = 0;
    if ((d[0] == '0' && k > 1) || k > 12) {
        for (size_t q = 0; q < k; q++)
            if (word(b, ONES[d[q] - '0'])) return -1;
    } else if (number(b, atoll(d))) return -1;
    if (j + 1 < n && t[j] == '.' && is_digit(t[j + 1])) {   /* decimals, digit by digit */
        if (word(b, "point")) return -1;
        for (j++; j < n && is_digit(t[j]); j++)
            if (word(b, ONES[t[j] - '0'])) return -1;
    }
    *i = j;
    return 0;
}

/* A boundary mark ('\n' ends a sentence, ',' is a place to cut a long one), once. */
static int mark(buf *b, char c)
{
    if (!b->n || b->s[b->n - 1] == '\n') return 0;
    if (b->s[b->n - 1] == ',') b->n--;   /* a sentence end outranks a comma */
    return put(b, &c, 1);
}

/* The whole text as words separated by single spaces, '\n' after each sentence and ','
 * where a comma was. */
static int normalise(const char *t, size_t n, buf *b)
{
    for (size_t i = 0; i < n;) {
        const unsigned char c = (unsigned char)t[i];
        if (is_letter(t, n, i)) {   /* a word: ASCII lowercased, other UTF-8 kept, inner apostrophes kept */
            char w[256];
            size_t k = 0;
            while (i < n) {
                size_t step = 1;
                char out = t[i];
                if (out == '\'' && i + 1 < n && is_letter(t, n, i + 1)) out = '\'';
                else if (general_punct(t, n, i) && (unsigned char)t[i + 1] == 0x80 && (unsigned char)t[i + 2] == 0x99 &&
                         i + 3 < n && is_letter(t, n, i + 3)) out = '\'', step = 3;   /* ’ as in don’t */
                else if (!is_letter(t, n, i)) break;
                else if (out >= 'A' && out <= 'Z') out = (char)(out - 'A' + 'a');
                if (k == sizeof w - 1) {   /* a "word" of 255 bytes and more: said in parts */
                    w[k] = 0;
                    if (word(b, w)) return -1;
                    k = 0;
                }
                w[k++] = out;
                i += step;
            }
            w[k] = 0;
            if (word(b, w)) return -1;
        } else if (is_digit((char)c)) {
            if (digits(b, t, n, &i)) return -1;
        } else if (general_punct(t, n, i)) {   /* an ellipsis ends a sentence; the rest separate words */
            if ((unsigned char)t[i + 1] == 0x80 && (unsigned char)t[i + 2] == 0xA6 && mark(b, '\n')) return -1;
            i += 3;
        } else if (c == 0xC2 && i + 1 < n && (unsigned char)t[i + 1] == 0xA0) {   /* no-break space */
            i += 2;
        } else {
            const char *say = c == '%' ? "percent" : c == '&' ? "and" : c == '+' ? "plus" : NULL;
            if (say && word(b, say)) return -1;
            if ((c == '.' || c == '!' || c == '?' || c == ';' || c == ':' || c == '\n') && mark(b, '\n')) return -1;
            if (c == ',' && mark(b, ',')) return -1;
            i++;
        }
    }
    return mark(b, '\n');
}

typedef struct {
    char  **v;
    int64_t n, cap;
} piece_list;

static int add_piece(piece_list *p, const char *s, size_t n)
{
    while (n && s[0] == ' ') s++, n--;
    while (n && s[n - 1] == ' ') n--;
    if (!n) return 0;
    if (p->n == p->cap) {
        const int64_t cap = p->cap ? 2 * p->cap : 8;
        char **v = realloc(p->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        p->v = v, p->cap = cap;
    }
    char *c = malloc(n + 1);
    if (!c) return -1;
    memcpy(c, s, n);
    c[n] = 0;
    p->v[p->n++] = c;
    return 0;
}

/* One sentence s[0, n) ("," marks in it) into pieces of at most max_chars: cut at the last
 * comma that fits (past a third of the piece), else the last space or comma that fits, else after the
 * word that does not; commas are spoken as spaces. */
static int split_sentence(piece_list *p, const char *s, size_t n, size_t max_chars)
{
    while (n) {
        size_t cut = n;
        if (n > max_chars) {
            cut = 0;
            for (size_t i = max_chars; !cut && i > max_chars / 3; i--) if (s[i] == ',') cut = i;
            for (size_t i = max_chars; !cut && i > 0; i--) if (s[i] == ' ' || s[i] == ',') cut = i;
            if (!cut) for (cut = max_chars; cut < n && s[cut] != ' ' && s[cut] != ','; cut++) {}
        }
        char *piece = malloc(cut + 1);
        if (!piece) return -1;
        for (size_t i = 0; i < cut; i++) piece[i] = s[i] == ',' ? ' ' : s[i];
        const int rc = add_piece(p, piece, cut);
        free(piece);
        if (rc) return -1;
        for (s += cut, n -= cut; n && (s[0] == ' ' || s[0] == ','); s++, n--) {}
    }
    return 0;
}

int lm_speech_pieces(const char *text, size_t max_chars, char ***pieces, int64_t *n_pieces, lm_error *err)
{
    *pieces = NULL;
    *n_pieces = 0;
    if (!text) return lm_fail(err, LOOM_ERR_INVALID_ARG, "speech text: no text");
    const size_t n = strlen(text);
    if (n > SPEECH_TEXT_MAX)
        return lm_fail(err, LOOM_ERR_LIMIT, "speech text: %zu bytes is more than the %d this reads at once", n,
                       SPEECH_TEXT_MAX);
    if (max_chars < 16) return lm_fail(err, LOOM_ERR_INVALID_ARG, "speech text: pieces of %zu characters (16 or more)", max_chars);
    buf b = {0};
    piece_list p = {0};
    int rc = normalise(text, n, &b);
    for (size_t i = 0; !rc && i < b.n;) {   /* sentence by sentence */
        size_t j = i;
        while (j < b.n && b.s[j] != '\n') j++;
        rc = split_sentence(&p, b.s + i, j - i, max_chars);
        i = j + 1;
    }
    free(b.s);
    if (rc) {
        lm_speech_pieces_free(&p.v, p.n);
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "speech text: out of memory");
    }
    if (!p.n) return lm_fail(err, LOOM_ERR_INVALID_ARG, "speech text: nothing to say (no words or numbers in it)");
    *pieces = p.v;
    *n_pieces = p.n;
    return 0;
}

void lm_speech_pieces_free(char ***pieces, int64_t n_pieces)
{
    if (!pieces || !*pieces) return;
    for (int64_t i = 0; i < n_pieces; i++) free((*pieces)[i]);
    free(*pieces);
    *pieces = NULL;
}
