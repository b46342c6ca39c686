/* SPDX-License-Identifier: Apache-2.0 */
/* safetensors.c — strict zero-copy reader and a writer for the .safetensors format.
 *
 * Layout: 8 bytes little-endian header length N, N bytes of JSON header, then the data
 * area. The header maps each tensor name to {dtype, shape, data_offsets [begin, end)}
 * (offsets relative to the data area) plus an optional "__metadata__" object of
 * strings. Reading validates everything before a single tensor byte is touched; the
 * tables built here live in MEM_SCRATCH, the tensor bytes stay in the read-only map. */
#define _POSIX_C_SOURCE 200809L

#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/path.h"
#include "base/status.h"
#include "io/file_read.h"
#include "io/file_spans.h"
#include "io/json_file.h"
#include "io/output_file.h"
#include "mem/mem.h"

#define ST_METADATA_KEY "__metadata__"

/* ---- small helpers --------------------------------------------------------------- */

static uint64_t read_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

uint64_t st_numel(const st_tensor *t)
{
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
}

/* "[2, 3]" into buf, for messages. */
static const char *shape_text(char *buf, size_t size, const int64_t *shape, int ndim)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* Shape x element size, or 0 with *overflow set when it does not fit in 64 bits. */
static uint64_t span_bytes(const int64_t *shape, int ndim, size_t element, int *overflow)
{
    uint64_t bytes = element;
    *overflow = 0;
    for (int d = 0; d < ndim; d++)
        if (shape[d] == 0) return 0; /* an empty tensor, however large its other dims */
    for (int d = 0; d < ndim; d++) {
        uint64_t dim = (uint64_t)shape[d];
        if (bytes > UINT64_MAX / dim) { /* dim > 0: zeros returned above */
            *overflow = 1;
            return 0;
        }
        bytes *= dim;
    }
    return bytes;
}

/* ---- closing --------------------------------------------------------------------- */

void st_close(st_file *file)
{
    if (!file) return;
    for (int i = 0; i < file->n_tensors; i++) mem_free((void *)file->tensors[i].name);
    mem_free(file->tensors);
    for (int i = 0; i < file->n_metadata; i++) {
        mem_free((void *)file->metadata[i].key);
        mem_free((void *)file->metadata[i].value);
    }
    mem_free(file->metadata);
    if (file->map) munmap(file->map, file->map_bytes);
    mem_free(file->path);
    mem_free(file);
}

/* ---- mapping --------------------------------------------------------------------- */

static canvas_status map_file(st_file *file)
{
    int fd;
    size_t bytes;
    TRY(file_open_regular(file->path, &fd, &bytes)); /* a FIFO: refused, not waited on */
    canvas_status status = CANVAS_OK;
    if (bytes < 8) {
        status = status_fail(CANVAS_ERR_INPUT, "%s: file is %zu bytes, shorter than the 8-byte header length field",
                             file->path, bytes);
    } else {
        void *map = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            status = status_fail(CANVAS_ERR_IO, "%s: cannot map %zu bytes: %s", file->path, bytes, strerror(errno));
        } else {
            file->map = map;
            file->map_bytes = bytes;
        }
    }
    close(fd);
    return status;
}

/* ---- header parsing -------------------------------------------------------------- */

/* jansson reports a duplicate key with the position just after the key's closing
 * quote; walk back to the opening quote to name the tensor (escapes left as written). */
static void duplicate_key_name(const char *text, size_t length, int position, char *buf, size_t size)
{
    buf[0] = '\0';
    if (position < 2 || (size_t)position > length || text[position - 1] != '"') return;
    int start = position - 2;
    while (start >= 0 && !(text[start] == '"' && (start == 0 || text[start - 1] != '\\'))) start--;
    if (start < 0) return;
    int n = position - 2 - start;
    if ((size_t)n >= size) n = (int)size - 1;
    memcpy(buf, text + start + 1, (size_t)n);
    buf[n] = '\0';
}

/* Parse the header with jansson (through the project allocator). jansson is called
 * directly rather than through json_text_load because the duplicate-name message
 * needs the error position to name the tensor. */
