/* Internals of loom_prompt shared by prompt.c and session.c (not public). */
#ifndef LOOM_PROMPT_H
#define LOOM_PROMPT_H

#include "include/loom.h"
#include "lib/core/error.h"

struct loom_prompt {
    const loom_model *m;
    int32_t *ids;        /* [cap] token id per position; -1: the next embedding row      */
    int64_t  n, cap;
    float   *rows;       /* [rows_cap][n_embd] embedding rows in order                   */
    int64_t  n_rows, rows_cap;
    float   *scratch;    /* media encoder output before it is copied in, grown on demand */
    int64_t  scratch_cap;
    lm_error err;
};

#endif
