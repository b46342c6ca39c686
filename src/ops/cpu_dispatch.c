/* SPDX-License-Identifier: Apache-2.0 */
/* cpu_dispatch.c — the op_* entry points of the CPU backend: each call goes to the variant
 * of ops/cpu picked once, at the first call (cpu_table.h).
 *
 * The avx512 variant runs when the CPU has AVX-512 F, DQ, BW and VL (and AVX2, FMA, F16C)
 * and the OS saves the zmm registers; else the fast variant (AVX2, FMA, F16C) when the CPU
 * has those and the OS saves the ymm registers; otherwise, on other architectures, the
 * portable variant. CANVAS_CPU=avx2 or CANVAS_CPU=portable in the environment caps the
 * choice (a variant the CPU lacks is never taken). So one binary runs on any x86-64 and
 * still takes the fastest kernels it can (docs/kernels.md). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu/cpu_table.h"
#include "ops/ops.h"

#ifdef CANVAS_CPU_HAVE_FAST
#include <cpuid.h>

enum { CPU_PORTABLE, CPU_AVX2, CPU_AVX512 };

/* The best variant this CPU and OS run: AVX2, FMA and F16C with the ymm state enabled by
 * the OS (XCR0 bits 1, 2); AVX-512 F/DQ/BW/VL on top with the opmask and zmm state too
 * (XCR0 bits 5, 6, 7). */
static int cpu_best_kernels(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return CPU_PORTABLE;
    if (!(c & bit_AVX) || !(c & bit_FMA) || !(c & bit_F16C) || !(c & bit_OSXSAVE)) return CPU_PORTABLE;
    unsigned xcr0, xcr0_high;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
    if ((xcr0 & 6u) != 6u || __get_cpuid_max(0, NULL) < 7) return CPU_PORTABLE;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & bit_AVX2)) return CPU_PORTABLE;
    const unsigned avx512 = bit_AVX512F | bit_AVX512DQ | bit_AVX512BW | bit_AVX512VL;
    if ((b & avx512) == avx512 && (xcr0 & 0xE0u) == 0xE0u) return CPU_AVX512;
    return CPU_AVX2;
}
#endif

static const ops_cpu_table *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    chosen = &ops_cpu_portable;
#ifdef CANVAS_CPU_HAVE_FAST
    const char *forced = getenv("CANVAS_CPU");
    int best = cpu_best_kernels();
    if (forced && !strcmp(forced, "portable")) best = CPU_PORTABLE;
    if (forced && !strcmp(forced, "avx2") && best > CPU_AVX2) best = CPU_AVX2;
    if (best == CPU_AVX512) chosen = &ops_cpu_avx512;
    else if (best == CPU_AVX2) chosen = &ops_cpu_fast;
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
