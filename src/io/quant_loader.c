/* SPDX-License-Identifier: Apache-2.0 */
/* quant_loader.c — recognising quantised weights in safetensors files (quant_loader.h),
 * turning them into the blobs of tensor/quant.h, quantising plain ones on load, and the
 * tensors `canvas convert` writes. */
#include "io/quant_loader.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "io/json_file.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "tensor/ggml_blocks.h"

enum { NAME_SIZE = 512 };

/* Suffixes after "L.weight." that bitsandbytes writes. */
static const char *const bnb_suffixes[] = {"absmax", "quant_map", "nested_absmax", "nested_quant_map"};
/* Suffixes after "L." that fp8 / q8_0 files write next to "L.weight". */
static const char *const layer_suffixes[] = {"scale_weight", "weight_scale", "scale_input", "input_scale", "comfy_quant"};

static int ends_with(const char *text, const char *suffix)
{
    size_t n = strlen(text), m = strlen(suffix);
    return n >= m && strcmp(text + n - m, suffix) == 0;
}

static const st_tensor *find2(const weight_set *files, const char *base, const char *suffix)
{
    char name[NAME_SIZE];
    if (snprintf(name, sizeof name, "%s%s", base, suffix) >= (int)sizeof name) return NULL;
    return weights_find(files, name);
}

/* "L" of "L.weight" into layer ("" when name does not end in ".weight"). */
static void layer_of(const char *name, char *layer, size_t size)
{
    layer[0] = '\0';
    if (!ends_with(name, ".weight")) return;
    size_t n = strlen(name) - strlen(".weight");
    if (n + 1 > size) return;
    memcpy(layer, name, n);
    layer[n] = '\0';
}

static const st_tensor *layer_aux(const weight_set *files, const char *name, const char *suffix)
{
    char layer[NAME_SIZE], full[NAME_SIZE + 32];
    layer_of(name, layer, sizeof layer);
    if (!layer[0]) return NULL;
    snprintf(full, sizeof full, "%s.%s", layer, suffix);
    return weights_find(files, full);
}

/* First tensor whose name starts with `prefix` (the set is sorted by name), or -1. */
static int first_with_prefix(const weight_set *files, const char *prefix)
{
    int low = 0, high = files->n_tensors;
    while (low < high) {
        int mid = low + (high - low) / 2;
        if (strcmp(files->tensors[mid]->name, prefix) < 0) low = mid + 1;
        else high = mid;
    }
    size_t n = strlen(prefix);
    return low < files->n_tensors && strncmp(files->tensors[low]->name, prefix, n) == 0 ? low : -1;
}

static int is_plain_float(dtype t) { return t == DTYPE_F32 || t == DTYPE_F16 || t == DTYPE_BF16; }

int quant_is_stored_quantized(const weight_set *files, const char *name)
{
    const st_tensor *t = weights_find(files, name);
    if (t && !is_plain_float(t->type)) return 1;
    char prefix[NAME_SIZE];
    snprintf(prefix, sizeof prefix, "%s.", name);
    if (first_with_prefix(files, prefix) >= 0) return 1;
    for (size_t i = 0; i < sizeof layer_suffixes / sizeof layer_suffixes[0]; i++)
        if (layer_aux(files, name, layer_suffixes[i])) return 1;
    return 0;
}

int quant_is_auxiliary(const weight_set *files, const char *name)
{
    if (!strcmp(name, "scaled_fp8")) return 1;
    char base[NAME_SIZE];
    /* "L.weight.<anything>": bitsandbytes state of L.weight (unknown ones are reported by
     * quant_describe when the weight is read) */
    const char *at = strstr(name, ".weight.");
    if (at && (size_t)(at - name) + 8 < sizeof base) {
        size_t n = (size_t)(at - name) + strlen(".weight");
        memcpy(base, name, n);
        base[n] = '\0';
        if (weights_find(files, base)) return 1;
    }
    for (size_t i = 0; i < sizeof layer_suffixes / sizeof layer_suffixes[0]; i++) {
        size_t n = strlen(name), m = strlen(layer_suffixes[i]);
        if (n > m + 1 && name[n - m - 1] == '.' && !strcmp(name + n - m, layer_suffixes[i]) && n - m + 7 < sizeof base) {
            memcpy(base, name, n - m);
            memcpy(base + n - m, "weight", 7);
            if (weights_find(files, base)) return 1;
        }
    }
    return 0;
}

