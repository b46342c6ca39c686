/* SPDX-License-Identifier: Apache-2.0 */
/* arch_vae.c — the tensors of AutoencoderKLQwenImage (spec A.3): a Wan-2.1-style causal
 * 3-D VAE. Causal convs are Conv3d ([out, in, kt, kh, kw]); the resamplers' spatial
 * convs are Conv2d; RMS-norm gammas are [C,1,1,1] ([C,1,1] in attention blocks). */
#include <stdio.h>

#include "models/arch.h"

enum { ENCODER_GROUP = 0, DECODER_GROUP = 1 };

/* A convolution with a bias; kernel has kdims entries (3 for Conv3d, 2 for Conv2d). */
static canvas_status conv(tensor_spec_list *out, int group, int flags, const char *name, int64_t out_ch,
                          int64_t in_ch, int kdims, const int64_t *kernel)
{
    int64_t shape[ARCH_MAX_DIMS] = {out_ch, in_ch};
    for (int k = 0; k < kdims; k++) shape[2 + k] = kernel[k];
    TRY(arch_add(out, group, flags, 2 + kdims, shape, "%s.weight", name));
    return arch_add(out, group, flags, 1, (int64_t[]){out_ch}, "%s.bias", name);
}

static const int64_t k333[3] = {3, 3, 3}, k111[3] = {1, 1, 1}, k311[3] = {3, 1, 1}, k33[2] = {3, 3}, k11[2] = {1, 1};

static canvas_status gamma(tensor_spec_list *out, int group, const char *name, int64_t channels, int ndim)
{
    return arch_add(out, group, 0, ndim, (int64_t[]){channels, 1, 1, 1}, "%s.gamma", name);
}

static canvas_status residual(tensor_spec_list *out, int group, const char *name, int64_t in, int64_t out_ch)
{
    char sub[160];
    TRY(arch_name(sub, sizeof sub, "%s.norm1", name));
    TRY(gamma(out, group, sub, in, 4));
    TRY(arch_name(sub, sizeof sub, "%s.conv1", name));
    TRY(conv(out, group, 0, sub, out_ch, in, 3, k333));
    TRY(arch_name(sub, sizeof sub, "%s.norm2", name));
    TRY(gamma(out, group, sub, out_ch, 4));
    TRY(arch_name(sub, sizeof sub, "%s.conv2", name));
    TRY(conv(out, group, 0, sub, out_ch, out_ch, 3, k333));
    if (in == out_ch) return CANVAS_OK;
    TRY(arch_name(sub, sizeof sub, "%s.conv_shortcut", name));
    return conv(out, group, 0, sub, out_ch, in, 3, k111);
}

/* Single-head spatial attention: norm, to_qkv and proj are 1x1 Conv2d. */
static canvas_status attention(tensor_spec_list *out, int group, const char *name, int64_t dim)
{
    char sub[160];
    TRY(arch_name(sub, sizeof sub, "%s.norm", name));
    TRY(gamma(out, group, sub, dim, 3));
    TRY(arch_name(sub, sizeof sub, "%s.to_qkv", name));
    TRY(conv(out, group, 0, sub, 3 * dim, dim, 2, k11));
    TRY(arch_name(sub, sizeof sub, "%s.proj", name));
    return conv(out, group, 0, sub, dim, dim, 2, k11);
}

static canvas_status mid_block(tensor_spec_list *out, int group, const char *side, int64_t dim)
{
    char name[160];
    TRY(arch_name(name, sizeof name, "%s.mid_block.resnets.0", side));
    TRY(residual(out, group, name, dim, dim));
    TRY(arch_name(name, sizeof name, "%s.mid_block.attentions.0", side));
    TRY(attention(out, group, name, dim));
    TRY(arch_name(name, sizeof name, "%s.mid_block.resnets.1", side));
    return residual(out, group, name, dim, dim);
}

/* Resample: a 3x3 Conv2d (downsample keeps dim, upsample halves it) plus, for the
 * temporal ("3d") modes, a time_conv that a single image never runs. */
