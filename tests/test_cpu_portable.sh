#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The portable build of the CPU kernels (docs/kernels.md): test_ops, test_ops_rows,
# test_textenc and test_dit again with CANVAS_CPU=portable, against the same references
# and goldens, the same tolerances (test_textenc covers the encoder's ops: grouped
# attention, half-split rope, SwiGLU, exact GELU).
# test_ops also checks that the variable really selected the portable kernels. In the
# sanitizer build only test_ops and test_ops_rows run: test_dit on portable kernels under
# ASan + UBSan takes over ten minutes on two cores (the Release run covers it).
set -u
source "$(dirname "$0")/cli_lib.sh"
build="$(dirname "$cli")"
programs="test_ops test_ops_rows test_textenc test_dit"
[ "${CANVAS_TEST_SANITIZED:-0}" = 1 ] && programs="test_ops test_ops_rows"
for program in $programs; do
    if out="$(CANVAS_CPU=portable "$build/$program" 2>&1)"; then
        ok
    else
        bad "CANVAS_CPU=portable $program: $(echo "$out" | grep -v '^ok ' | tail -20)"
    fi
    [ "$program" = test_ops ] && { grep -qx "kernels: portable" <<<"$out" && ok || bad "test_ops did not report the portable kernels"; }
done
summary
