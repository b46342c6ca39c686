/* SPDX-License-Identifier: Apache-2.0 */
/* inspect_gather.c — reading and validating what `canvas inspect` reports: pipeline
 * folders (model_index.json), component folders (config.json) and single safetensors
 * files. Nothing is printed here. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/path.h"
#include "base/status.h"
#include "cli/inspect.h"
#include "io/json_file.h"
#include "io/model_dir.h"
#include "io/weights_file.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "models/arch_infer.h"
#include "tensor/ggml_blocks.h"

typedef enum component_type { TYPE_DIT, TYPE_VAE, TYPE_TEXTENC, TYPE_SCHEDULER, TYPE_OTHER } component_type;

static component_type type_of_class(const char *class_name)
{
    if (!strcmp(class_name, "QwenImageTransformer2DModel")) return TYPE_DIT;
    if (!strcmp(class_name, "AutoencoderKLQwenImage")) return TYPE_VAE;
    if (!strcmp(class_name, "Qwen2_5_VLForConditionalGeneration")) return TYPE_TEXTENC;
    if (!strcmp(class_name, "FlowMatchEulerDiscreteScheduler")) return TYPE_SCHEDULER;
    return TYPE_OTHER;
}

static int is_dir(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0 && S_ISDIR(info.st_mode);
}

static int is_file(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0 && S_ISREG(info.st_mode);
}

static canvas_status copy_text(char *out, size_t size, const char *text)
{
    if (strlen(text) >= size) return status_fail(CANVAS_ERR_INPUT, "%s: name or path too long", text);
    memcpy(out, text, strlen(text) + 1);
    return CANVAS_OK;
}

/* ---- sizes of selections of the expected tensors ----------------------------------- */

typedef struct selector {
    int group;          /* ARCH_ANY_GROUP: all */
    int skip_flags;     /* leave out tensors with any of these */
    int require_flags;  /* only tensors with all of these */
    const char *prefix; /* only names starting with this (NULL: all) */
} selector;

static int selected(const tensor_spec *s, const selector *sel)
{
    if (sel->group != ARCH_ANY_GROUP && s->group != sel->group) return 0;
    if ((s->flags & sel->skip_flags) || (s->flags & sel->require_flags) != sel->require_flags) return 0;
    return !sel->prefix || !strncmp(s->name, sel->prefix, strlen(sel->prefix));
}

static inspect_sizes sizes_of(const tensor_spec_list *list, const weight_set *files, selector sel)
{
    inspect_sizes sizes = {0};
    for (int i = 0; i < list->count; i++) {
        const tensor_spec *s = &list->items[i];
        if (!selected(s, &sel)) continue;
        sizes.params += arch_numel(s);
        sizes.tensors++;
        /* arch_check has passed, so every expected tensor is in the files */
        if (files) sizes.stored_bytes += weights_find(files, s->name)->nbytes;
        for (int f = 0; f < ARCH_SIZE_FORMAT_COUNT; f++)
            sizes.bytes_as[f] += arch_tensor_bytes_as(s, ARCH_SIZE_FORMATS[f]);
    }
    return sizes;
}

static const selector ALL = {ARCH_ANY_GROUP, 0, 0, NULL};

static void add_part(inspect_component *c, const char *label, inspect_sizes sizes)
{
    if (c->n_parts == INSPECT_MAX_PARTS) return; /* the JSON block list still has everything */
    inspect_part *part = &c->parts[c->n_parts++];
    snprintf(part->label, sizeof part->label, "%s", label);
    part->sizes = sizes;
}

static int same_sizes(const inspect_sizes *a, const inspect_sizes *b) { return !memcmp(a, b, sizeof *a); }

/* Rows for groups first..first+n-1, shown as `noun` index_base..: one row when every
 * group weighs the same (the usual case), else one row per group. */
static void group_range_parts(inspect_component *c, const tensor_spec_list *list, const weight_set *files,
                              int first, int n, const char *noun, int index_base)
{
    if (n <= 0) return;
    inspect_sizes head = sizes_of(list, files, (selector){first, 0, 0, NULL});
    int identical = 1;
    for (int g = first + 1; g < first + n && identical; g++) {
        inspect_sizes s = sizes_of(list, files, (selector){g, 0, 0, NULL});
        identical = same_sizes(&s, &head);
    }
    char label[48];
    if (identical) {
        if (n == 1) snprintf(label, sizeof label, "%s %d", noun, first - index_base);
        else snprintf(label, sizeof label, "%s %d-%d (each)", noun, first - index_base, first - index_base + n - 1);
        add_part(c, label, head);
        return;
    }
    for (int g = first; g < first + n; g++) {
        snprintf(label, sizeof label, "%s %d", noun, g - index_base);
        add_part(c, label, sizes_of(list, files, (selector){g, 0, 0, NULL}));
    }
}

