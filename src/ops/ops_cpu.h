/* SPDX-License-Identifier: Apache-2.0 */
/* ops_cpu.h — the CPU op backend: what owners of a thread pool include to hand the ops an
 * op_backend (ops.h). Model code never includes it: it receives an `op_backend *` and
 * passes it on, so the same model code can run on another backend.
 *
 * The CPU backend is a value around a thread pool, made on the stack where the pool is
 * used (no allocation, nothing to free):
 *
 *     op_backend be = op_backend_cpu(pool);    (pool may be NULL: the calling thread alone)
 *     TRY(qwen_dit_forward(model, &be, &inputs, NULL, out));
 *
 * It must not outlive the pool. Ops run their work on the calling thread and the pool's
 * workers and return when it is done (no asynchronous stream on the CPU). */
#ifndef CANVAS_OPS_CPU_H
#define CANVAS_OPS_CPU_H

#include "ops/ops.h"
#include "ops/ops_backend_impl.h" /* struct op_backend: the CPU backend is the one without a table */
#include "ops/threadpool.h"

static inline op_backend op_backend_cpu(thread_pool *pool)
{
    op_backend be = {.pool = pool};
    return be;
}

/* The same as a pointer to a compound literal, for handing a pool straight to a call:
 * op_linear(OP_BACKEND_CPU(pool), ...). It lives until the end of the enclosing block. */
#define OP_BACKEND_CPU(a_pool) (&(op_backend){.pool = (a_pool)})

/* The pool the CPU ops run on: NULL for a NULL backend or one made from no pool. */
static inline thread_pool *op_backend_pool(const op_backend *be) { return be ? be->pool : NULL; }

#endif
