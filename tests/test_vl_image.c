/* SPDX-License-Identifier: Apache-2.0 */
/* test_vl_image.c — images for the vision encoder: pil_resize equals Pillow bit for bit
 * (hashes of Pillow's own output, tools/pil_resize_reference.py, and a hand-computed
 * case); smart_resize and calculate_dimensions equal transformers' / diffusers' Python on
 * a table with odd sizes and extreme aspect ratios; the prompt-* goldens' processed_image.N
 * (PIL LANCZOS then BICUBIC) are matched exactly and the textenc-* goldens' pixel_values
 * within 1e-6; the processor config loads and refuses what it cannot do; hostile sizes
 * fail before any allocation; every allocation failure of the chain is clean. */
#define _POSIX_C_SOURCE 200809L

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "io/config.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "pipeline/edit.h"
#include "pipeline/pil_resize.h"
#include "pipeline/vl_image.h"

static uint64_t allocations_so_far(void)
{
    uint64_t n = 0;
    for (int c = 0; c <= MEM_SCRATCH; c++) {
        mem_class_stats s;
        mem_get_stats((mem_class)c, &s);
        n += s.allocations;
    }
    return n;
}

/* ---- pil_resize ------------------------------------------------------------------------ */

/* the pattern of tools/pil_resize_reference.py */
static uint8_t pattern(int x, int y, int c)
{
    return (uint8_t)((x * 37 + y * 101 + c * 53 + ((x * y) % 7) * 29 + ((x / 3 + y / 2) % 2 ? 96 : 0)) & 255);
}

static uint64_t fnv1a64(const uint8_t *data, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++) h = (h ^ data[i]) * 0x100000001b3u;
    return h;
}

typedef struct pil_case {
    int in_w, in_h, channels, out_w, out_h;
    pil_filter filter;
    uint64_t hash;
} pil_case;

