/* SPDX-License-Identifier: Apache-2.0 */
/* size_parse.h — byte sizes and bandwidths as users type them on the command line.
 *
 *   "4096"        4096 bytes        "512K" "512KiB"  512 x 1024
 *   "512M" "512MiB"  512 x 1024^2   "6G" "6GiB" "6g"  6 x 1024^3      "1T" "1TiB"  1024^4
 *   "6GB" "512MB" "1KB" "1TB"       powers of 1000 (the SI meaning of the B suffix)
 *   "1.5G"        fractions are allowed and rounded down to a whole byte
 *   "16G/s" "16GB/s" "100M/s"      a bandwidth: the same size followed by "/s" (bytes per second)
 *
 * The bare letters (K, M, G, T) are binary, as for memory sizes everywhere in this field
 * (a "6G" GPU holds 6 GiB); only an explicit "KB/MB/GB/TB" is decimal. Errors are
 * CANVAS_ERR_USAGE and quote the text. */
#ifndef CANVAS_BASE_SIZE_PARSE_H
#define CANVAS_BASE_SIZE_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"

/* A size in bytes; `what` names the flag in errors ("--vram"). */
canvas_status size_parse(const char *text, const char *what, uint64_t *out_bytes);

/* A bandwidth in bytes per second ("16G/s"; the "/s" may be left out), at least
 * SIZE_RATE_MIN (1 MiB/s). */
#define SIZE_RATE_MIN (1024.0 * 1024.0)
canvas_status size_parse_rate(const char *text, const char *what, double *out_bytes_per_second);

/* Human form for messages and reports: "512 B", "1.50 KiB", "6.00 GiB". Returns buf. */
const char *size_format(uint64_t bytes, char *buf, size_t buf_size);

/* A whole decimal number in [low, high] (the whole text: no sign games, no trailing
 * characters, no overflow) into *out: 1, or 0 with *out untouched. For flag and form values. */
int parse_integer(const char *text, long long low, long long high, long long *out);

#endif
