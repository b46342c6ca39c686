/* SPDX-License-Identifier: Apache-2.0 */
/* weights_file.c — a component's weight set from one file (io/weights_file.h).
 *
 * The file is opened with the strict safetensors reader; the set's table then holds copies
 * of its tensor entries under translated names (prefix stripped, original VAE names
 * renamed), so every loader, arch_check and the quantised-weight reader find the tensors
 * exactly as in a diffusers folder. The data pointers still point into the mapping. A GGUF
 * file is read with the strict GGUF reader and shown to the same code as an st_file (its
 * view: gguf_view), so prefixes, markers and names are handled once for both formats. */
#define _POSIX_C_SOURCE 200809L

#include "io/weights_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/status.h"
#include "io/gguf.h"
#include "mem/mem.h"

enum { NAME_SIZE = 512, MAX_ANCHORS = 2 };

typedef struct component_info {
    const char *name;
    const char *anchors[MAX_ANCHORS]; /* a tensor every file of the component has, preferred first */
} component_info;

static const component_info components[WEIGHTS_COMPONENT_COUNT] = {
    [WEIGHTS_TRANSFORMER] = {"transformer", {"img_in.weight", NULL}},
    [WEIGHTS_VAE] = {"vae", {"decoder.conv_in.weight", "decoder.conv1.weight"}},
    [WEIGHTS_TEXT_ENCODER] = {"text encoder", {"model.language_model.embed_tokens.weight", "model.embed_tokens.weight"}},
};

/* The original-layout VAE anchor: its presence means the names need renaming. */
static const char *const vae_original_anchor = "decoder.conv1.weight";

const char *weights_component_name(weights_component component)
{
    return component >= 0 && component < WEIGHTS_COMPONENT_COUNT ? components[component].name : "component";
}

int weights_is_file(const char *path)
{
    struct stat info;
    return path && stat(path, &info) == 0 && S_ISREG(info.st_mode);
}

/* ---- format dispatch --------------------------------------------------------------- */

/* GGUF by name or by magic; read with open/read so that nothing here allocates. */
int weights_is_gguf(const char *path)
{
    size_t n = strlen(path);
    if (n >= 5 && strcasecmp(path + n - 5, ".gguf") == 0) return 1;
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return 0;
    char magic[4];
    int gguf = read(fd, magic, sizeof magic) == (ssize_t)sizeof magic && memcmp(magic, "GGUF", 4) == 0;
    close(fd);
    return gguf;
}

/* ---- the key prefix ---------------------------------------------------------------- */

/* Length of the prefix when `name` ends with `anchor` on a '.' boundary, else -1. */
static long anchored_prefix(const char *name, const char *anchor)
{
    size_t n = strlen(name), a = strlen(anchor);
    if (n < a || strcmp(name + n - a, anchor) != 0) return -1;
    if (n > a && name[n - a - 1] != '.') return -1;
    return (long)(n - a);
}

/* The prefix under which the file holds `component`: its length in *prefix (the text is
 * the start of *owner's name), *anchor the anchor matched. 0 when none matches; -1 (with
 * the error set) when the anchor is there under two prefixes. */
static int find_prefix(const st_file *file, weights_component component, const char **owner, long *prefix,
                       const char **anchor)
{
    for (int a = 0; a < MAX_ANCHORS && components[component].anchors[a]; a++) {
        const char *want = components[component].anchors[a];
        *owner = NULL;
        for (int i = 0; i < file->n_tensors; i++) {
            const char *name = file->tensors[i].name;
            long length = anchored_prefix(name, want);
            if (length < 0) continue;
            if (*owner && (length != *prefix || strncmp(name, *owner, (size_t)length) != 0)) {
                status_fail(CANVAS_ERR_INPUT, "%s: holds two %ss ('%s' and '%s'); give a file with one", file->path,
                            components[component].name, *owner, name);
                return -1;
            }
            *owner = name;
            *prefix = length;
        }
        if (*owner) {
            *anchor = want;
            return 1;
        }
    }
    return 0;
}

