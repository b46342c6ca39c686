/* SPDX-License-Identifier: Apache-2.0 */
/* bench_util.h — what every bench program needs: a clock, medians, reproducible random
 * numbers and an allocation that exits on failure (benches are programs, not the
 * library: they may exit and print). */
#ifndef CANVAS_BENCH_UTIL_H
#define CANVAS_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (sorts them in place). */
static inline double median(double *values, int n)
{
    qsort(values, (size_t)n, sizeof(double), compare_doubles);
    return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/* xorshift64 in [-1, 1): the same numbers on every run of a bench. */
static uint64_t bench_rng = 0x2545F4914F6CDD1Dull;
static inline float rand_float(void)
{
    bench_rng ^= bench_rng << 13;
    bench_rng ^= bench_rng >> 7;
    bench_rng ^= bench_rng << 17;
    return (float)((double)(bench_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static inline void *xmalloc(size_t size)
{
    void *p = malloc(size);
    if (!p) {
        fprintf(stderr, "bench: out of memory (%zu bytes)\n", size);
        exit(1);
    }
    return p;
}

/* The 1-, 5- and 15-minute load averages; zeros where /proc/loadavg cannot be read. The
 * machines are shared: every bench prints them next to its figures. */
static inline void load_average(double out[3])
{
    out[0] = out[1] = out[2] = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    if (fscanf(f, "%lf %lf %lf", &out[0], &out[1], &out[2]) != 3) out[0] = out[1] = out[2] = 0;
    fclose(f);
}

static inline void print_load(const char *when)
{
    double load[3];
    load_average(load);
    printf("load average %s: %.2f %.2f %.2f\n", when, load[0], load[1], load[2]);
    fflush(stdout);
}

#endif
