"""PyTorch side of bench/bench_vq.c: random-weight codec files at loom-tiny's sizes, and the
reference decode timings on them.

    codec_torch.py make DIR            write DIR/vq.gguf and DIR/ac.gguf (VQConfig(), ACConfig()
                                       defaults = loom-tiny's shapes; random weights, seed 0)
    codec_torch.py vq PATH THREADS ITERS      seconds per image: decode_codes + to_pixels
    codec_torch.py ac PATH THREADS ITERS SECS seconds per second of audio: decode_codes + vocode

Timings print as one line `seconds <value>` (best of ITERS after one warm-up run); a trailing
--cpu-time times by process CPU time (time.process_time) instead of wall time.
Codes are random (seed 1); the work does not depend on their values.
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from loompy import vq  # noqa: E402
from loompy import audiocodec as ac  # noqa: E402
from loompy.malloc import rerun_peer_with_tcmalloc  # noqa: E402


CLOCK = time.perf_counter


def best_time(fn, iters):
    fn()
    ts = []
    for _ in range(iters):
        t = CLOCK()
        fn()
        ts.append(CLOCK() - t)
    return min(ts)


def main(argv):
    global CLOCK
    if argv and argv[-1] == "--cpu-time":
        CLOCK = time.process_time
        argv = argv[:-1]
    cmd = argv[0]
    if cmd == "make":
        os.makedirs(argv[1], exist_ok=True)
        torch.manual_seed(0)
        vq.export_gguf(vq.VQModel(vq.VQConfig()).eval(), os.path.join(argv[1], "vq.gguf"))
        ac.export_gguf(ac.AudioCodec(ac.ACConfig()).eval(), os.path.join(argv[1], "ac.gguf"))
        return
    path, threads, iters = argv[1], int(argv[2]), int(argv[3])
    rerun_peer_with_tcmalloc()
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        if cmd == "vq":
            m = vq.load_gguf(path)
            codes = torch.randint(0, m.cfg.codebook_size, (1, m.cfg.grid, m.cfg.grid), generator=g)
            s = best_time(lambda: vq.to_pixels(m.decode_codes(codes)), iters)
        elif cmd == "ac":
            secs = float(argv[4])
            m = ac.load_gguf(path)
            n = int(round(secs * m.cfg.codes_per_second))
            codes = torch.randint(0, m.cfg.codebook_size, (1, n), generator=g)
            s = best_time(lambda: ac.vocode(m.decode_codes(codes)[0], m.cfg), iters) / secs
        else:
            raise SystemExit(f"unknown command {cmd}")
    print(f"seconds {s:.6g}")


if __name__ == "__main__":
    main(sys.argv[1:])
