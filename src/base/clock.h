/* SPDX-License-Identifier: Apache-2.0 */
/* clock.h — monotonic time for timings and for throttled transfers.
 *
 * CLOCK_MONOTONIC: never jumps with the wall clock, so differences are durations. */
#ifndef CANVAS_BASE_CLOCK_H
#define CANVAS_BASE_CLOCK_H

#include <stdint.h>

/* Nanoseconds since an arbitrary fixed point (boot). */
uint64_t clock_ns(void);

/* The same in seconds. */
double clock_seconds(void);

/* Sleep at least `seconds` (restarts after signals); <= 0 returns at once. */
void clock_sleep(double seconds);

/* Sleep until clock_ns() >= deadline_ns. */
void clock_sleep_until_ns(uint64_t deadline_ns);

#endif
