/* SPDX-License-Identifier: Apache-2.0 */
/* queue_worker.c — `canvas worker`: one open model, jobs from the Redis stream through the
 * consumer group "workers", each run by server_run_job exactly as `canvas serve` runs its own.
 *
 * A job is taken by XAUTOCLAIM (entries another worker left pending longer than the
 * visibility timeout: it died, or handed the job back) before XREADGROUP (new entries); its
 * delivery count decides whether it is tried again or moved to NAME:dead. The result and
 * the "done" event are written by one Lua script that runs once per job id (the first run to
 * finish wins; a second run, or a retry of the same call, writes nothing), before the XACK:
 * a worker dying at any point leaves a job that is either finished or still pending
 * (at-least-once), and no job is said done twice. While a job runs, a thread of the worker's
 * own renews the claim (claim_keeper), so a slow job is not taken from a live worker. */
#define _GNU_SOURCE
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/status.h"
#include "mem/mem.h"
#include "server/queue.h"
#include "server/queue_redis.h"

#define GROUP "workers"

typedef struct worker {
    server *s;
    queue_worker_config config;
    redis_link link;
    const char *name;           /* the stream's key */
    char consumer[128];
    char model[128];            /* the model folder's name, advertised */
    unsigned group_generation;  /* the connection the group was last made on */
    double advertised, cancel_checked; /* clock seconds */
    char entry[64];             /* the stream entry of the running job */
    struct claim_keeper *keeper;
    int skip_claim;             /* the last entry was left for a worker with room: read new ones first */
    atomic_int stop;
} worker;

static void pause_seconds(double seconds)
{
    struct timespec t = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&t, NULL);
}

/* A command whose reply is not needed; 0 when the link failed (an error reply is printed). */
static int run_command(worker *w, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    redisReply *r = redis_link_vcommand(&w->link, format, args);
    va_end(args);
    if (!r) return 0;
    if (r->type == REDIS_REPLY_ERROR) fprintf(stderr, "canvas worker: redis: %s\n", r->str);
    freeReplyObject(r);
    return 1;
}

/* The claim on the running job's entry, renewed every third of the visibility timeout by a
 * thread with a Redis link of its own. Progress events alone cannot keep it: a phase without
 * events (a slow step on a loaded machine) may outlast the timeout, and another worker would
 * then take a job this one is still running. The renewal is a script that claims the entry
 * only while this worker still owns it; one that stalled past the timeout (stopped, swapped
 * out) finds another owner, cancels its run and leaves the job to that worker. */
typedef struct claim_keeper {
    pthread_t thread;
    pthread_mutex_t lock;       /* held while renewing: a hand-back never races a renewal */
    pthread_cond_t wake;
    redis_link link;
    const char *name, *consumer;
    int period_ms;
    char entry[64];             /* "" while no job runs */
    char job[96];               /* its job id */
    int lost, quit;
    server *s;
} claim_keeper;

/* 1 renewed; -1 another worker owns the entry now, or finished the job (its done marker);
 * 0 the entry is not pending and the job not finished (Redis lost its data): the run goes on. */
static const char renew_script[] =
    "local p = redis.call('XPENDING', KEYS[1], '" GROUP "', ARGV[1], ARGV[1], 1) "
    "if p[1] == nil then if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end return 0 end "
    "if p[1][2] ~= ARGV[2] then return -1 end "
    "redis.call('XCLAIM', KEYS[1], '" GROUP "', ARGV[2], 0, ARGV[1], 'JUSTID') "
    "return 1";

static void *keep_claim(void *arg)
{
    claim_keeper *k = arg;
    pthread_mutex_lock(&k->lock);
    while (!k->quit) {
        if (k->entry[0] && !k->lost) {
            redisReply *r = redis_link_command(&k->link, "EVAL %s 2 %s %s:done:%s %s %s", renew_script, k->name, k->name,
                                               k->job, k->entry, k->consumer);
            if (r && r->type == REDIS_REPLY_INTEGER && r->integer < 0) {
                k->lost = 1;
                pthread_mutex_lock(&k->s->lock);
                if (k->s->running) atomic_store(&k->s->running->cancel, 1);
                pthread_mutex_unlock(&k->s->lock);
            } else if (r && r->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "canvas worker: renewing the claim: redis: %s\n", r->str);
            }
            if (r) freeReplyObject(r);
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        long long ns = until.tv_nsec + (long long)k->period_ms * 1000000;
        until.tv_sec += (time_t)(ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&k->wake, &k->lock, &until);
    }
    pthread_mutex_unlock(&k->lock);
    return NULL;
}

