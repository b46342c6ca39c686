/* SPDX-License-Identifier: Apache-2.0 */
/* progress.c — progress events as text (formats in progress.h). */
#include "pipeline/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/size_parse.h"
#include "base/status.h"
#include "text/unicode.h"

const char *progress_event_name(canvas_progress_kind kind)
{
    switch (kind) {
    case CANVAS_PROGRESS_PLAN: return "plan";
    case CANVAS_PROGRESS_PHASE: return "phase";
    case CANVAS_PROGRESS_STEP: return "step";
    case CANVAS_PROGRESS_DONE: return "done";
    }
    return "unknown";
}

/* A writer that appends and never overruns. */
typedef struct text {
    char *buf;
    size_t size, len;
} text;

static void put(text *t, const char *fmt, ...) CANVAS_PRINTF(2, 3);
static void put(text *t, const char *fmt, ...)
{
    if (t->len + 1 >= t->size) return;
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, args);
    va_end(args);
    if (n < 0) return;
    t->len += (size_t)n;
    if (t->len >= t->size) t->len = t->size - 1;
}

double progress_eta_seconds(const canvas_progress *p)
{
    if (p->kind != CANVAS_PROGRESS_STEP || p->steps <= p->step || !(p->seconds_per_step > 0)) return 0;
    return p->seconds_per_step * (p->steps - p->step);
}

size_t progress_format_bar(char *buf, size_t size, const canvas_progress *p, int bar_width)
{
    if (!size) return 0;
    buf[0] = '\0';
    text t = {buf, size, 0};
    char dev[32], dev_peak[32], host[32];
    size_format(p->device_bytes, dev, sizeof dev);
    size_format(p->device_peak_bytes, dev_peak, sizeof dev_peak);
    size_format(p->host_bytes, host, sizeof host);
    switch (p->kind) {
    case CANVAS_PROGRESS_PLAN: put(&t, "%s", p->message); return t.len;
    case CANVAS_PROGRESS_PHASE: put(&t, "%s ...", p->phase); break;
    case CANVAS_PROGRESS_DONE: put(&t, "done"); break;
    case CANVAS_PROGRESS_STEP: {
        if (bar_width < 1) bar_width = 1;
        int filled = p->steps > 0 ? (int)((long long)bar_width * p->step / p->steps) : 0;
        put(&t, "%s [", p->phase);
        for (int i = 0; i < bar_width; i++) put(&t, "%c", i < filled ? '#' : '-');
        put(&t, "] %*d/%d  %.2f s/it  %.1f s  ETA %.1f s", (int)snprintf(NULL, 0, "%d", p->steps), p->step, p->steps,
            p->seconds_per_step, p->phase_seconds, progress_eta_seconds(p));
        break;
    }
    }
    if (p->on_device) put(&t, "  device %s (peak %s)  host %s", dev, dev_peak, host);
    else put(&t, "  memory %s (peak %s)", dev, dev_peak);
    return t.len;
}

size_t progress_json_string(char *buf, size_t size, const char *s)
{
    text t = {buf, size, 0};
    if (size) buf[0] = '\0';
    put(&t, "\"");
    const size_t n = strlen(s);
    for (size_t at = 0, k; at < n; at += k) {
        unsigned char c = (unsigned char)s[at];
        uint32_t cp;
        k = utf8_decode((const unsigned char *)s + at, n - at, &cp);
        /* a byte that is not UTF-8 (a file name can hold any): U+FFFD, so the line stays JSON */
        if (k == 0) {
            put(&t, "\\ufffd");
            k = 1;
        } else if (k > 1) put(&t, "%.*s", (int)k, s + at);
        else if (c == '"' || c == '\\') put(&t, "\\%c", c);
        else if (c == '\n') put(&t, "\\n");
        else if (c == '\t') put(&t, "\\t");
        else if (c < 0x20) put(&t, "\\u%04x", c);
        else put(&t, "%c", c);
    }
    put(&t, "\"");
    return t.len;
}

size_t progress_format_json(char *buf, size_t size, const canvas_progress *p)
{
    if (!size) return 0;
    buf[0] = '\0';
    text t = {buf, size, 0};
    put(&t, "{\"event\":\"%s\",\"phase\":", progress_event_name(p->kind));
    t.len += progress_json_string(t.buf + t.len, t.size - t.len, p->phase ? p->phase : "");
    if (p->kind == CANVAS_PROGRESS_PLAN) {
        put(&t, ",\"message\":");
        t.len += progress_json_string(t.buf + t.len, t.size - t.len, p->message ? p->message : "");
    }
    if (p->kind == CANVAS_PROGRESS_STEP)
        put(&t, ",\"step\":%d,\"steps\":%d,\"seconds_per_step\":%.6f,\"eta_seconds\":%.6f", p->step, p->steps,
            p->seconds_per_step, progress_eta_seconds(p));
    put(&t, ",\"seconds\":%.6f,\"on_device\":%s,\"device_bytes\":%llu,\"device_peak_bytes\":%llu,\"host_bytes\":%llu,"
            "\"host_peak_bytes\":%llu}",
        p->phase_seconds, p->on_device ? "true" : "false", (unsigned long long)p->device_bytes, (unsigned long long)p->device_peak_bytes,
        (unsigned long long)p->host_bytes, (unsigned long long)p->host_peak_bytes);
    return t.len;
}
