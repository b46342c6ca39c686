/* SPDX-License-Identifier: Apache-2.0 */
/* case_diff.h — what `canvas debug case` wrote against the case's expected.safetensors. */
#ifndef CANVAS_CLI_CASE_DIFF_H
#define CANVAS_CLI_CASE_DIFF_H

#include "canvas.h"

/* For every tensor of out_path that CASE_DIR/expected.safetensors also holds, one line on
 * stdout: max |got - want|, max |got - want| / max |want|, the count. CANVAS_ERR_INPUT when
 * a file cannot be read. */
canvas_status cli_print_case_diff(const char *case_dir, const char *out_path);

#endif