static canvas_status claim_keeper_start(worker *w, const queue_url *url)
{
    claim_keeper *k;
    TRY(mem_calloc((void **)&k, 1, sizeof *k, MEM_SCRATCH));
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int ok = pthread_mutex_init(&k->lock, NULL) == 0;
    ok = ok && pthread_cond_init(&k->wake, &attr) == 0;
    pthread_condattr_destroy(&attr);
    redis_link_init(&k->link, url, "canvas worker (claims)");
    k->name = w->name;
    k->consumer = w->consumer;
    k->period_ms = w->config.visibility_ms / 3 > 0 ? w->config.visibility_ms / 3 : 1;
    k->s = w->s;
    if (!ok || pthread_create(&k->thread, NULL, keep_claim, k) != 0) {
        mem_free(k);
        return status_fail(CANVAS_ERR_IO, "cannot start the thread that renews job claims");
    }
    w->keeper = k;
    return CANVAS_OK;
}

static void claim_keeper_stop(worker *w)
{
    claim_keeper *k = w->keeper;
    if (!k) return;
    pthread_mutex_lock(&k->lock);
    k->quit = 1;
    pthread_cond_signal(&k->wake);
    pthread_mutex_unlock(&k->lock);
    pthread_join(k->thread, NULL);
    redis_link_close(&k->link);
    pthread_cond_destroy(&k->wake);
    pthread_mutex_destroy(&k->lock);
    mem_free(k);
    w->keeper = NULL;
}

/* Keep the claim on the running job's entry (NULL: stop keeping it; on return no renewal is
 * in flight, so a hand-back that follows is not undone). Stopping returns 1 when the job was
 * lost to another worker. */
static int keep_claim_on(worker *w, const char *job_id)
{
    claim_keeper *k = w->keeper;
    pthread_mutex_lock(&k->lock);
    int lost = k->lost;
    snprintf(k->entry, sizeof k->entry, "%s", job_id ? w->entry : "");
    snprintf(k->job, sizeof k->job, "%s", job_id ? job_id : "");
    k->lost = 0;
    pthread_cond_signal(&k->wake);
    pthread_mutex_unlock(&k->lock);
    return lost;
}

/* What this worker can run, for fronts and operators: a hash that expires unless renewed. */
static void advertise(worker *w, const char *state, const char *job_id)
{
    char device[32], pixels[32], pid[16];
    snprintf(device, sizeof device, "%llu", (unsigned long long)w->s->snapshot.device_cap_bytes);
    snprintf(pixels, sizeof pixels, "%lld", (long long)w->s->config.max_image_pixels);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    run_command(w, "HSET %s:worker:%s model %s device_bytes %s formats png max_pixels %s pid %s state %s job %s", w->name,
                w->consumer, w->model, device, pixels, pid, state, job_id);
    run_command(w, "EXPIRE %s:worker:%s %d", w->name, w->consumer, 3 * w->config.visibility_ms / 1000 + 5);
    w->advertised = clock_seconds();
}

/* The front passed on a DELETE of the job (NAME:cancel:ID). */
static int cancelled(worker *w, const char *id)
{
    w->cancel_checked = clock_seconds();
    redisReply *r = redis_link_command(&w->link, "EXISTS %s:cancel:%s", w->name, id);
    int yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r) freeReplyObject(r);
    return yes;
}

/* Every job event but the outcome goes to NAME:events as it happens (best effort: a lost
 * progress event is only a gap in the stream); the outcome goes after the result is stored.
 * Called under the server's lock, from the model's thread. */
