/* SPDX-License-Identifier: Apache-2.0 */
/* test_config.c — component configs: defaults, the real Qwen-Image-Edit-2511 files,
 * the golden tiny models, and errors that name the file and the key. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen */
#include <stdio.h>
#include <unistd.h>

#include "check.h"
#include "io/config.h"

/* Write `text` to a fresh temporary file; returns its path in buf. */
static const char *temp_json(char *buf, size_t size, const char *text)
{
    snprintf(buf, size, "/tmp/canvas_test_config_%d_XXXXXX", (int)getpid());
    int fd = mkstemp(buf);
    if (fd < 0) return buf;
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return buf;
}

/* Load `text` as a DiT config and expect failure containing `needle`. */
static void dit_fails(const char *text, canvas_status status, const char *needle)
{
    char path[256];
    qwen_dit_config c;
    temp_json(path, sizeof path, text);
    CHECK_FAILS(qwen_dit_config_load(path, &c), status, needle);
    CHECK(strstr(canvas_last_error(), path) != NULL);
    unlink(path);
}

/* The same for the other loaders (a function pointer per config type would hide the
 * struct types; three small twins read better). */
static void vae_fails(const char *text, const char *needle)
{
    char path[256];
    vae_config c;
    CHECK_FAILS(vae_config_load(temp_json(path, sizeof path, text), &c), CANVAS_ERR_INPUT, needle);
    unlink(path);
}

static void scheduler_fails(const char *text, const char *needle)
{
    char path[256];
    scheduler_config c;
    CHECK_FAILS(scheduler_config_load(temp_json(path, sizeof path, text), &c), CANVAS_ERR_INPUT, needle);
    unlink(path);
}

static void textenc_fails(const char *text, const char *needle)
{
    char path[256];
    textenc_config c;
    CHECK_FAILS(textenc_config_load(temp_json(path, sizeof path, text), &c), CANVAS_ERR_INPUT, needle);
    unlink(path);
}

static void test_dit_defaults(void)
{
    qwen_dit_config c;
    qwen_dit_config_default(&c);
    CHECK(c.patch_size == 2 && c.in_channels == 64 && c.out_channels == 16);
    CHECK(c.num_layers == 60 && c.attention_head_dim == 128 && c.num_attention_heads == 24);
    CHECK(c.joint_attention_dim == 3584 && qwen_dit_inner_dim(&c) == 3072);
    CHECK(c.axes_dims_rope[0] == 16 && c.axes_dims_rope[1] == 56 && c.axes_dims_rope[2] == 56);
    CHECK(!c.zero_cond_t && !c.guidance_embeds && !c.use_additional_t_cond && !c.use_layer3d_rope);

    char path[256];
    temp_json(path, sizeof path, "{\"out_channels\": null, \"in_channels\": 32}");
    CHECK_OK(qwen_dit_config_load(path, &c));
    CHECK(c.out_channels == 32 && c.in_channels == 32 && c.num_layers == 60);
    unlink(path);
    temp_json(path, sizeof path, "{}");
    CHECK_OK(qwen_dit_config_load(path, &c));
    CHECK(c.out_channels == 16 && c.num_layers == 60);
    unlink(path);
}

static void test_dit_real_and_golden(void)
{
    char path[512];
    qwen_dit_config c;
    CHECK_OK(qwen_dit_config_load(test_path(path, sizeof path, "real-configs/qwen-image-edit-2511/transformer/config.json"), &c));
    CHECK(c.num_layers == 60 && qwen_dit_inner_dim(&c) == 3072 && c.zero_cond_t);
    CHECK_OK(qwen_dit_config_load(test_path(path, sizeof path, "golden/models/dit-tiny/transformer/config.json"), &c));
    CHECK(c.num_layers == 2 && c.attention_head_dim == 16 && c.num_attention_heads == 4);
    CHECK(c.joint_attention_dim == 32 && c.axes_dims_rope[0] == 8 && c.axes_dims_rope[2] == 4 && c.zero_cond_t);
    CHECK_OK(qwen_dit_config_load(test_path(path, sizeof path, "golden/models/dit-tiny-2509/transformer/config.json"), &c));
    CHECK(!c.zero_cond_t);
}

