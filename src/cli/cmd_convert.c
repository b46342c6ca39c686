/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_convert.c — `canvas convert MODEL_DIR OUT_DIR --weights fp8|fp8-channel|fp8-e5m2|nf4|q8`:
 * quantise a transformer once and write a diffusers-layout folder that loads as it is.
 *
 * MODEL_DIR is a pipeline folder (model_index.json; every other file and folder is copied,
 * the transformer converted) or a transformer folder. The matrices qwen_dit_load_quantized
 * quantises (every 2-D "transformer_blocks.N.*.weight" the format fits) are quantised with
 * the same code, so loading the result computes bit for bit what quantise-on-load does;
 * every other tensor is copied as stored. Layouts: io/quant_loader.h (fp8 as ComfyUI's
 * weight + weight_scale, nf4 as bitsandbytes, q8_0 as I8 + F16 scales); each file's
 * metadata names the format. Shards of at most --shard-size (default 10GB = 10^10 bytes, diffusers'
 * size) with an index when there is more than one. OUT_DIR is checked before any work
 * (new, its folder writable, not inside MODEL_DIR); everything is written into a hidden
 * folder of this run's own next to it (".OUT_DIR.<pid>-<n>.partial") and renamed to OUT_DIR
 * at the end: a failure leaves no OUT_DIR and removes only that folder. */
#define _XOPEN_SOURCE 700 /* nftw (the folder sizes); implies POSIX.1-2008 */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/path.h"
#include "base/size_parse.h"
#include "base/status.h"
#include "cli/commands.h"
#include "cli/convert_comfy.h"
#include "cli/convert_gguf.h"
#include "cli/model_files.h"
#include "cli/stop_signal.h"
#include "io/config.h"
#include "io/json_file.h"
#include "io/file_read.h"
#include "io/model_dir.h"
#include "io/output_file.h"
#include "io/quant_loader.h"
#include "io/safetensors.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "models/arch.h"
#include "models/arch_infer.h"
#include "models/qwen_image_dit.h"

static void print_help(FILE *to)
{
    fprintf(to, "usage: canvas convert MODEL_DIR OUT_DIR --weights FORMAT [--shard-size SIZE]\n"
                "       canvas convert [MODEL_DIR] --transformer FILE OUT_DIR --weights FORMAT\n"
                "       canvas convert (MODEL_DIR | --transformer FILE) OUT.safetensors --weights fp8|fp8-e5m2|none\n"
                "       canvas convert (MODEL_DIR | --transformer FILE) OUT.gguf --weights TYPE\n"
                "\n"
                "Quantise the transformer of a model once; OUT_DIR then loads like MODEL_DIR.\n"
                "MODEL_DIR is a pipeline folder (model_index.json: the other components are copied)\n"
                "or a transformer folder. The blocks' matrices are quantised; img_in, txt_in, the time\n"
                "embedder, norm_out, proj_out, biases and norms are copied as stored (docs/quantization.md).\n"
                "With --transformer FILE the transformer comes from one file (ComfyUI's; replacing\n"
                "MODEL_DIR's, or alone: OUT_DIR is then a transformer folder, its config.json read from the\n"
                "tensors). OUT.safetensors: one ComfyUI-style file instead (keys under model.diffusion_model.,\n"
                "scaled fp8: weight + scale_weight; none: as stored), for ComfyUI or --transformer FILE.\n"
                "OUT.gguf: one GGUF file as ComfyUI-GGUF's (general.architecture qwen_image): the blocks'\n"
                "matrices whose rows are whole blocks of TYPE in TYPE, 1-D tensors F32, the rest as stored.\n"
                "\n"
                "options:\n"
                "  --weights FORMAT   fp8 (e4m3, one scale per tensor), fp8-channel (one per row),\n"
                "                     fp8-e5m2, nf4 (bitsandbytes layout), q8 (q8_0); none (OUT.safetensors only);\n"
                "                     for OUT.gguf a ggml type: f32, f16, bf16, q8_0, q6_k, q5_k, q5_1, q5_0,\n"
                "                     q4_k, q4_1, q4_0, q3_k, q2_k\n"
                "  --transformer FILE the transformer from one .safetensors file\n"
                "  --shard-size SIZE  largest file of the transformer (default 10GB, decimal: diffusers')\n"
                "  -h, --help         this text\n"
                "\n"
                "exit codes: 0 ok, 2 usage (OUT_DIR exists, its folder is missing or not writable, or it is\n"
                "inside MODEL_DIR), 3 out of memory, 4 bad model, 1 other (I/O)\n");
}

