/* Atomic output files (temporary file beside the target + fsync + rename). */
#include "lib/core/outfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int lm_outfile_open(lm_outfile *o, const char *path, lm_error *err)
{
    memset(o, 0, sizeof *o);
    const size_t n = strlen(path);
    char *tmp = malloc(n + sizeof ".tmp-XXXXXX");
    if (!tmp) return lm_fail(err, LOOM_ERR_NO_MEMORY, "%s: out of memory", path);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp-XXXXXX", sizeof ".tmp-XXXXXX");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = lm_fail(err, LOOM_ERR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    /* mkstemp makes 0600; the output is an ordinary file (0666 & ~umask) */
    mode_t um = umask(0);
    umask(um);
    (void)fchmod(fd, 0666 & ~um);
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