static void test_dit_errors(void)
{
    qwen_dit_config c;
    CHECK_FAILS(qwen_dit_config_load("/nonexistent/transformer/config.json", &c), CANVAS_ERR_INPUT,
                "/nonexistent/transformer/config.json");
    dit_fails("{\"num_layers\": \"60\"}", CANVAS_ERR_INPUT, "key 'num_layers': expected an integer, got a string");
    dit_fails("{\"num_layers\": 2.5}", CANVAS_ERR_INPUT, "'num_layers'");
    dit_fails("{\"num_layers\": 0}", CANVAS_ERR_INPUT, "key 'num_layers': must be between 1 and 4096");
    dit_fails("{\"num_layers\": 2000000000}", CANVAS_ERR_INPUT, "key 'num_layers': must be between 1 and 4096");
    dit_fails("{\"num_layers\": 99999999999}", CANVAS_ERR_INPUT, "key 'num_layers': integer out of range");
    dit_fails("{\"attention_head_dim\": -128}", CANVAS_ERR_INPUT, "'attention_head_dim'");
    dit_fails("{\"zero_cond_t\": 1}", CANVAS_ERR_INPUT, "key 'zero_cond_t': expected true or false");
    dit_fails("{\"axes_dims_rope\": [16, 56]}", CANVAS_ERR_INPUT, "'axes_dims_rope': must have 3 entries");
    dit_fails("{\"axes_dims_rope\": [16, 56, 58]}", CANVAS_ERR_INPUT, "sum to attention_head_dim");
    dit_fails("{\"axes_dims_rope\": [15, 57, 56]}", CANVAS_ERR_INPUT, "even");
    dit_fails("{\"axes_dims_rope\": 128}", CANVAS_ERR_INPUT, "expected an array");
    dit_fails("{\"_class_name\": \"AutoencoderKLQwenImage\"}", CANVAS_ERR_INPUT, "AutoencoderKLQwenImage config");
    dit_fails("[1, 2]", CANVAS_ERR_INPUT, "JSON object");
    dit_fails("{\"num_layers\": 2,}", CANVAS_ERR_INPUT, "bad JSON");
}

static void test_vae(void)
{
    char path[512];
    vae_config c;
    vae_config_default(&c);
    CHECK(c.base_dim == 96 && c.z_dim == 16 && c.n_dim_mult == 4 && c.dim_mult[3] == 4 && c.num_res_blocks == 2);
    CHECK(c.n_temperal_downsample == 3 && !c.temperal_downsample[0] && c.temperal_downsample[2]);
    CHECK(c.n_attn_scales == 0 && c.input_channels == 3 && vae_scale_factor(&c) == 8);
    CHECK_NEAR(c.latents_mean[0], -0.7571, 1e-12);
    CHECK_NEAR(c.latents_std[15], 1.916, 1e-12);
    CHECK_OK(vae_config_load(test_path(path, sizeof path, "real-configs/qwen-image-edit-2511/vae/config.json"), &c));
    CHECK(c.base_dim == 96 && c.z_dim == 16 && c.num_res_blocks == 2 && vae_scale_factor(&c) == 8);
    CHECK_NEAR(c.latents_mean[7], 1.5508, 1e-12);
    CHECK_NEAR(c.latents_std[8], 3.2687, 1e-12);
    CHECK_OK(vae_config_load(test_path(path, sizeof path, "golden/models/vae-tiny/vae/config.json"), &c));
    CHECK(c.base_dim == 8 && c.num_res_blocks == 1 && c.z_dim == 16);

    vae_fails("{\"z_dim\": 4}", "key 'latents_mean': must have z_dim entries");
    vae_fails("{\"z_dim\": 2, \"latents_mean\": [0, 0], \"latents_std\": [1, 0]}", "'latents_std': must be positive");
    vae_fails("{\"dim_mult\": [1, 2]}", "'temperal_downsample': must have one entry fewer than dim_mult");
    vae_fails("{\"temperal_downsample\": [0, 1, 1]}", "expected true or false");
    vae_fails("{\"base_dim\": 0}", "key 'base_dim': must be between 1 and");
    vae_fails("{\"base_dim\": 500000}", "base_dim x dim_mult is implausibly large");
    vae_fails("{\"dropout\": \"none\"}", "key 'dropout': expected a number");
    vae_fails("{\"_class_name\": \"QwenImageTransformer2DModel\"}", "expected AutoencoderKLQwenImage");
    vae_fails("{\"dim_mult\": [1, 2, 2, 2, 2, 2, 2, 2, 2], \"temperal_downsample\": []}", "more than 8 entries");
}