/* ---- describing one weight ------------------------------------------------------------ */

static canvas_status load_json_tensor(const weight_set *files, const st_tensor *t, json_t **out)
{
    if (t->type != DTYPE_U8 && t->type != DTYPE_I8)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' should hold UTF-8 JSON as U8, not %s", files->dir, t->name,
                           dtype_name(t->type));
    canvas_status st = json_text_load(t->data, (size_t)t->nbytes, t->name, out);
    if (st != CANVAS_OK) return status_wrap(st, "%s: ", files->dir);
    if (!json_is_object(*out)) {
        json_decref(*out);
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' is not a JSON object", files->dir, t->name);
    }
    return CANVAS_OK;
}

static canvas_status require(const weight_set *files, const char *name, const char *suffix, const st_tensor **out)
{
    *out = find2(files, name, suffix);
    if (!*out)
        return status_fail(CANVAS_ERR_INPUT, "%s: '%s' is stored as bitsandbytes 4-bit but '%s%s' is missing", files->dir,
                           name, name, suffix);
    return CANVAS_OK;
}

static canvas_status expect_numel(const weight_set *files, const st_tensor *t, uint64_t numel, int want_float)
{
    if (st_numel(t) != numel)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' has %llu elements, %llu expected", files->dir, t->name,
                           (unsigned long long)st_numel(t), (unsigned long long)numel);
    if (want_float && !dtype_is_float(t->type))
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' is %s, a float type expected", files->dir, t->name,
                           dtype_name(t->type));
    return CANVAS_OK;
}

/* Element `index` of a stored tensor as f32. */
static float scalar_of(const st_tensor *t, uint64_t index)
{
    float v;
    dtype_to_f32(t->type, (const char *)t->data + index * dtype_size(t->type), &v, 1);
    return v;
}

