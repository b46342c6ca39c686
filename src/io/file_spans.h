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

/* Sorts `spans` by offset and refuses two that share a byte: CANVAS_ERR_INPUT "PATH: tensor
 * 'B': bytes [x, y) overlap tensor 'A' at [u, v)". Gaps are accepted (no format we read needs
 * them gone); empty spans occupy no byte and never overlap. */
canvas_status file_spans_disjoint(const char *path, file_span *spans, int n);

#endif
