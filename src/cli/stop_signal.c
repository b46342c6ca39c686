/* SPDX-License-Identifier: Apache-2.0 */
/* stop_signal.c — the flag that SIGINT / SIGTERM set, and the checks that read it. */
#define _POSIX_C_SOURCE 200809L
#include "cli/stop_signal.h"

#include <signal.h>
#include <string.h>

#include "base/status.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

void cli_catch_stop_signals(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

int cli_stop_asked(void *ctx)
{
    (void)ctx;
    return stop_requested != 0;
}

canvas_status cli_check_stop(const char *where)
{
    return stop_requested ? status_fail(CANVAS_ERR_CANCELLED, "stopped by a signal %s", where) : CANVAS_OK;
}
