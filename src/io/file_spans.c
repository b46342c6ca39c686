/* SPDX-License-Identifier: Apache-2.0 */
/* file_spans.c — disjoint byte spans (file_spans.h). */
#include "io/file_spans.h"

#include <stdlib.h>

#include "base/status.h"
#include "mem/mem.h"

static int by_offset(const void *a, const void *b)
{
    const file_span *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->bytes < y->bytes ? -1 : x->bytes > y->bytes;
}

static canvas_status sorted_disjoint(const char *path, file_span *spans, int n)
{
    qsort(spans, (size_t)n, sizeof *spans, by_offset);
    const file_span *previous = NULL; /* the non-empty span reaching furthest so far */
    for (int i = 0; i < n; i++) {
        const file_span *t = &spans[i];
        if (t->bytes == 0) continue;
        if (previous && t->offset < previous->offset + previous->bytes)
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': bytes [%llu, %llu) overlap tensor '%s' at [%llu, %llu)",
                               path, t->name, (unsigned long long)t->offset, (unsigned long long)(t->offset + t->bytes),
                               previous->name, (unsigned long long)previous->offset,
                               (unsigned long long)(previous->offset + previous->bytes));
        if (!previous || t->offset + t->bytes > previous->offset + previous->bytes) previous = t;
    }
    return CANVAS_OK;
}

canvas_status file_spans_disjoint(const char *path, const void *table, int n, file_span_of span_of)
{
    if (n < 2) return CANVAS_OK;
    file_span *spans;
    TRY(mem_alloc((void **)&spans, (size_t)n * sizeof *spans, MEM_SCRATCH));
    for (int i = 0; i < n; i++) spans[i] = span_of(table, i);
    canvas_status status = sorted_disjoint(path, spans, n);
    mem_free(spans);
    return status;
}
