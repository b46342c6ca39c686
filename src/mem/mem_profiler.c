/* SPDX-License-Identifier: Apache-2.0 */
/* mem_profiler.c — phase records, memory samples, and their JSON exports. */
#define _POSIX_C_SOURCE 200809L
#include "mem/mem_profiler.h"

#include <errno.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/sysinfo.h"
#include "mem/mem_internal.h"
#include "mem/mem_transfer.h"


/* The last `limit` items of a sequence, oldest first: a ring that grows (doubling) until
 * it holds `limit` items, then drops the oldest for each new one. */
typedef struct ring {
    char *items;
    size_t element;
    int head, count, capacity, limit;
} ring;

static void *ring_at(const ring *r, int index)
{
    return r->items + (size_t)((r->head + index) % r->capacity) * r->element;
}

/* Room for `needed` items (at most the limit), oldest first at index 0 afterwards. Bookkeeping
 * growth, outside the fault injector's count. */
static canvas_status ring_reserve(ring *r, int needed)
{
    if (needed > r->limit) needed = r->limit;
    if (needed <= r->capacity) return CANVAS_OK;
    int fresh = r->capacity ? r->capacity * 2 : 16;
    while (fresh < needed) fresh *= 2;
    if (fresh > r->limit) fresh = r->limit;
    char *items;
    mem_fault_exempt_begin();
    canvas_status status = mem_alloc((void **)&items, (size_t)fresh * r->element, MEM_SCRATCH);
    mem_fault_exempt_end();
    TRY(status);
    for (int i = 0; i < r->count; i++) memcpy(items + (size_t)i * r->element, ring_at(r, i), r->element);
    mem_free(r->items);
    r->items = items;
    r->head = 0;
    r->capacity = fresh;
    return CANVAS_OK;
}

/* The slot after the last item (reserved before); not counted until ring_push. */
static void *ring_next(const ring *r) { return ring_at(r, r->count); }

/* Count the slot of ring_next; the oldest item goes when the ring is full (or holds its
 * limit, lowered since it grew). */
static void ring_push(ring *r)
{
    if (r->count < r->capacity && r->count < r->limit) r->count++;
    else r->head = (r->head + 1) % r->capacity;
}

/* Drop the oldest item (there is one). */
static void ring_drop(ring *r)
{
    r->head = (r->head + 1) % r->capacity;
    r->count--;
}

struct profiler {
    mem_device *device, *host;
    uint64_t start_ns;
    ring phases;                   /* profiler_phase: the last `limit` phases */
    int open;                      /* ring_next(&phases) is being measured */
    profiler_phase earlier;        /* the phases dropped from the ring, folded into one */
    int n_earlier;
    mem_transfer_stats transfers_at_begin;
    ring samples;                  /* profiler_memory_sample */
    uint64_t fallbacks;
    char fallback_lines[PROFILER_FALLBACK_LINES][PROFILER_FALLBACK_LINE_BYTES]; /* a ring: line k at k % LINES */
    int have_prediction;
    profiler_prediction prediction;
};

static double now_seconds(const profiler *p) { return (double)(clock_ns() - p->start_ns) * 1e-9; }

/* Samples kept: the two of each phase kept, and some taken between phase boundaries. */
static int sample_limit(int phase_limit)
{
    return phase_limit > (INT32_MAX - 64) / 2 ? INT32_MAX : 2 * phase_limit + 64;
}

/* An old phase into the summary: peaks as maxima, durations and transfers summed. */
static void fold(profiler_phase *sum, int n, const profiler_phase *ph)
{
    if (n == 0) {
        *sum = *ph;
        snprintf(sum->name, sizeof sum->name, "earlier phases");
        return;
    }
#define FOLD_MAX(field) \
    if (ph->field > sum->field) sum->field = ph->field
    FOLD_MAX(device_peak_bytes);
    FOLD_MAX(host_peak_bytes);
    FOLD_MAX(pinned_peak_bytes);
    FOLD_MAX(host_rss_bytes);
    for (int c = 0; c < MEM_CLASS_COUNT; c++) {
        FOLD_MAX(device_class_peak_bytes[c]);
        FOLD_MAX(host_class_peak_bytes[c]);
    }
#undef FOLD_MAX
    if (ph->mem_available_bytes && (!sum->mem_available_bytes || ph->mem_available_bytes < sum->mem_available_bytes))
        sum->mem_available_bytes = ph->mem_available_bytes;
    sum->seconds += ph->seconds;
    sum->transfer_bytes += ph->transfer_bytes;
    sum->transfer_seconds += ph->transfer_seconds;
    sum->transfer_wait_seconds += ph->transfer_wait_seconds;
}

/* Fold the oldest phases into the summary until at most `keep` remain. */
static void fold_oldest(profiler *p, int keep)
{
    while (p->phases.count > keep) {
        fold(&p->earlier, p->n_earlier++, ring_at(&p->phases, 0));
        ring_drop(&p->phases);
    }
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
    p->phases = (ring){.element = sizeof(profiler_phase), .limit = PROFILER_DEFAULT_PHASES};
    p->samples = (ring){.element = sizeof(profiler_memory_sample), .limit = sample_limit(PROFILER_DEFAULT_PHASES)};
    *out = p;
    return CANVAS_OK;
}

