/* SPDX-License-Identifier: Apache-2.0 */
/* arch_infer.c — a component's config from its tensors, for a component given as one file
 * without a config.json (models/arch_infer.h).
 *
 * Sizes come from the shapes (biases and norms, whose shapes no weight format changes),
 * counts from the block indices present; what no tensor carries is Qwen-Image-Edit-2511's
 * value (tests/real-configs/qwen-image-edit-2511). The result is then checked tensor by
 * tensor by arch_check like any config, so a wrong guess is reported, not run. */
#include <stdio.h>
#include <string.h>

#include "models/arch_infer.h"

enum { MAX_COUNT = 4096 };

/* Dimension d of a tensor, or -1 when it is missing or has fewer dimensions. */
static int64_t dim_of(const weight_set *files, const char *name, int d)
{
    const st_tensor *t = weights_find(files, name);
    return t && d < t->ndim ? t->shape[d] : -1;
}

/* Dimension d of the tensor named by the format and index, or -1. */
static int64_t dim_at(const weight_set *files, int d, const char *format, const char *prefix, int index)
{
    char name[256];
    if (snprintf(name, sizeof name, format, prefix, index) >= (int)sizeof name) return -1;
    return dim_of(files, name, d);
}

/* Dimension d of prefix + name, or -1. */
static int64_t dim_in(const weight_set *files, const char *prefix, const char *name, int d)
{
    char full[256];
    if (snprintf(full, sizeof full, "%s%s", prefix, name) >= (int)sizeof full) return -1;
    return dim_of(files, full, d);
}

/* How many consecutive indices 0, 1, ... have the tensor `format` (prefix, index). */
static int count_of(const weight_set *files, const char *format, const char *prefix)
{
    int n = 0;
    while (n < MAX_COUNT && dim_at(files, 0, format, prefix, n) >= 0) n++;
    return n;
}

static canvas_status need(int64_t value, const weight_set *files, const char *what)
{
    if (value > 0 && value <= (1 << 20)) return CANVAS_OK;
    return status_fail(CANVAS_ERR_INPUT, "%s: cannot tell the %s from the tensors (give the component's config.json "
                                         "in a model folder with --model)", files->dir, what);
}

static int to_int(int64_t value)
{
    return (int)value; /* callers checked it with need() */
}

/* ---- transformer ------------------------------------------------------------------- */

canvas_status qwen_dit_config_infer(const weight_set *files, qwen_dit_config *out)
{
    qwen_dit_config_default(out);
    int64_t inner = dim_of(files, "img_in.bias", 0), in = dim_of(files, "img_in.weight", 1);
    int64_t head = dim_of(files, "transformer_blocks.0.attn.norm_q.weight", 0);
    int64_t joint = dim_of(files, "txt_norm.weight", 0), proj = dim_of(files, "proj_out.bias", 0);
    TRY(need(inner, files, "transformer width (img_in.bias)"));
    TRY(need(in, files, "input channels (img_in.weight)"));
    TRY(need(head, files, "attention head size (transformer_blocks.0.attn.norm_q.weight)"));
    TRY(need(joint, files, "text width (txt_norm.weight)"));
    TRY(need(proj, files, "output size (proj_out.bias)"));
    const int patch = out->patch_size;
    if (inner % head || proj % (patch * patch))
        return status_fail(CANVAS_ERR_INPUT, "%s: width %lld is not a multiple of the head size %lld, or output %lld "
                           "not of patch %d x %d", files->dir, (long long)inner, (long long)head, (long long)proj, patch,
                           patch);
    out->in_channels = to_int(in);
    out->out_channels = to_int(proj / (patch * patch));
    out->attention_head_dim = to_int(head);
    out->num_attention_heads = to_int(inner / head);
    out->joint_attention_dim = to_int(joint);
    out->num_layers = count_of(files, "%stransformer_blocks.%d.img_mod.1.bias", "");
    out->zero_cond_t = files->index_timestep_zero != 0;
    /* The rope split is in no tensor: the released models' for their 128-wide heads; other
     * widths (the test models) give half to frames and a quarter to each spatial axis. */
    if (head == 128) {
        out->axes_dims_rope[0] = 16, out->axes_dims_rope[1] = 56, out->axes_dims_rope[2] = 56;
    } else if (head % 8 == 0) {
        out->axes_dims_rope[0] = to_int(head / 2), out->axes_dims_rope[1] = out->axes_dims_rope[2] = to_int(head / 4);
    } else {
        return status_fail(CANVAS_ERR_INPUT, "%s: attention head size %lld: cannot tell its rope split (give the "
                           "transformer's config.json in a model folder with --model)", files->dir, (long long)head);
    }
    return CANVAS_OK;
}

/* ---- VAE --------------------------------------------------------------------------- */