static canvas_status describe_bnb(const weight_set *files, const char *name, const st_tensor *state, quant_stored *out)
{
    json_t *root;
    TRY(load_json_tensor(files, state, &root));
    canvas_status st = CANVAS_OK;
    const char *type = json_string_value(json_object_get(root, "quant_type"));
    json_t *blocksize = json_object_get(root, "blocksize"), *shape = json_object_get(root, "shape");
    json_t *nested_offset = json_object_get(root, "nested_offset");
    json_t *nested_blocksize = json_object_get(root, "nested_blocksize");
    if (!type || strcmp(type, "nf4") != 0) {
        st = status_fail(CANVAS_ERR_UNSUPPORTED, "%s: '%s': bitsandbytes quant_type '%s' is not supported (only nf4)",
                         files->dir, name, type ? type : "?");
    } else if (!json_is_integer(blocksize) || json_integer_value(blocksize) != QUANT_NF4_BLOCK) {
        st = status_fail(CANVAS_ERR_UNSUPPORTED, "%s: '%s': bitsandbytes blocksize %lld is not supported (only 64)",
                         files->dir, name, json_is_integer(blocksize) ? (long long)json_integer_value(blocksize) : -1LL);
    } else if (!json_is_array(shape) || json_array_size(shape) != 2 || !json_is_integer(json_array_get(shape, 0)) ||
               !json_is_integer(json_array_get(shape, 1))) {
        st = status_fail(CANVAS_ERR_INPUT, "%s: '%s': quant_state 'shape' is not [out, in]", files->dir, name);
    } else {
        out->out_features = json_integer_value(json_array_get(shape, 0));
        out->in_features = json_integer_value(json_array_get(shape, 1));
        if (nested_offset) {
            if (!json_is_number(nested_offset) || !json_is_integer(nested_blocksize) ||
                json_integer_value(nested_blocksize) <= 0)
                st = status_fail(CANVAS_ERR_INPUT, "%s: '%s': quant_state has a bad nested_offset / nested_blocksize",
                                 files->dir, name);
            else {
                out->nested_offset = (float)json_number_value(nested_offset);
                out->nested_blocksize = (int)json_integer_value(nested_blocksize);
            }
        }
    }
    json_decref(root);
    TRY(st);
    if (out->out_features <= 0 || out->in_features <= 0 || !quant_fits(QUANT_NF4, out->in_features))
        return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: '%s': nf4 shape [%lld, %lld] needs in divisible by 64", files->dir,
                           name, (long long)out->out_features, (long long)out->in_features);
    const uint64_t n = (uint64_t)out->out_features * (uint64_t)out->in_features, blocks = n / QUANT_NF4_BLOCK;
    if (out->weight->type != DTYPE_U8) return status_fail(CANVAS_ERR_INPUT, "%s: '%s' should be packed U8", files->dir, name);
    TRY(expect_numel(files, out->weight, n / 2, 0));
    TRY(require(files, name, ".absmax", &out->absmax));
    TRY(require(files, name, ".quant_map", &out->quant_map));
    TRY(expect_numel(files, out->quant_map, 16, 1));
    for (int i = 0; i < 16; i++) {
        float v = scalar_of(out->quant_map, (uint64_t)i);
        if (!(fabsf(v - quant_nf4_values[i]) <= 1e-6f))
            return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: '%s.quant_map' is not the NF4 code (entry %d is %g)", files->dir,
                               name, i, (double)v);
    }
    if (out->nested_blocksize) {
        TRY(require(files, name, ".nested_absmax", &out->nested_absmax));
        TRY(require(files, name, ".nested_quant_map", &out->nested_quant_map));
        if (out->absmax->type != DTYPE_U8)
            return status_fail(CANVAS_ERR_INPUT, "%s: '%s.absmax' should be U8 codes with double quantisation", files->dir,
                               name);
        TRY(expect_numel(files, out->absmax, blocks, 0));
        TRY(expect_numel(files, out->nested_quant_map, 256, 1));
        TRY(expect_numel(files, out->nested_absmax, (blocks + (uint64_t)out->nested_blocksize - 1) / (uint64_t)out->nested_blocksize, 1));
    } else {
        if (find2(files, name, ".nested_absmax") || find2(files, name, ".nested_quant_map"))
            return status_fail(CANVAS_ERR_INPUT, "%s: '%s' has nested absmax tensors but its quant_state no nested_offset",
                               files->dir, name);
        TRY(expect_numel(files, out->absmax, blocks, 1));
    }
    out->format = QUANT_NF4;
    return CANVAS_OK;
}

/* ComfyUI's per-layer comfy_quant JSON: its format must be the fp8 of the weight. */
static canvas_status check_comfy_quant(const weight_set *files, const st_tensor *marker, dtype weight)
{
    json_t *root;
    TRY(load_json_tensor(files, marker, &root));
    const char *format = json_string_value(json_object_get(root, "format"));
    canvas_status st = CANVAS_OK;
    const char *want = weight == DTYPE_F8_E4M3 ? "float8_e4m3fn" : weight == DTYPE_F8_E5M2 ? "float8_e5m2" : NULL;
    if (!format || !want || strcmp(format, want) != 0)
        st = status_fail(CANVAS_ERR_UNSUPPORTED, "%s: '%s': comfy_quant format '%s' is not supported for a %s weight "
                         "(supported: float8_e4m3fn, float8_e5m2)", files->dir, marker->name, format ? format : "?",
                         dtype_name(weight));
    json_decref(root);
    return st;
}

/* A GGUF tensor in a ggml block type (io/weights_file.h): a matrix of whole blocks per row
 * (the GGUF reader checked the blocks) is that type's tensor/quant.h format. */
static canvas_status describe_gguf(const weight_set *files, const char *name, int ggml, quant_stored *out)
{
    const st_tensor *t = out->weight;
    if (t->ndim != 2)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' is %s with %d dimensions; a ggml block type is read only "
                           "for a matrix [out, in]", files->dir, name, ggml_type_name((uint32_t)ggml), t->ndim);
    out->format = quant_format_of_ggml((uint32_t)ggml);
    out->out_features = t->shape[0];
    out->in_features = t->shape[1];
    if (!quant_fits(out->format, out->in_features))
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' is %s [%lld, %lld]: rows are not whole blocks", files->dir,
                           name, ggml_type_name((uint32_t)ggml), (long long)out->out_features,
                           (long long)out->in_features);
    return CANVAS_OK;
}

