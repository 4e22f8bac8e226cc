#!/usr/bin/env bash
# CLI basics: help, version, usage errors and their exit codes.
set -u
loom="$1"
. "$(dirname "$0")/check.sh"
check help 0 "$loom" --help
check no-args 2 "$loom"
check unknown 2 "$loom" frobnicate
check version 0 "$loom" version
check version-help 0 "$loom" version --help
check version-extra 2 "$loom" version extra
"$loom" version | grep -q '^loom 0\.' && ok || bad "version text"
check unknown-message 2 "$loom" frobnicate
has err "unknown command 'frobnicate'"
finish
