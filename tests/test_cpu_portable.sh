#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every build of the CPU kernels (docs/kernels.md): test_ops, test_ops_rows, test_textenc
# and test_dit once per variant, CANVAS_CPU=avx512, =avx2 and =portable, against the same
# references and goldens, the same tolerances (test_textenc covers the encoder's ops:
# grouped attention, half-split rope, SwiGLU, exact GELU). A variant this CPU cannot run
# is skipped, and the script says so: the avx512 kernels need AVX-512 F/DQ/BW/VL, the
# avx2 ones AVX2, FMA and F16C (x86-64 Linux: the flags of /proc/cpuinfo).
# test_ops also checks that the variable really selected that variant. In the sanitizer
# build only test_ops and test_ops_rows run: test_dit on portable kernels under ASan +
# UBSan takes over ten minutes on two cores (the Release run covers it).
set -u
source "$(dirname "$0")/cli_lib.sh"
build="$(dirname "$cli")"
programs="test_ops test_ops_rows test_textenc test_dit"
[ "${CANVAS_TEST_SANITIZED:-0}" = 1 ] && programs="test_ops test_ops_rows"
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
for variant in avx512 avx2 portable; do
    case $variant in
    avx512) needs="avx2 fma f16c avx512f avx512dq avx512bw avx512vl" ;;
    avx2) needs="avx2 fma f16c" ;;
    *) needs="" ;;
    esac
    if [ "$(uname -m)" != x86_64 ] && [ "$variant" != portable ] || ! has $needs; then
        echo "skipped: CANVAS_CPU=$variant: this CPU has not all of $needs (those kernels are not tested here)"
        continue
    fi
    for program in $programs; do
        if out="$(CANVAS_CPU=$variant "$build/$program" 2>&1)"; then
            ok
        else
            bad "CANVAS_CPU=$variant $program: $(echo "$out" | grep -v '^ok ' | tail -20)"
        fi
        [ "$program" = test_ops ] && { grep -qx "kernels: $variant" <<<"$out" && ok || bad "test_ops did not report the $variant kernels"; }
    done
done
summary