static void test_scheduler(void)
{
    char path[512];
    scheduler_config c;
    scheduler_config_default(&c);
    CHECK(c.num_train_timesteps == 1000 && c.shift == 1.0 && !c.use_dynamic_shifting);
    CHECK(c.base_shift == 0.5 && c.max_shift == 1.15 && c.base_image_seq_len == 256 && c.max_image_seq_len == 4096);
    CHECK(c.shift_terminal == 0 && c.time_shift == TIME_SHIFT_EXPONENTIAL && !c.invert_sigmas);
    CHECK_OK(scheduler_config_load(
        test_path(path, sizeof path, "real-configs/qwen-image-edit-2511/scheduler/scheduler_config.json"), &c));
    CHECK(c.use_dynamic_shifting && c.max_image_seq_len == 8192 && c.base_image_seq_len == 256);
    CHECK_NEAR(c.max_shift, 0.9, 1e-15);
    CHECK_NEAR(c.shift_terminal, 0.02, 1e-15);
    CHECK(!c.use_karras_sigmas && !c.use_beta_sigmas && !c.use_exponential_sigmas && !c.stochastic_sampling);

    char tmp[256];
    temp_json(tmp, sizeof tmp, "{\"shift_terminal\": null, \"time_shift_type\": \"linear\"}");
    CHECK_OK(scheduler_config_load(tmp, &c));
    CHECK(c.shift_terminal == 0 && c.time_shift == TIME_SHIFT_LINEAR);
    unlink(tmp);
    scheduler_fails("{\"time_shift_type\": \"cosine\"}", "'time_shift_type': must be \"exponential\" or \"linear\"");
    scheduler_fails("{\"use_karras_sigmas\": true, \"use_beta_sigmas\": true}", "only one of");
    scheduler_fails("{\"max_image_seq_len\": 256}", "larger than base_image_seq_len");
    scheduler_fails("{\"shift\": \"1.0\"}", "key 'shift': expected a number, got a string");
    scheduler_fails("{\"shift_terminal\": 1.5}", "'shift_terminal'");
}

static void test_textenc_real(void)
{
    char path[512];
    textenc_config c;
    CHECK_OK(textenc_config_load(test_path(path, sizeof path, "real-configs/qwen-image-edit-2511/text_encoder/config.json"), &c));
    CHECK(c.text.hidden_size == 3584 && c.text.num_hidden_layers == 28 && c.text.num_attention_heads == 28);
    CHECK(c.text.num_key_value_heads == 4 && c.text.head_dim == 128 && c.text.intermediate_size == 18944);
    CHECK(c.text.vocab_size == 152064 && c.text.max_position_embeddings == 128000 && !c.text.use_sliding_window);
    CHECK(c.text.mrope_section[0] == 16 && c.text.mrope_section[1] == 24 && c.text.mrope_section[2] == 24);
    CHECK_NEAR(c.text.rms_norm_eps, 1e-6, 1e-20);
    CHECK_NEAR(c.text.rope_theta, 1e6, 1e-6);
    CHECK(!strcmp(c.text.hidden_act, "silu"));
    CHECK(c.vision.depth == 32 && c.vision.hidden_size == 1280 && c.vision.num_heads == 16);
    CHECK(c.vision.intermediate_size == 3420 && c.vision.in_channels == 3 && c.vision.patch_size == 14);
    CHECK(c.vision.temporal_patch_size == 2 && c.vision.spatial_merge_size == 2 && c.vision.window_size == 112);
    CHECK(c.vision.out_hidden_size == 3584 && c.vision.tokens_per_second == 2 && c.vision.n_fullatt_blocks == 4);
    CHECK(c.vision.fullatt_block_indexes[0] == 7 && c.vision.fullatt_block_indexes[3] == 31);
    CHECK(c.image_token_id == 151655 && c.video_token_id == 151656 && c.vision_start_token_id == 151652);
    CHECK(c.vision_end_token_id == 151653 && c.vision_token_id == 151654);
    CHECK(c.bos_token_id == 151643 && c.eos_token_id == 151645 && !c.tie_word_embeddings);
}