canvas_status vae_config_infer(const weight_set *files, vae_config *out)
{
    vae_config_default(out);
    int64_t base = dim_of(files, "encoder.conv_in.bias", 0), rgb = dim_of(files, "encoder.conv_in.weight", 1);
    int64_t z = dim_of(files, "post_quant_conv.bias", 0);
    TRY(need(base, files, "VAE base width (encoder.conv_in.bias)"));
    TRY(need(rgb, files, "VAE input channels (encoder.conv_in.weight)"));
    TRY(need(z, files, "latent channels (post_quant_conv.bias)"));
    if (z != out->z_dim)
        return status_fail(CANVAS_ERR_INPUT, "%s: %lld latent channels; only Qwen-Image's 16 have known latents_mean / "
                           "latents_std (give the VAE's config.json in a model folder with --model)", files->dir,
                           (long long)z);
    int levels = count_of(files, "%sdecoder.up_blocks.%d.resnets.0.conv2.bias", "");
    int resnets = count_of(files, "%sdecoder.up_blocks.0.resnets.%d.conv2.bias", "");
    if (levels < 1 || levels > VAE_MAX_LEVELS || resnets < 1)
        return status_fail(CANVAS_ERR_INPUT, "%s: %d decoder levels of %d residual blocks: not a Qwen-Image VAE",
                           files->dir, levels, resnets);
    out->base_dim = to_int(base);
    out->input_channels = to_int(rgb);
    out->num_res_blocks = resnets - 1;
    out->n_dim_mult = levels;
    out->n_temperal_downsample = levels - 1;
    for (int i = 0; i < levels; i++) {
        /* up block i works at the width of level levels-1-i */
        int64_t width = dim_at(files, 0, "%sdecoder.up_blocks.%d.resnets.0.conv2.bias", "", i);
        if (width <= 0 || width % base)
            return status_fail(CANVAS_ERR_INPUT, "%s: decoder level %d is %lld wide, not a multiple of %lld", files->dir,
                               i, (long long)width, (long long)base);
        out->dim_mult[levels - 1 - i] = to_int(width / base);
        if (i < levels - 1)
            out->temperal_downsample[levels - 2 - i] =
                dim_at(files, 0, "%sdecoder.up_blocks.%d.upsamplers.0.time_conv.bias", "", i) > 0;
    }
    return CANVAS_OK;
}

/* ---- text encoder ------------------------------------------------------------------ */

/* Qwen2.5-VL's head sizes, the same at every size of the family. */
enum { TEXT_HEAD = 128, VISION_HEAD = 80 };

canvas_status textenc_config_infer(const weight_set *files, textenc_config *out)
{
    textenc_config_default(out);
    textenc_text_config *t = &out->text;
    textenc_vision_config *v = &out->vision;
    /* Qwen-Image's text_encoder/config.json (spec B.1) where no tensor says otherwise */
    t->max_position_embeddings = 128000, t->rms_norm_eps = 1e-6, t->max_window_layers = 28;
    t->mrope_section[0] = 16, t->mrope_section[1] = 24, t->mrope_section[2] = 24;
    v->tokens_per_second = 2;
    const textenc_naming naming = textenc_naming_of(files);
    const char *text = textenc_text_prefix(naming);
    const char *vision = textenc_vision_prefix(naming);
    int64_t vocab = dim_in(files, text, TEXTENC_EMBED_TOKENS, 0);
    int64_t hidden = dim_in(files, text, TEXTENC_EMBED_TOKENS, 1);
    int64_t ffn = dim_at(files, 0, "%slayers.%d.mlp.up_proj.weight", text, 0);
    int64_t q = dim_at(files, 0, "%slayers.%d.self_attn.q_proj.bias", text, 0);
    int64_t kv = dim_at(files, 0, "%slayers.%d.self_attn.k_proj.bias", text, 0);
    TRY(need(vocab, files, "vocabulary size (" TEXTENC_EMBED_TOKENS ")"));
    TRY(need(hidden, files, "text width (" TEXTENC_EMBED_TOKENS ")"));
    TRY(need(ffn, files, "text MLP width (layers.0.mlp.up_proj.weight)"));
    TRY(need(q, files, "query width (layers.0.self_attn.q_proj.bias)"));
    TRY(need(kv, files, "key width (layers.0.self_attn.k_proj.bias)"));
    if (q % TEXT_HEAD || kv % TEXT_HEAD || q != hidden)
        return status_fail(CANVAS_ERR_INPUT, "%s: query width %lld / key width %lld are not Qwen2.5-VL's %d-wide heads "
                           "over width %lld (give the text encoder's config.json in a model folder with --model)",
                           files->dir, (long long)q, (long long)kv, TEXT_HEAD, (long long)hidden);
    t->vocab_size = to_int(vocab);
    t->hidden_size = to_int(hidden);
    t->intermediate_size = to_int(ffn);
    t->num_attention_heads = to_int(q / TEXT_HEAD);
    t->num_key_value_heads = to_int(kv / TEXT_HEAD);
    t->head_dim = TEXT_HEAD;
    t->num_hidden_layers = count_of(files, "%slayers.%d.input_layernorm.weight", text);
    out->tie_word_embeddings = weights_find(files, "lm_head.weight") == NULL;

    int64_t vwidth = dim_at(files, 0, "%sblocks.%d.norm1.weight", vision, 0);
    int64_t vffn = dim_at(files, 0, "%sblocks.%d.mlp.up_proj.weight", vision, 0);
    int64_t vout = dim_in(files, vision, "merger.mlp.2.bias", 0);
    TRY(need(vwidth, files, "vision width (blocks.0.norm1.weight)"));
    TRY(need(vffn, files, "vision MLP width (blocks.0.mlp.up_proj.weight)"));
    TRY(need(vout, files, "vision output width (merger.mlp.2.bias)"));
    if (vwidth % VISION_HEAD)
        return status_fail(CANVAS_ERR_INPUT, "%s: vision width %lld is not a multiple of Qwen2.5-VL's %d-wide heads",
                           files->dir, (long long)vwidth, VISION_HEAD);
    v->hidden_size = to_int(vwidth);
    v->num_heads = to_int(vwidth / VISION_HEAD);
    v->intermediate_size = to_int(vffn);
    v->out_hidden_size = to_int(vout);
    v->depth = count_of(files, "%sblocks.%d.norm1.weight", vision);
    v->n_fullatt_blocks = 0; /* every eighth block attends to the whole image */
    for (int b = 7; b < v->depth && v->n_fullatt_blocks < TEXTENC_MAX_FULLATT; b += 8)
        v->fullatt_block_indexes[v->n_fullatt_blocks++] = b;
    return CANVAS_OK;
}
