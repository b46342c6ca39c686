/* SPDX-License-Identifier: Apache-2.0 */
/* file_read.h — the one way an input file is opened (a regular file, never waited on),
 * reading a whole (small) one into memory, size-capped; what an output may replace. */
#ifndef CANVAS_IO_FILE_READ_H
#define CANVAS_IO_FILE_READ_H

#include <stddef.h>

#include "canvas.h"

/* Open path for reading: O_NONBLOCK so that a FIFO or a device named as an input is
 * refused at once instead of waiting for a writer, then fstat: CANVAS_ERR_INPUT naming the
 * file when it cannot be opened or is not a regular file (a folder, FIFO, device, socket).
 * On success *fd is open (O_CLOEXEC; caller closes) and *size_out, when not NULL, is the
 * file's size. Every reader of inputs (images, embeddings, LoRA and weight files, settings,
 * config.json, tokenizer files) opens through here or through file_read_all. */
canvas_status file_open_regular(const char *path, int *fd, size_t *size_out);

/* Read path into *out (mem_alloc'd, class scratch, NUL-terminated after *size bytes;
 * caller mem_free). CANVAS_ERR_INPUT naming the file when it is missing, not a regular
 * file, or larger than max_bytes (checked before anything is allocated). */
canvas_status file_read_all(const char *path, size_t max_bytes, char **out, size_t *size);

/* Whether an output may be renamed onto path: CANVAS_OK when nothing is there or a regular
 * file; else CANVAS_ERR_USAGE naming it: a symbolic link (the rename would replace the link
 * the user made, and writing through it would reach a file they did not name: the same rule
 * as the CLI's output_check), a folder, a device such as /dev/null, a FIFO (a rename would
 * replace the node itself). */
canvas_status file_check_replaceable(const char *path);

#endif
