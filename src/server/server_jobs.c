/* SPDX-License-Identifier: Apache-2.0 */
/* server_jobs.c — jobs: ids, the bounded FIFO, the worker thread that owns the model, the
 * events a job records (the SSE stream replays them), and how long finished jobs are kept. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/status.h"
#include "io/file_read.h"
#include "mem/mem.h"
#include "pipeline/progress.h"
#include "server/server_internal.h"

const double server_step_bucket_bounds[SERVER_STEP_BUCKETS] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

const char *job_state_name(job_state state)
{
    static const char *const names[] = {"queued", "running", "done", "failed", "cancelled"};
    return state <= JOB_CANCELLED ? names[state] : "?";
}

static int job_finished(const job *j) { return j->state >= JOB_DONE; }

canvas_status job_create(server *s, job **out)
{
    job *j;
    TRY(mem_calloc((void **)&j, 1, sizeof *j, MEM_SCRATCH));
    /* ids are not guessable: another client's job is not yours to read or cancel */
    uint8_t random[8] = {0};
    if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random) {
        uint64_t mix = (uint64_t)(clock_seconds() * 1e9) ^ ((uint64_t)getpid() << 32);
        memcpy(random, &mix, sizeof random);
    }
    pthread_mutex_lock(&s->lock);
    uint64_t serial = ++s->next_job;
    pthread_mutex_unlock(&s->lock);
    snprintf(j->id, sizeof j->id, "job-%04llx", (unsigned long long)(serial & 0xffff));
    size_t used = strlen(j->id);
    for (int i = 0; i < 6; i++) used += (size_t)snprintf(j->id + used, sizeof j->id - used, "%02x", random[i]);
    j->refs = 1;
    j->created = clock_seconds();
    atomic_init(&j->cancel, 0);
    *out = j;
    return CANVAS_OK;
}

void job_free_inputs(job *j)
{
    for (int i = 0; i < j->n_images; i++) canvas_image_free(&j->images[i]);
    j->n_images = 0;
    canvas_prompt_free(&j->embeds);
    memset(&j->embeds, 0, sizeof j->embeds);
    mem_free(j->prompt_text);
    mem_free(j->negative_text);
    j->prompt_text = j->negative_text = NULL;
}

void job_release_locked(job *j)
{
    if (!j || --j->refs > 0) return;
    job_free_inputs(j);
    for (int i = 0; i < j->n_events; i++) mem_free(j->events[i]);
    mem_free(j->events);
    mem_free(j->png);
    mem_free(j);
}

/* Forget finished jobs past the time limit, then the oldest past the count limit. */
static void prune_locked(server *s)
{
    double now = clock_seconds();
    int finished = 0;
    job **link = &s->jobs;
    while (*link) {
        job *j = *link;
        if (job_finished(j)) {
            finished++;
            if (finished > s->config.jobs_kept || now - j->finished > s->config.job_ttl_seconds) {
                *link = j->next;
                job_release_locked(j);
                continue;
            }
        }
        link = &j->next;
    }
}

job *job_find_locked(server *s, const char *id)
{
    prune_locked(s);
    for (job *j = s->jobs; j; j = j->next)
        if (!strcmp(j->id, id)) {
            j->refs++;
            return j;
        }
    return NULL;
}

void job_event_locked(server *s, job *j, const char *name, const char *json)
{
    /* past the bound, step events are dropped (the last one and the outcome still come) */
    if (j->n_events >= SERVER_MAX_EVENTS - 8 && !strcmp(name, "step") && j->step != j->steps) return;
    if (j->n_events == SERVER_MAX_EVENTS) return;
    if (j->n_events == j->cap_events) {
        int cap = j->cap_events ? j->cap_events * 2 : 32;
        void *block = j->events;
        canvas_status st = block ? mem_realloc(&block, (size_t)cap * sizeof(char *), MEM_SCRATCH)
                                 : mem_alloc(&block, (size_t)cap * sizeof(char *), MEM_SCRATCH);
        if (st != CANVAS_OK) return;
        j->events = block;
        j->cap_events = cap;
    }
    text_buf b = {0};
    text_printf(&b, "id: %d\nevent: %s\ndata: %s\n\n", j->n_events, name, json);
    char *frame = text_take(&b);
    if (!frame) return;
    j->events[j->n_events++] = frame;
    pthread_cond_broadcast(&s->changed);
    if (s->on_event) s->on_event(s, j, name, json);
}

