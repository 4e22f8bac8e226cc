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
/* OpenBLAS and FFmpeg are not linked but loaded at first use (lib/core/blas.h, ffmpeg.h):
 * they must be found (the audio read runs from tests/, where ctest runs this). */
int main(void)
{
    float *pcm = NULL;
    size_t n = 0;
    char err[512] = "";
    int audio = loom_audio_load("data/audio/tone_s16.wav", NULL, &pcm, &n, err, sizeof err);
    if (audio != 0 || n != 8000) fprintf(stderr, "audio: %d, %zu samples: %s\n", audio, n, err);
    loom_audio_pcm_free(&pcm);
    return strcmp(loom_status_str(LOOM_ERR_FORMAT), "malformed file") != 0 ||
           strncmp(loom_blas_name(), "OpenBLAS ", 9) != 0 || audio != 0 || n != 8000;
}
C
export PKG_CONFIG_PATH="$(dirname "$pc")"
san=""; grep -q '^LOOM_SANITIZE:BOOL=ON' "$build_dir/CMakeCache.txt" && san="-fsanitize=address,undefined"
if cc $san "$prefix/use.c" $(pkg-config --cflags --libs loom) -Wl,-rpath,"$libdir" -o "$prefix/use" 2>"$prefix/cc.log"; then
  ok; "$prefix/use" && ok || bad "installed program failed"
else bad "compile against installed loom: $(cat "$prefix/cc.log")"; fi
# the example its comment says builds this way, run on the bundled model
if cc $san ../examples/simple_caption.c $(pkg-config --cflags --libs loom) -Wl,-rpath,"$libdir" -o "$prefix/simple" 2>"$prefix/cc.log"; then
  ok
  [ "$("$prefix/simple" ../models/loom-tiny.gguf ../models/loom-tiny-mmproj.gguf ../examples/media/scene2.png)" = \
    "$("$prefix/bin/loom" caption -q --whole -m ../models/loom-tiny.gguf ../examples/media/scene2.png)" ] && ok || bad "installed simple_caption differs from loom caption"
else bad "compile examples/simple_caption.c against installed loom: $(cat "$prefix/cc.log")"; fi
"$prefix/bin/loom" version >/dev/null && ok || bad "installed loom version"
# FFmpeg is loaded at first use, not linked: no libav*/libsw* among the NEEDED libraries.
for f in "$prefix/bin/loom" "$libdir/libloom.so"; do
  needed=$(readelf -d "$f" 2>&1 | grep NEEDED) && ok || bad "readelf -d $f: no NEEDED entries"
  ff=$(echo "$needed" | grep -oE 'lib(av|sw)[a-z]*\.so[.0-9]*' | tr '\n' ' ')
  [ -z "$ff" ] && ok || bad "$f links FFmpeg: $ff"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
