#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tools/device-check.sh — everything the CUDA backend needs a GPU for, in one run (about 5
# minutes on an H100 with 16 cores; budget 8): docs/cuda.md says what each part shows.
#
#   OUT=/some/folder bash tools/device-check.sh
#
# Writes every log and result under $OUT (default: device-check in the build folder) and a summary,
# $OUT/summary.txt, one line per part:
#   PASS       ran on the GPU and met its bound
#   FAIL       ran and did not (or did not run although it should have)
#   NOT BUILT  the piece it checks does not exist yet: said, never silently passed
# Exit status 0 when no part FAILed. Without a GPU (this script run on a CI machine) the GPU
# parts FAIL: a device check that saw no device has checked nothing.
#
# Knobs for running the parts that need no GPU elsewhere: BUILD_DIR (default build-device),
# JOBS (default: every CPU), SUITE=0 skips the whole test suite (slow on small machines).
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="${BUILD_DIR:-build-device}"
out="${OUT:-$root/$build/device-check}"
jobs="${JOBS:-$(nproc)}"
mkdir -p "$out"
summary="$out/summary.txt"
: >"$summary"
failed=0
t_start=$(date +%s)

# result PART STATUS DETAIL: one summary line (and the count of failures)
result() {
    printf '%-34s %-9s %s\n' "$1" "$2" "$3" | tee -a "$summary"
    [ "$2" = FAIL ] && failed=$((failed + 1))
    return 0
}

# --- the machine --------------------------------------------------------------------------
{ nvidia-smi || echo "nvidia-smi: not found or failed"; } >"$out/nvidia-smi.txt" 2>&1
gpu="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
echo "GPU: ${gpu:-none seen by nvidia-smi}" | tee -a "$summary"
{ nvcc --version || /usr/local/cuda/bin/nvcc --version; } >"$out/nvcc.txt" 2>&1

# --- 1. build with CUDA (Release, -Werror) -------------------------------------------------
if cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCANVAS_CUDA=ON >"$out/configure.txt" 2>&1 &&
    cmake --build "$build" -j "$jobs" >"$out/build.txt" 2>&1; then
    result "build (CANVAS_CUDA=ON, -Werror)" PASS "$build"
else
    result "build (CANVAS_CUDA=ON, -Werror)" FAIL "see build.txt / configure.txt"
    echo "device-check: the build failed; nothing else can run" | tee -a "$summary"
    exit 1
fi

# run_gpu_test NAME: a test program that exits 77 without a GPU; here that is a failure
run_gpu_test() {
    local name="$1" rc
    if [ ! -x "$build/$name" ]; then result "$name" "NOT BUILT" "$build/$name missing"; return; fi
    CANVAS_TEST_DIR="$root/tests" timeout 300 "$build/$name" >"$out/$name.txt" 2>&1
    rc=$?
    case $rc in
    0) result "$name" PASS "$(tail -1 "$out/$name.txt")" ;;
    77) result "$name" FAIL "no CUDA device: $(head -1 "$out/$name.txt")" ;;
    *) result "$name" FAIL "exit $rc, see $name.txt" ;;
    esac
}

# --- 2. the kernels against their CPU twins; the device, copies, fail-at-N ------------------
# test_cuda_ops: op_linear in every weight format (bound 2^-7 sum|x w|), attention (2e-5),
# norms / RoPE / modulation / GELU (1e-5), columns (exact), 150 MiB through the staging ring
# (exact), and fail-at-N over a device + backend + GEMM (each failure a clean status, no leak).
run_gpu_test test_cuda_ops
grep -q "ok   test_fail_at_n" "$out/test_cuda_ops.txt" 2>/dev/null &&
    result "fail-at-N, device allocations" PASS "test_cuda_ops: test_fail_at_n" ||
    result "fail-at-N, device allocations" FAIL "test_cuda_ops: test_fail_at_n did not pass"
run_gpu_test test_cuda_device

# --- 3. the whole test suite on the CUDA build (the CPU path) -----------------------------
if [ "${SUITE:-1}" = 0 ]; then
    result "test suite (CUDA build)" "NOT RUN" "SUITE=0"
