#!/usr/bin/env bash
# CLI basics: help, version, usage errors and their exit codes.
set -u
loom="$1"
fail=0; pass=0
check() { # check NAME EXPECTED_RC CMD...
  local name="$1" want="$2"; shift 2
  "$@" >/tmp/loom_cli_out.$$ 2>&1; local rc=$?
  if [ "$rc" -eq "$want" ]; then pass=$((pass+1)); else echo "FAIL $name: rc $rc, want $want"; cat /tmp/loom_cli_out.$$; fail=$((fail+1)); fi
}
check help 0 "$loom" --help
check no-args 2 "$loom"
check unknown 2 "$loom" frobnicate
check version 0 "$loom" version
check version-help 0 "$loom" version --help
check version-extra 2 "$loom" version extra
"$loom" version | grep -q '^loom 0\.' && pass=$((pass+1)) || { echo "FAIL version text"; fail=$((fail+1)); }
"$loom" frobnicate 2>&1 | grep -q "unknown command 'frobnicate'" && pass=$((pass+1)) || { echo "FAIL unknown message"; fail=$((fail+1)); }
rm -f /tmp/loom_cli_out.$$
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
