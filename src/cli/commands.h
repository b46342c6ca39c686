/* SPDX-License-Identifier: Apache-2.0 */
/* commands.h — the canvas subcommands. Each takes the arguments after its name and
 * returns the process exit code (0 ok, 2 usage, 3 out of memory, 4 bad input, 1 other). */
#ifndef CANVAS_CLI_COMMANDS_H
#define CANVAS_CLI_COMMANDS_H

#include "canvas.h"

int cmd_inspect(int argc, char **argv);
int cmd_debug(int argc, char **argv);
int cmd_edit(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_worker(int argc, char **argv);
/* `canvas serve`'s flags and run (worker NULL), or `canvas worker`'s with the same flags
 * (cmd_serve.c; struct queue_worker_config is in server/queue.h). */
struct queue_worker_config;
int cli_serve_or_work(int argc, char **argv, const struct queue_worker_config *worker);

/* Messages on stderr, one line each, all prefixed "canvas <command>: " (the command being
 * run): errors "error: ...", warnings "warning: ...", notes without a label. */
#if defined(__GNUC__) || defined(__clang__)
#define CANVAS_CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CANVAS_CLI_PRINTF(f, a)
#endif
/* "error: [context: ]<reason>" for a failed status; returns its exit code (canvas_exit_code). */
int cli_fail(canvas_status status, const char *context);
/* "error: <message> (see `canvas <cmd> --help`)"; returns 2. */
int cli_usage_error(const char *command, const char *message);
/* "warning: ...": a setting was changed or ignored, and the run goes on. */
void cli_warn(const char *fmt, ...) CANVAS_CLI_PRINTF(1, 2);
/* The command named in the prefix ("debug case" once `debug` knows its subcommand). */
void cli_set_command(const char *name);
/* A note: what the command did that a user should know (a settings file read, a file written). */
void cli_note(const char *fmt, ...) CANVAS_CLI_PRINTF(1, 2);

#endif
