/* SPDX-License-Identifier: Apache-2.0 */
/* config_textenc.c — Qwen2.5-VL (Qwen2_5_VLForConditionalGeneration) config: the
 * language model, the vision tower and the special token ids. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "io/config.h"
#include "io/config_fields.h"

void textenc_config_default(textenc_config *out)
{
    /* transformers configuration_qwen2_5_vl.py defaults; note they are NOT the 7B
     * model's values (hidden 8192, vision hidden 3584), so configs must be read. */
    *out = (textenc_config){
        .text = {.vocab_size = 152064, .hidden_size = 8192, .intermediate_size = 29568, .num_hidden_layers = 80,
                 .num_attention_heads = 64, .num_key_value_heads = 8, .hidden_act = "silu",
                 .max_position_embeddings = 32768, .rms_norm_eps = 1e-5, .rope_theta = 1000000.0,
                 .sliding_window = 4096, .max_window_layers = 80},
        .vision = {.depth = 32, .hidden_size = 3584, .num_heads = 16, .intermediate_size = 3420,
                   .hidden_act = "silu", .in_channels = 3, .patch_size = 14, .temporal_patch_size = 2,
                   .spatial_merge_size = 2, .window_size = 112, .out_hidden_size = 3584, .tokens_per_second = 4,
                   .n_fullatt_blocks = 4, .fullatt_block_indexes = {7, 15, 23, 31}},
        .image_token_id = 151655,
        .video_token_id = 151656,
        .vision_start_token_id = 151652,
        .vision_end_token_id = 151653,
        .vision_token_id = 151654,
        .bos_token_id = 151643,
        .eos_token_id = 151645,
    };
    out->text.head_dim = out->text.hidden_size / out->text.num_attention_heads;
}

/* rope_scaling: {"type"/"rope_type": "mrope"|"default", "mrope_section": [t, h, w]} */
static canvas_status read_rope_scaling(const cfg_source *src, textenc_text_config *t)
{
    json_t *rope;
    TRY(cfg_object(src, "rope_scaling", &rope));
    if (!rope) return CANVAS_OK;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s%srope_scaling", src->prefix, src->prefix[0] ? "." : "");
    cfg_source inner = {src->path, prefix, rope};
    int n = 3;
    TRY(cfg_int_array(&inner, "mrope_section", t->mrope_section, 3, &n));
    if (n != 3) return cfg_bad_value(&inner, "mrope_section", "must have 3 entries (t, h, w)");
    return CANVAS_OK;
}

static canvas_status read_text(const cfg_source *src, textenc_text_config *t)
{
    TRY(cfg_int(src, "vocab_size", &t->vocab_size));
    TRY(cfg_int(src, "hidden_size", &t->hidden_size));
    TRY(cfg_int(src, "intermediate_size", &t->intermediate_size));
    TRY(cfg_int(src, "num_hidden_layers", &t->num_hidden_layers));
    TRY(cfg_int(src, "num_attention_heads", &t->num_attention_heads));
    TRY(cfg_int(src, "num_key_value_heads", &t->num_key_value_heads));
    TRY(cfg_string(src, "hidden_act", t->hidden_act, sizeof t->hidden_act));
    TRY(cfg_int(src, "max_position_embeddings", &t->max_position_embeddings));
    TRY(cfg_double(src, "rms_norm_eps", &t->rms_norm_eps));
    TRY(cfg_double(src, "rope_theta", &t->rope_theta));
    TRY(read_rope_scaling(src, t));
    TRY(cfg_bool(src, "use_sliding_window", &t->use_sliding_window));
    TRY(cfg_int(src, "sliding_window", &t->sliding_window));
    TRY(cfg_int(src, "max_window_layers", &t->max_window_layers));
    return cfg_double(src, "attention_dropout", &t->attention_dropout);
}

static canvas_status read_vision(const cfg_source *src, textenc_vision_config *v)
{
    TRY(cfg_int(src, "depth", &v->depth));
    TRY(cfg_int(src, "hidden_size", &v->hidden_size));
    TRY(cfg_int(src, "num_heads", &v->num_heads));
    TRY(cfg_int(src, "intermediate_size", &v->intermediate_size));
    TRY(cfg_string(src, "hidden_act", v->hidden_act, sizeof v->hidden_act));
    TRY(cfg_int(src, "in_chans", &v->in_channels)); /* the older name; in_channels wins */
    TRY(cfg_int(src, "in_channels", &v->in_channels));
    TRY(cfg_int(src, "patch_size", &v->patch_size));
    TRY(cfg_int(src, "temporal_patch_size", &v->temporal_patch_size));
    TRY(cfg_int(src, "spatial_merge_size", &v->spatial_merge_size));
    TRY(cfg_int(src, "window_size", &v->window_size));
    TRY(cfg_int(src, "out_hidden_size", &v->out_hidden_size));
    TRY(cfg_int(src, "tokens_per_second", &v->tokens_per_second));
    return cfg_int_array(src, "fullatt_block_indexes", v->fullatt_block_indexes, TEXTENC_MAX_FULLATT,
                         &v->n_fullatt_blocks);
}

