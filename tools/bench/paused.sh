#!/bin/bash
# Run a command with loom's data generation and training stopped, so a benchmark has the CPU
# to itself:  tools/bench/paused.sh build/bench/bench_kernels 5 blocks
# It stops (SIGSTOP) every process whose command line names tools/data/ or tools/train/ and
# all their descendants: `train.py --procs 2` runs its data-parallel workers as
# multiprocessing children whose command lines do not name train.py, and a pause that missed
# them left both cores busy. They are continued (SIGCONT) when the command ends, however it ends.
# Training schedules run by wall time, so a pause shortens the training it interrupts.
set -u
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
pids=""
for p in $(pgrep -f "tools/(data|train)/"); do
  [ "$p" = "$$" ] && continue
  pids="$pids $p $(descendants "$p" | tr '\n' ' ')"
done
pids=$(echo "$pids" | tr ' ' '\n' | sort -un | tr '\n' ' ')
resume() { [ -n "${pids// }" ] && kill -CONT $pids 2>/dev/null; }
trap resume EXIT INT TERM
if [ -n "${pids// }" ]; then
  kill -STOP $pids 2>/dev/null
  echo "paused.sh: stopped $(echo $pids | wc -w) processes:$pids" >&2
  sleep 2
fi
"$@"
