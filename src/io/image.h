/* SPDX-License-Identifier: Apache-2.0 */
/* image.h — images in and out (PNG, JPEG, WebP), through Debian's libpng,
 * libjpeg-turbo and libwebp.
 *
 * Decoded pixels are canvas_image (include/canvas.h): 8-bit RGB, row-major, in one
 * MEM_SCRATCH block from mem_alloc (the codecs' own working memory is theirs). The
 * format is recognised by the file's first bytes. Every failure to read is
 * CANVAS_ERR_INPUT with a message starting with the file name and saying what is wrong
 * (truncated, not an image, unsupported colour space...). Codec warnings are swallowed:
 * the library prints nothing. An EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF) is
 * applied, as diffusers' load_image does (ImageOps.exif_transpose).
 *
 * Writing: to a temporary file of its own next to PATH (io/output_file.h), then renamed onto PATH. PNG: 8-bit
 * RGB (zlib level 6, libpng's default filters), text chunks first. JPEG: quality 95 by
 * default, the "parameters" text in a comment segment. WebP: lossless by default, no
 * text. */
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
/* image_decode refusing (CANVAS_ERR_INPUT, "over the limit of N pixels") an image of more
 * than max_pixels pixels (0: no limit of the caller's) from its header, before decoding: a
 * small compressed file cannot make the caller decode a huge image it will refuse anyway. */
canvas_status image_decode_limited(const void *bytes, size_t size, const char *name, int64_t max_pixels,
                                   canvas_image *out);

/* Allocate an uninitialised width x height image (MEM_SCRATCH). */
canvas_status image_alloc(int width, int height, canvas_image *out);
void image_free(canvas_image *image);

canvas_status image_write_png(const char *path, const canvas_image *image, const canvas_text *texts, int n_texts);

/* The format a file name asks for, by its extension (case ignored): .png, .jpg / .jpeg,
 * .webp; IMAGE_UNKNOWN for anything else. Commands call it before any work to refuse an
 * output they could not write. */
image_format image_format_from_path(const char *path);

/* Write in the format image_format_from_path(path) names; CANVAS_ERR_USAGE for an unknown
 * extension. quality: 0 for the format's default (JPEG 95, WebP lossless, PNG always
 * lossless), else 1..100 for JPEG and lossy WebP (ignored for PNG). The texts go into PNG
 * text chunks; JPEG keeps only "parameters" (a comment segment); WebP none. */
canvas_status image_write(const char *path, const canvas_image *image, const canvas_text *texts, int n_texts,
                          int quality);

/* The EXIF orientation (1..8) an encoded file declares; 1 (upright) when it declares none
 * or its EXIF block is malformed. */
int image_exif_orientation(const void *bytes, size_t size);

/* Turn decoded pixels upright for an EXIF orientation (2..8 as PIL's exif_transpose; 1 and
 * anything else: unchanged). The image is replaced by a new allocation. */
canvas_status image_orient(canvas_image *image, int orientation);


#endif