/* ---- components with tensors ------------------------------------------------------- */

/* A component given as one file (c->dir names it): its config comes from its tensors. */
static int single_file(const inspect_component *c)
{
    return weights_is_file(c->dir);
}

static canvas_status dit_arch(inspect_component *c, const char *config, const weight_set *files,
                              tensor_spec_list *list)
{
    qwen_dit_config cfg;
    TRY(single_file(c) ? qwen_dit_config_infer(files, &cfg) : qwen_dit_config_load(config, &cfg));
    snprintf(c->summary, sizeof c->summary, "%d blocks, %d heads x %d, joint_attention_dim %d, zero_cond_t %s",
             cfg.num_layers, cfg.num_attention_heads, cfg.attention_head_dim, cfg.joint_attention_dim,
             cfg.zero_cond_t ? "true (Edit-2511)" : "false");
    return arch_dit(&cfg, list);
}

static canvas_status vae_arch(inspect_component *c, const char *config, const weight_set *files,
                              tensor_spec_list *list)
{
    vae_config cfg;
    TRY(single_file(c) ? vae_config_infer(files, &cfg) : vae_config_load(config, &cfg));
    snprintf(c->summary, sizeof c->summary, "base_dim %d, z_dim %d, %d levels, num_res_blocks %d, %dx downscale",
             cfg.base_dim, cfg.z_dim, cfg.n_dim_mult, cfg.num_res_blocks, vae_scale_factor(&cfg));
    return arch_vae(&cfg, list);
}

static canvas_status textenc_arch(inspect_component *c, const char *config, const weight_set *files,
                                  tensor_spec_list *list, textenc_config *cfg, textenc_naming *naming)
{
    TRY(single_file(c) ? textenc_config_infer(files, cfg) : textenc_config_load(config, cfg));
    *naming = files ? textenc_naming_of(files) : TEXTENC_NAMES_CHECKPOINT;
    snprintf(c->summary, sizeof c->summary,
             "%d layers, hidden %d, %d/%d heads x %d, vocab %d; vision %d blocks, hidden %d%s",
             cfg->text.num_hidden_layers, cfg->text.hidden_size, cfg->text.num_attention_heads,
             cfg->text.num_key_value_heads, cfg->text.head_dim, cfg->text.vocab_size, cfg->vision.depth,
             cfg->vision.hidden_size, cfg->tie_word_embeddings ? "; lm_head tied" : "");
    return arch_text_encoder(cfg, *naming, list);
}

static canvas_status dit_parts(inspect_component *c, const tensor_spec_list *list, const weight_set *files)
{
    int n = arch_group_count(list);
    add_part(c, "top level", sizes_of(list, files, (selector){-1, 0, 0, NULL}));
    group_range_parts(c, list, files, 0, n, "blocks", 0);
    if (n == 0) return CANVAS_OK;
    TRY(mem_calloc((void **)&c->blocks, (size_t)n, sizeof *c->blocks, MEM_SCRATCH));
    c->n_blocks = n;
    for (int g = 0; g < n; g++) c->blocks[g] = sizes_of(list, files, (selector){g, 0, 0, NULL});
    return CANVAS_OK;
}

static void vae_parts(inspect_component *c, const tensor_spec_list *list, const weight_set *files)
{
    add_part(c, "encoder + quant_conv", sizes_of(list, files, (selector){0, 0, 0, NULL}));
    add_part(c, "decoder + post_quant_conv", sizes_of(list, files, (selector){1, 0, 0, NULL}));
    add_part(c, "time_conv (unused for images)", sizes_of(list, files, (selector){ARCH_ANY_GROUP, 0, ARCH_UNUSED, NULL}));
}