/* Pillow 9.4.0 (Debian bookworm's python3-pil), printed by tools/pil_resize_reference.py */
static const pil_case pillow_cases[] = {
    {13, 11, 3, 40, 29, PIL_BILINEAR, 0x4457b83bfcf6af08u},
    {13, 11, 3, 40, 29, PIL_BICUBIC, 0x8ea3764ab7364d9cu},
    {13, 11, 3, 40, 29, PIL_LANCZOS, 0x7f97214bdb2ec63eu},
    {13, 11, 1, 40, 29, PIL_BILINEAR, 0xc9e8ba495b93b6f8u},
    {13, 11, 1, 40, 29, PIL_BICUBIC, 0x9feb8392d14d82bdu},
    {13, 11, 1, 40, 29, PIL_LANCZOS, 0x154d2a08ce17529bu},
    {40, 29, 3, 13, 11, PIL_BILINEAR, 0xc4548f66bd273bb1u},
    {40, 29, 3, 13, 11, PIL_BICUBIC, 0x22418c9e4e8195d3u},
    {40, 29, 3, 13, 11, PIL_LANCZOS, 0x887a7e8c737a6e01u},
    {40, 29, 1, 13, 11, PIL_BILINEAR, 0x1ead20475c226506u},
    {40, 29, 1, 13, 11, PIL_BICUBIC, 0x804d438d9a3b3ec3u},
    {40, 29, 1, 13, 11, PIL_LANCZOS, 0xbb7fd3ef9a249776u},
    {97, 61, 3, 31, 60, PIL_BILINEAR, 0x6fd035473b954f84u},
    {97, 61, 3, 31, 60, PIL_BICUBIC, 0x9162538005500ad0u},
    {97, 61, 3, 31, 60, PIL_LANCZOS, 0xabdd75a1b00e2543u},
    {97, 61, 1, 31, 60, PIL_BILINEAR, 0xfa4825b3c1f0f660u},
    {97, 61, 1, 31, 60, PIL_BICUBIC, 0x2c11aac6f15ae07au},
    {97, 61, 1, 31, 60, PIL_LANCZOS, 0xf028845372b84ccbu},
    {64, 48, 3, 64, 17, PIL_BILINEAR, 0x1650142b14ac195eu},
    {64, 48, 3, 64, 17, PIL_BICUBIC, 0xf4ff16570292732fu},
    {64, 48, 3, 64, 17, PIL_LANCZOS, 0xecc8acacdc457ebau},
    {64, 48, 1, 64, 17, PIL_BILINEAR, 0xfacadcf60b10ada2u},
    {64, 48, 1, 64, 17, PIL_BICUBIC, 0xfdf4bfc211030a87u},
    {64, 48, 1, 64, 17, PIL_LANCZOS, 0xe8674da5b81469b3u},
    {23, 50, 3, 7, 50, PIL_BILINEAR, 0xd4bb11372631a5e3u},
    {23, 50, 3, 7, 50, PIL_BICUBIC, 0xefbdf1b6b1a7eb8bu},
    {23, 50, 3, 7, 50, PIL_LANCZOS, 0x50f96dc9d496fb0eu},
    {23, 50, 1, 7, 50, PIL_BILINEAR, 0xd57be87393d04135u},
    {23, 50, 1, 7, 50, PIL_BICUBIC, 0x96fe929520bd64adu},
    {23, 50, 1, 7, 50, PIL_LANCZOS, 0xa52c8fde3b1e4fe1u},
    {200, 3, 3, 9, 1, PIL_BILINEAR, 0xa66c6111036df202u},
    {200, 3, 3, 9, 1, PIL_BICUBIC, 0x8e87051b755a239au},
    {200, 3, 3, 9, 1, PIL_LANCZOS, 0x075545d0b1550508u},
    {200, 3, 1, 9, 1, PIL_BILINEAR, 0x1a625f69c3ee505au},
    {200, 3, 1, 9, 1, PIL_BICUBIC, 0x1984707a941702b0u},
    {200, 3, 1, 9, 1, PIL_LANCZOS, 0xf73e091cfedf6addu},
    {1, 1, 3, 5, 4, PIL_BILINEAR, 0xedeab3784e758b69u},
    {1, 1, 3, 5, 4, PIL_BICUBIC, 0xedeab3784e758b69u},
    {1, 1, 3, 5, 4, PIL_LANCZOS, 0xedeab3784e758b69u},
    {1, 1, 1, 5, 4, PIL_BILINEAR, 0xee85fafd354b0935u},
    {1, 1, 1, 5, 4, PIL_BICUBIC, 0xee85fafd354b0935u},
    {1, 1, 1, 5, 4, PIL_LANCZOS, 0xee85fafd354b0935u},
    {96, 64, 3, 480, 320, PIL_BILINEAR, 0xa84f17dd6e8c07e3u},
    {96, 64, 3, 480, 320, PIL_BICUBIC, 0xe65d9eab4374f562u},
    {96, 64, 3, 480, 320, PIL_LANCZOS, 0xdd36e88840aba7ccu},
    {96, 64, 1, 480, 320, PIL_BILINEAR, 0x3a2f7921b3b6b9f9u},
    {96, 64, 1, 480, 320, PIL_BICUBIC, 0x7cfa52da48affb68u},
    {96, 64, 1, 480, 320, PIL_LANCZOS, 0x327ea54527b91a76u},
    {480, 320, 3, 476, 308, PIL_BILINEAR, 0x304baaa7399026e0u},
    {480, 320, 3, 476, 308, PIL_BICUBIC, 0x80dff26db45e2bbau},
    {480, 320, 3, 476, 308, PIL_LANCZOS, 0x8d588361bf1736d3u},
    {480, 320, 1, 476, 308, PIL_BILINEAR, 0xef831971c2e87910u},
    {480, 320, 1, 476, 308, PIL_BICUBIC, 0x3ff8227d0cae52e5u},
    {480, 320, 1, 476, 308, PIL_LANCZOS, 0x774bac10a363e226u},
};

