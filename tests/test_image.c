/* SPDX-License-Identifier: Apache-2.0 */
/* test_image.c — images in and out: PNG, JPEG and WebP files the test writes itself with
 * the codec libraries decode to the right pixels; the PNG writer round-trips pixels and
 * text chunks and leaves nothing behind on failure; JPEG and WebP are written by extension;
 * EXIF orientations turn the pixels as PIL's exif_transpose; broken files are CANVAS_ERR_INPUT
 * naming the file. (Resampling is tested in test_vl_image.c.) */
#define _GNU_SOURCE /* memmem */

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>

#include "check.h"
#include "io/file_read.h"
#include "io/image.h"
#include "mem/mem.h"

static char work[256];

static const char *in_work(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", work, name);
    return buf;
}

/* Files of the work folder whose names end in ".tmp" (a writer's temporary files). */
static int temp_files_in_work(void)
{
    DIR *dir = opendir(work);
    int n = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL) {
        size_t len = strlen(e->d_name);
        n += len > 4 && !strcmp(e->d_name + len - 4, ".tmp");
    }
    if (dir) closedir(dir);
    return n;
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
    CHECK(temp_files_in_work() == 0);

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
}

/* ---- writing by extension ----------------------------------------------------------------- */

static image_format sniff_file(const char *path)
{
    unsigned char head[16] = {0};
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    return image_sniff(head, n);
}

static void test_write_by_extension(void)
{
    CHECK(image_format_from_path("a/b.png") == IMAGE_PNG);
    CHECK(image_format_from_path("x.JPG") == IMAGE_JPEG && image_format_from_path("x.jpeg") == IMAGE_JPEG);
    CHECK(image_format_from_path("x.WebP") == IMAGE_WEBP);
    CHECK(image_format_from_path("x.gif") == IMAGE_UNKNOWN && image_format_from_path("x") == IMAGE_UNKNOWN);
    CHECK(image_format_from_path("dir.png/x") == IMAGE_UNKNOWN && image_format_from_path("x.png.tmp") == IMAGE_UNKNOWN);

    enum { W = 40, H = 24 };
    canvas_image img, back;
    CHECK_OK(image_alloc(W, H, &img));
    if (!img.pixels) return;
    for (int y = 0; y < H; y++) /* smooth, as in test_jpeg: quality 95 keeps it within a few levels */
        for (int x = 0; x < W; x++) {
            uint8_t *p = img.pixels + 3 * (y * W + x);
            p[0] = (uint8_t)(40 + 4 * x);
            p[1] = (uint8_t)(60 + 5 * y);
            p[2] = (uint8_t)(128 + x - y);
        }
    const canvas_text texts[] = {{"parameters", "a cat\nSteps: 8, Seed: 1"}};
    char path[512];

    /* JPEG: a real JPEG (not a PNG under another name), close to the pixels, the comment kept */
    CHECK_OK(image_write(in_work(path, sizeof path, "out.jpg"), &img, texts, 1, 0));
    CHECK(sniff_file(path) == IMAGE_JPEG);
    CHECK_OK(image_load(path, &back));
    int worst = 0;
    for (int i = 0; back.pixels && i < W * H * 3; i++) {
        int d = abs((int)back.pixels[i] - (int)img.pixels[i]);
        if (d > worst) worst = d;
    }
    printf("  written jpeg q95 worst |diff| = %d levels\n", worst);
    CHECK(back.width == W && back.height == H && worst <= 6);
    image_free(&back);
    char *data;
    size_t size;
    CHECK_OK(file_read_all(path, 1 << 20, &data, &size));
    CHECK(data && memmem(data, size, "Steps: 8, Seed: 1", 17) != NULL);
    mem_free(data);
    /* a lower quality makes a smaller file */
    long q95 = file_size(path);
    CHECK_OK(image_write(path, &img, NULL, 0, 20));
    CHECK(file_size(path) < q95);

    /* WebP: lossless by default (exact pixels), lossy with a quality */
    CHECK_OK(image_write(in_work(path, sizeof path, "out.WEBP"), &img, texts, 1, 0));
    CHECK(sniff_file(path) == IMAGE_WEBP);
    CHECK_OK(image_load(path, &back));
    CHECK(back.pixels && back.width == W && back.height == H && !memcmp(back.pixels, img.pixels, W * H * 3));
    image_free(&back);
    CHECK_OK(image_write(path, &img, NULL, 0, 50));
    CHECK(sniff_file(path) == IMAGE_WEBP);

    /* PNG by extension as before; an unknown extension is refused and writes nothing */
    CHECK_OK(image_write(in_work(path, sizeof path, "out.png"), &img, texts, 1, 0));
    CHECK(sniff_file(path) == IMAGE_PNG);
    CHECK_FAILS(image_write(in_work(path, sizeof path, "out.gif"), &img, NULL, 0, 0), CANVAS_ERR_USAGE, "unknown image extension");
    CHECK(!file_exists(path));
    CHECK_FAILS(image_write(in_work(path, sizeof path, "q.jpg"), &img, NULL, 0, 101), CANVAS_ERR_USAGE, "quality");
    image_free(&img);
}

/* ---- EXIF orientation --------------------------------------------------------------------- */

/* A big-endian TIFF block with IFD0 holding only the orientation tag. */
static void exif_block(unsigned char out[26], int orientation)
{
    static const unsigned char head[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1};
    memcpy(out, head, sizeof head);
    const unsigned char tail[8] = {0, (unsigned char)orientation, 0, 0, 0, 0, 0, 0};
    memcpy(out + sizeof head, tail, sizeof tail);
}

