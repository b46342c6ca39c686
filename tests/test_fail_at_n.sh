#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fail_at_n.sh — out of memory at every allocation of `canvas debug case`, through the
# command line, as SQLite tests malloc: CANVAS_FAIL_ALLOC=N fails the N-th allocation once
# (transient), N+ fails it and every later one (persistent), N:class counts one class only.
# For N = 1, 2, 3, ... until a run completes, every failing run must
#   exit 3, print exactly one line on stderr and that line says "out of memory",
#   leave no output (neither OUT nor OUT.tmp),
#   and, in the ASan build, report no leak and no error (LeakSanitizer makes the exit code
#   non-zero, and its report is looked for on stderr);
# the run that completes must write the same file as an undisturbed run (cmp).
# Also checks --report / --trace from the command line (keys, phases, event structure).
#
# Which N (a run costs ~30 ms in Release, more under ASan; a run makes ~2,500 allocations,
# most of them JSON scratch in jansson: ~1,900 parsing safetensors headers and configs,
# ~190 building the output file's header):
#   every N from 1 to 200 (case.json, inputs, config: every site in order), then every
#   7th N until a run completes at C, then every N of the last 450 before C (arch check,
#   wiring, placement, the forward's arena / attention / GEMM scratch, the taps, st_write's
#   header, the rename): so every site kind outside the bulk JSON parse is hit at every
#   occurrence, and the JSON parse's sites every 7th allocation. That transient; the
#   persistent sweep (N+) is lighter: every N to 50, every 11th, every N of the last 300.
#   With --vram (streaming through the double buffer, 0 resident blocks): every allocation
#   of the weights, activations and staging classes (N:class, all the device-side sites:
#   residency, arena, copies; N+:weights too), then all classes transient: every 11th N
#   and every N of the last 300. ~1,950 runs: ~45 s in Release, ~2-3 min under ASan.
# Those sweeps run the transformer alone (a dit case: no fallback there). Then a whole edit
# with fallback on (below, recover_sweep): ~700 runs more.
set -u
cli=${CANVAS_CLI:?CANVAS_CLI must name the built canvas}
tests=${CANVAS_TEST_DIR:?CANVAS_TEST_DIR must name tests/}
case_dir=$tests/golden/cases/dit-edit-basic
tmp=$(mktemp -d /tmp/canvas_fail_at_n.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

failures=0
runs=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

out=$tmp/out.safetensors

# One run with CANVAS_FAIL_ALLOC=$1 and the flags after it. Returns 0 when it completed
# (and checks its output), 1 when it failed (and checks that it failed cleanly).
run_at() {
    local spec=$1
    shift
    rm -f "$out" "$out.tmp"
    CANVAS_FAIL_ALLOC=$spec "$cli" debug case "$case_dir" --out "$out" "$@" >/dev/null 2>"$tmp/err"
    local rc=$?
    runs=$((runs + 1))
    if grep -q -e "Sanitizer" -e "runtime error" "$tmp/err"; then
        fail "N=$spec $*: sanitizer report"
        head -30 "$tmp/err" >&2
    fi
    if [ $rc -eq 0 ]; then
        cmp -s "$out" "$tmp/ref.safetensors" || fail "N=$spec $*: the completed run's output differs from an undisturbed run"
        return 0
    fi
    [ $rc -eq 3 ] || fail "N=$spec $*: exit code $rc, wanted 3: $(head -3 "$tmp/err")"
    local lines
    lines=$(wc -l <"$tmp/err")
    [ "$lines" -eq 1 ] || fail "N=$spec $*: $lines lines on stderr, wanted 1: $(head -3 "$tmp/err")"
    grep -q "out of memory" "$tmp/err" || fail "N=$spec $*: no 'out of memory' on stderr: $(head -1 "$tmp/err")"
    [ ! -e "$out" ] || fail "N=$spec $*: the output was left behind"
    [ ! -e "$out.tmp" ] || fail "N=$spec $*: $out.tmp was left behind"
    return 1
}

# sweep SUFFIX CLASS DENSE STRIDE TAIL [flags...]: N = 1..DENSE, then every STRIDE-th N
# until a run completes at C, then every N in [C - TAIL, C) not run yet; all runs before
# the first completion must fail, the first completion is the last allocation + 1.
sweep() {
    local suffix=$1 class=$2 dense=$3 stride=$4 tail=$5
    shift 5
    local n=1 completed=0
    declare -A done_n=()
    while [ $completed -eq 0 ]; do
        if run_at "$n$suffix$class" "$@"; then completed=$n; fi
        done_n[$n]=1
        if [ $n -lt "$dense" ]; then n=$((n + 1)); else n=$((n + stride)); fi
        if [ $n -gt 100000 ]; then
            fail "sweep $suffix$class $*: no run completed"
            return
        fi
    done
    local first=$completed m
    for ((m = completed - tail; m < completed; m++)); do
        [ $m -ge 1 ] || continue
        [ -z "${done_n[$m]:-}" ] || continue
        if run_at "$m$suffix$class" "$@"; then
            [ $m -lt $first ] && first=$m
        elif [ $m -gt $first ]; then
            fail "N=$m$suffix$class $*: failed although N=$first completed"
        fi
    done
    echo "  fail-at-N${suffix}${class} ${*:-(no flags)}: every run before N=$first failed cleanly; N=$first completed" \
         "(last allocation $((first - 1)))"
    sweep_first=$first
}

# A run of this case makes ~2,500 allocations (JSON scratch, weights, activations): a
# sweep that completes far earlier means a failure was swallowed somewhere, not survived.
expect_many() {
    [ "$sweep_first" -ge 1000 ] || fail "sweep $*: completed at N=$sweep_first: an allocation failure was swallowed"
}

# The undisturbed reference.
"$cli" debug case "$case_dir" --out "$tmp/ref.safetensors" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }

