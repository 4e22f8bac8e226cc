/* Errors and logging inside the library. Public status codes live in include/loom.h. */
#ifndef LM_ERROR_H
#define LM_ERROR_H

#include "include/loom.h"

/* A status plus the message that explains it. Every handle owns one; functions that create
 * a handle take a caller-owned one. */
typedef struct lm_error {
    int  status;       /* 0 or a negative loom_status */
    char msg[512];     /* NUL-terminated, "" when status == 0 */
} lm_error;

/* Record a failure in `e` (may be NULL) and return `status`, so callers can write
 * `return lm_fail(e, LOOM_ERR_FORMAT, "tensor '%s': offset past end", name);` */
int lm_fail(lm_error *e, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clear `e` to OK. */
void lm_error_clear(lm_error *e);

/* Send a message to the installed log callback (no-op when none). */
void lm_log(loom_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
