/* CPU count and instruction-set detection (once; the kernels dispatch on it). */
#include <pthread.h>
#include <stddef.h>
#include <sched.h>
#include <sys/syscall.h>
#include <string.h>
#include <unistd.h>

#include "include/loom.h"
#include "lib/core/kernels.h"

int loom_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static lm_cpu_caps g_caps;
static char        g_caps_str[160];
static pthread_once_t g_caps_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
/* The tile registers are off for a process until it asks Linux for them (and the OS must
 * save them: XCR0 bits 17 and 18). Asked once, for the whole process. */
static int amx_permitted(void)
{
    unsigned a, b, c, d;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (!((c >> 27) & 1)) return 0;   /* no OSXSAVE: no xgetbv */
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return 0;
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}
#endif

static void detect(void)
{
    __builtin_cpu_init();
    g_caps.avx2       = __builtin_cpu_supports("avx2");
    g_caps.fma        = __builtin_cpu_supports("fma");
    g_caps.f16c       = 0;
#if defined(__x86_64__)
    {   /* f16c and avx512_bf16 are not known to every compiler's __builtin_cpu_supports. */
        unsigned a, b, c, d;
        __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
        g_caps.f16c = (c >> 29) & 1;
        __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(1));
        g_caps.avx512bf16 = (a >> 5) & 1;
        __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
        g_caps.amx_bf16 = ((d >> 22) & 1) && ((d >> 24) & 1) && amx_permitted();
    }
#endif
    g_caps.avx512f    = __builtin_cpu_supports("avx512f");
    g_caps.avx512bw   = __builtin_cpu_supports("avx512bw");
    g_caps.avx512vl   = __builtin_cpu_supports("avx512vl");
    g_caps.avx512dq   = __builtin_cpu_supports("avx512dq");
    g_caps.avx512vnni = __builtin_cpu_supports("avx512vnni");
    if (!g_caps.avx512f) g_caps.avx512bf16 = 0;
    if (!(g_caps.avx512f && g_caps.avx512bw && g_caps.avx512vl && g_caps.avx512bf16)) g_caps.amx_bf16 = 0;

    static const struct { const char *name; size_t off; } names[] = {
        {"avx512f", offsetof(lm_cpu_caps, avx512f)},       {"avx512bw", offsetof(lm_cpu_caps, avx512bw)},
        {"avx512vl", offsetof(lm_cpu_caps, avx512vl)},     {"avx512dq", offsetof(lm_cpu_caps, avx512dq)},
        {"avx512vnni", offsetof(lm_cpu_caps, avx512vnni)}, {"avx512bf16", offsetof(lm_cpu_caps, avx512bf16)},
        {"avx2", offsetof(lm_cpu_caps, avx2)},             {"fma", offsetof(lm_cpu_caps, fma)},
        {"f16c", offsetof(lm_cpu_caps, f16c)},             {"amx_bf16", offsetof(lm_cpu_caps, amx_bf16)},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!*(const int *)((const char *)&g_caps + names[i].off)) continue;
        if (g_caps_str[0]) strcat(g_caps_str, " ");
        strcat(g_caps_str, names[i].name);
    }
    if (!g_caps_str[0]) strcpy(g_caps_str, "none");
}

const lm_cpu_caps *lm_cpu_caps_get(void)
{
    pthread_once(&g_caps_once, detect);
    return &g_caps;
}

const char *lm_cpu_features(void)
{
    lm_cpu_caps_get();
    return g_caps_str;
}

const char *loom_cpu_features(void) { return lm_cpu_features(); }
