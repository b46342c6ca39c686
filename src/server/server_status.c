/* SPDX-License-Identifier: Apache-2.0 */
/* server_status.c — the read-only endpoints: /healthz, /metrics (Prometheus text format),
 * /v1/memory (what the worker last published) and /v1/plan (the planner's ranked table,
 * from the model folder's config files alone, on the requesting thread). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/path.h"
#include "base/status.h"
#include "io/config.h"
#include "mem/mem.h"
#include "ops/threadpool.h"
#include "plan/plan.h"
#include "server/server_http.h"

char *server_health_json(server *s)
{
    text_buf b = {0};
    pthread_mutex_lock(&s->lock);
    text_printf(&b, "{\"status\":\"%s\",\"version\":\"%s\",\"uptime_seconds\":%.3f,\"queue\":%d,\"queue_max\":%d,"
                    "\"running\":",
                s->stopping ? "stopping" : "ok", CANVAS_VERSION, clock_seconds() - s->started, s->queue_len,
                s->config.queue_max);
    if (s->running) text_printf(&b, "\"%s\"", s->running->id);
    else text_printf(&b, "null");
    text_printf(&b, ",\"text_encoder\":%s,\"strategy\":", s->has_text_encoder ? "true" : "false");
    text_json_string(&b, s->strategy[0] ? s->strategy : "auto");
    /* the LoRAs by file name (no folders: clients never see server paths) */
    int lightning = 0;
    text_printf(&b, ",\"loras\":[");
    for (int i = 0; i < s->n_loras; i++) {
        lightning |= strcasestr(s->lora_names[i], "lightning") != NULL;
        text_printf(&b, "%s{\"name\":", i ? "," : "");
        text_json_string(&b, s->lora_names[i]);
        text_printf(&b, ",\"scale\":%g}", (double)s->lora_defaults[i]);
    }
    text_printf(&b, "],\"lightning\":%s}", lightning ? "true" : "false");
    pthread_mutex_unlock(&s->lock);
    return text_take(&b);
}

static void metric(text_buf *b, const char *name, const char *type, const char *help, double value)
{
    text_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, value);
}

char *server_metrics_text(server *s)
{
    text_buf b = {0};
    pthread_mutex_lock(&s->lock);
    const canvas_memory_snapshot *m = &s->snapshot;
    metric(&b, "canvas_device_bytes", "gauge", "Device memory in use (the host pool without a device).",
           (double)(m->device_cap_bytes ? m->device_bytes : m->host_bytes));
    metric(&b, "canvas_device_peak_bytes", "gauge", "Peak device memory of the last job.",
           (double)(m->device_cap_bytes ? m->device_peak_bytes : m->host_peak_bytes));
    metric(&b, "canvas_device_cap_bytes", "gauge", "The device's limit (0: no device).", (double)m->device_cap_bytes);
    metric(&b, "canvas_host_bytes", "gauge", "Host memory the model holds.", (double)m->host_bytes);
    metric(&b, "canvas_host_peak_bytes", "gauge", "Peak host memory of the model in the last job.", (double)m->host_peak_bytes);
    metric(&b, "canvas_host_rss_bytes", "gauge", "The process's resident set.", (double)m->host_rss_bytes);
    metric(&b, "canvas_pinned_peak_bytes", "gauge", "Peak pinned host memory since start.", (double)s->pinned_peak_bytes);
    metric(&b, "canvas_fallbacks_total", "counter", "Out-of-memory fallbacks (re-plans) since start.", (double)s->fallbacks);
    metric(&b, "canvas_queue_length", "gauge", "Jobs waiting.", (double)s->queue_len);
    metric(&b, "canvas_http_requests_total", "counter", "HTTP requests received.", (double)s->requests);
    text_printf(&b, "# HELP canvas_jobs_total Jobs by outcome.\n# TYPE canvas_jobs_total counter\n"
                    "canvas_jobs_total{outcome=\"done\"} %llu\ncanvas_jobs_total{outcome=\"failed\"} %llu\n"
                    "canvas_jobs_total{outcome=\"cancelled\"} %llu\ncanvas_jobs_total{outcome=\"rejected\"} %llu\n",
                (unsigned long long)s->jobs_done, (unsigned long long)s->jobs_failed,
                (unsigned long long)s->jobs_cancelled, (unsigned long long)s->jobs_rejected);
    text_printf(&b, "# HELP canvas_step_seconds Seconds per denoising step.\n# TYPE canvas_step_seconds histogram\n");
    uint64_t cumulative = 0;
    for (int i = 0; i < SERVER_STEP_BUCKETS; i++) {
        cumulative += s->step_buckets[i];
        text_printf(&b, "canvas_step_seconds_bucket{le=\"%g\"} %llu\n", server_step_bucket_bounds[i],
                    (unsigned long long)cumulative);
    }
    cumulative += s->step_buckets[SERVER_STEP_BUCKETS];
    text_printf(&b, "canvas_step_seconds_bucket{le=\"+Inf\"} %llu\ncanvas_step_seconds_sum %.9g\ncanvas_step_seconds_count %llu\n",
                (unsigned long long)cumulative, s->step_seconds_sum, (unsigned long long)s->step_count);
    pthread_mutex_unlock(&s->lock);
    return text_take(&b);
}

