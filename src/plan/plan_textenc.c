/* SPDX-License-Identifier: Apache-2.0 */
/* plan_textenc.c — the text encoder (Qwen2.5-VL) as a component of the plan: its weight
 * groups in each format, resident or streamed layer by layer through the residency
 * manager, its activation arena, and what the text-encode phase puts on the device and
 * the host. The phase runs before the transformer is loaded and releases everything but
 * the prompt embeddings, so it shares no memory with the later phases. */
#include <math.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "mem/mem_arena.h"
#include "mem/mem_device.h"
#include "mem/mem_residency.h"
#include "models/qwen_textenc.h"
#include "ops/ops.h"
#include "plan/plan_internal.h"

#define TEXTENC_GROUP_MAX_MATRICES 8 /* a decoder layer has 7, a vision block 5, the top level 3 */
#define EMBEDDINGS_ON_HOST (-2)      /* not a group: embed_tokens is gathered on the host */

/* The residency groups of one weight format (plan.h's order), with homes never read. */
typedef struct textenc_shape {
    int n_groups;
    residency_group *table;
    residency_tensor *tensors; /* [n_groups][TEXTENC_GROUP_MAX_MATRICES + 1] */
    uint64_t *host_bytes;      /* [n_groups]: what loading puts in host RAM: the vectors, the quantised blobs */
    uint64_t text_params, vision_params; /* per decoder layer / vision block, for the FLOPs */
} textenc_shape;

int plan_textenc_layers(const textenc_config *config)
{
    return config->vision.depth + config->text.num_hidden_layers;
}

/* Residency group g -> arch.h's group: vision blocks first (arch groups layers + b), then
 * the decoder layers (arch groups 0 .. layers - 1). */
static int arch_group_of(const textenc_config *c, int g)
{
    if (g == 0) return -1;
    if (g <= c->vision.depth) return c->text.num_hidden_layers + g - 1;
    return g - 1 - c->vision.depth;
}

static void shape_free(textenc_shape *s)
{
    mem_free(s->table);
    mem_free(s->tensors);
    mem_free(s->host_bytes);
    memset(s, 0, sizeof *s);
}