/* No such component: say what the file looks like instead. */
static canvas_status no_component(const st_file *file, weights_component component)
{
    char seen[600] = "";
    size_t used = 0;
    for (int i = 0; i < file->n_tensors && i < 3 && used < sizeof seen; i++)
        used += (size_t)snprintf(seen + used, sizeof seen - used, "%s'%s'", i ? ", " : "", file->tensors[i].name);
    const char *looks = "no Qwen-Image component";
    for (int c = 0; c < WEIGHTS_COMPONENT_COUNT; c++) {
        const char *owner, *anchor;
        long length;
        if (c != (int)component && find_prefix(file, (weights_component)c, &owner, &length, &anchor) != 0) {
            status_clear();
            looks = components[c].name;
            break;
        }
    }
    const component_info *want = &components[component];
    return status_fail(CANVAS_ERR_INPUT,
                       "%s: not a Qwen-Image %s file: %d tensors (%s%s), no '%s'%s%s%s under any key prefix; it looks "
                       "like: %s",
                       file->path, want->name, file->n_tensors, seen, file->n_tensors > 3 ? ", ..." : "",
                       want->anchors[0], want->anchors[1] ? " or '" : "", want->anchors[1] ? want->anchors[1] : "",
                       want->anchors[1] ? "'" : "", looks);
}

/* ---- original VAE names (spec A.11) -------------------------------------------------- */

/* The rest of a name after `head`, or NULL when it does not start so. */
static const char *after(const char *name, const char *head)
{
    size_t n = strlen(head);
    return strncmp(name, head, n) == 0 ? name + n : NULL;
}

/* A block's inner names: the residual Sequential's indices and the shortcut. */
static const char *block_part(const char *rest, const char **tail)
{
    static const char *const from[] = {"residual.0.", "residual.2.", "residual.3.", "residual.6.", "shortcut."};
    static const char *const to[] = {"norm1.", "conv1.", "norm2.", "conv2.", "conv_shortcut."};
    for (int i = 0; i < 5; i++)
        if ((*tail = after(rest, from[i])) != NULL) return to[i];
    *tail = rest; /* resample.1.*, time_conv.*: unchanged */
    return "";
}

/* "K.rest" -> K and rest; 0 when it is not a number and a dot. */
static int block_index(const char *text, long *index, const char **rest)
{
    if (*text < '0' || *text > '9') return 0;
    long k = 0;
    while (*text >= '0' && *text <= '9' && k < 1000000) k = k * 10 + (*text++ - '0');
    if (*text != '.') return 0;
    *index = k;
    *rest = text + 1;
    return 1;
}

/* 1 when snprintf's result fit, else -1 (the caller reports a name too long). */
static int fitted(int n, size_t size)
{
    return n >= 0 && (size_t)n < size ? 1 : -1;
}

static int side_name(const char *side, const char *rest, int per_up_block, char *out, size_t size)
{
    const char *tail, *inner;
    long k;
    if ((tail = after(rest, "conv1.")) != NULL) return fitted(snprintf(out, size, "%s.conv_in.%s", side, tail), size);
    if ((tail = after(rest, "head.0.")) != NULL) return fitted(snprintf(out, size, "%s.norm_out.%s", side, tail), size);
    if ((tail = after(rest, "head.2.")) != NULL) return fitted(snprintf(out, size, "%s.conv_out.%s", side, tail), size);
    if ((tail = after(rest, "middle.1.")) != NULL)
        return fitted(snprintf(out, size, "%s.mid_block.attentions.0.%s", side, tail), size);
    if ((tail = after(rest, "middle.")) != NULL && block_index(tail, &k, &tail) && (k == 0 || k == 2)) {
        inner = block_part(tail, &tail);
        return fitted(snprintf(out, size, "%s.mid_block.resnets.%d.%s%s", side, k == 2, inner, tail), size);
    }
    if (strcmp(side, "encoder") == 0 && (tail = after(rest, "downsamples.")) != NULL && block_index(tail, &k, &tail)) {
        inner = block_part(tail, &tail);
        return fitted(snprintf(out, size, "encoder.down_blocks.%ld.%s%s", k, inner, tail), size);
    }
    if (strcmp(side, "decoder") == 0 && (tail = after(rest, "upsamples.")) != NULL && block_index(tail, &k, &tail)) {
        inner = block_part(tail, &tail);
        /* the flat list holds per level num_res_blocks + 1 residual blocks, then a resample */
        long level = per_up_block > 1 ? k / per_up_block : 0, position = per_up_block > 1 ? k % per_up_block : k;
        if (per_up_block > 1 && position == per_up_block - 1)
            return fitted(snprintf(out, size, "decoder.up_blocks.%ld.upsamplers.0.%s%s", level, inner, tail), size);
        return fitted(snprintf(out, size, "decoder.up_blocks.%ld.resnets.%ld.%s%s", level, position, inner, tail), size);
    }
    return 0;
}

