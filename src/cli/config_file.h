/* SPDX-License-Identifier: Apache-2.0 */
/* config_file.h — the settings file for the commands that run a model (edit, generate,
 * debug case, bench): io/config_yaml.h reads it, this maps it onto the memory flags and the
 * edit defaults. Where it is: `--config FILE`, else ./canvas.yaml, else
 * $XDG_CONFIG_HOME/canvas/config.yaml ($HOME/.config/canvas/config.yaml when XDG_CONFIG_HOME
 * is unset or relative; the first that exists, none is fine). It is applied before the
 * command line is parsed, so every flag given wins over it; stderr names the file read.
 * docs/config.md. */
#ifndef CANVAS_CLI_CONFIG_FILE_H
#define CANVAS_CLI_CONFIG_FILE_H

#include "cli/memory_flags.h"

/* What the file sets for edit / generate besides the memory flags. */
typedef struct cli_edit_defaults {
    int steps;                  /* default_inference_steps; 0: not set */
    int lightning;              /* lightning_lora_enabled: 1 */
} cli_edit_defaults;

/* Find and apply the settings file. 0 when applied (or none found), else the exit code
 * after a message on stderr: 2 for `--config` without a file name, 4 for a file that is
 * missing (given with --config) or wrong (the message names the file, line and key). */
int cli_config_apply(int argc, char **argv, const char *command, cli_memory_flags *flags,
                     cli_edit_defaults *defaults);

#endif
