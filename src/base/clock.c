/* SPDX-License-Identifier: Apache-2.0 */
/* clock.c — CLOCK_MONOTONIC and sleeping that survives signals. */
#define _POSIX_C_SOURCE 200809L
#include "base/clock.h"

#include <errno.h>
#include <time.h>

uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double clock_seconds(void) { return (double)clock_ns() * 1e-9; }

void clock_sleep_until_ns(uint64_t deadline_ns)
{
    struct timespec ts = {(time_t)(deadline_ns / 1000000000u), (long)(deadline_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

void clock_sleep(double seconds)
{
    if (seconds <= 0) return;
    clock_sleep_until_ns(clock_ns() + (uint64_t)(seconds * 1e9));
}
