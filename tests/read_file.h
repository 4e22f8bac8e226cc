/*
 * A whole file in memory, for the tests: read_file(path, &n) returns a malloc'd copy of its n
 * bytes with one NUL byte after them (so text can be used as a string), or NULL with n 0 when
 * the file cannot be opened or read in full. read_f32(path, n) returns a file of exactly n
 * float32 values (a fixture), or NULL when it is missing or of another size. The caller frees both.
 */
#ifndef LOOM_TESTS_READ_FILE_H
#define LOOM_TESTS_READ_FILE_H

#include <stdio.h>
#include <stdlib.h>

static inline unsigned char *read_file(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    unsigned char *b = len >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)len + 1) : NULL;
    if (b && fread(b, 1, (size_t)len, f) == (size_t)len) {
        b[len] = 0;
        *n = (size_t)len;
    } else {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static inline float *read_f32(const char *path, size_t want)
{
    size_t n;
    unsigned char *b = read_file(path, &n);
    if (b && n == want * sizeof(float)) return (float *)b;   /* malloc's alignment suits float */
    free(b);
    return NULL;
}

#endif
