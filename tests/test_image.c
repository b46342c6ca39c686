/* SPDX-License-Identifier: Apache-2.0 */
/* test_image.c — images in and out: PNG, JPEG and WebP files the test writes itself with
 * the codec libraries decode to the right pixels; the PNG writer round-trips pixels and
 * text chunks and leaves nothing behind on failure; broken files are CANVAS_ERR_INPUT
 * naming the file. (Resampling is tested in test_vl_image.c.) */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>

#include "check.h"
#include "io/image.h"
#include "mem/mem.h"

static char work[256];

static const char *in_work(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", work, name);
    return buf;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void write_bytes(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, size, f) == size);
    fclose(f);
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* A test pattern: distinct values per pixel and channel. */
static void pattern(uint8_t *rgb, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + 3 * (y * w + x);
            p[0] = (uint8_t)(x * 7 + y);
            p[1] = (uint8_t)(y * 11 + 3);
            p[2] = (uint8_t)((x ^ y) * 5);
        }
}

/* ---- PNG ---------------------------------------------------------------------------------- */

static void test_png_round_trip_and_text(void)
{
    char path[512];
    in_work(path, sizeof path, "round.png");
    canvas_image img;
    CHECK_OK(image_alloc(13, 7, &img));
    if (!img.pixels) return;
    pattern(img.pixels, 13, 7);
    const canvas_text texts[] = {{"prompt", "a cat, \"quoted\""}, {"seed", "42"}, {"note", "caf\xc3\xa9"}};
    CHECK_OK(image_write_png(path, &img, texts, 3));
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    CHECK(!file_exists(tmp));

    canvas_image back;
    CHECK_OK(image_load(path, &back));
    CHECK(back.width == 13 && back.height == 7);
    if (back.pixels) CHECK(!memcmp(back.pixels, img.pixels, 13 * 7 * 3));
    image_free(&back);
    CHECK(back.pixels == NULL);

    /* the text chunks, read with libpng itself */
    FILE *f = fopen(path, "rb");
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    int found = 0;
    if (f && png && info && !setjmp(png_jmpbuf(png))) {
        png_init_io(png, f);
        png_read_info(png, info);
        CHECK(png_get_bit_depth(png, info) == 8 && png_get_color_type(png, info) == PNG_COLOR_TYPE_RGB);
        png_textp t;
        int n = 0;
        png_get_text(png, info, &t, &n);
        for (int i = 0; i < n; i++) {
            if (!strcmp(t[i].key, "prompt") && !strcmp(t[i].text, "a cat, \"quoted\"") &&
                t[i].compression == PNG_TEXT_COMPRESSION_NONE)
                found++;
            if (!strcmp(t[i].key, "seed") && !strcmp(t[i].text, "42")) found++;
            if (!strcmp(t[i].key, "note") && !strcmp(t[i].text, "caf\xc3\xa9") && t[i].compression >= PNG_ITXT_COMPRESSION_NONE)
                found++;
        }
    }
    CHECK(found == 3);
    png_destroy_read_struct(&png, &info, NULL);
    if (f) fclose(f);
    image_free(&img);
}

/* Grey and RGBA files from libpng's simplified writer: grey replicated, alpha dropped. */
static void test_png_grey_and_alpha(void)
{
    char path[512];
    uint8_t grey[4 * 3], rgba[4 * 3 * 4];
    for (int i = 0; i < 12; i++) grey[i] = (uint8_t)(i * 20);
    for (int i = 0; i < 12; i++) {
        rgba[4 * i] = (uint8_t)i;
        rgba[4 * i + 1] = (uint8_t)(100 + i);
        rgba[4 * i + 2] = (uint8_t)(200 + i);
        rgba[4 * i + 3] = (uint8_t)(i * 10); /* transparency must not change the colours */
    }
    png_image desc;
    memset(&desc, 0, sizeof desc);
    desc.version = PNG_IMAGE_VERSION;
    desc.width = 4;
    desc.height = 3;
    desc.format = PNG_FORMAT_GRAY;
    CHECK(png_image_write_to_file(&desc, in_work(path, sizeof path, "grey.png"), 0, grey, 0, NULL));
    canvas_image img;
    CHECK_OK(image_load(path, &img));
    CHECK(img.width == 4 && img.height == 3);
    for (int i = 0; img.pixels && i < 12; i++)
        CHECK(img.pixels[3 * i] == grey[i] && img.pixels[3 * i + 1] == grey[i] && img.pixels[3 * i + 2] == grey[i]);
    image_free(&img);

    memset(&desc, 0, sizeof desc);
    desc.version = PNG_IMAGE_VERSION;
    desc.width = 4;
    desc.height = 3;
    desc.format = PNG_FORMAT_RGBA;
    CHECK(png_image_write_to_file(&desc, in_work(path, sizeof path, "rgba.png"), 0, rgba, 0, NULL));
    CHECK_OK(image_load(path, &img));
    for (int i = 0; img.pixels && i < 12; i++)
        CHECK(img.pixels[3 * i] == rgba[4 * i] && img.pixels[3 * i + 1] == rgba[4 * i + 1] &&
              img.pixels[3 * i + 2] == rgba[4 * i + 2]);
    image_free(&img);
}

/* ---- JPEG --------------------------------------------------------------------------------- */

static void write_jpeg(const char *path, const uint8_t *rgb, int w, int h, int quality)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

