/* SPDX-License-Identifier: Apache-2.0 */
/* case_diff.c — `canvas debug case` compares what it wrote with the case's expected
 * values: per tensor, the goldens' measure (max |got - want| / max |want|,
 * tests/golden/README.md) and the largest absolute difference, so a run shows at once how
 * far it is from the reference without a second tool. */
#define _POSIX_C_SOURCE 200809L

#include "cli/case_diff.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "base/path.h"
#include "base/status.h"
#include "cli/commands.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "tensor/dtype.h"

/* One tensor against its expected twin; the line on stdout. */
static canvas_status compare(const st_tensor *got, const st_tensor *want)
{
    uint64_t n = st_numel(got);
    if (st_numel(want) != n || (size_t)n != n) {
        printf("  %-28s %llu values, expected %llu: not compared\n", got->name, (unsigned long long)n,
               (unsigned long long)st_numel(want));
        return CANVAS_OK;
    }
    float *a = NULL, *b = NULL;
    canvas_status st = mem_alloc((void **)&a, (size_t)n * sizeof *a + 1, MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_alloc((void **)&b, (size_t)n * sizeof *b + 1, MEM_SCRATCH);
    if (st == CANVAS_OK) {
        dtype_to_f32(got->type, got->data, a, (size_t)n);
        dtype_to_f32(want->type, want->data, b, (size_t)n);
        double max_diff = 0, max_ref = 0;
        for (uint64_t i = 0; i < n; i++) {
            double diff = fabs((double)a[i] - (double)b[i]);
            if (!(diff <= max_diff)) max_diff = diff; /* a NaN sticks */
            if (fabs((double)b[i]) > max_ref) max_ref = fabs((double)b[i]);
        }
        printf("  %-28s max |diff| %.3g, relative %.3g (%llu values)\n", got->name, max_diff,
               max_ref > 0 ? max_diff / max_ref : max_diff, (unsigned long long)n);
    }
    mem_free(a);
    mem_free(b);
    return st;
}

canvas_status cli_print_case_diff(const char *case_dir, const char *out_path)
{
    char expected_path[PATH_BUFFER_SIZE];
    TRY(path_join(expected_path, sizeof expected_path, case_dir, "expected.safetensors"));
    if (access(expected_path, F_OK) != 0) {
        cli_note("%s has no expected.safetensors: nothing to compare", case_dir);
        return CANVAS_OK;
    }
    st_file *got = NULL, *want = NULL;
    canvas_status st = st_open(out_path, &got);
    if (st == CANVAS_OK) st = st_open(expected_path, &want);
    int compared = 0;
    if (st == CANVAS_OK) printf("difference to %s (max |got - want| / max |want|, the goldens' measure):\n", expected_path);
    for (int i = 0; st == CANVAS_OK && i < got->n_tensors; i++) {
        const st_tensor *w = st_find(want, got->tensors[i].name);
        if (!w) continue;
        st = compare(&got->tensors[i], w);
        compared++;
    }
    if (st == CANVAS_OK && compared == 0) printf("  no tensor of %s is in the expected file\n", out_path);
    st_close(got);
    st_close(want);
    return st;
}
