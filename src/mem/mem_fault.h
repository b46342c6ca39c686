/* SPDX-License-Identifier: Apache-2.0 */
/* mem_fault.h — inside mem/: the allocator asks the injector before each allocation. */
#ifndef CANVAS_MEM_FAULT_H
#define CANVAS_MEM_FAULT_H

#include "mem/mem.h"

/* 1 when this allocation must fail (counts it when a plan is armed). Cost when disarmed:
 * one relaxed atomic load. */
int mem_fault_should_fail(mem_class cls);

#endif
