/* SPDX-License-Identifier: Apache-2.0 */
/* model_files.h — --transformer FILE, --text-encoder FILE, --vae FILE: a model's components
 * as single files (ComfyUI's split files), instead of or on top of --model DIR. Shared by
 * the commands that open a model (edit, generate, plan, inspect, convert). */
#ifndef CANVAS_CLI_MODEL_FILES_H
#define CANVAS_CLI_MODEL_FILES_H

#include <stdio.h>

#include "canvas.h"

typedef struct cli_model_files {
    const char *transformer;   /* --transformer FILE; NULL: the folder's */
    const char *text_encoder;  /* --text-encoder FILE */
    const char *vae;           /* --vae FILE */
} cli_model_files;

/* Try argv[*i] as one of the flags: 1 parsed (*i past its value), 0 not one of them, -1
 * after printing a usage error naming `command` (exit 2). */
int cli_model_files_parse(cli_model_files *files, int argc, char **argv, int *i, const char *command);

/* With no --model DIR the transformer and the VAE files are required: 0, or -1 after the
 * usage error "missing --model DIR (or --transformer FILE and --vae FILE)". */
int cli_model_files_check(const cli_model_files *files, const char *model_dir, const char *command);

/* What names the model in messages and image metadata: DIR, else the transformer file. */
const char *cli_model_label(const cli_model_files *files, const char *model_dir);

/* Into the library's options. */
void cli_model_files_apply(const cli_model_files *files, canvas_options *options);

/* The flags' lines for a command's --help. */
void cli_model_files_help(FILE *to);

#endif
