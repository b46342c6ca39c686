/* SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L
/* test_golden_cli.c — every golden case the CLI supports, through `canvas debug case`,
 * compared tensor by tensor with expected.safetensors at the tolerances of
 * tests/golden/README.md: max|got - expected| / max|expected| <= 1e-4 for qwen_dit_forward and
 * the VAE, textenc_forward and encode_prompt's embeddings, 1e-3 for edit_pipeline; the schedule
 * to 1e-6; integer and uint8 tensors (token ids, window indices, resized images) exactly. Every
 * expected tensor must be
 * written. (The library-level tests check the same numbers; this proves the CLI path.) */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "io/golden_case.h"
#include "io/safetensors.h"
#include "tensor/dtype.h"

static double tolerance_for(const char *op)
{
    if (!strcmp(op, "dit_forward") || !strcmp(op, "vae_encode") || !strcmp(op, "vae_decode") ||
        !strcmp(op, "textenc_forward") || !strcmp(op, "encode_prompt"))
        return 1e-4;
    if (!strcmp(op, "edit_pipeline")) return 1e-3;
    if (!strcmp(op, "schedule")) return 1e-6;
    return -1; /* not supported by the CLI yet */
}

static float *to_f32(const st_tensor *t)
{
    uint64_t n = st_numel(t);
    float *out = malloc((n ? n : 1) * sizeof *out);
    dtype_to_f32(t->type, t->data, out, n);
    return out;
}

static void compare_outputs(const char *name, const char *op, const char *expected_path, const char *got_path,
                            double tolerance)
{
    st_file *expected = NULL, *got = NULL;
    CHECK_OK(st_open(expected_path, &expected));
    CHECK_OK(st_open(got_path, &got));
    if (!expected || !got) goto done;
    for (int i = 0; i < expected->n_tensors; i++) {
        const st_tensor *e = &expected->tensors[i];
        /* textenc_forward's pixel_values are the image processor's output, an input of the case */
        if (!strcmp(op, "textenc_forward") && !strcmp(e->name, "pixel_values")) continue;
        const st_tensor *g = st_find(got, e->name);
        CHECK_MSG(g != NULL, "%s: tensor '%s' not written", name, e->name);
        if (!g) continue;
        CHECK_MSG(st_numel(g) == st_numel(e), "%s: '%s' has %llu values, expected %llu", name, e->name,
                  (unsigned long long)st_numel(g), (unsigned long long)st_numel(e));
        if (st_numel(g) != st_numel(e)) continue;
        float *ev = to_f32(e), *gv = to_f32(g);
        double max_err = 0, max_ref = 0;
        for (uint64_t k = 0; k < st_numel(e); k++) {
            double d = fabs((double)gv[k] - (double)ev[k]);
            if (d > max_err || d != d) max_err = d;
            if (fabs(ev[k]) > max_ref) max_ref = fabs(ev[k]);
        }
        double relative = max_ref > 0 ? max_err / max_ref : max_err;
        /* ids and 8-bit images are exact (tests/golden/README.md) */
        double limit = dtype_is_float(e->type) ? tolerance : 0;
        fprintf(stderr, "  %-22s %-16s %.3g\n", name, e->name, relative);
        CHECK_MSG(relative <= limit, "%s: '%s' relative error %.3g > %.3g", name, e->name, relative, limit);
        free(ev);
        free(gv);
    }
done:
    st_close(expected);
    st_close(got);
}

static void test_every_supported_case(void)
{
    const char *cli = getenv("CANVAS_CLI");
    CHECK_MSG(cli != NULL, "CANVAS_CLI is not set (run through ctest)");
    if (!cli) return;
    char cases[1024], tmp[] = "/tmp/canvas-golden-cli-XXXXXX";
    test_path(cases, sizeof cases, "golden/cases");
    CHECK(mkdtemp(tmp) != NULL);
    DIR *dir = opendir(cases);
    CHECK(dir != NULL);
    int ran = 0;
    for (struct dirent *entry; dir && (entry = readdir(dir));) {
        if (entry->d_name[0] == '.') continue;
        char case_dir[2048], op[64], out[2048], expected[2400], command[8192];
        snprintf(case_dir, sizeof case_dir, "%s/%s", cases, entry->d_name);
        /* the op ("dit_forward" for the lora-* cases too); none: not a case */
        if (golden_case_op(case_dir, op, sizeof op) != CANVAS_OK) op[0] = '\0';
        double tolerance = op[0] ? tolerance_for(op) : -1;
        if (tolerance < 0) continue;
        snprintf(out, sizeof out, "%s/%s.safetensors", tmp, entry->d_name);
        snprintf(expected, sizeof expected, "%s/expected.safetensors", case_dir);
        snprintf(command, sizeof command, "'%s' debug case '%s' --out '%s' 2>/dev/null", cli, case_dir, out);
        int rc = system(command);
        CHECK_MSG(rc == 0, "%s: canvas debug case exited with status %d", entry->d_name, rc);
        if (rc == 0) compare_outputs(entry->d_name, op, expected, out, tolerance);
        unlink(out);
        ran++;
    }
    if (dir) closedir(dir);
    rmdir(tmp);
    /* 8 qwen_dit_forward (lora-* included) + 2 vae + 2 schedule + 1 edit_pipeline + 3 textenc_forward + 2
     * encode_prompt cases in tests/golden today */
    CHECK_MSG(ran >= 18, "only %d golden cases ran", ran);
}

int main(void)
{
    RUN(test_every_supported_case);
    return check_summary();
}
