/* SPDX-License-Identifier: Apache-2.0 */
/* queue_front.c — `canvas serve --queue`: jobs go to the Redis stream instead of the local
 * worker, and a relay thread applies the workers' events (NAME:events) to the front's own
 * jobs, so every HTTP endpoint (job state, SSE, PNG, the synchronous OpenAI answers) works
 * as without a queue. A job is accepted only once XADD returned its entry: Redis down means
 * 503, never a job the front holds and cannot queue. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/status.h"
#include "mem/mem.h"
#include "server/queue.h"
#include "server/queue_redis.h"

typedef struct queue_front {
    redis_link submit;          /* the HTTP threads', under submit_lock */
    pthread_mutex_t submit_lock;
    redis_link relay;           /* the relay thread's */
    pthread_t thread;
    atomic_int stop;
    char last_id[64];           /* the last event applied */
} queue_front;

/* A number after "key": in an event's JSON (the workers' own format); `fallback` without. */
static double json_number(const char *json, const char *key, double fallback)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\":", key);
    const char *at = strstr(json, needle);
    if (!at) return fallback;
    char *end;
    double v = strtod(at + strlen(needle), &end);
    return end == at + strlen(needle) ? fallback : v;
}

static job *find_job(server *s, const char *id)
{
    for (job *j = s->jobs; j; j = j->next)
        if (!strcmp(j->id, id)) return j;
    return NULL;
}

/* The worker's result for a "done" event: the PNG from NAME:result:ID. 0 when the link
 * failed (the event is applied again after reconnecting). */
static int apply_done(server *s, queue_front *f, job *j)
{
    redisReply *r = redis_link_command(&f->relay, "GET %s:result:%s", f->relay.url.name, j->id);
    if (!r) return 0;
    uint8_t *png = NULL;
    size_t size = 0;
    if (r->type == REDIS_REPLY_STRING && r->len >= 24 && mem_alloc((void **)&png, r->len, MEM_SCRATCH) == CANVAS_OK) {
        memcpy(png, r->str, r->len);
        size = r->len;
    }
    freeReplyObject(r);
    pthread_mutex_lock(&s->lock);
    if (j->state < JOB_DONE && png) {
        j->png = png;
        j->png_size = size;
        /* the size from the PNG's header (IHDR: width, height, big-endian, at byte 16) */
        j->width = (int)((uint32_t)png[16] << 24 | (uint32_t)png[17] << 16 | (uint32_t)png[18] << 8 | png[19]);
        j->height = (int)((uint32_t)png[20] << 24 | (uint32_t)png[21] << 16 | (uint32_t)png[22] << 8 | png[23]);
        if (j->started <= 0) j->started = clock_seconds();
        job_finish_locked(s, j, JOB_DONE, 200, "");
        png = NULL;
    } else if (j->state < JOB_DONE) {
        job_finish_locked(s, j, JOB_FAILED, 502, "the worker's result is missing from Redis (expired, or no memory here)");
    }
    pthread_mutex_unlock(&s->lock);
    mem_free(png);
    return 1;
}

/* One event from NAME:events; 0 when the link failed before it was applied. */
static int apply_event(server *s, queue_front *f, const redisReply *fields)
{
    const char *id = NULL, *name = NULL, *data = "{}", *reason = "";
    int status = 500;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        if (!strcmp(k->str, "job")) id = v->str;
        else if (!strcmp(k->str, "event")) name = v->str;
        else if (!strcmp(k->str, "data")) data = v->str;
        else if (!strcmp(k->str, "reason")) reason = v->str;
        else if (!strcmp(k->str, "status")) status = atoi(v->str);
    }
    if (!id || !name) return 1;
    pthread_mutex_lock(&s->lock);
    job *j = find_job(s, id); /* another front's job, or one forgotten: not ours to follow */
    if (!j || j->state >= JOB_DONE) {
        pthread_mutex_unlock(&s->lock);
        return 1;
    }
    j->refs++;
    int done = !strcmp(name, "done");
    if (!strcmp(name, "failed")) {
        job_finish_locked(s, j, JOB_FAILED, status >= 400 && status < 600 ? status : 500, reason);
    } else if (!strcmp(name, "cancelled")) {
        job_finish_locked(s, j, JOB_CANCELLED, 409, reason);
    } else if (!done) {
        if (!strcmp(name, "started")) {
            j->state = JOB_RUNNING;
            j->started = clock_seconds();
            j->step = 0;
        } else if (!strcmp(name, "step")) {
            j->step = (int)json_number(data, "step", j->step);
            j->steps = (int)json_number(data, "steps", j->steps);
            j->seconds_per_step = json_number(data, "seconds_per_step", j->seconds_per_step);
        } else if (!strcmp(name, "fallback")) {
            j->fallbacks++;
            s->fallbacks++;
        }
        job_event_locked(s, j, name, data);
    }
    pthread_mutex_unlock(&s->lock);
    int applied = done ? apply_done(s, f, j) : 1;
    pthread_mutex_lock(&s->lock);
    job_release_locked(j);
    pthread_mutex_unlock(&s->lock);
    return applied;
}

