/* SPDX-License-Identifier: Apache-2.0 */
/* server_http.c — the HTTP side (libmicrohttpd, a thread per connection): bodies collected
 * under a size limit, the API key, routing, JSON errors, the synchronous OpenAI endpoints,
 * jobs, and the event stream. Nothing here touches the model. */
#define _GNU_SOURCE
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "base/clock.h"
#include "base/size_parse.h"
#include "base/status.h"
#include "mem/mem.h"
#include "plan/plan.h"
#include "server/queue.h"
#include "server/server_http.h"
#include "server/server_internal.h"

#define JSON_MAX_DEPTH 8

typedef struct request {
    char *body;
    size_t size, cap;
    int too_large;
} request;

/* ---- replies --------------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *type, const void *data, size_t size,
                             const char *header, const char *value)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(size, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (header) MHD_add_response_header(r, header, value);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, int status, const char *json)
{
    if (!json) json = "{\"error\":{\"message\":\"out of memory building the answer\",\"type\":\"server_error\",\"code\":507}}";
    return reply(c, status, "application/json", json, strlen(json), NULL, NULL);
}

/* {"error": {"message", "type", "code"}} as OpenAI's API shapes its errors. */
static enum MHD_Result reply_error_header(struct MHD_Connection *c, int status, const char *message, const char *header,
                                          const char *value)
{
    const char *type = status == 401 ? "authentication_error"
                       : status == 429 ? "rate_limit_error"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    text_buf b = {0};
    text_printf(&b, "{\"error\":{\"message\":");
    text_json_string(&b, message);
    text_printf(&b, ",\"type\":\"%s\",\"code\":%d}}", type, status);
    char *json = text_take(&b);
    const char *text = json ? json : "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"code\":500}}";
    enum MHD_Result ret = reply(c, status, "application/json", text, strlen(text), header, value);
    mem_free(json);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, int status, const char *message)
{
    return reply_error_header(c, status, message, NULL, NULL);
}

static enum MHD_Result reply_taken(struct MHD_Connection *c, int status, char *json)
{
    enum MHD_Result ret = json ? reply_json(c, status, json) : reply_error(c, 500, "out of memory building the answer");
    mem_free(json);
    return ret;
}

/* ---- bodies ---------------------------------------------------------------------------- */

static canvas_status body_append(request *r, const char *data, size_t n)
{
    if (r->size + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 65536;
        while (cap < r->size + n + 1) cap *= 2;
        void *block = r->body;
        TRY(block ? mem_realloc(&block, cap, MEM_SCRATCH) : mem_alloc(&block, cap, MEM_SCRATCH));
        r->body = block;
        r->cap = cap;
    }
    memcpy(r->body + r->size, data, n);
    r->size += n;
    r->body[r->size] = '\0';
    return CANVAS_OK;
}

/* The request's fields from its multipart or JSON body; 0 or the HTTP status after replying. */
static int read_form(struct MHD_Connection *c, request *r, form *f, enum MHD_Result *ret)
{
    const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!r->body && body_append(r, "", 0) != CANVAS_OK) {
        *ret = reply_error(c, 507, "out of memory reading the request");
        return 507;
    }
    canvas_status st;
    if (type && !strncasecmp(type, "multipart/form-data", 19)) {
        st = form_parse_multipart(type, r->body, r->size, f);
    } else if (type && !strncasecmp(type, "application/json", 16)) {
        st = form_parse_json(r->body, r->size, JSON_MAX_DEPTH, f);
    } else {
        *ret = reply_error(c, 415, "Content-Type must be multipart/form-data or application/json");
        return 415;
    }
    if (st != CANVAS_OK) {
        int status = st == CANVAS_ERR_OUT_OF_MEMORY ? 507 : 400;
        *ret = reply_error(c, status, canvas_last_error());
        status_clear();
        return status;
    }
    return 0;
}

/* ---- jobs ------------------------------------------------------------------------------- */

static enum MHD_Result reply_queue_full(server *s, struct MHD_Connection *c)
{
    pthread_mutex_lock(&s->lock);
    double wait = (s->last_job_seconds > 1 ? s->last_job_seconds : 1) * (s->queue_len + 1);
    pthread_mutex_unlock(&s->lock);
    char retry[32], message[128];
    snprintf(retry, sizeof retry, "%.0f", wait < 3600 ? wait + 0.5 : 3600);
    snprintf(message, sizeof message, "the queue is full (%d jobs waiting): retry later", s->config.queue_max);
    return reply_error_header(c, 429, message, MHD_HTTP_HEADER_RETRY_AFTER, retry);
}

