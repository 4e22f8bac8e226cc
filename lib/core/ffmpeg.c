/* FFmpeg's libraries, loaded at first use into one table of function pointers (ffmpeg.h). */
#include "lib/core/ffmpeg.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include <libavutil/version.h>
#include <libswresample/version.h>
#include <libswscale/version.h>

#define LM_STR_(x) #x
#define LM_STR(x) LM_STR_(x)

const char *const lm_ffmpeg_sonames[LM_FFMPEG_N_LIBS] = {
    [LM_AVUTIL]     = "libavutil.so." LM_STR(LIBAVUTIL_VERSION_MAJOR),
    [LM_SWRESAMPLE] = "libswresample.so." LM_STR(LIBSWRESAMPLE_VERSION_MAJOR),
    [LM_SWSCALE]    = "libswscale.so." LM_STR(LIBSWSCALE_VERSION_MAJOR),
    [LM_AVCODEC]    = "libavcodec.so." LM_STR(LIBAVCODEC_VERSION_MAJOR),
    [LM_AVFORMAT]   = "libavformat.so." LM_STR(LIBAVFORMAT_VERSION_MAJOR),
};

static struct {
    lm_ffmpeg table;
    int       ok;
    lm_error  why;    /* the failure, when !ok */
} g_ffmpeg;
static pthread_once_t g_ffmpeg_once = PTHREAD_ONCE_INIT;

int lm_ffmpeg_open(const char *const sonames[LM_FFMPEG_N_LIBS], lm_ffmpeg *t, lm_error *err)
{
    void *h[LM_FFMPEG_N_LIBS] = {0};
    int rc = 0;
    memset(t, 0, sizeof *t);
    for (int i = 0; i < LM_FFMPEG_N_LIBS && rc == 0; i++) {
        /* RTLD_LAZY: of FFmpeg's thousands of functions loom calls 73; bind them on call.
         * RTLD_DEEPBIND (blas.c) saved nothing here: the load took 24 ms of CPU either way. */
        h[i] = dlopen(sonames[i], RTLD_LAZY | RTLD_LOCAL);
        if (!h[i]) rc = lm_fail(err, LOOM_ERR_UNSUPPORTED, "%s", dlerror());
    }
    /* Each function from the library that defines it; the cast gives dlsym's address its type. */
#define LM_FFMPEG_SYM(lib, f)                                                                     \
    if (rc == 0 && !(t->f = (__typeof__(t->f))dlsym(h[lib], #f)))                                 \
        rc = lm_fail(err, LOOM_ERR_UNSUPPORTED, "%s has no %s (%s)", sonames[lib], #f, dlerror());
    LM_FFMPEG_FUNCS(LM_FFMPEG_SYM)
#undef LM_FFMPEG_SYM
    /* A failed load leaves what it opened open: dlclose would unmap libraries whose
     * constructors allocated (some of FFmpeg's ~130 dependencies do), leaking their blocks. */
    if (rc < 0) memset(t, 0, sizeof *t);
    return rc;
}

static void ffmpeg_load(void)
{
    g_ffmpeg.ok = lm_ffmpeg_open(lm_ffmpeg_sonames, &g_ffmpeg.table, &g_ffmpeg.why) == 0;
    if (g_ffmpeg.ok)
        lm_log(LOOM_LOG_DEBUG, "FFmpeg loaded (%s)", lm_ffmpeg_sonames[LM_AVFORMAT]);
    else
        lm_log(LOOM_LOG_DEBUG, "FFmpeg could not be loaded: %s", g_ffmpeg.why.msg);
}

const lm_ffmpeg *lm_ffmpeg_get(void)
{
    pthread_once(&g_ffmpeg_once, ffmpeg_load);
    return g_ffmpeg.ok ? &g_ffmpeg.table : NULL;
}

int lm_ffmpeg_fail(lm_error *err)
{
    return lm_fail(err, LOOM_ERR_UNSUPPORTED, "audio and video need FFmpeg, which could not be loaded: %s "
                   "(install FFmpeg's shared libraries, e.g. Debian's libavformat%d)",
                   g_ffmpeg.why.msg, LIBAVFORMAT_VERSION_MAJOR);
}
