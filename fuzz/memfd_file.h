/* For file-based fuzz targets: the input becomes the contents of one in-memory file (memfd),
 * named by a /proc/self/fd path, so a loader's real open/fstat/mmap path runs on it.
 * memfd_file_init once (LLVMFuzzerInitialize), then memfd_file_put per input. */
#ifndef LOOM_FUZZ_MEMFD_FILE_H
#define LOOM_FUZZ_MEMFD_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static int  g_fd = -1;
static char g_path[64];

static void memfd_file_init(const char *name)
{
    g_fd = memfd_create(name, 0);
    if (g_fd < 0) __builtin_trap();
    snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
}

/* Replace the file's contents with data[0..size); 0 or -1. */
static int memfd_file_put(const uint8_t *data, size_t size)
{
    if (ftruncate(g_fd, 0) != 0) return -1;
    for (size_t off = 0; off < size;) {
        ssize_t w = pwrite(g_fd, data + off, size - off, (off_t)off);
        if (w <= 0) return -1;
        off += (size_t)w;
    }
    return 0;
}

#endif
