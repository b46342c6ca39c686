/* SPDX-License-Identifier: Apache-2.0 */
/* gguf_write.c — a GGUF v3 file, header first, then the tensors as they come
 * (io/gguf_write.h; the layout is io/gguf.c's, read in reverse).
 *
 * The metadata entries are encoded as they are added (a growing byte buffer); the tensor
 * declarations are kept as a table. The first data (or the finish) encodes the header
 * from both, with every tensor's offset: the running total of the tensors before it, each
 * rounded up to the alignment. */
#include "io/gguf_write.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "base/path.h"
#include "base/status.h"
#include "io/file_read.h"
#include "io/gguf.h"
#include "io/output_file.h"
#include "mem/mem.h"
#include "tensor/ggml_blocks.h"

typedef struct declared_tensor {
    char *name;
    uint32_t type;
    int ndim;
    int64_t shape[GGUF_MAX_DIMS]; /* outermost first */
    uint64_t nbytes, offset;      /* offset inside the data area */
} declared_tensor;

struct gguf_writer {
    char *path;
    unsigned char *kv;    /* the encoded entries */
    size_t kv_bytes, kv_room;
    char **keys;
    int n_kv, keys_room;
    declared_tensor *tensors;
    int n_tensors, tensors_room;
    uint64_t data_bytes;  /* the data area so far, the last tensor padded */
    int started;          /* the header is out: no more declarations */
    int fd;
    char tmp[PATH_BUFFER_SIZE];
    int current;          /* the tensor being written */
    uint64_t done;        /* bytes of it written */
    uint64_t position;    /* inside the data area */
    canvas_status failed; /* a failed write leaves the file unusable */
};

static uint64_t align_up(uint64_t n) { return (n + GGUF_DEFAULT_ALIGNMENT - 1) / GGUF_DEFAULT_ALIGNMENT * GGUF_DEFAULT_ALIGNMENT; }

/* Make room for `more` elements of `size` bytes in a growing array. */
static canvas_status grow(void **array, int *room, int used, size_t size)
{
    if (used < *room) return CANVAS_OK;
    int next = *room ? *room * 2 : 16;
    TRY(mem_realloc(array, (size_t)next * size, MEM_SCRATCH));
    *room = next;
    return CANVAS_OK;
}

/* ---- encoding (little-endian) ---------------------------------------------------------- */

static canvas_status put(gguf_writer *w, const void *data, size_t bytes)
{
    if (w->kv_bytes + bytes > w->kv_room) {
        size_t next = w->kv_room ? w->kv_room : 256;
        while (next < w->kv_bytes + bytes) next *= 2;
        TRY(mem_realloc((void **)&w->kv, next, MEM_SCRATCH));
        w->kv_room = next;
    }
    memcpy(w->kv + w->kv_bytes, data, bytes);
    w->kv_bytes += bytes;
    return CANVAS_OK;
}

static void le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static canvas_status put_u32(gguf_writer *w, uint32_t v)
{
    unsigned char b[4];
    le(b, v, 4);
    return put(w, b, 4);
}

static canvas_status put_u64(gguf_writer *w, uint64_t v)
{
    unsigned char b[8];
    le(b, v, 8);
    return put(w, b, 8);
}

static canvas_status put_string(gguf_writer *w, const char *s)
{
    TRY(put_u64(w, strlen(s)));
    return put(w, s, strlen(s));
}

/* ---- declarations ---------------------------------------------------------------------- */

static canvas_status check_open(const gguf_writer *w, const char *what, const char *name)
{
    if (w->failed != CANVAS_OK) return w->failed;
    if (w->started)
        return status_fail(CANVAS_ERR_USAGE, "%s: %s '%s' declared after the tensor data began", w->path, what, name);
    if (!name[0]) return status_fail(CANVAS_ERR_USAGE, "%s: a %s with an empty name", w->path, what);
    return CANVAS_OK;
}

/* A new key: not seen before, remembered; its name encoded. */
static canvas_status begin_kv(gguf_writer *w, const char *key, gguf_value_type type)
{
    TRY(check_open(w, "metadata key", key));
    for (int i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key)) return status_fail(CANVAS_ERR_USAGE, "%s: metadata key '%s' given twice", w->path, key);
    TRY(grow((void **)&w->keys, &w->keys_room, w->n_kv, sizeof *w->keys));
    TRY(mem_strdup(&w->keys[w->n_kv], key));
    w->n_kv++;
    TRY(put_string(w, key));
    return put_u32(w, type);
}

