/* SPDX-License-Identifier: Apache-2.0 */
/* status.h — setting the thread's error text while returning a status.
 *
 * Library code reports a failure as
 *     return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': shape [%d] does not match", path, name, n);
 * which records the message for canvas_last_error() and returns the status, so the
 * first line of any failure says what went wrong and where. */
#ifndef CANVAS_BASE_STATUS_H
#define CANVAS_BASE_STATUS_H

#include "canvas.h"

#if defined(__GNUC__)
#define CANVAS_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define CANVAS_PRINTF(fmt_index, first_arg)
#endif

/* Record a formatted reason for the calling thread and return `status`. */
canvas_status status_fail(canvas_status status, const char *fmt, ...) CANVAS_PRINTF(2, 3);

/* Prefix the current reason with more context ("loading transformer: " + reason). */
canvas_status status_wrap(canvas_status status, const char *fmt, ...) CANVAS_PRINTF(2, 3);

/* Forget the current reason (after a failure has been handled, e.g. by a fallback). */
void status_clear(void);

/* Early return on failure: TRY(st_open(...)); */
#define TRY(expr)                                  \
    do {                                           \
        canvas_status try_status_ = (expr);        \
        if (try_status_ != CANVAS_OK) return try_status_; \
    } while (0)

#endif
