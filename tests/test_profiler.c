/* SPDX-License-Identifier: Apache-2.0 */
/* test_profiler.c — phase peaks are exact, the report and the trace parse back with the
 * promised structure (keys, types, sorted events, durations, counters). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/clock.h"
#include "check.h"
#include "io/json_file.h"
#include "io/profiler_json.h"
#include "mem/mem_device.h"
#include "mem/mem_profiler.h"
#include "mem/mem_transfer.h"

#define KiB ((json_int_t)1024)

static char tmp_dir[256];

static const char *tmp_file(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmp_dir, name);
    return buf;
}

/* A small run: load (weights + a pinned staging buffer), 3 steps with activations that
 * grow per step, a decode phase, one transfer per step. */
static void fake_run(profiler *p, mem_device *gpu)
{
    void *weights, *staging, *act;
    CHECK_OK(profiler_begin(p, "load"));
    CHECK_OK(mem_device_alloc(gpu, MEM_WEIGHTS, 100 * KiB, 0, &weights));
    CHECK_OK(mem_device_alloc(mem_device_cpu(), MEM_STAGING, 40 * KiB, 0, &staging));
    memset(staging, 3, 40 * KiB);
    CHECK_OK(mem_copy(gpu, weights, mem_device_cpu(), staging, 40 * KiB));
    for (int k = 1; k <= 3; k++) {
        CHECK_OK(profiler_begin(p, "step %d", k));
        CHECK_OK(mem_device_alloc(gpu, MEM_ACTIVATIONS, (size_t)(k * 10 * KiB), 0, &act));
        CHECK_OK(mem_copy(gpu, (char *)weights + 50 * KiB, mem_device_cpu(), staging, 8 * KiB));
        CHECK_OK(profiler_sample(p));
        clock_sleep(0.002);
        mem_device_free(gpu, act);
    }
    mem_free(staging);
    CHECK_OK(profiler_begin(p, "vae-decode"));
    CHECK_OK(mem_device_alloc(gpu, MEM_ACTIVATIONS, 5 * KiB, 0, &act));
    mem_device_free(gpu, act);
    mem_device_free(gpu, weights);
    profiler_end(p);
    profiler_note_fallback(p, "fallback: test");
}

static void test_phase_peaks(void)
{
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("gpu", 1024 * KiB, &gpu));
    profiler *p;
    CHECK_OK(profiler_create(gpu, mem_device_cpu(), &p));
    fake_run(p, gpu);
    CHECK(profiler_phase_count(p) == 5 && profiler_fallbacks(p) == 1);
    const profiler_phase *load = profiler_phase_at(p, 0), *step2 = profiler_phase_at(p, 2), *decode = profiler_phase_at(p, 4);
    CHECK(!strcmp(load->name, "load") && !strcmp(step2->name, "step 2") && !strcmp(decode->name, "vae-decode"));
    CHECK(load->device_peak_bytes == 100 * KiB && load->device_class_peak_bytes[MEM_WEIGHTS] == 100 * KiB);
    /* nothing else allocates host staging: exact */
    CHECK(load->pinned_peak_bytes == 40 * KiB && load->host_class_peak_bytes[MEM_STAGING] == 40 * KiB);
    CHECK(load->transfer_bytes == 40 * KiB);
    CHECK(step2->device_peak_bytes == 120 * KiB && step2->device_class_peak_bytes[MEM_ACTIVATIONS] == 20 * KiB);
    CHECK(step2->transfer_bytes == 8 * KiB && step2->seconds >= 0.002);
    CHECK(decode->device_peak_bytes == 105 * KiB && decode->device_class_peak_bytes[MEM_ACTIVATIONS] == 5 * KiB);
    CHECK(load->host_rss_bytes > 0 && load->mem_available_bytes > 0);
    CHECK(step2->start_seconds >= load->start_seconds + load->seconds);
    CHECK(profiler_phase_at(p, 5) == NULL);
    profiler_destroy(p);
    mem_device_destroy(gpu);
}

