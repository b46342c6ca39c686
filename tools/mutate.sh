#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Mutation testing: plant plausible one-line bugs, one at a time, and check that the tests
# catch each (docs/testing.md). A mutant the tests pass is a hole in the tests.
#
#   tools/mutate.sh [SCRATCH_DIR] [NAME_FILTER]
#
# The working tree (tracked and untracked, not ignored files) is copied to SCRATCH_DIR
# (default: a new folder under /tmp; the tree itself is never edited) and built once in
# Release; a second run on the same SCRATCH_DIR rebuilds only what changed. Then for each mutant of the list below: its file is edited (the exact text must
# occur once), the CLI and the mutant's test programs are rebuilt, its tests run through
# ctest, and the file is put back. A mutant is "killed" when a test fails, "survived" when
# all pass, "broken" when it does not compile (a bad list entry, not counted). Before the
# mutants, every listed test must pass on the unmutated copy. NAME_FILTER (a grep -E
# pattern) runs only the mutants whose names match.
#
# Prints one line per mutant and "score: K of N mutants killed"; exits 1 when any survived.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
scratch="${1:-$(mktemp -d /tmp/canvas_mutate.XXXXXX)}"
filter="${2:-.}"

# name | file | tests (ctest names, space-separated) | original text | mutated text
mutants() {
    cat <<'EOF'
rmsnorm-eps-outside-sqrt|src/ops/cpu/norms.c|test_ops|1.0f / sqrtf(mean_square + eps)|1.0f / (sqrtf(mean_square) + eps)
layernorm-no-eps|src/ops/cpu/norms.c|test_ops|1.0f / sqrtf(var + eps)|1.0f / sqrtf(var + 0.0f * eps)
attention-scale-1/d|src/ops/cpu/attention.c|test_ops|.scale = 1.0f / sqrtf((float)head_dim)|.scale = 1.0f / (float)head_dim
bf16-round-down|src/tensor/dtype.c|test_dtype|bits += 0x7FFFu + ((bits >> 16) & 1u);|bits += 0x7FFFu;
size-units-decimal|src/base/size_parse.c|test_size_parse|return pow(1024.0, power);|return pow(1000.0, power);
philox-constant|src/pipeline/rng.c|test_pipeline|#define PHILOX_M0 0xD2511F53u|#define PHILOX_M0 0xD2511F52u
planner-headroom-ignored|src/pipeline/edit.c|test_hostile_cli|l->headroom_bytes = p->headroom_bytes;|l->headroom_bytes = 0;
cap-check-unrounded|src/mem/mem_device_pool.c|test_mem_device|size_t rounded = mem_range_rounded(size);|size_t rounded = size;
range-no-alignment|src/mem/mem_range.c|test_mem_device|size_t start = round_up(s->offset, align);|size_t start = round_up(s->offset, 1);
one-retry-too-many|src/pipeline/edit.c|test_hostile_cli|*attempts >= p->oom_retry_attempts|*attempts > p->oom_retry_attempts
span-one-past-data|src/io/safetensors.c|test_safetensors|if (end > data_bytes)|if (end > data_bytes + 1)
lora-rank-unchecked|src/pipeline/lora.c|test_lora|if (p->rank > (out < in ? out : in))|if (0)
lora-alpha-ignored|src/pipeline/lora.c|test_lora|p->factor = lora->scale * (alpha / (float)p->rank);|p->factor = lora->scale;
input-fifo-accepted|src/io/file_read.c|test_image test_safetensors|else if (!S_ISREG(sb.st_mode))|else if (0)
output-link-replaced|src/io/output_file.c|test_output_file|if (exists && S_ISLNK(here.st_mode))|if (0)
output-hard-link-missed|src/io/output_file.c|test_output_file|stat(input, &sb) == 0 && same_inode(&sb, &here)|stat(input, &sb) == 0 && 0
mask-rounded|src/api/canvas_inputs.c|test_hostile_cli|if (mask_values[i] != 0.0f && mask_values[i] != 1.0f)|if (0)
nan-latents-written|src/pipeline/edit.c|test_hostile_cli|if (!isfinite(s->hidden[i]))|if (0)
EOF
}