static void publish_event(server *s, job *j, const char *name, const char *json)
{
    worker *w = s->on_event_ctx;
    if (!strcmp(name, "done") || !strcmp(name, "failed")) return;
    run_command(w, "XADD %s:events MAXLEN ~ 100000 * job %s event %s worker %s data %s", w->name, j->id, name,
                w->consumer, json);
    double now = clock_seconds();
    if (now - w->advertised > 5) advertise(w, "running", j->id);
    if (now - w->cancel_checked > 0.25 && cancelled(w, j->id)) atomic_store(&j->cancel, 1);
}

static int publish_outcome(worker *w, const char *id, const char *event, int status, const char *reason)
{
    char code[16], data[96];
    snprintf(code, sizeof code, "%d", status);
    snprintf(data, sizeof data, "{\"id\":\"%s\"}", id);
    return run_command(w, "XADD %s:events MAXLEN ~ 100000 * job %s event %s data %s status %s reason %s", w->name, id,
                       event, data, code, reason);
}

/* The job is finished for good: acknowledged and deleted from the stream (its payload). */
static int retire(worker *w, const char *id)
{
    return run_command(w, "XACK %s " GROUP " %s", w->name, w->entry) && run_command(w, "XDEL %s %s", w->name, w->entry) &&
           run_command(w, "HDEL %s:failures %s", w->name, id);
}

/* Leave the job pending for another worker: reclaimable by XAUTOCLAIM now (`counted` 0:
 * this delivery does not count as a try). */
static void hand_back(worker *w, long long deliveries, int counted)
{
    char idle[32], count[32];
    snprintf(idle, sizeof idle, "%d", w->config.visibility_ms);
    snprintf(count, sizeof count, "%lld", counted ? deliveries : deliveries > 0 ? deliveries - 1 : 0);
    run_command(w, "XCLAIM %s " GROUP " %s 0 %s IDLE %s RETRYCOUNT %s JUSTID", w->name, w->consumer, w->entry, idle, count);
}

/* The result and the "done" event, written together once per job id: the first call for
 * the id stores the PNG and a marker naming its caller (`token`), counts `stored` and adds
 * the event; a later call writes nothing and answers 1 when the marker is its own (a retry
 * of the same call whose answer was lost), 0 when another run finished the job first. */
static const char finish_script[] =
    "local owner = redis.call('GET', KEYS[2]) "
    "if owner then if owner == ARGV[3] then return 1 end return 0 end "
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
    "redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[2]) "
    "redis.call('HINCRBY', KEYS[4], 'stored', 1) "
    "redis.call('XADD', KEYS[3], 'MAXLEN', '~', '100000', '*', 'job', ARGV[4], 'event', 'done', 'data', '{}') "
    "return 1";

static void attempt_failed(worker *w, const char *id, long long deliveries, int status, const char *reason);

/* Store the PNG and say done (finish_script), then acknowledge; each step retried across a
 * Redis restart for up to a minute, else the job stays pending and another worker redoes it. */
static void finish_done(worker *w, job *j, long long deliveries)
{
    double give_up = clock_seconds() + 60;
    redisReply *r = NULL;
    char ttl[16], token[256], result[256], marker[256], events[160], stats[160];
    snprintf(ttl, sizeof ttl, "%d", w->config.result_ttl_seconds);
    snprintf(token, sizeof token, "%s %s %lld", w->consumer, w->entry, deliveries);
    snprintf(result, sizeof result, "%s:result:%s", w->name, j->id);
    snprintf(marker, sizeof marker, "%s:done:%s", w->name, j->id);
    snprintf(events, sizeof events, "%s:events", w->name);
    snprintf(stats, sizeof stats, "%s:stats", w->name);
    while (!atomic_load(&w->stop) && clock_seconds() < give_up) {
        r = redis_link_command(&w->link, "EVAL %s 4 %s %s %s %s %b %s %s %s", finish_script, result, marker, events,
                               stats, j->png, j->png_size, ttl, token, j->id);
        if (r) break;
        pause_seconds(0.2);
    }
    if (!r) {
        fprintf(stderr, "canvas worker: job %s: its result could not be stored (%s); left pending\n", j->id, w->link.error);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) { /* e.g. Redis out of memory: a failed try, retried */
        char reason[300];
        snprintf(reason, sizeof reason, "its result could not be stored in Redis: %s", r->str);
        freeReplyObject(r);
        attempt_failed(w, j->id, deliveries, 507, reason);
        return;
    }
    int stored = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (!stored) run_command(w, "HINCRBY %s:stats duplicates 1", w->name);
    while (clock_seconds() < give_up) {
        if (retire(w, j->id)) return;
        pause_seconds(0.2);
    }
}