canvas_status gguf_writer_add_string(gguf_writer *w, const char *key, const char *value)
{
    TRY(begin_kv(w, key, GGUF_STRING));
    return put_string(w, value);
}

canvas_status gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t value)
{
    TRY(begin_kv(w, key, GGUF_UINT32));
    return put_u32(w, value);
}

canvas_status gguf_writer_add_strings(gguf_writer *w, const char *key, const char *const *values, int n_values)
{
    if (n_values < 0) return status_fail(CANVAS_ERR_USAGE, "%s: metadata key '%s': %d strings", w->path, key, n_values);
    TRY(begin_kv(w, key, GGUF_ARRAY));
    TRY(put_u32(w, GGUF_STRING));
    TRY(put_u64(w, (uint64_t)n_values));
    for (int i = 0; i < n_values; i++) TRY(put_string(w, values[i]));
    return CANVAS_OK;
}

canvas_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t ggml_type, int ndim, const int64_t *shape)
{
    TRY(check_open(w, "tensor", name));
    if (strlen(name) > GGUF_MAX_NAME)
        return status_fail(CANVAS_ERR_USAGE, "%s: tensor '%.40s...': name longer than %d bytes", w->path, name, GGUF_MAX_NAME);
    for (int i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name)) return status_fail(CANVAS_ERR_USAGE, "%s: tensor '%s' given twice", w->path, name);
    if (!ggml_type_supported(ggml_type))
        return status_fail(CANVAS_ERR_USAGE, "%s: tensor '%s': ggml type %u cannot be written", w->path, name, ggml_type);
    if (ndim < 1 || ndim > GGUF_MAX_DIMS)
        return status_fail(CANVAS_ERR_USAGE, "%s: tensor '%s': %d dims (1..%d)", w->path, name, ndim, GGUF_MAX_DIMS);
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (numel != 0 && (uint64_t)shape[d] > UINT64_MAX / numel))
            return status_fail(CANVAS_ERR_USAGE, "%s: tensor '%s': dim %d is %lld", w->path, name, d, (long long)shape[d]);
        numel *= (uint64_t)shape[d];
    }
    if (shape[ndim - 1] % ggml_type_block_elements(ggml_type) != 0)
        return status_fail(CANVAS_ERR_USAGE, "%s: tensor '%s': rows of %lld are not whole %s blocks", w->path, name,
                           (long long)shape[ndim - 1], ggml_type_name(ggml_type));
    declared_tensor t = {.type = ggml_type, .ndim = ndim, .offset = w->data_bytes};
    memcpy(t.shape, shape, (size_t)ndim * sizeof *shape);
    TRY(ggml_type_bytes(ggml_type, numel, &t.nbytes));
    if (t.nbytes > UINT64_MAX / 2 - w->data_bytes)
        return status_fail(CANVAS_ERR_USAGE, "%s: tensor '%s': the data area overflows", w->path, name);
    TRY(grow((void **)&w->tensors, &w->tensors_room, w->n_tensors, sizeof *w->tensors));
    TRY(mem_strdup(&t.name, name));
    w->tensors[w->n_tensors++] = t;
    w->data_bytes = align_up(t.offset + t.nbytes);
    return CANVAS_OK;
}

canvas_status gguf_writer_create(const char *path, gguf_writer **out)
{
    *out = NULL;
    gguf_writer *w;
    TRY(mem_calloc((void **)&w, 1, sizeof *w, MEM_SCRATCH));
    w->fd = -1;
    canvas_status st = mem_strdup(&w->path, path);
    if (st == CANVAS_OK) st = gguf_writer_add_u32(w, "general.alignment", GGUF_DEFAULT_ALIGNMENT);
    if (st != CANVAS_OK) return gguf_writer_finish(w, st);
    *out = w;
    return CANVAS_OK;
}

/* ---- the file -------------------------------------------------------------------------- */

