/* SPDX-License-Identifier: Apache-2.0 */
/* image.c — PNG/JPEG/WebP decoding and writing (contracts in image.h).
 *
 * libpng and libjpeg report errors by longjmp from a callback. Each decoder keeps the
 * longjmp target and everything it must release in one function: the buffers it allocates
 * after setjmp are held through volatile pointers, so the error branch frees exactly what
 * was taken, and the codec struct is destroyed on every path. */
#define _POSIX_C_SOURCE 200809L

#include "io/image.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <png.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <strings.h>
#include <webp/decode.h>
#include <webp/encode.h>

#include "base/path.h"
#include "base/status.h"
#include "io/file_read.h"
#include "io/output_file.h"
#include "mem/mem.h"

/* ---- common ----------------------------------------------------------------------------- */

/* The image sizes canvas handles: 1..IMAGE_MAX_SIDE a side, at most IMAGE_MAX_PIXELS. */
static int size_allowed(int64_t width, int64_t height)
{
    return width >= 1 && height >= 1 && width <= IMAGE_MAX_SIDE && height <= IMAGE_MAX_SIDE &&
           width * height <= IMAGE_MAX_PIXELS;
}

canvas_status image_alloc(int width, int height, canvas_image *out)
{
    memset(out, 0, sizeof *out);
    if (!size_allowed(width, height))
        return status_fail(CANVAS_ERR_INPUT, "image size %dx%d is outside 1..%d pixels a side and %d pixels", width,
                           height, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
    TRY(mem_alloc((void **)&out->pixels, (size_t)width * height * 3, MEM_SCRATCH));
    out->width = width;
    out->height = height;
    return CANVAS_OK;
}

void image_free(canvas_image *image)
{
    if (!image) return;
    mem_free(image->pixels);
    memset(image, 0, sizeof *image);
}

image_format image_sniff(const void *bytes, size_t size)
{
    const unsigned char *b = bytes;
    static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 8 && !memcmp(b, png_signature, 8)) return IMAGE_PNG;
    if (size >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return IMAGE_JPEG;
    if (size >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return IMAGE_WEBP;
    return IMAGE_UNKNOWN;
}

/* Size checks shared by the decoders, before any pixel is allocated: what canvas reads at all,
 * then the caller's own limit (max_pixels; 0: none). */
static canvas_status check_size(const char *name, uint64_t width, uint64_t height, int64_t max_pixels)
{
    if (size_allowed((int64_t)width, (int64_t)height) && max_pixels > 0 && (int64_t)(width * height) > max_pixels)
        return status_fail(CANVAS_ERR_INPUT, "%s: image of %llux%llu pixels is over the limit of %lld pixels", name,
                           (unsigned long long)width, (unsigned long long)height, (long long)max_pixels);
    if (!size_allowed((int64_t)width, (int64_t)height))
        return status_fail(CANVAS_ERR_INPUT,
                           "%s: image of %llux%llu pixels is outside what canvas reads (1 to %d pixels a side, at "
                           "most %d pixels)",
                           name, (unsigned long long)width, (unsigned long long)height, IMAGE_MAX_SIDE,
                           IMAGE_MAX_PIXELS);
    return CANVAS_OK;
}

/* ---- PNG in ----------------------------------------------------------------------------- */

typedef struct png_source {
    const unsigned char *data;
    size_t size, at;
    char message[256];
} png_source;

static void png_read_bytes(png_structp png, png_bytep out, size_t count)
{
    png_source *src = png_get_io_ptr(png);
    if (count > src->size - src->at) png_error(png, "the file ends early (truncated)");
    memcpy(out, src->data + src->at, count);
    src->at += count;
}

static void png_on_error(png_structp png, png_const_charp message)
{
    png_source *src = png_get_error_ptr(png);
    snprintf(src->message, sizeof src->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message; /* the library prints nothing */
}

static canvas_status png_decode(const unsigned char *data, size_t size, const char *name, int64_t max_pixels,
                                 canvas_image *out)
{
    png_source src = {data, size, 0, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s: out of memory starting the PNG decoder", name);
    }
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    canvas_status volatile st = CANVAS_OK;
    if (setjmp(png_jmpbuf(png))) {
        mem_free(pixels);
        mem_free((void *)rows);
        png_destroy_read_struct(&png, &info, NULL);
        return status_fail(CANVAS_ERR_INPUT, "%s: not a readable PNG image: %s", name, src.message);
    }
    png_set_read_fn(png, &src, png_read_bytes);
    png_set_user_limits(png, IMAGE_MAX_SIDE, IMAGE_MAX_SIDE);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    st = check_size(name, width, height, max_pixels);
    if (st == CANVAS_OK) {
        /* to 8-bit RGB: palette and low bit depths expanded, 16 bits cut to their high
         * byte, alpha dropped, grey replicated; no gamma handling (PIL does none) */
        png_set_expand(png);
        png_set_strip_16(png);
        png_set_strip_alpha(png);
        png_set_gray_to_rgb(png);
        png_set_interlace_handling(png);
        png_read_update_info(png, info);
        if (png_get_rowbytes(png, info) != (size_t)width * 3)
            st = status_fail(CANVAS_ERR_INPUT, "%s: PNG layout not reducible to 8-bit RGB", name);
    }
    unsigned char *p = NULL;
    png_bytep *r = NULL;
    if (st == CANVAS_OK) st = mem_alloc((void **)&p, (size_t)width * height * 3, MEM_SCRATCH);
    pixels = p;
    if (st == CANVAS_OK) st = mem_alloc((void **)&r, (size_t)height * sizeof *r, MEM_SCRATCH);
    rows = r;
    if (st == CANVAS_OK) {
        for (png_uint_32 y = 0; y < height; y++) r[y] = p + (size_t)y * width * 3;
        png_read_image(png, r);
        png_read_end(png, NULL);
    }
    mem_free(r);
    png_destroy_read_struct(&png, &info, NULL);
    if (st != CANVAS_OK) {
        mem_free(p);
        return st;
    }
    out->width = (int)width;
    out->height = (int)height;
    out->pixels = p;
    return CANVAS_OK;
}

/* ---- JPEG in ---------------------------------------------------------------------------- */

typedef struct jpeg_errors {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_errors;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_errors *e = (jpeg_errors *)cinfo->err;
    e->base.format_message(cinfo, e->message);
    longjmp(e->jump, 1);
}

static void jpeg_on_message(j_common_ptr cinfo) { (void)cinfo; /* the library prints nothing */ }

/* libjpeg only warns about corrupt or truncated data and fills the rest with grey; a
 * warning (level -1) is an error here, as PIL refuses a truncated file. Trace messages
 * (levels >= 0) are ignored. */
static void jpeg_on_emit(j_common_ptr cinfo, int level)
{
    if (level < 0) cinfo->err->error_exit(cinfo);
}

static canvas_status jpeg_decode(const unsigned char *data, size_t size, const char *name, int64_t max_pixels,
                                 canvas_image *out)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_errors errors;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&errors.base);
    errors.base.error_exit = jpeg_on_error;
    errors.base.output_message = jpeg_on_message;
    errors.base.emit_message = jpeg_on_emit;
    errors.message[0] = '\0';
    unsigned char *volatile pixels = NULL;
    if (setjmp(errors.jump)) {
        mem_free(pixels);
        jpeg_destroy_decompress(&cinfo);
        return status_fail(CANVAS_ERR_INPUT, "%s: not a readable JPEG image: %s", name, errors.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (unsigned char *)data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    canvas_status st = check_size(name, cinfo.image_width, cinfo.image_height, max_pixels);
    if (st == CANVAS_OK && cinfo.jpeg_color_space != JCS_GRAYSCALE && cinfo.jpeg_color_space != JCS_YCbCr &&
        cinfo.jpeg_color_space != JCS_RGB)
        st = status_fail(CANVAS_ERR_INPUT, "%s: JPEG colour space %d (CMYK or YCCK) is not supported; convert it to RGB",
                         name, (int)cinfo.jpeg_color_space);
    if (st == CANVAS_OK) {
        cinfo.out_color_space = JCS_RGB; /* default DCT and upsampling, as PIL decodes */
        jpeg_start_decompress(&cinfo);
        if (cinfo.output_components != 3)
            st = status_fail(CANVAS_ERR_INPUT, "%s: JPEG did not decode to RGB", name);
    }
    unsigned char *p = NULL;
    if (st == CANVAS_OK) st = mem_alloc((void **)&p, (size_t)cinfo.output_width * cinfo.output_height * 3, MEM_SCRATCH);
    pixels = p;
    if (st == CANVAS_OK) {
        while (cinfo.output_scanline < cinfo.output_height) {
            JSAMPROW row = p + (size_t)cinfo.output_scanline * cinfo.output_width * 3;
            jpeg_read_scanlines(&cinfo, &row, 1);
        }
        jpeg_finish_decompress(&cinfo);
        out->width = (int)cinfo.output_width;
        out->height = (int)cinfo.output_height;
        out->pixels = p;
    }
    jpeg_destroy_decompress(&cinfo);
    if (st != CANVAS_OK) mem_free(p);
    return st;
}

/* ---- WebP in ---------------------------------------------------------------------------- */

static canvas_status webp_decode(const unsigned char *data, size_t size, const char *name, int64_t max_pixels,
                                 canvas_image *out)
{
    int width = 0, height = 0;
    if (!WebPGetInfo(data, size, &width, &height))
        return status_fail(CANVAS_ERR_INPUT, "%s: not a readable WebP image (bad or truncated header)", name);
    TRY(check_size(name, (uint64_t)width, (uint64_t)height, max_pixels));
    canvas_image image;
    TRY(image_alloc(width, height, &image));
    size_t bytes = (size_t)width * height * 3;
    if (!WebPDecodeRGBInto(data, size, image.pixels, bytes, width * 3)) {
        image_free(&image);
        return status_fail(CANVAS_ERR_INPUT,
                           "%s: not a readable WebP image (truncated or corrupt data, or an animation)", name);
    }
    *out = image;
    return CANVAS_OK;
}

/* ---- reading files ---------------------------------------------------------------------- */

static canvas_status decode_as_stored(const void *bytes, size_t size, const char *name, int64_t max_pixels,
                                      canvas_image *out)
{
    switch (image_sniff(bytes, size)) {
    case IMAGE_PNG: return png_decode(bytes, size, name, max_pixels, out);
    case IMAGE_JPEG: return jpeg_decode(bytes, size, name, max_pixels, out);
    case IMAGE_WEBP: return webp_decode(bytes, size, name, max_pixels, out);
    case IMAGE_UNKNOWN: break;
    }
    return status_fail(CANVAS_ERR_INPUT, "%s: not a PNG, JPEG or WebP image (%s)", name,
                       size == 0 ? "the file is empty" : "unknown first bytes");
}

canvas_status image_decode(const void *bytes, size_t size, const char *name, canvas_image *out)
{
    return image_decode_limited(bytes, size, name, 0, out);
}

canvas_status image_decode_limited(const void *bytes, size_t size, const char *name, int64_t max_pixels,
                                   canvas_image *out)
{
    memset(out, 0, sizeof *out);
    TRY(decode_as_stored(bytes, size, name, max_pixels, out));
    canvas_status st = image_orient(out, image_exif_orientation(bytes, size));
    if (st != CANVAS_OK) image_free(out);
    return st;
}

canvas_status image_load(const char *path, canvas_image *out)
{
    memset(out, 0, sizeof *out);
    char *data;
    size_t size;
    TRY(file_read_all(path, IMAGE_MAX_FILE_BYTES, &data, &size));
    canvas_status st = image_decode(data, size, path, out);
    mem_free(data);
    return st;
}


/* ---- PNG out ---------------------------------------------------------------------------- */

typedef struct png_sink {
    FILE *file;
    char message[256];
} png_sink;

static void png_write_on_error(png_structp png, png_const_charp message)
{
    png_sink *sink = png_get_error_ptr(png);
    snprintf(sink->message, sizeof sink->message, "%s", message);
    png_longjmp(png, 1);
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

/* Encode into an open file; CANVAS_OK or a status naming `path`. */
static canvas_status png_encode(FILE *file, const char *path, const canvas_image *image, const canvas_text *texts,
                                int n_texts)
{
    png_sink sink = {file, ""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_write_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s: out of memory starting the PNG encoder", path);
    }
    png_text *volatile chunks = NULL;
    if (setjmp(png_jmpbuf(png))) {
        mem_free((void *)chunks);
        png_destroy_write_struct(&png, &info);
        return status_fail(CANVAS_ERR_IO, "%s: writing the PNG failed: %s", path, sink.message);
    }
    png_init_io(png, file);
    png_set_IHDR(png, info, (png_uint_32)image->width, (png_uint_32)image->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_text *c = NULL;
    canvas_status st = n_texts > 0 ? mem_calloc((void **)&c, (size_t)n_texts, sizeof *c, MEM_SCRATCH) : CANVAS_OK;
    chunks = c;
    if (st == CANVAS_OK && n_texts > 0) {
        for (int i = 0; i < n_texts; i++) {
            int ascii = is_ascii(texts[i].value);
            c[i].compression = ascii ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
            c[i].key = (png_charp)texts[i].key;
            c[i].text = (png_charp)texts[i].value;
            c[i].text_length = ascii ? strlen(texts[i].value) : 0;
            c[i].itxt_length = ascii ? 0 : strlen(texts[i].value);
        }
        png_set_text(png, info, c, n_texts);
    }
    if (st == CANVAS_OK) {
        png_set_compression_level(png, 6);
        png_write_info(png, info);
        for (int y = 0; y < image->height; y++)
            png_write_row(png, image->pixels + (size_t)y * image->width * 3);
        png_write_end(png, info);
    }
    mem_free(c);
    png_destroy_write_struct(&png, &info);
    return st;
}

/* ---- JPEG and WebP out ------------------------------------------------------------------- */

/* JPEG at `quality` (default 95, 4:2:0 as libjpeg chooses). JPEG has no text chunks: the
 * A1111 "parameters" text, when given, goes into a comment (COM) segment, where exiftool
 * and most viewers show it. */
static canvas_status jpeg_encode(FILE *file, const char *path, const canvas_image *image, const canvas_text *texts,
                                 int n_texts, int quality)
{
    struct jpeg_compress_struct cinfo;
    jpeg_errors errors;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&errors.base);
    errors.base.error_exit = jpeg_on_error;
    errors.base.output_message = jpeg_on_message;
    errors.message[0] = '\0';
    if (setjmp(errors.jump)) {
        jpeg_destroy_compress(&cinfo);
        return status_fail(CANVAS_ERR_IO, "%s: writing the JPEG failed: %s", path, errors.message);
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, file);
    cinfo.image_width = (JDIMENSION)image->width;
    cinfo.image_height = (JDIMENSION)image->height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality ? quality : 95, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    for (int i = 0; i < n_texts; i++)
        if (!strcmp(texts[i].key, "parameters")) {
            size_t n = strlen(texts[i].value);
            jpeg_write_marker(&cinfo, JPEG_COM, (const JOCTET *)texts[i].value, (unsigned)(n > 65533 ? 65533 : n));
        }
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = image->pixels + (size_t)cinfo.next_scanline * image->width * 3;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return CANVAS_OK;
}

/* WebP: lossless by default (the pixels come back exactly); `quality` 1..100 is lossy. */
static canvas_status webp_encode(FILE *file, const char *path, const canvas_image *image, int quality)
{
    uint8_t *encoded = NULL;
    int stride = image->width * 3;
    size_t size = quality ? WebPEncodeRGB(image->pixels, image->width, image->height, stride, (float)quality, &encoded)
                          : WebPEncodeLosslessRGB(image->pixels, image->width, image->height, stride, &encoded);
    if (size == 0) {
        WebPFree(encoded);
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s: the WebP encoder failed (out of memory or too large)", path);
    }
    canvas_status st = CANVAS_OK;
    if (fwrite(encoded, 1, size, file) != size) st = status_fail(CANVAS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    WebPFree(encoded);
    return st;
}

/* ---- writing files ---------------------------------------------------------------------- */

image_format image_format_from_path(const char *path)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(slash ? slash : path, '.');
    if (!dot) return IMAGE_UNKNOWN;
    if (!strcasecmp(dot, ".png")) return IMAGE_PNG;
    if (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg")) return IMAGE_JPEG;
    if (!strcasecmp(dot, ".webp")) return IMAGE_WEBP;
    return IMAGE_UNKNOWN;
}

static canvas_status write_as(const char *path, image_format format, const canvas_image *image,
                              const canvas_text *texts, int n_texts, int quality)
{
    if (!image || !image->pixels || image->width < 1 || image->height < 1)
        return status_fail(CANVAS_ERR_USAGE, "%s: no image to write", path);
    if (quality < 0 || quality > 100) return status_fail(CANVAS_ERR_USAGE, "%s: quality %d is outside 1..100", path, quality);
    if (format == IMAGE_WEBP && (image->width > WEBP_MAX_DIMENSION || image->height > WEBP_MAX_DIMENSION))
        return status_fail(CANVAS_ERR_USAGE, "%s: WebP holds at most %d pixels a side", path, WEBP_MAX_DIMENSION);
    for (int i = 0; i < n_texts; i++) {
        size_t n = texts[i].key ? strlen(texts[i].key) : 0;
        if (n < 1 || n > 79 || !texts[i].value)
            return status_fail(CANVAS_ERR_USAGE, "%s: PNG text key %d must have 1 to 79 characters and a value", path, i);
    }
    TRY(file_check_replaceable(path));
    char tmp[PATH_BUFFER_SIZE];
    int fd;
    TRY(output_temp_create(path, tmp, sizeof tmp, &fd));
    FILE *file = fdopen(fd, "wb");
    if (!file) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return status_fail(CANVAS_ERR_IO, "%s: cannot write %s: %s", path, tmp, strerror(e));
    }
    canvas_status st = format == IMAGE_JPEG   ? jpeg_encode(file, path, image, texts, n_texts, quality)
                       : format == IMAGE_WEBP ? webp_encode(file, path, image, quality)
                                              : png_encode(file, path, image, texts, n_texts);
    if (fflush(file) != 0 && st == CANVAS_OK) st = status_fail(CANVAS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (fclose(file) != 0 && st == CANVAS_OK) st = status_fail(CANVAS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return output_temp_finish(tmp, path, st);
}

canvas_status image_write_png(const char *path, const canvas_image *image, const canvas_text *texts, int n_texts)
{
    return write_as(path, IMAGE_PNG, image, texts, n_texts, 0);
}

canvas_status image_write(const char *path, const canvas_image *image, const canvas_text *texts, int n_texts,
                          int quality)
{
    image_format format = image_format_from_path(path);
    if (format == IMAGE_UNKNOWN)
        return status_fail(CANVAS_ERR_USAGE, "%s: unknown image extension (write .png, .jpg, .jpeg or .webp)", path);
    return write_as(path, format, image, texts, n_texts, quality);
}