/* Move a job that failed too often to NAME:dead, with its last reason, and tell the front. */
static void dead_letter(worker *w, const char *id, long long deliveries, const char *payload, size_t payload_size)
{
    char reason[600] = "", count[32];
    int status = 500;
    redisReply *r = redis_link_command(&w->link, "HGET %s:failures %s", w->name, id);
    if (r && r->type == REDIS_REPLY_STRING) {
        char *space = strchr(r->str, ' ');
        status = atoi(r->str);
        snprintf(reason, sizeof reason, "%s", space ? space + 1 : r->str);
    }
    if (r) freeReplyObject(r);
    if (!reason[0]) snprintf(reason, sizeof reason, "its worker stopped before finishing it");
    snprintf(count, sizeof count, "%lld", deliveries - 1);
    char message[700];
    snprintf(message, sizeof message, "failed %lld times: %s", deliveries - 1, reason);
    if (!run_command(w, "XADD %s:dead * job %s reason %s tries %s payload %b", w->name, id, reason, count, payload,
                     payload_size))
        return;
    publish_outcome(w, id, "failed", status < 400 || status > 599 ? 500 : status, message);
    retire(w, id);
    fprintf(stderr, "canvas worker: job %s moved to %s:dead after %lld tries: %s\n", id, w->name, deliveries - 1, reason);
}

/* One attempt failed: its reason kept for the dead letter, the job handed back for a retry. */
static void attempt_failed(worker *w, const char *id, long long deliveries, int status, const char *reason)
{
    char value[600];
    snprintf(value, sizeof value, "%d %s", status, reason);
    run_command(w, "HSET %s:failures %s %s", w->name, id, value);
    char json[700];
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"try\":%lld,\"of\":%d}", id, deliveries, w->config.max_tries);
    run_command(w, "XADD %s:events MAXLEN ~ 100000 * job %s event retry data %s", w->name, id, json);
    hand_back(w, deliveries, 1);
    fprintf(stderr, "canvas worker: job %s: try %lld of %d failed: %s\n", id, deliveries, w->config.max_tries, reason);
}

static int valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= sizeof ((job *)0)->id) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-')) return 0;
    return 1;
}

