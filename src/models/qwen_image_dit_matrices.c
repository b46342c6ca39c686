/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_dit_matrices.c — the transformer's Linear matrices by number and name, and
 * replacing one's home (what LoRA merging does: pipeline/lora.c).
 *
 * A matrix is named by its group (the top level or a block) and the suffix the loader
 * wired it under; its home is the weight_view in qwen_dit_weights / qwen_dit_block_weights and the
 * residency tensor of its group, which the two must always agree on. */
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_groups.h"

int qwen_dit_matrix_count(const qwen_dit_model *model)
{
    int n = 0;
    for (int g = 0; g <= model->config.num_layers; g++) n += model->memory->set.groups[g].n_matrices;
    return n;
}

/* Group and position of matrix `index`; 0 when out of range. */
static int locate(const qwen_dit_model *model, int index, int *group, int *at)
{
    if (index < 0) return 0;
    for (int g = 0; g <= model->config.num_layers; g++) {
        int n = model->memory->set.groups[g].n_matrices;
        if (index < n) {
            *group = g;
            *at = index;
            return 1;
        }
        index -= n;
    }
    return 0;
}

static weight_view *home_view(qwen_dit_model *model, int group, int at)
{
    char *home = group == 0 ? (char *)&model->weights : (char *)&model->weights.blocks[group - 1];
    return (weight_view *)(home + model->memory->set.groups[group].matrix_field[at]);
}

void qwen_dit_matrix_get(const qwen_dit_model *model, int index, qwen_dit_matrix_info *out)
{
    memset(out, 0, sizeof *out);
    int group, at;
    if (!locate(model, index, &group, &at)) return;
    const weight_group *g = &model->memory->set.groups[group];
    out->block = group - 1;
    if (group == 0) snprintf(out->name, sizeof out->name, "%s", g->matrix_suffix[at]);
    else snprintf(out->name, sizeof out->name, "transformer_blocks.%d.%s", group - 1, g->matrix_suffix[at]);
    out->home = *home_view((qwen_dit_model *)model, group, at);
    out->bytes = g->tensors[at].bytes;
    out->replaced = g->matrix_owned[at] != NULL;
}

canvas_status qwen_dit_matrix_set_home(qwen_dit_model *model, int index, const weight_view *view, size_t bytes, void *owned)
{
    int group, at;
    if (!locate(model, index, &group, &at))
        return status_fail(CANVAS_ERR_USAGE, "transformer: matrix %d does not exist", index);
    weight_view *home = home_view(model, group, at);
    if (view->out_features != home->out_features || view->in_features != home->in_features)
        return status_fail(CANVAS_ERR_USAGE, "transformer: a new home for matrix %d is [%lld, %lld], it is [%lld, %lld]",
                           index, (long long)view->out_features, (long long)view->in_features,
                           (long long)home->out_features, (long long)home->in_features);
    weight_group *g = &model->memory->set.groups[group];
    *home = *view;
    g->tensors[at] = (residency_tensor){view->data, bytes};
    if (g->matrix_owned[at] != owned) mem_free(g->matrix_owned[at]);
    g->matrix_owned[at] = owned;
    return CANVAS_OK;
}
