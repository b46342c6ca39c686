/* SPDX-License-Identifier: Apache-2.0 */
/* gguf.c — strict zero-copy reader of the GGUF format (gguf.h).
 *
 * Layout (all little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count;
 * the metadata entries (string key, u32 value type, value); the tensor infos (string name,
 * u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml type, u64 offset); padding to the
 * alignment; the data area. A string is a u64 length and its bytes; an array a u32 element
 * type, a u64 count and the elements. The header is walked once by a cursor that checks
 * every read against the end of the file; counts are checked against the bytes left (each
 * entry takes at least a known number of bytes) before a table is allocated. */
#define _POSIX_C_SOURCE 200809L

#include "io/gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/status.h"
#include "io/file_read.h"
#include "io/file_spans.h"
#include "mem/mem.h"

#define GGUF_FIXED_HEADER 24 /* magic, version, two counts */
#define GGUF_MAX_KEY 65535
/* The fewest bytes one entry can take: a key of 1 byte and a 1-byte value; a tensor info
 * with a 1-byte name and no dims. */
#define MIN_KV_BYTES (8 + 1 + 4 + 1)
#define MIN_TENSOR_INFO_BYTES (8 + 1 + 4 + 4 + 8)

static const char *const VALUE_TYPE_NAMES[GGUF_VALUE_TYPE_COUNT] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
};
/* Bytes of a scalar of each type; for STRING and ARRAY the least an element takes. */
static const uint8_t VALUE_MIN_BYTES[GGUF_VALUE_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};

const char *gguf_value_type_name(gguf_value_type type)
{
    return (unsigned)type < GGUF_VALUE_TYPE_COUNT ? VALUE_TYPE_NAMES[type] : "?";
}

uint64_t gguf_numel(const gguf_tensor *t)
{
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
}

/* ---- the cursor ------------------------------------------------------------------ */

typedef struct cursor {
    const gguf_file *file;
    const unsigned char *base;
    uint64_t pos, end;
    char where[GGUF_MAX_NAME + 32]; /* "tensor 'x'", "key 'y'": what is being read, for messages */
} cursor;