static canvas_status write_all(gguf_writer *w, const void *data, size_t size)
{
    const unsigned char *p = data;
    while (size > 0) {
        ssize_t n = write(w->fd, p, size > (1u << 30) ? (1u << 30) : size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return w->failed = status_fail(CANVAS_ERR_IO, "%s: cannot write: %s", w->tmp, strerror(errno));
        p += n;
        size -= (size_t)n;
    }
    return CANVAS_OK;
}

static canvas_status write_zeros(gguf_writer *w, uint64_t n)
{
    static const unsigned char zeros[GGUF_DEFAULT_ALIGNMENT];
    while (n > 0) {
        size_t chunk = n > sizeof zeros ? sizeof zeros : (size_t)n;
        TRY(write_all(w, zeros, chunk));
        n -= chunk;
    }
    return CANVAS_OK;
}

/* Create the temporary file and write the header, padded to the alignment. */
static canvas_status start(gguf_writer *w)
{
    w->started = 1;
    TRY(file_check_replaceable(w->path));
    TRY(output_temp_create(w->path, w->tmp, sizeof w->tmp, &w->fd));
    /* the tensor infos go after the entries, in the same buffer */
    for (int i = 0; i < w->n_tensors; i++) {
        const declared_tensor *t = &w->tensors[i];
        TRY(put_string(w, t->name));
        TRY(put_u32(w, (uint32_t)t->ndim));
        for (int d = t->ndim - 1; d >= 0; d--) TRY(put_u64(w, (uint64_t)t->shape[d])); /* ne[0] first */
        TRY(put_u32(w, t->type));
        TRY(put_u64(w, t->offset));
    }
    unsigned char head[24];
    memcpy(head, "GGUF", 4);
    le(head + 4, 3, 4);
    le(head + 8, (uint64_t)w->n_tensors, 8);
    le(head + 16, (uint64_t)w->n_kv, 8);
    const uint64_t header = sizeof head + w->kv_bytes;
    TRY(write_all(w, head, sizeof head));
    TRY(write_all(w, w->kv, w->kv_bytes));
    return write_zeros(w, align_up(header) - header);
}

canvas_status gguf_writer_write(gguf_writer *w, const void *data, size_t bytes)
{
    if (w->failed != CANVAS_OK) return w->failed;
    if (!w->started && (w->failed = start(w)) != CANVAS_OK) return w->failed;
    const unsigned char *p = data;
    while (bytes > 0) {
        if (w->current < w->n_tensors && w->done == w->tensors[w->current].nbytes) {
            w->current++;
            w->done = 0;
        }
        if (w->current >= w->n_tensors)
            return w->failed = status_fail(CANVAS_ERR_USAGE, "%s: more tensor data than the %d tensors declared", w->path,
                                           w->n_tensors);
        const declared_tensor *t = &w->tensors[w->current];
        if (w->done == 0) { /* the padding before it */
            TRY(write_zeros(w, t->offset - w->position));
            w->position = t->offset;
        }
        uint64_t left = t->nbytes - w->done;
        size_t n = bytes < left ? bytes : (size_t)left;
        TRY(write_all(w, p, n));
        p += n, bytes -= n, w->done += n, w->position += n;
    }
    return CANVAS_OK;
}

canvas_status gguf_writer_finish(gguf_writer *w, canvas_status st)
{
    if (!w) return st;
    if (st == CANVAS_OK) st = w->failed;
    if (st == CANVAS_OK && !w->started) st = start(w);
    int at = w->current; /* the first tensor not written whole */
    uint64_t have = w->done;
    while (at < w->n_tensors && have == w->tensors[at].nbytes) at++, have = 0; /* empty tensors included */
    if (st == CANVAS_OK && at < w->n_tensors)
        st = status_fail(CANVAS_ERR_USAGE, "%s: tensor '%s' has %llu of its %llu bytes", w->path, w->tensors[at].name,
                         (unsigned long long)have, (unsigned long long)w->tensors[at].nbytes);
    if (st == CANVAS_OK) st = write_zeros(w, w->data_bytes - w->position); /* the last tensor padded, as ggml does */
    if (w->fd >= 0) {
        if (close(w->fd) != 0 && st == CANVAS_OK) st = status_fail(CANVAS_ERR_IO, "%s: cannot write: %s", w->tmp, strerror(errno));
        st = output_temp_finish(w->tmp, w->path, st);
    }
    for (int i = 0; i < w->n_kv; i++) mem_free(w->keys[i]);
    for (int i = 0; i < w->n_tensors; i++) mem_free(w->tensors[i].name);
    mem_free(w->keys);
    mem_free(w->tensors);
    mem_free(w->kv);
    mem_free(w->path);
    mem_free(w);
    return st;
}
