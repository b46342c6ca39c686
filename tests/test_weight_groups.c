/* SPDX-License-Identifier: Apache-2.0 */
/* test_weight_groups.c — models/weight_groups.h on its own: the one largest-prefix search
 * against the answer of a linear scan for every prefix size and threshold, a tensor table
 * listed with its shapes, and a group placed on a copying device and remapped. */
#include "check.h"
#include "mem/mem.h"
#include "models/arch.h"
#include "models/weight_groups.h"

typedef struct threshold {
    int fits_up_to; /* the largest k that fits (-1: none) */
    int fail_at;    /* a k whose probe fails (-1: none) */
    int calls;
} threshold;

static canvas_status probe(void *ctx, int k, int *fits)
{
    threshold *t = ctx;
    t->calls++;
    if (k == t->fail_at) return status_fail(CANVAS_ERR_IO, "probe %d failed", k);
    *fits = k <= t->fits_up_to;
    return CANVAS_OK;
}

static void test_largest_prefix(void)
{
    for (int n = 0; n <= 64; n++)
        for (int up_to = -1; up_to <= n; up_to++) {
            threshold t = {up_to, -1, 0};
            int k = -7;
            CHECK_OK(weight_groups_largest_prefix(n, probe, &t, &k));
            CHECK_MSG(k == up_to, "n %d: %d found, %d fits", n, k, up_to);
            int log2 = 0;
            while ((1 << log2) < n + 1) log2++;
            CHECK_MSG(t.calls <= log2 + 1, "n %d: %d dry runs", n, t.calls);
        }
    /* a failure that is not "does not fit" ends the search */
    threshold t = {3, 7, 0};
    int k = -7;
    CHECK_FAILS(weight_groups_largest_prefix(16, probe, &t, &k), CANVAS_ERR_IO, "probe 7 failed");
    status_clear();
}

typedef struct unit {
    weight_view proj;
    const float *proj_bias;
    const float *norm;
} unit;

static const weight_tensor unit_tensors[] = {
    WEIGHT_LINEAR(unit, "proj", proj, WEIGHT_SIZE(3, 1), WEIGHT_SIZE(1, 2)),
    WEIGHT_VECTOR(unit, "norm.weight", norm, WEIGHT_SIZE(1, 2)),
};

static void test_table_list(void)
{
    const int64_t extents[WEIGHT_EXTENTS] = {0, 5, 7};
    tensor_spec_list list = {0};
    CHECK_OK(weight_tensors_list(unit_tensors, 3, extents, 4, "blocks.4.", &list));
    CHECK(list.count == 3);
    if (list.count == 3) {
        CHECK(!strcmp(list.items[0].name, "blocks.4.proj.weight") && list.items[0].ndim == 2 &&
              list.items[0].shape[0] == 15 && list.items[0].shape[1] == 7 && list.items[0].group == 4);
        CHECK(!strcmp(list.items[1].name, "blocks.4.proj.bias") && list.items[1].ndim == 1 &&
              list.items[1].shape[0] == 15);
        CHECK(!strcmp(list.items[2].name, "blocks.4.norm.weight") && list.items[2].ndim == 1 &&
              list.items[2].shape[0] == 7);
    }
    CHECK(weight_tensor_is_vector(&unit_tensors[1]) && !weight_tensor_is_vector(&unit_tensors[0]));
    arch_free(&list);
}

/* Two groups of one matrix each on a capped device (it copies): the acquired struct's view
 * points at a device copy of the home's bytes and keeps its shape. */
static void test_place_and_remap(void)
{
    static float home_data[2][64];
    static float vectors[2][16];
    unit homes[2] = {0};
    weight_groups w;
    CHECK_OK(weight_groups_create(&w, 2, "toy", "toy_place"));
    for (int g = 0; g < 2; g++) {
        for (int i = 0; i < 64; i++) home_data[g][i] = (float)(g * 100 + i);
        homes[g].proj = (weight_view){DTYPE_F32, home_data[g], 8, 8, NULL};
        weight_group_begin(&w, g, "unit %d", g);
        CHECK_OK(weight_group_add_matrix(&w.groups[g], &homes[g], &homes[g].proj,
                                         (residency_tensor){home_data[g], sizeof home_data[g]}, "proj.weight", "p"));
        weight_group_seal(&w, g, vectors[g], sizeof vectors[g]);
    }
    unit out;
    CHECK_FAILS(weight_groups_acquire(&w, 0, &homes[0], &out, sizeof out), CANVAS_ERR_USAGE,
                "toy: the weights are not placed on a device (the last toy_place failed");
    status_clear();

    mem_device *device = NULL;
    CHECK_OK(mem_device_create_capped("toy gpu", 1 << 20, &device));
    if (device) {
        CHECK_OK(weight_groups_place(&w, device, 0));
        CHECK(w.resident == 0 && w.device == device);
        /* group 0 resident, group 1 streamed through one slot (there is no second streamed
         * group to prefetch): two packed groups, each its matrix (256 bytes) then, at the
         * next 256-byte boundary, its vectors (64) */
        CHECK_MSG(weight_groups_device_bytes(&w, 0) == 2 * (256 + 64), "%zu", weight_groups_device_bytes(&w, 0));
        for (int g = 0; g < 2; g++) {
            CHECK_OK(weight_groups_acquire(&w, g, &homes[g], &out, sizeof out));
            CHECK(out.proj.data != home_data[g] && out.proj.out_features == 8 && out.proj.in_features == 8);
            CHECK(memcmp(out.proj.data, home_data[g], sizeof home_data[g]) == 0);
            weight_groups_release(&w, g);
        }
        weight_groups_unplace(&w);
        CHECK(w.device == NULL);
    }
    weight_groups_destroy(&w);
    mem_device_destroy(device);
}

int main(void)
{
    RUN(test_largest_prefix);
    RUN(test_table_list);
    RUN(test_place_and_remap);
    return check_summary();
}
