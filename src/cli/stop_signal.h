/* SPDX-License-Identifier: Apache-2.0 */
/* stop_signal.h — Ctrl-C (SIGINT) and SIGTERM as a request to stop at the next safe point,
 * for the commands that write outputs (edit, generate, convert): the handler only sets a
 * flag; the command checks it between pieces of work, returns CANVAS_ERR_CANCELLED, frees
 * what it holds and removes its temporary files. Nothing is written under the output's name
 * and the exit code is 130. */
#ifndef CANVAS_CLI_STOP_SIGNAL_H
#define CANVAS_CLI_STOP_SIGNAL_H

#include "canvas.h"

/* Install the handler for SIGINT and SIGTERM (once per process; again is harmless). */
void cli_catch_stop_signals(void);
/* 1 once a stop signal came; `ctx` is unused (the shape of canvas_edit_params.cancel). */
int cli_stop_asked(void *ctx);
/* CANVAS_ERR_CANCELLED when a stop signal came, naming `where` the work stopped. */
canvas_status cli_check_stop(const char *where);

#endif