start=$SECONDS
sweep "" "" 200 7 450
expect_many "(no flags)"
sweep "+" "" 50 11 300
expect_many "+ (no flags)"
# Streaming through the double buffer on a capped device (0 resident blocks).
vram=(--vram 4M --resident-blocks 0 --link-bandwidth 4G/s)
for class in weights activations staging; do
    sweep "" ":$class" 1000000 1 0 "${vram[@]}"
done
sweep "+" ":weights" 1000000 1 0 "${vram[@]}"
sweep "" "" 1 11 300 "${vram[@]}"
expect_many "${vram[*]}"

# Fallback on (the default) over a whole edit (edit-cfg: load, vae-encode, plan, the CFG
# steps, vae-decode): every allocation of the weights and activations classes failed once
# must be recovered — one or more "fallback:" lines, exit 0, the undisturbed output — and
# failed from then on (N+, every 5th N) must end in exit 3 after the fallbacks, with one error line,
# nothing written and, under ASan, nothing leaked. N runs until a run's failure never
# fired (no fallback line): that N - 1 is the number of allocation sites of the class.
edit_case=$tests/golden/cases/edit-cfg
"$cli" debug case "$edit_case" --out "$tmp/edit-ref.safetensors" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
recover_sweep() {
    local class=$1 n=1 rc
    shift
    while :; do
        rm -f "$out" "$out.tmp"
        CANVAS_FAIL_ALLOC=$n:$class "$cli" debug case "$edit_case" --out "$out" "$@" >/dev/null 2>"$tmp/err"
        rc=$?
        runs=$((runs + 1))
        grep -q -e "Sanitizer" -e "runtime error" "$tmp/err" && fail "N=$n:$class $*: sanitizer report"
        if ! grep -q "fallback:" "$tmp/err"; then
            [ $rc -eq 0 ] || fail "N=$n:$class $*: exit $rc without a fallback: $(head -2 "$tmp/err")"
            break
        fi
        if [ $rc -ne 0 ]; then
            fail "N=$n:$class $*: not recovered (exit $rc): $(grep -v fallback: "$tmp/err" | head -1)"
        elif ! cmp -s "$out" "$tmp/edit-ref.safetensors"; then
            fail "N=$n:$class $*: recovered, but the output differs from the undisturbed run"
        fi
        # persistent from the same allocation (every 5th N): every retry fails too
        if [ $((n % 5)) -ne 1 ]; then
            n=$((n + 1))
            continue
        fi
        rm -f "$out" "$out.tmp"
        CANVAS_FAIL_ALLOC=$n+:$class "$cli" debug case "$edit_case" --out "$out" "$@" >/dev/null 2>"$tmp/err"
        rc=$?
        runs=$((runs + 1))
        grep -q -e "Sanitizer" -e "runtime error" -e "LeakSanitizer" "$tmp/err" && fail "N=$n+:$class $*: sanitizer report"
        [ $rc -eq 3 ] || fail "N=$n+:$class $*: exit $rc, wanted 3: $(grep -v fallback: "$tmp/err" | head -1)"
        [ "$(grep -vc -e "^canvas debug case: fallback:" -e "^canvas debug case: plan:" "$tmp/err")" -eq 1 ] ||
            fail "N=$n+:$class $*: not one error line after the plan and fallback lines: $(head -3 "$tmp/err")"
        [ ! -e "$out" ] && [ ! -e "$out.tmp" ] || fail "N=$n+:$class $*: output left behind"
        n=$((n + 1))
    done
    echo "  edit with fallback, $class ${*:-(host)}: $((n - 1)) allocation sites, each failed once: recovered" \
         "with the same output; failed from then on (every 5th): exit 3"
    [ $n -gt 1 ] || fail "recover sweep $class $*: no allocation of the class was seen"
}
for class in weights activations; do
    recover_sweep $class
    recover_sweep $class "${vram[@]}"
