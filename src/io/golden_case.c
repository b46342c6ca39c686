/* golden_case.c — reading a golden case's op with a real status. */
#include "io/golden_case.h"

#include <stdio.h>

#include "base/path.h"
#include "base/status.h"
#include "io/json_file.h"

canvas_status golden_case_op(const char *case_dir, char *op, size_t size)
{
    char path[PATH_BUFFER_SIZE];
    TRY(path_join(path, sizeof path, case_dir, "case.json"));
    json_t *root;
    TRY(json_file_load(path, &root));
    const char *text = json_string_value(json_object_get(root, "op"));
    canvas_status st = CANVAS_OK;
    if (!text) st = status_fail(CANVAS_ERR_INPUT, "%s: key 'op' (a string) is missing", path);
    else if ((size_t)snprintf(op, size, "%s", text) >= size) st = status_fail(CANVAS_ERR_INPUT, "%s: op '%s' is too long", path, text);
    json_decref(root);
    return st;
}
