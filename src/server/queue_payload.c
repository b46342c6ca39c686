/* SPDX-License-Identifier: Apache-2.0 */
/* queue_payload.c — what travels through the queue without needing Redis: the queue's URL
 * and a job's payload (the request's form, checked again by the worker's job_from_form, so
 * front and worker decode the same bytes the same way). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "server/queue.h"

canvas_status queue_parse_url(const char *text, queue_url *out)
{
    static const char scheme[] = "redis://";
    memset(out, 0, sizeof *out);
    if (!text || strncmp(text, scheme, sizeof scheme - 1))
        return status_fail(CANVAS_ERR_USAGE, "--queue takes redis://HOST:PORT/NAME (got '%s')", text ? text : "");
    const char *host = text + sizeof scheme - 1, *colon = strchr(host, ':'), *slash = strchr(host, '/');
    if (host[0] == '[') /* its colons were read as the port's ("the port must be 1 to 65535") */
        return status_fail(CANVAS_ERR_USAGE, "--queue %s: an IPv6 address is not taken here: give a host name or an "
                           "IPv4 address", text);
    if (!colon || !slash || colon > slash || colon == host || (size_t)(colon - host) >= sizeof out->host)
        return status_fail(CANVAS_ERR_USAGE, "--queue %s: give redis://HOST:PORT/NAME", text);
    memcpy(out->host, host, (size_t)(colon - host));
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end != slash || !(colon[1] >= '0' && colon[1] <= '9') || port < 1 || port > 65535) /* no ' +1' */
        return status_fail(CANVAS_ERR_USAGE, "--queue %s: the port must be 1 to 65535", text);
    out->port = (int)port;
    const char *name = slash + 1;
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof out->name)
        return status_fail(CANVAS_ERR_USAGE, "--queue %s: NAME must be 1 to %zu characters", text, sizeof out->name - 1);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int fine = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        if (!fine) return status_fail(CANVAS_ERR_USAGE, "--queue %s: NAME takes letters, digits, '-', '_' and '.'", text);
    }
    memcpy(out->name, name, n + 1);
    return CANVAS_OK;
}

/* Layout, little-endian: "CQJ1", kind (1 byte: 0 jobs, 1 edit, 2 generation), field count
 * (4), then per field: name length (2), name, filename length (2), filename, value length
 * (8), value, a 0 byte. */
static const char magic[4] = {'C', 'Q', 'J', '1'};

static void put_le(uint8_t *at, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) at[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *at, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)at[i] << (8 * i);
    return v;
}

canvas_status queue_payload_pack(const form *f, int edit, uint8_t **out, size_t *out_size)
{
    size_t size = sizeof magic + 1 + 4;
    for (int i = 0; i < f->n; i++) {
        size_t field = 2 + strlen(f->fields[i].name) + 2 + strlen(f->fields[i].filename) + 8 + 1;
        if (f->fields[i].size > SIZE_MAX - size - field)
            return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "job payload: field '%s' too large", f->fields[i].name);
        size += field + f->fields[i].size;
    }
    uint8_t *p;
    TRY(mem_alloc((void **)&p, size, MEM_SCRATCH));
    size_t at = 0;
    memcpy(p, magic, sizeof magic);
    at += sizeof magic;
    p[at++] = (uint8_t)(edit > 0 ? 1 : edit < 0 ? 2 : 0);
    put_le(p + at, (uint64_t)f->n, 4);
    at += 4;
    for (int i = 0; i < f->n; i++) {
        const form_field *field = &f->fields[i];
        size_t name = strlen(field->name), filename = strlen(field->filename);
        put_le(p + at, name, 2);
        memcpy(p + at + 2, field->name, name);
        at += 2 + name;
        put_le(p + at, filename, 2);
        memcpy(p + at + 2, field->filename, filename);
        at += 2 + filename;
        put_le(p + at, field->size, 8);
        at += 8;
        if (field->size) memcpy(p + at, field->data, field->size);
        at += field->size;
        p[at++] = 0;
    }
    *out = p;
    *out_size = at;
    return CANVAS_OK;
}

/* A length-prefixed string into `to` (NUL-terminated); 0 when it does not fit the payload. */
static int take_string(const uint8_t *payload, size_t size, size_t *at, char *to, size_t to_size)
{
    if (size - *at < 2) return 0;
    size_t n = (size_t)get_le(payload + *at, 2);
    if (n >= to_size || size - *at - 2 < n) return 0;
    memcpy(to, payload + *at + 2, n);
    to[n] = '\0';
    *at += 2 + n;
    return 1;
}

canvas_status queue_payload_unpack(const uint8_t *payload, size_t size, form *out, int *edit)
{
    memset(out, 0, sizeof *out);
    if (size < sizeof magic + 5 || memcmp(payload, magic, sizeof magic))
        return status_fail(CANVAS_ERR_INPUT, "job payload: not a canvas job (no CQJ1 header, %zu bytes)", size);
    size_t at = sizeof magic;
    uint8_t kind = payload[at++];
    if (kind > 2) return status_fail(CANVAS_ERR_INPUT, "job payload: unknown kind %u", kind);
    *edit = kind == 1 ? 1 : kind == 2 ? -1 : 0;
    uint64_t n = get_le(payload + at, 4);
    at += 4;
    if (n > FORM_MAX_FIELDS) return status_fail(CANVAS_ERR_INPUT, "job payload: %llu fields (at most %d)", (unsigned long long)n, FORM_MAX_FIELDS);
    for (uint64_t i = 0; i < n; i++) {
        form_field *field = &out->fields[i];
        if (!take_string(payload, size, &at, field->name, sizeof field->name) ||
            !take_string(payload, size, &at, field->filename, sizeof field->filename) || size - at < 8)
            return status_fail(CANVAS_ERR_INPUT, "job payload: field %llu is cut short", (unsigned long long)i + 1);
        uint64_t len = get_le(payload + at, 8);
        at += 8;
        if (len >= size - at || payload[at + len] != 0)
            return status_fail(CANVAS_ERR_INPUT, "job payload: field '%s' is cut short", field->name);
        field->data = (const char *)payload + at;
        field->size = (size_t)len;
        at += (size_t)len + 1;
    }
    if (at != size) return status_fail(CANVAS_ERR_INPUT, "job payload: %zu bytes after the last field", size - at);
    out->n = (int)n;
    return CANVAS_OK;
}

int64_t queue_job_pixels(const job *j)
{
    if (j->params.width > 0 && j->params.height > 0) return (int64_t)j->params.width * j->params.height;
    return j->params.vae_area > 0 ? j->params.vae_area : (int64_t)1024 * 1024;
}

void queue_worker_config_default(queue_worker_config *config)
{
    memset(config, 0, sizeof *config);
    config->visibility_ms = 30000;
    config->max_tries = 3;
    config->result_ttl_seconds = 86400;
}