/* 1 when the client of `c` has closed its end or reset it (a read would see end-of-file or an
 * error), 0 while it is there or sent more (a pipelined request). Checked while a synchronous
 * request waits: nobody is left to answer, so its job is cancelled. A client that half-closes
 * its sending side after the request counts as gone (HTTP clients do not do that). */
static int client_gone(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info) return 0;
    char byte;
    ssize_t n = recv(info->connect_fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* The OpenAI answer for a finished job: {"created", "data": [{"b64_json"}]} or its error. A
 * client that goes away while it waits cancels the job (at its next step boundary, as DELETE)
 * and gets no answer. */
static enum MHD_Result reply_finished(server *s, struct MHD_Connection *c, job *j)
{
    pthread_mutex_lock(&s->lock);
    int cancelled = 0;
    double checked = clock_seconds();
    while (j->state < JOB_DONE) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += 200 * 1000 * 1000; /* a disconnect is noticed within 0.2 s */
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->changed, &s->lock, &deadline); /* woken at every event, too */
        if (cancelled || clock_seconds() - checked < 0.2) continue;
        checked = clock_seconds();
        if (client_gone(c)) {
            job_cancel_locked(s, j);
            cancelled = 1;
            fprintf(stderr, "canvas serve: job %s: the client disconnected: cancelled\n", j->id);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (cancelled) return MHD_NO; /* close the connection: nobody reads an answer */
    /* finished: the job's result no longer changes */
    if (j->state != JOB_DONE) return reply_error(c, j->http_status, j->error);
    char *b64 = base64_encode(j->png, j->png_size);
    text_buf b = {0};
    text_printf(&b, "{\"created\":%lld,\"data\":[{\"b64_json\":\"%s\"}],\"id\":\"%s\",\"size\":\"%dx%d\","
                    "\"seed\":%llu,\"steps\":%d}",
                (long long)time(NULL), b64 ? b64 : "", j->id, j->width, j->height,
                (unsigned long long)j->params.seed, j->params.steps);
    int encoded = b64 != NULL;
    mem_free(b64);
    if (!encoded) {
        mem_free(text_take(&b));
        return reply_error(c, 507, "out of memory encoding the image");
    }
    return reply_taken(c, 200, text_take(&b));
}

/* POST /v1/images/edits (edit 1), /v1/images/generations (-1), /v1/jobs (0, async). */
static enum MHD_Result submit(server *s, struct MHD_Connection *c, request *r, int edit, int sync)
{
    form f;
    enum MHD_Result ret;
    if (read_form(c, r, &f, &ret)) return ret;
    job *j;
    if (job_create(s, &j) != CANVAS_OK) {
        form_free(&f);
        return reply_error(c, 507, "out of memory creating the job");
    }
    char message[600] = "";
    int status = job_from_form(s, &f, edit, j, message, sizeof message);
    if (status == 0 && s->front) status = queue_front_submit(s, &f, edit, j, message, sizeof message); /* scale-out */
    form_free(&f);
    /* the body is no longer needed: a queued job keeps its decoded inputs only */
    mem_free(r->body);
    r->body = NULL;
    r->size = r->cap = 0;
    if (status == 0 && !s->front) status = job_submit(s, j);
    if (status) {
        pthread_mutex_lock(&s->lock);
        job_release_locked(j);
        pthread_mutex_unlock(&s->lock);
        if (status == 429) return reply_queue_full(s, c);
        if (status == 503) return reply_error(c, 503, message[0] ? message : "the server is shutting down");
        return reply_error(c, status, message);
    }
    if (sync) {
        ret = reply_finished(s, c, j);
    } else {
        char json[256], location[64];
        snprintf(json, sizeof json, "{\"id\":\"%s\",\"object\":\"job\",\"state\":\"queued\",\"events\":\"/v1/jobs/%s/events\"}",
                 j->id, j->id);
        snprintf(location, sizeof location, "/v1/jobs/%s", j->id);
        ret = reply(c, 202, "application/json", json, strlen(json), MHD_HTTP_HEADER_LOCATION, location);
    }
    pthread_mutex_lock(&s->lock);
    job_release_locked(j);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* ---- the event stream --------------------------------------------------------------------- */

typedef struct event_stream {
    server *s;
    job *j;
    int next;                   /* the next event to send */
    size_t offset;              /* into it, when the last read stopped inside one */
} event_stream;

static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    event_stream *e = cls;
    server *s = e->s;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (e->next < e->j->n_events) {
            const char *frame = e->j->events[e->next];
            size_t left = strlen(frame) - e->offset;
            size_t n = left < max ? left : max;
            memcpy(buf, frame + e->offset, n);
            e->offset += n;
            if (e->offset == strlen(frame)) {
                e->next++;
                e->offset = 0;
            }
            pthread_mutex_unlock(&s->lock);
            return (ssize_t)n;
        }
        if (e->j->state >= JOB_DONE) {
            pthread_mutex_unlock(&s->lock);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        /* a comment line now and then keeps proxies from closing a quiet stream */
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 15;
        if (pthread_cond_timedwait(&s->changed, &s->lock, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&s->lock);
            static const char ping[] = ": keep-alive\n\n";
            size_t n = sizeof ping - 1 < max ? sizeof ping - 1 : max;
            memcpy(buf, ping, n);
            return (ssize_t)n;
        }
    }
}

static void end_events(void *cls)
{
    event_stream *e = cls;
    pthread_mutex_lock(&e->s->lock);
    job_release_locked(e->j);
    pthread_mutex_unlock(&e->s->lock);
    mem_free(e);
}

static enum MHD_Result reply_events(server *s, struct MHD_Connection *c, job *j)
{
    event_stream *e;
    if (mem_calloc((void **)&e, 1, sizeof *e, MEM_SCRATCH) != CANVAS_OK) {
        pthread_mutex_lock(&s->lock);
        job_release_locked(j);
        pthread_mutex_unlock(&s->lock);
        return reply_error(c, 507, "out of memory opening the event stream");
    }
    e->s = s;
    e->j = j; /* the stream keeps the reference the lookup took */
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_events, e, end_events);
    if (!r) {
        end_events(e);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* /v1/jobs/{id}[/events | /image.png] */
static enum MHD_Result route_job(server *s, struct MHD_Connection *c, const char *method, const char *rest)
{
    char id[32];
    size_t n = strcspn(rest, "/");
    if (n == 0 || n >= sizeof id) return reply_error(c, 404, "no such job");
    memcpy(id, rest, n);
    id[n] = '\0';
    const char *tail = rest + n;
    int is_get = !strcmp(method, "GET"), is_delete = !strcmp(method, "DELETE");
    if (strcmp(tail, "") && strcmp(tail, "/events") && strcmp(tail, "/image.png"))
        return reply_error(c, 404, "no such endpoint under /v1/jobs/{id} (events, image.png)");
    if (!is_get && !(is_delete && !*tail))
        return reply_error_header(c, 405, "method not allowed here", MHD_HTTP_HEADER_ALLOW, *tail ? "GET" : "GET, DELETE");
    pthread_mutex_lock(&s->lock);
    job *j = job_find_locked(s, id);
    if (!j) {
        pthread_mutex_unlock(&s->lock);
        char message[96];
        snprintf(message, sizeof message, "no job '%s' (unknown, or finished and forgotten)", id);
        return reply_error(c, 404, message);
    }
    enum MHD_Result ret;
    if (!strcmp(tail, "/events")) {
        pthread_mutex_unlock(&s->lock);
        return reply_events(s, c, j);
    } else if (!strcmp(tail, "/image.png")) {
        if (j->state == JOB_DONE) {
            ret = reply(c, 200, "image/png", j->png, j->png_size, NULL, NULL);
        } else {
            char message[128];
            snprintf(message, sizeof message, "job %s is %s: no image", j->id, job_state_name(j->state));
            ret = reply_error(c, 409, message);
        }
    } else if (is_delete) {
        int status = job_cancel_locked(s, j);
        char *json = job_describe_locked(s, j);
        ret = status == 409 ? reply_error(c, 409, "the job has already finished") : reply_taken(c, status, json);
        if (status == 409) mem_free(json);
    } else {
        /* ?wait=SECONDS (at most 60): a long poll, answered when the job has finished or then */
        const char *wait = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
        double seconds = wait ? strtod(wait, NULL) : 0;
        if (seconds > 0) {
            struct timespec deadline;
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_sec += (time_t)(seconds < 60 ? seconds : 60);
            while (j->state < JOB_DONE && pthread_cond_timedwait(&s->changed, &s->lock, &deadline) == 0) {
            }
        }
        ret = reply_taken(c, 200, job_describe_locked(s, j));
    }
    job_release_locked(j);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* ---- settings ------------------------------------------------------------------------------ */

static const form_field *form_get(const form *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->fields[i].name, name)) return &f->fields[i];
    return NULL;
}

/* PUT /v1/strategy {"strategy": "offload,fp8", "allow_quantize": false}: the next job's. */
static enum MHD_Result put_strategy(server *s, struct MHD_Connection *c, request *r)
{
    form f;
    enum MHD_Result ret;
    if (read_form(c, r, &f, &ret)) return ret;
    const form_field *name = form_get(&f, "strategy"), *quant = form_get(&f, "allow_quantize");
    plan_preset presets[8];
    int n;
    char message[256];
    int status = 0;
    if (!name) status = 400, snprintf(message, sizeof message, "missing field 'strategy'");
    else if (strlen(name->data) >= sizeof s->pending_strategy)
        status = 400, snprintf(message, sizeof message, "strategy: longer than %d characters",
                               (int)sizeof s->pending_strategy - 1);
    else if (plan_preset_list_parse(name->data, presets, 8, &n) != CANVAS_OK)
        status = 400, snprintf(message, sizeof message, "strategy: %s", canvas_last_error());
    else if (quant && strcmp(quant->data, "true") && strcmp(quant->data, "false"))
        status = 400, snprintf(message, sizeof message, "allow_quantize takes true or false");
    for (int i = 0; !status && i < f.n; i++)
        if (strcmp(f.fields[i].name, "strategy") && strcmp(f.fields[i].name, "allow_quantize"))
            status = 400, snprintf(message, sizeof message, "unknown field '%s'", f.fields[i].name);
    if (status) {
        status_clear();
        form_free(&f);
        return reply_error(c, status, message);
    }
    pthread_mutex_lock(&s->lock);
    snprintf(s->pending_strategy, sizeof s->pending_strategy, "%s", name->data);
    snprintf(s->strategy, sizeof s->strategy, "%s", name->data);
    s->pending_allow_quantize = quant && !strcmp(quant->data, "true");
    s->have_pending_strategy = 1;
    pthread_mutex_unlock(&s->lock);
    text_buf b = {0};
    text_printf(&b, "{\"strategy\":");
    text_json_string(&b, name->data);
    text_printf(&b, ",\"allow_quantize\":%s,\"applies\":\"from the next job\"}", quant && !strcmp(quant->data, "true") ? "true" : "false");
    form_free(&f);
    return reply_taken(c, 202, text_take(&b));
}

/* PUT /v1/memory {"vram_limit": "6G" | bytes}: as another process taking GPU memory. */
static enum MHD_Result put_memory(server *s, struct MHD_Connection *c, request *r)
{
    form f;
    enum MHD_Result ret;
    if (read_form(c, r, &f, &ret)) return ret;
    const form_field *limit = form_get(&f, "vram_limit");
    uint64_t bytes = 0;
    char message[256] = "";
    if (!limit || f.n != 1) snprintf(message, sizeof message, "expected one field, 'vram_limit' (bytes or a size like 6G)");
    else if (size_parse(limit->data, "vram_limit", &bytes) != CANVAS_OK) snprintf(message, sizeof message, "%s", canvas_last_error());
    form_free(&f);
    status_clear();
    if (message[0]) return reply_error(c, 400, message);
    if (s->config.options.vram_bytes == 0) return reply_error(c, 409, "the server has no device (start it with --vram)");
    if (bytes == 0 || bytes > s->config.options.vram_bytes) /* as canvas_set_vram_limit takes it, not a 202 it then refuses */
        return reply_error(c, 400, "vram_limit takes 1 byte up to the size the device was opened with (--vram)");
    pthread_mutex_lock(&s->lock);
    s->pending_vram = bytes;
    s->have_pending_vram = 1;
    pthread_mutex_unlock(&s->lock);
    char json[160];
    snprintf(json, sizeof json, "{\"vram_limit\":%llu,\"applies\":\"at the running job's next event, or the next job\"}",
             (unsigned long long)bytes);
    return reply_json(c, 202, json);
}

/* ---- the handler -------------------------------------------------------------------------- */

/* Constant time in the key's length: a wrong key does not say how much of it was right. */
static int key_matches(const char *given, const char *key)
{
    size_t n = strlen(key), m = given ? strlen(given) : 0;
    unsigned diff = (unsigned)(n != m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < m ? given[i] : 0);
    return diff == 0;
}

static enum MHD_Result route(server *s, struct MHD_Connection *c, const char *url, const char *method, request *r)
{
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST"),
        put = !strcmp(method, "PUT");
    if (!strcmp(url, "/healthz")) return get ? reply_taken(c, 200, server_health_json(s)) : reply_error_header(c, 405, "GET only", MHD_HTTP_HEADER_ALLOW, "GET");
    /* the page holds no data (its script sends the key with each call), so a browser can load it */
    if (!strcmp(url, "/")) {
        if (!get) return reply_error_header(c, 405, "GET only", MHD_HTTP_HEADER_ALLOW, "GET");
        return reply(c, 200, "text/html; charset=utf-8", server_page_html, server_page_html_size, NULL, NULL);
    }
    if (s->config.api_key) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!auth || strncmp(auth, "Bearer ", 7) || !key_matches(auth + 7, s->config.api_key))
            return reply_error_header(c, 401, "missing or wrong API key (Authorization: Bearer KEY)",
                                      MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    }
    if (!strcmp(url, "/metrics")) {
        if (!get) return reply_error_header(c, 405, "GET only", MHD_HTTP_HEADER_ALLOW, "GET");
        char *text = server_metrics_text(s);
        enum MHD_Result ret = text ? reply(c, 200, "text/plain; version=0.0.4", text, strlen(text), NULL, NULL)
                                   : reply_error(c, 507, "out of memory");
        mem_free(text);
        return ret;
    }
    if (!strcmp(url, "/v1/memory")) {
        if (get) return reply_taken(c, 200, server_memory_json(s));
        if (put) return put_memory(s, c, r);
        return reply_error_header(c, 405, "GET or PUT", MHD_HTTP_HEADER_ALLOW, "GET, PUT");
    }
    if (!strcmp(url, "/v1/plan")) {
        if (!get) return reply_error_header(c, 405, "GET only", MHD_HTTP_HEADER_ALLOW, "GET");
        int status = 200;
        char *json = server_plan_json(s, c, &status);
        return status == 200 ? reply_taken(c, 200, json) : (mem_free(json), reply_error(c, status, canvas_last_error()));
    }
    if (!strcmp(url, "/v1/strategy")) {
        if (!put) return reply_error_header(c, 405, "PUT only", MHD_HTTP_HEADER_ALLOW, "PUT");
        return put_strategy(s, c, r);
    }
    int edits = !strcmp(url, "/v1/images/edits"), generations = !strcmp(url, "/v1/images/generations");
    int jobs = !strcmp(url, "/v1/jobs");
    if (edits || generations || jobs) {
        if (!post) return reply_error_header(c, 405, "POST only", MHD_HTTP_HEADER_ALLOW, "POST");
        return submit(s, c, r, edits ? 1 : generations ? -1 : 0, !jobs);
    }
    if (!strncmp(url, "/v1/jobs/", 9)) return route_job(s, c, method, url + 9);
    return reply_error(c, 404, "no such endpoint (docs/server.md lists them)");
}