static void test_jpeg(void)
{
    enum { W = 40, H = 24 };
    uint8_t rgb[W * H * 3];
    /* smooth, so quality 95 keeps every value within a few levels */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = rgb + 3 * (y * W + x);
            p[0] = (uint8_t)(40 + 4 * x);
            p[1] = (uint8_t)(60 + 5 * y);
            p[2] = 128;
        }
    char path[512];
    write_jpeg(in_work(path, sizeof path, "smooth.jpg"), rgb, W, H, 95);
    canvas_image img;
    CHECK_OK(image_load(path, &img));
    CHECK(img.width == W && img.height == H);
    int worst = 0;
    for (int i = 0; img.pixels && i < W * H * 3; i++) {
        int d = abs((int)img.pixels[i] - (int)rgb[i]);
        if (d > worst) worst = d;
    }
    printf("  jpeg q95 worst |diff| = %d levels\n", worst);
    CHECK(img.pixels && worst <= 6);
    image_free(&img);

    /* truncated: the first half of the file */
    FILE *f = fopen(path, "rb");
    uint8_t bytes[65536];
    size_t n = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f) fclose(f);
    CHECK(n > 100);
    char cut[512];
    write_bytes(in_work(cut, sizeof cut, "cut.jpg"), bytes, n / 2);
    CHECK_FAILS(image_load(cut, &img), CANVAS_ERR_INPUT, cut);
    CHECK(img.pixels == NULL);
}

/* ---- WebP --------------------------------------------------------------------------------- */

static void test_webp(void)
{
    enum { W = 9, H = 5 };
    uint8_t rgb[W * H * 3];
    pattern(rgb, W, H);
    uint8_t *encoded = NULL;
    size_t size = WebPEncodeLosslessRGB(rgb, W, H, W * 3, &encoded);
    CHECK(size > 0 && encoded != NULL);
    if (!encoded) return;
    char path[512];
    write_bytes(in_work(path, sizeof path, "lossless.webp"), encoded, size);
    canvas_image img;
    CHECK_OK(image_load(path, &img));
    CHECK(img.width == W && img.height == H);
    if (img.pixels) CHECK(!memcmp(img.pixels, rgb, sizeof rgb));
    image_free(&img);
    char cut[512];
    write_bytes(in_work(cut, sizeof cut, "cut.webp"), encoded, size - size / 3);
    CHECK_FAILS(image_load(cut, &img), CANVAS_ERR_INPUT, cut);
    WebPFree(encoded);
}

/* ---- bad files ----------------------------------------------------------------------------- */

static void test_bad_files(void)
{
    char path[512], cut[512];
    canvas_image img;
    /* a truncated PNG */
    in_work(path, sizeof path, "whole.png");
    CHECK_OK(image_alloc(30, 20, &img));
    if (img.pixels) pattern(img.pixels, 30, 20);
    CHECK_OK(image_write_png(path, &img, NULL, 0));
    image_free(&img);
    uint8_t bytes[8192];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f) fclose(f);
    write_bytes(in_work(cut, sizeof cut, "cut.png"), bytes, n - 20);
    CHECK_FAILS(image_load(cut, &img), CANVAS_ERR_INPUT, "cut.png");
    write_bytes(cut, bytes, 40); /* the header only */
    CHECK_FAILS(image_load(cut, &img), CANVAS_ERR_INPUT, "not a readable PNG");
    /* garbage, empty, missing */
    write_bytes(in_work(path, sizeof path, "garbage.png"), "this is not an image at all", 27);
    CHECK_FAILS(image_load(path, &img), CANVAS_ERR_INPUT, "garbage.png: not a PNG, JPEG or WebP image");
    write_bytes(in_work(path, sizeof path, "empty.png"), "", 0);
    CHECK_FAILS(image_load(path, &img), CANVAS_ERR_INPUT, "empty");
    CHECK_FAILS(image_load(in_work(path, sizeof path, "missing.png"), &img), CANVAS_ERR_INPUT, "missing.png");
    /* a directory */
    CHECK_FAILS(image_load(work, &img), CANVAS_ERR_INPUT, "not a regular file");
    CHECK(img.pixels == NULL);
}

static void test_write_failure_leaves_nothing(void)
{
    canvas_image img;
    CHECK_OK(image_alloc(4, 4, &img));
    if (img.pixels) memset(img.pixels, 9, 48);
    char path[512];
    in_work(path, sizeof path, "no-such-dir/out.png");
    CHECK_FAILS(image_write_png(path, &img, NULL, 0), CANVAS_ERR_IO, "out.png");
    CHECK(!file_exists(path));
    /* an existing file is replaced only by a complete one */
    in_work(path, sizeof path, "kept.png");
    write_bytes(path, "old", 3);
    const canvas_text bad_key[] = {{"", "x"}};
    CHECK_FAILS(image_write_png(path, &img, bad_key, 1), CANVAS_ERR_USAGE, "text key");
    CHECK(file_size(path) == 3);
    image_free(&img);
    CHECK(image_sniff("\x89PNG\r\n\x1a\n", 8) == IMAGE_PNG);
    CHECK(image_sniff("\xff\xd8\xff\xe0", 4) == IMAGE_JPEG);
    CHECK(image_sniff("RIFF\0\0\0\0WEBPVP8 ", 16) == IMAGE_WEBP);
    CHECK(image_sniff("GIF89a", 6) == IMAGE_UNKNOWN);
    CHECK(image_same_file(path, path));
    char other[512];
    CHECK(!image_same_file(path, in_work(other, sizeof other, "round.png")));
}

int main(void)
{
    snprintf(work, sizeof work, "/tmp/canvas_test_image.%ld", (long)getpid());
    if (mkdir(work, 0700) != 0) return 1;
    RUN(test_png_round_trip_and_text);
    RUN(test_png_grey_and_alpha);
    RUN(test_jpeg);
    RUN(test_webp);
    RUN(test_bad_files);
    RUN(test_write_failure_leaves_nothing);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", work);
    return check_summary();
}
