/* SPDX-License-Identifier: Apache-2.0 */
/* output_path.h — the commands' check of an output flag before any work (io/output_file.h),
 * turned into a usage error. */
#ifndef CANVAS_CLI_OUTPUT_PATH_H
#define CANVAS_CLI_OUTPUT_PATH_H

/* The endings each kind of output accepts (NULL-terminated). */
extern const char *const cli_image_extensions[];     /* png, jpg, jpeg, webp */
extern const char *const cli_json_extensions[];      /* json (--report, --trace) */
extern const char *const cli_tensor_extensions[];    /* safetensors (--save-embeds, debug --out) */

/* 0 when `flag PATH` may be written (io/output_file.h output_check), else exit code 2
 * after "canvas COMMAND: <reason>" on stderr. `files` are every file the run reads and its
 * other outputs (NULL entries and the entry that is `path` itself, by pointer, are
 * skipped); `folder` (may be NULL) the model or case folder, named `folder_kind`. */
int cli_check_output(const char *command, const char *flag, const char *path, const char *const *extensions,
                     const char *const *files, int n_files, const char *folder, const char *folder_kind);

#endif
