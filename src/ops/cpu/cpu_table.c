/* SPDX-License-Identifier: Apache-2.0 */
/* cpu_table.c — this variant's table (cpu_table.h): each plain name below is this
 * variant's function (cpu_variant.h renames it). */
#include "ops/cpu/cpu_variant.h" /* first: which variant, and its function names */

#include "ops/cpu/cpu_table.h"

#define ENTRY(ret, name, params, args) name,
#define VOID_ENTRY(name, params, args) name,

#ifdef CANVAS_CPU_PORTABLE
const ops_cpu_table ops_cpu_portable = {"portable", OPS_CPU_FUNCTIONS(ENTRY, VOID_ENTRY)};
#elif defined(CANVAS_CPU_AVX512)
const ops_cpu_table ops_cpu_avx512 = {"avx512", OPS_CPU_FUNCTIONS(ENTRY, VOID_ENTRY)};
#else
const ops_cpu_table ops_cpu_fast = {"avx2", OPS_CPU_FUNCTIONS(ENTRY, VOID_ENTRY)};
#endif