/* ---- copying what is not converted ------------------------------------------------------ */

static canvas_status copy_file(const char *from, const char *to)
{
    int in, out;
    TRY(file_open_regular(from, &in, NULL)); /* a FIFO in the model folder: refused, not waited on */
    /* O_EXCL: the destination is in this run's own new folder; nothing there is replaced */
    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return status_fail(CANVAS_ERR_IO, "%s: cannot create (%s)", to, strerror(errno));
    }
    char *buffer;
    canvas_status st = mem_alloc((void **)&buffer, 1 << 20, MEM_SCRATCH);
    while (st == CANVAS_OK) {
        ssize_t n = read(in, buffer, 1 << 20);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) st = status_fail(CANVAS_ERR_IO, "%s: read failed (%s)", from, strerror(errno));
        if (n <= 0) break;
        for (ssize_t done = 0; st == CANVAS_OK && done < n;) {
            ssize_t w = write(out, buffer + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) st = status_fail(CANVAS_ERR_IO, "%s: write failed (%s)", to, strerror(errno));
            else done += w;
        }
    }
    if (close(out) != 0 && st == CANVAS_OK) st = status_fail(CANVAS_ERR_IO, "%s: write failed (%s)", to, strerror(errno));
    close(in);
    mem_free(buffer);
    return st;
}

/* Copy a folder's files and sub-folders (depth-limited: pipeline folders are shallow). */
static canvas_status copy_tree(const char *from, const char *to, int depth, const char *skip)
{
    if (depth > 4) return status_fail(CANVAS_ERR_INPUT, "%s: folders nested too deep to copy", from);
    if (mkdir(to, 0755) != 0 && errno != EEXIST) return status_fail(CANVAS_ERR_IO, "%s: cannot create (%s)", to, strerror(errno));
    DIR *dir = opendir(from);
    if (!dir) return status_fail(CANVAS_ERR_INPUT, "%s: cannot open (%s)", from, strerror(errno));
    canvas_status st = CANVAS_OK;
    struct dirent *entry;
    while (st == CANVAS_OK && (entry = readdir(dir))) {
        if (entry->d_name[0] == '.' || (skip && !strcmp(entry->d_name, skip))) continue;
        char a[PATH_BUFFER_SIZE], b[PATH_BUFFER_SIZE];
        st = path_join(a, sizeof a, from, entry->d_name);
        if (st == CANVAS_OK) st = path_join(b, sizeof b, to, entry->d_name);
        struct stat info;
        if (st == CANVAS_OK && stat(a, &info) != 0) st = status_fail(CANVAS_ERR_INPUT, "%s: %s", a, strerror(errno));
        if (st != CANVAS_OK) break;
        st = S_ISDIR(info.st_mode) ? copy_tree(a, b, depth + 1, NULL) : copy_file(a, b);
    }
    closedir(dir);
    return st;
}

/* ---- the transformer ------------------------------------------------------------------- */

/* The matrices quantise-on-load quantises: 2-D "transformer_blocks.N.*.weight". */
static int quantised_here(const st_tensor *t, quant_choice choice)
{
    return convert_block_matrix(t) && quant_fits(choice.format, t->shape[1]);
}

static uint64_t output_bytes(const st_tensor *t, quant_choice choice)
{
    if (!quantised_here(t, choice)) return t->nbytes;
    quant_params p;
    if (quant_layout(choice.format, choice.per_channel, t->shape[0], t->shape[1], &p) != CANVAS_OK) return t->nbytes;
    return p.codes_bytes + p.n_scales * (choice.format == QUANT_Q8_0 ? 2 : 4) + 256;
}

typedef struct shard_writer {
    const weight_set *files;
    quant_choice choice;
    const char *out_dir;
    int n_shards;
    json_t *weight_map;
    uint64_t total_bytes;
} shard_writer;

static void shard_name(char *out, size_t size, int index, int n_shards)
{
    if (n_shards == 1) snprintf(out, size, "diffusion_pytorch_model.safetensors");
    else snprintf(out, size, "diffusion_pytorch_model-%05d-of-%05d.safetensors", index + 1, n_shards);
}

