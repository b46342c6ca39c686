/* SPDX-License-Identifier: Apache-2.0 */
/* plan_probe.c — what the machine has: memory, CPU, the link to the device and the GEMM
 * throughput per weight format (short probes, cached in $XDG_CACHE_HOME/canvas/probe.json, ~/.cache when unset), and
 * nominal figures for named GPUs (to plan a CUDA machine from this one). */
#define _XOPEN_SOURCE 700 /* lstat */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/path.h"
#include "base/size_parse.h"
#include "base/status.h"
#include "base/sysinfo.h"
#include "io/json_file.h"
#include "io/output_file.h"
#include "mem/mem.h"
#include "mem/mem_device.h"
#include "mem/mem_transfer.h"
#include "ops/ops_cpu.h"
#include "plan/plan.h"
#include "tensor/dtype.h"

static void cpu_features(char *buf, size_t size)
{
    buf[0] = '\0';
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    static const char *const names[] = {"sse4.2", "avx", "avx2", "fma", "avx512f"};
    const int on[] = {__builtin_cpu_supports("sse4.2"), __builtin_cpu_supports("avx"), __builtin_cpu_supports("avx2"),
                      __builtin_cpu_supports("fma"), __builtin_cpu_supports("avx512f")};
    size_t used = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (on[i] && used + strlen(names[i]) + 2 < size)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? " " : "", names[i]);
#else
    snprintf(buf, size, "(not probed on this architecture)");
#endif
}

/* ---- the probes -------------------------------------------------------------------- */

/* Host -> device copies of 16 MiB through mem_copy into a capped device (its link
 * unthrottled): the memcpy speed that stands for the link on this build. */
static canvas_status probe_link(double *out)
{
    const size_t bytes = (size_t)16 << 20;
    mem_device *device = NULL;
    void *src = NULL, *dst = NULL;
    canvas_status st = mem_device_create_capped("probe", bytes + 4096, &device);
    if (st == CANVAS_OK) st = mem_device_alloc(device, MEM_STAGING, bytes, 0, &dst);
    if (st == CANVAS_OK) st = mem_alloc(&src, bytes, MEM_STAGING);
    double best = 0;
    if (st == CANVAS_OK) {
        memset(src, 1, bytes);
        for (int r = 0; r < 4 && st == CANVAS_OK; r++) {
            double t0 = clock_seconds();
            st = mem_copy(device, dst, mem_device_cpu(), src, bytes);
            double t = clock_seconds() - t0;
            if (t > 0 && bytes / t > best) best = bytes / t;
        }
    }
    mem_free(src);
    if (device) {
        mem_device_free(device, dst);
        mem_device_destroy(device);
    }
    *out = best > 0 ? best : 1e9;
    return st;
}

