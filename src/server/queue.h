/* SPDX-License-Identifier: Apache-2.0 */
/* queue.h — scale-out over Redis Streams (docs/scale-out.md): `canvas serve --queue
 * redis://HOST:PORT/NAME` adds each job to the stream NAME instead of running it, and
 * `canvas worker`s take the jobs with a consumer group, run them through the server's own
 * job code (server_run_job) and publish events and results back through Redis.
 *
 * Keys (NAME the stream): NAME (jobs: fields job, pixels, payload), NAME:events (every job's
 * events: job, event, data; progress events also name the worker; outcomes add status, reason), NAME:result:ID (the PNG, set once, with a TTL), NAME:dead (jobs
 * that failed --max-tries times: job, reason, deliveries, payload), NAME:failures (hash: the
 * last failure of each job still being tried), NAME:worker:CONSUMER (what a live worker can
 * run, with a TTL), NAME:stats (hash: results stored, duplicates not stored), NAME:cancel:ID
 * (set by the front when a job is cancelled; workers stop the job).
 *
 * The front and the worker need hiredis; without it (CMake found no hiredis) the functions
 * below that talk to Redis fail with CANVAS_ERR_UNSUPPORTED saying so. */
#ifndef CANVAS_SERVER_QUEUE_H
#define CANVAS_SERVER_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "server/server_internal.h"

typedef struct queue_url {
    char host[256];
    int port;
    char name[128];             /* the stream's key: letters, digits, '-', '_', '.' */
} queue_url;

/* Parse "redis://HOST:PORT/NAME" (HOST a name or IPv4 address; PORT 1 to 65535).
 * CANVAS_ERR_USAGE naming the text. */
canvas_status queue_parse_url(const char *text, queue_url *out);

/* A request's form as one job payload (mem_alloc'd): its kind (`edit` as job_from_form takes
 * it) and every field, each value followed by a NUL so that queue_payload_unpack hands back
 * NUL-terminated text in place. CANVAS_ERR_OUT_OF_MEMORY. */
canvas_status queue_payload_pack(const form *f, int edit, uint8_t **out, size_t *out_size);
/* The form back from a payload: fields point into `payload`, which must stay alive.
 * CANVAS_ERR_INPUT naming what is malformed (every length is checked against the size). */
canvas_status queue_payload_unpack(const uint8_t *payload, size_t size, form *out, int *edit);

/* The pixels a job asks for (its output size, else its vae_area, else 1024 x 1024): what a
 * worker compares with its --max-pixels before taking the job. */
int64_t queue_job_pixels(const job *j);

/* ---- the front (queue_front.c): `canvas serve --queue URL` ---- */

/* Connect (one try: the front starts only with Redis reachable) and start the relay thread
 * that applies the workers' events to the front's jobs. s->config.queue_url names the queue. */
canvas_status queue_front_start(server *s);
/* Queue a validated job: keep it in the front's list (state queued, refs taken) and add its
 * payload to the stream. Returns 0, 503 with `message` when Redis cannot take it (the job is
 * then not accepted), 429 when the front already waits on queue_max jobs. */
int queue_front_submit(server *s, const form *f, int edit, job *j, char *message, size_t message_size);
/* Stop taking jobs and the relay; every job still waiting fails 503 (it may still complete
 * on a worker). */
void queue_front_stop(server *s);
/* Close the connections and free the front (after the HTTP threads have stopped). */
void queue_front_free(server *s);

/* ---- the worker (queue_worker.c): `canvas worker` ---- */

typedef struct queue_worker_config {
    const char *name;           /* the consumer's name; NULL: HOSTNAME-PID */
    int visibility_ms;          /* a job pending this long on a silent worker is reclaimed */
    int max_tries;              /* deliveries before a job goes to NAME:dead */
    int result_ttl_seconds;     /* results and events live this long in Redis */
} queue_worker_config;

/* 30 s visibility, 3 tries, results kept a day. */
void queue_worker_config_default(queue_worker_config *config);

/* Open the model (server_config; its queue_url names the queue), then take, run and acknowledge jobs until SIGTERM or
 * SIGINT; Redis going away is waited out with bounded backoff. CANVAS_OK after a clean stop. */
canvas_status queue_worker_run(const server_config *server_config, const queue_worker_config *config);

#endif