canvas_status quant_describe(const weight_set *files, const char *name, quant_stored *out)
{
    memset(out, 0, sizeof *out);
    out->weight = weights_find(files, name);
    if (!out->weight) return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' is missing", files->dir, name);
    const st_tensor *t = out->weight;
    const int ggml = weights_ggml_type(files, t);
    if (ggml >= 0 && quant_format_of_ggml((uint32_t)ggml) != QUANT_NONE) return describe_gguf(files, name, ggml, out);

    /* bitsandbytes: everything under "name." must be known */
    char prefix[NAME_SIZE];
    snprintf(prefix, sizeof prefix, "%s.", name);
    const st_tensor *state = NULL;
    int first = first_with_prefix(files, prefix);
    for (int i = first; i >= 0 && i < files->n_tensors && !strncmp(files->tensors[i]->name, prefix, strlen(prefix)); i++) {
        const char *suffix = files->tensors[i]->name + strlen(prefix);
        int known = 0;
        for (size_t s = 0; s < sizeof bnb_suffixes / sizeof bnb_suffixes[0]; s++) known |= !strcmp(suffix, bnb_suffixes[s]);
        if (!strncmp(suffix, "quant_state.bitsandbytes__", 26)) {
            if (strcmp(suffix + 26, "nf4") != 0)
                return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: tensor '%s': bitsandbytes %s quantisation is not supported "
                                   "(only nf4)", files->dir, files->tensors[i]->name, suffix + 26);
            state = files->tensors[i];
            known = 1;
        }
        if (!known)
            return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: tensor '%s': unknown quantisation metadata for '%s'", files->dir,
                               files->tensors[i]->name, name);
    }
    if (first >= 0 && !state)
        return status_fail(CANVAS_ERR_INPUT, "%s: '%s' has bitsandbytes tensors but no '%squant_state.bitsandbytes__nf4'",
                           files->dir, name, prefix);
    if (state) {
        if (layer_aux(files, name, "weight_scale") || layer_aux(files, name, "scale_weight"))
            return status_fail(CANVAS_ERR_INPUT, "%s: '%s' has both bitsandbytes state and an fp8 scale", files->dir, name);
        return describe_bnb(files, name, state, out);
    }

    if (t->ndim != 2)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' should be a matrix [out, in], it has %d dimensions",
                           files->dir, name, t->ndim);
    out->out_features = t->shape[0];
    out->in_features = t->shape[1];
    const st_tensor *scale_weight = layer_aux(files, name, "scale_weight");
    const st_tensor *weight_scale = layer_aux(files, name, "weight_scale");
    const st_tensor *comfy = layer_aux(files, name, "comfy_quant");
    if (scale_weight && weight_scale)
        return status_fail(CANVAS_ERR_INPUT, "%s: '%s' has both '%s' and '%s'; which scale applies is ambiguous", files->dir,
                           name, scale_weight->name, weight_scale->name);
    const st_tensor *scale = scale_weight ? scale_weight : weight_scale;

    if (t->type == DTYPE_F8_E4M3 || t->type == DTYPE_F8_E5M2) {
        if (comfy) TRY(check_comfy_quant(files, comfy, t->type));
        out->format = t->type == DTYPE_F8_E4M3 ? QUANT_FP8_E4M3 : QUANT_FP8_E5M2;
        out->scale = scale;
        if (!scale) return CANVAS_OK; /* plain fp8: scale 1 */
        if (!dtype_is_float(scale->type))
            return status_fail(CANVAS_ERR_INPUT, "%s: scale '%s' is %s, a float type expected", files->dir, scale->name,
                               dtype_name(scale->type));
        if (st_numel(scale) == 1) return CANVAS_OK;
        if ((int64_t)st_numel(scale) == out->out_features && scale->ndim >= 1 && scale->shape[0] == out->out_features) {
            out->per_channel = 1;
            return CANVAS_OK;
        }
        return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: scale '%s' has %llu values; one (per tensor) or %lld (per output "
                           "channel) are supported", files->dir, scale->name, (unsigned long long)st_numel(scale),
                           (long long)out->out_features);
    }
    if (t->type == DTYPE_I8) {
        if (!weight_scale || weight_scale->type != DTYPE_F16 || weight_scale->ndim != 2 ||
            weight_scale->shape[0] != out->out_features || out->in_features % QUANT_Q8_BLOCK ||
            weight_scale->shape[1] != out->in_features / QUANT_Q8_BLOCK)
            return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: '%s' is I8 without q8_0 scales (an F16 '%s' [%lld, %lld] is "
                               "expected)", files->dir, name, weight_scale ? weight_scale->name : "...weight_scale",
                               (long long)out->out_features, (long long)(out->in_features / QUANT_Q8_BLOCK));
        if (comfy) TRY(check_comfy_quant(files, comfy, t->type));
        out->format = QUANT_Q8_0;
        out->scale = weight_scale;
        return CANVAS_OK;
    }
    if (is_plain_float(t->type)) {
        if (scale || comfy)
            return status_fail(CANVAS_ERR_INPUT, "%s: '%s' is stored as %s but has quantisation metadata ('%s')", files->dir,
                               name, dtype_name(t->type), scale ? scale->name : comfy->name);
        return CANVAS_OK;
    }
    return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: tensor '%s' is stored as %s without quantisation metadata this build "
                       "reads (F32, F16, BF16, F8_E4M3, F8_E5M2, bitsandbytes nf4, canvas q8_0)", files->dir, name,
                       dtype_name(t->type));
}