enum MHD_Result server_on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    server *s = cls;
    request *r = *con_cls;
    if (!r) {
        if (mem_calloc((void **)&r, 1, sizeof *r, MEM_SCRATCH) != CANVAS_OK) return MHD_NO;
        *con_cls = r;
        pthread_mutex_lock(&s->lock);
        s->requests++;
        s->active_requests++;
        pthread_mutex_unlock(&s->lock);
        /* a body announced too large is refused before it is read */
        const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && strtoull(length, NULL, 10) > s->config.max_body_bytes) {
            r->too_large = 1;
            char message[96];
            snprintf(message, sizeof message, "the request body is over %zu bytes", s->config.max_body_bytes);
            return reply_error(c, 413, message);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_large && r->size + *upload_size > s->config.max_body_bytes) {
            r->too_large = 1;
            mem_free(r->body);
            r->body = NULL;
            r->size = r->cap = 0;
        }
        if (!r->too_large && body_append(r, upload, *upload_size) != CANVAS_OK) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_large) {
        char message[96];
        snprintf(message, sizeof message, "the request body is over %zu bytes", s->config.max_body_bytes);
        return reply_error(c, 413, message);
    }
    return route(s, c, url, method, r);
}

void server_on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode code)
{
    (void)c, (void)code;
    server *s = cls;
    request *r = *con_cls;
    if (!r) return;
    pthread_mutex_lock(&s->lock);
    s->active_requests--;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    mem_free(r->body);
    mem_free(r);
    *con_cls = NULL;
}
