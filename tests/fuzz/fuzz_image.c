/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_image.c — PNG, JPEG and WebP input (io/image.h), from memory and from a file. */
#include "fuzz.h"
#include "io/image.h"

static volatile uint8_t pixel_sink; /* the reads below must not be optimised away */

static void check_decoded(const canvas_image *image)
{
    /* A decoded image is inside the limits and every pixel is readable. */
    if (image->width <= 0 || image->height <= 0 || image->width > IMAGE_MAX_SIDE || image->height > IMAGE_MAX_SIDE)
        __builtin_trap();
    size_t bytes = (size_t)image->width * (size_t)image->height * 3;
    for (size_t i = 0; i < bytes; i += 4096) pixel_sink ^= image->pixels[i];
    pixel_sink ^= image->pixels[bytes - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    canvas_image image = {0};
    if (image_decode(data, size, "input", &image) == CANVAS_OK) {
        check_decoded(&image);
        image_free(&image);
    }
    const char *path = fuzz_file("input.img", data, size);
    if (path && image_load(path, &image) == CANVAS_OK) {
        check_decoded(&image);
        image_free(&image);
    }
    return 0;
}
