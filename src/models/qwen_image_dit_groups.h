/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_dit_groups.h — private to the transformer: its weights as groups for the
 * residency manager (mem/mem_residency.h), and how a group's device pointers are put back
 * into the dit_weights / dit_block_weights structs the forward reads.
 *
 * Group 0 is the top level, group 1 + i is transformer_blocks.i (arch_dit's group i).
 * A group's tensors are its matrices, each with its home in the mmapped safetensors, then
 * one tensor holding the group's small f32 vectors (biases, norm weights), whose home is
 * the MEM_WEIGHTS block they were converted into at load. */
#ifndef CANVAS_MODELS_QWEN_IMAGE_DIT_GROUPS_H
#define CANVAS_MODELS_QWEN_IMAGE_DIT_GROUPS_H

#include <stdint.h>

#include "mem/mem_residency.h"
#include "models/qwen_image_dit.h"

#define DIT_GROUP_MAX_MATRICES 16
#define DIT_GROUP_MAX_VECTORS 24

typedef struct dit_group {
    char name[48];                                     /* "transformer_blocks.7", "top level" */
    int n_matrices, n_vectors;
    uint16_t matrix_field[DIT_GROUP_MAX_MATRICES];     /* byte offset of a weight_view in its struct */
    uint16_t vector_field[DIT_GROUP_MAX_VECTORS];      /* byte offset of a const float * in its struct */
    uint32_t vector_at[DIT_GROUP_MAX_VECTORS];         /* its first float inside the vectors tensor */
    residency_tensor tensors[DIT_GROUP_MAX_MATRICES + 1]; /* the matrices, then the vectors tensor */
    const char *matrix_suffix[DIT_GROUP_MAX_MATRICES]; /* tensor name after the group's prefix ("attn.to_q.weight") */
    void *matrix_owned[DIT_GROUP_MAX_MATRICES];        /* a MEM_WEIGHTS block the model owns that holds the
                                                          matrix now (dit_matrix_set_home), or NULL */
} dit_group;

/* Where the model's weights are and what the forward acquired. */
typedef struct dit_memory {
    dit_group *groups;              /* [1 + num_layers] */
    residency_group *table;         /* the same groups as residency_create takes them */
    mem_device *device;             /* NULL while not placed */
    int resident_blocks;            /* blocks in the resident prefix (the top level always is) */
    residency_manager *manager;
    dit_weights top;                /* the top level's views on the device, filled at acquire */
    dit_block_weights *blocks;      /* [num_layers]: block i's views on the device, filled at acquire */
} dit_memory;

/* The tables for a model whose config is loaded (groups zeroed, nothing placed);
 * dit_memory_destroy frees them and whatever is placed (called by dit_free). */
canvas_status dit_memory_create(dit_model *model);
void dit_memory_destroy(dit_model *model);

/* Drop the placement, then free the blocks dit_matrix_set_home gave the model
 * (qwen_image_dit_matrices.c; dit_free). */
void dit_matrices_free_owned(dit_model *model);

/* Copy `home` (a dit_weights or dit_block_weights) into `out` with every view and vector
 * pointing into the group's device tensors. */
void dit_group_remap(const dit_group *group, void *const *device_tensors, const void *home, void *out,
                     size_t struct_bytes);

#endif
