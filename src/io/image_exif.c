/* SPDX-License-Identifier: Apache-2.0 */
/* image_exif.c — the EXIF orientation of an input image, and turning the pixels upright
 * (contracts in image.h).
 *
 * Cameras store a portrait photo as landscape pixels plus an orientation tag; diffusers'
 * load_image applies it (ImageOps.exif_transpose), so a reference image must be turned
 * here too or the edit sees it sideways. The tag is found by walking the container's own
 * structure (JPEG segments, PNG chunks, RIFF chunks) in the undecoded bytes, with every
 * length checked against what is left: a broken or hostile EXIF block means "upright",
 * never a read outside the file. */
#include "io/image.h"

#include <string.h>

#include "base/status.h"
#include "mem/mem.h"

static uint32_t get16(const unsigned char *p, int big) { return big ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0]; }

static uint32_t get32(const unsigned char *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Tag 0x0112 of IFD0 in a TIFF block ("II*\0" or "MM\0*"); 1 when absent or out of range. */
static int tiff_orientation(const unsigned char *t, size_t size)
{
    if (size < 8) return 1;
    int big;
    if (!memcmp(t, "II*\0", 4)) big = 0;
    else if (!memcmp(t, "MM\0*", 4)) big = 1;
    else return 1;
    uint32_t ifd = get32(t + 4, big);
    if (ifd > size - 2) return 1;
    uint32_t n = get16(t + ifd, big);
    for (uint32_t i = 0; i < n; i++) {
        size_t at = (size_t)ifd + 2 + (size_t)i * 12;
        if (at + 12 > size) return 1;
        if (get16(t + at, big) != 0x0112) continue;
        uint32_t type = get16(t + at + 2, big), value = get16(t + at + 8, big);
        return type == 3 && value >= 1 && value <= 8 ? (int)value : 1;
    }
    return 1;
}

/* JPEG: the APP1 segment that starts "Exif\0\0", among the segments before the scan. */
static int jpeg_orientation(const unsigned char *b, size_t size)
{
    size_t at = 2;
    while (at + 4 <= size && b[at] == 0xff) {
        unsigned marker = b[at + 1];
        if (marker == 0xda || marker == 0xd9) break; /* start of scan / end: no more metadata */
        size_t length = get16(b + at + 2, 1);
        if (length < 2 || length > size - at - 2) break;
        const unsigned char *body = b + at + 4;
        if (marker == 0xe1 && length >= 8 && !memcmp(body, "Exif\0\0", 6)) return tiff_orientation(body + 6, length - 8);
        at += 2 + length;
    }
    return 1;
}

/* PNG: the eXIf chunk (a TIFF block as it is). */
static int png_orientation(const unsigned char *b, size_t size)
{
    size_t at = 8;
    while (at + 12 <= size) {
        size_t length = get32(b + at, 1);
        if (length > size - at - 12) break;
        if (!memcmp(b + at + 4, "eXIf", 4)) return tiff_orientation(b + at + 8, length);
        if (!memcmp(b + at + 4, "IEND", 4)) break;
        at += 12 + length;
    }
    return 1;
}

/* WebP: the RIFF chunk "EXIF" (some writers keep the "Exif\0\0" prefix of JPEG). */
static int webp_orientation(const unsigned char *b, size_t size)
{
    size_t at = 12;
    while (at + 8 <= size) {
        size_t length = get32(b + at + 4, 0);
        if (length > size - at - 8) break;
        const unsigned char *body = b + at + 8;
        if (!memcmp(b + at, "EXIF", 4)) {
            if (length >= 6 && !memcmp(body, "Exif\0\0", 6)) return tiff_orientation(body + 6, length - 6);
            return tiff_orientation(body, length);
        }
        at += 8 + length + (length & 1);
    }
    return 1;
}

int image_exif_orientation(const void *bytes, size_t size)
{
    switch (image_sniff(bytes, size)) {
    case IMAGE_JPEG: return jpeg_orientation(bytes, size);
    case IMAGE_PNG: return png_orientation(bytes, size);
    case IMAGE_WEBP: return webp_orientation(bytes, size);
    case IMAGE_UNKNOWN: break;
    }
    return 1;
}

canvas_status image_orient(canvas_image *image, int orientation)
{
    if (orientation < 2 || orientation > 8) return CANVAS_OK;
    int w = image->width, h = image->height, swap = orientation >= 5;
    canvas_image out;
    TRY(image_alloc(swap ? h : w, swap ? w : h, &out));
    /* for each output pixel (x, y), the source pixel (sx, sy): PIL's transposes */
    for (int y = 0; y < out.height; y++)
        for (int x = 0; x < out.width; x++) {
            int sx, sy;
            switch (orientation) {
            case 2: sx = w - 1 - x, sy = y; break;          /* mirrored */
            case 3: sx = w - 1 - x, sy = h - 1 - y; break;  /* upside down */
            case 4: sx = x, sy = h - 1 - y; break;          /* flipped */
            case 5: sx = y, sy = x; break;                  /* transposed */
            case 6: sx = y, sy = h - 1 - x; break;          /* turned a quarter clockwise */
            case 7: sx = w - 1 - y, sy = h - 1 - x; break;  /* transversed */
            default: sx = w - 1 - y, sy = x; break;         /* 8: a quarter anticlockwise */
            }
            memcpy(out.pixels + ((size_t)y * out.width + x) * 3, image->pixels + ((size_t)sy * w + sx) * 3, 3);
        }
    image_free(image);
    *image = out;
    return CANVAS_OK;
}
