/* SPDX-License-Identifier: Apache-2.0 */
/* profiler_json.c — the memory report and the Chrome trace from the profiler's records. */
#define _POSIX_C_SOURCE 200809L
#include "io/profiler_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/path.h"
#include "base/status.h"
#include "io/file_read.h"
#include "io/json_file.h"
#include "io/output_file.h"
#include "mem/mem.h"
#include "mem/mem_device.h"

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
    int n_earlier = 0;
    const profiler_phase *earlier = profiler_earlier(p, &n_earlier);
    for (int i = -1; i < profiler_phase_count(p); i++) {
        /* -1: the summary of the phases no longer kept, in the totals, not in "phases" */
        const profiler_phase *ph = i < 0 ? (n_earlier ? earlier : NULL) : profiler_phase_at(p, i);
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
    mem_device_get_stats(profiler_device(p), &device);
    json_t *o = json_object();
    json_object_set_new(o, "device", json_string(mem_device_name(profiler_device(p))));
    json_object_set_new(o, "device_cap_bytes", json_integer((json_int_t)device.cap_bytes));
    json_object_set_new(o, "device_peak_bytes", json_integer((json_int_t)device_peak));
    json_object_set_new(o, "host_peak_bytes", json_integer((json_int_t)host_peak));
    json_object_set_new(o, "pinned_peak_bytes", json_integer((json_int_t)pinned_peak));
    json_object_set_new(o, "host_rss_peak_bytes", json_integer((json_int_t)rss_peak));
    json_object_set_new(o, "mem_available_min_bytes", json_integer((json_int_t)available_min));
    profiler_prediction predicted;
    if (profiler_predicted(p, &predicted)) {
        json_object_set_new(o, "predicted_device_peak_bytes", json_integer((json_int_t)predicted.device_peak_bytes));
        json_object_set_new(o, "predicted_pinned_peak_bytes", json_integer((json_int_t)predicted.pinned_peak_bytes));
        json_object_set_new(o, "predicted_host_peak_bytes", json_integer((json_int_t)predicted.host_peak_bytes));
    }
    json_object_set_new(o, "fallbacks", json_integer((json_int_t)profiler_fallbacks(p)));
    json_t *lines = json_array();
    for (int i = 0; profiler_fallback_line(p, i); i++) {
        json_t *line = json_string(profiler_fallback_line(p, i)); /* NULL: not UTF-8 (a path in a reason) */
        json_array_append_new(lines, line ? line : json_string("(a fallback whose line is not valid UTF-8)"));
    }
    json_object_set_new(o, "fallback_lines", lines);
    json_object_set_new(o, "transfer_bytes", json_integer((json_int_t)transfer_bytes));
    json_object_set_new(o, "transfer_wait_seconds", json_real(wait_seconds));
    json_object_set_new(o, "seconds", json_real(seconds));
    json_object_set_new(o, "phases", phases);
    if (n_earlier) {
        json_t *summary = phase_object(earlier);
        json_object_set_new(summary, "count", json_integer(n_earlier));
        json_object_set_new(o, "earlier_phases", summary);
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
    int n_items = profiler_phase_count(p) + 2 * profiler_sample_count(p);
    trace_item *items = NULL;
    if (n_items) TRY(mem_calloc((void **)&items, (size_t)n_items, sizeof *items, MEM_SCRATCH));
    int n = 0;
    for (int i = 0; i < profiler_sample_count(p); i++) {
        const profiler_memory_sample *s = profiler_sample_at(p, i);
        json_t *host_args = class_object(s->host_class_bytes);
        json_object_set_new(host_args, "rss", json_integer((json_int_t)s->rss_bytes));
        char device_track[64];
        snprintf(device_track, sizeof device_track, "%s memory (bytes)", mem_device_name(profiler_device(p)));
        items[n++] = (trace_item){s->seconds, 0, counter_event(device_track, s->seconds, class_object(s->device_class_bytes))};
        if (profiler_host(p) != profiler_device(p)) items[n++] = (trace_item){s->seconds, 1, counter_event("host memory (bytes)", s->seconds, host_args)};
        else json_decref(host_args);
    }
    for (int i = 0; i < profiler_phase_count(p); i++) {
        const profiler_phase *ph = profiler_phase_at(p, i);
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

/* Write `root` to a temporary file of this write's own next to path, renamed over it. */
static canvas_status write_json(json_t *root, const char *path, const char *what)
{
    if (!root) return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s: out of memory building the %s", path, what);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (!text) return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s: out of memory writing the %s", path, what);
    char tmp[PATH_BUFFER_SIZE];
    int fd;
    canvas_status status = file_check_replaceable(path);
    if (status == CANVAS_OK) status = output_temp_create(path, tmp, sizeof tmp, &fd);
    FILE *f = status == CANVAS_OK ? fdopen(fd, "wb") : NULL;
    if (status == CANVAS_OK && !f) {
        close(fd);
        status = output_temp_finish(tmp, path, status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s: cannot write the %s", path, what));
    } else if (status == CANVAS_OK) {
        size_t n = strlen(text);
        int ok = fwrite(text, 1, n, f) == n && fputc('\n', f) != EOF;
        ok = (fclose(f) == 0) && ok;
        if (!ok) status = status_fail(CANVAS_ERR_IO, "%s: writing the %s failed: %s", tmp, what, strerror(errno));
        status = output_temp_finish(tmp, path, status);
    }
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
