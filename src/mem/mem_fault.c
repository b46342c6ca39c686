/* SPDX-License-Identifier: Apache-2.0 */
/* mem_fault.c — the fault injector: fail the n-th allocation, once or from then on, so
 * tests can prove that every allocation site unwinds cleanly (DESIGN.md, point 5). */
#include "mem/mem_fault.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem_internal.h"

static atomic_int armed;
static mem_fault_plan plan;
static atomic_uint_fast64_t counted;
static atomic_uint_fast64_t hits;
static _Thread_local int exempt_depth;

void mem_fault_exempt_begin(void) { exempt_depth++; }
void mem_fault_exempt_end(void) { exempt_depth--; }

void mem_fault_arm(const mem_fault_plan *p)
{
    plan = *p;
    atomic_store(&counted, 0);
    atomic_store(&hits, 0);
    atomic_store(&armed, p->nth > 0);
}

void mem_fault_disarm(void) { atomic_store(&armed, 0); }

uint64_t mem_fault_hits(void) { return atomic_load(&hits); }

int mem_fault_should_fail(mem_class cls)
{
    if (!atomic_load_explicit(&armed, memory_order_relaxed)) return 0;
    if (exempt_depth > 0) return 0;
    if (plan.only_class >= 0 && (int)cls != plan.only_class) return 0;
    uint64_t index = atomic_fetch_add(&counted, 1) + 1;
    int fail = plan.persistent ? index >= plan.nth : index == plan.nth;
    if (fail) atomic_fetch_add(&hits, 1);
    return fail;
}

canvas_status mem_fault_parse(const char *text, mem_fault_plan *out)
{
    mem_fault_plan p = {0, 0, -1};
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (end == text || errno || n == 0 || text[0] == '-')
        return status_fail(CANVAS_ERR_USAGE, "CANVAS_FAIL_ALLOC='%s': expected N, N+, N:CLASS or N+:CLASS with N >= 1",
                           text);
    p.nth = n;
    if (*end == '+') {
        p.persistent = 1;
        end++;
    }
    if (*end == ':') {
        end++;
        for (int c = 0; c < MEM_CLASS_COUNT; c++)
            if (!strcmp(end, mem_class_name((mem_class)c))) p.only_class = c;
        if (p.only_class < 0)
            return status_fail(CANVAS_ERR_USAGE,
                               "CANVAS_FAIL_ALLOC='%s': unknown class '%s' (weights, activations, staging, scratch)",
                               text, end);
    } else if (*end != '\0') {
        return status_fail(CANVAS_ERR_USAGE, "CANVAS_FAIL_ALLOC='%s': unexpected '%s'", text, end);
    }
    *out = p;
    return CANVAS_OK;
}

canvas_status mem_fault_arm_from_env(void)
{
    const char *text = getenv("CANVAS_FAIL_ALLOC");
    if (!text || !*text) return CANVAS_OK;
    mem_fault_plan p;
    TRY(mem_fault_parse(text, &p));
    mem_fault_arm(&p);
    return CANVAS_OK;
}
