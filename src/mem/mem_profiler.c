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
#include "io/json_file.h"
#include "mem/mem_internal.h"
#include "mem/mem_transfer.h"

/* Memory at one moment, for the counter tracks of the trace. */
typedef struct memory_sample {
    double seconds;
    size_t device_class_bytes[MEM_CLASS_COUNT];
    size_t host_class_bytes[MEM_CLASS_COUNT];
    uint64_t rss_bytes;
} memory_sample;

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
    ring samples;                  /* memory_sample */
    uint64_t fallbacks;
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
    p->samples = (ring){.element = sizeof(memory_sample), .limit = sample_limit(PROFILER_DEFAULT_PHASES)};
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
}

/* A sample into room reserved before (or in place of the oldest). */
static void take_sample(profiler *p)
{
    memory_sample *s = ring_next(&p->samples);
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

void profiler_count_fallback(profiler *p) { p->fallbacks++; }

uint64_t profiler_fallbacks(const profiler *p) { return p->fallbacks; }

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

/* ---- JSON ---- */

static json_t *class_object(const size_t bytes[MEM_CLASS_COUNT])
{
    json_t *o = json_object();
    for (int c = 0; c < MEM_CLASS_COUNT; c++) json_object_set_new(o, mem_class_name((mem_class)c), json_integer((json_int_t)bytes[c]));
    return o;
}

static json_t *phase_object(const profiler_phase *ph)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(ph->name));
    json_object_set_new(o, "start_seconds", json_real(ph->start_seconds));
    json_object_set_new(o, "seconds", json_real(ph->seconds));
    json_object_set_new(o, "device_peak_bytes", json_integer((json_int_t)ph->device_peak_bytes));
    json_object_set_new(o, "device_peak_bytes_by_class", class_object(ph->device_class_peak_bytes));
    json_object_set_new(o, "host_peak_bytes", json_integer((json_int_t)ph->host_peak_bytes));
    json_object_set_new(o, "host_peak_bytes_by_class", class_object(ph->host_class_peak_bytes));
    json_object_set_new(o, "pinned_peak_bytes", json_integer((json_int_t)ph->pinned_peak_bytes));
    json_object_set_new(o, "host_rss_bytes", json_integer((json_int_t)ph->host_rss_bytes));
    json_object_set_new(o, "mem_available_bytes", json_integer((json_int_t)ph->mem_available_bytes));
    json_object_set_new(o, "transfer_bytes", json_integer((json_int_t)ph->transfer_bytes));
    json_object_set_new(o, "transfer_seconds", json_real(ph->transfer_seconds));
    json_object_set_new(o, "transfer_wait_seconds", json_real(ph->transfer_wait_seconds));
    return o;
}

static json_t *report_object(const profiler *p)
{
    size_t device_peak = 0, host_peak = 0, pinned_peak = 0;
    uint64_t rss_peak = 0, available_min = 0, transfer_bytes = 0;
    double seconds = 0, wait_seconds = 0;
    json_t *phases = json_array();
    for (int i = -1; i < p->phases.count; i++) {
        /* -1: the summary of the phases no longer kept, in the totals, not in "phases" */
        const profiler_phase *ph = i < 0 ? (p->n_earlier ? &p->earlier : NULL) : ring_at(&p->phases, i);
        if (!ph) continue;
        if (ph->device_peak_bytes > device_peak) device_peak = ph->device_peak_bytes;
        if (ph->host_peak_bytes > host_peak) host_peak = ph->host_peak_bytes;
        if (ph->pinned_peak_bytes > pinned_peak) pinned_peak = ph->pinned_peak_bytes;
        if (ph->host_rss_bytes > rss_peak) rss_peak = ph->host_rss_bytes;
        if (ph->mem_available_bytes && (!available_min || ph->mem_available_bytes < available_min))
            available_min = ph->mem_available_bytes;
        transfer_bytes += ph->transfer_bytes;
        wait_seconds += ph->transfer_wait_seconds;
        seconds += ph->seconds;
        if (i >= 0) json_array_append_new(phases, phase_object(ph));
    }
    mem_device_stats device;
    mem_device_get_stats(p->device, &device);
    json_t *o = json_object();
    json_object_set_new(o, "device", json_string(mem_device_name(p->device)));
    json_object_set_new(o, "device_cap_bytes", json_integer((json_int_t)device.cap_bytes));
    json_object_set_new(o, "device_peak_bytes", json_integer((json_int_t)device_peak));
    json_object_set_new(o, "host_peak_bytes", json_integer((json_int_t)host_peak));
    json_object_set_new(o, "pinned_peak_bytes", json_integer((json_int_t)pinned_peak));
    json_object_set_new(o, "host_rss_peak_bytes", json_integer((json_int_t)rss_peak));
    json_object_set_new(o, "mem_available_min_bytes", json_integer((json_int_t)available_min));
    json_object_set_new(o, "fallbacks", json_integer((json_int_t)p->fallbacks));
    json_object_set_new(o, "transfer_bytes", json_integer((json_int_t)transfer_bytes));
    json_object_set_new(o, "transfer_wait_seconds", json_real(wait_seconds));
    json_object_set_new(o, "seconds", json_real(seconds));
    json_object_set_new(o, "phases", phases);
    if (p->n_earlier) {
        json_t *earlier = phase_object(&p->earlier);
        json_object_set_new(earlier, "count", json_integer(p->n_earlier));
        json_object_set_new(o, "earlier_phases", earlier);
    }
    return o;
}