done

# A host cap too small: the same clean failure, and the report still written.
rm -f "$out" "$tmp/r.json"
"$cli" debug case "$case_dir" --out "$out" --ram 200K --report "$tmp/r.json" 2>"$tmp/err"
rc=$?
[ $rc -eq 3 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "host RAM cap" "$tmp/err" ||
    fail "--ram 200K: exit $rc: $(cat "$tmp/err")"
[ ! -e "$out" ] && [ ! -e "$out.tmp" ] || fail "--ram 200K: output left behind"
[ -s "$tmp/r.json" ] || fail "--ram 200K: no report after the failure"
# A device too small even for the double buffer: exit 3 naming what it needs.
"$cli" debug case "$case_dir" --out "$out" --vram 1M 2>"$tmp/err"
rc=$?
[ $rc -eq 3 ] && grep -q "even with every block streamed" "$tmp/err" || fail "--vram 1M: exit $rc: $(cat "$tmp/err")"
# Usage errors: exit 2.
# (--device cpu: on a CUDA GPU --resident-blocks needs no --vram)
for bad in "--vram 12X" "--link-bandwidth 1G/s" "--device cpu --resident-blocks 1" "--vram 4M --resident-blocks 3" "--threads 0"; do
    # shellcheck disable=SC2086
    "$cli" debug case "$case_dir" --out "$out" $bad 2>/dev/null
    rc=$?
    [ $rc -eq 2 ] || fail "'$bad': exit $rc, wanted 2"
done
[ ! -e "$out" ] || fail "a usage error left an output"

# --report and --trace from the command line: the promised keys and a trace Perfetto opens.
if ! "$cli" debug case "$case_dir" --out "$out" "${vram[@]}" --report "$tmp/r.json" --trace "$tmp/t.json" 2>"$tmp/err"; then
    fail "report run: $(cat "$tmp/err")"
fi
cmp -s "$out" "$tmp/ref.safetensors" || fail "the streamed run's output differs from the unplaced run's"
if command -v python3 >/dev/null; then
    python3 - "$tmp/r.json" "$tmp/t.json" <<'EOF' || fail "report / trace structure (above)"
import json, sys
report, trace = (json.load(open(p)) for p in sys.argv[1:3])
for key in ("device_peak_bytes", "host_peak_bytes", "pinned_peak_bytes", "fallbacks"):
    assert isinstance(report[key], int), key
assert report["device"] == "gpu" and report["device_cap_bytes"] == 4 << 20
names = [p["name"] for p in report["phases"]]
assert names == ["load", "step 0", "write"], names
for p in report["phases"]:
    assert isinstance(p["device_peak_bytes"], int) and isinstance(p["seconds"], float), p
    assert p["device_peak_bytes"] <= report["device_cap_bytes"]
step = report["phases"][1]
assert step["device_peak_bytes_by_class"]["weights"] > 0 and step["device_peak_bytes_by_class"]["activations"] > 0
assert report["device_peak_bytes"] == max(p["device_peak_bytes"] for p in report["phases"])
assert report["transfer_bytes"] > 0
events = trace["traceEvents"]
assert trace["displayTimeUnit"] == "ms" and len(events) > 2
assert all({"name", "ph", "pid"} <= e.keys() for e in events)
timed = [e for e in events if e["ph"] != "M"]
assert all(isinstance(e["ts"], int) for e in timed)
assert [e["ts"] for e in timed] == sorted(e["ts"] for e in timed)
phases = [e for e in events if e["ph"] == "X"]
assert [e["name"] for e in phases] == names and all(e["dur"] >= 0 for e in phases)
counters = [e for e in events if e["ph"] == "C"]
assert counters and all(all(isinstance(v, int) for v in e["args"].values()) for e in counters)
assert any(e["name"].startswith("gpu") for e in counters)
print("  report: device peak %d of cap %d, phases %s; trace: %d events" %
      (report["device_peak_bytes"], report["device_cap_bytes"], names, len(events)))
EOF
fi

echo "$runs runs in $((SECONDS - start)) s, $failures failures"
[ $failures -eq 0 ]