/* Write tensors [first, last) of the set as shard `index`. */
static canvas_status write_shard(shard_writer *w, int first, int last, int index)
{
    const int count = last - first;
    st_write_tensor *tensors = NULL;
    char **scratch = NULL;
    quant_store *store = NULL;
    int n = 0;
    canvas_status st = mem_calloc((void **)&tensors, (size_t)count * QUANT_EXPORT_MAX_TENSORS, sizeof *tensors, MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_calloc((void **)&scratch, (size_t)count, sizeof *scratch, MEM_SCRATCH);
    if (st == CANVAS_OK) st = quant_store_create(&store);
    for (int i = first; st == CANVAS_OK && i < last; i++) {
        const st_tensor *t = w->files->tensors[i];
        st = cli_check_stop("while converting the transformer");
        if (st != CANVAS_OK) break;
        if (!quantised_here(t, w->choice)) {
            tensors[n++] = (st_write_tensor){t->name, t->type, t->ndim, {0}, t->data};
            memcpy(tensors[n - 1].shape, t->shape, sizeof t->shape);
            continue;
        }
        quant_weight q;
        st = quant_weight_from_view(store, w->files, t->name, t->shape[0], t->shape[1], w->choice, &q);
        if (st == CANVAS_OK) st = mem_alloc((void **)&scratch[i - first], quant_export_scratch_bytes(t->name), MEM_SCRATCH);
        if (st == CANVAS_OK) n += quant_export_tensors(q.quant, q.data, t->name, scratch[i - first], tensors + n);
    }
    char name[128], path[PATH_BUFFER_SIZE];
    shard_name(name, sizeof name, index, w->n_shards);
    st_metadata_entry metadata[] = {{"format", "pt"},
                                    {"quantization", quant_choice_name(w->choice)},
                                    {"quantization_by", "canvas convert"},
                                    {"quantized_tensors", "transformer_blocks.*.weight (2-D); the rest as stored"}};
    if (st == CANVAS_OK) st = path_join(path, sizeof path, w->out_dir, name);
    if (st == CANVAS_OK) st = st_write(path, tensors, n, metadata, 4);
    for (int i = 0; st == CANVAS_OK && i < n; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < tensors[i].ndim; d++) numel *= (uint64_t)tensors[i].shape[d];
        w->total_bytes += numel * dtype_size(tensors[i].type);
        if (json_object_set_new(w->weight_map, tensors[i].name, json_string(name)) != 0)
            st = status_fail(CANVAS_ERR_OUT_OF_MEMORY, "convert: out of memory building the shard index");
    }
    for (int i = 0; scratch && i < count; i++) mem_free(scratch[i]);
    mem_free(scratch);
    mem_free(tensors);
    quant_store_free(store);
    return st;
}

static canvas_status write_index(const shard_writer *w)
{
    char path[PATH_BUFFER_SIZE];
    TRY(path_join(path, sizeof path, w->out_dir, "diffusion_pytorch_model.safetensors.index.json"));
    json_t *root = json_pack("{s:{s:I},s:O}", "metadata", "total_size", (json_int_t)w->total_bytes, "weight_map",
                             w->weight_map);
    if (!root) return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "convert: out of memory writing the shard index");
    json_alloc_watch_begin();
    int failed = json_dump_file(root, path, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (failed && json_alloc_watch_failed()) return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s: out of memory writing it", path);
    if (failed) return status_fail(CANVAS_ERR_IO, "%s: cannot write", path);
    return CANVAS_OK;
}

/* The files against the tensors arch_dit lists for the config (arch_check). */
static canvas_status check_architecture(const qwen_dit_config *config, const weight_set *files, const char *what)
{
    tensor_spec_list expected = {0};
    canvas_status st = arch_dit(config, &expected);
    if (st == CANVAS_OK) st = arch_check(&expected, files, what);
    arch_free(&expected);
    return st;
}

