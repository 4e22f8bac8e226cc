/* Descriptor-leak checks for tests: fds_mark() remembers the open descriptors of this
 * process (/proc/self/fd), fds_check(what) fails a CHECK naming every one opened since. */
#ifndef LOOM_TESTS_FD_CHECK_H
#define LOOM_TESTS_FD_CHECK_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/check.h"

/* Open descriptors of this process, as a bitmap of fd numbers < 1024; returns the count. */
static int open_fds(unsigned char *set)
{
    memset(set, 0, 1024);
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0, self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            int fd = atoi(e->d_name);
            if (fd == self) continue;
            if (fd < 1024) set[fd] = 1;
            n++;
        }
    closedir(d);
    return n;
}

static unsigned char g_before[1024];
static int g_n_before;

static void fds_mark(void) { g_n_before = open_fds(g_before); }

/* Fail with the paths of any descriptor opened since fds_mark(). */
static void fds_check(const char *what)
{
    unsigned char now[1024];
    int n = open_fds(now);
    CHECK(n == g_n_before, "%s: %d descriptors open before, %d after", what, g_n_before, n);
    for (int fd = 0; fd < 1024; fd++)
        if (now[fd] && !g_before[fd]) {
            char link[64], target[512] = "?";
            snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
            ssize_t k = readlink(link, target, sizeof target - 1);
            if (k > 0) target[k] = '\0';
            CHECK(0, "%s: fd %d left open (%s)", what, fd, target);
        }
}

#endif