static int queue_position_locked(const server *s, const job *j)
{
    for (int i = 0; i < s->queue_len; i++)
        if (s->queue[(s->queue_head + i) % s->config.queue_max] == j) return i + 1;
    return 0;
}

int job_submit(server *s, job *j)
{
    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        return 503;
    }
    if (s->queue_len == s->config.queue_max) {
        s->jobs_rejected++;
        pthread_mutex_unlock(&s->lock);
        return 429;
    }
    prune_locked(s);
    s->queue[(s->queue_head + s->queue_len) % s->config.queue_max] = j;
    s->queue_len++;
    j->refs += 2; /* the list's and the queue's */
    j->next = s->jobs;
    s->jobs = j;
    char json[128];
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"position\":%d}", j->id, s->queue_len);
    job_event_locked(s, j, "queued", json);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void job_finish_locked(server *s, job *j, job_state state, int http_status, const char *reason)
{
    j->state = state;
    j->finished = clock_seconds();
    j->http_status = http_status;
    text_buf b = {0};
    if (state == JOB_DONE) {
        s->jobs_done++;
        text_printf(&b, "{\"id\":\"%s\",\"width\":%d,\"height\":%d,\"seconds\":%.3f,\"image\":\"/v1/jobs/%s/image.png\"}",
                    j->id, j->width, j->height, j->finished - j->started, j->id);
    } else {
        if (state == JOB_CANCELLED) s->jobs_cancelled++;
        else s->jobs_failed++;
        snprintf(j->error, sizeof j->error, "%s", reason);
        text_printf(&b, "{\"id\":\"%s\",\"state\":\"%s\",\"status\":%d,\"reason\":", j->id, job_state_name(state),
                    http_status);
        text_json_string(&b, reason);
        text_printf(&b, "}");
    }
    char *json = text_take(&b);
    if (json) job_event_locked(s, j, state == JOB_DONE ? "done" : "failed", json);
    mem_free(json);
    pthread_cond_broadcast(&s->changed);
}

int job_cancel_locked(server *s, job *j)
{
    if (job_finished(j)) return 409;
    atomic_store(&j->cancel, 1);
    if (j->state == JOB_RUNNING) return 202;
    /* queued: out of the ring, finished now */
    int pos = queue_position_locked(s, j) - 1;
    if (pos >= 0) {
        for (int i = pos; i + 1 < s->queue_len; i++)
            s->queue[(s->queue_head + i) % s->config.queue_max] = s->queue[(s->queue_head + i + 1) % s->config.queue_max];
        s->queue_len--;
    }
    job_finish_locked(s, j, JOB_CANCELLED, 409, "cancelled by DELETE before it started");
    job_free_inputs(j);
    if (pos >= 0) job_release_locked(j); /* the queue's */
    return 200;
}