static canvas_status parse_header(const st_file *file, size_t header_bytes, json_t **out)
{
    json_use_canvas_allocator();
    const char *text = (const char *)file->map + 8;
    json_error_t error;
    json_alloc_watch_begin();
    *out = json_loadb(text, header_bytes, JSON_REJECT_DUPLICATES, &error);
    if (json_alloc_watch_failed()) {
        json_decref(*out);
        *out = NULL;
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s: out of memory while parsing the header", file->path);
    }
    if (*out == NULL) {
        if (strstr(error.text, "duplicate object key")) {
            char name[256];
            duplicate_key_name(text, header_bytes, error.position, name, sizeof name);
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': duplicate tensor name in the header",
                               file->path, name);
        }
        return status_fail(CANVAS_ERR_INPUT, "%s: header is not valid JSON (at byte %d): %s", file->path,
                           error.position, error.text);
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return status_fail(CANVAS_ERR_INPUT, "%s: header is not a JSON object", file->path);
    }
    return CANVAS_OK;
}

static canvas_status read_metadata(st_file *file, json_t *object)
{
    if (!json_is_object(object))
        return status_fail(CANVAS_ERR_INPUT, "%s: __metadata__ is not an object", file->path);
    size_t count = json_object_size(object);
    TRY(mem_calloc((void **)&file->metadata, count ? count : 1, sizeof(st_metadata_entry), MEM_SCRATCH));
    const char *key;
    json_t *value;
    json_object_foreach(object, key, value) {
        if (!json_is_string(value))
            return status_fail(CANVAS_ERR_INPUT, "%s: __metadata__ '%s': value is not a string", file->path, key);
        st_metadata_entry *entry = &file->metadata[file->n_metadata];
        TRY(mem_strdup((char **)&entry->key, key));
        canvas_status status = mem_strdup((char **)&entry->value, json_string_value(value));
        if (status != CANVAS_OK) {
            mem_free((void *)entry->key);
            entry->key = NULL;
            return status;
        }
        file->n_metadata++;
    }
    return CANVAS_OK;
}

static canvas_status read_dtype(const st_file *file, const char *name, json_t *entry, dtype *out)
{
    json_t *value = json_object_get(entry, "dtype");
    if (!value) return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': missing \"dtype\"", file->path, name);
    if (!json_is_string(value))
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': \"dtype\" is not a string", file->path, name);
    if (dtype_from_name(json_string_value(value), out) != CANVAS_OK)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': unknown dtype \"%s\"", file->path, name,
                           json_string_value(value));
    return CANVAS_OK;
}

static canvas_status read_shape(const st_file *file, const char *name, json_t *entry, st_tensor *t)
{
    json_t *shape = json_object_get(entry, "shape");
    if (!shape) return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': missing \"shape\"", file->path, name);
    if (!json_is_array(shape))
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': \"shape\" is not an array", file->path, name);
    size_t ndim = json_array_size(shape);
    if (ndim > ST_MAX_DIMS)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': shape has %zu dims, at most %d supported",
                           file->path, name, ndim, ST_MAX_DIMS);
    t->ndim = (int)ndim;
    for (size_t d = 0; d < ndim; d++) {
        json_t *dim = json_array_get(shape, d);
        if (!json_is_integer(dim) || json_integer_value(dim) < 0)
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': shape dim %zu is not a non-negative integer",
                               file->path, name, d);
        t->shape[d] = (int64_t)json_integer_value(dim);
    }
    return CANVAS_OK;
}

static canvas_status read_offsets(const st_file *file, const char *name, json_t *entry, uint64_t *begin,
                                  uint64_t *end)
{
    json_t *offsets = json_object_get(entry, "data_offsets");
    if (!offsets) return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': missing \"data_offsets\"", file->path, name);
    json_t *b = json_array_get(offsets, 0), *e = json_array_get(offsets, 1);
    if (!json_is_array(offsets) || json_array_size(offsets) != 2 || !json_is_integer(b) || !json_is_integer(e) ||
        json_integer_value(b) < 0 || json_integer_value(e) < 0)
        return status_fail(CANVAS_ERR_INPUT,
                           "%s: tensor '%s': \"data_offsets\" is not a pair of non-negative integers", file->path,
                           name);
    *begin = (uint64_t)json_integer_value(b);
    *end = (uint64_t)json_integer_value(e);
    if (*begin > *end)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': data_offsets [%llu, %llu] end before begin",
                           file->path, name, (unsigned long long)*begin, (unsigned long long)*end);
    return CANVAS_OK;
}

