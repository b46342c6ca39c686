/* SPDX-License-Identifier: Apache-2.0 */
/* json_file.c — jansson behind the project's allocator, with errors that name the file. */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, fdopen */
#include "io/json_file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/status.h"
#include "io/file_read.h"
#include "mem/mem.h"

static _Thread_local int json_alloc_failed;

static void *json_block_alloc(size_t size)
{
    void *block;
    if (mem_alloc(&block, size, MEM_SCRATCH) == CANVAS_OK) return block;
    json_alloc_failed = 1;
    return NULL;
}

void json_alloc_watch_begin(void) { json_alloc_failed = 0; }
int json_alloc_watch_failed(void) { return json_alloc_failed; }

static void json_block_free(void *block) { mem_free(block); }

static pthread_once_t allocator_once = PTHREAD_ONCE_INIT;
static void install_allocator(void) { json_set_alloc_funcs(json_block_alloc, json_block_free); }
void json_use_canvas_allocator(void) { pthread_once(&allocator_once, install_allocator); }

__attribute__((constructor)) static void install_allocator_at_load(void) { json_use_canvas_allocator(); }

/* Out-of-memory when the watched parse lost an allocation; releases the result. */
static canvas_status parse_lost_memory(json_t *root, const char *what)
{
    if (!json_alloc_watch_failed()) return CANVAS_OK;
    json_decref(root);
    return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory while parsing %s", what);
}

canvas_status json_file_load(const char *path, json_t **out)
{
    return json_file_load_at_most(path, JSON_FILE_MAX_BYTES, "a config, index, cache or case file of JSON", out);
}

canvas_status json_file_load_at_most(const char *path, size_t max_bytes, const char *kind, json_t **out)
{
    json_use_canvas_allocator();
    *out = NULL;
    /* opened without blocking and checked to be a regular file: a FIFO in a model folder
     * must not wait for a writer (json_load_file would) */
    int fd;
    size_t size;
    TRY(file_open_regular(path, &fd, &size));
    if (size > max_bytes) { /* parsed as a tree: many times its size, and minutes */
        close(fd);
        return status_fail(CANVAS_ERR_INPUT, "%s: %zu bytes; %s holds at most %zu MiB", path, size, kind,
                           max_bytes >> 20);
    }
    FILE *file = fdopen(fd, "rb");
    if (!file) {
        close(fd);
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory opening %s", path);
    }
    json_error_t error;
    json_alloc_watch_begin();
    json_t *root = json_loadf(file, JSON_REJECT_DUPLICATES, &error);
    fclose(file);
    TRY(parse_lost_memory(root, path));
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
    json_alloc_watch_begin();
    json_t *root = json_loadb(text, length, JSON_REJECT_DUPLICATES, &error);
    TRY(parse_lost_memory(root, what));
    if (!root)
        return status_fail(CANVAS_ERR_INPUT, "%s: bad JSON at byte %d: %s", what, error.position, error.text);
    *out = root;
    return CANVAS_OK;
}