static void textenc_parts(inspect_component *c, const tensor_spec_list *list, const weight_set *files,
                          const textenc_config *cfg, textenc_naming naming)
{
    int layers = cfg->text.num_hidden_layers;
    add_part(c, "used for encoding", sizes_of(list, files, (selector){ARCH_ANY_GROUP, ARCH_UNUSED, 0, NULL}));
    add_part(c, "vision tower", sizes_of(list, files, (selector){ARCH_ANY_GROUP, 0, 0, textenc_vision_prefix(naming)}));
    if (!cfg->tie_word_embeddings)
        add_part(c, "lm_head (unused)", sizes_of(list, files, (selector){ARCH_ANY_GROUP, 0, 0, "lm_head."}));
    group_range_parts(c, list, files, 0, layers, "layers", 0);
    group_range_parts(c, list, files, layers, cfg->vision.depth, "vision blocks", layers);
}

/* The stored types, "BF16" or "F32+Q4_K": a GGUF file's ggml types (its block types are U8
 * tensors to the loaders), else the dtypes. */
static void stored_dtypes(inspect_component *c, const weight_set *files)
{
    enum { GGML_CODES = 64 };
    int seen[DTYPE_COUNT] = {0}, seen_ggml[GGML_CODES] = {0};
    for (int i = 0; i < files->n_tensors; i++) {
        const int code = weights_ggml_type(files, files->tensors[i]);
        if (code >= 0 && code < GGML_CODES) seen_ggml[code] = 1;
        else seen[files->tensors[i]->type] = 1;
    }
    size_t used = 0;
    for (int t = 0; t < GGML_CODES; t++)
        if (seen_ggml[t] && used < sizeof c->dtypes)
            used += (size_t)snprintf(c->dtypes + used, sizeof c->dtypes - used, "%s%s", used ? "+" : "",
                                     ggml_type_name((uint32_t)t));
    for (int t = 0; t < DTYPE_COUNT; t++)
        if (seen[t] && used < sizeof c->dtypes)
            used += (size_t)snprintf(c->dtypes + used, sizeof c->dtypes - used, "%s%s", used ? "+" : "",
                                     dtype_name((dtype)t));
    c->n_files = files->n_files;
}

static canvas_status gather_with(inspect_component *c, component_type type, const weight_set *files,
                                 tensor_spec_list *list)
{
    char config[4200] = "";
    if (!single_file(c)) TRY(path_join(config, sizeof config, c->dir, "config.json"));
    textenc_config te;
    textenc_naming naming = TEXTENC_NAMES_CHECKPOINT;
    if (type == TYPE_DIT) TRY(dit_arch(c, config, files, list));
    else if (type == TYPE_VAE) TRY(vae_arch(c, config, files, list));
    else TRY(textenc_arch(c, config, files, list, &te, &naming));
    if (files) {
        TRY(arch_check(list, files, c->name));
        stored_dtypes(c, files);
    }
    c->total = sizes_of(list, files, ALL);
    if (type == TYPE_DIT) TRY(dit_parts(c, list, files));
    else if (type == TYPE_VAE) vae_parts(c, list, files);
    else textenc_parts(c, list, files, &te, naming);
    return CANVAS_OK;
}

/* Config, architecture and — when present — the weights, checked against each other. */
static canvas_status gather_tensors(inspect_component *c, component_type type)
{
    weight_set *files = NULL;
    tensor_spec_list list = {0};
    static const weights_component as[] = {[TYPE_DIT] = WEIGHTS_TRANSFORMER, [TYPE_VAE] = WEIGHTS_VAE,
                                           [TYPE_TEXTENC] = WEIGHTS_TEXT_ENCODER};
    canvas_status status;
    if (single_file(c)) {
        c->weights_present = c->single_file = 1;
        status = weights_open_file(c->dir, as[type], &files);
    } else {
        c->weights_present = weights_present(c->dir);
        status = c->weights_present ? weights_open(c->dir, &files) : CANVAS_OK;
    }
    if (status == CANVAS_OK) status = gather_with(c, type, files, &list);
    arch_free(&list);
    weights_close(files);
    return status;
}

static canvas_status gather_scheduler(inspect_component *c)
{
    char path[4200];
    TRY(path_join(path, sizeof path, c->dir, "scheduler_config.json"));
    scheduler_config s;
    TRY(scheduler_config_load(path, &s));
    if (s.use_dynamic_shifting)
        snprintf(c->summary, sizeof c->summary, "dynamic shift %g..%g for %d..%d tokens (%s), shift_terminal %g",
                 s.base_shift, s.max_shift, s.base_image_seq_len, s.max_image_seq_len,
                 s.time_shift == TIME_SHIFT_EXPONENTIAL ? "exponential" : "linear", s.shift_terminal);
    else
        snprintf(c->summary, sizeof c->summary, "fixed shift %g, shift_terminal %g", s.shift, s.shift_terminal);
    c->state = INSPECT_CONFIG_ONLY;
    return CANVAS_OK;
}

