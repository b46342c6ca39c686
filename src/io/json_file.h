/* json_file.h — reading JSON files with jansson, allocations routed through mem/. */
#ifndef CANVAS_IO_JSON_FILE_H
#define CANVAS_IO_JSON_FILE_H

#include <jansson.h>

#include "canvas.h"

/* Parse a JSON file; CANVAS_ERR_INPUT naming the file, line and column on bad JSON,
 * CANVAS_ERR_INPUT when it is missing. The caller json_decref()s *out. */
canvas_status json_file_load(const char *path, json_t **out);

/* Parse JSON text (e.g. a safetensors header); `what` names it in errors. */
canvas_status json_text_load(const char *text, size_t length, const char *what, json_t **out);

/* Make jansson allocate through mem_alloc (class scratch). Idempotent, thread-safe;
 * the two loaders above call it. Call it before json_dumps etc. too. */
void json_use_canvas_allocator(void);

#endif