static void test_pil_resize_equals_pillow(void)
{
    int matched = 0, n = (int)(sizeof pillow_cases / sizeof pillow_cases[0]);
    for (int i = 0; i < n; i++) {
        const pil_case *k = &pillow_cases[i];
        size_t in_bytes = (size_t)k->in_w * k->in_h * k->channels, out_bytes = (size_t)k->out_w * k->out_h * k->channels;
        uint8_t *in = malloc(in_bytes), *out = malloc(out_bytes);
        for (int y = 0; y < k->in_h; y++)
            for (int x = 0; x < k->in_w; x++)
                for (int c = 0; c < k->channels; c++)
                    in[((size_t)y * k->in_w + x) * k->channels + c] = pattern(x, y, c);
        CHECK_OK(pil_resize(in, k->in_w, k->in_h, k->channels, out, k->out_w, k->out_h, k->filter));
        uint64_t h = fnv1a64(out, out_bytes);
        CHECK_MSG(h == k->hash, "%dx%dx%d -> %dx%d filter %d: hash %016llx, Pillow %016llx", k->in_w, k->in_h,
                  k->channels, k->out_w, k->out_h, (int)k->filter, (unsigned long long)h,
                  (unsigned long long)k->hash);
        matched += h == k->hash;
        free(in);
        free(out);
    }
    fprintf(stderr, "pil_resize: %d of %d Pillow outputs identical\n", matched, n);
}

/* BILINEAR 4 -> 2 by hand: scale 2, support 2; output 0 has centre 1 and taps 0..2 with
 * weights (0.75, 0.75, 0.25) / 1.75, output 1 centre 3 and taps 1..3 with (0.25, 0.75,
 * 0.75) / 1.75; in fixed point (3/7 -> 1797559, 1/7 -> 599186 units of 2^-22):
 * (2^21 + 100·1797559 + 200·599186) >> 22 = 71, (2^21 + 100·599186 + (200 + 255)·1797559) >> 22 = 209. */
static void test_pil_resize_by_hand(void)
{
    const uint8_t row[4] = {0, 100, 200, 255};
    uint8_t out[2] = {0};
    CHECK_OK(pil_resize(row, 4, 1, 1, out, 2, 1, PIL_BILINEAR));
    CHECK(out[0] == 71 && out[1] == 209);
    /* a constant stays constant and the identity is a copy, for every filter */
    uint8_t flat[7 * 5 * 3], big[19 * 2 * 3], same[7 * 5 * 3];
    for (size_t i = 0; i < sizeof flat; i++) flat[i] = 201;
    for (int f = PIL_BILINEAR; f <= PIL_LANCZOS; f++) {
        CHECK_OK(pil_resize(flat, 7, 5, 3, big, 19, 2, (pil_filter)f));
        int constant = 1;
        for (size_t i = 0; i < sizeof big; i++) constant &= big[i] == 201;
        CHECK(constant);
        for (size_t i = 0; i < sizeof flat; i++) flat[i] = (uint8_t)(i * 31);
        CHECK_OK(pil_resize(flat, 7, 5, 3, same, 7, 5, (pil_filter)f));
        CHECK(memcmp(flat, same, sizeof flat) == 0);
        for (size_t i = 0; i < sizeof flat; i++) flat[i] = 201;
    }
}

/* A ramp shrunk stays monotonic and, away from the edges, samples input (x + 0.5)·scale -
 * 0.5; a width-only resize filters each row on its own (the other axis is not touched). */