/* Token ids and tie_word_embeddings: top level first, text_config as the fallback. */
static canvas_status read_top(const cfg_source *top, const cfg_source *text, textenc_config *c)
{
    static const struct { const char *key; size_t offset; } ids[] = {
        {"image_token_id", offsetof(textenc_config, image_token_id)},
        {"video_token_id", offsetof(textenc_config, video_token_id)},
        {"vision_start_token_id", offsetof(textenc_config, vision_start_token_id)},
        {"vision_end_token_id", offsetof(textenc_config, vision_end_token_id)},
        {"vision_token_id", offsetof(textenc_config, vision_token_id)},
        {"bos_token_id", offsetof(textenc_config, bos_token_id)},
        {"eos_token_id", offsetof(textenc_config, eos_token_id)},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        int *field = (int *)((char *)c + ids[i].offset);
        const cfg_source *from = cfg_has(top, ids[i].key) ? top : text;
        TRY(cfg_int(from, ids[i].key, field));
    }
    const cfg_source *from = cfg_has(top, "tie_word_embeddings") ? top : text;
    return cfg_bool(from, "tie_word_embeddings", &c->tie_word_embeddings);
}

/* Layer and head counts up to CFG_MAX_LAYERS, everything else up to CFG_MAX_SIZE. */
static canvas_status check_counts(const cfg_source *src, const char *const *keys, const int *values, int n)
{
    for (int i = 0; i < n; i++) {
        int layers = strstr(keys[i], "layers") || strstr(keys[i], "heads") || !strcmp(keys[i], "depth");
        TRY(cfg_check_count(src, keys[i], values[i], layers ? CFG_MAX_LAYERS : CFG_MAX_SIZE));
    }
    return CANVAS_OK;
}

static canvas_status check_text(const cfg_source *src, textenc_text_config *t)
{
    const char *keys[] = {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "num_key_value_heads"};
    const int values[] = {t->vocab_size, t->hidden_size, t->intermediate_size, t->num_hidden_layers,
                          t->num_attention_heads, t->num_key_value_heads};
    TRY(check_counts(src, keys, values, 6));
    TRY(cfg_check_positive(src, "rms_norm_eps", t->rms_norm_eps));
    TRY(cfg_check_positive(src, "rope_theta", t->rope_theta));
    if (t->hidden_size % t->num_attention_heads)
        return cfg_bad_value(src, "num_attention_heads", "must divide hidden_size");
    if (t->num_attention_heads % t->num_key_value_heads)
        return cfg_bad_value(src, "num_key_value_heads", "must divide num_attention_heads");
    t->head_dim = t->hidden_size / t->num_attention_heads;
    int sections = t->mrope_section[0] + t->mrope_section[1] + t->mrope_section[2];
    /* M-RoPE splits the head_dim/2 rotation frequencies between t, h and w. */
    if (sections && (sections * 2 != t->head_dim || t->mrope_section[0] < 0 || t->mrope_section[1] < 0 ||
                     t->mrope_section[2] < 0))
        return cfg_bad_value(src, "rope_scaling.mrope_section", "must be non-negative and sum to head_dim / 2");
    return CANVAS_OK;
}

static canvas_status check_vision(const cfg_source *src, const textenc_vision_config *v)
{
    const char *keys[] = {"depth", "hidden_size", "num_heads", "intermediate_size", "in_channels", "patch_size",
                          "temporal_patch_size", "spatial_merge_size", "window_size", "out_hidden_size"};
    const int values[] = {v->depth, v->hidden_size, v->num_heads, v->intermediate_size, v->in_channels,
                          v->patch_size, v->temporal_patch_size, v->spatial_merge_size, v->window_size,
                          v->out_hidden_size};
    TRY(check_counts(src, keys, values, 10));
    if (v->hidden_size % v->num_heads) return cfg_bad_value(src, "num_heads", "must divide hidden_size");
    for (int i = 0; i < v->n_fullatt_blocks; i++)
        if (v->fullatt_block_indexes[i] < 0)
            return cfg_bad_value(src, "fullatt_block_indexes", "entries must be non-negative");
    return CANVAS_OK;
}

static canvas_status read_textenc(const cfg_source *top, textenc_config *c)
{
    char model_type[64] = "";
    TRY(cfg_string(top, "model_type", model_type, sizeof model_type));
    if (model_type[0] && strcmp(model_type, "qwen2_5_vl") != 0)
        return status_fail(CANVAS_ERR_INPUT, "%s: model_type is \"%s\", expected \"qwen2_5_vl\" (Qwen2.5-VL)",
                           top->path, model_type);
    json_t *text_obj, *vision_obj;
    TRY(cfg_object(top, "text_config", &text_obj));
    TRY(cfg_object(top, "vision_config", &vision_obj));
    /* transformers builds the text config from text_config when given, else from the
     * top-level keys, never from a mix of both. */
    cfg_source text = text_obj ? (cfg_source){top->path, "text_config", text_obj} : *top;
    cfg_source vision = {top->path, "vision_config", vision_obj};
    TRY(read_text(&text, &c->text));
    TRY(read_vision(&vision, &c->vision));
    TRY(read_top(top, &text, c));
    TRY(check_text(&text, &c->text));
    TRY(check_vision(&vision, &c->vision));
    if (c->vision.out_hidden_size != c->text.hidden_size)
        return cfg_bad_value(&vision, "out_hidden_size", "must equal the text hidden_size (the merger feeds the decoder)");
    return CANVAS_OK;
}

canvas_status textenc_config_load(const char *config_json_path, textenc_config *out)
{
    textenc_config_default(out);
    json_t *root;
    TRY(cfg_open(config_json_path, &root));
    cfg_source top = {config_json_path, "", root};
    canvas_status status = read_textenc(&top, out);
    json_decref(root);
    return status;
}