/* The transformer's config.json for one read from a single file's tensors. */
static canvas_status write_config(const qwen_dit_config *c, const char *path)
{
    json_t *root = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:[i,i,i], s:b, s:b}", "_class_name",
                             "QwenImageTransformer2DModel", "patch_size", c->patch_size, "in_channels", c->in_channels,
                             "out_channels", c->out_channels, "num_layers", c->num_layers, "attention_head_dim",
                             c->attention_head_dim, "num_attention_heads", c->num_attention_heads,
                             "joint_attention_dim", c->joint_attention_dim, "axes_dims_rope", c->axes_dims_rope[0],
                             c->axes_dims_rope[1], c->axes_dims_rope[2], "guidance_embeds", c->guidance_embeds,
                             "zero_cond_t", c->zero_cond_t);
    if (!root) return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "convert: out of memory writing %s", path);
    int failed = json_dump_file(root, path, JSON_INDENT(2));
    json_decref(root);
    return failed ? status_fail(CANVAS_ERR_IO, "%s: cannot write", path) : CANVAS_OK;
}

/* The transformer to convert: a folder (config.json and its weights) or one file (its
 * config from its tensors), checked against its architecture and not quantised already. */
static canvas_status open_source(const char *from, qwen_dit_config *config, weight_set **files)
{
    char path[PATH_BUFFER_SIZE];
    *files = NULL;
    if (weights_is_file(from)) {
        TRY(weights_open_file(from, WEIGHTS_TRANSFORMER, files));
        TRY(qwen_dit_config_infer(*files, config));
    } else {
        TRY(path_join(path, sizeof path, from, "config.json"));
        TRY(qwen_dit_config_load(path, config));
        TRY(weights_open(from, files));
    }
    TRY(check_architecture(config, *files, "transformer"));
    for (int i = 0; i < (*files)->n_tensors; i++)
        if (quant_is_auxiliary(*files, (*files)->tensors[i]->name) ||
            quant_is_stored_quantized(*files, (*files)->tensors[i]->name))
            return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: tensor '%s' is already quantised; convert from "
                               "F32/F16/BF16 files", from, (*files)->tensors[i]->name);
    return CANVAS_OK;
}

static canvas_status convert_transformer(const char *from, const char *to, quant_choice choice, uint64_t shard_bytes)
{
    char a[PATH_BUFFER_SIZE], b[PATH_BUFFER_SIZE];
    qwen_dit_config config;
    weight_set *files;
    canvas_status st = open_source(from, &config, &files);
    if (st == CANVAS_OK) st = path_join(b, sizeof b, to, "config.json");
    if (st == CANVAS_OK && weights_is_file(from)) st = write_config(&config, b);
    else if (st == CANVAS_OK) st = path_join(a, sizeof a, from, "config.json");
    if (st == CANVAS_OK && !weights_is_file(from)) st = copy_file(a, b);
    /* shards: consecutive tensors (sorted by name) up to shard_bytes each */
    shard_writer w = {.files = files, .choice = choice, .out_dir = to, .weight_map = json_object()};
    if (st == CANVAS_OK && !w.weight_map) st = status_fail(CANVAS_ERR_OUT_OF_MEMORY, "convert: out of memory");
    for (int pass = 0; st == CANVAS_OK && pass < 2; pass++) {
        int first = 0, shards = 0;
        uint64_t bytes = 0;
        for (int i = 0; st == CANVAS_OK && i <= files->n_tensors; i++) {
            uint64_t next = i < files->n_tensors ? output_bytes(files->tensors[i], choice) : 0;
            if (i == files->n_tensors || (bytes > 0 && bytes + next > shard_bytes)) {
                if (pass == 1) st = write_shard(&w, first, i, shards);
                shards++;
                first = i;
                bytes = 0;
            }
            bytes += next;
        }
        w.n_shards = shards;
    }
    if (st == CANVAS_OK && w.n_shards > 1) st = write_index(&w);
    json_decref(w.weight_map);
    weights_close(files);
    return st;
}

/* The name ends in `suffix` (".gguf"), in any case, as output_check matches endings. */
static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcasecmp(s + n - k, suffix);
}

/* OUT.safetensors: one ComfyUI-style file (cli/convert_comfy.h), checked by loading it back;
 * OUT.gguf: one GGUF file of ggml type gguf_type (cli/convert_gguf.h), checked by the strict
 * reader (loading a GGUF transformer is not there yet). */
/* `from` (a transformer folder or file) into one file; `model_dir` (NULL: none), the
 * pipeline folder given, is never written into either. */
