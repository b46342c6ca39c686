/* SPDX-License-Identifier: Apache-2.0 */
/* mem_device_capped.c — a pool of `cap` bytes that plays a GPU on the CPU build: one
 * read/write region mapped from the kernel, carved by mem_device_pool.c. Copies to and
 * from it are memcpy paced to its link bandwidth (the PCIe link it stands for). */
#include "base/status.h"
#include "mem/mem_device_pool.h"
#include "mem/mem_internal.h"

static int capped_free(mem_device *device, void *block)
{
    size_t requested;
    if (mem_pool_release((mem_pool *)device, block, &requested) != 0) return -1;
    /* Large blocks give their pages back, so the process RSS follows the pool's use. */
    if (requested >= ((size_t)1 << 20)) mem_region_discard(block, requested);
    return 0;
}

/* Either direction: the pool is host memory behind a (paced) link. */
static canvas_status capped_copy(mem_device *device, void *dst, const void *src, size_t bytes, mem_device_event *event)
{
    mem_device_paced_copy(dst, src, bytes, device->link_bytes_per_second);
    *event = 0;
    return CANVAS_OK;
}

static canvas_status capped_wait(mem_device *device, mem_device_event event)
{
    (void)device, (void)event;
    return CANVAS_OK; /* every copy was complete when it returned */
}

static const mem_device_ops capped_ops = {
    .flags = MEM_DEVICE_HOST_ADDRESSABLE | MEM_DEVICE_HOLDS_DATA,
    .alloc_block = mem_pool_alloc,
    .free_block = capped_free,
    .holds = mem_pool_holds,
    .get_stats = mem_pool_get_stats,
    .reset_peaks = mem_pool_reset_peaks,
    .set_cap = mem_pool_set_cap,
    .copy_to_device = capped_copy,
    .copy_to_host = capped_copy,
    .wait = capped_wait,
    .destroy = mem_pool_destroy_mapped,
};

canvas_status mem_device_create_capped(const char *name, size_t cap, mem_device **out)
{
    *out = NULL;
    if (cap == 0) return status_fail(CANVAS_ERR_USAGE, "device '%s': a capped device needs a cap above 0", name ? name : "gpu");
    mem_pool *pool;
    TRY(mem_pool_create_mapped(&capped_ops, name, "gpu", cap, 1, sizeof *pool, &pool));
    *out = &pool->device;
    return CANVAS_OK;
}
