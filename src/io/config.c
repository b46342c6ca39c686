/* SPDX-License-Identifier: Apache-2.0 */
/* config.c — QwenImageTransformer2DModel config (the other components: config_*.c). */
#include "io/config.h"

#include "base/status.h"
#include "io/config_fields.h"

void qwen_dit_config_default(qwen_dit_config *out)
{
    /* diffusers transformer_qwenimage.py constructor defaults */
    *out = (qwen_dit_config){
        .patch_size = 2,
        .in_channels = 64,
        .out_channels = 16,
        .num_layers = 60,
        .attention_head_dim = 128,
        .num_attention_heads = 24,
        .joint_attention_dim = 3584,
        .axes_dims_rope = {16, 56, 56},
    };
}

/* out_channels null means "same as in_channels" (the model does `out_channels or
 * in_channels`), unlike other null keys, which take their default. */
static canvas_status read_out_channels(const cfg_source *src, qwen_dit_config *c)
{
    json_t *v = json_object_get(src->object, "out_channels");
    if (v && json_is_null(v)) {
        c->out_channels = c->in_channels;
        return CANVAS_OK;
    }
    return cfg_int(src, "out_channels", &c->out_channels);
}

static canvas_status read_dit(const cfg_source *src, qwen_dit_config *c)
{
    TRY(cfg_check_class(src, "QwenImageTransformer2DModel"));
    TRY(cfg_int(src, "patch_size", &c->patch_size));
    TRY(cfg_int(src, "in_channels", &c->in_channels));
    TRY(read_out_channels(src, c));
    TRY(cfg_int(src, "num_layers", &c->num_layers));
    TRY(cfg_int(src, "attention_head_dim", &c->attention_head_dim));
    TRY(cfg_int(src, "num_attention_heads", &c->num_attention_heads));
    TRY(cfg_int(src, "joint_attention_dim", &c->joint_attention_dim));
    int n_axes = 3;
    TRY(cfg_int_array(src, "axes_dims_rope", c->axes_dims_rope, 3, &n_axes));
    if (n_axes != 3) return cfg_bad_value(src, "axes_dims_rope", "must have 3 entries (frame, height, width)");
    TRY(cfg_bool(src, "guidance_embeds", &c->guidance_embeds));
    TRY(cfg_bool(src, "zero_cond_t", &c->zero_cond_t));
    TRY(cfg_bool(src, "use_additional_t_cond", &c->use_additional_t_cond));
    return cfg_bool(src, "use_layer3d_rope", &c->use_layer3d_rope);
}

static canvas_status check_dit(const cfg_source *src, const qwen_dit_config *c)
{
    TRY(cfg_check_count(src, "patch_size", c->patch_size, 64));
    TRY(cfg_check_count(src, "in_channels", c->in_channels, CFG_MAX_SIZE));
    TRY(cfg_check_count(src, "out_channels", c->out_channels, CFG_MAX_SIZE));
    TRY(cfg_check_count(src, "num_layers", c->num_layers, CFG_MAX_LAYERS));
    TRY(cfg_check_count(src, "attention_head_dim", c->attention_head_dim, CFG_MAX_SIZE));
    TRY(cfg_check_count(src, "num_attention_heads", c->num_attention_heads, CFG_MAX_LAYERS));
    TRY(cfg_check_count(src, "joint_attention_dim", c->joint_attention_dim, CFG_MAX_SIZE));
    if ((long long)c->num_attention_heads * c->attention_head_dim > CFG_MAX_SIZE)
        return cfg_bad_value(src, "num_attention_heads", "heads x attention_head_dim is implausibly large");
    long long axes_sum = 0;
    for (int i = 0; i < 3; i++) {
        /* RoPE rotates pairs of channels, so each axis needs an even width. */
        if (c->axes_dims_rope[i] <= 0 || c->axes_dims_rope[i] % 2)
            return cfg_bad_value(src, "axes_dims_rope", "entries must be positive and even");
        axes_sum += c->axes_dims_rope[i];
    }
    if (axes_sum != c->attention_head_dim)
        return cfg_bad_value(src, "axes_dims_rope", "entries must sum to attention_head_dim");
    return CANVAS_OK;
}

canvas_status qwen_dit_config_load(const char *config_json_path, qwen_dit_config *out)
{
    qwen_dit_config_default(out);
    json_t *root;
    TRY(cfg_open(config_json_path, &root));
    cfg_source src = {config_json_path, "", root};
    canvas_status status = read_dit(&src, out);
    if (status == CANVAS_OK) status = check_dit(&src, out);
    json_decref(root);
    return status;
}