char *server_memory_json(server *s)
{
    text_buf b = {0};
    pthread_mutex_lock(&s->lock);
    const canvas_memory_snapshot *m = &s->snapshot;
    text_printf(&b,
                "{\"device_cap_bytes\":%llu,\"device_bytes\":%llu,\"device_peak_bytes\":%llu,\"device_weight_bytes\":%llu,"
                "\"device_activation_bytes\":%llu,\"host_bytes\":%llu,\"host_peak_bytes\":%llu,\"host_weight_bytes\":%llu,"
                "\"host_cap_bytes\":%llu,\"host_rss_bytes\":%llu,\"mem_available_bytes\":%llu,\"resident_blocks\":%d,"
                "\"total_blocks\":%d,\"pinned_bytes\":%llu,\"pinned_peak_bytes\":%llu,\"fallbacks\":%llu,"
                "\"last_job_profile\":%s,\"samples\":[",
                (unsigned long long)m->device_cap_bytes, (unsigned long long)m->device_bytes,
                (unsigned long long)m->device_peak_bytes, (unsigned long long)m->device_weight_bytes,
                (unsigned long long)m->device_activation_bytes, (unsigned long long)m->host_bytes,
                (unsigned long long)m->host_peak_bytes, (unsigned long long)m->host_weight_bytes,
                (unsigned long long)m->host_cap_bytes, (unsigned long long)m->host_rss_bytes,
                (unsigned long long)m->mem_available_bytes, m->resident_blocks, m->total_blocks,
                (unsigned long long)s->pinned_bytes, (unsigned long long)s->pinned_peak_bytes,
                (unsigned long long)s->fallbacks, s->profile_json ? s->profile_json : "[]");
    for (int i = 0; i < s->n_samples; i++) {
        const memory_sample *x = &s->samples[(s->sample_head + i) % SERVER_MEMORY_SAMPLES];
        text_printf(&b, "%s{\"t\":%.3f,\"device\":%llu,\"host\":%llu,\"pinned\":%llu,\"phase\":\"%s\",\"fallback\":%s}",
                    i ? "," : "", x->seconds, (unsigned long long)x->device_bytes, (unsigned long long)x->host_bytes,
                    (unsigned long long)x->pinned_bytes, x->phase, x->fallback ? "true" : "false");
    }
    text_printf(&b, "]}");
    pthread_mutex_unlock(&s->lock);
    return text_take(&b);
}

/* ---- /v1/plan -------------------------------------------------------------------------------- */

static int query_int(struct MHD_Connection *c, const char *key, int low, int high, int fallback, int *out)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    if (!v) {
        *out = fallback;
        return 1;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < low || n > high) {
        status_fail(CANVAS_ERR_USAGE, "%s takes a whole number from %d to %d (got '%s')", key, low, high, v);
        return 0;
    }
    *out = (int)n;
    return 1;
}