static canvas_status gather_component(inspect_component *c, component_type type)
{
    if (single_file(c) && type != TYPE_SCHEDULER && type != TYPE_OTHER) return gather_tensors(c, type);
    if (!is_dir(c->dir)) {
        c->state = INSPECT_ABSENT;
        return CANVAS_OK;
    }
    switch (type) {
    case TYPE_DIT:
    case TYPE_VAE:
    case TYPE_TEXTENC: return gather_tensors(c, type);
    case TYPE_SCHEDULER: return gather_scheduler(c);
    case TYPE_OTHER: break;
    }
    c->state = INSPECT_LISTED;
    return CANVAS_OK;
}

/* ---- the three kinds of PATH ------------------------------------------------------- */

static const char *canonical_name(component_type type)
{
    static const char *const names[] = {"transformer", "vae", "text_encoder", "scheduler", "component"};
    return names[type];
}

static canvas_status gather_pipeline(const char *path, inspect_report *r)
{
    char index_path[4200];
    TRY(path_join(index_path, sizeof index_path, path, "model_index.json"));
    pipeline_index index;
    TRY(pipeline_index_load(index_path, &index));
    r->kind = INSPECT_PIPELINE;
    TRY(copy_text(r->pipeline_class, sizeof r->pipeline_class, index.class_name));
    for (int i = 0; i < index.n_components; i++) {
        const pipeline_component *p = &index.components[i];
        inspect_component *c = &r->components[r->n_components++];
        memcpy(c->name, p->name, sizeof c->name);
        memcpy(c->library, p->library, sizeof c->library);
        memcpy(c->class_name, p->class_name, sizeof c->class_name);
        TRY(path_join(c->dir, sizeof c->dir, path, p->name));
        TRY(gather_component(c, type_of_class(p->class_name)));
    }
    return CANVAS_OK;
}

/* Which component a config.json describes: diffusers' _class_name, or transformers'
 * model_type for the text encoder. */
static canvas_status identify(const char *config_path, inspect_component *c, component_type *type)
{
    json_t *root;
    TRY(json_file_load(config_path, &root));
    json_t *cls = json_object_get(root, "_class_name"), *model_type = json_object_get(root, "model_type");
    canvas_status status = CANVAS_OK;
    if (json_is_string(cls)) {
        status = copy_text(c->class_name, sizeof c->class_name, json_string_value(cls));
        snprintf(c->library, sizeof c->library, "diffusers");
    } else if (json_is_string(model_type) && !strcmp(json_string_value(model_type), "qwen2_5_vl")) {
        snprintf(c->class_name, sizeof c->class_name, "Qwen2_5_VLForConditionalGeneration");
        snprintf(c->library, sizeof c->library, "transformers");
    }
    json_decref(root);
    TRY(status);
    *type = type_of_class(c->class_name);
    if (*type == TYPE_OTHER || *type == TYPE_SCHEDULER)
        return status_fail(CANVAS_ERR_INPUT, "%s: not a model component canvas knows (class \"%s\"); expected a "
                           "Qwen-Image transformer, VAE or Qwen2.5-VL text encoder", config_path,
                           c->class_name[0] ? c->class_name : "none given");
    return CANVAS_OK;
}

static canvas_status gather_component_dir(const char *path, inspect_report *r)
{
    inspect_component *c = &r->components[0];
    r->kind = INSPECT_COMPONENT;
    r->n_components = 1;
    TRY(copy_text(c->dir, sizeof c->dir, path));
    char config[4200];
    component_type type = TYPE_SCHEDULER;
    TRY(path_join(config, sizeof config, path, "config.json"));
    if (is_file(config)) {
        TRY(identify(config, c, &type));
    } else {
        snprintf(c->class_name, sizeof c->class_name, "FlowMatchEulerDiscreteScheduler");
        snprintf(c->library, sizeof c->library, "diffusers");
    }
    snprintf(c->name, sizeof c->name, "%s", canonical_name(type));
    return gather_component(c, type);
}

