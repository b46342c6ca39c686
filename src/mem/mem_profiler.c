/* mem_profiler.c — phase records and memory samples (io/profiler_json.c writes them out). */
#define _POSIX_C_SOURCE 200809L
#include "mem/mem_profiler.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/sysinfo.h"
#include "mem/mem_internal.h"
#include "mem/mem_transfer.h"

struct profiler {
    mem_device *device, *host;
    uint64_t start_ns;
    profiler_phase *phases;
    int n_phases, phase_capacity;
    int open;                      /* phases[n_phases] is being measured */
    mem_transfer_stats transfers_at_begin;
    profiler_memory_sample *samples;
    int n_samples, sample_capacity;
    uint64_t fallbacks;
};

static double now_seconds(const profiler *p) { return (double)(clock_ns() - p->start_ns) * 1e-9; }

/* Bookkeeping growth, outside the fault injector's count. */
static canvas_status grow(void **array, int *capacity, int needed, size_t element)
{
    if (needed <= *capacity) return CANVAS_OK;
    int fresh = *capacity ? *capacity * 2 : 16;
    while (fresh < needed) fresh *= 2;
    mem_fault_exempt_begin();
    canvas_status status = mem_realloc(array, (size_t)fresh * element, MEM_SCRATCH);
    mem_fault_exempt_end();
    if (status == CANVAS_OK) *capacity = fresh;
    return status;
}

canvas_status profiler_create(mem_device *device, mem_device *host, profiler **out)
{
    *out = NULL;
    profiler *p;
    mem_fault_exempt_begin();
    canvas_status status = mem_calloc((void **)&p, 1, sizeof *p, MEM_SCRATCH);
    mem_fault_exempt_end();
    TRY(status);
    p->device = device;
    p->host = host;
    p->start_ns = clock_ns();
    *out = p;
    return CANVAS_OK;
}

void profiler_destroy(profiler *p)
{
    if (!p) return;
    mem_free(p->phases);
    mem_free(p->samples);
    mem_free(p);
}

/* A sample into room reserved before. */
static void take_sample(profiler *p)
{
    profiler_memory_sample *s = &p->samples[p->n_samples++];
    mem_device_stats device, host;
    mem_device_get_stats(p->device, &device);
    mem_device_get_stats(p->host, &host);
    s->seconds = now_seconds(p);
    for (int c = 0; c < MEM_CLASS_COUNT; c++) {
        s->device_class_bytes[c] = device.classes[c].current_bytes;
        s->host_class_bytes[c] = host.classes[c].current_bytes;
    }
    s->rss_bytes = 0;
    if (sysinfo_rss(&s->rss_bytes) != CANVAS_OK) status_clear();
}

canvas_status profiler_sample(profiler *p)
{
    TRY(grow((void **)&p->samples, &p->sample_capacity, p->n_samples + 1, sizeof(profiler_memory_sample)));
    take_sample(p);
    return CANVAS_OK;
}

static void read_proc(uint64_t *rss, uint64_t *available)
{
    *rss = *available = 0;
    if (sysinfo_rss(rss) != CANVAS_OK || sysinfo_mem_available(available) != CANVAS_OK) status_clear();
}

canvas_status profiler_begin(profiler *p, const char *name_format, ...)
{
    profiler_end(p);
    /* Room for this phase and its two samples now, so that profiler_end cannot fail. */
    TRY(grow((void **)&p->phases, &p->phase_capacity, p->n_phases + 1, sizeof(profiler_phase)));
    TRY(grow((void **)&p->samples, &p->sample_capacity, p->n_samples + 2, sizeof(profiler_memory_sample)));
    profiler_phase *phase = &p->phases[p->n_phases];
    memset(phase, 0, sizeof *phase);
    va_list args;
    va_start(args, name_format);
    vsnprintf(phase->name, sizeof phase->name, name_format, args);
    va_end(args);
    mem_device_reset_peaks(p->device);
    if (p->host != p->device) mem_device_reset_peaks(p->host);
    mem_transfer_get_stats(&p->transfers_at_begin);
    read_proc(&phase->host_rss_bytes, &phase->mem_available_bytes);
    take_sample(p);
    phase->start_seconds = now_seconds(p);
    p->open = 1;
    return CANVAS_OK;
}

void profiler_end(profiler *p)
{
    if (!p->open) return;
    profiler_phase *phase = &p->phases[p->n_phases];
    phase->seconds = now_seconds(p) - phase->start_seconds;
    mem_device_stats device, host;
    mem_device_get_stats(p->device, &device);
    mem_device_get_stats(p->host, &host);
    phase->device_peak_bytes = device.peak_bytes;
    phase->host_peak_bytes = host.peak_bytes;
    for (int c = 0; c < MEM_CLASS_COUNT; c++) {
        phase->device_class_peak_bytes[c] = device.classes[c].peak_bytes;
        phase->host_class_peak_bytes[c] = host.classes[c].peak_bytes;
    }
    phase->pinned_peak_bytes = host.classes[MEM_STAGING].peak_bytes;
    uint64_t rss, available;
    read_proc(&rss, &available);
    if (rss > phase->host_rss_bytes) phase->host_rss_bytes = rss;
    if (available && (available < phase->mem_available_bytes || !phase->mem_available_bytes))
        phase->mem_available_bytes = available;
    mem_transfer_stats transfers;
    mem_transfer_get_stats(&transfers);
    phase->transfer_bytes = transfers.bytes - p->transfers_at_begin.bytes;
    phase->transfer_seconds = transfers.copy_seconds - p->transfers_at_begin.copy_seconds;
    phase->transfer_wait_seconds = transfers.wait_seconds - p->transfers_at_begin.wait_seconds;
    take_sample(p);
    p->n_phases++;
    p->open = 0;
}

void profiler_count_fallback(profiler *p) { p->fallbacks++; }

uint64_t profiler_fallbacks(const profiler *p) { return p->fallbacks; }

int profiler_phase_count(const profiler *p) { return p->n_phases; }

const profiler_phase *profiler_phase_at(const profiler *p, int index)
{
    return index >= 0 && index < p->n_phases ? &p->phases[index] : NULL;
}

int profiler_sample_count(const profiler *p) { return p->n_samples; }

const profiler_memory_sample *profiler_sample_at(const profiler *p, int index)
{
    return index >= 0 && index < p->n_samples ? &p->samples[index] : NULL;
}

mem_device *profiler_device(const profiler *p) { return p->device; }

mem_device *profiler_host(const profiler *p) { return p->host; }
