/* Shared by the decoder tests: pass/fail counting and temporary model files. */
#ifndef LOOM_DECODER_TEST_UTIL_H
#define LOOM_DECODER_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/core/decoder_synth.h"
#include "tests/check.h"

/* A temporary path unique to this process and `tag` (caller unlinks). */
static const char *tmp_model_path(char *buf, size_t size, const char *tag)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(buf, size, "%s/loom-test-%d-%s.gguf", dir, (int)getpid(), tag);
    return buf;
}

#endif
