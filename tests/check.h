/*
 * The one pass/fail counter every C test uses. CHECK(cond, fmt, ...) counts a pass or prints
 * "FAIL file:line: message" and counts a failure (the test goes on); main ends with
 * `return finish();`, which prints the totals and exits non-zero on any failure.
 */
#ifndef LOOM_TESTS_CHECK_H
#define LOOM_TESTS_CHECK_H

#include <stdio.h>

static int n_pass, n_fail;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (cond) n_pass++;                                                       \
        else {                                                                    \
            n_fail++;                                                             \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                           \
            printf(__VA_ARGS__);                                                  \
            printf("\n");                                                         \
        }                                                                         \
    } while (0)

/* Print the totals; the exit status of the test (0 only when nothing failed). */
static inline int finish(void)
{
    printf("%d passed, %d failed\n", n_pass, n_fail);
    fflush(stdout);
    return n_fail ? 1 : 0;
}

#endif