/* Run one entry ([id, [field, value, ...]]). */
static void take(worker *w, const redisReply *e)
{
    snprintf(w->entry, sizeof w->entry, "%s", e->element[0]->str);
    const redisReply *fields = e->element[1];
    char id[96] = "";
    const char *payload = NULL;
    size_t payload_size = 0;
    long long pixels = 0;
    for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        if (!strcmp(k->str, "job")) snprintf(id, sizeof id, "%s", v->str);
        else if (!strcmp(k->str, "pixels")) pixels = atoll(v->str);
        else if (!strcmp(k->str, "payload")) payload = v->str, payload_size = v->len;
    }
    int bad_id = !valid_id(id);
    if (bad_id) snprintf(id, sizeof id, "entry-%s", w->entry); /* still dead-lettered, by its entry */
    long long deliveries = 1;
    redisReply *r = redis_link_command(&w->link, "XPENDING %s " GROUP " %s %s 1", w->name, w->entry, w->entry);
    if (!r) return; /* the link failed: the entry stays pending, reclaimed later */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 4)
        deliveries = r->element[0]->element[3]->integer;
    freeReplyObject(r);
    if (deliveries > w->config.max_tries) {
        dead_letter(w, id, deliveries, payload ? payload : "", payload ? payload_size : 0);
        return;
    }
    r = redis_link_command(&w->link, "EXISTS %s:done:%s", w->name, id);
    if (!r) return;
    int finished = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (finished) { /* a worker finished it (result and event) and died before acknowledging */
        retire(w, id);
        return;
    }
    if (cancelled(w, id)) {
        publish_outcome(w, id, "cancelled", 409, "cancelled by DELETE before it started");
        retire(w, id);
        return;
    }
    if (pixels > w->s->config.max_image_pixels) { /* for a worker with room (docs/scale-out.md) */
        hand_back(w, deliveries, 0);
        w->skip_claim = 1; /* not straight back to this worker: it reads new entries first */
        fprintf(stderr, "canvas worker: job %s asks for %lld pixels, over this worker's --max-pixels %lld: left to another\n",
                id, pixels, (long long)w->s->config.max_image_pixels);
        return;
    }
    form f;
    int edit = 0;
    if (bad_id) {
        attempt_failed(w, id, deliveries, 400, "the entry has no valid job id (field job: a-z, 0-9, '-')");
        return;
    }
    if (!payload || queue_payload_unpack((const uint8_t *)payload, payload_size, &f, &edit) != CANVAS_OK) {
        attempt_failed(w, id, deliveries, 400, payload ? canvas_last_error() : "the entry has no payload");
        status_clear();
        return;
    }
    job *j;
    if (job_create(w->s, &j) != CANVAS_OK) {
        attempt_failed(w, id, deliveries, 507, "out of memory creating the job");
        return;
    }
    memcpy(j->id, id, strlen(id) + 1); /* valid_id: shorter than j->id */
    char message[600];
    int status = job_from_form(w->s, &f, edit, j, message, sizeof message);
    advertise(w, "running", id);
    keep_claim_on(w, id);
    if (status == 0) server_run_job(w->s, j);
    int lost = keep_claim_on(w, NULL);
    if (lost && (status || j->state != JOB_DONE))
        fprintf(stderr, "canvas worker: job %s: another worker took it while this one was stalled past --visibility; "
                        "left to it\n", id);
    else if (status) attempt_failed(w, id, deliveries, status, message);
    else if (j->state == JOB_DONE) finish_done(w, j, deliveries);
    else if (j->state == JOB_CANCELLED && atomic_load(&w->stop)) hand_back(w, deliveries, 0); /* for another worker */
    else if (j->state == JOB_CANCELLED && publish_outcome(w, id, "cancelled", 409, "cancelled by DELETE")) retire(w, id);
    else attempt_failed(w, id, deliveries, j->http_status, j->error);
    pthread_mutex_lock(&w->s->lock);
    job_free_inputs(j);
    job_release_locked(j);
    pthread_mutex_unlock(&w->s->lock);
    advertise(w, "idle", "");
}

/* The next entry: one left pending past the visibility timeout, else a new one (blocking up
 * to a second). NULL when none (or the link failed); else the reply holding it in *entry. */
static redisReply *next_entry(worker *w, const redisReply **entry)
{
    char idle[32];
    snprintf(idle, sizeof idle, "%d", w->config.visibility_ms);
    redisReply *r = NULL;
    if (!w->skip_claim) {
        r = redis_link_command(&w->link, "XAUTOCLAIM %s " GROUP " %s %s 0-0 COUNT 1", w->name, w->consumer, idle);
        if (!r) return NULL;
    }
    w->skip_claim = 0;
    /* [next cursor, [[id, fields]], [deleted ids]] */
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[1]->type == REDIS_REPLY_ARRAY &&
        r->element[1]->elements > 0 && r->element[1]->element[0]->type == REDIS_REPLY_ARRAY) {
        *entry = r->element[1]->element[0];
        return r;
    }
    if (r) freeReplyObject(r);
    r = redis_link_command(&w->link, "XREADGROUP GROUP " GROUP " %s COUNT 1 BLOCK 1000 STREAMS %s >", w->consumer, w->name);
    if (!r) return NULL;
    /* [[key, [[id, fields]]]], or nil after the block */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2 &&
        r->element[0]->element[1]->elements > 0) {
        *entry = r->element[0]->element[1]->element[0];
        return r;
    }
    if (r->type == REDIS_REPLY_ERROR) { /* NOGROUP: a Redis that lost its data; the group is made again */
        fprintf(stderr, "canvas worker: XREADGROUP %s: %s\n", w->name, r->str);
        w->group_generation = 0;
        pause_seconds(1);
    }
    freeReplyObject(r);
    return NULL;
}

