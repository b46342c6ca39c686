/* SPDX-License-Identifier: Apache-2.0 */
/* file_spans.h — the byte spans a file's table claims for its entries (safetensors, GGUF),
 * checked to be disjoint: one check for every strict reader. */
#ifndef CANVAS_IO_FILE_SPANS_H
#define CANVAS_IO_FILE_SPANS_H

#include <stdint.h>

#include "canvas.h"

typedef struct file_span {
    const char *name;
    uint64_t offset, bytes;     /* offset + bytes must not overflow (the caller checked the span) */
} file_span;

/* The span of entry `index` of a reader's table. */
typedef file_span (*file_span_of)(const void *table, int index);

/* The n entries' spans (span_of) must not share a byte: CANVAS_ERR_INPUT "PATH: tensor 'B':
 * bytes [x, y) overlap tensor 'A' at [u, v)", or CANVAS_ERR_OUT_OF_MEMORY for the sorted copy
 * (MEM_SCRATCH, freed). Gaps are accepted (no format we read needs them gone); empty spans
 * occupy no byte and never overlap. */
canvas_status file_spans_disjoint(const char *path, const void *table, int n, file_span_of span_of);

#endif