static void test_pil_resize_ramp_and_rows(void)
{
    enum { W = 200, H = 3 };
    uint8_t in[W * H], out[W * H];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) in[y * W + x] = (uint8_t)(x + 20);
    const int widths[] = {64, 33, 10, 2};
    for (size_t k = 0; k < sizeof widths / sizeof widths[0]; k++) {
        const int ow = widths[k];
        CHECK_OK(pil_resize(in, W, H, 1, out, ow, 2, PIL_LANCZOS));
        int monotonic = 1;
        for (int y = 0; y < 2; y++)
            for (int x = 1; x < ow; x++) monotonic &= out[y * ow + x] >= out[y * ow + x - 1];
        CHECK_MSG(monotonic, "downscale of a ramp to %d columns is not monotonic", ow);
        if (ow >= 10) CHECK_NEAR(out[ow / 2], (ow / 2 + 0.5) * W / (double)ow - 0.5 + 20, 1.0);
    }
    uint8_t wide[2 * W * H], row[2 * W];
    CHECK_OK(pil_resize(in, W, H, 1, wide, 2 * W, H, PIL_BICUBIC));
    int rows_alone = 1;
    for (int y = 0; y < H; y++) {
        CHECK_OK(pil_resize(in + y * W, W, 1, 1, row, 2 * W, 1, PIL_BICUBIC));
        rows_alone &= !memcmp(row, wide + y * 2 * W, sizeof row);
    }
    CHECK_MSG(rows_alone, "a width-only resize mixed rows");
}

static void test_pil_resize_refuses(void)
{
    uint8_t px[12] = {0}, out[12];
    uint64_t before = allocations_so_far();
    CHECK_FAILS(pil_resize(px, 0, 2, 3, out, 2, 2, PIL_BICUBIC), CANVAS_ERR_USAGE, "pil_resize");
    CHECK_FAILS(pil_resize(px, 2, 2, 3, out, 2, -1, PIL_BICUBIC), CANVAS_ERR_USAGE, "pil_resize");
    CHECK_FAILS(pil_resize(px, 2, 2, 3, out, (1 << 20) + 1, 1, PIL_LANCZOS), CANVAS_ERR_USAGE, "sizes");
    CHECK_FAILS(pil_resize(px, 2, 2, 5, out, 1, 1, PIL_LANCZOS), CANVAS_ERR_USAGE, "channels");
    CHECK_FAILS(pil_resize(px, 2, 2, 3, out, 1, 1, (pil_filter)7), CANVAS_ERR_USAGE, "filter");
    CHECK(allocations_so_far() == before);
}

/* ---- sizes ----------------------------------------------------------------------------- */

