/* SPDX-License-Identifier: Apache-2.0 */
/* server_internal.h — what the server's files share: the server, its jobs, the request
 * form. Locking: every field of `server` and of a queued / running / finished job that more
 * than one thread reads is guarded by server.lock; `changed` is broadcast whenever a job
 * gains an event or finishes, the queue moves, or the server starts stopping, and every
 * waiter (a synchronous request, an event stream) re-checks what it waits for. */
#ifndef CANVAS_SERVER_SERVER_INTERNAL_H
#define CANVAS_SERVER_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "server/server.h"

#define SERVER_MAX_IMAGES 16
#define SERVER_MAX_LORAS 16
#define SERVER_MAX_EVENTS 4096      /* per job; later step events are dropped, the last is kept */
#define SERVER_MEMORY_SAMPLES 512   /* the live memory chart's ring */
#define SERVER_STEP_BUCKETS 10

typedef enum job_state { JOB_QUEUED = 0, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED } job_state;

const char *job_state_name(job_state state);

typedef struct job {
    char id[24];
    struct job *next;           /* the server's list of jobs, newest first */
    int refs;                   /* the list's and each request's that reads it */
    job_state state;
    int generate;               /* 1: text to image (no references) */
    /* the request (the worker's alone once queued) */
    canvas_edit_params params;
    char *prompt_text, *negative_text;  /* text prompt (NULL: embeddings) */
    canvas_prompt embeds;
    canvas_image images[SERVER_MAX_IMAGES];
    int n_images;
    float lora_scales[SERVER_MAX_LORAS]; /* this job's strength of each of the server's LoRAs */
    atomic_int cancel;          /* DELETE, or the server stopping */
    int cancel_queued;          /* a front's: the cancel was passed on to the workers (queue_front.c) */
    /* progress and result (under the lock) */
    double created, started, finished;
    int step, steps;
    double seconds_per_step;
    char plan[512];
    int fallbacks;
    char **events;              /* SSE frames, in order */
    int n_events, cap_events;
    uint8_t *png;
    size_t png_size;
    int width, height;
    int http_status;            /* failed / cancelled: the status a synchronous request answers */
    char error[512];
} job;

typedef struct memory_sample {
    double seconds;
    uint64_t device_bytes, host_bytes, pinned_bytes;
    char phase[24];
    int fallback;
} memory_sample;

typedef struct server {
    server_config config;
    int has_text_encoder;
    char tmp_dir[256];          /* private scratch (PNG writes, prompt embeddings), removed at stop */
    double started;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    job *jobs;                  /* every kept job, newest first */
    job **queue;                /* ring of queue_max */
    int queue_head, queue_len;
    job *running;
    int stopping;
    int active_requests;        /* from a request's first call to its completion (the answer sent) */
    uint64_t next_job;
    canvas_model *model;        /* the worker's alone after open */
    /* the LoRAs: --lora files first (at their strength), then --lora-dir's (at 0), by name */
    int n_loras;
    canvas_lora loras[SERVER_MAX_LORAS];
    char lora_paths[SERVER_MAX_LORAS][4096];
    char lora_names[SERVER_MAX_LORAS][256];
    float lora_defaults[SERVER_MAX_LORAS]; /* a job's strengths unless it says otherwise */
    float lora_scales[SERVER_MAX_LORAS]; /* what the model's LoRAs are merged at now (the worker's) */
    /* settings the worker applies between jobs (strategy) or at the next event (vram) */
    char pending_strategy[96];
    int pending_allow_quantize, have_pending_strategy;
    char strategy[96];
    uint64_t pending_vram;
    int have_pending_vram;
    /* what the worker published */
    canvas_memory_snapshot snapshot;
    uint64_t pinned_bytes, pinned_peak_bytes;
    char *profile_json;         /* phases of the last job, a JSON array */
    memory_sample samples[SERVER_MEMORY_SAMPLES];
    int n_samples, sample_head;
    double last_job_seconds;
    /* counters (/metrics) */
    uint64_t jobs_done, jobs_failed, jobs_cancelled, jobs_rejected, fallbacks, requests;
    uint64_t step_buckets[SERVER_STEP_BUCKETS + 1];
    double step_seconds_sum;
    uint64_t step_count;
    /* scale-out (server/queue.h): the front's Redis side (NULL: jobs run here), and a hook
     * every job event goes to (`canvas worker` publishes them; called under the lock) */
    struct queue_front *front;
    void (*on_event)(struct server *s, job *j, const char *name, const char *json);
    void *on_event_ctx;
} server;

