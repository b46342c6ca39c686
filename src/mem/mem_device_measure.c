/* SPDX-License-Identifier: Apache-2.0 */
/* mem_device_measure.c — the dry-run device: the pool's first-fit placement over an
 * address range that faults when touched (PROT_NONE), so it places every block where a
 * capped pool of the same cap would, and nothing is ever allocated. It holds no data:
 * copies to and from it move nothing (mem_transfer.c counts them as measured bytes and
 * never calls a copy function), and it is never fault-injected. */
#include "base/status.h"
#include "mem/mem_device_pool.h"

static const mem_device_ops measure_ops = {
    .flags = 0,
    .alloc_block = mem_pool_alloc,
    .free_block = mem_pool_free,
    .holds = mem_pool_holds,
    .get_stats = mem_pool_get_stats,
    .reset_peaks = mem_pool_reset_peaks,
    .set_cap = mem_pool_set_cap,
    .count_virtual = mem_pool_count_virtual,
    .destroy = mem_pool_destroy_mapped,
};

canvas_status mem_device_create_measure(const char *name, size_t cap, mem_device **out)
{
    *out = NULL;
    mem_pool *pool;
    TRY(mem_pool_create_mapped(&measure_ops, name, "measure", cap, 0, sizeof *pool, &pool));
    *out = &pool->device;
    return CANVAS_OK;
}
