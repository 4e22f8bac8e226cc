/* Internals of loom_model shared by model.c and session.c (not public). */
#ifndef LOOM_MODEL_H
#define LOOM_MODEL_H

#include "lib/core/decoder.h"
#include "lib/core/gguf.h"
#include "lib/core/tokenizer.h"

struct loom_model {
    lm_gguf      *gguf;     /* the mapped file; weights point into it, owned          */
    lm_decoder   *dec;      /* bound weights and hyperparameters, owned               */
    lm_tokenizer *tok;      /* NULL when the file has no gpt2 tokenizer, owned        */
    char          desc[192];
};

#endif
