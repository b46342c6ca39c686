/* SPDX-License-Identifier: Apache-2.0 */
/* safetensors.h — strict, zero-copy reader and a writer for .safetensors files.
 *
 * st_open maps the file read-only and validates everything before returning: header
 * length inside the file and below ST_MAX_HEADER_BYTES, valid JSON object, known dtypes,
 * shape x dtype size == byte span, spans inside the data area, no overlaps, no
 * duplicate names, "__metadata__" an object of strings. Any failure is
 * CANVAS_ERR_INPUT with a message that starts with the file path (as given) and names
 * the tensor ("m.safetensors: tensor 'x': data_offsets [0, 12] span 12 bytes but
 * shape [2, 2] of F32 needs 16"). After a successful open, tensor data pointers point
 * into the mapping; the tables (names, metadata) live in MEM_SCRATCH.
 *
 * Decisions where the format is loose:
 *   - Gaps between spans, and unused bytes after the last one, are accepted (the
 *     reference Rust reader insists on a packed layout; nothing we read depends on it).
 *     Overlaps (two tensors sharing a byte) are rejected; empty tensors share none.
 *   - Unknown keys inside a tensor entry are ignored, as the reference reader does.
 *   - Tensor data is NOT guaranteed aligned for its type: offsets are whatever the
 *     writer chose (st_write packs in the given order). Read through memcpy or
 *     dtype_to_f32 unless the layout is known to be aligned.
 */
#ifndef CANVAS_IO_SAFETENSORS_H
#define CANVAS_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "tensor/dtype.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER_BYTES (100u * 1024u * 1024u) /* the format's own reference limit */

typedef struct st_tensor {
    const char *name;
    dtype type;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t nbytes;        /* shape x dtype size */
    uint64_t data_offset;   /* offset inside the data area (after the header) */
    const void *data;       /* points into the mapping */
} st_tensor;

typedef struct st_metadata_entry {
    const char *key;
    const char *value;
} st_metadata_entry;

typedef struct st_file {
    char *path;
    void *map;              /* the whole file, read-only */
    size_t map_bytes;
    size_t data_start;      /* 8 + header length */
    int n_tensors;
    st_tensor *tensors;     /* sorted by name */
    int n_metadata;
    st_metadata_entry *metadata; /* "__metadata__", string values, in file order */
} st_file;

canvas_status st_open(const char *path, st_file **out);
void st_close(st_file *file);

/* Tensor by name (binary search), or NULL. */
const st_tensor *st_find(const st_file *file, const char *name);
/* Value of a __metadata__ key, or NULL. */
const char *st_metadata(const st_file *file, const char *key);
/* Number of elements of a tensor (product of its shape; 1 for a scalar). */
uint64_t st_numel(const st_tensor *t);

/* Writing: tensors in the given order, packed back to back (no alignment padding), data
 * copied from `data` (may be NULL for a tensor of 0 bytes); metadata optional. The
 * header is compact JSON (metadata first) padded with spaces to a multiple of 8, so the
 * data area starts 8-byte aligned. Written to PATH.tmp and renamed, so a failed write
 * leaves nothing behind. CANVAS_ERR_USAGE for a bad description (duplicate or reserved
 * name, bad dtype/rank/dims, missing data), CANVAS_ERR_IO when the system refuses. */
typedef struct st_write_tensor {
    const char *name;
    dtype type;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
} st_write_tensor;

canvas_status st_write(const char *path, const st_write_tensor *tensors, int n_tensors,
                       const st_metadata_entry *metadata, int n_metadata);

#endif
