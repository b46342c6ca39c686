# SPDX-License-Identifier: Apache-2.0
# cli_lib.sh — sourced by the tests/test_*.sh that drive the canvas CLI: where things are,
# a scratch folder removed on exit, counters, and the one-line result ctest reads.
#   source "$(dirname "$0")/cli_lib.sh"
#   expect 4 "no such file" -- inspect /missing
#   check "[ -s '$work/out.png' ]" "no output"
#   summary
tests="${CANVAS_TEST_DIR:-$(cd "$(dirname "$0")" && pwd)}"
cli="${CANVAS_CLI:-$tests/../build/canvas}"
work="$(mktemp -d "/tmp/canvas_$(basename "$0" .sh).XXXXXX")"
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

# expect CODE NEEDLE -- ARGS...: `canvas ARGS` exits CODE with NEEDLE in stdout+stderr
expect() {
    local code="$1" needle="$2"
    shift 3
    local out rc
    out="$("$cli" "$@" 2>&1)"
    rc=$?
    if [ "$rc" -ne "$code" ]; then bad "canvas $* exited $rc, wanted $code: $out"; return; fi
    if [ -n "$needle" ] && ! grep -qF -- "$needle" <<<"$out"; then bad "canvas $*: no '$needle' in: $out"; return; fi
    ok
}

# The closing line ("N passed, N failed") and the exit status.
summary() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