int weights_vae_original_name(const char *name, int per_up_block, char *out, size_t size)
{
    const char *tail;
    int renamed = 0;
    if ((tail = after(name, "conv1.")) != NULL) renamed = fitted(snprintf(out, size, "quant_conv.%s", tail), size);
    else if ((tail = after(name, "conv2.")) != NULL) renamed = fitted(snprintf(out, size, "post_quant_conv.%s", tail), size);
    else if ((tail = after(name, "encoder.")) != NULL) renamed = side_name("encoder", tail, per_up_block, out, size);
    else if ((tail = after(name, "decoder.")) != NULL) renamed = side_name("decoder", tail, per_up_block, out, size);
    if (renamed == 0 && snprintf(out, size, "%s", name) >= (int)size) return -1;
    return renamed;
}

/* Entries per decoder level in the original flat upsamples list: the first index holding
 * a resample, plus one (0 when there is none: a single level). */
static int original_per_up_block(const st_file *file, const char *prefix, size_t prefix_length)
{
    int best = 0;
    for (int i = 0; i < file->n_tensors; i++) {
        const char *name = file->tensors[i].name, *tail;
        long k;
        if (strncmp(name, prefix, prefix_length) != 0) continue;
        if ((tail = after(name + prefix_length, "decoder.upsamples.")) == NULL || !block_index(tail, &k, &tail)) continue;
        if (after(tail, "resample.") && (best == 0 || k + 1 < best)) best = (int)k + 1;
    }
    return best;
}

/* ---- the renamed table --------------------------------------------------------------- */

typedef struct translation {
    const char *prefix;    /* the start of the anchor tensor's name */
    size_t prefix_length;
    int original_vae;      /* rename from the original layout */
    int per_up_block;
} translation;

/* The name a file tensor has in the set, in out: 1 kept, 0 not part of the component (or a
 * marker), -1 (error set) when the translated name does not fit. */
static int translate(const weight_set *set, const translation *t, const char *name, char *out, size_t size)
{
    if (strncmp(name, t->prefix, t->prefix_length) != 0) return 0;
    const char *rest = name + t->prefix_length;
    size_t n = strlen(rest);
    if (n >= 4 && strncmp(rest, "__", 2) == 0 && strcmp(rest + n - 2, "__") == 0) return 0;
    int done = t->original_vae ? weights_vae_original_name(rest, t->per_up_block, out, size)
                               : fitted(snprintf(out, size, "%s", rest), size);
    if (done < 0) {
        status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': name too long", set->dir, name);
        return -1;
    }
    return 1;
}

static canvas_status build_renamed(weight_set *set, const translation *t)
{
    const st_file *file = set->files[0];
    char name[NAME_SIZE];
    size_t bytes = 0;
    int count = 0;
    for (int i = 0; i < file->n_tensors; i++) {
        const char *stored = file->tensors[i].name;
        if (strncmp(stored, t->prefix, t->prefix_length) == 0 && /* Edit-2511's zero_cond_t */
            strcmp(stored + t->prefix_length, "__index_timestep_zero__") == 0)
            set->index_timestep_zero = 1;
        int kept = translate(set, t, stored, name, sizeof name);
        if (kept < 0) return CANVAS_ERR_INPUT;
        if (kept == 0) continue;
        count++;
        bytes += strlen(name) + 1;
    }
    TRY(mem_calloc((void **)&set->renamed, (size_t)(count ? count : 1), sizeof *set->renamed, MEM_SCRATCH));
    TRY(mem_alloc((void **)&set->renamed_names, bytes ? bytes : 1, MEM_SCRATCH));
    char *next = set->renamed_names;
    for (int i = 0; i < file->n_tensors; i++) {
        if (translate(set, t, file->tensors[i].name, name, sizeof name) != 1) continue;
        size_t n = strlen(name) + 1;
        memcpy(next, name, n);
        set->renamed[set->n_renamed] = file->tensors[i];
        set->renamed[set->n_renamed++].name = next;
        next += n;
    }
    return CANVAS_OK;
}

/* ---- GGUF ------------------------------------------------------------------------------ */

/* ComfyUI-GGUF's record of a tensor it reshaped before quantising (its convert does so for
 * UNet convolutions, never for a DiT's matrices): the stored shape is then not the model's. */
#define ORIG_SHAPE_KEY "comfy.gguf.orig_shape."

/* The GGUF file as an st_file: every tensor under its name and shape (outermost first, as
 * gguf.h gives it) with its data where it lies in the GGUF mapping (NULL from a header). F32,
 * F16 and BF16 become those dtypes; a ggml block type becomes U8 holding its blocks
 * (nbytes the blocks' bytes), so nothing reads it as a float tensor by mistake. The view owns
 * no mapping (map NULL): the set's gguf file does. */