static uint64_t le_bytes(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* n more bytes must be there; `what` names them in the message. */
static canvas_status need(const cursor *c, uint64_t n, const char *what)
{
    if (n > c->end - c->pos)
        return status_fail(CANVAS_ERR_INPUT, "%s: %s: %s needs %llu bytes at offset %llu but the file ends at %llu",
                           c->file->path, c->where, what, (unsigned long long)n, (unsigned long long)c->pos,
                           (unsigned long long)c->end);
    return CANVAS_OK;
}

static canvas_status read_uint(cursor *c, int bytes, const char *what, uint64_t *out)
{
    TRY(need(c, (uint64_t)bytes, what));
    *out = le_bytes(c->base + c->pos, bytes);
    c->pos += (uint64_t)bytes;
    return CANVAS_OK;
}

static canvas_status read_u32(cursor *c, const char *what, uint32_t *out)
{
    uint64_t v;
    TRY(read_uint(c, 4, what, &v));
    *out = (uint32_t)v;
    return CANVAS_OK;
}

static canvas_status read_string(cursor *c, const char *what, gguf_string *out)
{
    uint64_t length;
    TRY(read_uint(c, 8, what, &length));
    TRY(need(c, length, what));
    out->data = (const char *)c->base + c->pos;
    out->length = length;
    c->pos += length;
    return CANVAS_OK;
}

/* A key or tensor name: 1..max bytes, no NUL (it becomes a C string). */
static canvas_status read_name(cursor *c, const char *what, uint64_t max, char **out)
{
    gguf_string s;
    TRY(read_string(c, what, &s));
    if (s.length == 0 || s.length > max || memchr(s.data, '\0', (size_t)s.length))
        return status_fail(CANVAS_ERR_INPUT, "%s: %s: %s of %llu bytes is empty, longer than %llu or holds a NUL byte",
                           c->file->path, c->where, what, (unsigned long long)s.length, (unsigned long long)max);
    TRY(mem_alloc((void **)out, (size_t)s.length + 1, MEM_SCRATCH));
    memcpy(*out, s.data, (size_t)s.length);
    (*out)[s.length] = '\0';
    return CANVAS_OK;
}

/* Room for entry `used` of a table that grows as entries are read (doubling, from 64), so
 * that memory follows what the file really holds, not the count it claims; new entries
 * are zeroed. */
static canvas_status table_room(void **table, int used, int *capacity, size_t entry)
{
    if (used < *capacity) return CANVAS_OK;
    int grown = *capacity ? 2 * *capacity : 64;
    TRY(mem_realloc(table, (size_t)grown * entry, MEM_SCRATCH));
    memset((char *)*table + (size_t)*capacity * entry, 0, (size_t)(grown - *capacity) * entry);
    *capacity = grown;
    return CANVAS_OK;
}

/* ---- metadata values -------------------------------------------------------------- */

static canvas_status read_value_type(cursor *c, const char *what, gguf_value_type *out)
{
    uint32_t code;
    TRY(read_u32(c, what, &code));
    if (code >= GGUF_VALUE_TYPE_COUNT)
        return status_fail(CANVAS_ERR_INPUT, "%s: %s: unknown %s %u", c->file->path, c->where, what, code);
    *out = (gguf_value_type)code;
    return CANVAS_OK;
}

static canvas_status check_bool(const cursor *c, uint64_t value)
{
    if (value > 1)
        return status_fail(CANVAS_ERR_INPUT, "%s: %s: BOOL value %llu is neither 0 nor 1", c->file->path, c->where,
                           (unsigned long long)value);
    return CANVAS_OK;
}

static canvas_status read_value(cursor *c, gguf_value_type type, int depth, gguf_kv *kv);

/* An array's element type and count, then its elements, each checked (strings for their
 * length, nested arrays recursively). The count is checked against the bytes left before
 * the walk, so a hostile count costs nothing. */
static canvas_status read_array(cursor *c, int depth, gguf_kv *kv)
{
    gguf_value_type type;
    uint64_t count;
    TRY(read_value_type(c, "array element type", &type));
    TRY(read_uint(c, 8, "array length", &count));
    if (type == GGUF_ARRAY && depth + 1 >= GGUF_MAX_ARRAY_DEPTH)
        return status_fail(CANVAS_ERR_INPUT, "%s: %s: arrays nested deeper than %d", c->file->path, c->where,
                           GGUF_MAX_ARRAY_DEPTH);
    if (count > (c->end - c->pos) / VALUE_MIN_BYTES[type])
        return status_fail(CANVAS_ERR_INPUT, "%s: %s: array of %llu %s cannot fit in the %llu bytes left",
                           c->file->path, c->where, (unsigned long long)count, VALUE_TYPE_NAMES[type],
                           (unsigned long long)(c->end - c->pos));
    if (kv) {
        kv->value.array.type = type;
        kv->value.array.count = count;
        kv->value.array.data = c->base + c->pos;
    }
    if (type != GGUF_STRING && type != GGUF_ARRAY && type != GGUF_BOOL) {
        c->pos += count * VALUE_MIN_BYTES[type]; /* fits: checked above */
        return CANVAS_OK;
    }
    for (uint64_t i = 0; i < count; i++) TRY(read_value(c, type, depth + 1, NULL));
    return CANVAS_OK;
}

/* One value of `type`; stored into kv when it is not NULL (an array's elements are not). */
static canvas_status read_value(cursor *c, gguf_value_type type, int depth, gguf_kv *kv)
{
    uint64_t raw;
    switch (type) {
    case GGUF_STRING: {
        gguf_string s;
        TRY(read_string(c, "string value", &s));
        if (kv) kv->value.s = s;
        return CANVAS_OK;
    }
    case GGUF_ARRAY: return read_array(c, depth, kv);
    case GGUF_BOOL:
        TRY(read_uint(c, 1, "BOOL value", &raw));
        TRY(check_bool(c, raw));
        if (kv) kv->value.b = (int)raw;
        return CANVAS_OK;
    default: break;
    }
    int bytes = VALUE_MIN_BYTES[type];
    TRY(read_uint(c, bytes, VALUE_TYPE_NAMES[type], &raw));
    if (!kv) return CANVAS_OK;
    switch (type) {
    case GGUF_INT8: kv->value.i = (int8_t)raw; break;
    case GGUF_INT16: kv->value.i = (int16_t)raw; break;
    case GGUF_INT32: kv->value.i = (int32_t)raw; break;
    case GGUF_INT64: kv->value.i = (int64_t)raw; break;
    case GGUF_FLOAT32: {
        uint32_t bits = (uint32_t)raw;
        float f;
        memcpy(&f, &bits, sizeof f);
        kv->value.f = f;
        break;
    }
    case GGUF_FLOAT64: memcpy(&kv->value.f, &raw, sizeof raw); break;
    default: kv->value.u = raw; break; /* the unsigned types */
    }
    return CANVAS_OK;
}

static int compare_kv_pointers(const void *a, const void *b)
{
    return strcmp((*(const gguf_kv *const *)a)->key, (*(const gguf_kv *const *)b)->key);
}

static canvas_status check_duplicate_keys(const gguf_file *file)
{
    if (file->n_kv < 2) return CANVAS_OK;
    const gguf_kv **order;
    TRY(mem_alloc((void **)&order, (size_t)file->n_kv * sizeof *order, MEM_SCRATCH));
    for (int i = 0; i < file->n_kv; i++) order[i] = &file->kv[i];
    qsort(order, (size_t)file->n_kv, sizeof *order, compare_kv_pointers);
    canvas_status status = CANVAS_OK;
    for (int i = 1; i < file->n_kv && status == CANVAS_OK; i++)
        if (strcmp(order[i - 1]->key, order[i]->key) == 0)
            status = status_fail(CANVAS_ERR_INPUT, "%s: key '%s': duplicate metadata key", file->path, order[i]->key);
    mem_free(order);
    return status;
}

static canvas_status read_metadata(gguf_file *file, cursor *c, uint64_t n_kv)
{
    int capacity = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        TRY(table_room((void **)&file->kv, file->n_kv, &capacity, sizeof(gguf_kv)));
        gguf_kv *kv = &file->kv[file->n_kv];
        snprintf(c->where, sizeof c->where, "metadata entry %llu", (unsigned long long)i);
        TRY(read_name(c, "key", GGUF_MAX_KEY, (char **)&kv->key));
        file->n_kv++;
        snprintf(c->where, sizeof c->where, "key '%.*s'", GGUF_MAX_NAME, kv->key);
        TRY(read_value_type(c, "value type", &kv->type));
        TRY(read_value(c, kv->type, 0, kv));
    }
    return check_duplicate_keys(file);
}

