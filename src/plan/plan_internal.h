/* SPDX-License-Identifier: Apache-2.0 */
/* plan_internal.h — what the files of plan/ share. */
#ifndef CANVAS_PLAN_PLAN_INTERNAL_H
#define CANVAS_PLAN_PLAN_INTERNAL_H

#include <jansson.h>

#include "models/arch.h"
#include "plan/plan.h"

/* The planner's caches in the user's cache folder: the file `file` of
 * $XDG_CACHE_HOME/canvas/ (~/.cache/canvas/ when unset), or the path in the environment
 * variable `variable`; "off" there means no cache. 0 when there is none (no HOME, a path too
 * long). make_dirs: create the folders. */
int plan_cache_path(const char *variable, const char *file, char *buf, size_t size, int make_dirs);
/* The cache's JSON object (an empty one when the file is missing or not a JSON object: a
 * cache is rebuilt, never trusted over the run); NULL only without memory. */
json_t *plan_cache_load(const char *path);
/* Written whole through a temporary file of its own, or not at all (best effort). */
void plan_cache_save(const char *path, const json_t *root);

/* The learned step times (NULL: no cache), and the median of the runs kept for `key`: the
 * number of runs (0: none, *seconds untouched). */
json_t *plan_timings_load(void);
int plan_timing_lookup(json_t *timings, const char *key, double *seconds);

/* 1 when a phase's mapped weights cannot stay in the page cache next to its host and
 * pinned allocations under limits->host_bytes (0: no budget, never): plan.h's paging. */
int plan_pages_from_disk(const plan_memory *phase, const plan_limits *limits);
/* The disk's read rate for weights paged or streamed from the mapping (2 GB/s unless probed). */
double plan_disk_bytes_per_second(const plan_hardware *hw);

/* A shape model of the work's transformer in `weights` format (plan_estimate.c). */
canvas_status plan_shape_for(const plan_work *work, quant_choice weights, qwen_dit_model **out);

/* Fill c's phases, peaks, time and fits for c->point (resident_blocks -1: the largest
 * prefix that fits the device). */
canvas_status plan_estimate(const plan_work *work, const plan_hardware *hw, const plan_limits *limits,
                            thread_pool *pool, plan_candidate *c);

/* Never read: the home of every tensor of a shape model (plan_dit_shape.c). */
extern const unsigned char plan_shape_home[64];

/* Fills a shape model's matrix views (data: plan_shape_home): each as `loaded` has it when
 * given (its format), else from the config with the type the loader would give it (the
 * file's, quantised on load for the blocks, else stored_bytes wide), so that a backend's
 * GEMM scratch (op_backend_linear_scratch_bytes) is sized in the dry run as in the run. */
void plan_dit_shape_views(qwen_dit_model *model, const qwen_dit_model *loaded, quant_choice weights, int stored_bytes,
                          const weight_set *files);

/* One weight group of `specs` as the residency manager packs it: bytes[0 .. *n_matrices)
 * its matrices (2-D and up, list order): with `quantise`, a 2-D matrix whose width the
 * format holds is quant_layout's blob, anything else numel x stored_bytes; then
 * bytes[*n_matrices] its vectors in f32, each padded to 16 floats. ARCH_UNUSED tensors
 * are left out. CANVAS_ERR_INTERNAL past max_matrices. */
canvas_status plan_group_sizes(const tensor_spec_list *specs, int group, int quantise, quant_choice weights,
                               int stored_bytes, size_t *bytes, int max_matrices, int *n_matrices);

/* The largest k in [0, n] for which fits(ctx, k) holds, by bisection (fewer resident
 * groups must never need more); -1 when not even 0 fits. The transformer's blocks and the
 * text encoder's layers both use it. */
typedef canvas_status (*plan_prefix_fits)(void *ctx, int k, int *fits);
canvas_status plan_largest_prefix(int n, plan_prefix_fits fits, void *ctx, int *out);

/* The text-encode phase of c (plan_textenc.c): c->point's text fields, the phase's
 * device / pinned / host bytes and c->text_seconds, for a device of `room` free bytes
 * (0: no device). Zero when the work has no text encoder. */
canvas_status plan_textenc_estimate(const plan_work *work, const plan_hardware *hw, const plan_limits *limits,
                                    uint64_t room, plan_candidate *c);

#endif