static canvas_status resample(tensor_spec_list *out, int group, const char *name, int64_t dim, int up, int temporal)
{
    char sub[160];
    TRY(arch_name(sub, sizeof sub, "%s.resample.1", name));
    TRY(conv(out, group, 0, sub, up ? dim / 2 : dim, dim, 2, k33));
    if (!temporal) return CANVAS_OK;
    TRY(arch_name(sub, sizeof sub, "%s.time_conv", name));
    return conv(out, group, ARCH_UNUSED, sub, up ? 2 * dim : dim, dim, 3, k311);
}

static canvas_status encoder(const vae_config *c, tensor_spec_list *out)
{
    const int g = ENCODER_GROUP, levels = c->n_dim_mult;
    int64_t dims[VAE_MAX_LEVELS + 1] = {c->base_dim};
    for (int i = 0; i < levels; i++) dims[i + 1] = (int64_t)c->base_dim * c->dim_mult[i];
    TRY(conv(out, g, 0, "encoder.conv_in", dims[0], c->input_channels, 3, k333));
    int index = 0; /* down_blocks is one flat list of residual and resample blocks */
    char name[64];
    for (int i = 0; i < levels; i++) {
        int64_t in = dims[i];
        for (int r = 0; r < c->num_res_blocks; r++, in = dims[i + 1]) {
            TRY(arch_name(name, sizeof name, "encoder.down_blocks.%d", index++));
            TRY(residual(out, g, name, in, dims[i + 1]));
        }
        if (i == levels - 1) break;
        TRY(arch_name(name, sizeof name, "encoder.down_blocks.%d", index++));
        TRY(resample(out, g, name, dims[i + 1], 0, c->temperal_downsample[i]));
    }
    TRY(mid_block(out, g, "encoder", dims[levels]));
    TRY(gamma(out, g, "encoder.norm_out", dims[levels], 4));
    /* The encoder emits mean and log-variance: 2 x z_dim channels. */
    TRY(conv(out, g, 0, "encoder.conv_out", 2 * (int64_t)c->z_dim, dims[levels], 3, k333));
    return conv(out, g, 0, "quant_conv", 2 * (int64_t)c->z_dim, 2 * (int64_t)c->z_dim, 3, k111);
}

static canvas_status up_block(const vae_config *c, tensor_spec_list *out, int i, int64_t in, int64_t out_ch)
{
    const int g = DECODER_GROUP, levels = c->n_dim_mult;
    char name[64];
    for (int r = 0; r <= c->num_res_blocks; r++, in = out_ch) {
        TRY(arch_name(name, sizeof name, "decoder.up_blocks.%d.resnets.%d", i, r));
        TRY(residual(out, g, name, in, out_ch));
    }
    if (i == levels - 1) return CANVAS_OK;
    /* temperal_upsample is temperal_downsample reversed */
    TRY(arch_name(name, sizeof name, "decoder.up_blocks.%d.upsamplers.0", i));
    return resample(out, g, name, out_ch, 1, c->temperal_downsample[levels - 2 - i]);
}

static canvas_status decoder(const vae_config *c, tensor_spec_list *out)
{
    const int g = DECODER_GROUP, levels = c->n_dim_mult;
    int64_t dims[VAE_MAX_LEVELS + 1] = {(int64_t)c->base_dim * c->dim_mult[levels - 1]};
    for (int i = 0; i < levels; i++) dims[i + 1] = (int64_t)c->base_dim * c->dim_mult[levels - 1 - i];
    TRY(conv(out, g, 0, "post_quant_conv", c->z_dim, c->z_dim, 3, k111));
    TRY(conv(out, g, 0, "decoder.conv_in", dims[0], c->z_dim, 3, k333));
    TRY(mid_block(out, g, "decoder", dims[0]));
    for (int i = 0; i < levels; i++) {
        /* each upsampler halved the channels, so later blocks start from half */
        TRY(up_block(c, out, i, i > 0 ? dims[i] / 2 : dims[i], dims[i + 1]));
    }
    TRY(gamma(out, g, "decoder.norm_out", dims[levels], 4));
    return conv(out, g, 0, "decoder.conv_out", c->input_channels, dims[levels], 3, k333);
}

canvas_status arch_vae(const vae_config *config, tensor_spec_list *out)
{
    if (config->n_attn_scales > 0)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "vae: attn_scales is not empty; no released Qwen-Image VAE "
                                                   "uses down-block attention and this build does not run it");
    TRY(encoder(config, out));
    return decoder(config, out);
}