/* general.alignment, when given: a UINT32 power of two. */
static canvas_status read_alignment(gguf_file *file)
{
    file->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find_kv(file, "general.alignment");
    if (!kv) return CANVAS_OK;
    if (kv->type != GGUF_UINT32)
        return status_fail(CANVAS_ERR_INPUT, "%s: key 'general.alignment': type %s, expected UINT32", file->path,
                           gguf_value_type_name(kv->type));
    uint64_t a = kv->value.u;
    if (a == 0 || (a & (a - 1)) != 0)
        return status_fail(CANVAS_ERR_INPUT, "%s: key 'general.alignment': %llu is not a power of two", file->path,
                           (unsigned long long)a);
    file->alignment = (uint32_t)a;
    return CANVAS_OK;
}

/* ---- tensor infos ----------------------------------------------------------------- */

/* n_dims and the dims (stored innermost first, kept outermost first); the element count
 * must fit in 63 bits. */
static canvas_status read_shape(const gguf_file *file, cursor *c, gguf_tensor *t)
{
    uint32_t ndim;
    TRY(read_u32(c, "n_dims", &ndim));
    if (ndim > GGUF_MAX_DIMS)
        return status_fail(CANVAS_ERR_INPUT, "%s: %s: %u dims, at most %d supported", file->path, c->where, ndim,
                           GGUF_MAX_DIMS);
    t->ndim = (int)ndim;
    uint64_t numel = 1;
    int empty = 0;
    for (uint32_t d = 0; d < ndim; d++) {
        uint64_t dim;
        TRY(read_uint(c, 8, "dim", &dim));
        if (dim > (uint64_t)INT64_MAX)
            return status_fail(CANVAS_ERR_INPUT, "%s: %s: dim %u is %llu, above 2^63 - 1", file->path, c->where, d,
                               (unsigned long long)dim);
        t->shape[ndim - 1 - d] = (int64_t)dim;
        if (dim == 0) empty = 1;
        else if (!empty && numel > (uint64_t)INT64_MAX / dim)
            return status_fail(CANVAS_ERR_INPUT, "%s: %s: the element count overflows 64 bits", file->path, c->where);
        else if (!empty) numel *= dim;
    }
    return CANVAS_OK;
}