static canvas_status convert_to_file(const char *from, const char *model_dir, const char *out, quant_choice choice,
                                     uint32_t gguf_type)
{
    static const char *const st_extensions[] = {"safetensors", NULL}, *const gguf_extensions[] = {"gguf", NULL};
    const int gguf = ends_with(out, ".gguf");
    const char *inputs[1] = {from}, *folders[2];
    int n_folders = 0;
    if (!weights_is_file(from)) folders[n_folders++] = from;
    if (model_dir) folders[n_folders++] = model_dir;
    const output_rules rules = {"OUT", gguf ? gguf_extensions : st_extensions, inputs, 1, folders, n_folders, "model"};
    TRY(output_check(out, &rules));
    qwen_dit_config config;
    weight_set *files;
    canvas_status st = open_source(from, &config, &files);
    if (st == CANVAS_OK)
        st = gguf ? convert_write_gguf(files, &config, gguf_type, out) : convert_write_comfy(files, &config, choice, out);
    weights_close(files);
    if (st != CANVAS_OK || gguf) return st;
    qwen_dit_model *model = NULL; /* read back as --transformer reads it */
    st = qwen_dit_load(out, &model);
    const qwen_dit_config *got = st == CANVAS_OK ? &model->config : &config;
    if (got->num_layers != config.num_layers || got->num_attention_heads != config.num_attention_heads ||
        got->attention_head_dim != config.attention_head_dim || got->in_channels != config.in_channels ||
        got->joint_attention_dim != config.joint_attention_dim || got->zero_cond_t != config.zero_cond_t)
        st = status_fail(CANVAS_ERR_INTERNAL, "%s: read back with another config than written", out);
    qwen_dit_free(model);
    if (st != CANVAS_OK) remove(out);
    return st;
}

/* Check what was written the way a load would: config, every file, the architecture. */
static canvas_status verify_transformer(const char *dir)
{
    char path[PATH_BUFFER_SIZE];
    TRY(path_join(path, sizeof path, dir, "config.json"));
    qwen_dit_config config;
    TRY(qwen_dit_config_load(path, &config));
    weight_set *files;
    TRY(weights_open(dir, &files));
    canvas_status st = check_architecture(&config, files, "converted transformer");
    weights_close(files);
    return st;
}

