/* SPDX-License-Identifier: Apache-2.0 */
/* path.c — path_join. */
#include "base/path.h"

#include <string.h>

#include "base/status.h"

canvas_status path_join(char *out, size_t size, const char *dir, const char *name)
{
    const size_t dir_len = strlen(dir), name_len = strlen(name);
    const size_t slash = dir_len > 0 && dir[dir_len - 1] != '/';
    /* dir_len + slash + name_len + 1 <= size, written so that no sum can wrap. */
    if (size == 0 || dir_len > size - 1 || name_len > size - 1 - dir_len || slash > size - 1 - dir_len - name_len) {
        canvas_status st = status_fail(CANVAS_ERR_INPUT, "%s: path too long (adding %s)", dir, name);
        if (size > 0) out[0] = '\0';
        return st;
    }
    memmove(out, dir, dir_len);
    if (slash) out[dir_len] = '/';
    memcpy(out + dir_len + slash, name, name_len + 1);
    return CANVAS_OK;
}