static canvas_status read_tensor_info(const gguf_file *file, cursor *c, gguf_tensor *t)
{
    uint32_t type;
    TRY(read_shape(file, c, t));
    TRY(read_u32(c, "ggml type", &type));
    if (!ggml_type_supported(type))
        return status_fail(CANVAS_ERR_INPUT, "%s: %s: ggml type %u (%s) is not supported", file->path, c->where, type,
                           ggml_type_name(type) ? ggml_type_name(type) : "unknown");
    t->type = (ggml_type)type;
    uint64_t row = t->ndim ? (uint64_t)t->shape[t->ndim - 1] : 1;
    uint32_t block = ggml_type_block_elements(type);
    if (row % block != 0)
        return status_fail(CANVAS_ERR_INPUT, "%s: %s: rows of %llu elements are not whole %u-element blocks of %s",
                           file->path, c->where, (unsigned long long)row, block, ggml_type_name(type));
    if (ggml_type_bytes(type, gguf_numel(t), &t->nbytes) != CANVAS_OK)
        return status_fail(CANVAS_ERR_INPUT, "%s: %s: the byte size of %s overflows 64 bits", file->path, c->where,
                           ggml_type_name(type));
    TRY(read_uint(c, 8, "offset", &t->data_offset));
    if (t->data_offset % file->alignment != 0)
        return status_fail(CANVAS_ERR_INPUT, "%s: %s: offset %llu is not a multiple of the alignment %u", file->path,
                           c->where, (unsigned long long)t->data_offset, file->alignment);
    return CANVAS_OK;
}

static canvas_status read_tensor_infos(gguf_file *file, cursor *c, uint64_t n_tensors)
{
    int capacity = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        TRY(table_room((void **)&file->tensors, file->n_tensors, &capacity, sizeof(gguf_tensor)));
        gguf_tensor *t = &file->tensors[file->n_tensors];
        snprintf(c->where, sizeof c->where, "tensor info %llu", (unsigned long long)i);
        TRY(read_name(c, "tensor name", GGUF_MAX_NAME, (char **)&t->name));
        file->n_tensors++;
        snprintf(c->where, sizeof c->where, "tensor '%s'", t->name);
        TRY(read_tensor_info(file, c, t));
    }
    return CANVAS_OK;
}

/* ---- the tensors together --------------------------------------------------------- */

static int compare_by_name(const void *a, const void *b)
{
    return strcmp(((const gguf_tensor *)a)->name, ((const gguf_tensor *)b)->name);
}

/* Spans must not share a byte (file_spans.h). */
static file_span span_of(const void *tensors, int i)
{
    const gguf_tensor *t = (const gguf_tensor *)tensors + i;
    return (file_span){t->name, t->data_offset, t->nbytes};
}

static canvas_status check_overlaps(const gguf_file *file)
{
    return file_spans_disjoint(file->path, file->tensors, file->n_tensors, span_of);
}

/* Every span inside the data area, so offset + nbytes cannot overflow in check_overlaps. */
static canvas_status check_spans(const gguf_file *file, int header_only)
{
    uint64_t data_bytes = file->map_bytes > file->data_start ? file->map_bytes - file->data_start : 0;
    for (int i = 0; i < file->n_tensors; i++) {
        const gguf_tensor *t = &file->tensors[i];
        uint64_t limit = header_only ? UINT64_MAX : data_bytes;
        if (t->data_offset > limit || t->nbytes > limit - t->data_offset)
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': offset %llu + %llu bytes runs past the data area (%llu bytes)",
                               file->path, t->name, (unsigned long long)t->data_offset,
                               (unsigned long long)t->nbytes, (unsigned long long)data_bytes);
    }
    return CANVAS_OK;
}

static canvas_status check_duplicate_names(const gguf_file *file)
{
    for (int i = 1; i < file->n_tensors; i++)
        if (strcmp(file->tensors[i - 1].name, file->tensors[i].name) == 0)
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': duplicate tensor name", file->path,
                               file->tensors[i].name);
    return CANVAS_OK;
}

/* ---- the header -------------------------------------------------------------------- */

static canvas_status read_fixed_header(gguf_file *file, cursor *c, uint64_t *n_tensors, uint64_t *n_kv)
{
    snprintf(c->where, sizeof c->where, "header");
    if (memcmp(file->map, "GGUF", 4) != 0)
        return status_fail(CANVAS_ERR_INPUT, "%s: not a GGUF file (the first 4 bytes are not \"GGUF\")", file->path);
    c->pos = 4;
    TRY(read_u32(c, "version", &file->version));
    if ((file->version & 0xFFFF) == 0 && file->version != 0)
        return status_fail(CANVAS_ERR_INPUT, "%s: GGUF version 0x%08x: a big-endian file, only little-endian is supported",
                           file->path, file->version);
    if (file->version != 2 && file->version != 3)
        return status_fail(CANVAS_ERR_INPUT, "%s: GGUF version %u is not supported (2 and 3 are)", file->path,
                           file->version);
    TRY(read_uint(c, 8, "tensor count", n_tensors));
    TRY(read_uint(c, 8, "metadata count", n_kv));
    uint64_t left = c->end - c->pos;
    if (*n_kv > GGUF_MAX_KEYS)
        return status_fail(CANVAS_ERR_INPUT, "%s: metadata count %llu: more keys than the %d a model file can have", file->path,
                           (unsigned long long)*n_kv, GGUF_MAX_KEYS);
    if (*n_tensors > GGUF_MAX_TENSORS)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor count %llu: more tensors than the %d a model file can have", file->path,
                           (unsigned long long)*n_tensors, GGUF_MAX_TENSORS);
    if (*n_kv > left / MIN_KV_BYTES || *n_kv > INT32_MAX)
        return status_fail(CANVAS_ERR_INPUT, "%s: metadata count %llu cannot fit in the %llu bytes of the file left",
                           file->path, (unsigned long long)*n_kv, (unsigned long long)left);
    if (*n_tensors > (left - *n_kv * MIN_KV_BYTES) / MIN_TENSOR_INFO_BYTES || *n_tensors > INT32_MAX)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor count %llu cannot fit in the %llu bytes of the file left",
                           file->path, (unsigned long long)*n_tensors, (unsigned long long)left);
    return CANVAS_OK;
}

