/* SPDX-License-Identifier: Apache-2.0 */
/* check.h — the test harness: one program per module, checks that count and report.
 *
 *   static void test_round_trip(void) { CHECK(x == 1); CHECK_NEAR(a, b, 1e-6); }
 *   int main(void) { RUN(test_round_trip); return check_summary(); }
 *
 * A failed check prints file:line and the expression to stderr and the test goes on;
 * check_summary() prints "N passed, N failed" and returns non-zero on any failure. */
#ifndef CANVAS_TESTS_CHECK_H
#define CANVAS_TESTS_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canvas.h"

static int check_passed_, check_failed_;
static int check_test_failed_;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            check_passed_++;                                                         \
        } else {                                                                     \
            check_failed_++;                                                         \
            check_test_failed_ = 1;                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_MSG(cond, ...)                                                  \
    do {                                                                      \
        if (cond) {                                                           \
            check_passed_++;                                                  \
        } else {                                                              \
            check_failed_++;                                                  \
            check_test_failed_ = 1;                                           \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

/* A call that must succeed; prints canvas_last_error() when it does not. */
#define CHECK_OK(expr)                                                                       \
    do {                                                                                     \
        canvas_status check_st_ = (expr);                                                    \
        CHECK_MSG(check_st_ == CANVAS_OK, "%s: %s", canvas_status_name(check_st_), canvas_last_error()); \
    } while (0)

/* A call that must fail with `status` and leave a message containing `needle`. */
#define CHECK_FAILS(expr, status, needle)                                                  \
    do {                                                                                   \
        canvas_status check_st_ = (expr);                                                  \
        CHECK_MSG(check_st_ == (status) && strstr(canvas_last_error(), (needle)) != NULL,  \
                  "got %s \"%s\", wanted %s containing \"%s\"", canvas_status_name(check_st_), \
                  canvas_last_error(), canvas_status_name(status), (needle));              \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                   \
    do {                                                                                        \
        double check_a_ = (double)(a), check_b_ = (double)(b);                                  \
        CHECK_MSG(fabs(check_a_ - check_b_) <= (tol), "%.9g vs %.9g (tolerance %g)", check_a_, check_b_, (double)(tol)); \
    } while (0)

#define RUN(test_fn)                                                           \
    do {                                                                       \
        check_test_failed_ = 0;                                                \
        test_fn();                                                             \
        fprintf(stderr, "%s %s\n", check_test_failed_ ? "FAIL" : "ok  ", #test_fn); \
    } while (0)

static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed_, check_failed_);
    return check_failed_ ? 1 : 0;
}

/* max|got - want| / max|want| over n values, the goldens' measure (tests/golden/README.md);
 * a NaN in got makes it NaN, which no tolerance accepts. */
static inline double test_relative_error(const float *got, const float *want, size_t n)
{
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        if (!(diff <= max_diff)) max_diff = diff;
        if (fabs((double)want[i]) > max_ref) max_ref = fabs((double)want[i]);
    }
    return max_ref > 0 ? max_diff / max_ref : max_diff;
}

/* Uniform in [-1, 1) from a 32-bit LCG whose state the test keeps (same numbers every run). */
static inline float test_uniform(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
}

/* Path under tests/ (CANVAS_TEST_DIR is set by ctest). */
static inline const char *test_path(char *buf, size_t size, const char *relative)
{
    const char *root = getenv("CANVAS_TEST_DIR");
    snprintf(buf, size, "%s/%s", root ? root : "tests", relative);
    return buf;
}

#endif
