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
#include "io/model_dir.h"
#include "mem/mem_device.h"
#include "mem/mem_residency.h"
#include "ops/ops.h"
#include "tensor/quant.h"

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

/* ---- a model's tensors, declared once ------------------------------------------------- */

/* One tensor of a repeated unit (a block, a layer) or of a top level: its name after the
 * unit's prefix, its shape as multiples of the model's sizes, and the field the loader wires
 * it into: a weight_view (a matrix) or a const float * (a vector, f32) at byte offset
 * `field` of the unit's weight struct. The model's tables are what its arch_ list names
 * (loader check, inspect, the planner's sizes) and what its loader wires, in one order. */
typedef uint16_t weight_size;   /* WEIGHT_SIZE(times, of): times x extents[of], the model's sizes */
#define WEIGHT_SIZE(times, of) ((weight_size)((times) << 8 | (of)))
#define WEIGHT_NONE 0           /* of 0: no such dimension */
typedef struct weight_tensor {
    const char *suffix;         /* "attn.to_q.weight" */
    uint16_t field;
    weight_size rows, cols;     /* cols WEIGHT_NONE: a vector of `rows` */
} weight_tensor;
#define WEIGHT_EXTENTS 8        /* a model's sizes: extents[1 .. WEIGHT_EXTENTS); extents[0] is 0 */

/* Table entries of a unit's struct S. */
#define WEIGHT_MATRIX(S, name, field, rows, cols) {name, offsetof(S, field), rows, cols}
#define WEIGHT_VECTOR(S, name, field, n) {name, offsetof(S, field), n, WEIGHT_NONE}
/* nn.Linear: weight [out, in] into field `w`, bias [out] into field `w`_bias. */
#define WEIGHT_LINEAR(S, name, w, out, in)                                                                           \
    WEIGHT_MATRIX(S, name ".weight", w, out, in), WEIGHT_VECTOR(S, name ".bias", w##_bias, out)

static inline int64_t weight_size_of(weight_size size, const int64_t *extents)
{
    return (int64_t)(size >> 8) * extents[size & 0xff];
}
static inline int weight_tensor_is_vector(const weight_tensor *t) { return t->cols == WEIGHT_NONE; }

/* Append the `n` tensors of `table` to `out` (models/arch.h), named prefix + suffix, in group
 * `group`. */
struct tensor_spec_list;
canvas_status weight_tensors_list(const weight_tensor *table, int n, const int64_t *extents, int group,
                                  const char *prefix, struct tensor_spec_list *out);

/* ---- wiring: recording a group while the model's loader fills its structs ------------- */

/* One group's wiring from its tables, run twice by the loader: a counting pass (vectors
 * NULL) that sizes the group's vector block in `used` floats, then, with the block
 * allocated and `used` back at 0, the pass that wires every field and records the group:
 * a matrix as quant_weight_from_view gives it (plain, stored quantised, or quantised now to
 * `quantize`), a vector converted to f32 into the block. Tensors are looked up as prefix +
 * suffix; load has checked them against the model's arch_ list (`arch` names it in a
 * message when one is missing). */
typedef struct weight_wiring {
    const weight_set *files;
    struct quant_store *quant;
    quant_choice quantize;
    const int64_t *extents;     /* [WEIGHT_EXTENTS] */
    const char *prefix;         /* "" or "transformer_blocks.3." */
    char *home;                 /* the unit's weight struct */
    weight_group *group;
    const char *arch;           /* "arch_dit" */
    float *vectors;             /* NULL while counting */
    size_t used;                /* floats */
} weight_wiring;
canvas_status weight_wire_table(weight_wiring *w, const weight_tensor *table, int n);

/* Clear group `index` and name it (printf format). */
void weight_group_begin(weight_groups *w, int index, const char *name_format, ...) CANVAS_PRINTF(3, 4);
/* Matrix `field` (inside the struct at `home`) whose bytes are `tensor`; `suffix` (static)
 * names it after the group's prefix, `name` is the full name for messages. */
canvas_status weight_group_add_matrix(weight_group *g, const void *home, const weight_view *field,
                                      residency_tensor tensor, const char *suffix, const char *name);
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

/* One dry run on a fresh measure device of `cap` bytes: run(ctx, measure) places the model
 * there, runs its forward and unplaces it. *fits: it ran and the device turned nothing
 * down. The device's refusal is no error (CANVAS_OK, *fits 0, the status cleared); any
 * other failure (host memory, an injected fault) is returned as is. *peak (may be NULL):
 * the device's peak bytes. */
typedef canvas_status (*weight_dry_run_fn)(void *ctx, mem_device *measure);
canvas_status weight_groups_dry_run(size_t cap, weight_dry_run_fn run, void *ctx, int *fits, uint64_t *peak);

#endif
