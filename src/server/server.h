/* SPDX-License-Identifier: Apache-2.0 */
/* server.h — `canvas serve`: one open model behind an HTTP API (docs/server.md).
 *
 * A program-level layer above api/ (linked into the canvas CLI, not into libcanvas): it
 * uses the public API only for the model. One worker thread owns the model and takes jobs
 * from a bounded FIFO; the HTTP threads (libmicrohttpd, a thread per connection) parse
 * requests, decode images and read prompt embeddings, and never touch the model: what they
 * report about it (memory, profile, progress) is what the worker published under the
 * server's lock. Unlike the library, this layer writes a few lines to stdout (the bound
 * address) and stderr (start, stop, failed jobs). */
#ifndef CANVAS_SERVER_SERVER_H
#define CANVAS_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"

typedef struct server_config {
    const char *model_dir;
    canvas_options options;     /* how the model is opened (memory caps, planner) */
    const char *listen;         /* "HOST:PORT", an IPv4 address; port 0 picks a free one */
    const char *api_key;        /* NULL: none (then only a loopback address may be bound) */
    int queue_max;              /* jobs waiting behind the running one; more answer 429 */
    size_t max_body_bytes;      /* a request body over this answers 413 */
    int64_t max_image_pixels;   /* each decoded reference image, and the output size */
    int jobs_kept;              /* finished jobs kept for GET /v1/jobs/{id} */
    double job_ttl_seconds;     /* ... and for at most this long */
    int default_steps;          /* steps when a request gives none (0: the pipeline's 50) */
    const char *report_path, *trace_path; /* NULL, or written at stop: the last job's profile */
    const char *lora_dir;       /* NULL, or a folder whose *.safetensors LoRAs requests name (field
                                   `lora`): each one known by its file name without the extension,
                                   checked and kept at strength 0 (not merged) until a job names it */
    const char *queue_url;      /* NULL: jobs run here; "redis://HOST:PORT/NAME": on `canvas worker`s
                                   (server/queue.h, docs/scale-out.md), the model is not opened */
} server_config;

/* 127.0.0.1:8188, no key, queue 16, 64 MiB bodies, 2^24 pixels, 256 jobs kept for an hour. */
void server_config_default(server_config *config);

/* Parse "HOST:PORT" (HOST an IPv4 address or "localhost"). Fills the address in network
 * order; CANVAS_ERR_USAGE naming the text. *loopback is 1 for 127.0.0.0/8. */
canvas_status server_parse_listen(const char *text, uint32_t *address, uint16_t *port, int *loopback);

/* Open the model, listen, print "canvas serve: listening on http://HOST:PORT" on stdout,
 * serve until SIGTERM or SIGINT, then cancel the running job at its next step boundary,
 * answer the queued ones 503, stop and close. CANVAS_OK after a clean stop; otherwise the
 * failure to open the model or to listen. Blocks SIGTERM and SIGINT in the calling thread. */
canvas_status server_run(const server_config *config);

#endif