/* Expected values from transformers' smart_resize run in Python (0 0: it raises). */
static void test_smart_resize_table(void)
{
    static const struct {
        int h, w, max_pixels, want_h, want_w;
    } cases[] = {
        {384, 384, 12845056, 392, 392},     {1024, 1024, 12845056, 1036, 1036}, {320, 480, 12845056, 308, 476},
        {42, 70, 12845056, 56, 56},         /* 1.5 -> 2 and 2.5 -> 2: half to even */
        {98, 126, 12845056, 112, 112},      /* 3.5 -> 4, 4.5 -> 4 */
        {28, 28, 12845056, 56, 56},         /* under min_pixels: ceil branch */
        {29, 31, 12845056, 56, 84},         {16384, 16384, 12845056, 3584, 3584}, /* over max_pixels */
        {4000, 3000, 12845056, 4004, 2996}, {28, 5600, 12845056, 28, 5600},       /* ratio exactly 200 */
        {1001, 777, 12845056, 1008, 784},   {5000, 5000, 1003520, 980, 980},
        {30, 6000, 12845056, 28, 5992},     {100, 10000, 100000, 28, 3136},       /* floor gives 0: factor */
        {3000, 29, 3136, 560, 28},          {333, 5555, 12845056, 336, 5544},
        {28, 5601, 12845056, 0, 0},         {27, 100, 12845056, 0, 0},            /* ratio > 200, side < 28 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int h = -1, w = -1;
        canvas_status st = vl_smart_resize(cases[i].h, cases[i].w, 28, 3136, cases[i].max_pixels, &h, &w);
        if (cases[i].want_h == 0) {
            CHECK_MSG(st == CANVAS_ERR_INPUT && h == -1, "%dx%d must be refused", cases[i].h, cases[i].w);
        } else {
            CHECK_MSG(st == CANVAS_OK && h == cases[i].want_h && w == cases[i].want_w, "%dx%d -> %dx%d, want %dx%d",
                      cases[i].h, cases[i].w, h, w, cases[i].want_h, cases[i].want_w);
        }
    }
    int h, w;
    CHECK_FAILS(vl_smart_resize(5601, 28, 28, 3136, 12845056, &h, &w), CANVAS_ERR_INPUT, "aspect ratio");
    CHECK_FAILS(vl_smart_resize(100, 27, 28, 3136, 12845056, &h, &w), CANVAS_ERR_INPUT, "at least 28");
    CHECK_FAILS(vl_smart_resize(100, 100, 0, 3136, 12845056, &h, &w), CANVAS_ERR_USAGE, "smart_resize");
    CHECK_FAILS(vl_smart_resize(100, 100, 28, 5000, 4000, &h, &w), CANVAS_ERR_USAGE, "smart_resize");
}

/* diffusers' calculate_dimensions in Python; the goldens' condition sizes among them. */
static void test_calculate_dimensions_table(void)
{
    static const struct {
        int64_t area;
        int w, h, want_w, want_h;
    } cases[] = {
        {384 * 384, 96, 64, 480, 320},      {384 * 384, 60, 80, 320, 448},     {384 * 384, 112, 48, 576, 256},
        {1024 * 1024, 1920, 1080, 1376, 768}, {1024 * 1024, 4000, 3001, 1184, 896}, {384 * 384, 5430, 27, 5440, 32},
        {1024 * 1024, 77, 1999, 192, 5216}, {384 * 384, 3, 2, 480, 320},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int w, h;
        edit_dimensions(cases[i].area, (double)cases[i].w / cases[i].h, &w, &h);
        CHECK_MSG(w == cases[i].want_w && h == cases[i].want_h, "%dx%d at %lld -> %dx%d, want %dx%d", cases[i].w,
                  cases[i].h, (long long)cases[i].area, w, h, cases[i].want_w, cases[i].want_h);
    }
}

/* ---- the processor config -------------------------------------------------------------- */

static vl_image_config real_config(void)
{
    char path[512];
    vl_image_config cfg;
    CHECK_OK(vl_image_config_load(test_path(path, sizeof path, "real-configs/qwen-image-edit-2511/processor/preprocessor_config.json"),
                                  &cfg));
    return cfg;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_config(void)
{
    vl_image_config cfg = real_config(), def;
    vl_image_config_default(&def);
    CHECK(cfg.min_pixels == 3136 && cfg.max_pixels == 12845056 && def.max_pixels == 1003520);
    CHECK(cfg.patch_size == 14 && cfg.temporal_patch_size == 2 && cfg.merge_size == 2 && cfg.resample == 3);
    CHECK(cfg.rescale_factor == 0.00392156862745098 && cfg.image_mean[1] == 0.4578275 && cfg.image_std[2] == 0.27577711);
    char dir[] = "/tmp/canvas-vl-image-XXXXXX", path[600];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    write_text(path, "{\"size\": {\"shortest_edge\": 1000, \"longest_edge\": 2000000}, \"max_pixels\": 3000000}");
    CHECK_OK(vl_image_config_load(path, &cfg));
    CHECK(cfg.min_pixels == 1000 && cfg.max_pixels == 3000000);
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"{\"do_rescale\": false}", "do_rescale"},
        {"{\"image_std\": [0.2, 0.0, 0.3]}", "image_std"},
        {"{\"image_mean\": [0.5, 0.5]}", "image_mean"},
        {"{\"resample\": 0}", "resample"},
        {"{\"patch_size\": 0}", "patch_size"},
        {"{\"min_pixels\": 5000, \"max_pixels\": 4000}", "max_pixels"},
        {"{\"image_processor_type\": \"CLIPImageProcessor\"}", "image_processor_type"},
        {"{\"merge_size\": \"2\"}", "merge_size"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i].json);
        CHECK_FAILS(vl_image_config_load(path, &cfg), CANVAS_ERR_INPUT, bad[i].needle);
    }
    unlink(path);
    rmdir(dir);
}