static canvas_status gather_file(const char *path, inspect_report *r)
{
    st_file *file;
    TRY(st_open(path, &file));
    r->kind = INSPECT_FILE;
    r->file_tensors = file->n_tensors;
    r->file_metadata = file->n_metadata;
    r->file_size = file->map_bytes;
    for (int i = 0; i < file->n_tensors; i++) {
        const st_tensor *t = &file->tensors[i];
        r->file_params += st_numel(t);
        r->file_bytes += t->nbytes;
        r->file_dtypes[t->type].tensors++;
        r->file_dtypes[t->type].params += st_numel(t);
        r->file_dtypes[t->type].bytes += t->nbytes;
    }
    st_close(file);
    return CANVAS_OK;
}

static void add_total(inspect_sizes *total, const inspect_sizes *s)
{
    total->params += s->params;
    total->tensors += s->tensors;
    total->stored_bytes += s->stored_bytes;
    for (int f = 0; f < ARCH_SIZE_FORMAT_COUNT; f++) total->bytes_as[f] += s->bytes_as[f];
}

canvas_status inspect_gather(const char *path, inspect_report *report)
{
    report->path = path;
    char probe[4200];
    if (is_file(path)) {
        /* a config.json / model_index.json names its folder */
        size_t n = strlen(path);
        if (n < 5 || strcmp(path + n - 5, ".json") != 0) return gather_file(path, report);
        return status_fail(CANVAS_ERR_INPUT, "%s: give the folder that holds this file, or a .safetensors file",
                           path);
    }
    if (!is_dir(path)) { /* say why: a FIFO or a device exists, and a folder may be unreadable */
        struct stat info;
        if (stat(path, &info) == 0)
            return status_fail(CANVAS_ERR_INPUT, "%s: not a file or folder (a FIFO, device or socket)", path);
        return status_fail(CANVAS_ERR_INPUT, "%s: %s", path,
                           errno == ENOENT ? "no such file or folder" : strerror(errno));
    }
    TRY(path_join(probe, sizeof probe, path, "model_index.json"));
    if (is_file(probe)) TRY(gather_pipeline(path, report));
    else {
        char config[4200], scheduler[4200];
        TRY(path_join(config, sizeof config, path, "config.json"));
        TRY(path_join(scheduler, sizeof scheduler, path, "scheduler_config.json"));
        if (!is_file(config) && !is_file(scheduler))
            return status_fail(CANVAS_ERR_INPUT, "%s: not a model folder (no model_index.json, config.json or "
                               "scheduler_config.json)", path);
        TRY(gather_component_dir(path, report));
    }
    for (int i = 0; i < report->n_components; i++)
        if (report->components[i].state == INSPECT_CHECKED && report->components[i].total.tensors)
            add_total(&report->total, &report->components[i].total);
    return CANVAS_OK;
}

canvas_status inspect_gather_files(const char *transformer, const char *text_encoder, const char *vae,
                                   inspect_report *report)
{
    static const char *const class_names[] = {"QwenImageTransformer2DModel", "AutoencoderKLQwenImage",
                                              "Qwen2_5_VLForConditionalGeneration"};
    static const char *const libraries[] = {"diffusers", "diffusers", "transformers"};
    const char *const files[] = {transformer, vae, text_encoder};
    const component_type types[] = {TYPE_DIT, TYPE_VAE, TYPE_TEXTENC};
    report->kind = INSPECT_COMPONENT;
    for (int i = 0; i < 3; i++) {
        if (!files[i]) continue;
        if (!report->path) report->path = files[i];
        if (!is_file(files[i])) return status_fail(CANVAS_ERR_INPUT, "%s: not a file", files[i]);
        inspect_component *c = &report->components[report->n_components++];
        TRY(copy_text(c->dir, sizeof c->dir, files[i]));
        snprintf(c->name, sizeof c->name, "%s", canonical_name(types[i]));
        snprintf(c->class_name, sizeof c->class_name, "%s", class_names[i]);
        snprintf(c->library, sizeof c->library, "%s", libraries[i]);
        TRY(gather_component(c, types[i]));
        if (c->state == INSPECT_CHECKED && c->total.tensors) add_total(&report->total, &c->total);
    }
    return CANVAS_OK;
}

void inspect_report_free(inspect_report *report)
{
    for (int i = 0; i < report->n_components; i++) {
        mem_free(report->components[i].blocks);
        report->components[i].blocks = NULL;
    }
}
