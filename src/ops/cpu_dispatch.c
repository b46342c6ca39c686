/* SPDX-License-Identifier: Apache-2.0 */
/* cpu_dispatch.c — the op_* entry points of the CPU backend: each call goes to the variant
 * of ops/cpu picked once, at the first call (cpu_table.h).
 *
 * The fast variant (AVX2, FMA, F16C) runs when the CPU has all three and the OS saves the
 * ymm registers; otherwise, on other architectures, or with CANVAS_CPU=portable in the
 * environment, the portable variant runs. So one binary runs on any x86-64 and still
 * takes the fast kernels where it can (docs/kernels.md). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu/cpu_table.h"
#include "ops/ops.h"

#ifdef CANVAS_CPU_HAVE_FAST
#include <cpuid.h>

/* AVX2, FMA and F16C in the CPU, and the ymm state enabled by the OS (XCR0 bits 1, 2). */
static int cpu_has_fast_kernels(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_AVX) || !(c & bit_FMA) || !(c & bit_F16C) || !(c & bit_OSXSAVE)) return 0;
    unsigned xcr0, xcr0_high;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
    if ((xcr0 & 6u) != 6u || __get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & bit_AVX2) != 0;
}
#endif

static const ops_cpu_table *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    chosen = &ops_cpu_portable;
#ifdef CANVAS_CPU_HAVE_FAST
    const char *forced = getenv("CANVAS_CPU");
    if (!(forced && !strcmp(forced, "portable")) && cpu_has_fast_kernels()) chosen = &ops_cpu_fast;
#endif
}

static const ops_cpu_table *kernels(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}

const char *ops_cpu_kernels(void) { return kernels()->name; }

#define FORWARD(ret, name, params, args) \
    ret name params { return kernels()->f_##name args; }
#define FORWARD_VOID(name, params, args) \
    void name params { kernels()->f_##name args; }
OPS_CPU_FUNCTIONS(FORWARD, FORWARD_VOID)