/* A bounded history: the last N phases, the older ones folded into one summary; reset. */
static void test_bounded_history(void)
{
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("gpu", 1024 * KiB, &gpu));
    profiler *p;
    CHECK_OK(profiler_create(gpu, mem_device_cpu(), &p));
    CHECK_FAILS(profiler_set_history(p, 0), CANVAS_ERR_USAGE, "at least 1");
    CHECK_OK(profiler_set_history(p, 3));
    fake_run(p, gpu); /* load, step 1 (10 KiB), step 2 (20 KiB), step 3 (30 KiB), vae-decode */
    int n_earlier = -1;
    const profiler_phase *earlier = profiler_earlier(p, &n_earlier);
    CHECK(profiler_phase_count(p) == 3 && n_earlier == 2 && earlier);
    CHECK(!strcmp(profiler_phase_at(p, 0)->name, "step 2") && !strcmp(profiler_phase_at(p, 2)->name, "vae-decode"));
    if (earlier) {
        /* load (100 KiB weights, 40 KiB in) and step 1 (110 KiB, 8 KiB in): maxima and sums */
        CHECK(!strcmp(earlier->name, "earlier phases"));
        CHECK(earlier->device_peak_bytes == 110 * KiB && earlier->pinned_peak_bytes == 40 * KiB);
        CHECK(earlier->transfer_bytes == 48 * KiB);
    }
    /* a lower limit folds at once; many phases later the history is still 2 */
    CHECK_OK(profiler_set_history(p, 2));
    for (int i = 0; i < 200; i++) CHECK_OK(profiler_begin(p, "phase %d", i));
    profiler_end(p);
    earlier = profiler_earlier(p, &n_earlier);
    CHECK(profiler_phase_count(p) == 2 && n_earlier == 203); /* 5 + 200 phases, 2 kept */
    CHECK(!strcmp(profiler_phase_at(p, 1)->name, "phase 199") && profiler_phase_at(p, 2) == NULL);

    /* reset: nothing recorded; an open phase is recorded when it ends */
    CHECK_OK(profiler_begin(p, "open"));
    profiler_reset(p);
    earlier = profiler_earlier(p, &n_earlier);
    CHECK(profiler_phase_count(p) == 0 && n_earlier == 0 && !earlier && profiler_fallbacks(p) == 0);
    profiler_end(p);
    CHECK(profiler_phase_count(p) == 1 && !strcmp(profiler_phase_at(p, 0)->name, "open"));
    profiler_destroy(p);
    mem_device_destroy(gpu);
}