/* Fill t from one header entry; checks everything that concerns this tensor alone. */
static canvas_status read_tensor(const st_file *file, const char *name, json_t *entry, st_tensor *t)
{
    if (!json_is_object(entry))
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': entry is not an object", file->path, name);
    uint64_t begin = 0, end = 0;
    TRY(read_dtype(file, name, entry, &t->type));
    TRY(read_shape(file, name, entry, t));
    TRY(read_offsets(file, name, entry, &begin, &end));
    char shape_buf[256];
    int overflow;
    uint64_t needed = span_bytes(t->shape, t->ndim, dtype_size(t->type), &overflow);
    if (overflow)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': shape %s of %s overflows 64-bit byte counts",
                           file->path, name, shape_text(shape_buf, sizeof shape_buf, t->shape, t->ndim),
                           dtype_name(t->type));
    if (needed != end - begin)
        return status_fail(CANVAS_ERR_INPUT,
                           "%s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes but shape %s of %s needs %llu",
                           file->path, name, (unsigned long long)begin, (unsigned long long)end,
                           (unsigned long long)(end - begin), shape_text(shape_buf, sizeof shape_buf, t->shape, t->ndim),
                           dtype_name(t->type), (unsigned long long)needed);
    uint64_t data_bytes = file->map_bytes - file->data_start;
    if (end > data_bytes)
        return status_fail(CANVAS_ERR_INPUT,
                           "%s: tensor '%s': data_offsets [%llu, %llu] run past the data area (%llu bytes)",
                           file->path, name, (unsigned long long)begin, (unsigned long long)end,
                           (unsigned long long)data_bytes);
    t->nbytes = needed;
    t->data_offset = begin;
    return CANVAS_OK;
}

static int compare_by_name(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

/* Spans must not share a byte (file_spans.h). */
static file_span span_of(const void *tensors, int i)
{
    const st_tensor *t = (const st_tensor *)tensors + i;
    return (file_span){t->name, t->data_offset, t->nbytes};
}

static canvas_status check_overlaps(const st_file *file)
{
    return file_spans_disjoint(file->path, file->tensors, file->n_tensors, span_of);
}

static canvas_status read_entries(st_file *file, json_t *root)
{
    size_t count = json_object_size(root);
    TRY(mem_calloc((void **)&file->tensors, count ? count : 1, sizeof(st_tensor), MEM_SCRATCH));
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, ST_METADATA_KEY) == 0) {
            TRY(read_metadata(file, value));
            continue;
        }
        st_tensor *t = &file->tensors[file->n_tensors];
        TRY(read_tensor(file, key, value, t));
        TRY(mem_strdup((char **)&t->name, key));
        file->n_tensors++;
    }
    TRY(check_overlaps(file));
    qsort(file->tensors, (size_t)file->n_tensors, sizeof(st_tensor), compare_by_name);
    for (int i = 0; i < file->n_tensors; i++)
        file->tensors[i].data = (const unsigned char *)file->map + file->data_start + file->tensors[i].data_offset;
    return CANVAS_OK;
}

static canvas_status read_header(st_file *file)
{
    uint64_t header_bytes = read_le64(file->map);
    uint64_t available = file->map_bytes - 8;
    if (header_bytes > ST_MAX_HEADER_BYTES)
        return status_fail(CANVAS_ERR_INPUT, "%s: header length %llu is above the %u-byte limit", file->path,
                           (unsigned long long)header_bytes, ST_MAX_HEADER_BYTES);
    if (header_bytes > available)
        return status_fail(CANVAS_ERR_INPUT, "%s: header length %llu runs past the end of the file (%llu bytes after the length field)",
                           file->path, (unsigned long long)header_bytes, (unsigned long long)available);
    file->data_start = 8 + (size_t)header_bytes;
    json_t *root;
    TRY(parse_header(file, (size_t)header_bytes, &root));
    canvas_status status = read_entries(file, root);
    json_decref(root);
    return status;
}

