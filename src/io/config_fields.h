/* SPDX-License-Identifier: Apache-2.0 */
/* config_fields.h — typed reads of single config.json keys (internal to io/config*.c).
 *
 * Every reader leaves *value untouched when the key is absent or JSON null, so callers
 * fill a struct with the reference defaults first and then let the file override them.
 * A key of the wrong JSON type is CANVAS_ERR_INPUT "PATH: key 'PREFIX.KEY': expected ...".
 * `prefix` names the enclosing object in messages ("" at top level, "vision_config"). */
#ifndef CANVAS_IO_CONFIG_FIELDS_H
#define CANVAS_IO_CONFIG_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "canvas.h"

typedef struct cfg_source {
    const char *path;    /* the file, for messages */
    const char *prefix;  /* "" or the enclosing object's key */
    json_t *object;      /* the object keys are read from */
} cfg_source;

/* Load a config file that must hold a JSON object; the caller json_decref()s *root. */
canvas_status cfg_open(const char *path, json_t **root);

/* 1 when the key is present and not null. */
int cfg_has(const cfg_source *src, const char *key);

/* Integers must be JSON integers within int range. */
canvas_status cfg_int(const cfg_source *src, const char *key, int *value);
/* Reals accept JSON integers and reals. */
canvas_status cfg_double(const cfg_source *src, const char *key, double *value);
canvas_status cfg_bool(const cfg_source *src, const char *key, bool *value);
/* A string copied into a fixed buffer; longer than size-1 is an error. */
canvas_status cfg_string(const cfg_source *src, const char *key, char *value, size_t size);
/* Arrays: *count gets the length (at most max); absent keeps values and *count. */
canvas_status cfg_int_array(const cfg_source *src, const char *key, int *values, int max, int *count);
canvas_status cfg_double_array(const cfg_source *src, const char *key, double *values, int max, int *count);
canvas_status cfg_bool_array(const cfg_source *src, const char *key, bool *values, int max, int *count);
/* A nested object (absent or null: *object NULL); any other type is an error. */
canvas_status cfg_object(const cfg_source *src, const char *key, json_t **object);

/* Range failures: "PATH: key 'K': MUST" as CANVAS_ERR_INPUT. */
canvas_status cfg_bad_value(const cfg_source *src, const char *key, const char *must);
/* CANVAS_ERR_INPUT unless value > 0. */
canvas_status cfg_check_positive(const cfg_source *src, const char *key, double value);
/* Sizes and counts: CANVAS_ERR_INPUT unless 1 <= value <= max. The bounds keep a
 * hostile config from asking for a billion layers (every product of two bounded sizes
 * fits in 64 bits). */
#define CFG_MAX_SIZE (1 << 20)   /* widths, channels, vocabulary: ~1M */
#define CFG_MAX_LAYERS 4096      /* layers, blocks, heads */
canvas_status cfg_check_count(const cfg_source *src, const char *key, int value, int max);

/* When "_class_name" (diffusers) is present it must equal `expected`. */
canvas_status cfg_check_class(const cfg_source *src, const char *expected);

#endif
