/* SPDX-License-Identifier: Apache-2.0 */
/* gguf_write.h — writing a GGUF v3 file (what io/gguf.h reads), one tensor at a time.
 *
 * The header lists every tensor's name, type, shape and offset before any data, so a file
 * is written in two phases: declare the metadata and every tensor (gguf_writer_add_*),
 * then give the tensors' bytes in the order they were declared (gguf_writer_write, in as
 * many pieces as suits the caller: a model is quantised and written tensor by tensor,
 * never held whole). The header goes out with the first data; each tensor starts at a
 * multiple of general.alignment (32, written as a UINT32 entry) and is padded with zeros
 * to the next one, as ggml packs them. Little-endian, as v3 files are.
 *
 * The file is written to a temporary file next to path and renamed onto it by
 * gguf_writer_finish (io/output_file.h: a reader sees the old file or the whole new one;
 * a failure leaves no partial file). Checking that path may be written (not an input, not
 * a link or device) is the caller's output_check; the writer refuses only what
 * file_check_replaceable refuses.
 *
 * What the writer refuses (CANVAS_ERR_USAGE, naming the key or tensor: a caller's mistake,
 * never a reader's input): a duplicate key or tensor name, an empty one or a tensor name
 * over GGUF_MAX_NAME bytes, a type ggml_blocks.h does not decode, 0 or more than
 * GGUF_MAX_DIMS dims, a negative dim (0 is allowed: an empty tensor, a marker), a contiguous dim (shape[ndim - 1]) that is not whole
 * blocks, a declaration after data began, more or fewer bytes than declared. */
#ifndef CANVAS_IO_GGUF_WRITE_H
#define CANVAS_IO_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"

typedef struct gguf_writer gguf_writer;

/* Start a file for path (nothing is created until the first gguf_writer_write or
 * gguf_writer_finish). */
canvas_status gguf_writer_create(const char *path, gguf_writer **out);

/* Metadata entries, in the order given. */
canvas_status gguf_writer_add_string(gguf_writer *w, const char *key, const char *value);
canvas_status gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t value);
canvas_status gguf_writer_add_strings(gguf_writer *w, const char *key, const char *const *values, int n_values);

/* Declare the next tensor: its ggml type (ggml_blocks.h) and shape outermost first, as
 * io/gguf.h reports it (a Linear weight [out, in] is stored with ne = {in, out}). Its
 * bytes are ggml_type_bytes of its elements. */
canvas_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t ggml_type, int ndim,
                                     const int64_t *shape);

/* The next `bytes` of tensor data, continuing where the last call stopped (across tensor
 * boundaries too; the padding between tensors is the writer's). CANVAS_ERR_IO naming the
 * file when the write fails. */
canvas_status gguf_writer_write(gguf_writer *w, const void *data, size_t bytes);

/* End the file and free w. When st is CANVAS_OK and every declared byte was written, the
 * file is closed and renamed onto path; otherwise the temporary file is removed. Returns
 * st, or the first failure of the finishing. w may be NULL (returns st). */
canvas_status gguf_writer_finish(gguf_writer *w, canvas_status st);

#endif
