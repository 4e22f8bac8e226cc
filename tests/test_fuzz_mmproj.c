/* Seeds and crash regressions of fuzz/fuzz_mmproj.c through its entry point (tests/fuzz_replay.h). */
#include "fuzz/fuzz_mmproj.c"
#include "tests/fuzz_replay.h"

FUZZ_REPLAY_MAIN_INIT("mmproj")