elif timeout 420 ctest --test-dir "$build" -j "$jobs" --output-on-failure >"$out/ctest.txt" 2>&1; then
    result "test suite (CUDA build)" PASS "$(grep -E 'tests passed' "$out/ctest.txt" | tail -1)"
else
    result "test suite (CUDA build)" FAIL "$(grep -E 'tests passed|tests failed' "$out/ctest.txt" | tail -1), see ctest.txt"
fi

# --- 4. the hardware probe (test_cuda_device prints what mem_cuda_query saw) ----------------
seen="$(grep -m1 '^CUDA: ' "$out/test_cuda_device.txt" 2>/dev/null | cut -c7-)"
case "$seen" in
"" | "no CUDA device"* | "this build has no CUDA"*) have_gpu=0; result "hardware probe" FAIL "${seen:-no answer}" ;;
*) have_gpu=1; result "hardware probe" PASS "$seen" ;;
esac

# --- 5. golden cases on the GPU, resident vs streamed, --vram cap vs measured peak ---------
# These need the models to compute on a CUDA device (their host code between ops moved onto
# the backend, the pipeline creating the CUDA device and backend): not built yet. The CLI must
# say so (exit 1), never run the case on the CPU instead.
not_yet=0
for case_dir in tests/golden/cases/*/; do
    [ "$have_gpu" = 1 ] || break
    name="$(basename "$case_dir")"
    "$build/canvas" debug case "$case_dir" --out "$out/golden-$name.safetensors" --device cuda \
        >"$out/golden-$name.txt" 2>&1
    rc=$?
    if [ $rc -eq 1 ] && grep -q "do not compute on CUDA yet" "$out/golden-$name.txt"; then
        not_yet=$((not_yet + 1))
    elif [ $rc -eq 0 ]; then
        result "golden $name (GPU)" FAIL "ran, but no bound is checked here yet: see golden-$name.txt"
    else
        result "golden $name (GPU)" FAIL "exit $rc: $(tail -1 "$out/golden-$name.txt")"
    fi
done
[ "$have_gpu" = 1 ] || result "golden cases, --device cuda" FAIL "no CUDA device seen"
result "golden cases on the GPU" "NOT BUILT" "$not_yet cases refused with --device cuda (models do not compute on CUDA)"
result "resident vs streamed, bit-identical" "NOT BUILT" "needs the transformer on CUDA"
result "--vram cap: predicted vs peak 5 %" "NOT BUILT" "needs the transformer on CUDA"

# --- 6. benches: full-width 2-block forward at 8,192 image tokens ---------------------------
if [ -x "$build/bench_cuda_dit" ]; then
    if timeout 240 "$build/bench_cuda_dit" >"$out/bench_cuda_dit.txt" 2>&1; then
        result "bench_cuda_dit (ours)" PASS "$(grep -E '^resident' "$out/bench_cuda_dit.txt" | head -1)"
        grep -E '^streamed' "$out/bench_cuda_dit.txt" | head -1 | tee -a "$summary"
    else
        result "bench_cuda_dit (ours)" FAIL "exit $?, see bench_cuda_dit.txt"
    fi
    if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
        if timeout 180 python3 bench/torch_dit_cuda.py >"$out/torch_dit_cuda.txt" 2>&1; then
            result "torch_dit_cuda (PyTorch bf16)" PASS "$(tail -1 "$out/torch_dit_cuda.txt")"
        else
            result "torch_dit_cuda (PyTorch bf16)" FAIL "exit $?, see torch_dit_cuda.txt"
        fi
    else
        result "torch_dit_cuda (PyTorch bf16)" FAIL "no torch with CUDA here"
    fi
else
    result "bench_cuda_dit (ours)" "NOT BUILT" "bench/cuda/bench_cuda_dit.c is not in this tree"
fi

echo "device-check: $(($(date +%s) - t_start)) s, $failed failed; everything under $out" | tee -a "$summary"
[ "$failed" -eq 0 ]