void server_stop_jobs(server *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    if (s->running) atomic_store(&s->running->cancel, 1);
    while (s->queue_len > 0) {
        job *j = s->queue[s->queue_head];
        s->queue_head = (s->queue_head + 1) % s->config.queue_max;
        s->queue_len--;
        job_finish_locked(s, j, JOB_FAILED, 503, "the server is shutting down");
        job_free_inputs(j);
        job_release_locked(j); /* the queue's */
    }
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

char *job_describe_locked(const server *s, const job *j)
{
    text_buf b = {0};
    text_printf(&b, "{\"id\":\"%s\",\"object\":\"job\",\"kind\":\"%s\",\"state\":\"%s\",\"created\":%.6f", j->id,
                j->generate ? "generation" : "edit", job_state_name(j->state), j->created - s->started);
    if (j->state == JOB_QUEUED) text_printf(&b, ",\"position\":%d", queue_position_locked(s, j));
    if (j->started > 0) text_printf(&b, ",\"started\":%.6f", j->started - s->started);
    if (j->finished > 0) text_printf(&b, ",\"finished\":%.6f", j->finished - s->started);
    text_printf(&b, ",\"step\":%d,\"steps\":%d,\"seconds_per_step\":%.6f,\"fallbacks\":%d,\"seed\":%llu,\"plan\":",
                j->step, j->steps ? j->steps : j->params.steps, j->seconds_per_step, j->fallbacks,
                (unsigned long long)j->params.seed);
    text_json_string(&b, j->plan);
    if (j->state == JOB_DONE)
        text_printf(&b, ",\"width\":%d,\"height\":%d,\"image\":\"/v1/jobs/%s/image.png\"", j->width, j->height, j->id);
    if (j->state == JOB_FAILED || j->state == JOB_CANCELLED) {
        text_printf(&b, ",\"error\":{\"status\":%d,\"message\":", j->http_status);
        text_json_string(&b, j->error);
        text_printf(&b, "}");
    }
    text_printf(&b, ",\"events\":\"/v1/jobs/%s/events\"}", j->id);
    return text_take(&b);
}

/* ---- the worker ------------------------------------------------------------------------- */

typedef struct run_ctx {
    server *s;
    job *j;
} run_ctx;

static int should_stop(void *ctx)
{
    const job *j = ctx;
    return atomic_load(&j->cancel) != 0;
}

/* The memory the worker publishes (snapshot, pinned bytes of the open phase), and one chart
 * sample; under the lock. Only the worker calls it: it reads the model. */
static void publish_memory_locked(server *s, const char *phase, int fallback)
{
    canvas_memory_snapshot snap;
    if (canvas_memory_snapshot_take(s->model, &snap) == CANVAS_OK) s->snapshot = snap;
    int n = canvas_profile_phase_count(s->model);
    canvas_phase_profile ph;
    if (n > 0 && canvas_profile_phase(s->model, n - 1, &ph) == CANVAS_OK) {
        s->pinned_bytes = ph.pinned_peak_bytes;
        if (ph.pinned_peak_bytes > s->pinned_peak_bytes) s->pinned_peak_bytes = ph.pinned_peak_bytes;
    }
    memory_sample *m = &s->samples[(s->sample_head + s->n_samples) % SERVER_MEMORY_SAMPLES];
    if (s->n_samples == SERVER_MEMORY_SAMPLES) s->sample_head = (s->sample_head + 1) % SERVER_MEMORY_SAMPLES;
    else s->n_samples++;
    m->seconds = clock_seconds() - s->started;
    m->device_bytes = s->snapshot.device_cap_bytes ? s->snapshot.device_bytes : s->snapshot.host_bytes;
    m->host_bytes = s->snapshot.host_bytes;
    m->pinned_bytes = s->pinned_bytes;
    snprintf(m->phase, sizeof m->phase, "%s", phase ? phase : "");
    m->fallback = fallback;
}

/* A vram limit asked for through PUT /v1/memory applies at the next event (the library
 * allows it from a progress callback); the run falls back when the next allocation fails. */
static void apply_pending_vram(server *s)
{
    pthread_mutex_lock(&s->lock);
    int have = s->have_pending_vram;
    uint64_t bytes = s->pending_vram;
    s->have_pending_vram = 0;
    pthread_mutex_unlock(&s->lock);
    if (have && canvas_set_vram_limit(s->model, bytes) != CANVAS_OK)
        fprintf(stderr, "canvas serve: vram limit: %s\n", canvas_last_error());
}

static void on_progress(void *ctx, const canvas_progress *p)
{
    run_ctx *r = ctx;
    server *s = r->s;
    job *j = r->j;
    apply_pending_vram(s);
    char json[4096]; /* a fallback line holds the out-of-memory reason and the new plan */
    size_t len = progress_format_json(json, sizeof json - 160, p);
    const char *name = progress_event_name(p->kind);
    int fallback = 0;
    if (p->kind == CANVAS_PROGRESS_PLAN && !strncmp(p->message, "fallback", 8)) {
        /* the pipeline's fallback lines: an out-of-memory released and redone (or re-planned) */
        static const char plan_prefix[] = "{\"event\":\"plan\"";
        fallback = 1;
        name = "fallback";
        if (!strncmp(json, plan_prefix, sizeof plan_prefix - 1)) {
            char renamed[sizeof json];
            len = (size_t)snprintf(renamed, sizeof renamed - 160, "{\"event\":\"fallback\"%s", json + sizeof plan_prefix - 1);
            if (len >= sizeof renamed - 160) len = sizeof renamed - 161;
            memcpy(json, renamed, len + 1);
        }
    }
    if (p->kind == CANVAS_PROGRESS_DONE) return; /* the job's own "done" follows, with the image */
    pthread_mutex_lock(&s->lock);
    publish_memory_locked(s, p->phase, fallback);
    if (len > 0 && json[len - 1] == '}')
        snprintf(json + len - 1, sizeof json - len + 1, ",\"pinned_bytes\":%llu,\"job\":\"%s\"}",
                 (unsigned long long)s->pinned_bytes, j->id);
    if (p->kind == CANVAS_PROGRESS_PLAN && !fallback) snprintf(j->plan, sizeof j->plan, "%s", p->message);
    if (fallback) {
        j->fallbacks++;
        s->fallbacks++;
    }
    if (p->kind == CANVAS_PROGRESS_STEP) {
        double step_seconds = p->seconds_per_step * p->step - j->seconds_per_step * j->step;
        j->step = p->step;
        j->steps = p->steps;
        j->seconds_per_step = p->seconds_per_step;
        int b = 0;
        while (b < SERVER_STEP_BUCKETS && step_seconds > server_step_bucket_bounds[b]) b++;
        s->step_buckets[b]++;
        s->step_seconds_sum += step_seconds;
        s->step_count++;
    }
    job_event_locked(s, j, name, json);
    pthread_mutex_unlock(&s->lock);
}

/* The image as PNG bytes: written through the library's writer to the private folder, read back. */
static canvas_status encode_png(server *s, job *j, const canvas_image *out)
{
    char path[512], seed[32], steps[32], cfg[32];
    snprintf(path, sizeof path, "%s/%s.png", s->tmp_dir, j->id);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)j->params.seed);
    snprintf(steps, sizeof steps, "%d", j->params.steps);
    snprintf(cfg, sizeof cfg, "%g", j->params.cfg);
    const canvas_text texts[] = {
        {"Software", "Ethereal Canvas " CANVAS_VERSION " (canvas serve)"},
        {"prompt", j->prompt_text ? j->prompt_text : "(embeddings)"},
        {"seed", seed},
        {"steps", steps},
        {"cfg", cfg},
        {"strategy", j->plan[0] ? j->plan : "host memory"},
    };
    TRY(canvas_image_save_png(path, out, texts, (int)(sizeof texts / sizeof texts[0])));
    char *bytes = NULL;
    size_t size = 0;
    canvas_status st = file_read_all(path, (size_t)1 << 31, &bytes, &size);
    unlink(path);
    if (st != CANVAS_OK) return st;
    pthread_mutex_lock(&s->lock);
    j->png = (uint8_t *)bytes;
    j->png_size = size;
    pthread_mutex_unlock(&s->lock);
    return CANVAS_OK;
}