/* ---- goldens --------------------------------------------------------------------------- */

static int json_int_at(json_t *array, size_t i, size_t j)
{
    return (int)json_integer_value(json_array_get(json_array_get(array, i), j));
}

/* prompt-* cases: PNG -> LANCZOS to condition_sizes -> processor -> processed_image.N, exact. */
/* A strip's resize to the condition area would pass 16384 pixels a side: refused with a
 * reason (not an allocation failure naming a size the user never gave). */
static void test_condition_image_extreme_aspect(void)
{
    canvas_image strip = {0};
    CHECK_OK(image_alloc(1, 5000, &strip));
    memset(strip.pixels, 128, (size_t)strip.width * strip.height * 3);
    canvas_image out = {0};
    CHECK_FAILS(vl_condition_image(&strip, VL_CONDITION_AREA_EDIT_PLUS, &out), CANVAS_ERR_INPUT,
                "aspect ratio too extreme: resized to the condition area it would be 32x27168");
    CHECK(out.pixels == NULL);
    image_free(&strip);
}

static void check_prompt_case(const char *name, const vl_image_config *cfg)
{
    char path[512], rel[256];
    snprintf(rel, sizeof rel, "golden/cases/%s/case.json", name);
    json_error_t err;
    json_t *c = json_load_file(test_path(path, sizeof path, rel), 0, &err);
    CHECK_MSG(c != NULL, "%s: %s", path, err.text);
    if (!c) return;
    snprintf(rel, sizeof rel, "golden/cases/%s/expected.safetensors", name);
    st_file *expected = NULL;
    CHECK_OK(st_open(test_path(path, sizeof path, rel), &expected));
    json_t *images = json_object_get(c, "images");
    for (size_t i = 0; expected && i < json_array_size(images); i++) {
        snprintf(rel, sizeof rel, "golden/cases/%s/%s", name, json_string_value(json_array_get(images, i)));
        canvas_image png = {0}, condition = {0}, processed = {0};
        CHECK_OK(image_load(test_path(path, sizeof path, rel), &png));
        CHECK_OK(vl_condition_image(&png, VL_CONDITION_AREA_EDIT_PLUS, &condition));
        json_t *sizes = json_object_get(c, "condition_sizes");
        CHECK(condition.width == json_int_at(sizes, i, 0) && condition.height == json_int_at(sizes, i, 1));
        float *pv = NULL;
        int64_t grid[3] = {0};
        CHECK_OK(vl_condition_pixel_values(&png, VL_CONDITION_AREA_EDIT_PLUS, cfg, &pv, grid, &processed));
        sizes = json_object_get(c, "processor_sizes");
        CHECK(processed.height == json_int_at(sizes, i, 0) && processed.width == json_int_at(sizes, i, 1));
        json_t *thw = json_object_get(c, "image_grid_thw");
        CHECK(grid[0] == json_int_at(thw, i, 0) && grid[1] == json_int_at(thw, i, 1) && grid[2] == json_int_at(thw, i, 2));
        char tensor[64];
        snprintf(tensor, sizeof tensor, "processed_image.%zu", i);
        const st_tensor *t = st_find(expected, tensor);
        CHECK(t && t->type == DTYPE_U8 && t->ndim == 3 && t->shape[0] == processed.height &&
              t->shape[1] == processed.width && t->shape[2] == 3);
        if (t && processed.pixels && t->nbytes == (uint64_t)processed.width * processed.height * 3) {
            const uint8_t *want = t->data;
            size_t differ = 0;
            for (uint64_t k = 0; k < t->nbytes; k++) differ += want[k] != processed.pixels[k];
            CHECK_MSG(differ == 0, "%s %s: %zu of %llu bytes differ", name, tensor, differ,
                      (unsigned long long)t->nbytes);
            fprintf(stderr, "%s %s: %dx%d -> %dx%d -> %dx%d, %zu bytes differ\n", name, tensor, png.width, png.height,
                    condition.width, condition.height, processed.width, processed.height, differ);
        }
        mem_free(pv);
        image_free(&processed);
        image_free(&condition);
        image_free(&png);
    }
    st_close(expected);
    json_decref(c);
}