static canvas_status shape_build(const textenc_config *c, quant_choice weights, int stored_bytes,
                                 textenc_shape *out)
{
    memset(out, 0, sizeof *out);
    const int n = 1 + plan_textenc_layers(c), per = TEXTENC_GROUP_MAX_MATRICES + 1;
    tensor_spec_list specs = {0};
    canvas_status st = arch_text_encoder(c, TEXTENC_NAMES_CHECKPOINT, &specs);
    for (int i = 0; st == CANVAS_OK && i < specs.count; i++) {
        const char *name = specs.items[i].name;
        const size_t len = strlen(name);
        if (len >= 19 && !strcmp(name + len - 19, "embed_tokens.weight")) specs.items[i].group = EMBEDDINGS_ON_HOST;
    }
    if (st == CANVAS_OK) st = mem_calloc((void **)&out->table, (size_t)n, sizeof *out->table, MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_calloc((void **)&out->tensors, (size_t)n * per, sizeof *out->tensors, MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_calloc((void **)&out->host_bytes, (size_t)n, sizeof *out->host_bytes, MEM_SCRATCH);
    for (int g = 0; st == CANVAS_OK && g < n; g++) {
        residency_tensor *t = out->tensors + (size_t)g * per;
        size_t bytes[TEXTENC_GROUP_MAX_MATRICES + 1];
        int matrices;
        st = plan_group_sizes(&specs, arch_group_of(c, g), g > 0, weights, stored_bytes, bytes,
                              TEXTENC_GROUP_MAX_MATRICES, &matrices);
        for (int i = 0; st == CANVAS_OK && i <= matrices; i++) {
            t[i] = (residency_tensor){plan_shape_home, bytes[i]};
            /* quantised matrices are made on load into host RAM; stored ones stay in the mapping */
            if (i == matrices || (g > 0 && weights.format != QUANT_NONE)) out->host_bytes[g] += bytes[i];
        }
        out->table[g] = (residency_group){g == 0                   ? "text encoder top level"
                                          : g <= c->vision.depth ? "text encoder vision block"
                                                                 : "text encoder decoder layer",
                                          t, matrices + 1};
    }
    out->n_groups = n;
    if (st == CANVAS_OK && c->text.num_hidden_layers > 0)
        out->text_params = arch_count_group(&specs, 0, 0).params;
    if (st == CANVAS_OK && c->vision.depth > 0)
        out->vision_params = arch_count_group(&specs, c->text.num_hidden_layers, 0).params;
    arch_free(&specs);
    if (st != CANVAS_OK) shape_free(out);
    return st;
}

static uint64_t shape_group_bytes(const textenc_shape *s, int g)
{
    const residency_plan all = {1};
    return residency_plan_device_bytes(&s->table[g], 1, &all);
}

canvas_status plan_textenc_weight_bytes(const textenc_config *config, quant_choice weights, int stored_bytes,
                                        int resident, uint64_t *out)
{
    textenc_shape s;
    TRY(shape_build(config, weights, stored_bytes, &s));
    const residency_plan plan = {1 + (resident < 0 ? 0 : resident)};
    *out = residency_plan_device_bytes(s.table, s.n_groups, &plan);
    shape_free(&s);
    return CANVAS_OK;
}

canvas_status plan_textenc_size(const textenc_config *config, uint64_t *params, uint64_t *host_only_params)
{
    tensor_spec_list specs = {0};
    canvas_status st = arch_text_encoder(config, TEXTENC_NAMES_CHECKPOINT, &specs);
    if (st == CANVAS_OK) {
        *params = arch_count_group(&specs, ARCH_ANY_GROUP, ARCH_UNUSED).params;
        *host_only_params = arch_count_prefix(&specs, "model.embed_tokens.").params;
    }
    arch_free(&specs);
    return st;
}

/* ---- activations ------------------------------------------------------------------- */

static int64_t total_patches(const int64_t *patches, int n_images, int64_t *largest)
{
    int64_t s = 0;
    *largest = 0;
    for (int i = 0; i < n_images; i++) {
        s += patches[i];
        if (patches[i] > *largest) *largest = patches[i];
    }
    return s;
}

/* The forward's activations are one arena of textenc_activation_bytes (the formula is
 * in models/qwen_textenc.h, checked there against a run); attention never holds an L x L
 * matrix (op_attention is flash-style): its own workspace is op_attention_workspace_bytes
 * of the longer of the two sequences (a full-attention vision block spans one image). */
/* op_attention's workspace over the longer of the two sequences (a full-attention vision
 * block spans one image: the largest one's patches). */
static uint64_t attention_workspace_bytes(const textenc_config *c, int64_t tokens, int64_t largest, int threads)
{
    const textenc_vision_config *v = &c->vision;
    const uint64_t text =
        op_attention_workspace_bytes(tokens, c->text.num_attention_heads, c->text.head_dim, threads, 0);
    const uint64_t vision =
        largest > 0 && v->num_heads > 0
            ? op_attention_workspace_bytes(largest, v->num_heads, v->hidden_size / v->num_heads, threads, 0)
            : 0;
    return text > vision ? text : vision;
}

/* A condition image's patch grid for the model's formula: the plan knows patch counts
 * only; a square-ish grid with even sides (the 2x2 merge) of the same count. */
static void grid_of(int64_t patches, int64_t grid[3])
{
    int64_t h = 2;
    for (int64_t k = (int64_t)sqrt((double)patches); k >= 2; k--)
        if (k % 2 == 0 && patches % k == 0 && (patches / k) % 2 == 0) {
            h = k;
            break;
        }
    grid[0] = 1;
    grid[1] = h;
    grid[2] = patches / h;
}

uint64_t plan_textenc_activation_bytes(const textenc_config *config, int64_t tokens, const int64_t *patches,
                                       int n_images)
{
    int64_t grids[PLAN_MAX_REFERENCES][3];
    int n = 0;
    for (int i = 0; i < n_images && n < PLAN_MAX_REFERENCES; i++)
        if (patches[i] > 0) grid_of(patches[i], grids[n++]);
    /* the arena the forward allocates on its device (models/qwen_textenc.h, checked there
     * against a run); the CPU kernels' workspace is host memory (kernel_workspace_bytes) */
    return textenc_activation_bytes(config, tokens, (const int64_t(*)[3])grids, n);
}

/* The host's share while the kernels run on the CPU: op_attention's workspace and the
 * largest op_linear's packing scratch. */
static uint64_t kernel_workspace_bytes(const textenc_config *c, int64_t l, int64_t s, int64_t largest, int threads)
{
    const textenc_text_config *t = &c->text;
    const textenc_vision_config *v = &c->vision;
    const int64_t d = t->hidden_size, dkv = (int64_t)t->num_key_value_heads * t->head_dim, i = t->intermediate_size;
    const int64_t dv = v->hidden_size, iv = v->intermediate_size, m = dv * v->spatial_merge_size * v->spatial_merge_size;
    const int64_t patch = (int64_t)v->in_channels * v->temporal_patch_size * v->patch_size * v->patch_size;
    const int64_t shapes[][3] = {
        {l, d, d}, {l, dkv, d}, {l, i, d}, {l, d, i},           /* decoder: q / o, k / v, gate / up, down */
        {s, dv, patch}, {s, dv, dv}, {s, iv, dv}, {s, dv, iv}, /* vision: patch embed, q k v / proj, MLP */
        {s / 4, m, m}, {s / 4, d, m},                           /* merger */
    };
    uint64_t linear = 0;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        if (shapes[k][0] <= 0) continue;
        const uint64_t w = op_linear_workspace_bytes(shapes[k][0], shapes[k][1], shapes[k][2], threads);
        if (w > linear) linear = w;
    }
    return linear + attention_workspace_bytes(c, l, s ? largest : 0, threads);
}

/* ---- the dry placement ------------------------------------------------------------- */

typedef struct placement {
    const textenc_shape *shape;
    uint64_t arena, cap;
} placement;

/* The top level and `resident` layer groups placed on a measure device of `cap` bytes (0:
 * unbounded) through the residency manager, then the activation arena: what the encoder's
 * forward allocates on its device, by the same allocator as the capped pool. */
static canvas_status place(const placement *p, int resident, uint64_t cap, uint64_t *peak, int *fits)
{
    mem_device *measure;
    TRY(mem_device_create_measure("gpu (dry run)", (size_t)cap, &measure));
    residency_manager *manager = NULL;
    mem_arena *arena = NULL;
    const residency_plan plan = {1 + resident};
    canvas_status st = residency_create(measure, p->shape->table, p->shape->n_groups, &plan, &manager);
    if (st == CANVAS_OK) st = mem_arena_create(measure, MEM_ACTIVATIONS, (size_t)p->arena, &arena);
    mem_device_stats stats;
    mem_device_get_stats(measure, &stats);
    mem_arena_destroy(arena);
    residency_destroy(manager);
    mem_device_destroy(measure);
    *peak = stats.peak_bytes;
    *fits = stats.refused == 0 && st == CANVAS_OK;
    if (st == CANVAS_ERR_OUT_OF_MEMORY && stats.refused) {
        status_clear();
        st = CANVAS_OK;
    }
    return st;
}

static canvas_status placement_fits(void *ctx, int k, int *fits)
{
    const placement *p = ctx;
    uint64_t peak;
    return place(p, k, p->cap, &peak, fits);
}

/* ---- the phase ------------------------------------------------------------------------ */

/* Multiply-adds x 2 of residency group g over one pass: a decoder layer's matrices on the L
 * rows and its attention QK^T and PV (causal, counted in full); a vision block's on the S
 * patches, attention in windows of 64 patches or, in the fullatt blocks, over each image;
 * the top level's patch embedding and merger. */
static double group_flops(const textenc_config *c, const textenc_shape *s, int g, int64_t l, const int64_t *patches,
                          int n_images)
{
    const textenc_vision_config *v = &c->vision;
    const double d = c->text.hidden_size, dv = v->hidden_size, merged = dv * v->spatial_merge_size * v->spatial_merge_size;
    const double patch = (double)v->in_channels * v->temporal_patch_size * v->patch_size * v->patch_size;
    if (g > v->depth) return 2.0 * (double)s->text_params * (double)l + 4.0 * (double)l * (double)l * d;
    int full = 0;
    for (int i = 0; g > 0 && i < v->n_fullatt_blocks; i++) full |= v->fullatt_block_indexes[i] == g - 1;
    double flops = 0;
    for (int i = 0; i < n_images; i++) {
        const double n = (double)patches[i];
        if (g == 0) flops += 2.0 * n * dv * patch + 2.0 * (n / 4) * merged * (merged + d);
        else flops += 2.0 * (double)s->vision_params * n + 4.0 * n * dv * (full ? n : 64.0);
    }
    return flops;
}

/* Seconds of one pass: resident groups' compute, then the streamed ones', overlapped with
 * their copies from their home (the mapped file when stored, host RAM when quantised)
 * except the first (the transformer's time model). On the host the same throughput is
 * assumed: a rough figure, which ranks nothing (the presets are ranked by s/step). */
static double pass_seconds(const plan_work *work, const plan_hardware *hw, const plan_point *p,
                           const textenc_shape *shape)
{
    const plan_component *text = &work->components[PLAN_TEXT_ENCODER];
    double flops = hw->flops_per_second[p->text_weights.format];
    if (!(flops > 0)) flops = hw->flops_per_second[QUANT_NONE] > 0 ? hw->flops_per_second[QUANT_NONE] : 1e9;
    double link = hw->link_bytes_per_second > 0 ? hw->link_bytes_per_second : 1e9;
    if (p->text_weights.format == QUANT_NONE && hw->disk_bytes_per_second > 0 && hw->disk_bytes_per_second < link)
        link = hw->disk_bytes_per_second;
    const int streamed_from = p->text_on_host ? shape->n_groups : 1 + p->text_resident;
    double resident = 0, streamed = 0, transfer = 0, first = 0;
    for (int g = 0; g < shape->n_groups; g++) {
        const double seconds = group_flops(&text->config.text, shape, g, text->text_tokens, text->vision_patches,
                                           work->n_refs) /
                               flops;
        if (g < streamed_from) {
            resident += seconds;
            continue;
        }
        const double copy = (double)shape_group_bytes(shape, g) / link;
        if (first == 0) first = copy;
        streamed += seconds;
        transfer += copy;
    }
    return resident + (streamed > transfer ? streamed : transfer) + first;
}

/* The largest resident prefix whose placement fits `room` (every layer streamed in the
 * sequential preset; every layer resident when the component may not stream), and its
 * device peak; *k -1 when not even that fits. */
static canvas_status choose_residency(const plan_point *p, const placement *pl, int layers, int may_stream, int *k,
                                      uint64_t *device)
{
    int fits = 0;
    *k = -1;
    *device = 0;
    if (!pl->cap) return CANVAS_OK;
    if (p->preset == PLAN_SEQUENTIAL || !may_stream) {
        const int only = may_stream ? 0 : layers;
        TRY(placement_fits((void *)pl, only, &fits));
        *k = fits ? only : -1;
    } else {
        TRY(plan_largest_prefix(layers, placement_fits, (void *)pl, k));
    }
    return *k >= 0 ? place(pl, *k, 0, device, &fits) : CANVAS_OK;
}

canvas_status plan_textenc_estimate(const plan_work *work, const plan_hardware *hw, const plan_limits *limits,
                                    uint64_t room, plan_candidate *c)
{
    plan_point *p = &c->point;
    plan_memory *phase = &c->phases[PLAN_PHASE_TEXT];
    memset(phase, 0, sizeof *phase);
    c->text_seconds = 0;
    p->text_resident = 0;
    p->text_on_host = 0;
    const plan_component *text = &work->components[PLAN_TEXT_ENCODER];
    if (!text->present) return CANVAS_OK;
    const textenc_config *tc = &text->config.text;
    const int64_t tokens = text->text_tokens, *patches = text->vision_patches;
    const int threads = work->threads > 0 ? work->threads : 1, n_images = work->n_refs;
    const int stored = text->stored_bytes_per_element > 0 ? text->stored_bytes_per_element : 2;
    textenc_shape shape;
    TRY(shape_build(tc, p->text_weights, stored, &shape));
    const placement pl = {&shape, plan_textenc_activation_bytes(tc, tokens, patches, n_images), room};
    int k;
    canvas_status st =
        choose_residency(p, &pl, plan_textenc_layers(tc), (text->residency & PLAN_STREAMED) != 0, &k, &phase->device);
    if (st != CANVAS_OK) {
        shape_free(&shape);
        return st;
    }
    p->text_on_host = k < 0;
    p->text_resident = k < 0 ? 0 : k;

    /* host: the prompt embeddings it hands on (both CFG prompts); its vectors and quantised
     * layers (on a GPU only the streamed ones' homes stay: the transformer's rule); the CPU
     * kernels' workspace where the device is this build's pool; all of its activations
     * when it computes in host memory */
    int64_t largest;
    const int64_t s = total_patches(patches, n_images, &largest);
    const uint64_t kernels = kernel_workspace_bytes(tc, tokens, s, largest, threads);
    phase->host = (uint64_t)work->n_txt * (uint64_t)tc->text.hidden_size * sizeof(float) * (work->cfg ? 2u : 1u);
    const int first_home = limits->vae_on_device && !p->text_on_host ? 1 + p->text_resident : 0;
    for (int g = first_home; g < shape.n_groups; g++) phase->host += shape.host_bytes[g];
    if (p->text_on_host)
        phase->host += plan_textenc_activation_bytes(tc, tokens, patches, n_images) + kernels;
    else if (!limits->vae_on_device)
        phase->host += kernels;

    /* mapped: its stored matrices read in place (all of them on the host; on a device the
     * streamed groups', whose home is the mapping when stored); paged from disk at every
     * pass when the host budget cannot keep them */
    const int first_mapped = p->text_on_host ? 0 : 1 + p->text_resident;
    for (int g = first_mapped; g < shape.n_groups; g++)
        if (g == 0 || p->text_weights.format == QUANT_NONE)
            for (int t = 0; t < shape.table[g].n_tensors - 1; t++) phase->mapped += shape.table[g].tensors[t].bytes;
    const double paged = p->text_on_host && plan_pages_from_disk(phase, limits)
                             ? (double)phase->mapped / plan_disk_bytes_per_second(hw)
                             : 0;
    /* CFG: the negative prompt too */
    c->text_seconds = (work->cfg ? 2 : 1) * (pass_seconds(work, hw, p, &shape) + paged);
    shape_free(&shape);
    return CANVAS_OK;
}

plan_prompt_style plan_prompt_style_of(const char *pipeline_class)
{
    if (!strcmp(pipeline_class, "QwenImageEditPipeline")) return PLAN_PROMPT_EDIT;
    if (!strcmp(pipeline_class, "QwenImagePipeline") || !strcmp(pipeline_class, "QwenImageImg2ImgPipeline"))
        return PLAN_PROMPT_TEXT_TO_IMAGE;
    return PLAN_PROMPT_EDIT_PLUS;
}

void plan_work_text_encoder(plan_work *w, const textenc_config *config, plan_prompt_style style)
{
    plan_component *t = &w->components[PLAN_TEXT_ENCODER];
    *t = (plan_component){.kind = PLAN_TEXT_ENCODER, .present = 1, .stored_bytes_per_element = 2, .formats = ~0u,
                          .residency = PLAN_RESIDENT | PLAN_STREAMED | PLAN_ON_HOST, .config.text = *config};
    t->text_tokens = (style == PLAN_PROMPT_TEXT_TO_IMAGE ? 34 : 64) + w->n_txt;
    for (int i = 0; i < PLAN_MAX_REFERENCES; i++) {
        const int image = i < w->n_refs && (style == PLAN_PROMPT_EDIT_PLUS || (style == PLAN_PROMPT_EDIT && i == 0));
        t->vision_patches[i] = !image ? 0 : style == PLAN_PROMPT_EDIT ? PLAN_EDIT_PATCHES : PLAN_EDIT_PLUS_PATCHES;
    }
}
