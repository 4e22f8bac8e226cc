/* Seeds and crash regressions of fuzz/fuzz_gguf.c through its entry point (tests/fuzz_replay.h). */
#include "fuzz/fuzz_gguf.c"
#include "tests/fuzz_replay.h"

FUZZ_REPLAY_MAIN("gguf")