/* model_dir (NULL: none) with its transformer replaced by `transformer` (NULL: its own). */
static canvas_status convert(const char *model_dir, const char *transformer, const char *out_dir, quant_choice choice,
                             uint32_t gguf_type, uint64_t shard_bytes)
{
    char index[PATH_BUFFER_SIZE], partial[PATH_BUFFER_SIZE], from[PATH_BUFFER_SIZE], to[PATH_BUFFER_SIZE];
    struct stat info;
    if (transformer && !weights_is_file(transformer))
        return status_fail(CANVAS_ERR_INPUT, "%s: not a file (--transformer)", transformer);
    if (model_dir && (stat(model_dir, &info) != 0 || !S_ISDIR(info.st_mode)))
        return status_fail(CANVAS_ERR_INPUT, "%s: not a model folder", model_dir);
    if (ends_with(out_dir, ".safetensors") || ends_with(out_dir, ".gguf")) {
        if (transformer) return convert_to_file(transformer, model_dir, out_dir, choice, gguf_type);
        TRY(path_join(index, sizeof index, model_dir, "model_index.json"));
        if (stat(index, &info) != 0) return convert_to_file(model_dir, NULL, out_dir, choice, gguf_type);
        TRY(path_join(from, sizeof from, model_dir, "transformer"));
        return convert_to_file(from, model_dir, out_dir, choice, gguf_type);
    }
    if (choice.format == QUANT_NONE)
        return status_fail(CANVAS_ERR_USAGE, "--weights none only repacks into one file (OUT.safetensors)");
    if (!model_dir) { /* the file's transformer as a component folder */
        const char *none[1] = {transformer};
        TRY(output_check_folder("OUT_DIR", out_dir, none, 0));
        TRY(output_temp_folder(out_dir, partial, sizeof partial));
        canvas_status st = convert_transformer(transformer, partial, choice, shard_bytes);
        if (st == CANVAS_OK) st = verify_transformer(partial);
        if (st == CANVAS_OK) st = output_folder_finish(partial, out_dir);
        if (st != CANVAS_OK) output_remove_tree(partial);
        return st;
    }
    /* OUT_DIR new, its parent writable, not inside MODEL_DIR; the work goes into a folder of
     * our own next to it (never one that was there before: only it is removed on failure) */
    const char *inputs[1] = {model_dir};
    TRY(output_check_folder("OUT_DIR", out_dir, inputs, 1));
    TRY(path_join(index, sizeof index, model_dir, "model_index.json"));
    int pipeline = stat(index, &info) == 0;
    TRY(output_temp_folder(out_dir, partial, sizeof partial));
    canvas_status st = CANVAS_OK;
    if (pipeline) {
        pipeline_index pi;
        st = pipeline_index_load(index, &pi);
        if (st == CANVAS_OK && !pipeline_index_find(&pi, "transformer"))
            st = status_fail(CANVAS_ERR_INPUT, "%s: the pipeline has no transformer to convert", index);
        if (st == CANVAS_OK) st = copy_tree(model_dir, partial, 0, "transformer");
        if (st == CANVAS_OK && transformer && snprintf(from, sizeof from, "%s", transformer) >= (int)sizeof from)
            st = status_fail(CANVAS_ERR_USAGE, "%s: path too long", transformer);
        else if (st == CANVAS_OK && !transformer) st = path_join(from, sizeof from, model_dir, "transformer");
        if (st == CANVAS_OK) st = path_join(to, sizeof to, partial, "transformer");
        if (st == CANVAS_OK && mkdir(to, 0755) != 0)
            st = status_fail(CANVAS_ERR_IO, "%s: cannot create (%s)", to, strerror(errno));
    } else if (transformer) {
        st = status_fail(CANVAS_ERR_USAGE, "--transformer FILE replaces the transformer of a pipeline folder (%s has no "
                                           "model_index.json); give the file alone", model_dir);
    } else if (snprintf(from, sizeof from, "%s", model_dir) >= (int)sizeof from ||
               snprintf(to, sizeof to, "%s", partial) >= (int)sizeof to) {
        st = status_fail(CANVAS_ERR_USAGE, "%s: path too long", model_dir); /* never a shortened, other folder */
    }
    if (st == CANVAS_OK) st = convert_transformer(from, to, choice, shard_bytes);
    if (st == CANVAS_OK) st = verify_transformer(to);
    if (st == CANVAS_OK) st = output_folder_finish(partial, out_dir); /* never onto what appeared meanwhile */
    if (st != CANVAS_OK) output_remove_tree(partial);
    return st;
}

/* The bytes of the regular files under a folder (links followed: a Hugging Face cache
 * folder is links into blobs/), for the before/after line. */
static uint64_t folder_total;

static int add_file(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)path, (void)ftw;
    if (type == FTW_F && S_ISREG(sb->st_mode)) folder_total += (uint64_t)sb->st_size;
    return 0;
}

static void folder_bytes(const char *folder, uint64_t *out)
{
    folder_total = 0;
    if (nftw(folder, add_file, 16, 0) != 0) folder_total = 0;
    *out = folder_total;
}