/* A 3x2 PNG with pixels 0..5 (red = index) and an eXIf chunk. */
static void write_png_with_exif(const char *path, int orientation)
{
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    CHECK(f && png && info);
    if (f && png && info && !setjmp(png_jmpbuf(png))) {
        png_init_io(png, f);
        png_set_IHDR(png, info, 3, 2, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                     PNG_FILTER_TYPE_DEFAULT);
        unsigned char exif[26];
        exif_block(exif, orientation);
        png_set_eXIf_1(png, info, sizeof exif, exif);
        png_write_info(png, info);
        for (int y = 0; y < 2; y++) {
            unsigned char row[9] = {0};
            for (int x = 0; x < 3; x++) row[3 * x] = (unsigned char)(y * 3 + x);
            png_write_row(png, row);
        }
        png_write_end(png, info);
    }
    png_destroy_write_struct(&png, &info);
    if (f) fclose(f);
}

static void test_exif_orientation(void)
{
    /* the index of the source pixel at each output position, row by row, as PIL's
     * exif_transpose turns this 3x2 image (source rows: 0 1 2 / 3 4 5) */
    static const struct { int orientation, width; unsigned char expect[6]; } cases[] = {
        {1, 3, {0, 1, 2, 3, 4, 5}}, {2, 3, {2, 1, 0, 5, 4, 3}}, {3, 3, {5, 4, 3, 2, 1, 0}},
        {4, 3, {3, 4, 5, 0, 1, 2}}, {5, 2, {0, 3, 1, 4, 2, 5}}, {6, 2, {3, 0, 4, 1, 5, 2}},
        {7, 2, {5, 2, 4, 1, 3, 0}}, {8, 2, {2, 5, 1, 4, 0, 3}},
    };
    char path[512];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        write_png_with_exif(in_work(path, sizeof path, "exif.png"), cases[c].orientation);
        canvas_image img;
        CHECK_OK(image_load(path, &img));
        CHECK(img.width == cases[c].width && img.height == 6 / cases[c].width);
        int same = img.pixels != NULL;
        for (int i = 0; same && i < 6; i++) same = img.pixels[3 * i] == cases[c].expect[i];
        if (!same) printf("  orientation %d: wrong pixels\n", cases[c].orientation);
        CHECK(same);
        image_free(&img);
    }
    /* JPEG: the APP1 "Exif" segment turns a 40x24 image into 24x40 */
    enum { W = 40, H = 24 };
    uint8_t rgb[W * H * 3];
    pattern(rgb, W, H);
    write_jpeg(in_work(path, sizeof path, "plain.jpg"), rgb, W, H, 95);
    char *data;
    size_t size;
    CHECK_OK(file_read_all(path, 1 << 20, &data, &size));
    if (!data) return;
    /* splice APP1 right after SOI */
    unsigned char app1[4 + 6 + 26] = {0xff, 0xe1, 0, 2 + 6 + 26, 'E', 'x', 'i', 'f', 0, 0};
    exif_block(app1 + 10, 6);
    unsigned char *joined = malloc(size + sizeof app1);
    CHECK(joined != NULL);
    if (joined) {
        memcpy(joined, data, 2);
        memcpy(joined + 2, app1, sizeof app1);
        memcpy(joined + 2 + sizeof app1, data + 2, size - 2);
        CHECK(image_exif_orientation(joined, size + sizeof app1) == 6);
        canvas_image img;
        CHECK_OK(image_decode(joined, size + sizeof app1, "turned.jpg", &img));
        CHECK(img.width == H && img.height == W);
        image_free(&img);
        /* a hostile IFD offset or a cut block reads as upright, never outside the bytes */
        joined[2 + 10 + 7] = 0xf0;
        CHECK(image_exif_orientation(joined, size + sizeof app1) == 1);
        CHECK(image_exif_orientation(joined, 2 + 12) == 1);
        free(joined);
    }
    mem_free(data);
}

/* A caller's pixel limit refuses from the header, in each format: one pixel over, refused
 * naming the limit; exactly at it, decoded as without a limit. */
static void test_decode_limited(void)
{
    const char *names[] = {"small.jpg", "lossy.webp", "lossless.webp"};
    char path[4200], dir[4096];
    test_path(dir, sizeof dir, "fuzz/seeds/image");
    for (int i = 0; i < 4; i++) {
        if (i < 3) snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        else test_path(path, sizeof path, "golden/cases/edit-cfg/image0.png");
        char *bytes = NULL;
        size_t size = 0;
        CHECK_OK(file_read_all(path, IMAGE_MAX_FILE_BYTES, &bytes, &size));
        canvas_image whole = {0}, limited = {0};
        CHECK_OK(image_decode(bytes, size, path, &whole));
        const int64_t pixels = (int64_t)whole.width * whole.height;
        CHECK_FAILS(image_decode_limited(bytes, size, path, pixels - 1, &limited), CANVAS_ERR_INPUT, "over the limit");
        CHECK(limited.pixels == NULL);
        CHECK_OK(image_decode_limited(bytes, size, path, pixels, &limited));
        CHECK(limited.pixels && !memcmp(limited.pixels, whole.pixels, (size_t)pixels * 3));
        image_free(&limited);
        image_free(&whole);
        mem_free(bytes);
    }
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
    RUN(test_write_by_extension);
    RUN(test_exif_orientation);
    RUN(test_decode_limited);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", work);
    return check_summary();
}