static json_int_t int_key(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    CHECK_MSG(json_is_integer(v), "key '%s' is not an integer", key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* The fallback lines: the last PROFILER_FALLBACK_LINES kept in order, a long one cut, reset forgets them. */
static void test_fallback_lines(void)
{
    profiler *p;
    CHECK_OK(profiler_create(mem_device_cpu(), mem_device_cpu(), &p));
    CHECK(profiler_fallback_line(p, 0) == NULL);
    char line[64];
    for (int i = 0; i < PROFILER_FALLBACK_LINES + 3; i++) {
        snprintf(line, sizeof line, "fallback %d", i);
        profiler_note_fallback(p, line);
    }
    CHECK(profiler_fallbacks(p) == PROFILER_FALLBACK_LINES + 3);
    CHECK(!strcmp(profiler_fallback_line(p, 0), "fallback 3"));
    snprintf(line, sizeof line, "fallback %d", PROFILER_FALLBACK_LINES + 2);
    CHECK(!strcmp(profiler_fallback_line(p, PROFILER_FALLBACK_LINES - 1), line));
    CHECK(profiler_fallback_line(p, PROFILER_FALLBACK_LINES) == NULL && profiler_fallback_line(p, -1) == NULL);
    char long_line[PROFILER_FALLBACK_LINE_BYTES + 100];
    memset(long_line, 'x', sizeof long_line - 1);
    long_line[sizeof long_line - 1] = '\0';
    profiler_note_fallback(p, long_line);
    CHECK(strlen(profiler_fallback_line(p, PROFILER_FALLBACK_LINES - 1)) == PROFILER_FALLBACK_LINE_BYTES - 1);
    profiler_prediction predicted = {0};
    CHECK(!profiler_predicted(p, &predicted));
    profiler_note_prediction(p, &(profiler_prediction){3, 2, 1});
    CHECK(profiler_predicted(p, &predicted) && predicted.device_peak_bytes == 3 && predicted.pinned_peak_bytes == 2 &&
          predicted.host_peak_bytes == 1);
    profiler_reset(p);
    CHECK(profiler_fallbacks(p) == 0 && profiler_fallback_line(p, 0) == NULL && !profiler_predicted(p, &predicted));
    profiler_destroy(p);
}

static void test_report_json(void)
{
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("gpu", 1024 * KiB, &gpu));
    profiler *p;
    CHECK_OK(profiler_create(gpu, mem_device_cpu(), &p));
    fake_run(p, gpu);
    char path[512], tmp[520];
    CHECK_OK(profiler_write_report(p, tmp_file(path, sizeof path, "report.json")));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0); /* renamed into place */
    json_t *root;
    CHECK_OK(json_file_load(path, &root));
    if (!root) return;
    CHECK(int_key(root, "device_peak_bytes") == 130 * KiB); /* step 3 */
    CHECK(int_key(root, "host_peak_bytes") >= 40 * KiB);
    CHECK(int_key(root, "pinned_peak_bytes") == 40 * KiB);
    CHECK(int_key(root, "fallbacks") == 1);
    CHECK(json_object_get(root, "predicted_host_peak_bytes") == NULL); /* no plan noted */
    json_t *lines = json_object_get(root, "fallback_lines");
    CHECK(json_is_array(lines) && json_array_size(lines) == 1 &&
          !strcmp(json_string_value(json_array_get(lines, 0)) ? json_string_value(json_array_get(lines, 0)) : "",
                  "fallback: test"));
    CHECK(int_key(root, "transfer_bytes") == 64 * KiB);
    CHECK(int_key(root, "device_cap_bytes") == 1024 * KiB);
    CHECK(json_is_real(json_object_get(root, "seconds")));
    CHECK(json_is_string(json_object_get(root, "device")));
    json_t *phases = json_object_get(root, "phases");
    CHECK(json_is_array(phases) && json_array_size(phases) == 5);
    size_t i;
    json_t *ph;
    json_array_foreach(phases, i, ph)
    {
        CHECK(json_is_string(json_object_get(ph, "name")));
        CHECK(json_is_real(json_object_get(ph, "seconds")) && json_real_value(json_object_get(ph, "seconds")) >= 0);
        CHECK(int_key(ph, "device_peak_bytes") > 0);
        CHECK(int_key(ph, "host_peak_bytes") >= 0 && int_key(ph, "pinned_peak_bytes") >= 0);
        CHECK(int_key(ph, "host_rss_bytes") > 0 && int_key(ph, "mem_available_bytes") > 0);
        CHECK(int_key(ph, "transfer_bytes") >= 0);
        json_t *by_class = json_object_get(ph, "device_peak_bytes_by_class");
        CHECK(json_is_object(by_class) && json_object_size(by_class) == MEM_CLASS_COUNT);
        CHECK(json_is_integer(json_object_get(by_class, "activations")));
    }
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(phases, 3), "name")), "step 3"));
    CHECK(int_key(json_array_get(phases, 3), "device_peak_bytes") == 130 * KiB);
    json_decref(root);

    /* A folder that does not exist: an i/o error naming the file, nothing written. */
    CHECK_FAILS(profiler_write_report(p, "/nonexistent-dir/r.json"), CANVAS_ERR_IO, "/nonexistent-dir/r.json");
    profiler_destroy(p);
    mem_device_destroy(gpu);
}