int cmd_convert(int argc, char **argv)
{
    const char *paths[2] = {NULL, NULL}, *weights = NULL;
    int n_paths = 0;
    uint64_t shard_bytes = 10ull * 1000 * 1000 * 1000;
    int shard_given = 0;
    cli_model_files files = {0};
    for (int i = 0; i < argc; i++) {
        int file_flag = cli_model_files_parse(&files, argc, argv, &i, "convert");
        if (file_flag < 0) return 2;
        if (file_flag > 0) continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            print_help(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--weights")) {
            if (++i == argc) return cli_usage_error("convert", "--weights needs a format (fp8, fp8-channel, fp8-e5m2, nf4, q8)");
            weights = argv[i];
        } else if (!strcmp(argv[i], "--shard-size")) {
            if (++i == argc) return cli_usage_error("convert", "--shard-size needs a size (e.g. 5G)");
            shard_given = 1;
            canvas_status st = size_parse(argv[i], "--shard-size", &shard_bytes);
            if (st != CANVAS_OK || shard_bytes == 0) return cli_usage_error("convert", "--shard-size needs a positive size");
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            char message[256];
            snprintf(message, sizeof message, "unknown option '%s'", argv[i]);
            return cli_usage_error("convert", message);
        } else if (n_paths < 2) {
            paths[n_paths++] = argv[i];
        } else {
            return cli_usage_error("convert", "give MODEL_DIR and OUT_DIR only");
        }
    }
    if (files.text_encoder || files.vae)
        return cli_usage_error("convert", "convert converts the transformer: give it with --transformer FILE "
                                          "(--text-encoder and --vae are not converted)");
    if (n_paths < (files.transformer ? 1 : 2))
        return cli_usage_error("convert", files.transformer ? "give OUT_DIR (or OUT.safetensors)" : "give MODEL_DIR and OUT_DIR");
    if (!weights) return cli_usage_error("convert", "missing --weights FORMAT");
    const char *model_dir = n_paths == 2 ? paths[0] : NULL, *out = paths[n_paths - 1];
    const int gguf = ends_with(out, ".gguf");
    if (shard_given && (gguf || ends_with(out, ".safetensors")))
        return cli_usage_error("convert", "--shard-size is for an OUT_DIR folder: OUT.gguf and OUT.safetensors are one file");
    quant_choice choice = {0};
    uint32_t gguf_type = 0;
    /* in any case: GGUF files and ComfyUI name their types in upper case (Q8_0, Q4_K_M) */
    char lower[32] = "";
    const char *given = weights;
    for (size_t i = 0; weights[i] && i + 1 < sizeof lower; i++) lower[i] = (char)tolower((unsigned char)weights[i]);
    if (strlen(weights) < sizeof lower) weights = lower;
    if (gguf && !convert_gguf_type(weights, &gguf_type)) {
        char message[384], type[32];
        const size_t n = strlen(weights);
        /* llama.cpp's Q4_K_M / Q3_K_S / Q3_K_L: a mix of types chosen per tensor */
        snprintf(type, sizeof type, "%.*s", n > 2 ? (int)(n - 2) : 0, weights);
        uint32_t base;
        if (n > 2 && weights[n - 2] == '_' && strchr("sml", weights[n - 1]) && convert_gguf_type(type, &base))
            snprintf(message, sizeof message, "--weights %s: llama.cpp's _s / _m / _l mixes (a type per tensor) are not "
                     "written; give one type, %s (every block matrix that fits it)", given, type);
        else
            snprintf(message, sizeof message, "--weights for OUT.gguf must be a ggml type: %s", convert_gguf_type_names());
        return cli_usage_error("convert", message);
    }
    if (!gguf && quant_choice_parse(weights, &choice) != CANVAS_OK)
        return cli_usage_error("convert", "--weights must be fp8, fp8-channel, fp8-e5m2, nf4, q8 or none (or a ggml "
                                          "type for OUT.gguf)");
    cli_catch_stop_signals(); /* Ctrl-C: stop between tensors, remove the temporary output */
    canvas_status st = convert(model_dir, files.transformer, out, choice, gguf_type, shard_bytes);
    if (st != CANVAS_OK) return cli_fail(st, "convert");
    /* before: what went in. One file out: the transformer converted (the file given, else
     * the pipeline's transformer/ or the transformer folder). A folder out: the model folder,
     * its own transformer/ counted as the file that replaced it, when one did. */
    uint64_t before = 0, after = 0, own_bytes = 0, file_bytes = 0;
    char own[PATH_BUFFER_SIZE];
    const int one_file = gguf || ends_with(out, ".safetensors");
    const int has_own = model_dir && path_join(own, sizeof own, model_dir, "transformer") == CANVAS_OK && weights_present(own);
    status_clear();
    if (has_own) folder_bytes(own, &own_bytes);
    if (files.transformer) folder_bytes(files.transformer, &file_bytes);
    if (one_file) {
        if (files.transformer) before = file_bytes;
        else if (has_own) before = own_bytes;
        else folder_bytes(model_dir, &before);
    } else {
        if (model_dir) folder_bytes(model_dir, &before);
        if (files.transformer) before = (before > own_bytes ? before - own_bytes : 0) + file_bytes;
    }
    folder_bytes(out, &after);
    char before_text[32], after_text[32];
    size_format(before, before_text, sizeof before_text);
    size_format(after, after_text, sizeof after_text);
    cli_note("wrote %s (%s): %s of files before, %s after (%.1f%%; binary units)", out,
             gguf ? weights : quant_choice_name(choice),
             before_text, after_text, before ? 100.0 * (double)after / (double)before : 0.0);
    return 0;
}
