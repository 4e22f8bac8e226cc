/* Atomic output files: the bytes go to a temporary file beside the target (same folder, so
 * rename() is atomic), which is flushed, fsync'ed and renamed over the target only when
 * everything was written. On any failure the temporary file is removed and an existing file
 * at the target is left as it was; readers never see a partial file. */
#ifndef LM_OUTFILE_H
#define LM_OUTFILE_H

#include <stdio.h>

#include "lib/core/error.h"

typedef struct lm_outfile {
    FILE       *f;      /* open for writing ("wb") until commit/abort; owned */
    char       *tmp;    /* the temporary file's name, "<path>.tmp-XXXXXX"; owned */
    const char *path;   /* the target, borrowed (must outlive the lm_outfile) */
} lm_outfile;

/* Create the temporary file for `path` (mode 0666 & ~umask once committed). On failure
 * nothing is left behind and *o is zeroed. */
int lm_outfile_open(lm_outfile *o, const char *path, lm_error *err);

/* Flush, fsync and close the temporary file and rename it over the target. `ok` = 0 means
 * the caller's writes failed (errno still says why): the file is discarded and the failure
 * reported as "<path>: write failed: <reason>". On any failure the temporary file is removed.
 * Frees everything in *o either way. */
int lm_outfile_commit(lm_outfile *o, int ok, lm_error *err);

/* Close and remove the temporary file (a failure the caller reports itself); NULL-safe. */
void lm_outfile_abort(lm_outfile *o);

#endif
