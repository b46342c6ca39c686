/* SPDX-License-Identifier: Apache-2.0 */
/* config_pipeline.c — model_index.json of a diffusers pipeline folder. */
#include <string.h>

#include "base/status.h"
#include "io/config.h"
#include "io/config_fields.h"

/* Copy a JSON string into a fixed buffer; CANVAS_ERR_INPUT when it does not fit. */
static canvas_status copy_name(const char *path, const char *key, const char *text, char *dst, size_t size)
{
    if (strlen(text) + 1 > size)
        return status_fail(CANVAS_ERR_INPUT, "%s: key '%s': name too long", path, key);
    memcpy(dst, text, strlen(text) + 1);
    return CANVAS_OK;
}

/* One "name": [library, class] entry; *skip is set for [null, null] (absent). */
static canvas_status read_component(const char *path, const char *key, json_t *value, pipeline_component *c,
                                    int *skip)
{
    json_t *lib = json_array_get(value, 0), *cls = json_array_get(value, 1);
    *skip = json_array_size(value) == 2 && json_is_null(lib) && json_is_null(cls);
    if (*skip) return CANVAS_OK;
    if (json_array_size(value) != 2 || !json_is_string(lib) || !json_is_string(cls))
        return status_fail(CANVAS_ERR_INPUT, "%s: key '%s': expected [library, class name]", path, key);
    TRY(copy_name(path, key, key, c->name, sizeof c->name));
    TRY(copy_name(path, key, json_string_value(lib), c->library, sizeof c->library));
    return copy_name(path, key, json_string_value(cls), c->class_name, sizeof c->class_name);
}

static canvas_status read_index(const char *path, json_t *root, pipeline_index *out)
{
    cfg_source src = {path, "", root};
    TRY(cfg_string(&src, "_class_name", out->class_name, sizeof out->class_name));
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (key[0] == '_' || !json_is_array(value)) continue; /* metadata and plain flags */
        if (out->n_components == PIPELINE_MAX_COMPONENTS)
            return status_fail(CANVAS_ERR_INPUT, "%s: more than %d components", path, PIPELINE_MAX_COMPONENTS);
        int skip;
        TRY(read_component(path, key, value, &out->components[out->n_components], &skip));
        if (!skip) out->n_components++;
    }
    if (!out->class_name[0])
        return status_fail(CANVAS_ERR_INPUT, "%s: no \"_class_name\": not a diffusers model_index.json", path);
    return CANVAS_OK;
}

canvas_status pipeline_index_load(const char *model_index_path, pipeline_index *out)
{
    *out = (pipeline_index){0};
    json_t *root;
    TRY(cfg_open(model_index_path, &root));
    canvas_status status = read_index(model_index_path, root, out);
    json_decref(root);
    return status;
}

const pipeline_component *pipeline_index_find(const pipeline_index *index, const char *name)
{
    for (int i = 0; i < index->n_components; i++)
        if (!strcmp(index->components[i].name, name)) return &index->components[i];
    return NULL;
}
