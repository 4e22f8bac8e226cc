/* Atomic output files (temporary file beside the target + fsync + rename). */
#include "lib/core/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int lm_outfile_open(lm_outfile *o, const char *path, lm_error *err)
{
    memset(o, 0, sizeof *o);
    const size_t n = strlen(path), room = 48;
    char *tmp = malloc(n + room);
    if (!tmp) return lm_fail(err, LOOM_ERR_NO_MEMORY, "%s: out of memory", path);
    memcpy(tmp, path, n);
    /* O_EXCL with mode 0666 lets the kernel apply the umask, so no thread has to read it
     * (umask() is process-wide); the name is unique per process and call */
    static atomic_ulong seq;
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 64; tries++) {
        snprintf(tmp + n, room, ".tmp-%ld-%lu", (long)getpid(), (unsigned long)atomic_fetch_add(&seq, 1));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        int rc = lm_fail(err, LOOM_ERR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int rc = lm_fail(err, LOOM_ERR_IO, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    o->f = f;
    o->tmp = tmp;
    o->path = path;
    return 0;
}

int lm_outfile_commit(lm_outfile *o, int ok, lm_error *err)
{
    int e = ok ? 0 : errno;
    if (ok && (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0)) { ok = 0; e = errno; }
    if (fclose(o->f) != 0 && ok) { ok = 0; e = errno; }
    o->f = NULL;
    int rc = 0;
    if (!ok) rc = lm_fail(err, LOOM_ERR_IO, "%s: write failed: %s", o->path, strerror(e ? e : EIO));
    else if (rename(o->tmp, o->path) != 0)
        rc = lm_fail(err, LOOM_ERR_IO, "%s: cannot rename %s into place: %s", o->path, o->tmp, strerror(errno));
    if (rc < 0) unlink(o->tmp);
    free(o->tmp);
    memset(o, 0, sizeof *o);
    return rc;
}

void lm_outfile_abort(lm_outfile *o)
{
    if (!o || !o->tmp) return;
    if (o->f) fclose(o->f);
    unlink(o->tmp);
    free(o->tmp);
    memset(o, 0, sizeof *o);
}
