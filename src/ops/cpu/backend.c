/* SPDX-License-Identifier: Apache-2.0 */
/* backend.c — the CPU op backend's queries (ops.h; the backend itself: ops/ops_cpu.h). */
#include "ops/cpu/cpu_variant.h" /* first: which variant, and its function names */

#include "ops/ops_cpu.h"

int op_backend_workers(const op_backend *be) { return thread_pool_size(op_backend_pool(be)); }
