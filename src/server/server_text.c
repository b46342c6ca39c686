/* SPDX-License-Identifier: Apache-2.0 */
/* server_text.c — the text the server writes: JSON pieces into a growing buffer, base64
 * for b64_json, and the HTTP status of a library failure. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mem/mem.h"
#include "pipeline/progress.h"
#include "server/server_internal.h"

static int reserve(text_buf *b, size_t more)
{
    if (b->failed) return 0;
    if (b->len + more + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) {
        if (cap > ((size_t)1 << 40)) {
            b->failed = 1;
            return 0;
        }
        cap *= 2;
    }
    void *block = b->data;
    canvas_status st = block ? mem_realloc(&block, cap, MEM_SCRATCH) : mem_alloc(&block, cap, MEM_SCRATCH);
    if (st != CANVAS_OK) {
        b->failed = 1;
        return 0;
    }
    b->data = block;
    b->cap = cap;
    return 1;
}

void text_printf(text_buf *b, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    if (n < 0 || !reserve(b, (size_t)n)) return;
    va_start(args, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, args);
    va_end(args);
    b->len += (size_t)n;
}

void text_json_string(text_buf *b, const char *text)
{
    /* the longest a byte escapes to is \u00XX: 6 characters, plus the quotes */
    size_t need = strlen(text) * 6 + 3;
    if (!reserve(b, need)) return;
    b->len += progress_json_string(b->data + b->len, need, text);
}

char *text_take(text_buf *b)
{
    if (b->failed || !reserve(b, 0)) {
        mem_free(b->data);
        memset(b, 0, sizeof *b);
        return NULL;
    }
    char *data = b->data;
    memset(b, 0, sizeof *b);
    return data;
}

char *base64_encode(const uint8_t *bytes, size_t size)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (size > ((size_t)1 << 40)) return NULL;
    size_t out_len = (size + 2) / 3 * 4;
    char *out;
    if (mem_alloc((void **)&out, out_len + 1, MEM_SCRATCH) != CANVAS_OK) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t v = (uint32_t)bytes[i] << 16;
        if (i + 1 < size) v |= (uint32_t)bytes[i + 1] << 8;
        if (i + 2 < size) v |= bytes[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < size ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < size ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

int server_http_status(canvas_status status)
{
    switch (status) {
    case CANVAS_OK: return 200;
    case CANVAS_ERR_USAGE:
    case CANVAS_ERR_INPUT: return 400;
    case CANVAS_ERR_CANCELLED: return 409;
    case CANVAS_ERR_OUT_OF_MEMORY: return 507; /* Insufficient Storage: no plan fits, even after fallbacks */
    case CANVAS_ERR_UNSUPPORTED: return 501;
    default: return 500;
    }
}
