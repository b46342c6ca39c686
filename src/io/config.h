/* config.h — typed component configs, parsed from a diffusers/transformers config.json.
 *
 * Missing keys take the reference implementation's defaults (the constructor defaults
 * of the diffusers / transformers classes); a key with the wrong JSON type or an
 * impossible value is CANVAS_ERR_INPUT naming the file and the key. */
#ifndef CANVAS_IO_CONFIG_H
#define CANVAS_IO_CONFIG_H

#include <stdbool.h>

#include "canvas.h"

/* QwenImageTransformer2DModel */
typedef struct dit_config {
    int patch_size;            /* 2 */
    int in_channels;           /* 64 */
    int out_channels;          /* 16 (null -> in_channels) */
    int num_layers;            /* 60 */
    int attention_head_dim;    /* 128 */
    int num_attention_heads;   /* 24 */
    int joint_attention_dim;   /* 3584 */
    int axes_dims_rope[3];     /* 16, 56, 56 */
    bool guidance_embeds;      /* false; unused by the model */
    bool zero_cond_t;          /* false; true for Edit-2511 */
    bool use_additional_t_cond;/* false; Qwen-Image-Layered only (unsupported) */
    bool use_layer3d_rope;     /* false; Qwen-Image-Layered only (unsupported) */
} dit_config;

/* inner dim = heads x head_dim */
static inline int dit_inner_dim(const dit_config *c) { return c->num_attention_heads * c->attention_head_dim; }

canvas_status dit_config_load(const char *config_json_path, dit_config *out);
void dit_config_default(dit_config *out);

#endif
