/* SPDX-License-Identifier: Apache-2.0 */
/* golden_case.h — what every golden-case runner shares (tests/golden/README.md): the
 * sink that receives computed tensors, and reading a case's op. The runners for each op
 * live with their model (models/qwen_image_dit_case, models/qwen_image_vae_case,
 * pipeline/scheduler_case, pipeline/edit_case). */
#ifndef CANVAS_IO_GOLDEN_CASE_H
#define CANVAS_IO_GOLDEN_CASE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "canvas.h"

/* Receives each computed tensor under its expected.safetensors name (the same shape as
 * qwen_dit_tap_fn, so one collector serves both). The data is valid only during the call. */
typedef canvas_status (*golden_sink_fn)(void *ctx, const char *name, const float *data, int ndim,
                                        const int64_t *shape);

/* CASE_DIR/case.json's "op" into op[size]. A missing or unreadable case.json is
 * CANVAS_ERR_INPUT naming it, and an allocation lost while parsing is out-of-memory: a
 * failed read is never taken for "some other op". */
canvas_status golden_case_op(const char *case_dir, char *op, size_t size);

/* What every case reader starts with: CASE_DIR/case.json parsed into *root (the caller
 * json_decrefs it; NULL after a failure), its path in path[path_size], its op checked
 * against `ops` (a NULL-terminated list: CANVAS_ERR_UNSUPPORTED naming the op and the
 * file otherwise) into *op, and its "model" (relative to the golden root, two folders
 * above CASE_DIR) joined with `component` (NULL or "" for the model folder itself) into
 * model_dir[model_size] (model_dir NULL: a case without a model, such as a schedule; its
 * "model" is then not read). CANVAS_ERR_INPUT naming the file for a missing key or a path
 * too long. */
canvas_status golden_case_open(const char *case_dir, const char *const *ops, const char *component, char *path,
                               size_t path_size, json_t **root, const char **op, char *model_dir, size_t model_size);

#endif
