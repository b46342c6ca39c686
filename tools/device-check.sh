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
# With --device cuda the transformer and the text encoder compute on the GPU (bf16 GEMMs with
# f32 accumulation, f32 elsewhere); the VAE and the scheduler have no CUDA kernels and compute
# on the CPU in every run, so their cases are not GPU cases (counted, not checked here: the
# suite above checks them; so are the encode_prompt cases, whose runner has no device).
# Bound: max |got - want| / max |want| of the case's output (the transformer's `output`, the
# edit's `image`, the text encoder's `hidden_states`) within GPU_BOUND (default 0.03: x and
# the weights rounded to bf16 before every GEMM, through the tiny models' 2 blocks or layers).
bound="${GPU_BOUND:-0.03}"
cpu_only=0
# relative NAME FILE: the "relative" figure of tensor NAME in a `canvas debug case` output
relative() { awk -v n="$1" '$1 == n { for (i = 1; i < NF; i++) if ($i == "relative") print $(i + 1) }' "$2" | head -1; }
for case_dir in tests/golden/cases/*/; do
    [ "$have_gpu" = 1 ] || break
    name="$(basename "$case_dir")"
    op="$(sed -n 's/.*"op": *"\([a-z_]*\)".*/\1/p' "$case_dir/case.json" | head -1)"
    case "$op" in
    dit_forward) tensor=output ;;
    edit_pipeline) tensor=image ;;
    textenc_forward) tensor=hidden_states ;;
    *) cpu_only=$((cpu_only + 1)); continue ;;
    esac
    "$build/canvas" debug case "$case_dir" --out "$out/golden-$name.safetensors" --device cuda \
        >"$out/golden-$name.txt" 2>&1
    rc=$?
    rel="$(relative "$tensor" "$out/golden-$name.txt")"
    if [ $rc -ne 0 ]; then
        result "golden $name (GPU)" FAIL "exit $rc: $(tail -1 "$out/golden-$name.txt")"
    elif [ -z "$rel" ]; then
        result "golden $name (GPU)" FAIL "no '$tensor' comparison in golden-$name.txt"
    elif awk -v r="$rel" -v b="$bound" 'BEGIN { exit !(r <= b) }'; then
        result "golden $name (GPU)" PASS "$tensor relative $rel <= $bound"
    else
        result "golden $name (GPU)" FAIL "$tensor relative $rel > $bound"
    fi
done
[ "$have_gpu" = 1 ] && echo "golden cases without CUDA kernels (VAE, scheduler, encode_prompt): $cpu_only, on the CPU" |
    tee -a "$summary"
[ "$have_gpu" = 1 ] || result "golden cases, --device cuda" FAIL "no CUDA device seen"

# Resident vs streamed: the same case with every block resident and with none (streamed
# through the two slots of a 256 MiB region) writes the same bytes.
if [ "$have_gpu" = 1 ]; then
    for name in dit-edit-basic edit-cfg; do
        c=tests/golden/cases/$name
        "$build/canvas" debug case $c --device cuda --out "$out/resident-$name.safetensors" >"$out/resident-$name.txt" 2>&1 &&
            "$build/canvas" debug case $c --device cuda --vram 256M --resident-blocks 0 \
                --out "$out/streamed-$name.safetensors" >"$out/streamed-$name.txt" 2>&1
        rc=$?
        if [ $rc -ne 0 ]; then
            result "resident vs streamed: $name" FAIL "exit $rc, see resident-/streamed-$name.txt"
        elif cmp -s "$out/resident-$name.safetensors" "$out/streamed-$name.safetensors"; then
            result "resident vs streamed: $name" PASS "bit-identical"
        else
            result "resident vs streamed: $name" FAIL "outputs differ"
        fi
    done
fi

# Streaming under a --vram cap: the plan's predicted device peak against the pool's measured
# peak in the denoising steps (--report's "step N" phases), on the edit case (2 steps, true
# CFG), every block streamed (the tiny model's two blocks cost as much streamed as resident,
# so the sequential preset forces it). The CUDA region is the cap; the backend's cuBLASLt
# workspace and scratch are in both figures. The VAE passes, which the pipeline places on the
# device pass by pass after its own count (their "plan: VAE ..." lines in vram-cap.txt), are
# not in the plan's prediction: their measured peaks are written beside it.
if [ "$have_gpu" = 1 ]; then
    c=tests/golden/cases/edit-cfg
    "$build/canvas" edit --model tests/golden/models/edit-tiny --image $c/image0.png \
        --prompt-embeds $c/inputs.safetensors --steps 2 --vae-area 16384 --device cuda --vram 48M \
        --strategy sequential -o "$out/vram-cap.png" --report "$out/vram-cap.json" >"$out/vram-cap.txt" 2>&1
    rc=$?
    read -r predicted measured vae < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
ph = r.get("phases") or []
steps = [p.get("device_peak_bytes") or 0 for p in ph if str(p.get("name", "")).startswith("step")]
vae = ["%s=%d" % (p["name"].replace(" ", "_"), p.get("device_peak_bytes") or 0) for p in ph if str(p.get("name", "")).startswith("vae")]
print(r.get("predicted_device_peak_bytes") or 0, max(steps or [0]), ",".join(vae) or "-")' "$out/vram-cap.json" 2>/dev/null)
    if [ $rc -ne 0 ] || [ -z "${measured:-}" ] || [ "${measured:-0}" = 0 ]; then
        result "--vram cap: predicted vs peak 5 %" FAIL "exit $rc or no peaks, see vram-cap.txt"
    elif awk -v p="$predicted" -v m="$measured" 'BEGIN { d = p - m; if (d < 0) d = -d; exit !(d <= 0.05 * m) }'; then
        result "--vram cap: predicted vs peak 5 %" PASS "predicted $predicted, measured $measured bytes in the steps; VAE phases $vae"
    else
        result "--vram cap: predicted vs peak 5 %" FAIL "predicted $predicted, measured $measured bytes in the steps; VAE phases $vae"
    fi
fi

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
