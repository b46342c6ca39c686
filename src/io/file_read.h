/* SPDX-License-Identifier: Apache-2.0 */
/* file_read.h — reading a whole (small) regular file into memory, size-capped; what an
 * output may replace. */
#ifndef CANVAS_IO_FILE_READ_H
#define CANVAS_IO_FILE_READ_H

#include <stddef.h>

#include "canvas.h"

/* Read path into *out (mem_alloc'd, class scratch, NUL-terminated after *size bytes;
 * caller mem_free). CANVAS_ERR_INPUT naming the file when it is missing, not a regular
 * file, or larger than max_bytes (checked before anything is allocated). */
canvas_status file_read_all(const char *path, size_t max_bytes, char **out, size_t *size);

/* Whether an output may be renamed onto path: CANVAS_OK when nothing is there, or a regular
 * file or a symbolic link (the rename replaces the link, not its target); else
 * CANVAS_ERR_USAGE naming the file (a folder, a device such as /dev/null, a FIFO: a rename
 * would replace the device node itself). */
canvas_status file_check_replaceable(const char *path);

#endif
