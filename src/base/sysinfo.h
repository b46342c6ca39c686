/* SPDX-License-Identifier: Apache-2.0 */
/* sysinfo.h — what the machine has: memory from /proc, online CPUs.
 *
 * Read fresh on every call (they are cheap: one small /proc read), so the profiler can
 * sample them at phase boundaries and the planner can re-probe after an out-of-memory. */
#ifndef CANVAS_BASE_SYSINFO_H
#define CANVAS_BASE_SYSINFO_H

#include <stdint.h>

#include "canvas.h"

/* MemAvailable and MemTotal from /proc/meminfo, in bytes. CANVAS_ERR_IO when unreadable. */
canvas_status sysinfo_mem_available(uint64_t *out_bytes);
canvas_status sysinfo_mem_total(uint64_t *out_bytes);

/* Tests: read `path` (a file in /proc/meminfo's format) instead of /proc/meminfo from now on;
 * NULL goes back to /proc/meminfo. It plays memory that another process takes or gives back
 * while a run goes on (the test rewrites the file). Not for concurrent use with readers. */
void sysinfo_set_meminfo_path(const char *path);

/* Resident set size of this process (from /proc/self/statm), in bytes. */
canvas_status sysinfo_rss(uint64_t *out_bytes);

/* Online CPUs (at least 1). */
int sysinfo_online_cpus(void);

#endif
