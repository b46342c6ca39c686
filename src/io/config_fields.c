/* SPDX-License-Identifier: Apache-2.0 */
/* config_fields.c — typed reads of config.json keys with errors naming file and key. */
#include "io/config_fields.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "io/json_file.h"

static const char *json_type_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "something else";
}

/* The value of a key, or NULL when absent or null (both mean "use the default"). */
static json_t *present(const cfg_source *src, const char *key)
{
    json_t *v = src->object ? json_object_get(src->object, key) : NULL;
    return (v && !json_is_null(v)) ? v : NULL;
}

static canvas_status wrong_type(const cfg_source *src, const char *key, const char *wanted, const json_t *got)
{
    return status_fail(CANVAS_ERR_INPUT, "%s: key '%s%s%s': expected %s, got %s", src->path, src->prefix,
                       src->prefix[0] ? "." : "", key, wanted, json_type_word(got));
}

canvas_status cfg_bad_value(const cfg_source *src, const char *key, const char *must)
{
    return status_fail(CANVAS_ERR_INPUT, "%s: key '%s%s%s': %s", src->path, src->prefix, src->prefix[0] ? "." : "",
                       key, must);
}

int cfg_has(const cfg_source *src, const char *key) { return present(src, key) != NULL; }

static canvas_status int_of(const cfg_source *src, const char *key, const json_t *v, int *value)
{
    if (!json_is_integer(v)) return wrong_type(src, key, "an integer", v);
    json_int_t n = json_integer_value(v);
    if (n < INT_MIN || n > INT_MAX) return cfg_bad_value(src, key, "integer out of range");
    *value = (int)n;
    return CANVAS_OK;
}

static canvas_status double_of(const cfg_source *src, const char *key, const json_t *v, double *value)
{
    if (!json_is_number(v)) return wrong_type(src, key, "a number", v);
    *value = json_number_value(v);
    return CANVAS_OK;
}

static canvas_status bool_of(const cfg_source *src, const char *key, const json_t *v, bool *value)
{
    if (!json_is_boolean(v)) return wrong_type(src, key, "true or false", v);
    *value = json_is_true(v);
    return CANVAS_OK;
}

canvas_status cfg_int(const cfg_source *src, const char *key, int *value)
{
    json_t *v = present(src, key);
    return v ? int_of(src, key, v, value) : CANVAS_OK;
}

canvas_status cfg_double(const cfg_source *src, const char *key, double *value)
{
    json_t *v = present(src, key);
    return v ? double_of(src, key, v, value) : CANVAS_OK;
}

canvas_status cfg_bool(const cfg_source *src, const char *key, bool *value)
{
    json_t *v = present(src, key);
    return v ? bool_of(src, key, v, value) : CANVAS_OK;
}

canvas_status cfg_string(const cfg_source *src, const char *key, char *value, size_t size)
{
    json_t *v = present(src, key);
    if (!v) return CANVAS_OK;
    if (!json_is_string(v)) return wrong_type(src, key, "a string", v);
    const char *text = json_string_value(v);
    if (strlen(text) + 1 > size) return cfg_bad_value(src, key, "string too long");
    memcpy(value, text, strlen(text) + 1);
    return CANVAS_OK;
}

/* The array of a key, checked for type and length; NULL (and OK) when absent. */
static canvas_status array_of(const cfg_source *src, const char *key, int max, json_t **array)
{
    *array = present(src, key);
    if (!*array) return CANVAS_OK;
    if (!json_is_array(*array)) return wrong_type(src, key, "an array", *array);
    if (json_array_size(*array) > (size_t)max) {
        char must[64];
        snprintf(must, sizeof must, "more than %d entries", max);
        return cfg_bad_value(src, key, must);
    }
    return CANVAS_OK;
}

canvas_status cfg_int_array(const cfg_source *src, const char *key, int *values, int max, int *count)
{
    json_t *array;
    TRY(array_of(src, key, max, &array));
    if (!array) return CANVAS_OK;
    for (size_t i = 0; i < json_array_size(array); i++)
        TRY(int_of(src, key, json_array_get(array, i), &values[i]));
    *count = (int)json_array_size(array);
    return CANVAS_OK;
}

canvas_status cfg_double_array(const cfg_source *src, const char *key, double *values, int max, int *count)
{
    json_t *array;
    TRY(array_of(src, key, max, &array));
    if (!array) return CANVAS_OK;
    for (size_t i = 0; i < json_array_size(array); i++)
        TRY(double_of(src, key, json_array_get(array, i), &values[i]));
    *count = (int)json_array_size(array);
    return CANVAS_OK;
}

canvas_status cfg_bool_array(const cfg_source *src, const char *key, bool *values, int max, int *count)
{
    json_t *array;
    TRY(array_of(src, key, max, &array));
    if (!array) return CANVAS_OK;
    for (size_t i = 0; i < json_array_size(array); i++)
        TRY(bool_of(src, key, json_array_get(array, i), &values[i]));
    *count = (int)json_array_size(array);
    return CANVAS_OK;
}

canvas_status cfg_object(const cfg_source *src, const char *key, json_t **object)
{
    *object = present(src, key);
    if (*object && !json_is_object(*object)) {
        json_t *got = *object;
        *object = NULL;
        return wrong_type(src, key, "an object", got);
    }
    return CANVAS_OK;
}

canvas_status cfg_check_positive(const cfg_source *src, const char *key, double value)
{
    return value > 0 && isfinite(value) ? CANVAS_OK : cfg_bad_value(src, key, "must be positive");
}

canvas_status cfg_check_count(const cfg_source *src, const char *key, int value, int max)
{
    if (value >= 1 && value <= max) return CANVAS_OK;
    char must[64];
    snprintf(must, sizeof must, "must be between 1 and %d", max);
    return cfg_bad_value(src, key, must);
}

canvas_status cfg_check_class(const cfg_source *src, const char *expected)
{
    char name[128] = "";
    TRY(cfg_string(src, "_class_name", name, sizeof name));
    if (name[0] && strcmp(name, expected) != 0)
        return status_fail(CANVAS_ERR_INPUT, "%s: this is a %s config, expected %s", src->path, name, expected);
    return CANVAS_OK;
}

canvas_status cfg_open(const char *path, json_t **root)
{
    TRY(json_file_load_at_most(path, JSON_CONFIG_MAX_BYTES, "a model's config file", root));
    if (json_is_object(*root)) return CANVAS_OK;
    json_decref(*root);
    *root = NULL;
    return status_fail(CANVAS_ERR_INPUT, "%s: expected a JSON object at the top level", path);
}