canvas_status quant_check_stored(const weight_set *files, const char *name, int64_t rows, int64_t cols)
{
    quant_stored d;
    TRY(quant_describe(files, name, &d));
    if (d.out_features != rows || d.in_features != cols)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' (%s) holds a [%lld, %lld] matrix, the config implies "
                           "[%lld, %lld]", files->dir, name, quant_format_name(d.format), (long long)d.out_features, (long long)d.in_features,
                           (long long)rows, (long long)cols);
    return CANVAS_OK;
}

/* ---- the store ---------------------------------------------------------------------- */

struct quant_store {
    int count, capacity;
    quant_params **params;   /* MEM_SCRATCH each */
    void **blobs;            /* MEM_WEIGHTS each, NULL when the blob lies in a mapping */
    size_t weight_bytes;
};

canvas_status quant_store_create(quant_store **out)
{
    return mem_calloc((void **)out, 1, sizeof **out, MEM_SCRATCH);
}

void quant_store_free(quant_store *store)
{
    if (!store) return;
    for (int i = 0; i < store->count; i++) {
        mem_free(store->params[i]);
        mem_free(store->blobs[i]);
    }
    mem_free(store->params);
    mem_free(store->blobs);
    mem_free(store);
}

size_t quant_store_bytes(const quant_store *store) { return store ? store->weight_bytes : 0; }

enum { STORE_FIRST_CAPACITY = 64 };

size_t quant_store_table_bytes(int entries)
{
    if (entries <= 0) return 0;
    size_t capacity = STORE_FIRST_CAPACITY;
    while (capacity < (size_t)entries) capacity *= 2;
    return capacity * (sizeof(quant_params *) + sizeof(void *)) + (size_t)entries * sizeof(quant_params);
}

/* A new entry: params copied, a MEM_WEIGHTS blob when `blob_bytes` > 0. */
static canvas_status store_add(quant_store *s, const quant_params *params, size_t blob_bytes, quant_params **p_out,
                               void **blob_out)
{
    if (s->count == s->capacity) {
        int capacity = s->capacity ? 2 * s->capacity : STORE_FIRST_CAPACITY;
        TRY(mem_realloc((void **)&s->params, (size_t)capacity * sizeof *s->params, MEM_SCRATCH));
        TRY(mem_realloc((void **)&s->blobs, (size_t)capacity * sizeof *s->blobs, MEM_SCRATCH));
        s->capacity = capacity;
    }
    quant_params *p;
    TRY(mem_alloc((void **)&p, sizeof *p, MEM_SCRATCH));
    *p = *params;
    void *blob = NULL;
    if (blob_bytes) {
        canvas_status st = mem_alloc(&blob, blob_bytes, MEM_WEIGHTS);
        if (st != CANVAS_OK) {
            mem_free(p);
            return st;
        }
        s->weight_bytes += blob_bytes;
    }
    s->params[s->count] = p;
    s->blobs[s->count] = blob;
    s->count++;
    *p_out = p;
    *blob_out = blob;
    return CANVAS_OK;
}

