/* SPDX-License-Identifier: Apache-2.0 */
/* profiler_json.h — the profiler's records (mem/mem_profiler.h) as JSON files.
 *
 * A report (keys in docs/memory.md) and a Chrome trace event file that Perfetto and
 * chrome://tracing open: phases as complete ("X") events, memory as counter ("C") tracks.
 * Both are written to PATH.tmp and renamed; the open phase, if any, is left out. Writing
 * is not a fault-injection point (a report is written after a failed run too). */
#ifndef CANVAS_IO_PROFILER_JSON_H
#define CANVAS_IO_PROFILER_JSON_H

#include "canvas.h"
#include "mem/mem_profiler.h"

canvas_status profiler_write_report(const profiler *p, const char *path);
canvas_status profiler_write_trace(const profiler *p, const char *path);

#endif