static void candidate_json(text_buf *b, const plan_candidate *c)
{
    text_printf(b, "{\"name\":\"%s\",\"fits\":%s,\"predicted_device_peak_bytes\":%llu,\"predicted_pinned_peak_bytes\":%llu,"
                   "\"predicted_host_peak_bytes\":%llu,\"predicted_seconds_per_step\":%.6g,\"resident_blocks\":%d,"
                   "\"weights\":\"%s\",\"reason\":",
                plan_preset_name(c->point.preset), c->fits ? "true" : "false", (unsigned long long)c->peak.device,
                (unsigned long long)c->peak.pinned, (unsigned long long)c->peak.host, c->seconds_per_step,
                c->point.resident_blocks, c->point.weights.format == QUANT_NONE ? "as stored" : quant_choice_name(c->point.weights));
    text_json_string(b, c->reason);
    text_printf(b, "}");
}

char *server_plan_json(server *s, struct MHD_Connection *c, int *status)
{
    int width, height, refs, steps;
    *status = 400;
    if (!query_int(c, "width", 16, 16384, 1024, &width) || !query_int(c, "height", 16, 16384, 1024, &height) ||
        !query_int(c, "refs", 0, PLAN_MAX_REFERENCES, 1, &refs) || !query_int(c, "steps", 1, 1000, 50, &steps))
        return NULL;
    if ((int64_t)width * height > s->config.max_image_pixels) {
        status_fail(CANVAS_ERR_USAGE, "%dx%d is over the server's limit of %lld pixels", width, height,
                    (long long)s->config.max_image_pixels);
        *status = 413;
        return NULL;
    }
    *status = 500;
    char path[4096];
    qwen_dit_config dit;
    vae_config vae;
    textenc_config text;
    pipeline_index index;
    canvas_status st = path_join(path, sizeof path, s->config.model_dir, "transformer/config.json");
    if (st == CANVAS_OK) st = qwen_dit_config_load(path, &dit);
    if (st == CANVAS_OK) st = path_join(path, sizeof path, s->config.model_dir, "vae/config.json");
    if (st == CANVAS_OK) st = vae_config_load(path, &vae);
    if (st != CANVAS_OK) return NULL;
    int have_text = 0;
    if (s->has_text_encoder && path_join(path, sizeof path, s->config.model_dir, "text_encoder/config.json") == CANVAS_OK)
        have_text = textenc_config_load(path, &text) == CANVAS_OK;
    plan_prompt_style style = PLAN_PROMPT_EDIT_PLUS;
    if (path_join(path, sizeof path, s->config.model_dir, "model_index.json") == CANVAS_OK &&
        pipeline_index_load(path, &index) == CANVAS_OK)
        style = plan_prompt_style_of(index.class_name);
    status_clear();
    /* one worker thread: the dry runs must not take the CPUs from the running job */
    thread_pool *pool;
    if (thread_pool_create(1, &pool) != CANVAS_OK) return NULL;
    plan_work w;
    int threads = s->config.options.threads > 0 ? s->config.options.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    plan_work_edit(&w, &dit, &vae, width, height, refs, 0, 0, 0, 1, steps, threads);
    if (have_text) plan_work_text_encoder(&w, &text, style);
    plan_hardware hw;
    plan_limits l;
    memset(&l, 0, sizeof l);
    st = plan_probe(s->config.options.threads, s->config.options.link_bytes_per_second, 2, &hw);
    l.device_bytes = s->config.options.vram_bytes;
    l.headroom_bytes = s->config.options.headroom_bytes;
    l.host_bytes = s->config.options.ram_bytes ? s->config.options.ram_bytes : hw.ram_available_bytes;
    l.allow_quantize = s->config.options.allow_quantize;
    l.fp8 = s->config.options.fp8;
    plan_result r;
    if (st == CANVAS_OK) st = plan_make(&w, &hw, &l, PLAN_AUTO, pool, &r);
    thread_pool_destroy(pool);
    if (st != CANVAS_OK) return NULL;
    text_buf b = {0};
    text_printf(&b, "{\"width\":%d,\"height\":%d,\"refs\":%d,\"steps\":%d,\"device_bytes\":%llu,\"chosen\":", width, height,
                refs, steps, (unsigned long long)l.device_bytes);
    if (r.chosen >= 0) candidate_json(&b, &r.candidates[r.chosen]);
    else text_printf(&b, "null");
    text_printf(&b, ",\"candidates\":[");
    for (int i = 0; i < r.n; i++) {
        if (i) text_printf(&b, ",");
        candidate_json(&b, &r.candidates[i]);
    }
    text_printf(&b, "]}");
    *status = 200;
    return text_take(&b);
}
