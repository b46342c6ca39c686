/* SPDX-License-Identifier: Apache-2.0 */
/* inspect_json.c — `canvas inspect --json`: the report as one JSON object on stdout.
 * Sizes are exact integers (bytes, params); "stored_bytes" is null when the weights are
 * absent. Field names are documented in docs/cli-inspect.md. */
#include <jansson.h>
#include <stdio.h>

#include "base/status.h"
#include "cli/inspect.h"
#include "io/json_file.h"
#include "mem/mem.h"
#include "text/unicode.h"

static json_t *sizes_json(const inspect_sizes *s, int weights_present)
{
    json_t *as = json_object();
    for (int f = 0; f < ARCH_SIZE_FORMAT_COUNT; f++)
        json_object_set_new(as, arch_format_name(ARCH_SIZE_FORMATS[f]), json_integer((json_int_t)s->bytes_as[f]));
    return json_pack("{s:I, s:i, s:o, s:o}", "params", (json_int_t)s->params, "tensors", s->tensors,
                     "stored_bytes", weights_present ? json_integer((json_int_t)s->stored_bytes) : json_null(),
                     "bytes_as", as);
}

static const char *state_name(inspect_state state)
{
    static const char *const names[] = {"checked", "config_only", "listed", "absent"};
    return names[state];
}

static json_t *component_json(const inspect_component *c)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", c->name, "library", c->library, "class_name",
                          c->class_name, "path", c->dir, "state", state_name(c->state));
    if (c->summary[0]) json_object_set_new(o, "summary", json_string(c->summary));
    if (c->state != INSPECT_CHECKED) return o;
    json_object_set_new(o, "weights", json_string(c->single_file ? "single file" : c->weights_present ? "present" : "absent"));
    if (c->weights_present) {
        json_object_set_new(o, "files", json_integer(c->n_files));
        json_object_set_new(o, "stored_dtypes", json_string(c->dtypes));
    }
    json_object_update_new(o, sizes_json(&c->total, c->weights_present));
    json_t *parts = json_array();
    for (int p = 0; p < c->n_parts; p++) {
        json_t *part = json_pack("{s:s}", "label", c->parts[p].label);
        json_object_update_new(part, sizes_json(&c->parts[p].sizes, c->weights_present));
        json_array_append_new(parts, part);
    }
    json_object_set_new(o, "parts", parts);
    if (!c->blocks) return o;
    json_t *blocks = json_array();
    for (int b = 0; b < c->n_blocks; b++) json_array_append_new(blocks, sizes_json(&c->blocks[b], c->weights_present));
    json_object_set_new(o, "blocks", blocks);
    return o;
}

static json_t *file_json(const inspect_report *r)
{
    json_t *dtypes = json_object();
    for (int t = 0; t < DTYPE_COUNT; t++)
        if (r->file_dtypes[t].tensors)
            json_object_set_new(dtypes, dtype_name((dtype)t),
                                json_pack("{s:i, s:I, s:I}", "tensors", r->file_dtypes[t].tensors, "params",
                                          (json_int_t)r->file_dtypes[t].params, "bytes",
                                          (json_int_t)r->file_dtypes[t].bytes));
    return json_pack("{s:s, s:s, s:I, s:i, s:I, s:I, s:i, s:o}", "kind", "file", "path", r->path, "file_bytes",
                     (json_int_t)r->file_size, "tensors", r->file_tensors, "params", (json_int_t)r->file_params,
                     "tensor_bytes", (json_int_t)r->file_bytes, "metadata_entries", r->file_metadata, "dtypes",
                     dtypes);
}

static json_t *report_json(const inspect_report *r)
{
    if (r->kind == INSPECT_FILE) return file_json(r);
    json_t *o = json_pack("{s:s, s:s}", "kind", r->kind == INSPECT_PIPELINE ? "pipeline" : "component", "path",
                          r->path);
    if (r->kind == INSPECT_PIPELINE) json_object_set_new(o, "pipeline_class", json_string(r->pipeline_class));
    json_t *components = json_array();
    int present = 1;
    for (int i = 0; i < r->n_components; i++) {
        json_array_append_new(components, component_json(&r->components[i]));
        if (r->components[i].state == INSPECT_CHECKED) present &= r->components[i].weights_present;
    }
    json_object_set_new(o, "components", components);
    json_object_set_new(o, "total", sizes_json(&r->total, present));
    return o;
}

/* JSON holds only UTF-8 text, and a path need not be (jansson would refuse the string and
 * the report would fail as if out of memory): named instead. */
static canvas_status check_text(const char *what, const char *s)
{
    if (utf8_valid(s)) return CANVAS_OK;
    return status_fail(CANVAS_ERR_USAGE, "inspect --json: the %s '%s' is not valid UTF-8, which JSON cannot hold; "
                       "inspect it without --json, or rename it", what, s);
}

canvas_status inspect_print_json(const inspect_report *report)
{
    TRY(check_text("path", report->path));
    for (int i = 0; report->kind != INSPECT_FILE && i < report->n_components; i++) {
        TRY(check_text("folder", report->components[i].dir));
        TRY(check_text("component", report->components[i].name));
    }
    json_use_canvas_allocator();
    json_t *root = report_json(report);
    /* json_dumps allocates through the canvas allocator (json_use_canvas_allocator) */
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "inspect: out of memory building the JSON report");
    printf("%s\n", text);
    mem_free(text);
    return CANVAS_OK;
}
