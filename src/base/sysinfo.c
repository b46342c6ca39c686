/* SPDX-License-Identifier: Apache-2.0 */
/* sysinfo.c — /proc/meminfo, /proc/self/statm and sysconf. */
#define _POSIX_C_SOURCE 200809L
#include "base/sysinfo.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/status.h"

static char meminfo_path[4096] = "/proc/meminfo";

void sysinfo_set_meminfo_path(const char *path)
{
    snprintf(meminfo_path, sizeof meminfo_path, "%s", path ? path : "/proc/meminfo");
}

/* A "Key:   123 kB" line of /proc/meminfo, in bytes. */
static canvas_status meminfo_field(const char *key, uint64_t *out_bytes)
{
    *out_bytes = 0;
    FILE *f = fopen(meminfo_path, "r");
    if (!f) return status_fail(CANVAS_ERR_IO, "%s: cannot open (not Linux?)", meminfo_path);
    char line[256];
    size_t key_length = strlen(key);
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kib;
        if (!strncmp(line, key, key_length) && line[key_length] == ':' &&
            sscanf(line + key_length + 1, "%llu", &kib) == 1) {
            *out_bytes = (uint64_t)kib * 1024u;
            found = 1;
            break;
        }
    }
    fclose(f);
    if (!found) return status_fail(CANVAS_ERR_IO, "%s: no '%s' line", meminfo_path, key);
    return CANVAS_OK;
}

canvas_status sysinfo_mem_available(uint64_t *out_bytes) { return meminfo_field("MemAvailable", out_bytes); }

canvas_status sysinfo_mem_total(uint64_t *out_bytes) { return meminfo_field("MemTotal", out_bytes); }

canvas_status sysinfo_rss(uint64_t *out_bytes)
{
    *out_bytes = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return status_fail(CANVAS_ERR_IO, "/proc/self/statm: cannot open (not Linux?)");
    unsigned long long size_pages, resident_pages;
    int n = fscanf(f, "%llu %llu", &size_pages, &resident_pages);
    fclose(f);
    if (n != 2) return status_fail(CANVAS_ERR_IO, "/proc/self/statm: unexpected contents");
    long page = sysconf(_SC_PAGESIZE);
    *out_bytes = (uint64_t)resident_pages * (uint64_t)(page > 0 ? page : 4096);
    return CANVAS_OK;
}

int sysinfo_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