extern const double server_step_bucket_bounds[SERVER_STEP_BUCKETS];

/* ---- jobs (server_jobs.c) ---- */

/* A new job (refs 1: the caller's) with its id; CANVAS_ERR_OUT_OF_MEMORY. */
canvas_status job_create(server *s, job **out);
/* Drop one reference (under the lock); the last frees it. */
void job_release_locked(job *j);
/* Free a job's inputs (images, prompt) once they are no longer needed. */
void job_free_inputs(job *j);
/* Queue a new job: 0 when queued (the list holds it), 429 when full, 503 when stopping. */
int job_submit(server *s, job *j);
/* Find a kept job by id and take a reference (NULL: unknown). */
job *job_find_locked(server *s, const char *id);
/* DELETE: a queued job is cancelled at once, a running one at its next step boundary.
 * Returns the HTTP status: 202 running, 200 queued, 409 finished. */
int job_cancel_locked(server *s, job *j);
/* Append an SSE frame "event: NAME / data: JSON" (under the lock; broadcasts). */
void job_event_locked(server *s, job *j, const char *name, const char *json);
/* The job's JSON (GET /v1/jobs/{id}), mem_alloc'd; NULL when out of memory. */
char *job_describe_locked(const server *s, const job *j);
/* Finish a job (under the lock): its state, outcome event ("done" or "failed") and counters. */
void job_finish_locked(server *s, job *j, job_state state, int http_status, const char *reason);
/* The worker thread: runs queued jobs until the server stops. */
void *server_worker(void *arg);
/* Run one job on the model (without the lock; the worker thread's body, and `canvas worker`'s
 * for each job from the queue): the started event, a pending strategy switch, the job's LoRA
 * strengths, the run and its outcome; the job's inputs are freed after. */
void server_run_job(server *s, job *j);
/* Stop: cancel the running job, fail the queued ones with 503, wake every waiter. */
void server_stop_jobs(server *s);

/* ---- the server's life (server.c) ---- */

/* The server's state: scratch folder, lock, queue; the model opened when `open_model`. */
canvas_status server_create(const server_config *config, int open_model, server **out);
/* Free it (every job, the model, the scratch folder). */
void server_destroy(server *s);

/* ---- the request form (server_form.c) ---- */

typedef struct form_field {
    char name[64];
    char filename[128];         /* "" for a plain field */
    const char *data;           /* into the request body (NUL-terminated copy for text fields) */
    size_t size;
} form_field;

#define FORM_MAX_FIELDS 64
typedef struct form {
    form_field fields[FORM_MAX_FIELDS];
    int n;
    char *owned;                /* JSON bodies: the values as text (mem_alloc'd) */
} form;

/* multipart/form-data: the body is split in place (it must stay alive and writable).
 * CANVAS_ERR_USAGE naming what is malformed. */
canvas_status form_parse_multipart(const char *content_type, char *body, size_t size, form *out);
/* A JSON object of strings, numbers and booleans (no nesting deeper than max_depth).
 * CANVAS_ERR_USAGE naming the field or position. */
canvas_status form_parse_json(const char *body, size_t size, int max_depth, form *out);
void form_free(form *f);

/* Turn a form into a job's request (decoded images, prompt, params). Returns 0, or the HTTP
 * status (400, 413) with *message set. `edit` 1: references required, -1: forbidden,
 * 0: either (jobs). */
int job_from_form(server *s, const form *f, int edit, job *j, char *message, size_t message_size);

/* ---- text helpers (server_text.c) ---- */

/* Base64 of bytes (mem_alloc'd, NUL-terminated); NULL when out of memory. */
char *base64_encode(const uint8_t *bytes, size_t size);
/* A growing text buffer; `failed` sticks after an allocation failed. */
typedef struct text_buf {
    char *data;
    size_t len, cap;
    int failed;
} text_buf;
void text_printf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append `text` as a JSON string literal. */
void text_json_string(text_buf *b, const char *text);
/* The buffer's text, handed over (NULL when an allocation failed; then freed). */
char *text_take(text_buf *b);

/* The HTTP status for a failed library call. */
int server_http_status(canvas_status status);

#endif