/* A DELETE (or a client gone) cancels the front's job at once; the workers learn it from the
 * key NAME:cancel:ID (a worker checks it before a job and during it). */
static void pass_cancels(server *s, queue_front *f)
{
    char ids[16][24];
    int n = 0;
    pthread_mutex_lock(&s->lock);
    for (job *j = s->jobs; j && n < 16; j = j->next)
        if (atomic_load(&j->cancel) && !j->cancel_queued) {
            j->cancel_queued = 1;
            memcpy(ids[n++], j->id, sizeof j->id);
        }
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < n; i++) {
        redisReply *r = redis_link_command(&f->relay, "SET %s:cancel:%s 1 EX 86400", f->relay.url.name, ids[i]);
        if (r) freeReplyObject(r);
        if (r) continue;
        pthread_mutex_lock(&s->lock); /* the link failed: again after reconnecting */
        for (job *j = s->jobs; j; j = j->next)
            if (!strcmp(j->id, ids[i])) j->cancel_queued = 0;
        pthread_mutex_unlock(&s->lock);
    }
}

static void *relay(void *arg)
{
    server *s = arg;
    queue_front *f = s->front;
    while (!atomic_load(&f->stop)) {
        if (!redis_link_ready(&f->relay)) {
            struct timespec pause = {0, 100 * 1000 * 1000};
            nanosleep(&pause, NULL);
            continue;
        }
        pass_cancels(s, f);
        redisReply *r = redis_link_command(&f->relay, "XREAD COUNT 64 BLOCK 250 STREAMS %s:events %s",
                                           f->relay.url.name, f->last_id);
        if (!r) continue;
        /* [[key, [[id, [field, value, ...]], ...]]], or nil after the block */
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2) {
            const redisReply *entries = r->element[0]->element[1];
            for (size_t i = 0; i < entries->elements; i++) {
                const redisReply *e = entries->element[i];
                if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
                    continue;
                if (!apply_event(s, f, e->element[1])) break;
                snprintf(f->last_id, sizeof f->last_id, "%s", e->element[0]->str);
            }
        } else if (r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "canvas serve: XREAD %s:events: %s\n", f->relay.url.name, r->str);
        }
        freeReplyObject(r);
    }
    return NULL;
}

canvas_status queue_front_start(server *s)
{
    queue_url url;
    TRY(queue_parse_url(s->config.queue_url, &url));
    queue_front *f;
    TRY(mem_calloc((void **)&f, 1, sizeof *f, MEM_SCRATCH));
    redis_link_init(&f->submit, &url, "canvas serve");
    redis_link_init(&f->relay, &url, "canvas serve");
    pthread_mutex_init(&f->submit_lock, NULL);
    atomic_init(&f->stop, 0);
    /* events from now on: the last one's id, or the start of an empty stream */
    snprintf(f->last_id, sizeof f->last_id, "0-0");
    redisReply *r = redis_link_command(&f->relay, "XREVRANGE %s:events + - COUNT 1", url.name);
    canvas_status st = CANVAS_OK;
    if (!r) {
        st = status_fail(CANVAS_ERR_IO, "--queue %s: %s", s->config.queue_url, f->relay.error);
    } else {
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->element[0]->type == REDIS_REPLY_STRING)
            snprintf(f->last_id, sizeof f->last_id, "%s", r->element[0]->element[0]->str);
        else if (r->type == REDIS_REPLY_ERROR)
            st = status_fail(CANVAS_ERR_IO, "--queue %s: %s", s->config.queue_url, r->str);
        freeReplyObject(r);
    }
    s->front = f;
    if (st == CANVAS_OK && pthread_create(&f->thread, NULL, relay, s) != 0)
        st = status_fail(CANVAS_ERR_IO, "cannot start the queue's relay thread");
    if (st != CANVAS_OK) {
        redis_link_close(&f->relay);
        pthread_mutex_destroy(&f->submit_lock);
        mem_free(f);
        s->front = NULL;
        return st;
    }
    fprintf(stderr, "canvas serve: jobs go to redis://%s:%d/%s (canvas worker runs them)\n", url.host, url.port, url.name);
    return CANVAS_OK;
}