canvas_status st_open(const char *path, st_file **out)
{
    *out = NULL;
    st_file *file;
    TRY(mem_calloc((void **)&file, 1, sizeof *file, MEM_SCRATCH));
    canvas_status status = mem_strdup(&file->path, path);
    if (status == CANVAS_OK) status = map_file(file);
    if (status == CANVAS_OK) status = read_header(file);
    if (status != CANVAS_OK) {
        st_close(file);
        return status;
    }
    *out = file;
    return CANVAS_OK;
}

/* ---- lookups --------------------------------------------------------------------- */

static int compare_name_to_tensor(const void *name, const void *tensor)
{
    return strcmp(name, ((const st_tensor *)tensor)->name);
}

const st_tensor *st_find(const st_file *file, const char *name)
{
    return bsearch(name, file->tensors, (size_t)file->n_tensors, sizeof *file->tensors, compare_name_to_tensor);
}

const char *st_metadata(const st_file *file, const char *key)
{
    for (int i = 0; i < file->n_metadata; i++)
        if (strcmp(file->metadata[i].key, key) == 0) return file->metadata[i].value;
    return NULL;
}

/* ---- writing --------------------------------------------------------------------- */

/* Check one tensor to be written; a bad description is the caller's mistake. */
static canvas_status check_write_tensor(const char *path, const st_write_tensor *t, uint64_t *nbytes)
{
    if (!t->name || strcmp(t->name, ST_METADATA_KEY) == 0)
        return status_fail(CANVAS_ERR_USAGE, "%s: tensor name %s is not allowed", path,
                           t->name ? "'" ST_METADATA_KEY "'" : "NULL");
    if ((unsigned)t->type >= (unsigned)DTYPE_COUNT)
        return status_fail(CANVAS_ERR_USAGE, "%s: tensor '%s': dtype %d is not a dtype", path, t->name, (int)t->type);
    if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
        return status_fail(CANVAS_ERR_USAGE, "%s: tensor '%s': %d dims, expected 0..%d", path, t->name, t->ndim,
                           ST_MAX_DIMS);
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] < 0)
            return status_fail(CANVAS_ERR_USAGE, "%s: tensor '%s': dim %d is negative", path, t->name, d);
    int overflow;
    *nbytes = span_bytes(t->shape, t->ndim, dtype_size(t->type), &overflow);
    if (overflow || *nbytes > SIZE_MAX)
        return status_fail(CANVAS_ERR_USAGE, "%s: tensor '%s': byte size overflows", path, t->name);
    if (*nbytes > 0 && !t->data)
        return status_fail(CANVAS_ERR_USAGE, "%s: tensor '%s': no data", path, t->name);
    return CANVAS_OK;
}

/* {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}, or NULL when out of memory. */
static json_t *tensor_entry(const st_write_tensor *t, uint64_t begin, uint64_t end)
{
    json_t *shape = json_array();
    for (int d = 0; shape && d < t->ndim; d++) {
        if (json_array_append_new(shape, json_integer((json_int_t)t->shape[d])) != 0) {
            json_decref(shape);
            shape = NULL;
        }
    }
    json_t *offsets = json_pack("[II]", (json_int_t)begin, (json_int_t)end);
    json_t *entry = NULL;
    if (shape && offsets) entry = json_pack("{s:s,s:O,s:O}", "dtype", dtype_name(t->type), "shape", shape,
                                            "data_offsets", offsets);
    json_decref(shape);
    json_decref(offsets);
    return entry;
}

static canvas_status no_memory(const char *path)
{
    return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s: out of memory building the header", path);
}

static canvas_status add_metadata(const char *path, json_t *root, const st_metadata_entry *metadata,
                                  int n_metadata)
{
    if (n_metadata <= 0) return CANVAS_OK;
    json_t *object = json_object();
    if (!object || json_object_set_new(root, ST_METADATA_KEY, object) != 0) return no_memory(path);
    for (int i = 0; i < n_metadata; i++) {
        if (!metadata[i].key || !metadata[i].value)
            return status_fail(CANVAS_ERR_USAGE, "%s: metadata entry %d has no key or value", path, i);
        if (json_object_get(object, metadata[i].key))
            return status_fail(CANVAS_ERR_USAGE, "%s: metadata key '%s' given twice", path, metadata[i].key);
        if (json_object_set_new(object, metadata[i].key, json_string(metadata[i].value)) != 0)
            return no_memory(path);
    }
    return CANVAS_OK;
}

