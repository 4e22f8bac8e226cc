"""Run the current Python command again under tcmalloc, for training and for the PyTorch
side of the benchmarks. With glibc's malloc, PyTorch hands large freed tensors back to the
kernel and faults them in again on the next use: a third of each training process's CPU went
there (31 steps a minute under tcmalloc against 18.5, docs/MODEL.md), and the audio encoder's
30-second attention matrices took ten times longer (docs/BENCHMARKS.md).
LOOM_MALLOC=glibc keeps glibc's."""
import os
import sys

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"   # Debian's libtcmalloc-minimal4


def rerun_with_tcmalloc():
    """exec this same command line with tcmalloc preloaded, when it is installed
    (scripts/setup --python) and not loaded yet; otherwise return."""
    if os.environ.get("LOOM_MALLOC") == "glibc" or not os.path.exists(TCMALLOC) \
            or TCMALLOC in os.environ.get("LD_PRELOAD", ""):
        return
    os.environ["LD_PRELOAD"] = ":".join(filter(None, [TCMALLOC, os.environ.get("LD_PRELOAD")]))
    sys.stdout.flush()
    os.execv(sys.executable, sys.orig_argv)    # orig_argv keeps `-m module`


def rerun_peer_with_tcmalloc():
    """For a benchmark's PyTorch peer: the same, then say on stderr which malloc it runs on."""
    rerun_with_tcmalloc()
    under = TCMALLOC in os.environ.get("LD_PRELOAD", "")
    print(f"PyTorch peer on {'tcmalloc' if under else 'glibc malloc'}", file=sys.stderr)


def env_without_tcmalloc():
    """This process's environment without the preload, for the programs it runs (loom itself)."""
    env = dict(os.environ)
    rest = [p for p in env.get("LD_PRELOAD", "").split(":") if p and p != TCMALLOC]
    if rest:
        env["LD_PRELOAD"] = ":".join(rest)
    else:
        env.pop("LD_PRELOAD", None)
    return env
