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

/* Print "canvas: [context: ]<reason>" for a failed status to stderr and return its
 * exit code (canvas_exit_code). */
int cli_fail(canvas_status status, const char *context);
/* Print a usage error ("canvas <cmd>: <message>", then a hint) and return 2. */
int cli_usage_error(const char *command, const char *message);

#endif
