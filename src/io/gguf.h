/* SPDX-License-Identifier: Apache-2.0 */
/* gguf.h — strict, zero-copy reader of GGUF files (llama.cpp / ComfyUI-GGUF checkpoints).
 *
 * gguf_open maps the file read-only and validates everything before returning: magic
 * "GGUF", version 2 or 3 (little-endian; the two differ only in what v3 allows big-endian
 * writers), every count, string length and array length against the bytes left in the file
 * before anything is allocated, every metadata value type (arrays of arrays up to
 * GGUF_MAX_ARRAY_DEPTH), no duplicate key, general.alignment a UINT32 power of two
 * (default 32), tensor infos with 1..GGUF_MAX_DIMS dims, a decodable ggml type
 * (tensor/ggml_blocks.h), rows of whole blocks, offsets multiples of the alignment, data
 * inside the file, no two tensors sharing a byte and no duplicate names. Any failure is
 * CANVAS_ERR_INPUT with a message that starts with the file path (as given) and names the
 * tensor or key ("m.gguf: tensor 'x': offset 96 + 144 bytes runs past the data area (200
 * bytes)"). After a successful open, tensor data pointers and string values point into the
 * mapping; the tables (tensor names, keys) live in MEM_SCRATCH.
 *
 * Decisions where the format is loose (ggml's own reader is the reference):
 *   - Gaps between tensors are accepted (ggml insists on packing); overlaps are not.
 *   - A tensor name is 1..GGUF_MAX_NAME bytes without NUL (ggml allows 63); a key 1..65535.
 *   - A BOOL value must be 0 or 1.
 *   - Types ggml has but this build cannot decode (IQ*, Q8_1, I32...) are refused by name.
 *
 * Shapes are given outermost first, as PyTorch and safetensors do: shape[ndim - 1] is
 * GGUF's ne[0], the contiguous dimension along which blocks run (a Linear weight [out, in]
 * is stored with ne = {in, out} and read here as shape {out, in}).
 *
 * gguf_open_header reads a file that may hold the header alone (what `canvas plan` needs of
 * a checkpoint it will not load): everything is checked as above except that the tensor
 * data lies inside the file, and every tensor's data pointer is NULL. */
#ifndef CANVAS_IO_GGUF_H
#define CANVAS_IO_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "tensor/ggml_blocks.h"

#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NAME 255
#define GGUF_MAX_ARRAY_DEPTH 4
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_TYPE_CODES 32  /* ggml type codes that can be supported: 0..31 */
#define GGUF_MAX_BLOCKS 4096
/* At most this many tensors and metadata keys: a model file holds a few thousand (Edit-2511's
 * transformer 1,933); a hostile header claiming millions would cost hundreds of bytes of
 * tables each before anything else could refuse it. */
#define GGUF_MAX_TENSORS 65536
#define GGUF_MAX_KEYS 65536

typedef enum gguf_value_type {
    GGUF_UINT8 = 0,
    GGUF_INT8 = 1,
    GGUF_UINT16 = 2,
    GGUF_INT16 = 3,
    GGUF_UINT32 = 4,
    GGUF_INT32 = 5,
    GGUF_FLOAT32 = 6,
    GGUF_BOOL = 7,
    GGUF_STRING = 8,
    GGUF_ARRAY = 9,
    GGUF_UINT64 = 10,
    GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
    GGUF_VALUE_TYPE_COUNT
} gguf_value_type;

/* A string inside the mapping: `length` bytes, not NUL-terminated, may hold any byte. */
typedef struct gguf_string {
    const char *data;
    uint64_t length;
} gguf_string;

typedef struct gguf_kv {
    const char *key;        /* NUL-terminated copy */
    gguf_value_type type;
    union {
        uint64_t u;         /* UINT8 UINT16 UINT32 UINT64 */
        int64_t i;          /* INT8 INT16 INT32 INT64 */
        double f;           /* FLOAT32 FLOAT64 */
        int b;              /* BOOL: 0 or 1 */
        gguf_string s;      /* STRING */
        struct {
            gguf_value_type type; /* of the elements */
            uint64_t count;
            const unsigned char *data; /* the elements as stored (little-endian), in the mapping */
        } array;            /* ARRAY */
    } value;
} gguf_kv;

typedef struct gguf_tensor {
    const char *name;
    ggml_type type;
    int ndim;
    int64_t shape[GGUF_MAX_DIMS]; /* outermost first (see above) */
    uint64_t nbytes;        /* whole blocks of `type` for the elements */
    uint64_t data_offset;   /* inside the data area */
    const void *data;       /* into the mapping; NULL from gguf_open_header */
} gguf_tensor;

typedef struct gguf_file {
    char *path;
    void *map;              /* the whole file, read-only */
    size_t map_bytes;
    uint32_t version;
    uint32_t alignment;     /* general.alignment or 32 */
    uint64_t data_start;    /* the end of the header rounded up to the alignment */
    int n_kv;
    gguf_kv *kv;            /* in file order */
    int n_tensors;
    gguf_tensor *tensors;   /* sorted by name */
} gguf_file;

canvas_status gguf_open(const char *path, gguf_file **out);
canvas_status gguf_open_header(const char *path, gguf_file **out);
void gguf_close(gguf_file *file);

/* Tensor by name (binary search), or NULL. */
const gguf_tensor *gguf_find(const gguf_file *file, const char *name);
/* Metadata entry by key, or NULL. */
const gguf_kv *gguf_find_kv(const gguf_file *file, const char *key);
/* Number of elements of a tensor (product of its shape). */
uint64_t gguf_numel(const gguf_tensor *t);
/* "UINT32", "STRING", ... ("?" for a code outside the enum). */
const char *gguf_value_type_name(gguf_value_type type);

/* What a GGUF checkpoint weighs, from its header alone (what `canvas plan` needs). Blocks
 * are the tensors named "<block_prefix>N.<rest>", after an optional ComfyUI prefix
 * "model.diffusion_model." (block_prefix "transformer_blocks." for the Qwen-Image
 * transformer, "blk." for a llama.cpp text encoder). */
typedef struct gguf_weight_summary {
    uint64_t params;            /* elements of every tensor */
    uint64_t stored_bytes;      /* bytes of every tensor as stored */
    int n_blocks;               /* highest block index + 1 (0: no block tensors) */
    uint64_t block_bytes_max;   /* the heaviest block */
    uint64_t block_bytes_total; /* every block together */
    uint64_t other_bytes;       /* the tensors outside the blocks */
    uint64_t bytes_by_type[GGUF_TYPE_CODES]; /* stored bytes per ggml type code */
    uint64_t params_by_type[GGUF_TYPE_CODES];
    int tensors_by_type[GGUF_TYPE_CODES];
} gguf_weight_summary;

/* Fill *out (zeroed first). CANVAS_ERR_INPUT naming the file and tensor for a block index
 * above GGUF_MAX_BLOCKS; CANVAS_ERR_OUT_OF_MEMORY. */
canvas_status gguf_summarize(const gguf_file *file, const char *block_prefix, gguf_weight_summary *out);

#endif
