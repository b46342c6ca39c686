/* SPDX-License-Identifier: Apache-2.0 */
/* plan_timings.c — the planner learns from runs: the seconds per step a run measured, kept
 * per (plan, shapes, machine) in $XDG_CACHE_HOME/canvas/timings.json (CANVAS_TIMINGS_CACHE
 * names another file; "off": none), and used in place of the time model for that plan.
 *
 * The file: {"version": 1, "entries": {KEY: {"seconds": [last runs, up to 5], "seq": N}}},
 * at most 256 entries (the least recently recorded goes). A value is the median of the
 * runs kept, so one run slowed by another process does not decide. A file that is not what
 * this writes is ignored and rewritten: it is a cache. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_internal.h"

#define TIMINGS_VERSION 1
#define TIMINGS_RUNS 5
#define TIMINGS_ENTRIES 256

void plan_timing_key(const plan_work *work, const plan_hardware *hw, const plan_point *point, int on_device,
                     char *buf, size_t size)
{
    const qwen_dit_config *d = &work->components[PLAN_TRANSFORMER].config.dit;
    snprintf(buf, size,
             "cpu=%s cuda=%d threads=%d | layers=%d heads=%d head_dim=%d text_dim=%d | img=%lld txt=%lld cfg=%d | "
             "%s weights=%s resident=%d from_file=%d",
             hw->cpu_features, hw->cuda, work->threads, d->num_layers,
             d->num_attention_heads, d->attention_head_dim, d->joint_attention_dim, (long long)work->n_img,
             (long long)work->n_txt, work->cfg, on_device ? "device" : "host", quant_choice_name(point->weights),
             point->resident_blocks, point->stream_from_file);
}

static int timings_path(char *path, size_t size, int make_dirs)
{
    return plan_cache_path("CANVAS_TIMINGS_CACHE", "timings.json", path, size, make_dirs);
}

/* The entries of a cache of this version, or NULL. */
static json_t *entries_of(json_t *root)
{
    if (json_integer_value(json_object_get(root, "version")) != TIMINGS_VERSION) return NULL;
    json_t *entries = json_object_get(root, "entries");
    return json_is_object(entries) ? entries : NULL;
}

json_t *plan_timings_load(void)
{
    char path[4096];
    return timings_path(path, sizeof path, 0) ? plan_cache_load(path) : NULL;
}

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int plan_timing_lookup(json_t *timings, const char *key, double *seconds)
{
    json_t *runs = json_object_get(json_object_get(entries_of(timings), key), "seconds");
    double v[TIMINGS_RUNS];
    int n = 0;
    for (size_t i = 0; i < json_array_size(runs) && n < TIMINGS_RUNS; i++) {
        const double x = json_number_value(json_array_get(runs, i));
        if (isfinite(x) && x > 0) v[n++] = x;
    }
    if (n == 0) return 0;
    qsort(v, (size_t)n, sizeof v[0], by_value);
    *seconds = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return n;
}

/* The entry recorded least recently (smallest seq), to make room. */
static const char *oldest(json_t *entries)
{
    const char *key, *found = NULL;
    json_t *entry;
    json_int_t least = 0;
    json_object_foreach(entries, key, entry) {
        const json_int_t seq = json_integer_value(json_object_get(entry, "seq"));
        if (!found || seq < least) {
            found = key;
            least = seq;
        }
    }
    return found;
}

void plan_timing_record(const char *key, double seconds_per_step)
{
    char path[4096];
    if (!isfinite(seconds_per_step) || seconds_per_step <= 0 || !timings_path(path, sizeof path, 1)) return;
    json_t *root = plan_cache_load(path);
    if (!root) return;
    json_t *entries = entries_of(root);
    /* more entries than this keeps is not a file it wrote: dropping the oldest one at a time
     * would take a scan of them all for each */
    if (json_object_size(entries) > TIMINGS_ENTRIES) entries = NULL;
    if (!entries) { /* another version, or nothing yet: start again */
        json_object_clear(root);
        json_object_set_new(root, "version", json_integer(TIMINGS_VERSION));
        json_object_set_new(root, "entries", json_object());
        entries = json_object_get(root, "entries");
    }
    json_int_t seq = 0;
    const char *k;
    json_t *entry;
    json_object_foreach(entries, k, entry) {
        const json_int_t s = json_integer_value(json_object_get(entry, "seq"));
        if (s > seq && s < ((json_int_t)1 << 52)) seq = s; /* a huge one would overflow seq + 1 */
    }
    entry = json_object_get(entries, key);
    json_t *runs = json_object_get(entry, "seconds");
    if (json_array_size(runs) > TIMINGS_RUNS) json_array_clear(runs); /* not ours: removing from the front is quadratic */
    if (!json_is_array(runs)) {
        while (entries && json_object_size(entries) >= TIMINGS_ENTRIES) json_object_del(entries, oldest(entries));
        entry = json_object();
        runs = json_array();
        json_object_set_new(entry, "seconds", runs);
        json_object_set_new(entries, key, entry);
    }
    json_array_append_new(runs, json_real(seconds_per_step));
    while (json_array_size(runs) > TIMINGS_RUNS) json_array_remove(runs, 0);
    json_object_set_new(entry, "seq", json_integer(seq + 1));
    plan_cache_save(path, root);
    json_decref(root);
}
