#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then build and run a program against it with
# pkg-config (shared library), as a user of the installed package would.
set -u
build_dir="$(dirname "$1")"
prefix="$(mktemp -d)"; trap 'rm -rf "$prefix"' EXIT
fail=0; pass=0
ok() { pass=$((pass+1)); }; bad() { echo "FAIL $1"; fail=$((fail+1)); }
cmake --install "$build_dir" --prefix "$prefix" >/dev/null 2>&1 && ok || bad "cmake --install"
for f in bin/loom include/loom.h; do [ -f "$prefix/$f" ] && ok || bad "missing $f"; done
pc=$(find "$prefix" -name loom.pc | head -1); [ -n "$pc" ] && ok || bad "missing loom.pc"
libdir=$(dirname "$(dirname "$pc")")
ls "$libdir"/libloom.a "$libdir"/libloom.so >/dev/null 2>&1 && ok || bad "missing libloom.a/.so in $libdir"
cat > "$prefix/use.c" <<'C'
#include <loom.h>
#include <stdio.h>
#include <string.h>
/* OpenBLAS is not linked but loaded at the first product (lib/core/blas.h): it must be found */
int main(void)
{
    return strcmp(loom_status_str(LOOM_ERR_FORMAT), "malformed file") != 0 ||
           strncmp(loom_blas_name(), "OpenBLAS ", 9) != 0;
}
C
export PKG_CONFIG_PATH="$(dirname "$pc")"
san=""; grep -q '^LOOM_SANITIZE:BOOL=ON' "$build_dir/CMakeCache.txt" && san="-fsanitize=address,undefined"
if cc $san "$prefix/use.c" $(pkg-config --cflags --libs loom) -Wl,-rpath,"$libdir" -o "$prefix/use" 2>"$prefix/cc.log"; then
  ok; "$prefix/use" && ok || bad "installed program failed"
else bad "compile against installed loom: $(cat "$prefix/cc.log")"; fi
"$prefix/bin/loom" version >/dev/null && ok || bad "installed loom version"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
