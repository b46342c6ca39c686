/* SPDX-License-Identifier: Apache-2.0 */
/* json_file.h — reading JSON files with jansson, allocations routed through mem/. */
#ifndef CANVAS_IO_JSON_FILE_H
#define CANVAS_IO_JSON_FILE_H

#include <jansson.h>

#include "canvas.h"

/* The largest JSON file json_file_load reads (a large model's weight index is well under 1 MiB). */
#define JSON_FILE_MAX_BYTES (64 << 20)

/* Parse a JSON file; CANVAS_ERR_INPUT naming the file, line and column on bad JSON,
 * CANVAS_ERR_INPUT when it is missing or larger than JSON_FILE_MAX_BYTES. The caller
 * json_decref()s *out. */
canvas_status json_file_load(const char *path, json_t **out);

/* The largest model config file (config.json, model_index.json, scheduler_config.json, ...)
 * cfg_open reads: real ones are a few KiB, and a tree of 64 MiB of JSON takes gigabytes
 * (a 62 MB transformer/config.json: 5 GB and 10 s at `canvas serve`'s start-up check). */
#define JSON_CONFIG_MAX_BYTES (1 << 20)

/* json_file_load of a file of at most `max_bytes` (whole MiB), `kind` naming
 * what such a file is in the refusal ("a model's config file"). */
canvas_status json_file_load_at_most(const char *path, size_t max_bytes, const char *kind, json_t **out);

/* Parse JSON text (e.g. the JSON a quantised checkpoint stores in a U8 tensor); `what`
 * names it in errors. (The safetensors header parses itself: it needs the error position.) */
canvas_status json_text_load(const char *text, size_t length, const char *what, json_t **out);

/* Make jansson allocate through mem_alloc (class scratch). Idempotent, thread-safe;
 * it also runs when the library is loaded (a constructor), so a JSON value is never
 * created by one allocator and freed by another. */
void json_use_canvas_allocator(void);

/* jansson reports a failed allocation inside a parse as "invalid JSON", or carries on
 * with a shortened string. So the loaders watch the allocator instead: begin before the
 * jansson call, and when failed() says an allocation failed on this thread since, the
 * result is out-of-memory whatever jansson returned. */
void json_alloc_watch_begin(void);
int json_alloc_watch_failed(void);

#endif