void profiler_destroy(profiler *p)
{
    if (!p) return;
    mem_free(p->phases.items);
    mem_free(p->samples.items);
    mem_free(p);
}

canvas_status profiler_set_history(profiler *p, int phases)
{
    if (phases < 1) return status_fail(CANVAS_ERR_USAGE, "profiler history of %d phases: give at least 1", phases);
    /* the open phase's slot stays reserved: fold enough for it */
    fold_oldest(p, p->open ? phases - 1 : phases);
    p->phases.limit = phases;
    p->samples.limit = sample_limit(phases);
    while (p->samples.count > p->samples.limit - 2) ring_drop(&p->samples);
    return CANVAS_OK;
}

void profiler_reset(profiler *p)
{
    /* an open phase keeps its slot, moved to the front: it is ended as usual */
    if (p->open) {
        memmove(p->phases.items, ring_next(&p->phases), sizeof(profiler_phase));
        p->phases.head = 0;
    }
    p->phases.count = 0;
    p->samples.count = 0;
    p->n_earlier = 0;
    memset(&p->earlier, 0, sizeof p->earlier);
    p->fallbacks = 0;
    p->have_prediction = 0;
}

/* A sample into room reserved before (or in place of the oldest). */
static void take_sample(profiler *p)
{
    profiler_memory_sample *s = ring_next(&p->samples);
    ring_push(&p->samples);
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
    /* keep room for the sample that ends the open phase */
    TRY(ring_reserve(&p->samples, p->samples.count + 2));
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
    /* Room for this phase and its two samples now, so that profiler_end cannot fail; a full
     * history folds its oldest phase into the summary. */
    TRY(ring_reserve(&p->phases, p->phases.count + 1));
    TRY(ring_reserve(&p->samples, p->samples.count + 2));
    fold_oldest(p, p->phases.limit - 1);
    profiler_phase *phase = ring_next(&p->phases);
    memset(phase, 0, sizeof *phase);
    va_list args;
    va_start(args, name_format);
    vsnprintf(phase->name, sizeof phase->name, name_format, args);
    va_end(args);
    mem_device_reset_peaks(p->device);
    if (p->host != p->device) mem_device_reset_peaks(p->host);
    mem_transfer_get_device_stats(p->device, &p->transfers_at_begin);
    read_proc(&phase->host_rss_bytes, &phase->mem_available_bytes);
    take_sample(p);
    phase->start_seconds = now_seconds(p);
    p->open = 1;
    return CANVAS_OK;
}

void profiler_end(profiler *p)
{
    if (!p->open) return;
    profiler_phase *phase = ring_next(&p->phases);
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
    mem_transfer_get_device_stats(p->device, &transfers);
    phase->transfer_bytes = transfers.bytes - p->transfers_at_begin.bytes;
    phase->transfer_seconds = transfers.copy_seconds - p->transfers_at_begin.copy_seconds;
    phase->transfer_wait_seconds = transfers.wait_seconds - p->transfers_at_begin.wait_seconds;
    take_sample(p);
    ring_push(&p->phases);
    p->open = 0;
}

void profiler_note_fallback(profiler *p, const char *line)
{
    snprintf(p->fallback_lines[p->fallbacks % PROFILER_FALLBACK_LINES], PROFILER_FALLBACK_LINE_BYTES, "%s",
             line ? line : "");
    p->fallbacks++;
}

void profiler_note_prediction(profiler *p, const profiler_prediction *prediction)
{
    p->prediction = *prediction;
    p->have_prediction = 1;
}

int profiler_predicted(const profiler *p, profiler_prediction *out)
{
    if (p->have_prediction) *out = p->prediction;
    return p->have_prediction;
}

uint64_t profiler_fallbacks(const profiler *p) { return p->fallbacks; }

const char *profiler_fallback_line(const profiler *p, int index)
{
    const uint64_t kept = p->fallbacks < PROFILER_FALLBACK_LINES ? p->fallbacks : PROFILER_FALLBACK_LINES;
    if (index < 0 || (uint64_t)index >= kept) return NULL;
    return p->fallback_lines[(p->fallbacks - kept + (uint64_t)index) % PROFILER_FALLBACK_LINES];
}

int profiler_phase_count(const profiler *p) { return p->phases.count; }

const profiler_phase *profiler_phase_at(const profiler *p, int index)
{
    return index >= 0 && index < p->phases.count ? ring_at(&p->phases, index) : NULL;
}

const profiler_phase *profiler_earlier(const profiler *p, int *count)
{
    *count = p->n_earlier;
    return p->n_earlier ? &p->earlier : NULL;
}

int profiler_sample_count(const profiler *p) { return p->samples.count; }

const profiler_memory_sample *profiler_sample_at(const profiler *p, int index)
{
    return index >= 0 && index < p->samples.count ? ring_at(&p->samples, index) : NULL;
}

mem_device *profiler_device(const profiler *p) { return p->device; }
mem_device *profiler_host(const profiler *p) { return p->host; }
