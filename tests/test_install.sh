#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The installed tree works for a program that uses it (docs/install.md): `cmake --install`
# of the build into a prefix under the build folder, then the example of docs/api.md
# (taken from the page, so the page and this test cannot drift) built against that prefix
# with pkg-config and with CMake's find_package, linked to libcanvas.so and to libcanvas.a,
# as C and as C++. Each program runs: with no model folder there, the library must answer
# with its own error naming the folder. libcanvas.so exports canvas_* and nothing else,
# every function of canvas.h among them; canvas_version() is the header's and the .pc's version.
set -u
source "$(dirname "$0")/cli_lib.sh"
build="$(cd "$(dirname "$cli")" && pwd)"
root="$(cd "$tests/.." && pwd)"
top="$build/test_install"       # prefix/ is installed afresh each run; consumer/ is reused
prefix="$top/prefix"
flags=(-Wall -Wextra -Werror)
if [ "${CANVAS_TEST_SANITIZED:-0}" = 1 ]; then flags+=(-fsanitize=address,undefined); fi

rm -rf "$prefix"
mkdir -p "$top"
if ! cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1; then
    cat "$work/install.log"
    bad "cmake --install $build failed"
    summary
    exit
fi
libdir="$(dirname "$(find "$prefix" -name libcanvas.a)")"
for file in include/canvas.h bin/canvas share/man/man1/canvas.1 share/bash-completion/completions/canvas; do
    check "[ -f '$prefix/$file' ]" "$file not installed"
done
for file in libcanvas.so libcanvas.a pkgconfig/canvas.pc cmake/canvas/canvasConfig.cmake \
            cmake/canvas/canvasConfigVersion.cmake cmake/canvas/canvasTargets.cmake; do
    check "[ -e '$libdir/$file' ]" "$libdir/$file not installed"
done
soname="$(readelf -d "$libdir/libcanvas.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
check "[ -n '$soname' ] && [ -L '$libdir/$soname' ] && [ -f \"\$(readlink -f '$libdir/libcanvas.so')\" ]" \
      "libcanvas.so has no soname link ($soname)"
check "[ \"\$('$prefix/bin/canvas' --version)\" = 'canvas $(sed -n 's/^#define CANVAS_VERSION "\(.*\)"$/\1/p' "$root/include/canvas.h")' ]" \
      "the installed canvas --version is not the header's version"
check "[ -z \"\$(groff -man -ww -z '$prefix/share/man/man1/canvas.1' 2>&1)\" ]" \
      "groff warns about the man page"

# The exports: canvas_* only, and every function the header declares.
exports="$(nm -D --defined-only "$libdir/libcanvas.so" | awk '{ print $NF }' | sort)"
leaked="$(grep -v '^canvas_' <<<"$exports")"
check "[ -z '$leaked' ]" "libcanvas.so exports symbols outside canvas_*: $(echo $leaked | head -c 400)"
declared="$(grep -oE '\bcanvas_[a-z0-9_]+\(' "$prefix/include/canvas.h" | tr -d '(' | sort -u)"
missing="$(comm -23 <(echo "$declared") <(echo "$exports"))"
check "[ -n '$declared' ] && [ -z '$missing' ]" "canvas.h declares functions libcanvas.so lacks: $missing"