static canvas_status gguf_view(const gguf_file *g, st_file **out)
{
    for (int i = 0; i < g->n_kv; i++)
        if (strncmp(g->kv[i].key, ORIG_SHAPE_KEY, strlen(ORIG_SHAPE_KEY)) == 0)
            return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: tensor '%s' was reshaped by the converter ('%s'); "
                               "reshaped tensors are not supported", g->path, g->kv[i].key + strlen(ORIG_SHAPE_KEY),
                               g->kv[i].key);
    st_file *view;
    TRY(mem_calloc((void **)&view, 1, sizeof *view, MEM_SCRATCH));
    *out = view;
    TRY(mem_strdup(&view->path, g->path));
    TRY(mem_calloc((void **)&view->tensors, (size_t)(g->n_tensors ? g->n_tensors : 1), sizeof *view->tensors,
                   MEM_SCRATCH));
    for (int i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        st_tensor *v = &view->tensors[i];
        TRY(mem_strdup((char **)&v->name, t->name));
        view->n_tensors = i + 1;
        v->type = t->type == GGML_TYPE_F32 ? DTYPE_F32 : t->type == GGML_TYPE_F16 ? DTYPE_F16
                  : t->type == GGML_TYPE_BF16 ? DTYPE_BF16 : DTYPE_U8;
        v->ndim = t->ndim;
        memcpy(v->shape, t->shape, (size_t)t->ndim * sizeof t->shape[0]);
        v->nbytes = t->nbytes;
        v->data_offset = t->data_offset;
        v->data = t->data;
    }
    return CANVAS_OK;
}

int weights_ggml_type(const weight_set *set, const st_tensor *t)
{
    if (!set->gguf || !t) return -1;
    /* GGUF tensors never share a byte: among those with bytes, the offset names one (an empty
     * tensor, such as ComfyUI's marker, may sit at another's offset; it holds no weights) */
    if (t->nbytes == 0) return -1;
    for (int i = 0; i < set->gguf->n_tensors; i++)
        if (set->gguf->tensors[i].data_offset == t->data_offset && set->gguf->tensors[i].nbytes == t->nbytes)
            return (int)set->gguf->tensors[i].type;
    return -1;
}

/* ---- one file's component ---------------------------------------------------------------- */

static canvas_status open_component(weight_set *set, weights_component component, int header_only)
{
    TRY(mem_alloc((void **)&set->files, sizeof *set->files, MEM_SCRATCH));
    set->files[0] = NULL;
    if (weights_is_gguf(set->dir)) {
        TRY(header_only ? gguf_open_header(set->dir, &set->gguf) : gguf_open(set->dir, &set->gguf));
        canvas_status st = gguf_view(set->gguf, &set->files[0]);
        if (st != CANVAS_OK) {
            st_close(set->files[0]);
            set->files[0] = NULL;
            return st;
        }
    } else {
        TRY(st_open(set->dir, &set->files[0]));
    }
    set->n_files = 1;
    const st_file *file = set->files[0];
    translation t = {0};
    const char *anchor;
    long length;
    int found = find_prefix(file, component, &t.prefix, &length, &anchor);
    if (found < 0) return CANVAS_ERR_INPUT;
    if (found == 0) return no_component(file, component);
    t.prefix_length = (size_t)length;
    t.original_vae = component == WEIGHTS_VAE && strcmp(anchor, vae_original_anchor) == 0;
    if (t.original_vae) t.per_up_block = original_per_up_block(file, t.prefix, t.prefix_length);
    TRY(build_renamed(set, &t));
    canvas_status st = weights_build_table(set);
    if (st != CANVAS_OK)
        return status_wrap(st, "%s (the %s under key prefix '%.*s'): ", set->dir, components[component].name,
                           (int)t.prefix_length, t.prefix);
    return CANVAS_OK;
}

static canvas_status open_file(const char *path, weights_component component, int header_only, weight_set **out)
{
    *out = NULL;
    if (component < 0 || component >= WEIGHTS_COMPONENT_COUNT)
        return status_fail(CANVAS_ERR_USAGE, "%s: no such component (%d)", path, (int)component);
    if (!weights_is_file(path)) return status_fail(CANVAS_ERR_INPUT, "%s: not a regular file", path);
    weight_set *set;
    TRY(mem_calloc((void **)&set, 1, sizeof *set, MEM_SCRATCH));
    canvas_status st = mem_strdup(&set->dir, path);
    if (st == CANVAS_OK) st = open_component(set, component, header_only);
    if (st != CANVAS_OK) {
        weights_close(set);
        return st;
    }
    *out = set;
    return CANVAS_OK;
}

canvas_status weights_open_file(const char *path, weights_component component, weight_set **out)
{
    return open_file(path, component, 0, out);
}

canvas_status weights_open_file_header(const char *path, weights_component component, weight_set **out)
{
    return open_file(path, component, 1, out);
}
