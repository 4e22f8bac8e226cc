/* Seeds and crash regressions of fuzz/fuzz_speech_text.c through its entry point (tests/fuzz_replay.h). */
#include "fuzz/fuzz_speech_text.c"
#include "tests/fuzz_replay.h"

FUZZ_REPLAY_MAIN("speech_text")
