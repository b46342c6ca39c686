/* SPDX-License-Identifier: Apache-2.0 */
/* config_vae.c — AutoencoderKLQwenImage config. */
#include "io/config.h"

#include "base/status.h"
#include "io/config_fields.h"

/* Qwen-Image's latent statistics, the class defaults (16 channels). */
static const double default_latents_mean[16] = {-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                                                0.4134,  -0.0715, 0.5517,  -0.3632, -0.1922, -0.9497, 0.2503, -0.2921};
static const double default_latents_std[16] = {2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                                               3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160};

void vae_config_default(vae_config *out)
{
    *out = (vae_config){
        .base_dim = 96,
        .z_dim = 16,
        .n_dim_mult = 4,
        .dim_mult = {1, 2, 4, 4},
        .num_res_blocks = 2,
        .n_temperal_downsample = 3,
        .temperal_downsample = {false, true, true},
        .input_channels = 3,
    };
    for (int i = 0; i < 16; i++) {
        out->latents_mean[i] = default_latents_mean[i];
        out->latents_std[i] = default_latents_std[i];
    }
}

int vae_scale_factor(const vae_config *c) { return 1 << (c->n_dim_mult - 1); }

static canvas_status read_vae(const cfg_source *src, vae_config *c, int *n_mean, int *n_std)
{
    TRY(cfg_check_class(src, "AutoencoderKLQwenImage"));
    TRY(cfg_int(src, "base_dim", &c->base_dim));
    TRY(cfg_int(src, "z_dim", &c->z_dim));
    TRY(cfg_int_array(src, "dim_mult", c->dim_mult, VAE_MAX_LEVELS, &c->n_dim_mult));
    TRY(cfg_int(src, "num_res_blocks", &c->num_res_blocks));
    TRY(cfg_double_array(src, "attn_scales", c->attn_scales, VAE_MAX_LEVELS, &c->n_attn_scales));
    TRY(cfg_bool_array(src, "temperal_downsample", c->temperal_downsample, VAE_MAX_LEVELS,
                       &c->n_temperal_downsample));
    TRY(cfg_double(src, "dropout", &c->dropout));
    TRY(cfg_int(src, "input_channels", &c->input_channels));
    TRY(cfg_double_array(src, "latents_mean", c->latents_mean, VAE_MAX_Z_DIM, n_mean));
    return cfg_double_array(src, "latents_std", c->latents_std, VAE_MAX_Z_DIM, n_std);
}

static canvas_status check_latent_stats(const cfg_source *src, const vae_config *c, int n_mean, int n_std)
{
    /* The 16-entry defaults only fit a 16-channel latent. */
    if (n_mean != c->z_dim) return cfg_bad_value(src, "latents_mean", "must have z_dim entries");
    if (n_std != c->z_dim) return cfg_bad_value(src, "latents_std", "must have z_dim entries");
    for (int i = 0; i < c->z_dim; i++)
        TRY(cfg_check_positive(src, "latents_std", c->latents_std[i]));
    return CANVAS_OK;
}

static canvas_status check_vae(const cfg_source *src, const vae_config *c, int n_mean, int n_std)
{
    TRY(cfg_check_count(src, "base_dim", c->base_dim, CFG_MAX_SIZE));
    TRY(cfg_check_count(src, "z_dim", c->z_dim, VAE_MAX_Z_DIM));
    TRY(cfg_check_count(src, "num_res_blocks", c->num_res_blocks, CFG_MAX_LAYERS));
    TRY(cfg_check_count(src, "input_channels", c->input_channels, CFG_MAX_SIZE));
    if (c->n_dim_mult < 1) return cfg_bad_value(src, "dim_mult", "must have at least one entry");
    for (int i = 0; i < c->n_dim_mult; i++) {
        TRY(cfg_check_count(src, "dim_mult", c->dim_mult[i], CFG_MAX_SIZE));
        if ((long long)c->base_dim * c->dim_mult[i] > CFG_MAX_SIZE)
            return cfg_bad_value(src, "dim_mult", "base_dim x dim_mult is implausibly large");
    }
    if (c->n_temperal_downsample != c->n_dim_mult - 1)
        return cfg_bad_value(src, "temperal_downsample", "must have one entry fewer than dim_mult");
    if (!(c->dropout >= 0 && c->dropout < 1)) return cfg_bad_value(src, "dropout", "must be in [0, 1)");
    return check_latent_stats(src, c, n_mean, n_std);
}

canvas_status vae_config_load(const char *config_json_path, vae_config *out)
{
    vae_config_default(out);
    int n_mean = 16, n_std = 16;
    json_t *root;
    TRY(cfg_open(config_json_path, &root));
    cfg_source src = {config_json_path, "", root};
    canvas_status status = read_vae(&src, out, &n_mean, &n_std);
    if (status == CANVAS_OK) status = check_vae(&src, out, n_mean, n_std);
    json_decref(root);
    return status;
}
