/* SPDX-License-Identifier: Apache-2.0 */
/* compute_device.c — the transformer's device and its op backend (compute_device.h). */
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "pipeline/compute_device.h"
#ifdef CANVAS_HAVE_CUDA
#include "ops/ops_cuda.h"
#endif

/* The CUDA device and its backend (a CUDA build; mem_device_choose found a device). */
static canvas_status open_cuda(uint64_t vram_bytes, compute_device *d)
{
#ifdef CANVAS_HAVE_CUDA
    TRY(mem_device_create_cuda("cuda", (size_t)vram_bytes, COMPUTE_DEVICE_CUDA_RESERVE, &d->device));
    op_cuda *cuda = NULL;
    canvas_status st = op_cuda_create(d->device, &cuda);
    if (st == CANVAS_OK) st = mem_alloc((void **)&d->backend, sizeof *d->backend, MEM_SCRATCH);
    if (st != CANVAS_OK) {
        op_cuda_destroy(cuda);
        return status_wrap(st, "--device cuda: ");
    }
    *d->backend = op_backend_cuda(cuda);
    d->backend_state = cuda;
    return CANVAS_OK;
#else
    (void)vram_bytes;
    (void)d;
    return status_fail(CANVAS_ERR_UNSUPPORTED, "--device cuda: this build has no CUDA kernels");
#endif
}

canvas_status compute_device_open(mem_device_choice choice, uint64_t vram_bytes, double link_bytes_per_second,
                                  compute_device *out)
{
    memset(out, 0, sizeof *out);
    if ((uint64_t)(size_t)vram_bytes != vram_bytes)
        return status_fail(CANVAS_ERR_USAGE, "a device size of %llu bytes is more than this machine can address",
                           (unsigned long long)vram_bytes);
    int use_cuda;
    TRY(mem_device_choose(choice, &use_cuda));
    canvas_status st = CANVAS_OK;
    if (use_cuda) {
        st = open_cuda(vram_bytes, out);
    } else if (vram_bytes) {
        st = mem_device_create_capped("gpu", (size_t)vram_bytes, &out->device);
        if (st == CANVAS_OK) mem_device_set_link_bandwidth(out->device, link_bytes_per_second);
        else st = status_wrap(st, "--vram: ");
    } else {
        out->device = mem_device_cpu();
    }
    if (st != CANVAS_OK) compute_device_close(out);
    return st;
}

void compute_device_close(compute_device *d)
{
#ifdef CANVAS_HAVE_CUDA
    op_cuda_destroy(d->backend_state);
#endif
    mem_free(d->backend);
    if (d->device && d->device != mem_device_cpu()) mem_device_destroy(d->device);
    memset(d, 0, sizeof *d);
}
