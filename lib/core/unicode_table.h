/* Unicode general-category classes for the pre-tokenizer (generated table, see
 * tools/gen_unicode_table.py). */
#ifndef LM_UNICODE_TABLE_H
#define LM_UNICODE_TABLE_H

#include <stdint.h>

/* One bit per class; every assigned or unassigned code point has exactly one. */
enum {
    LM_UCAT_UNDEF = 1,   /* Cn, and anything past U+10FFFF */
    LM_UCAT_NUMBER = 2,  /* \p{N} */
    LM_UCAT_LETTER = 4,  /* \p{L} */
    LM_UCAT_SEP = 8,     /* \p{Z} */
    LM_UCAT_MARK = 16,   /* \p{M} */
    LM_UCAT_PUNCT = 32,  /* \p{P} */
    LM_UCAT_SYMBOL = 64, /* \p{S} */
    LM_UCAT_CONTROL = 128, /* Cc Cf Co Cs */
};

extern const char     lm_unicode_version[];  /* Unicode version the table was built from */
extern const uint32_t lm_ucat_ranges[];      /* start << 8 | class, sorted by start      */
extern const int      lm_ucat_n_ranges;

#endif