/* op_linear of 192 rows through a 1024 x 1024 matrix in `format` (QUANT_NONE: bf16). */
static canvas_status probe_gemm(thread_pool *pool, quant_format format, double *out)
{
    enum { M = 192, N = 1024, K = 1024 };
    float *x = NULL, *y = NULL;
    uint16_t *w = NULL;
    void *blob = NULL;
    quant_params params;
    memset(&params, 0, sizeof params);
    canvas_status st = mem_alloc((void **)&x, (size_t)M * K * sizeof(float), MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_alloc((void **)&y, (size_t)M * N * sizeof(float), MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_alloc((void **)&w, (size_t)N * K * sizeof(uint16_t), MEM_SCRATCH);
    weight_view view = {DTYPE_BF16, w, N, K, NULL};
    if (st == CANVAS_OK) {
        uint32_t seed = 12345;
        for (size_t i = 0; i < (size_t)M * K; i++) {
            seed = seed * 1664525u + 1013904223u;
            x[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
        }
        for (size_t i = 0; i < (size_t)N * K; i++) {
            seed = seed * 1664525u + 1013904223u;
            w[i] = (uint16_t)(0x3c00u + (seed >> 24)); /* bf16 values around 0.008 */
        }
        if (format != QUANT_NONE) {
            st = quant_layout(format, 0, N, K, &params);
            if (st == CANVAS_OK) st = mem_alloc(&blob, params.bytes, MEM_SCRATCH);
            if (st == CANVAS_OK) st = quant_quantize(&params, DTYPE_BF16, w, blob, "probe");
            view = (weight_view){DTYPE_U8, blob, N, K, &params};
        }
    }
    /* One untimed call first: the first format probed used to pay for the threads waking
     * up and the buffers' first touch (bf16 was cached at 60 % of its speed). */
    op_backend be = op_backend_cpu(pool);
    if (st == CANVAS_OK) st = op_linear(&be, x, M, &view, NULL, y);
    double best = 0;
    for (int r = 0; r < 5 && st == CANVAS_OK; r++) {
        double t0 = clock_seconds();
        st = op_linear(&be, x, M, &view, NULL, y);
        double t = clock_seconds() - t0;
        if (t > 0 && 2.0 * M * N * K / t > best) best = 2.0 * M * N * K / t;
    }
    mem_free(x);
    mem_free(y);
    mem_free(w);
    mem_free(blob);
    *out = best > 0 ? best : 1e9;
    return st;
}

/* ---- the cache ------------------------------------------------------------------------ */

/* Bumped whenever the kernels or the probe change what the probe would measure: an entry
 * of another version is measured again (and rewritten), never trusted. */
#define PROBE_VERSION 2
/* The formats a probe measures: up to Q4_K. The other GGUF types are given the bf16 figure
 * rather than eight more timed GEMMs: only a checkpoint stored in them uses them, and the
 * planner times such a model at its loaded format's (as stored) figure. */
#define PROBED_FORMATS QUANT_GGUF_Q4_0

int plan_cache_path(const char *variable, const char *file, char *buf, size_t size, int make_dirs)
{
    const char *override = getenv(variable);
    if (override && !strcmp(override, "off")) return 0;
    if (override && override[0]) return snprintf(buf, size, "%s", override) < (int)size;
    /* the XDG base directory rule: $XDG_CACHE_HOME when set (and absolute), else ~/.cache */
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char cache[PATH_BUFFER_SIZE], name[64];
    if (xdg && xdg[0] == '/') snprintf(cache, sizeof cache, "%s", xdg);
    else if (!home || !home[0] || path_join(cache, sizeof cache, home, ".cache") != CANVAS_OK) {
        status_clear();
        return 0;
    }
    snprintf(name, sizeof name, "canvas/%s", file);
    if (path_join(buf, size, cache, name) != CANVAS_OK) {
        status_clear(); /* a folder name too long to hold the cache: no cache */
        return 0;
    }
    if (make_dirs) { /* the folders of buf, shorter than it, so they fit */
        char dir[PATH_BUFFER_SIZE];
        mkdir(cache, 0755);
        if (path_join(dir, sizeof dir, cache, "canvas") == CANVAS_OK) mkdir(dir, 0755);
    }
    return 1;
}

/* Far more than either cache writes (256 timing entries are some 150 KB): a bigger file is
 * not ours, and parsing it at every plan would cost seconds and its size several times over. */
#define CACHE_MAX_BYTES (4ll << 20)

json_t *plan_cache_load(const char *path)
{
    json_t *root = NULL;
    struct stat sb;
    /* json_file_load opens it without blocking (a FIFO there is refused, not waited on) */
    if (stat(path, &sb) == 0 && (long long)sb.st_size <= CACHE_MAX_BYTES && json_file_load(path, &root) != CANVAS_OK)
        status_clear();
    if (!json_is_object(root)) {
        json_decref(root);
        root = json_object();
    }
    return root;
}

void plan_cache_save(const char *path, const json_t *root)
{
    /* best effort, through a temporary file of its own: a cache that cannot be written is
     * measured again next time, and a failed write leaves neither a half file nor the temp */
    char tmp[PATH_BUFFER_SIZE];
    int fd;
    struct stat sb;
    /* the rename would replace whatever is at path: only a regular file of ours, never a link
     * (to the user's file or another's), a FIFO or a socket someone put there */
    if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) return;
    if (output_temp_create(path, tmp, sizeof tmp, &fd) == CANVAS_OK) {
        canvas_status st = json_dumpfd(root, fd, JSON_INDENT(2)) == 0 ? CANVAS_OK : CANVAS_ERR_IO;
        if (close(fd) != 0) st = CANVAS_ERR_IO;
        (void)output_temp_finish(tmp, path, st);
    }
    status_clear();
}

static int cache_read(int threads, plan_hardware *hw)
{
    char path[4096];
    if (!plan_cache_path("CANVAS_PROBE_CACHE", "probe.json", path, sizeof path, 0)) return 0;
    json_t *root = plan_cache_load(path);
    int ok = 0;
    char key[32];
    snprintf(key, sizeof key, "threads_%d", threads);
    json_t *entry = json_object_get(root, key);
    const char *cpu = json_string_value(json_object_get(entry, "cpu"));
    if (json_is_object(entry) && cpu && !strcmp(cpu, hw->cpu_features) &&
        json_integer_value(json_object_get(entry, "version")) == PROBE_VERSION) {
        ok = 1;
        double link = json_number_value(json_object_get(entry, "link_bytes_per_second"));
        if (link > 0) hw->link_bytes_per_second = link;
        else ok = 0;
        for (int f = 0; f < PROBED_FORMATS; f++) {
            double v = json_number_value(json_object_get(entry, quant_format_name((quant_format)f)));
            if (v > 0) hw->flops_per_second[f] = v;
            else ok = 0;
        }
    }
    json_decref(root);
    return ok;
}

static void cache_write(int threads, const plan_hardware *hw)
{
    char path[4096];
    if (!plan_cache_path("CANVAS_PROBE_CACHE", "probe.json", path, sizeof path, 1)) return;
    json_t *root = plan_cache_load(path), *entry = json_object();
    if (root && entry) {
        json_object_set_new(entry, "version", json_integer(PROBE_VERSION));
        json_object_set_new(entry, "cpu", json_string(hw->cpu_features));
        json_object_set_new(entry, "link_bytes_per_second", json_real(hw->link_bytes_per_second));
        for (int f = 0; f < PROBED_FORMATS; f++)
            json_object_set_new(entry, quant_format_name((quant_format)f), json_real(hw->flops_per_second[f]));
        char key[32];
        snprintf(key, sizeof key, "threads_%d", threads);
        json_object_set(root, key, entry);
        plan_cache_save(path, root);
    }
    json_decref(entry);
    json_decref(root);
}

/* The CUDA device, if any (absent is an answer, not a failure: cuda 0 and the reason). A real
 * probe (not `nominal`) also measures its link, pinned and pageable; the pinned rate is the
 * planner's link, since streamed weights cross it through the pinned staging ring. */
static void probe_cuda(int nominal, plan_hardware *out)
{
    mem_cuda_info info;
    mem_cuda_query(&info);
    out->cuda = info.devices;
    snprintf(out->cuda_reason, sizeof out->cuda_reason, "%s", info.reason);
    memcpy(out->cuda_name, info.name, sizeof out->cuda_name);
    out->cuda_total_bytes = info.total_bytes;
    out->cuda_free_bytes = info.free_bytes;
    out->cuda_compute_capability = info.compute_capability;
    out->cuda_fp8 = info.compute_capability >= 89;
    if (!info.devices || nominal) return;
    if (mem_cuda_measure_link(&out->cuda_link_pinned, &out->cuda_link_pageable) != CANVAS_OK) {
        status_clear(); /* the CPU's figures stay */
        return;
    }
    out->link_bytes_per_second = out->cuda_link_pinned;
    snprintf(out->link_source, sizeof out->link_source, "measured (CUDA, pinned)");
}

canvas_status plan_probe(int threads, double link_bytes_per_second, int use_cache, plan_hardware *out)
{
    memset(out, 0, sizeof *out);
    if (sysinfo_mem_total(&out->ram_total_bytes) != CANVAS_OK) status_clear();
    if (sysinfo_mem_available(&out->ram_available_bytes) != CANVAS_OK) status_clear();
    out->cpus = sysinfo_online_cpus();
    cpu_features(out->cpu_features, sizeof out->cpu_features);
    out->disk_bytes_per_second = 2e9;
    thread_pool *pool = NULL;
    TRY(thread_pool_create(threads, &pool));
    const int workers = thread_pool_size(pool);
    canvas_status st = CANVAS_OK;
    if (use_cache && cache_read(workers, out)) {
        snprintf(out->link_source, sizeof out->link_source, "measured (cached)");
        snprintf(out->flops_source, sizeof out->flops_source, "measured (cached), %d threads", workers);
    } else if (use_cache == 2) {
        out->link_bytes_per_second = 1e10;
        for (int f = 0; f < QUANT_FORMAT_COUNT; f++) out->flops_per_second[f] = 1e11;
        snprintf(out->link_source, sizeof out->link_source, "nominal (no probe cached)");
        snprintf(out->flops_source, sizeof out->flops_source, "nominal (no probe cached)");
    } else {
        st = probe_link(&out->link_bytes_per_second);
        for (int f = 0; f < PROBED_FORMATS && st == CANVAS_OK; f++)
            st = probe_gemm(pool, (quant_format)f, &out->flops_per_second[f]);
        snprintf(out->link_source, sizeof out->link_source, "measured (mem_copy)");
        snprintf(out->flops_source, sizeof out->flops_source, "measured (op_linear), %d threads", workers);
        if (st == CANVAS_OK && use_cache == 1) cache_write(workers, out);
    }
    thread_pool_destroy(pool);
    for (int f = PROBED_FORMATS; f < QUANT_FORMAT_COUNT; f++) out->flops_per_second[f] = out->flops_per_second[QUANT_NONE];
    if (st == CANVAS_OK) probe_cuda(use_cache == 2, out);
    if (link_bytes_per_second > 0) {
        out->link_bytes_per_second = link_bytes_per_second;
        snprintf(out->link_source, sizeof out->link_source, "--link-bandwidth");
    }
    return st;
}

/* ---- named GPUs ------------------------------------------------------------------------ */

/* Nominal figures: memory, half of the dense bf16 tensor peak (what a large GEMM reaches
 * in practice), and a PCIe link's measured host-to-device rate. Estimates, not probes. */
static const struct gpu_entry {
    const char *name;
    double gib;
    double flops;
    double link;
} gpus[] = {
    {"rtx3060", 12, 13e12, 12e9},   {"rtx3070", 8, 20e12, 24e9},     {"rtx3080", 10, 30e12, 24e9},
    {"rtx3090", 24, 36e12, 24e9},   {"rtx4060", 8, 15e12, 12e9},     {"rtx4060ti", 16, 22e12, 12e9},
    {"rtx4070", 12, 29e12, 25e9},   {"rtx4080", 16, 49e12, 25e9},    {"rtx4090", 24, 82e12, 25e9},
    {"rtx5080", 16, 56e12, 50e9},   {"rtx5090", 32, 105e12, 50e9},   {"a100-40g", 40, 156e12, 25e9},
    {"a100", 80, 156e12, 25e9},     {"a100-80g", 80, 156e12, 25e9},  {"h100", 80, 400e12, 50e9},
    {"l40s", 48, 181e12, 25e9},
};

/* A card's name as people write it: case, spaces, '-' and '_' and a "geforce"/"rtx" prefix
 * do not matter ("RTX 4060 Ti" = "rtx4060ti" = "4060ti"). */
static void gpu_name_key(const char *name, char *key, size_t size)
{
    size_t n = 0;
    for (; *name && n + 1 < size; name++)
        if (*name != ' ' && *name != '-' && *name != '_') key[n++] = (char)tolower((unsigned char)*name);
    key[n] = '\0';
    const char *prefixes[] = {"geforce", "rtx"};
    for (int i = 0; i < 2; i++) {
        size_t len = strlen(prefixes[i]);
        if (!strncmp(key, prefixes[i], len)) memmove(key, key + len, strlen(key + len) + 1);
    }
}

canvas_status plan_gpu_lookup(const char *name_or_size, uint64_t *out_bytes, double *out_flops,
                              double *out_link_bytes_per_second, char *label, size_t label_size)
{
    char key[64], entry[64];
    gpu_name_key(name_or_size, key, sizeof key);
    for (size_t i = 0; i < sizeof gpus / sizeof gpus[0]; i++)
        if (gpu_name_key(gpus[i].name, entry, sizeof entry), !strcmp(key, entry)) {
            *out_bytes = (uint64_t)(gpus[i].gib * (double)(1ull << 30));
            *out_flops = gpus[i].flops;
            *out_link_bytes_per_second = gpus[i].link;
            snprintf(label, label_size, "%s (%.0f GiB, nominal %.0f TFLOP/s, %.0f GB/s link)", gpus[i].name,
                     gpus[i].gib, gpus[i].flops / 1e12, gpus[i].link / 1e9);
            return CANVAS_OK;
        }
    uint64_t bytes;
    if (size_parse(name_or_size, "--gpu", &bytes) != CANVAS_OK) {
        status_clear();
        char names[320];
        size_t used = 0;
        for (size_t i = 0; i < sizeof gpus / sizeof gpus[0] && used < sizeof names; i++)
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", gpus[i].name);
        return status_fail(CANVAS_ERR_USAGE, "--gpu '%s': give a size (24G) or a name (%s)", name_or_size, names);
    }
    *out_bytes = bytes;
    *out_flops = 50e12;
    *out_link_bytes_per_second = 25e9;
    char size_text[32];
    snprintf(label, label_size, "a GPU of %s (a size, not a named card: nominal 50 TFLOP/s, 25 GB/s link)",
             size_format(bytes, size_text, sizeof size_text));
    return CANVAS_OK;
}