static canvas_status read_header(gguf_file *file, int header_only)
{
    cursor c = {.file = file, .base = file->map, .pos = 0, .end = file->map_bytes};
    uint64_t n_tensors = 0, n_kv = 0;
    TRY(read_fixed_header(file, &c, &n_tensors, &n_kv));
    TRY(read_metadata(file, &c, n_kv));
    TRY(read_alignment(file));
    TRY(read_tensor_infos(file, &c, n_tensors));
    /* pos <= file size < 2^63 and alignment <= 2^31: no overflow */
    file->data_start = (c.pos + file->alignment - 1) / file->alignment * file->alignment;
    TRY(check_spans(file, header_only));
    TRY(check_overlaps(file));
    if (file->n_tensors > 1) qsort(file->tensors, (size_t)file->n_tensors, sizeof(gguf_tensor), compare_by_name);
    TRY(check_duplicate_names(file));
    for (int i = 0; i < file->n_tensors && !header_only; i++) /* an empty one: the end of the map */
        file->tensors[i].data = (const unsigned char *)file->map +
                                (file->tensors[i].nbytes ? file->data_start + file->tensors[i].data_offset : file->map_bytes);
    return CANVAS_OK;
}

/* ---- opening and closing ----------------------------------------------------------- */

void gguf_close(gguf_file *file)
{
    if (!file) return;
    for (int i = 0; i < file->n_tensors; i++) mem_free((void *)file->tensors[i].name);
    mem_free(file->tensors);
    for (int i = 0; i < file->n_kv; i++) mem_free((void *)file->kv[i].key);
    mem_free(file->kv);
    if (file->map) munmap(file->map, file->map_bytes);
    mem_free(file->path);
    mem_free(file);
}

static canvas_status map_file(gguf_file *file)
{
    int fd;
    size_t bytes;
    TRY(file_open_regular(file->path, &fd, &bytes)); /* a FIFO: refused, not waited on */
    canvas_status status = CANVAS_OK;
    if (bytes < GGUF_FIXED_HEADER) {
        status = status_fail(CANVAS_ERR_INPUT, "%s: file is %zu bytes, shorter than the %d-byte GGUF header",
                             file->path, bytes, GGUF_FIXED_HEADER);
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

static canvas_status open_file(const char *path, int header_only, gguf_file **out)
{
    *out = NULL;
    gguf_file *file;
    TRY(mem_calloc((void **)&file, 1, sizeof *file, MEM_SCRATCH));
    canvas_status status = mem_strdup(&file->path, path);
    if (status == CANVAS_OK) status = map_file(file);
    if (status == CANVAS_OK) status = read_header(file, header_only);
    if (status != CANVAS_OK) {
        gguf_close(file);
        return status;
    }
    *out = file;
    return CANVAS_OK;
}

canvas_status gguf_open(const char *path, gguf_file **out) { return open_file(path, 0, out); }

canvas_status gguf_open_header(const char *path, gguf_file **out) { return open_file(path, 1, out); }

/* ---- lookups ----------------------------------------------------------------------- */

static int compare_name_to_tensor(const void *name, const void *tensor)
{
    return strcmp(name, ((const gguf_tensor *)tensor)->name);
}

const gguf_tensor *gguf_find(const gguf_file *file, const char *name)
{
    if (file->n_tensors == 0) return NULL; /* no table at all */
    return bsearch(name, file->tensors, (size_t)file->n_tensors, sizeof *file->tensors, compare_name_to_tensor);
}

const gguf_kv *gguf_find_kv(const gguf_file *file, const char *key)
{
    for (int i = 0; i < file->n_kv; i++)
        if (strcmp(file->kv[i].key, key) == 0) return &file->kv[i];
    return NULL;
}