/* The job's LoRA strengths: each one that differs from what the model holds is merged again
 * (canvas_set_lora_scale reloads the transformer, so jobs at the same scale pay nothing). */
static canvas_status set_lora_scales(server *s, job *j)
{
    for (int i = 0; i < s->n_loras; i++) {
        if (j->lora_scales[i] == s->lora_scales[i]) continue;
        TRY(canvas_set_lora_scale(s->model, i, j->lora_scales[i]));
        s->lora_scales[i] = j->lora_scales[i];
    }
    return CANVAS_OK;
}

/* Run a job whose set-up returned `st` (a failure there fails the job). */
static void run_job(server *s, job *j, canvas_status st)
{
    run_ctx r = {s, j};
    canvas_profile_reset(s->model);
    apply_pending_vram(s);
    canvas_edit_params params = j->params;
    params.cancel = should_stop;
    params.cancel_ctx = j;
    canvas_prompt encoded = {0};
    const canvas_prompt *prompt = &j->embeds;
    if (st == CANVAS_OK && j->prompt_text) {
        st = canvas_encode_prompt(s->model, j->prompt_text, j->negative_text, j->images, j->n_images, &encoded);
        prompt = &encoded;
    }
    canvas_image out = {0};
    if (st == CANVAS_OK)
        st = j->generate ? canvas_generate(s->model, prompt, &params, on_progress, &r, &out)
                         : canvas_edit(s->model, prompt, j->images, j->n_images, &params, on_progress, &r, &out);
    if (st == CANVAS_OK) {
        j->width = out.width;
        j->height = out.height;
        st = encode_png(s, j, &out);
    }
    char reason[512];
    snprintf(reason, sizeof reason, "%s", st == CANVAS_OK ? "" : canvas_last_error());
    canvas_image_free(&out);
    canvas_prompt_free(&encoded);

    /* the profile of this job, for GET /v1/memory */
    text_buf b = {0};
    text_printf(&b, "[");
    int n = canvas_profile_phase_count(s->model);
    for (int i = 0; i < n; i++) {
        canvas_phase_profile ph;
        if (canvas_profile_phase(s->model, i, &ph) != CANVAS_OK) break;
        text_printf(&b, "%s{\"name\":", i ? "," : "");
        text_json_string(&b, ph.name);
        text_printf(&b, ",\"start_seconds\":%.6f,\"seconds\":%.6f,\"device_peak_bytes\":%llu,\"host_peak_bytes\":%llu,"
                        "\"pinned_peak_bytes\":%llu,\"transfer_bytes\":%llu,\"transfer_wait_seconds\":%.6f}",
                    ph.start_seconds, ph.seconds, (unsigned long long)ph.device_peak_bytes,
                    (unsigned long long)ph.host_peak_bytes, (unsigned long long)ph.pinned_peak_bytes,
                    (unsigned long long)ph.transfer_bytes, ph.transfer_wait_seconds);
    }
    text_printf(&b, "]");
    char *profile = text_take(&b);

    pthread_mutex_lock(&s->lock);
    publish_memory_locked(s, "idle", 0);
    if (profile) {
        mem_free(s->profile_json);
        s->profile_json = profile;
    }
    s->last_job_seconds = clock_seconds() - j->started;
    if (st == CANVAS_OK) {
        job_finish_locked(s, j, JOB_DONE, 200, "");
    } else if (st == CANVAS_ERR_CANCELLED) {
        int stopping = s->stopping;
        job_finish_locked(s, j, JOB_CANCELLED, stopping ? 503 : 409, stopping ? "cancelled: the server is shutting down" : reason);
    } else {
        job_finish_locked(s, j, JOB_FAILED, server_http_status(st), reason);
        fprintf(stderr, "canvas serve: job %s failed: %s\n", j->id, reason);
    }
    pthread_mutex_unlock(&s->lock);
}

