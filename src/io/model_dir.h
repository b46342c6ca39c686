/* SPDX-License-Identifier: Apache-2.0 */
/* model_dir.h — the weights of one component of a diffusers-layout model folder.
 *
 * A component folder (transformer/, vae/, text_encoder/) holds config.json and either one
 * safetensors file or shards listed by an index (`*.safetensors.index.json`, whose
 * "weight_map" names the shard of every tensor). Both diffusers names
 * (diffusion_pytorch_model*.safetensors) and transformers names (model*.safetensors) are
 * recognised; when an index and a single file are both present the index is used (as
 * diffusers does). weights_open validates every file strictly (safetensors.h) and, with
 * an index, that every listed tensor is in the shard named for it, that the shards hold
 * no tensor the index does not list (so no name is in two shards), and that shard names
 * are plain file names inside the folder (no '/', no ".."). Every failure is
 * CANVAS_ERR_INPUT naming the folder or file and the tensor. Shards present in the
 * folder but not named by the index are ignored. */
#ifndef CANVAS_IO_MODEL_DIR_H
#define CANVAS_IO_MODEL_DIR_H

#include "canvas.h"
#include "io/safetensors.h"

typedef struct weight_set {
    char *dir;                   /* the component folder, or the single file (io/weights_file.h) */
    int n_files;
    st_file **files;
    int n_tensors;
    const st_tensor **tensors;   /* every tensor of every file, sorted by name */
    uint64_t stored_bytes;       /* sum of the tensors' byte sizes */
    /* a single file: its tensors under their translated names (the table points here
     * instead of into the files), and whether ComfyUI's Edit-2511 marker was present */
    int n_renamed;
    st_tensor *renamed;
    char *renamed_names;
    int index_timestep_zero;
    /* a GGUF file (io/weights_file.h): files[0] is a view of it whose tensors point into
     * this file's mapping; ggml block types are U8 there (weights_ggml_type tells which) */
    struct gguf_file *gguf;
} weight_set;

/* 1 when the component folder has weight files (single or index), else 0. */
int weights_present(const char *component_dir);

canvas_status weights_open(const char *component_dir, weight_set **out);
void weights_close(weight_set *set);

/* Fill set->tensors from set->renamed when it is set, else from every file's tensors,
 * sorted by name; CANVAS_ERR_INPUT when a name is there twice. For io/weights_file.c. */
canvas_status weights_build_table(weight_set *set);

/* Tensor by its full name, or NULL. */
const st_tensor *weights_find(const weight_set *set, const char *name);

#endif