static void test_prompt_goldens(void)
{
    vl_image_config cfg = real_config();
    check_prompt_case("prompt-edit-plus-one", &cfg);
    check_prompt_case("prompt-edit-plus-two", &cfg);
}

/* textenc-* cases: image.N (already at its smart_resize size) -> pixel_values within 1e-6. */
static void check_textenc_case(const char *name, int n_images)
{
    char path[512], rel[256];
    vl_image_config cfg = real_config();
    st_file *inputs = NULL, *expected = NULL;
    snprintf(rel, sizeof rel, "golden/cases/%s/inputs.safetensors", name);
    CHECK_OK(st_open(test_path(path, sizeof path, rel), &inputs));
    snprintf(rel, sizeof rel, "golden/cases/%s/expected.safetensors", name);
    CHECK_OK(st_open(test_path(path, sizeof path, rel), &expected));
    const st_tensor *want = expected ? st_find(expected, "pixel_values") : NULL;
    const st_tensor *want_thw = inputs ? st_find(inputs, "image_grid_thw") : NULL;
    CHECK(want && want->type == DTYPE_F32 && want->ndim == 2 && want_thw && want_thw->shape[0] == n_images);
    int64_t row = 0;
    double worst = 0;
    for (int i = 0; want && want_thw && i < n_images; i++) {
        char tensor[32];
        snprintf(tensor, sizeof tensor, "image.%d", i);
        const st_tensor *img = st_find(inputs, tensor);
        CHECK(img && img->type == DTYPE_U8 && img->ndim == 3 && img->shape[2] == 3);
        if (!img) continue;
        /* the PNG holds the same pixels */
        snprintf(rel, sizeof rel, "golden/cases/%s/image%d.png", name, i);
        canvas_image png = {0};
        CHECK_OK(image_load(test_path(path, sizeof path, rel), &png));
        CHECK(png.pixels && (uint64_t)png.width * png.height * 3 == img->nbytes &&
              memcmp(png.pixels, img->data, img->nbytes) == 0);
        image_free(&png);
        float *pv = NULL;
        int64_t grid[3];
        CHECK_OK(vl_image_pixel_values(img->data, (int)img->shape[1], (int)img->shape[0], &cfg, &pv, grid));
        int64_t thw[3];
        memcpy(thw, (const int64_t *)want_thw->data + 3 * i, sizeof thw);
        CHECK(grid[0] == thw[0] && grid[1] == thw[1] && grid[2] == thw[2]);
        const int64_t rows = grid[0] * grid[1] * grid[2], cols = want->shape[1];
        CHECK(cols == 3 * 2 * 14 * 14 && row + rows <= want->shape[0]);
        if (pv && row + rows <= want->shape[0]) {
            for (int64_t k = 0; k < rows * cols; k++) {
                float e;
                memcpy(&e, (const float *)want->data + row * cols + k, sizeof e);
                double d = fabs((double)pv[k] - e);
                if (d > worst) worst = d;
            }
        }
        row += rows;
        mem_free(pv);
    }
    CHECK(want && row == want->shape[0]);
    CHECK_MSG(worst <= 1e-6, "%s pixel_values: max |diff| %g", name, worst);
    fprintf(stderr, "%s pixel_values: max |diff| %g over %lld rows\n", name, worst, (long long)row);
    st_close(inputs);
    st_close(expected);
}

static void test_textenc_goldens(void)
{
    check_textenc_case("textenc-with-image", 1);
    check_textenc_case("textenc-two-images", 2);
}

/* ---- hostile sizes and allocation failures --------------------------------------------- */

