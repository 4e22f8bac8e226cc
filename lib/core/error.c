#include "lib/core/error.h"

#include <stdarg.h>
#include <stdio.h>

static loom_log_fn g_log_fn;
static void       *g_log_user;

const char *loom_version(void) { return "0.1.0"; }

const char *loom_status_str(int status)
{
    switch (status) {
    case LOOM_OK:               return "ok";
    case LOOM_ERR_INVALID_ARG:  return "invalid argument";
    case LOOM_ERR_NO_MEMORY:    return "out of memory";
    case LOOM_ERR_IO:           return "i/o error";
    case LOOM_ERR_FORMAT:       return "malformed file";
    case LOOM_ERR_UNSUPPORTED:  return "unsupported";
    case LOOM_ERR_NOT_FOUND:    return "not found";
    case LOOM_ERR_TYPE:         return "wrong type or shape";
    case LOOM_ERR_LIMIT:        return "limit exceeded";
    case LOOM_ERR_CONTEXT_FULL: return "context full";
    case LOOM_ERR_ABORTED:      return "aborted";
    default:                    return "unknown status";
    }
}

void loom_log_set(loom_log_fn fn, void *user_data)
{
    g_log_fn   = fn;
    g_log_user = user_data;
}

void lm_log(loom_log_level level, const char *fmt, ...)
{
    if (!g_log_fn) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log_fn(level, buf, g_log_user);
}

int lm_fail(lm_error *e, int status, const char *fmt, ...)
{
    if (e) {
        e->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        lm_log(LOOM_LOG_DEBUG, "%s", e->msg);
    }
    return status;
}

void lm_error_clear(lm_error *e)
{
    if (!e) return;
    e->status = 0;
    e->msg[0] = '\0';
}