/* Trace events in time order: each phase an "X" event, each sample two "C" events. */
typedef struct trace_item {
    double seconds;
    int order; /* ties: counters before the phase that starts at the same time */
    json_t *event;
} trace_item;

static int compare_items(const void *a, const void *b)
{
    const trace_item *x = a, *y = b;
    if (x->seconds != y->seconds) return x->seconds < y->seconds ? -1 : 1;
    return x->order - y->order;
}

static json_int_t micros(double seconds) { return (json_int_t)(seconds * 1e6 + 0.5); }

static json_t *counter_event(const char *name, double seconds, json_t *args)
{
    json_t *e = json_object();
    json_object_set_new(e, "name", json_string(name));
    json_object_set_new(e, "ph", json_string("C"));
    json_object_set_new(e, "ts", json_integer(micros(seconds)));
    json_object_set_new(e, "pid", json_integer(1));
    json_object_set_new(e, "tid", json_integer(0));
    json_object_set_new(e, "args", args);
    return e;
}

static canvas_status trace_object(const profiler *p, json_t **out)
{
    *out = NULL;
    int n_items = p->phases.count + 2 * p->samples.count;
    trace_item *items = NULL;
    if (n_items) TRY(mem_calloc((void **)&items, (size_t)n_items, sizeof *items, MEM_SCRATCH));
    int n = 0;
    for (int i = 0; i < p->samples.count; i++) {
        const memory_sample *s = ring_at(&p->samples, i);
        json_t *host_args = class_object(s->host_class_bytes);
        json_object_set_new(host_args, "rss", json_integer((json_int_t)s->rss_bytes));
        char device_track[64];
        snprintf(device_track, sizeof device_track, "%s memory (bytes)", mem_device_name(p->device));
        items[n++] = (trace_item){s->seconds, 0, counter_event(device_track, s->seconds, class_object(s->device_class_bytes))};
        if (p->host != p->device) items[n++] = (trace_item){s->seconds, 1, counter_event("host memory (bytes)", s->seconds, host_args)};
        else json_decref(host_args);
    }
    for (int i = 0; i < p->phases.count; i++) {
        const profiler_phase *ph = ring_at(&p->phases, i);
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(ph->name));
        json_object_set_new(e, "cat", json_string("phase"));
        json_object_set_new(e, "ph", json_string("X"));
        json_object_set_new(e, "ts", json_integer(micros(ph->start_seconds)));
        json_object_set_new(e, "dur", json_integer(micros(ph->seconds)));
        json_object_set_new(e, "pid", json_integer(1));
        json_object_set_new(e, "tid", json_integer(1));
        json_object_set_new(e, "args", phase_object(ph));
        items[n++] = (trace_item){ph->start_seconds, 2, e};
    }
    qsort(items, (size_t)n, sizeof *items, compare_items);
    json_t *events = json_array();
    json_t *meta = json_pack("{s:s, s:s, s:i, s:i, s:{s:s}}", "name", "process_name", "ph", "M", "pid", 1, "tid", 0,
                             "args", "name", "canvas");
    json_array_append_new(events, meta);
    json_array_append_new(events, json_pack("{s:s, s:s, s:i, s:i, s:{s:s}}", "name", "thread_name", "ph", "M", "pid", 1,
                                            "tid", 1, "args", "name", "phases"));
    for (int i = 0; i < n; i++) json_array_append_new(events, items[i].event);
    mem_free(items);
    json_t *root = json_object();
    json_object_set_new(root, "traceEvents", events);
    json_object_set_new(root, "displayTimeUnit", json_string("ms"));
    *out = root;
    return CANVAS_OK;
}

/* Write `root` to path.tmp and rename it over path. */
static canvas_status write_json(json_t *root, const char *path, const char *what)
{
    if (!root) return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s: out of memory building the %s", path, what);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (!text) return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s: out of memory writing the %s", path, what);
    size_t length = strlen(path) + 5;
    char *tmp;
    canvas_status status = mem_alloc((void **)&tmp, length, MEM_SCRATCH);
    if (status != CANVAS_OK) {
        mem_free(text);
        return status;
    }
    snprintf(tmp, length, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        status = status_fail(CANVAS_ERR_IO, "%s: cannot write the %s: %s", tmp, what, strerror(errno));
    } else {
        size_t n = strlen(text);
        int ok = fwrite(text, 1, n, f) == n && fputc('\n', f) != EOF;
        ok = (fclose(f) == 0) && ok;
        if (!ok) status = status_fail(CANVAS_ERR_IO, "%s: writing the %s failed: %s", tmp, what, strerror(errno));
        else if (rename(tmp, path) != 0)
            status = status_fail(CANVAS_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        if (status != CANVAS_OK) remove(tmp);
    }
    mem_free(tmp);
    mem_free(text);
    return status;
}

canvas_status profiler_write_report(const profiler *p, const char *path)
{
    json_use_canvas_allocator();
    mem_fault_exempt_begin();
    json_t *root = report_object(p);
    canvas_status status = write_json(root, path, "memory report");
    json_decref(root);
    mem_fault_exempt_end();
    return status;
}

canvas_status profiler_write_trace(const profiler *p, const char *path)
{
    json_use_canvas_allocator();
    mem_fault_exempt_begin();
    json_t *root;
    canvas_status status = trace_object(p, &root);
    if (status == CANVAS_OK) status = write_json(root, path, "trace");
    json_decref(root);
    mem_fault_exempt_end();
    return status;
}