/* The blob of a stored quantised weight. */
static canvas_status build_from_stored(quant_store *store, const weight_set *files, const char *name,
                                       const quant_stored *d, quant_weight *out)
{
    quant_params layout;
    TRY(quant_layout(d->format, d->per_channel, d->out_features, d->in_features, &layout));
    quant_params *p;
    void *blob;
    if (quant_ggml_type(d->format) >= 0) { /* GGUF blocks: the blob is the tensor where it lies */
        if (d->weight->nbytes != layout.bytes)
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' holds %llu bytes, %s [%lld, %lld] takes %zu", files->dir,
                               name, (unsigned long long)d->weight->nbytes, quant_format_name(d->format),
                               (long long)d->out_features, (long long)d->in_features, layout.bytes);
        if (!d->weight->data)
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': the file holds its header alone, no data", files->dir,
                               name);
        TRY(store_add(store, &layout, 0, &p, &blob));
        *out = (quant_weight){DTYPE_U8, d->weight->data, p, layout.bytes};
        return CANVAS_OK;
    }
    if ((d->format == QUANT_FP8_E4M3 || d->format == QUANT_FP8_E5M2) && !d->per_channel) {
        layout.tensor_scale = d->scale ? scalar_of(d->scale, 0) : 1.0f;
        if (!isfinite(layout.tensor_scale))
            return status_fail(CANVAS_ERR_INPUT, "%s: scale '%s' is not finite", files->dir, d->scale->name);
        TRY(store_add(store, &layout, 0, &p, &blob));
        *out = (quant_weight){DTYPE_U8, d->weight->data, p, layout.bytes}; /* the codes where they lie */
        return CANVAS_OK;
    }
    TRY(store_add(store, &layout, layout.bytes, &p, &blob));
    uint8_t *bytes = blob;
    memset(bytes + layout.codes_bytes, 0, layout.scales_offset - layout.codes_bytes);
    memcpy(bytes, d->weight->data, layout.codes_bytes);
    switch (d->format) {
    case QUANT_FP8_E4M3:
    case QUANT_FP8_E5M2:
        dtype_to_f32(d->scale->type, d->scale->data, (float *)(bytes + layout.scales_offset), layout.n_scales);
        break;
    case QUANT_Q8_0: memcpy(bytes + layout.scales_offset, d->scale->data, layout.n_scales * 2); break;
    default: { /* nf4 */
        float *absmax = (float *)(bytes + layout.scales_offset);
        if (!d->nested_blocksize) {
            dtype_to_f32(d->absmax->type, d->absmax->data, absmax, layout.n_scales);
            break;
        }
        const uint8_t *codes = d->absmax->data;
        for (size_t i = 0; i < layout.n_scales; i++) /* bitsandbytes: code[q] * absmax2[block] + offset, in f32 */
            absmax[i] = scalar_of(d->nested_quant_map, codes[i]) * scalar_of(d->nested_absmax, i / (size_t)d->nested_blocksize) +
                        d->nested_offset;
        break;
    }
    }
    for (size_t i = 0; i < layout.n_scales && d->format != QUANT_Q8_0; i++)
        if (!isfinite(((float *)(bytes + layout.scales_offset))[i]))
            return status_fail(CANVAS_ERR_INPUT, "%s: '%s': scale %zu is not finite", files->dir, name, i);
    *out = (quant_weight){DTYPE_U8, blob, p, layout.bytes};
    return CANVAS_OK;
}