int queue_front_submit(server *s, const form *fm, int edit, job *j, char *message, size_t message_size)
{
    queue_front *f = s->front;
    uint8_t *payload;
    size_t size;
    if (queue_payload_pack(fm, edit, &payload, &size) != CANVAS_OK) {
        snprintf(message, message_size, "out of memory queueing the job");
        return 507;
    }
    int64_t pixels = queue_job_pixels(j);
    job_free_inputs(j); /* checked; the worker decodes the payload again */
    pthread_mutex_lock(&s->lock);
    int waiting = 0;
    for (const job *k = s->jobs; k; k = k->next) waiting += k->state < JOB_DONE;
    int status = s->stopping ? 503 : waiting >= s->config.queue_max ? 429 : 0;
    if (status == 429) s->jobs_rejected++;
    if (status == 0) { /* in the list before its entry exists: its first event finds it */
        j->refs++;
        j->next = s->jobs;
        s->jobs = j;
        char json[128];
        snprintf(json, sizeof json, "{\"id\":\"%s\",\"position\":%d}", j->id, waiting + 1);
        job_event_locked(s, j, "queued", json);
    }
    pthread_mutex_unlock(&s->lock);
    if (status) {
        mem_free(payload);
        return status;
    }
    char pixels_text[32];
    snprintf(pixels_text, sizeof pixels_text, "%lld", (long long)pixels);
    pthread_mutex_lock(&f->submit_lock);
    redisReply *r = redis_link_command(&f->submit, "XADD %s * job %s pixels %s payload %b", f->submit.url.name, j->id,
                                       pixels_text, payload, size);
    if (!r) /* a connection that went stale while Redis restarted: one fresh try */
        r = redis_link_command(&f->submit, "XADD %s * job %s pixels %s payload %b", f->submit.url.name, j->id,
                               pixels_text, payload, size);
    if (!r || r->type != REDIS_REPLY_STRING)
        snprintf(message, message_size, "the job queue redis://%s:%d/%s cannot take the job (%s): not accepted, retry later",
                 f->submit.url.host, f->submit.url.port, f->submit.url.name,
                 !r ? f->submit.error : r->type == REDIS_REPLY_ERROR ? r->str : "no entry id");
    pthread_mutex_unlock(&f->submit_lock);
    status = r && r->type == REDIS_REPLY_STRING ? 0 : 503;
    if (r) freeReplyObject(r);
    mem_free(payload);
    if (status) {
        pthread_mutex_lock(&s->lock);
        job_finish_locked(s, j, JOB_FAILED, 503, message);
        pthread_mutex_unlock(&s->lock);
    }
    return status;
}

void queue_front_stop(server *s)
{
    queue_front *f = s->front;
    if (!f) return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1; /* no more submissions */
    pthread_mutex_unlock(&s->lock);
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    pthread_mutex_lock(&s->lock);
    for (job *j = s->jobs; j; j = j->next)
        if (j->state < JOB_DONE)
            job_finish_locked(s, j, JOB_FAILED, 503, "the server is shutting down (the job may still complete on a worker)");
    pthread_mutex_unlock(&s->lock);
}

void queue_front_free(server *s)
{
    queue_front *f = s->front;
    if (!f) return;
    redis_link_close(&f->relay);
    redis_link_close(&f->submit);
    pthread_mutex_destroy(&f->submit_lock);
    mem_free(f);
    s->front = NULL;
}