static void test_trace_json(void)
{
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("gpu", 1024 * KiB, &gpu));
    profiler *p;
    CHECK_OK(profiler_create(gpu, mem_device_cpu(), &p));
    fake_run(p, gpu);
    char path[512];
    CHECK_OK(profiler_write_trace(p, tmp_file(path, sizeof path, "trace.json")));
    json_t *root;
    CHECK_OK(json_file_load(path, &root));
    if (!root) return;
    json_t *events = json_object_get(root, "traceEvents");
    CHECK(json_is_array(events) && json_array_size(events) > 5);
    size_t i;
    json_t *e;
    json_int_t last_ts = -1;
    int phases = 0, device_counters = 0, host_counters = 0, metadata = 0;
    json_array_foreach(events, i, e)
    {
        const char *ph = json_string_value(json_object_get(e, "ph"));
        CHECK(ph != NULL && json_is_string(json_object_get(e, "name")));
        CHECK(json_is_integer(json_object_get(e, "pid")) && json_is_integer(json_object_get(e, "tid")));
        if (!ph) continue;
        if (!strcmp(ph, "M")) {
            metadata++;
            continue;
        }
        json_int_t ts = int_key(e, "ts");
        CHECK_MSG(ts >= last_ts, "event %zu at %lld before %lld", i, (long long)ts, (long long)last_ts);
        last_ts = ts;
        json_t *args = json_object_get(e, "args");
        CHECK(json_is_object(args));
        if (!strcmp(ph, "X")) {
            phases++;
            CHECK(int_key(e, "dur") >= 0);
            CHECK(json_is_integer(json_object_get(args, "device_peak_bytes")));
        } else if (!strcmp(ph, "C")) {
            const char *name = json_string_value(json_object_get(e, "name"));
            if (strstr(name, "gpu")) device_counters++;
            if (strstr(name, "host")) host_counters++;
            json_t *weights = json_object_get(args, "weights");
            CHECK(json_is_integer(weights) && json_integer_value(weights) >= 0);
        } else {
            CHECK_MSG(0, "unexpected phase type %s", ph);
        }
    }
    CHECK(phases == 5 && metadata == 2);
    CHECK(device_counters == 5 * 2 + 3 && host_counters == device_counters); /* begin + end + 3 samples */
    json_decref(root);
    profiler_destroy(p);
    mem_device_destroy(gpu);
}

static void test_cpu_only_run(void)
{
    /* On a plain CPU run the device is host RAM itself: no separate host track. */
    profiler *p;
    CHECK_OK(profiler_create(mem_device_cpu(), mem_device_cpu(), &p));
    void *a;
    CHECK_OK(profiler_begin(p, "text-encode"));
    CHECK_OK(mem_alloc(&a, 64 * KiB, MEM_ACTIVATIONS));
    mem_free(a);
    CHECK_OK(profiler_begin(p, "vae-encode")); /* ends text-encode */
    profiler_end(p);
    profiler_end(p); /* nothing open: nothing happens */
    CHECK(profiler_phase_count(p) == 2);
    CHECK(profiler_phase_at(p, 0)->device_peak_bytes >= 64 * KiB);
    CHECK(profiler_phase_at(p, 0)->device_peak_bytes == profiler_phase_at(p, 0)->host_peak_bytes);
    char path[512];
    CHECK_OK(profiler_write_trace(p, tmp_file(path, sizeof path, "cpu-trace.json")));
    json_t *root;
    CHECK_OK(json_file_load(path, &root));
    CHECK(json_array_size(json_object_get(root, "traceEvents")) == 2 + 2 + 4);
    json_decref(root);
    profiler_destroy(p);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/canvas-test-profiler-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_phase_peaks);
    RUN(test_bounded_history);
    RUN(test_fallback_lines);
    RUN(test_report_json);
    RUN(test_trace_json);
    RUN(test_cpu_only_run);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return check_summary();
}
