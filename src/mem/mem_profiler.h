/* SPDX-License-Identifier: Apache-2.0 */
/* mem_profiler.h — where the memory and the time went, phase by phase.
 *
 * A run is cut into phases ("load", "text-encode", "vae-encode", "step 3", "vae-decode");
 * one is open at a time and beginning one ends the previous. For each phase the profiler
 * keeps the peak per class on the device and on the host (pinned = host staging), the
 * process RSS and MemAvailable from /proc, bytes moved and seconds copying and waiting on
 * transfers, and wall seconds. It costs nothing per allocation (the devices keep their
 * counters anyway, a few atomics); at a phase boundary it reads them and resets the peaks
 * of its two devices (so do not rely on those devices' peaks across phases elsewhere;
 * the report has them).
 *
 * The records are read back through the accessors below; io/profiler_json.h writes them
 * as the JSON report and the Chrome trace (mem/ stays below io/ and knows no JSON). The
 * profiler's own bookkeeping is not a fault-injection point. Not thread-safe: phases are
 * marked by the run's thread.
 *
 * History is bounded, for a process that runs for days: the last PROFILER_DEFAULT_PHASES
 * phases (profiler_set_history) are kept, older ones are folded into one summary ("earlier
 * phases": peaks as maxima, seconds and transfers summed) that the report's totals include
 * (key "earlier_phases"); memory samples are bounded alike (the oldest dropped). Transfers
 * are those of `device` (mem_transfer_get_device_stats), not the process's. */
#ifndef CANVAS_MEM_PROFILER_H
#define CANVAS_MEM_PROFILER_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "canvas.h"
#include "mem/mem_device.h"

#define PROFILER_NAME_SIZE 48
#define PROFILER_DEFAULT_PHASES 1024

typedef struct profiler_phase {
    char name[PROFILER_NAME_SIZE];
    double start_seconds;                         /* since the profiler was created */
    double seconds;                               /* wall time of the phase */
    size_t device_peak_bytes;                     /* all classes together */
    size_t device_class_peak_bytes[MEM_CLASS_COUNT];
    size_t host_peak_bytes;
    size_t host_class_peak_bytes[MEM_CLASS_COUNT];
    size_t pinned_peak_bytes;                     /* host MEM_STAGING */
    uint64_t host_rss_bytes;                      /* the larger of the samples at begin and end */
    uint64_t mem_available_bytes;                 /* the smaller of the samples at begin and end */
    uint64_t transfer_bytes;
    double transfer_seconds, transfer_wait_seconds;
} profiler_phase;

/* Memory at one moment, for the counter tracks of the trace. */
typedef struct profiler_memory_sample {
    double seconds;                               /* since the profiler was created */
    size_t device_class_bytes[MEM_CLASS_COUNT];   /* current bytes per class */
    size_t host_class_bytes[MEM_CLASS_COUNT];
    uint64_t rss_bytes;
} profiler_memory_sample;

typedef struct profiler profiler;

/* `device` is where the model computes (a capped device, or the cpu device itself on a
 * plain CPU run); `host` is host RAM (normally mem_device_cpu()). */
canvas_status profiler_create(mem_device *device, mem_device *host, profiler **out);
void profiler_destroy(profiler *p);

/* Begin a phase named by a printf format (ends the open one). */
canvas_status profiler_begin(profiler *p, const char *name_format, ...) CANVAS_PRINTF(2, 3);
/* End the open phase (nothing when none is open). */
void profiler_end(profiler *p);
/* One more fallback (a smaller plan, a lower weight format, a load redone), with its
 * one-line description: the count goes up and the line is kept, the last
 * PROFILER_FALLBACK_LINES of them (each cut at PROFILER_FALLBACK_LINE_BYTES - 1 bytes). */
#define PROFILER_FALLBACK_LINES 16
#define PROFILER_FALLBACK_LINE_BYTES 512
void profiler_note_fallback(profiler *p, const char *line);
/* The peaks the plan of the run predicts (the last plan made; the report sets them beside the
 * measured ones). profiler_predicted: 0 when no plan was noted since the last reset. */
typedef struct profiler_prediction {
    uint64_t device_peak_bytes, pinned_peak_bytes, host_peak_bytes;
} profiler_prediction;
void profiler_note_prediction(profiler *p, const profiler_prediction *prediction);
int profiler_predicted(const profiler *p, profiler_prediction *out);
/* A memory sample for the trace's counter tracks now (phase boundaries sample anyway). */
canvas_status profiler_sample(profiler *p);

/* Keep the last `phases` (>= 1) phases; older ones, now and later, go into the summary.
 * CANVAS_ERR_USAGE below 1. */
canvas_status profiler_set_history(profiler *p, int phases);
/* Forget the phases, the summary, the samples and the fallback count (an open phase goes on
 * and is recorded when it ends); the time origin stays. */
void profiler_reset(profiler *p);

/* The phases kept, oldest first. */
int profiler_phase_count(const profiler *p);
const profiler_phase *profiler_phase_at(const profiler *p, int index);
/* The summary of the phases no longer kept (NULL when none); *count gets how many. */
const profiler_phase *profiler_earlier(const profiler *p, int *count);
uint64_t profiler_fallbacks(const profiler *p);
/* The fallback lines kept, oldest first (index 0 .. min(fallbacks, PROFILER_FALLBACK_LINES) - 1);
 * NULL out of range. */
const char *profiler_fallback_line(const profiler *p, int index);

/* Write the report / the trace (the open phase, if any, is left out). */



/* The samples in time order (phase boundaries and profiler_sample calls; the last ones
 * kept); NULL out of range. */
int profiler_sample_count(const profiler *p);
const profiler_memory_sample *profiler_sample_at(const profiler *p, int index);
/* The two devices profiler_create was given. */
mem_device *profiler_device(const profiler *p);
mem_device *profiler_host(const profiler *p);

#endif
