/* SPDX-License-Identifier: Apache-2.0 */
/* image.h — images in (PNG, JPEG, WebP) and out (PNG), through Debian's libpng,
 * libjpeg-turbo and libwebp.
 *
 * Decoded pixels are canvas_image (include/canvas.h): 8-bit RGB, row-major, in one
 * MEM_SCRATCH block from mem_alloc (the codecs' own working memory is theirs). The
 * format is recognised by the file's first bytes. Every failure to read is
 * CANVAS_ERR_INPUT with a message starting with the file name and saying what is wrong
 * (truncated, not an image, unsupported colour space...). Codec warnings are swallowed:
 * the library prints nothing.
 *
 * Writing: 8-bit RGB PNG (zlib level 6, no filter heuristics beyond libpng's default),
 * text chunks first, to "PATH.<pid>.tmp" (created exclusively) then renamed onto PATH. */
#ifndef CANVAS_IO_IMAGE_H
#define CANVAS_IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"

#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS (1 << 27)
#define IMAGE_MAX_FILE_BYTES (1u << 30)

typedef enum image_format { IMAGE_UNKNOWN = 0, IMAGE_PNG, IMAGE_JPEG, IMAGE_WEBP } image_format;

/* The format the first bytes announce (at least 12 bytes are looked at when present). */
image_format image_sniff(const void *bytes, size_t size);

/* Decode a file / bytes in memory (`name` labels messages). */
canvas_status image_load(const char *path, canvas_image *out);
canvas_status image_decode(const void *bytes, size_t size, const char *name, canvas_image *out);

/* Allocate an uninitialised width x height image (MEM_SCRATCH). */
canvas_status image_alloc(int width, int height, canvas_image *out);
void image_free(canvas_image *image);

canvas_status image_write_png(const char *path, const canvas_image *image, const canvas_text *texts, int n_texts);

/* 1 when the two paths name the same existing file (same device and inode), or are
 * the same string. */
int image_same_file(const char *a, const char *b);

#endif
