/* SPDX-License-Identifier: Apache-2.0 */
/* path.h — building file paths: one join, checked for length.
 *
 * Every path the library builds from a folder and a name goes through path_join, so a
 * path that does not fit fails with a reason instead of being cut short (a truncated path
 * can name another, existing file). */
#ifndef CANVAS_BASE_PATH_H
#define CANVAS_BASE_PATH_H

#include <stddef.h>

#include "canvas.h"

/* Room for the longest path the library builds, its NUL included (Linux's PATH_MAX). */
#define PATH_BUFFER_SIZE 4096

/* out = dir + "/" + name, without doubling a '/' that ends dir; an empty dir gives name
 * alone. name may hold several components ("transformer/config.json"). out may be dir
 * itself (appending in place) but must not overlap name. When the result and its NUL do
 * not fit in `size` bytes: CANVAS_ERR_INPUT "DIR: path too long (adding NAME)", and out is
 * "" (never a cut-short path). */
canvas_status path_join(char *out, size_t size, const char *dir, const char *name);

#endif
