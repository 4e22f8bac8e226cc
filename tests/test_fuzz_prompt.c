/* Seeds and crash regressions of fuzz/fuzz_prompt.c through its entry point (tests/fuzz_replay.h). */
#define LOOM_SOURCE_DIR ".."   /* tests run in tests/ */
#include "fuzz/fuzz_prompt.c"
#include "tests/fuzz_replay.h"

FUZZ_REPLAY_MAIN_INIT("prompt")