/* SIGTERM / SIGINT: stop taking jobs, and cancel the running one at its next step (it is
 * handed back, not counted as a try). */
static void *wait_signal(void *arg)
{
    worker *w = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1); /* the worker's own wake-up at a clean stop */
    int number = 0;
    sigwait(&set, &number);
    atomic_store(&w->stop, 1);
    pthread_mutex_lock(&w->s->lock);
    if (w->s->running) atomic_store(&w->s->running->cancel, 1);
    pthread_mutex_unlock(&w->s->lock);
    if (number != SIGUSR1) fprintf(stderr, "canvas worker: %s: stopping\n", number == SIGINT ? "SIGINT" : "SIGTERM");
    return NULL;
}

canvas_status queue_worker_run(const server_config *server_config, const queue_worker_config *config)
{
    queue_url url;
    TRY(queue_parse_url(server_config->queue_url, &url));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    worker *w;
    TRY(mem_calloc((void **)&w, 1, sizeof *w, MEM_SCRATCH));
    w->config = *config;
    atomic_init(&w->stop, 0);
    redis_link_init(&w->link, &url, "canvas worker");
    w->name = w->link.url.name;
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    if (config->name) snprintf(w->consumer, sizeof w->consumer, "%s", config->name);
    else snprintf(w->consumer, sizeof w->consumer, "%s-%d", host, (int)getpid());
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", server_config->model_dir);
    snprintf(w->model, sizeof w->model, "%s", basename(dir));
    canvas_status st = server_create(server_config, 1, &w->s);
    if (st == CANVAS_OK) st = claim_keeper_start(w, &url);
    pthread_t signals;
    if (st == CANVAS_OK && pthread_create(&signals, NULL, wait_signal, w) != 0)
        st = status_fail(CANVAS_ERR_IO, "cannot start the signal thread");
    if (st != CANVAS_OK) {
        claim_keeper_stop(w);
        if (w->s) server_destroy(w->s);
        mem_free(w);
        return st;
    }
    w->s->on_event = publish_event;
    w->s->on_event_ctx = w;
    fprintf(stderr, "canvas worker: %s takes jobs from redis://%s:%d/%s (group " GROUP ")\n", w->consumer, url.host,
            url.port, url.name);
    while (!atomic_load(&w->stop)) {
        if (!redis_link_ready(&w->link)) {
            pause_seconds(0.1);
            continue;
        }
        if (w->group_generation != w->link.generation) { /* a new connection: maybe a new Redis */
            redisReply *r = redis_link_command(&w->link, "XGROUP CREATE %s " GROUP " 0 MKSTREAM", w->name);
            if (!r) continue;
            if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9))
                fprintf(stderr, "canvas worker: XGROUP CREATE %s: %s\n", w->name, r->str);
            freeReplyObject(r);
            w->group_generation = w->link.generation;
            advertise(w, "idle", "");
        }
        if (clock_seconds() - w->advertised > 5) advertise(w, "idle", "");
        const redisReply *entry = NULL;
        redisReply *r = next_entry(w, &entry);
        if (!r) continue;
        if (entry->elements == 2 && entry->element[0]->type == REDIS_REPLY_STRING) take(w, entry);
        freeReplyObject(r);
    }
    run_command(w, "DEL %s:worker:%s", w->name, w->consumer);
    pthread_kill(signals, SIGUSR1);
    pthread_join(signals, NULL);
    claim_keeper_stop(w);
    redis_link_close(&w->link);
    server_destroy(w->s);
    mem_free(w);
    return CANVAS_OK;
}