void server_run_job(server *s, job *j)
{
    pthread_mutex_lock(&s->lock);
    j->state = JOB_RUNNING;
    j->started = clock_seconds();
    s->running = j;
    /* strategy switches wait for the gap between jobs, as canvas_set_strategy asks */
    char strategy[96];
    int allow_quantize = s->pending_allow_quantize, switch_strategy = s->have_pending_strategy;
    snprintf(strategy, sizeof strategy, "%s", s->pending_strategy);
    s->have_pending_strategy = 0;
    char json[96];
    snprintf(json, sizeof json, "{\"id\":\"%s\"}", j->id);
    job_event_locked(s, j, "started", json);
    pthread_mutex_unlock(&s->lock);

    if (switch_strategy && canvas_set_strategy(s->model, strategy, allow_quantize) != CANVAS_OK)
        fprintf(stderr, "canvas serve: strategy %s: %s\n", strategy, canvas_last_error());
    run_job(s, j, set_lora_scales(s, j));
    job_free_inputs(j); /* the worker's alone: the lock is not needed */
    pthread_mutex_lock(&s->lock);
    s->running = NULL;
    pthread_mutex_unlock(&s->lock);
}

void *server_worker(void *arg)
{
    server *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->queue_len == 0 && !s->stopping) pthread_cond_wait(&s->changed, &s->lock);
        if (s->stopping) break;
        job *j = s->queue[s->queue_head];
        s->queue_head = (s->queue_head + 1) % s->config.queue_max;
        s->queue_len--;
        j->state = JOB_RUNNING; /* out of the ring: a DELETE now cancels it at its next step */
        s->running = j;
        pthread_mutex_unlock(&s->lock);
        server_run_job(s, j);
        pthread_mutex_lock(&s->lock);
        job_release_locked(j); /* the queue's reference */
        pthread_cond_broadcast(&s->changed);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}
