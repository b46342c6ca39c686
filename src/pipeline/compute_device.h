/* SPDX-License-Identifier: Apache-2.0 */
/* compute_device.h — the device the transformer computes on and the op backend that goes
 * with it, made from --device / canvas_options.device and the memory caps: one rule for the
 * CLI's memory flags and canvas_open (docs/cuda.md, "Choosing the device").
 *
 *   cpu, or auto with no CUDA device   no vram cap: the cpu device (host memory); a vram cap:
 *                                      a capped pool of that size plays the GPU. The backend
 *                                      is the CPU's (backend NULL: the owner's pool).
 *   cuda, or auto with a CUDA device   the CUDA device (mem_device_create_cuda: the vram cap,
 *                                      0 for the GPU's free memory less 256 MiB left to the
 *                                      runtime's own allocations) and its op backend
 *                                      (ops/ops_cuda.h), which the transformer's forwards
 *                                      take (edit_pipeline.dit_backend), and the text
 *                                      encoder's (prompt_encoder.backend).
 *
 * Whoever makes a device makes its backend: the pair is made and freed together. The VAE
 * computes with the same backend on a CUDA device, pass by pass where a pass fits what is free
 * (pipeline/edit_run.c, vae_pass), else on the CPU backend in host memory, as it always does
 * on the cpu device and the capped pool. */
#ifndef CANVAS_PIPELINE_COMPUTE_DEVICE_H
#define CANVAS_PIPELINE_COMPUTE_DEVICE_H

#include <stdint.h>

#include "canvas.h"
#include "mem/mem_device.h"
#include "ops/ops.h"

/* GPU memory left outside the CUDA device's region for what the runtime allocates itself (the
 * context, cuBLASLt's handle and kernels); the planner's headroom is kept inside the region.
 * `canvas plan --device cuda` sizes the region by it too. */
#define COMPUTE_DEVICE_CUDA_RESERVE ((size_t)256 << 20)

typedef struct compute_device {
    mem_device *device;   /* the cpu device, a capped pool or a CUDA device (owned unless the cpu's) */
    op_backend *backend;  /* the transformer's op backend (owned); NULL: the CPU backend */
    void *backend_state;  /* the backend's own state (an op_cuda), freed with it */
} compute_device;

/* Make the device and its backend. vram_bytes 0: no cap (the cpu device, or the GPU's free
 * memory as above); link_bytes_per_second throttles a capped pool's copies
 * (0: not). Errors: mem_device_choose's (CANVAS_ERR_UNSUPPORTED for cuda without a device),
 * the device's or the backend's (out of memory, no CUDA kernels in this build); nothing is
 * left made. */
canvas_status compute_device_open(mem_device_choice choice, uint64_t vram_bytes, double link_bytes_per_second,
                                  compute_device *out);
/* Free what compute_device_open made (the cpu device is left alone); a zeroed one is a no-op. */
void compute_device_close(compute_device *d);

#endif