# The tree into $scratch/src; on a second run only files whose contents changed are
# replaced (with a new time stamp, so that exactly those are rebuilt).
copy_tree() {
    rm -rf "$scratch/incoming" && mkdir -p "$scratch/incoming" "$scratch/src"
    (cd "$root" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) |
        (cd "$scratch/incoming" && tar -xf -)
    (cd "$scratch/incoming" && find . -type f -print0) | while IFS= read -r -d '' f; do
        cmp -s "$scratch/incoming/$f" "$scratch/src/$f" && continue
        mkdir -p "$(dirname "$scratch/src/$f")" && cp "$scratch/incoming/$f" "$scratch/src/$f"
    done
    rm -rf "$scratch/incoming"
}

targets_of() { # the CLI and every C test program among the ctest names
    local t out="canvas"
    for t in $1; do [ -f "$scratch/src/tests/$t.c" ] && out="$out $t"; done
    echo "$out"
}

run_tests() { # 0 when every named test passes
    local names="${1// /|}"
    ctest --test-dir "$scratch/build" -R "^($names)\$" --timeout 600 >"$scratch/ctest.log" 2>&1
}

echo "mutate: copying the tree to $scratch and building it (Release)"
copy_tree
cmake -S "$scratch/src" -B "$scratch/build" -DCMAKE_BUILD_TYPE=Release -DCANVAS_BENCH=OFF >/dev/null &&
    cmake --build "$scratch/build" -j "$(nproc)" >"$scratch/build.log" 2>&1 ||
    { echo "mutate: the unmutated tree does not build (see $scratch/build.log)"; exit 2; }

all_tests="$(mutants | cut -d'|' -f3 | tr ' ' '\n' | sort -u | tr '\n' ' ')"
if ! run_tests "${all_tests% }"; then
    echo "mutate: the tests fail on the unmutated tree (see $scratch/ctest.log)"
    exit 2
fi

killed=0 survived=0 broken=0
while IFS='|' read -r name file tests from to; do
    grep -Eq -- "$filter" <<<"$name" || continue
    target="$scratch/src/$file"
    count="$(grep -cF -- "$from" "$target")"
    if [ "$count" != 1 ]; then
        echo "broken    $name: the text occurs $count times in $file"
        broken=$((broken + 1))
        continue
    fi
    cp "$target" "$scratch/original"
    FROM="$from" TO="$to" perl -0pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/' "$target"
    # shellcheck disable=SC2046
    if ! cmake --build "$scratch/build" -j "$(nproc)" --target $(targets_of "$tests") >"$scratch/build.log" 2>&1; then
        echo "broken    $name: does not compile"
        broken=$((broken + 1))
    elif run_tests "$tests"; then
        echo "SURVIVED  $name ($file; $tests pass)"
        survived=$((survived + 1))
    else
        echo "killed    $name (by $(grep -o 'test_[a-z_0-9]* .*Failed\|test_[a-z_0-9]* .*Timeout\|test_[a-z_0-9]* .*Exception' "$scratch/ctest.log" | awk '{print $1}' | sort -u | tr '\n' ' '))"
        killed=$((killed + 1))
    fi
    cp "$scratch/original" "$target"
    touch "$target"
done < <(mutants)
# rebuild the restored files: a later run on the same SCRATCH_DIR starts from the real tree
cmake --build "$scratch/build" -j "$(nproc)" >"$scratch/build.log" 2>&1

total=$((killed + survived))
note=""
[ "$broken" -gt 0 ] && note=" ($broken broken)"
echo "score: $killed of $total mutants killed$note"
[ "$survived" -eq 0 ]
