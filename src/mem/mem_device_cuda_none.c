/* SPDX-License-Identifier: Apache-2.0 */
/* mem_device_cuda_none.c — the CUDA device of a build without CUDA (-DCANVAS_CUDA=OFF): there
 * is none, and the reason says how to get one (mem_device_cuda.c is the real one). */
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem_device.h"

#define NO_CUDA "this build has no CUDA (configure with -DCANVAS_CUDA=ON; docs/cuda.md)"

void mem_cuda_query(mem_cuda_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->reason, sizeof out->reason, "%s", NO_CUDA);
}

canvas_status mem_device_create_cuda(const char *name, size_t cap, size_t headroom, mem_device **out)
{
    (void)cap, (void)headroom;
    *out = NULL;
    return status_fail(CANVAS_ERR_UNSUPPORTED, "device '%s': %s", name && *name ? name : "cuda", NO_CUDA);
}

canvas_status mem_cuda_measure_link(double *pinned, double *pageable)
{
    *pinned = *pageable = 0;
    return status_fail(CANVAS_ERR_UNSUPPORTED, "measuring the CUDA link: %s", NO_CUDA);
}

int mem_device_is_cuda(const mem_device *device)
{
    (void)device;
    return 0;
}
