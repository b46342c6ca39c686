/* SPDX-License-Identifier: Apache-2.0 */
/* weight_groups.h — a model's weights as groups for the residency manager
 * (mem/mem_residency.h), whatever the model: how a group is recorded while its weights are
 * wired, how a group's device pointers are put back into the model's own weight structs,
 * where the groups are placed, and the search for the largest resident prefix.
 *
 * A group's tensors are its matrices, each with its home (the mmapped file, or a block the
 * model owns), then one tensor holding the group's small f32 vectors (biases, norm
 * weights), whose home is the MEM_WEIGHTS block they were converted into at load. Group 0
 * is the model's top level and always in the resident prefix; groups 1 .. count - 1 are
 * the streamable ones, in the order a forward uses them (the manager prefetches "the
 * next"). The model's weight structs hold weight_view / const float * fields; a group
 * records each one by its byte offset in its struct, so a remap is a copy of the struct
 * with those fields pointed at the device tensors. */
#ifndef CANVAS_MODELS_WEIGHT_GROUPS_H
#define CANVAS_MODELS_WEIGHT_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "mem/mem_device.h"
#include "mem/mem_residency.h"
#include "ops/ops.h"

#define WEIGHT_GROUP_MAX_MATRICES 16
#define WEIGHT_GROUP_MAX_VECTORS 24

typedef struct weight_group {
    char name[48];                                        /* "transformer_blocks.7", "top level" */
    int n_matrices, n_vectors;
    uint16_t matrix_field[WEIGHT_GROUP_MAX_MATRICES];     /* byte offset of a weight_view in its struct */
    uint16_t vector_field[WEIGHT_GROUP_MAX_VECTORS];      /* byte offset of a const float * in its struct */
    uint32_t vector_at[WEIGHT_GROUP_MAX_VECTORS];         /* its first float inside the vectors tensor */
    residency_tensor tensors[WEIGHT_GROUP_MAX_MATRICES + 1]; /* the matrices, then the vectors tensor */
    const char *matrix_suffix[WEIGHT_GROUP_MAX_MATRICES]; /* tensor name after the group's prefix */
    void *matrix_owned[WEIGHT_GROUP_MAX_MATRICES];        /* a MEM_WEIGHTS block the model owns that holds
                                                             the matrix now (a LoRA merge), or NULL */
} weight_group;

/* The groups of one model and where they are placed. */
typedef struct weight_groups {
    const char *owner;          /* "transformer", "text encoder": the messages' subject */
    const char *place_call;     /* the model's place function, named when a forward finds none */
    int count;                  /* 1 + the streamable groups */
    weight_group *groups;       /* [count] */
    residency_group *table;     /* the same groups as residency_create takes them */
    mem_device *device;         /* NULL while not placed */
    int resident;               /* streamable groups in the resident prefix (all when used in place) */
    residency_manager *manager;
} weight_groups;

/* Zeroed tables for `count` groups (count >= 1); weight_groups_destroy frees them, the
 * placement and the blocks the groups own. `owner` and `place_call` are static strings. */
canvas_status weight_groups_create(weight_groups *w, int count, const char *owner, const char *place_call);
void weight_groups_destroy(weight_groups *w);

/* ---- wiring: recording a group while the model's loader fills its structs ------------- */

/* Clear group `index` and name it (printf format). */
void weight_group_begin(weight_groups *w, int index, const char *name_format, ...) CANVAS_PRINTF(3, 4);
/* Matrix `field` (inside the struct at `home`) whose bytes are `tensor`; `suffix` (static)
 * names it after the group's prefix, `name` is the full name for messages. */
canvas_status weight_group_add_matrix(weight_group *g, const void *home, const weight_view *field,
                                      residency_tensor tensor, const char *suffix, const char *name);
/* Vector `field` (inside the struct at `home`), `at` floats into the group's vectors. */
canvas_status weight_group_add_vector(weight_group *g, const void *home, const float *const *field, size_t at,
                                      const char *name);
/* Close group `index`: its vectors tensor (`vectors`, `bytes`) after the matrices, and its
 * entry in the residency table. */
void weight_group_seal(weight_groups *w, int index, const void *vectors, size_t bytes);

/* Vectors take a multiple of 16 floats each so every one starts 64-byte aligned. */
static inline size_t weight_group_padded_floats(int64_t n) { return ((size_t)n + 15u) & ~(size_t)15u; }

/* The byte sizes of every tensor of `from` into `to`, a model of the same groups whose
 * homes are kept (a planner's shape model takes a loaded model's exact sizes). */
void weight_groups_copy_sizes(weight_groups *to, const weight_groups *from);

/* ---- placement ----------------------------------------------------------------------- */

/* Place every group on `device` (NULL: the cpu device), group 0 and the first `resident`
 * streamable ones resident, the rest streamed through two buffers; a host device uses the
 * weights in place (weight_groups.resident is then all). `resident` is checked by the
 * caller (0 .. count - 1). On failure the groups are left unplaced. */
canvas_status weight_groups_place(weight_groups *w, mem_device *device, int resident);
void weight_groups_unplace(weight_groups *w);
/* The device bytes a placement with `resident` streamable groups resident takes. */
size_t weight_groups_device_bytes(const weight_groups *w, int resident);

/* Group `group` on the device: `out` becomes a copy of `home` (its weight struct, of
 * `struct_bytes`) with every recorded field pointing into the device tensors. Every acquire
 * is paired with one release, also on failure paths; CANVAS_ERR_USAGE when not placed. */
canvas_status weight_groups_acquire(weight_groups *w, int group, const void *home, void *out, size_t struct_bytes);
void weight_groups_release(weight_groups *w, int group);

/* ---- the planner's choice ------------------------------------------------------------ */

/* The largest k in [0, n] for which fits(ctx, k) holds, by bisection (fewer resident
 * groups must never need more device memory); -1 when not even 0 fits. An error of `fits`
 * ends the search and is returned. Every model's resident prefix and the planner's use it. */
typedef canvas_status (*weight_prefix_fits)(void *ctx, int k, int *fits);
canvas_status weight_groups_largest_prefix(int n, weight_prefix_fits fits, void *ctx, int *out);

/* One dry run on a fresh measure device of `cap` bytes: run(ctx, device) places the model
 * there and runs its forward (and unplaces it); *stats are the device's. */
typedef canvas_status (*weight_dry_run_fn)(void *ctx, mem_device *measure);
canvas_status weight_groups_dry_run(size_t cap, weight_dry_run_fn run, void *ctx, mem_device_stats *stats);

#endif
