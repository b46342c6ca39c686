/* SPDX-License-Identifier: Apache-2.0 */
/* convert_comfy.c — the transformer as one ComfyUI-style file (cli/convert_comfy.h). */
#include "cli/convert_comfy.h"

#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "cli/stop_signal.h"
#include "io/quant_loader.h"
#include "io/safetensors.h"
#include "mem/mem.h"

#define PREFIX "model.diffusion_model."
enum { NAME_ROOM = 320 };

int convert_block_matrix(const st_tensor *t)
{
    size_t n = strlen(t->name);
    return !strncmp(t->name, "transformer_blocks.", 19) && n > 7 && !strcmp(t->name + n - 7, ".weight") && t->ndim == 2 &&
           (t->type == DTYPE_F32 || t->type == DTYPE_F16 || t->type == DTYPE_BF16);
}

/* The matrices quantise-on-load quantises (fp8 fits every width). */
static int quantised(const st_tensor *t, quant_choice choice) { return choice.format != QUANT_NONE && convert_block_matrix(t); }

typedef struct comfy_file {
    st_write_tensor *tensors;
    char *names;       /* NAME_ROOM bytes per entry */
    float *scales;     /* one per entry (only the scale entries' are used) */
    int n;
} comfy_file;

static canvas_status add(comfy_file *f, const char *name, const char *suffix, dtype type, int ndim, const int64_t *shape,
                         const void *data)
{
    char *slot = f->names + (size_t)f->n * NAME_ROOM;
    if (snprintf(slot, NAME_ROOM, PREFIX "%s%s", name, suffix) >= NAME_ROOM)
        return status_fail(CANVAS_ERR_INPUT, "tensor '%s': name too long", name);
    st_write_tensor *t = &f->tensors[f->n++];
    *t = (st_write_tensor){slot, type, ndim, {0}, data};
    if (ndim > 0) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    return CANVAS_OK;
}

static canvas_status fill(comfy_file *f, const weight_set *files, const qwen_dit_config *config, quant_choice choice,
                          quant_store *store)
{
    static const uint8_t nothing[1];
    const dtype codes = choice.format == QUANT_FP8_E5M2 ? DTYPE_F8_E5M2 : DTYPE_F8_E4M3;
    for (int i = 0; i < files->n_tensors; i++) {
        const st_tensor *t = files->tensors[i];
        TRY(cli_check_stop("while converting the transformer"));
        if (!quantised(t, choice)) {
            TRY(add(f, t->name, "", t->type, t->ndim, t->shape, t->data));
            continue;
        }
        quant_weight q;
        TRY(quant_weight_from_view(store, files, t->name, t->shape[0], t->shape[1], choice, &q));
        TRY(add(f, t->name, "", codes, 2, t->shape, q.data));
        char layer[NAME_ROOM];
        snprintf(layer, sizeof layer, "%.*s", (int)strlen(t->name) - 7, t->name); /* without ".weight" */
        f->scales[f->n] = q.quant->tensor_scale;
        TRY(add(f, layer, ".scale_weight", DTYPE_F32, 0, NULL, &f->scales[f->n]));
    }
    if (choice.format != QUANT_NONE) TRY(add(f, "scaled_fp8", "", codes, 1, (int64_t[]){0}, nothing));
    if (config->zero_cond_t) TRY(add(f, "__index_timestep_zero__", "", DTYPE_F32, 1, (int64_t[]){0}, nothing));
    return CANVAS_OK;
}

canvas_status convert_write_comfy(const weight_set *files, const qwen_dit_config *config, quant_choice choice,
                                  const char *out_path)
{
    if (choice.format != QUANT_NONE &&
        (choice.per_channel || (choice.format != QUANT_FP8_E4M3 && choice.format != QUANT_FP8_E5M2)))
        return status_fail(CANVAS_ERR_USAGE, "%s: a ComfyUI file holds fp8 with one scale per tensor (--weights fp8 or "
                           "fp8-e5m2) or the weights as stored (--weights none), not %s", out_path,
                           quant_choice_name(choice));
    const size_t room = (size_t)files->n_tensors * 2 + 2; /* a scale per weight, two markers */
    comfy_file f = {0};
    quant_store *store = NULL;
    canvas_status st = mem_calloc((void **)&f.tensors, room, sizeof *f.tensors, MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_calloc((void **)&f.names, room, NAME_ROOM, MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_calloc((void **)&f.scales, room, sizeof *f.scales, MEM_SCRATCH);
    if (st == CANVAS_OK) st = quant_store_create(&store);
    if (st == CANVAS_OK) st = fill(&f, files, config, choice, store);
    st_metadata_entry metadata[] = {{"format", "pt"}, {"quantization_by", "canvas convert"}};
    if (st == CANVAS_OK) st = st_write(out_path, f.tensors, f.n, metadata, 2);
    quant_store_free(store);
    mem_free(f.scales);
    mem_free(f.names);
    mem_free(f.tensors);
    return st;
}
