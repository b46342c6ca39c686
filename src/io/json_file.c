/* json_file.c — jansson behind the project's allocator, with errors that name the file. */
#include "io/json_file.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"

static void *json_block_alloc(size_t size)
{
    void *block;
    return mem_alloc(&block, size, MEM_SCRATCH) == CANVAS_OK ? block : NULL;
}

static void json_block_free(void *block) { mem_free(block); }

static pthread_once_t allocator_once = PTHREAD_ONCE_INIT;
static void install_allocator(void) { json_set_alloc_funcs(json_block_alloc, json_block_free); }
void json_use_canvas_allocator(void) { pthread_once(&allocator_once, install_allocator); }

canvas_status json_file_load(const char *path, json_t **out)
{
    json_use_canvas_allocator();
    *out = NULL;
    json_error_t error;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    if (root) {
        *out = root;
        return CANVAS_OK;
    }
    if (error.line < 0 || strstr(error.text, "unable to open"))
        return status_fail(CANVAS_ERR_INPUT, "%s: cannot read: %s", path, error.text);
    return status_fail(CANVAS_ERR_INPUT, "%s:%d:%d: bad JSON: %s", path, error.line, error.column, error.text);
}

canvas_status json_text_load(const char *text, size_t length, const char *what, json_t **out)
{
    json_use_canvas_allocator();
    *out = NULL;
    json_error_t error;
    json_t *root = json_loadb(text, length, JSON_REJECT_DUPLICATES, &error);
    if (!root)
        return status_fail(CANVAS_ERR_INPUT, "%s: bad JSON at byte %d: %s", what, error.position, error.text);
    *out = root;
    return CANVAS_OK;
}
