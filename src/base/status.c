/* SPDX-License-Identifier: Apache-2.0 */
/* status.c — per-thread error text behind canvas_last_error(). */
#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { ERROR_TEXT_SIZE = 1024 };
static _Thread_local char error_text[ERROR_TEXT_SIZE];

const char *canvas_last_error(void) { return error_text; }

canvas_status status_fail(canvas_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(error_text, sizeof error_text, fmt, args);
    va_end(args);
    return status;
}

canvas_status status_wrap(canvas_status status, const char *fmt, ...)
{
    char previous[ERROR_TEXT_SIZE];
    memcpy(previous, error_text, sizeof previous);
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(error_text, sizeof error_text, fmt, args);
    va_end(args);
    if (n >= 0 && (size_t)n < sizeof error_text)
        snprintf(error_text + n, sizeof error_text - (size_t)n, "%s", previous);
    return status;
}

void status_clear(void) { error_text[0] = '\0'; }

const char *canvas_status_name(canvas_status status)
{
    switch (status) {
    case CANVAS_OK: return "ok";
    case CANVAS_ERR_USAGE: return "usage error";
    case CANVAS_ERR_OUT_OF_MEMORY: return "out of memory";
    case CANVAS_ERR_INPUT: return "bad input";
    case CANVAS_ERR_IO: return "i/o error";
    case CANVAS_ERR_UNSUPPORTED: return "unsupported";
    case CANVAS_ERR_INTERNAL: return "internal error";
    case CANVAS_ERR_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

int canvas_exit_code(canvas_status status)
{
    switch (status) {
    case CANVAS_OK: return 0;
    case CANVAS_ERR_USAGE: return 2;
    case CANVAS_ERR_OUT_OF_MEMORY: return 3;
    case CANVAS_ERR_INPUT: return 4;
    case CANVAS_ERR_CANCELLED: return 130; /* as a shell reports a run stopped by Ctrl-C (128 + SIGINT) */
    default: return 1;
    }
}