/* The header object: metadata first, then the tensors packed back to back in order. */
static canvas_status build_header_object(const char *path, const st_write_tensor *tensors, int n_tensors,
                                         const st_metadata_entry *metadata, int n_metadata, json_t *root)
{
    TRY(add_metadata(path, root, metadata, n_metadata));
    uint64_t offset = 0;
    for (int i = 0; i < n_tensors; i++) {
        uint64_t nbytes = 0;
        TRY(check_write_tensor(path, &tensors[i], &nbytes));
        if (json_object_get(root, tensors[i].name))
            return status_fail(CANVAS_ERR_USAGE, "%s: tensor '%s': duplicate tensor name", path, tensors[i].name);
        json_t *entry = tensor_entry(&tensors[i], offset, offset + nbytes);
        if (!entry || json_object_set_new(root, tensors[i].name, entry) != 0) return no_memory(path);
        offset += nbytes;
    }
    return CANVAS_OK;
}

/* Serialise root compactly, padded with spaces to a multiple of 8 as the reference
 * writer does, so the data area starts 8-byte aligned. */
static canvas_status encode_header(const char *path, json_t *root, char **text, size_t *padded)
{
    size_t length = json_dumpb(root, NULL, 0, JSON_COMPACT);
    if (length == 0) return no_memory(path);
    *padded = (length + 7u) & ~(size_t)7u;
    TRY(mem_alloc((void **)text, *padded, MEM_SCRATCH));
    if (json_dumpb(root, *text, length, JSON_COMPACT) != length) {
        mem_free(*text);
        *text = NULL;
        return no_memory(path);
    }
    memset(*text + length, ' ', *padded - length);
    return CANVAS_OK;
}

static int write_all(int fd, const void *data, size_t size)
{
    const unsigned char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size > (1u << 30) ? (1u << 30) : size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

static canvas_status write_contents(int fd, const char *tmp_path, const char *header, size_t header_bytes,
                                    const st_write_tensor *tensors, int n_tensors)
{
    unsigned char length_field[8];
    for (int i = 0; i < 8; i++) length_field[i] = (unsigned char)((uint64_t)header_bytes >> (8 * i));
    int failed = write_all(fd, length_field, 8) || write_all(fd, header, header_bytes);
    for (int i = 0; i < n_tensors && !failed; i++) {
        int overflow;
        uint64_t nbytes = span_bytes(tensors[i].shape, tensors[i].ndim, dtype_size(tensors[i].type), &overflow);
        if (nbytes) failed = write_all(fd, tensors[i].data, (size_t)nbytes);
    }
    int saved_errno = errno;
    if (close(fd) != 0 && !failed) {
        failed = 1;
        saved_errno = errno;
    }
    if (failed) return status_fail(CANVAS_ERR_IO, "%s: cannot write: %s", tmp_path, strerror(saved_errno));
    return CANVAS_OK;
}

canvas_status st_write(const char *path, const st_write_tensor *tensors, int n_tensors,
                       const st_metadata_entry *metadata, int n_metadata)
{
    TRY(file_check_replaceable(path));
    json_use_canvas_allocator();
    json_t *root = json_object();
    if (!root) return no_memory(path);
    char *header = NULL, *tmp_path = NULL;
    size_t header_bytes = 0;
    canvas_status status = build_header_object(path, tensors, n_tensors, metadata, n_metadata, root);
    if (status == CANVAS_OK) status = encode_header(path, root, &header, &header_bytes);
    json_decref(root);
    /* a temporary file of this write's own next to path (two runs writing one output do not
     * mix), renamed into place: readers see the old file or the whole new one */
    int fd = -1;
    if (status == CANVAS_OK) status = mem_alloc((void **)&tmp_path, PATH_BUFFER_SIZE, MEM_SCRATCH);
    if (status == CANVAS_OK) status = output_temp_create(path, tmp_path, PATH_BUFFER_SIZE, &fd);
    if (status == CANVAS_OK)
        status = output_temp_finish(tmp_path, path, write_contents(fd, tmp_path, header, header_bytes, tensors, n_tensors));
    mem_free(tmp_path);
    mem_free(header);
    return status;
}
