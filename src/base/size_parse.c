/* SPDX-License-Identifier: Apache-2.0 */
/* size_parse.c — "512M", "6GiB", "16G/s" to numbers (rules in size_parse.h). */
#include "base/size_parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"

/* The multiplier for a unit suffix, or 0 when the suffix is unknown. */
static double unit_multiplier(const char *unit)
{
    static const char letters[] = "KMGT";
    if (unit[0] == '\0' || !strcmp(unit, "B")) return 1;
    const char *at = strchr(letters, toupper((unsigned char)unit[0]));
    if (!at) return 0;
    int power = (int)(at - letters) + 1;
    const char *rest = unit + 1;
    if (rest[0] == '\0' || !strcmp(rest, "iB") || !strcmp(rest, "ib")) return pow(1024.0, power);
    if (!strcmp(rest, "B") || !strcmp(rest, "b")) return pow(1000.0, power);
    return 0;
}

/* Parse "<number><unit>" where the unit ends at `end`; value in bytes (not rounded). */
static canvas_status parse_amount(const char *text, size_t length, const char *what, const char *full, double *out)
{
    char buf[64];
    if (length == 0 || length >= sizeof buf)
        return status_fail(CANVAS_ERR_USAGE, "%s '%s': expected a size such as 512M, 6G or 6GiB", what, full);
    memcpy(buf, text, length);
    buf[length] = '\0';
    size_t digits = 0, dots = 0;
    while (isdigit((unsigned char)buf[digits]) || (buf[digits] == '.' && dots++ == 0)) digits++;
    if (digits == 0 || (digits == 1 && buf[0] == '.'))
        return status_fail(CANVAS_ERR_USAGE, "%s '%s': expected a size such as 512M, 6G or 6GiB", what, full);
    char unit[16];
    const char *u = buf + digits;
    while (*u == ' ') u++;
    if (strlen(u) >= sizeof unit)
        return status_fail(CANVAS_ERR_USAGE, "%s '%s': unknown unit '%s' (B, K, M, G, T, KiB.., KB..)", what, full, u);
    strcpy(unit, u);
    buf[digits] = '\0';
    double multiplier = unit_multiplier(unit);
    if (multiplier == 0)
        return status_fail(CANVAS_ERR_USAGE, "%s '%s': unknown unit '%s' (B, K, M, G, T, KiB.., KB..)", what, full, unit);
    double value = 0, scale = 0;
    for (const char *c = buf; *c; c++) {
        if (*c == '.') {
            scale = 1;
            continue;
        }
        if (scale > 0) {
            scale /= 10;
            value += (*c - '0') * scale;
        } else {
            value = value * 10 + (*c - '0');
        }
    }
    *out = value * multiplier;
    return CANVAS_OK;
}

canvas_status size_parse(const char *text, const char *what, uint64_t *out_bytes)
{
    *out_bytes = 0;
    if (!what) what = "size";
    if (!text) return status_fail(CANVAS_ERR_USAGE, "%s: missing size", what);
    double bytes;
    TRY(parse_amount(text, strlen(text), what, text, &bytes));
    if (bytes >= 18446744073709551616.0)
        return status_fail(CANVAS_ERR_USAGE, "%s '%s': more bytes than a 64-bit size can hold", what, text);
    *out_bytes = (uint64_t)bytes;
    return CANVAS_OK;
}

canvas_status size_parse_rate(const char *text, const char *what, double *out_bytes_per_second)
{
    *out_bytes_per_second = 0;
    if (!what) what = "bandwidth";
    if (!text) return status_fail(CANVAS_ERR_USAGE, "%s: missing bandwidth", what);
    size_t length = strlen(text);
    if (length >= 2 && !strcmp(text + length - 2, "/s")) length -= 2;
    double rate;
    TRY(parse_amount(text, length, what, text, &rate));
    if (!(rate > 0)) return status_fail(CANVAS_ERR_USAGE, "%s '%s': a bandwidth must be more than 0", what, text);
    /* below this, moving one model's weights takes days: a typo ("1/s"), not a link */
    if (rate < SIZE_RATE_MIN)
        return status_fail(CANVAS_ERR_USAGE, "%s '%s': at least 1M/s (slower links are not simulated)", what, text);
    *out_bytes_per_second = rate;
    return CANVAS_OK;
}

const char *size_format(uint64_t bytes, char *buf, size_t buf_size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(buf, buf_size, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    double value = (double)bytes;
    int unit = 0;
    while (value >= 1024 && unit < 5) {
        value /= 1024;
        unit++;
    }
    snprintf(buf, buf_size, "%.2f %s", value, units[unit]);
    return buf;
}

int parse_integer(const char *text, long long low, long long high, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < low || v > high) return 0;
    *out = v;
    return 1;
}