# The example: the first C block of docs/api.md's "A whole edit".
awk '/^## A whole edit/ { section = 1 } section && /^```c$/ { inside = 1; next }
     inside && /^```$/ { exit } inside { print }' "$root/docs/api.md" >"$work/example.c"
check "grep -q 'int main' '$work/example.c'" "no example found in docs/api.md"
cp "$work/example.c" "$work/example.cpp"

# run NAME BINARY LINKAGE: the example starts, reaches the library and gets its error for the
# missing model folder (exit 1 from the example's first error path); LINKAGE is the libcanvas
# it must (shared) or must not (static) load.
run() {
    local name="$1" binary="$2" linkage="$3" out rc
    if [ ! -x "$binary" ]; then bad "$name: not built"; return; fi
    out="$(cd "$work" && ASAN_OPTIONS=detect_leaks=0 "$binary" 2>&1)"
    rc=$?
    if [ "$rc" -ne 1 ] || ! grep -q 'Qwen-Image-Edit-2511' <<<"$out"; then
        bad "$name: exit $rc, wanted 1 and the library's error naming the model folder: $out"
    else
        ok
    fi
    if [ "$linkage" = shared ]; then
        check "readelf -d '$binary' | grep -q 'NEEDED.*\\[$soname\\]'" "$name does not load $soname"
    else
        check "! readelf -d '$binary' | grep -q 'NEEDED.*libcanvas'" "$name (static) loads libcanvas.so"
    fi
}

# pkg-config. The static link names libcanvas.a itself (the .so next to it would win over
# -lcanvas) and takes the private libraries from --static; --as-needed drops the -lcanvas.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
check "[ \"\$(pkg-config --modversion canvas)\" = '$(sed -n 's/^#define CANVAS_VERSION "\(.*\)"$/\1/p' "$root/include/canvas.h")' ]" \
      "canvas.pc's version is not the header's"
for lang in c cpp; do
    compiler=cc; std=-std=c11
    if [ "$lang" = cpp ]; then compiler=c++; std=-std=c++11; fi
    # shellcheck disable=SC2046 # pkg-config's flags are words
    if "$compiler" "$std" -pedantic "${flags[@]}" "$work/example.$lang" -o "$work/pc_${lang}_shared" \
        $(pkg-config --cflags --libs canvas) -Wl,-rpath,"$libdir" 2>"$work/cc.log"; then ok
    else bad "pkg-config shared $lang: $(cat "$work/cc.log")"; fi
    # shellcheck disable=SC2046
    if "$compiler" "$std" -pedantic "${flags[@]}" "$work/example.$lang" -o "$work/pc_${lang}_static" \
        $(pkg-config --cflags canvas) -Wl,--as-needed "$libdir/libcanvas.a" $(pkg-config --static --libs canvas) \
        2>"$work/cc.log"; then ok
    else bad "pkg-config static $lang: $(cat "$work/cc.log")"; fi
    run "pkg-config shared $lang" "$work/pc_${lang}_shared" shared
    run "pkg-config static $lang" "$work/pc_${lang}_static" static
done

# The version the program was built with is the one that runs.
cat >"$work/version.c" <<'EOF'
#include <stdio.h>
#include <string.h>

#include <canvas.h>

int main(void)
{
    char parts[32];
    snprintf(parts, sizeof parts, "%d.%d.%d", CANVAS_VERSION_MAJOR, CANVAS_VERSION_MINOR, CANVAS_VERSION_PATCH);
    printf("%s\n", canvas_version());
    return strcmp(canvas_version(), CANVAS_VERSION) != 0 || strcmp(parts, CANVAS_VERSION) != 0;
}
EOF
# shellcheck disable=SC2046
if cc -std=c11 "${flags[@]}" "$work/version.c" -o "$work/version" $(pkg-config --cflags --libs canvas) \
    -Wl,-rpath,"$libdir" 2>"$work/cc.log" && [ "$("$work/version")" = "$(pkg-config --modversion canvas)" ]; then ok
else bad "canvas_version() differs from CANVAS_VERSION, its parts or canvas.pc: $(cat "$work/cc.log")"; fi

# find_package: one small CMake project builds the four programs; its build folder is kept
# between runs, so only the first run pays for configuring it.
consumer="$top/consumer"
mkdir -p "$consumer/src"
cp "$work/example.c" "$work/example.cpp" "$consumer/src/"
cat >"$consumer/src/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(canvas_consumer C CXX)
find_package(canvas 0.1 REQUIRED)
foreach(lang c cpp)
  add_executable(cmake_${lang}_shared example.${lang})
  target_link_libraries(cmake_${lang}_shared PRIVATE canvas::canvas)
  add_executable(cmake_${lang}_static example.${lang})
  target_link_libraries(cmake_${lang}_static PRIVATE canvas::canvas_static)
endforeach()
EOF
if cmake -S "$consumer/src" -B "$consumer/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
       -DCMAKE_C_FLAGS="${flags[*]}" -DCMAKE_CXX_FLAGS="${flags[*]}" >"$work/cmake.log" 2>&1 &&
   cmake --build "$consumer/build" -j2 >>"$work/cmake.log" 2>&1; then ok
else bad "the find_package(canvas) project did not build: $(tail -n 30 "$work/cmake.log")"; fi
for lang in c cpp; do
    run "find_package shared $lang" "$consumer/build/cmake_${lang}_shared" shared
    run "find_package static $lang" "$consumer/build/cmake_${lang}_static" static
done
summary
