/* SPDX-License-Identifier: Apache-2.0 */
/* golden_case.c — reading a golden case's op with a real status. */
#include "io/golden_case.h"

#include <stdio.h>
#include <string.h>

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

canvas_status golden_case_open(const char *case_dir, const char *const *ops, const char *component, char *path,
                               size_t path_size, json_t **root, const char **op, char *model_dir, size_t model_size)
{
    *root = NULL;
    TRY(path_join(path, path_size, case_dir, "case.json"));
    TRY(json_file_load(path, root));
    *op = json_string_value(json_object_get(*root, "op"));
    const char *model = json_string_value(json_object_get(*root, "model"));
    canvas_status st = CANVAS_OK;
    int known = 0;
    for (int i = 0; *op && ops[i]; i++) known |= !strcmp(*op, ops[i]);
    if (!*op) st = status_fail(CANVAS_ERR_INPUT, "%s: key 'op' (a string) is missing", path);
    else if (!known) {
        char wanted[256] = "";
        for (int i = 0; ops[i]; i++)
            snprintf(wanted + strlen(wanted), sizeof wanted - strlen(wanted), "%s%s", i ? " or " : "", ops[i]);
        st = status_fail(CANVAS_ERR_UNSUPPORTED, "%s: op '%s' is not %s", path, *op, wanted);
    }
    else if (model_dir && !model) st = status_fail(CANVAS_ERR_INPUT, "%s: key 'model' (a string) is missing", path);
    if (st == CANVAS_OK && model_dir) {
        st = path_join(model_dir, model_size, case_dir, "../..");
        if (st == CANVAS_OK) st = path_join(model_dir, model_size, model_dir, model);
        if (st == CANVAS_OK && component && component[0]) st = path_join(model_dir, model_size, model_dir, component);
    }
    if (st != CANVAS_OK) {
        json_decref(*root);
        *root = NULL;
    }
    return st;
}
