/* SPDX-License-Identifier: Apache-2.0 */
/* mem_residency.h — where each group of weights lives while a model runs.
 *
 * Weights are grouped (one DiT block, one text-encoder layer, the VAE, the small
 * top-level tensors). Each group has a home: a list of host byte ranges, usually views
 * into mmapped safetensors files, one per tensor. The plan says which groups stay
 * resident on the device (a prefix of k groups); every other group is streamed through
 * two slots on the device (a double buffer, each as large as the largest streamed group):
 * while the model computes with one, the copy thread fills the other with the next
 * group in order. Data goes from the home range straight into its device slot, so there
 * is never a second host copy of a weight.
 *
 * When the device is host memory (MEM_DEVICE_IS_HOST: the cpu device), acquire returns
 * the home pointers themselves: no copy, no device memory (the whole model "fits" and is
 * read from the mapping).
 *
 * Model code:
 *     for (int b = 0; b < n_blocks; b++) {
 *         void *const *w;
 *         TRY(residency_acquire(mgr, b, &w));   // w[i]: tensor i of group b, on the device
 *         ... compute block b ...
 *         residency_release(mgr, b);
 *     }
 * At most two streamed groups may be held at once. acquire/release are called from one
 * thread (the model's); the copy thread is internal. */
#ifndef CANVAS_MEM_RESIDENCY_H
#define CANVAS_MEM_RESIDENCY_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "mem/mem_device.h"

/* Tensors inside a group on the device start at multiples of this. */
#define RESIDENCY_TENSOR_ALIGNMENT 256

typedef struct residency_tensor {
    const void *home;   /* host bytes (mmapped file, host RAM or pinned host) */
    size_t bytes;
} residency_tensor;

typedef struct residency_group {
    const char *name;   /* "transformer_blocks.7"; for messages */
    const residency_tensor *tensors;
    int n_tensors;
} residency_group;

typedef struct residency_plan {
    int n_resident;     /* groups [0, n_resident) stay on the device; the rest stream */
} residency_plan;

typedef struct residency_stats {
    size_t device_bytes;       /* what the manager holds on the device: resident groups + slots */
    size_t slot_bytes;         /* one slot (0 when nothing streams) */
    uint64_t acquires;
    uint64_t streamed_loads;   /* groups copied into a slot */
    uint64_t bytes_streamed;
    uint64_t waits;            /* acquires that had to wait for their copy */
    double wait_seconds;
} residency_stats;

typedef struct residency_manager residency_manager;

/* Copy the group table (the home pointers must stay valid until destroy), allocate the
 * resident groups and the slots on `device` (class MEM_WEIGHTS), copy the resident groups
 * in and start prefetching the first streamed group. CANVAS_ERR_OUT_OF_MEMORY when the
 * device cannot hold that (nothing is left allocated), CANVAS_ERR_USAGE for a bad plan. */
canvas_status residency_create(mem_device *device, const residency_group *groups, int n_groups,
                               const residency_plan *plan, residency_manager **out);
void residency_destroy(residency_manager *manager);

/* Device pointers of group `group`'s tensors (in the order of its tensor list), valid until
 * the matching release. Blocks until its data is on the device, then starts the prefetch
 * of the next streamed group after it (wrapping around, as denoising steps do). */
canvas_status residency_acquire(residency_manager *manager, int group, void *const **out_tensors);
void residency_release(residency_manager *manager, int group);

/* Device bytes the plan needs (resident groups + 2 slots), exactly what create allocates
 * as MEM_WEIGHTS on a pooled device; 0 on the cpu device. For the planner. */
size_t residency_plan_device_bytes(const residency_group *groups, int n_groups, const residency_plan *plan);

void residency_get_stats(const residency_manager *manager, residency_stats *out);

#endif