static void test_textenc_tiny_and_defaults(void)
{
    char path[512];
    textenc_config c;
    textenc_config_default(&c);
    CHECK(c.text.hidden_size == 8192 && c.text.num_hidden_layers == 80 && c.vision.hidden_size == 3584);
    CHECK_NEAR(c.text.rms_norm_eps, 1e-5, 1e-20);
    CHECK(c.vision.tokens_per_second == 4 && c.text.mrope_section[0] == 0);
    /* text_config + vision_config layout, the tiny token ids shifted by -150643 */
    CHECK_OK(textenc_config_load(test_path(path, sizeof path, "golden/models/textenc-tiny/text_encoder/config.json"), &c));
    CHECK(c.text.hidden_size == 64 && c.text.num_hidden_layers == 2 && c.text.num_attention_heads == 4);
    CHECK(c.text.num_key_value_heads == 2 && c.text.head_dim == 16 && c.text.intermediate_size == 128);
    CHECK(c.text.vocab_size == 1024 && c.text.mrope_section[0] == 2 && c.text.mrope_section[2] == 3);
    CHECK(c.vision.depth == 4 && c.vision.hidden_size == 32 && c.vision.num_heads == 2 && c.vision.window_size == 56);
    CHECK(c.vision.n_fullatt_blocks == 2 && c.vision.fullatt_block_indexes[1] == 3 && c.vision.out_hidden_size == 64);
    CHECK(c.image_token_id == 1012 && c.vision_start_token_id == 1009 && c.eos_token_id == 1002);

    textenc_fails("{\"model_type\": \"qwen2_vl\"}", "expected \"qwen2_5_vl\"");
    textenc_fails("{\"hidden_size\": 3584, \"num_attention_heads\": 28, \"num_key_value_heads\": 5, "
                  "\"vision_config\": {\"out_hidden_size\": 3584}}", "'num_key_value_heads': must divide");
    textenc_fails("{\"text_config\": {\"hidden_size\": 3584, \"num_attention_heads\": 28, \"num_key_value_heads\": 4, "
                  "\"rope_scaling\": {\"mrope_section\": [16, 24, 16]}}, \"vision_config\": {\"out_hidden_size\": 3584}}",
                  "'text_config.rope_scaling.mrope_section': must be non-negative and sum to head_dim / 2");
    textenc_fails("{\"vision_config\": {\"depth\": \"32\"}}", "key 'vision_config.depth': expected an integer");
    textenc_fails("{\"text_config\": {\"rope_scaling\": {\"mrope_section\": [16, 24]}}}",
                  "key 'text_config.rope_scaling.mrope_section': must have 3 entries");
    textenc_fails("{\"vision_config\": [1]}", "key 'vision_config': expected an object");
    textenc_fails("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"num_key_value_heads\": 4}",
                  "'vision_config.out_hidden_size': must equal the text hidden_size");
}

static void test_pipeline_index(void)
{
    char path[512];
    pipeline_index index;
    CHECK_OK(pipeline_index_load(test_path(path, sizeof path, "real-configs/qwen-image-edit-2511/model_index.json"), &index));
    CHECK(!strcmp(index.class_name, "QwenImageEditPlusPipeline") && index.n_components == 6);
    const pipeline_component *te = pipeline_index_find(&index, "text_encoder");
    CHECK(te && !strcmp(te->library, "transformers") && !strcmp(te->class_name, "Qwen2_5_VLForConditionalGeneration"));
    CHECK(pipeline_index_find(&index, "vae") && !pipeline_index_find(&index, "safety_checker"));
    CHECK_OK(pipeline_index_load(test_path(path, sizeof path, "golden/models/edit-tiny/model_index.json"), &index));
    CHECK(index.n_components == 3 && !strcmp(index.components[0].name, "scheduler"));

    char tmp[256];
    temp_json(tmp, sizeof tmp, "{\"_class_name\": \"P\", \"safety_checker\": [null, null], \"flag\": true, "
                               "\"vae\": [\"diffusers\", \"AutoencoderKLQwenImage\"]}");
    CHECK_OK(pipeline_index_load(tmp, &index));
    CHECK(index.n_components == 1 && !strcmp(index.components[0].class_name, "AutoencoderKLQwenImage"));
    unlink(tmp);
    temp_json(tmp, sizeof tmp, "{\"_class_name\": \"P\", \"vae\": [\"diffusers\"]}");
    CHECK_FAILS(pipeline_index_load(tmp, &index), CANVAS_ERR_INPUT, "key 'vae': expected [library, class name]");
    unlink(tmp);
    temp_json(tmp, sizeof tmp, "{\"vae\": [\"diffusers\", \"X\"]}");
    CHECK_FAILS(pipeline_index_load(tmp, &index), CANVAS_ERR_INPUT, "not a diffusers model_index.json");
    unlink(tmp);
}

int main(void)
{
    RUN(test_dit_defaults);
    RUN(test_dit_real_and_golden);
    RUN(test_dit_errors);
    RUN(test_vae);
    RUN(test_scheduler);
    RUN(test_textenc_real);
    RUN(test_textenc_tiny_and_defaults);
    RUN(test_pipeline_index);
    return check_summary();
}