canvas_status quant_weight_from_view(quant_store *store, const weight_set *files, const char *name, int64_t rows,
                                     int64_t cols, quant_choice target, quant_weight *out)
{
    memset(out, 0, sizeof *out);
    quant_stored d;
    TRY(quant_describe(files, name, &d));
    if (d.out_features != rows || d.in_features != cols)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' holds a [%lld, %lld] matrix, [%lld, %lld] expected", files->dir,
                           name, (long long)d.out_features, (long long)d.in_features, (long long)rows, (long long)cols);
    if (d.format != QUANT_NONE) return build_from_stored(store, files, name, &d, out);
    const st_tensor *t = d.weight;
    if (target.format == QUANT_NONE || !quant_fits(target.format, cols)) {
        *out = (quant_weight){t->type, t->data, NULL, (size_t)t->nbytes};
        return CANVAS_OK;
    }
    quant_params layout;
    TRY(quant_layout(target.format, target.per_channel, rows, cols, &layout));
    quant_params *p;
    void *blob;
    TRY(store_add(store, &layout, layout.bytes, &p, &blob));
    TRY(quant_quantize(p, t->type, t->data, blob, name));
    *out = (quant_weight){DTYPE_U8, blob, p, p->bytes};
    return CANVAS_OK;
}

/* ---- writing ------------------------------------------------------------------------- */

/* scratch: 4 names, the nf4 quant_map and the quant_state JSON */
enum { EXPORT_JSON_BYTES = 256 };

size_t quant_export_scratch_bytes(const char *name)
{
    return 4 * (strlen(name) + 64) + 16 * sizeof(float) + EXPORT_JSON_BYTES;
}

int quant_export_tensors(const quant_params *p, const void *blob, const char *name, void *scratch, st_write_tensor *out)
{
    const size_t name_room = strlen(name) + 64;
    char *names = scratch;
    float *map = (float *)(names + 4 * name_room);
    char *json = (char *)(map + 16);
    char layer[NAME_SIZE];
    layer_of(name, layer, sizeof layer);
    const char *bytes = blob;
    memset(out, 0, QUANT_EXPORT_MAX_TENSORS * sizeof *out);
    for (int i = 0; i < QUANT_EXPORT_MAX_TENSORS; i++) out[i].name = names + (size_t)i * name_room;
    snprintf(names, name_room, "%s", name);
    switch (p->format) {
    case QUANT_FP8_E4M3:
    case QUANT_FP8_E5M2:
        out[0] = (st_write_tensor){names, p->format == QUANT_FP8_E4M3 ? DTYPE_F8_E4M3 : DTYPE_F8_E5M2, 2,
                                   {p->out_features, p->in_features}, blob};
        snprintf(names + name_room, name_room, "%s.weight_scale", layer);
        if (p->per_channel)
            out[1] = (st_write_tensor){names + name_room, DTYPE_F32, 1, {p->out_features}, bytes + p->scales_offset};
        else
            out[1] = (st_write_tensor){names + name_room, DTYPE_F32, 0, {0}, &p->tensor_scale};
        return 2;
    case QUANT_Q8_0:
        out[0] = (st_write_tensor){names, DTYPE_I8, 2, {p->out_features, p->in_features}, blob};
        snprintf(names + name_room, name_room, "%s.weight_scale", layer);
        out[1] = (st_write_tensor){names + name_room, DTYPE_F16, 2, {p->out_features, p->in_features / QUANT_Q8_BLOCK},
                                   bytes + p->scales_offset};
        return 2;
    default: { /* nf4, bitsandbytes layout without double quantisation */
        memcpy(map, quant_nf4_values, 16 * sizeof *map);
        /* the JSON bitsandbytes packs (QuantState.as_dict), no double quantisation */
        int length = snprintf(json, EXPORT_JSON_BYTES,
                              "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", "
                              "\"shape\": [%lld, %lld]}", (long long)p->out_features, (long long)p->in_features);
        out[0] = (st_write_tensor){names, DTYPE_U8, 2, {(int64_t)p->codes_bytes, 1}, blob};
        snprintf(names + name_room, name_room, "%s.absmax", name);
        out[1] = (st_write_tensor){names + name_room, DTYPE_F32, 1, {(int64_t)p->n_scales}, bytes + p->scales_offset};
        snprintf(names + 2 * name_room, name_room, "%s.quant_map", name);
        out[2] = (st_write_tensor){names + 2 * name_room, DTYPE_F32, 1, {16}, map};
        snprintf(names + 3 * name_room, name_room, "%s.quant_state.bitsandbytes__nf4", name);
        out[3] = (st_write_tensor){names + 3 * name_room, DTYPE_U8, 1, {length}, json};
        return 4;
    }
    }
}