static void test_hostile_sizes(void)
{
    vl_image_config cfg = real_config();
    uint8_t px[64 * 64 * 3] = {0};
    float *pv = (float *)px;
    int64_t grid[3];
    canvas_image out = {0}, tiny = {0, 5, px};
    uint64_t before = allocations_so_far();
    CHECK_FAILS(vl_image_pixel_values(px, 0, 0, &cfg, &pv, grid), CANVAS_ERR_INPUT, "0x0");
    CHECK(pv == NULL);
    CHECK_FAILS(vl_image_pixel_values(px, 100000, 100000, &cfg, &pv, grid), CANVAS_ERR_INPUT, "100000x100000");
    CHECK_FAILS(vl_image_pixel_values(px, 16384, 16384, &cfg, &pv, grid), CANVAS_ERR_INPUT, "16384x16384");
    CHECK_FAILS(vl_image_pixel_values(px, 5601, 28, &cfg, &pv, grid), CANVAS_ERR_INPUT, "aspect ratio");
    CHECK_FAILS(vl_image_pixel_values(px, 27, 64, &cfg, &pv, grid), CANVAS_ERR_INPUT, "at least 28");
    CHECK_FAILS(vl_image_patches(px, 30, 28, &cfg, &pv, grid), CANVAS_ERR_USAGE, "multiple of 28");
    CHECK_FAILS(vl_condition_image(&tiny, VL_CONDITION_AREA_EDIT_PLUS, &out), CANVAS_ERR_INPUT, "0x5");
    tiny = (canvas_image){64, 64, px};
    CHECK_FAILS(vl_condition_image(&tiny, 0, &out), CANVAS_ERR_USAGE, "area");
    CHECK_FAILS(vl_condition_pixel_values(&tiny, (int64_t)1 << 40, &cfg, &pv, grid, &out), CANVAS_ERR_USAGE, "area");
    CHECK(out.pixels == NULL && pv == NULL);
    CHECK(allocations_so_far() == before);
}

static void test_allocation_failures(void)
{
    vl_image_config cfg = real_config();
    uint8_t px[90 * 50 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 7);
    const canvas_image image = {90, 50, px};
    float *reference = NULL;
    int64_t grid[3];
    canvas_image processed;
    CHECK_OK(vl_condition_pixel_values(&image, VL_CONDITION_AREA_EDIT_PLUS, &cfg, &reference, grid, &processed));
    const size_t values = (size_t)grid[1] * grid[2] * 3 * 2 * 14 * 14;
    image_free(&processed);
    const size_t live_before = mem_total_current();
    int failures = 0;
    for (uint64_t n = 1; n < 100; n++) {
        float *pv = NULL;
        mem_fault_arm(&(mem_fault_plan){.nth = n, .persistent = 0, .only_class = -1});
        canvas_status st = vl_condition_pixel_values(&image, VL_CONDITION_AREA_EDIT_PLUS, &cfg, &pv, grid, &processed);
        uint64_t hits = mem_fault_hits();
        mem_fault_disarm();
        if (!hits) {
            CHECK_OK(st);
            CHECK(pv && memcmp(pv, reference, values * sizeof(float)) == 0);
            mem_free(pv);
            image_free(&processed);
            break;
        }
        failures++;
        CHECK_MSG(st == CANVAS_ERR_OUT_OF_MEMORY && pv == NULL && processed.pixels == NULL,
                  "allocation %llu failing gave %s", (unsigned long long)n, canvas_status_name(st));
        CHECK_MSG(mem_total_current() == live_before, "allocation %llu failing leaks %zu bytes",
                  (unsigned long long)n, mem_total_current() - live_before);
    }
    CHECK(failures >= 5);
    mem_free(reference);
}

int main(void)
{
    RUN(test_pil_resize_equals_pillow);
    RUN(test_pil_resize_by_hand);
    RUN(test_pil_resize_ramp_and_rows);
    RUN(test_pil_resize_refuses);
    RUN(test_smart_resize_table);
    RUN(test_calculate_dimensions_table);
    RUN(test_config);
    RUN(test_prompt_goldens);
    RUN(test_condition_image_extreme_aspect);
    RUN(test_textenc_goldens);
    RUN(test_hostile_sizes);
    RUN(test_allocation_failures);
    return check_summary();
}
