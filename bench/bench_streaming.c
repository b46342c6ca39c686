/* SPDX-License-Identifier: Apache-2.0 */
/* bench_streaming.c — does weight streaming hide behind compute?
 *
 * A fake model of G groups of S MiB streams through the double buffer of a capped device
 * over a link throttled to B bytes/s, while each group "computes" for C ms (one pass over
 * its weights, then a sleep up to C). Three runs:
 *   compute    every group resident (no transfers during the loop)
 *   transfer   streamed, no compute
 *   streamed   streamed with compute: the real case
 * ratio = streamed / max(compute, transfer); the target is <= 1.10 (DESIGN.md, issue 4).
 * Timings include creating the manager (so the first, unhidden load is counted).
 *
 *   bench_streaming [--groups G] [--group-size 8M] [--bandwidth 400M/s] [--compute-ms C] [--steps N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/size_parse.h"
#include "base/status.h"
#include "canvas.h"
#include "mem/mem_device.h"
#include "mem/mem_residency.h"
#include "mem/mem_transfer.h"

typedef struct bench_config {
    int groups, steps;
    uint64_t group_bytes;
    double bandwidth, compute_seconds;
} bench_config;

static volatile uint64_t sink;

/* Read the group's weights once, then wait out the rest of the compute time. */
static void fake_compute(void *const *w, size_t bytes, double seconds)
{
    double start = clock_seconds();
    const uint64_t *words = w[0];
    uint64_t sum = 0;
    for (size_t i = 0; i < bytes / 8; i += 8) sum += words[i];
    sink += sum;
    clock_sleep(seconds - (clock_seconds() - start));
}

static canvas_status run(const bench_config *cfg, residency_group *groups, int n_resident, int compute,
                         double *seconds, residency_stats *stats)
{
    size_t cap = residency_plan_device_bytes(groups, cfg->groups, &(residency_plan){n_resident}) +
                 (size_t)(cfg->groups + 2) * RESIDENCY_TENSOR_ALIGNMENT;
    mem_device *gpu;
    TRY(mem_device_create_capped("gpu", cap, &gpu));
    mem_device_set_link_bandwidth(gpu, cfg->bandwidth);
    residency_manager *mgr = NULL;
    double start = clock_seconds();
    canvas_status status = residency_create(gpu, groups, cfg->groups, &(residency_plan){n_resident}, &mgr);
    if (n_resident == cfg->groups) start = clock_seconds(); /* the resident run times compute only */
    for (int step = 0; step < cfg->steps && status == CANVAS_OK; step++)
        for (int g = 0; g < cfg->groups && status == CANVAS_OK; g++) {
            void *const *w;
            status = residency_acquire(mgr, g, &w);
            if (status != CANVAS_OK) break;
            if (compute) fake_compute(w, cfg->group_bytes, cfg->compute_seconds);
            residency_release(mgr, g);
        }
    *seconds = clock_seconds() - start;
    if (mgr) residency_get_stats(mgr, stats);
    residency_destroy(mgr);
    mem_device_destroy(gpu);
    return status;
}

static int parse_args(int argc, char **argv, bench_config *cfg)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        uint64_t bytes;
        if (!strcmp(argv[i], "--groups")) cfg->groups = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) cfg->steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--compute-ms")) cfg->compute_seconds = atof(argv[i + 1]) / 1000;
        else if (!strcmp(argv[i], "--group-size") && size_parse(argv[i + 1], "--group-size", &bytes) == CANVAS_OK)
            cfg->group_bytes = bytes;
        else if (!strcmp(argv[i], "--bandwidth") && size_parse_rate(argv[i + 1], "--bandwidth", &cfg->bandwidth) == CANVAS_OK) {
        } else {
            fprintf(stderr, "bench_streaming: bad option %s %s\n", argv[i], argv[i + 1]);
            return 0;
        }
    }
    return cfg->groups > 0 && cfg->steps > 0 && cfg->group_bytes >= 64 && cfg->bandwidth > 0;
}

int main(int argc, char **argv)
{
    bench_config cfg = {8, 3, 8u << 20, 400.0 * (1 << 20), 0.020};
    if (!parse_args(argc, argv, &cfg)) {
        fprintf(stderr, "usage: bench_streaming [--groups G] [--group-size 8M] [--bandwidth 400M/s] [--compute-ms 20] [--steps 3]\n");
        return 2;
    }
    residency_tensor *tensors;
    residency_group *groups;
    if (mem_calloc((void **)&tensors, (size_t)cfg.groups, sizeof *tensors, MEM_SCRATCH) != CANVAS_OK ||
        mem_calloc((void **)&groups, (size_t)cfg.groups, sizeof *groups, MEM_SCRATCH) != CANVAS_OK) {
        fprintf(stderr, "bench_streaming: %s\n", canvas_last_error());
        return 3;
    }
    for (int g = 0; g < cfg.groups; g++) {
        void *home;
        if (mem_alloc(&home, cfg.group_bytes, MEM_WEIGHTS) != CANVAS_OK) {
            fprintf(stderr, "bench_streaming: %s\n", canvas_last_error());
            return 3;
        }
        memset(home, g + 1, cfg.group_bytes);
        tensors[g] = (residency_tensor){home, cfg.group_bytes};
        groups[g] = (residency_group){"group", &tensors[g], 1};
    }
    double t_compute, t_transfer, t_streamed;
    residency_stats st_compute, st_transfer, st_streamed;
    if (run(&cfg, groups, cfg.groups, 1, &t_compute, &st_compute) != CANVAS_OK ||
        run(&cfg, groups, 0, 0, &t_transfer, &st_transfer) != CANVAS_OK ||
        run(&cfg, groups, 0, 1, &t_streamed, &st_streamed) != CANVAS_OK) {
        fprintf(stderr, "bench_streaming: %s\n", canvas_last_error());
        return 1;
    }
    double bound = t_compute > t_transfer ? t_compute : t_transfer;
    double ratio = t_streamed / bound;
    char size_text[32];
    printf("streaming %d groups of %s, %d steps, link %.0f MiB/s, compute %.1f ms per group\n", cfg.groups,
           size_format(cfg.group_bytes, size_text, sizeof size_text), cfg.steps, cfg.bandwidth / (1 << 20),
           cfg.compute_seconds * 1000);
    printf("compute   %.3f s (all resident)\n", t_compute);
    printf("transfer  %.3f s (streamed, no compute; %llu loads)\n", t_transfer, (unsigned long long)st_transfer.streamed_loads);
    printf("streamed  %.3f s (waited %.3f s in %llu of %llu acquires)\n", t_streamed, st_streamed.wait_seconds,
           (unsigned long long)st_streamed.waits, (unsigned long long)st_streamed.acquires);
    printf("ratio     %.3f (streamed / max(compute, transfer); target <= 1.10) %s\n", ratio, ratio <= 1.10 ? "ok" : "OVER");
    for (int g = 0; g < cfg.groups; g++) mem_free((void *)tensors[g].home);
    mem_free(tensors);
    mem_free(groups);
    return 0;
}
