/* Seeds and crash regressions of fuzz/fuzz_cli.c through its entry point (tests/fuzz_replay.h). */
#include "fuzz/fuzz_cli.c"
#include "tests/fuzz_replay.h"

FUZZ_REPLAY_MAIN_INIT("cli")
