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
    dit_config c;
    temp_json(path, sizeof path, text);
    CHECK_FAILS(dit_config_load(path, &c), status, needle);
    CHECK(strstr(canvas_last_error(), path) != NULL);
    unlink(path);
}

static void test_dit_defaults(void)
{
    dit_config c;
    dit_config_default(&c);
    CHECK(c.patch_size == 2 && c.in_channels == 64 && c.out_channels == 16);
    CHECK(c.num_layers == 60 && c.attention_head_dim == 128 && c.num_attention_heads == 24);
    CHECK(c.joint_attention_dim == 3584 && dit_inner_dim(&c) == 3072);
    CHECK(c.axes_dims_rope[0] == 16 && c.axes_dims_rope[1] == 56 && c.axes_dims_rope[2] == 56);
    CHECK(!c.zero_cond_t && !c.guidance_embeds && !c.use_additional_t_cond && !c.use_layer3d_rope);

    char path[256];
    temp_json(path, sizeof path, "{\"out_channels\": null, \"in_channels\": 32}");
    CHECK_OK(dit_config_load(path, &c));
    CHECK(c.out_channels == 32 && c.in_channels == 32 && c.num_layers == 60);
    unlink(path);
    temp_json(path, sizeof path, "{}");
    CHECK_OK(dit_config_load(path, &c));
    CHECK(c.out_channels == 16 && c.num_layers == 60);
    unlink(path);
}

static void test_dit_real_and_golden(void)
{
    char path[512];
    dit_config c;
    CHECK_OK(dit_config_load(test_path(path, sizeof path, "real-configs/qwen-image-edit-2511/transformer/config.json"), &c));
    CHECK(c.num_layers == 60 && dit_inner_dim(&c) == 3072 && c.zero_cond_t);
    CHECK_OK(dit_config_load(test_path(path, sizeof path, "golden/models/dit-tiny/transformer/config.json"), &c));
    CHECK(c.num_layers == 2 && c.attention_head_dim == 16 && c.num_attention_heads == 4);
    CHECK(c.joint_attention_dim == 32 && c.axes_dims_rope[0] == 8 && c.axes_dims_rope[2] == 4 && c.zero_cond_t);
    CHECK_OK(dit_config_load(test_path(path, sizeof path, "golden/models/dit-tiny-2509/transformer/config.json"), &c));
    CHECK(!c.zero_cond_t);
}

static void test_dit_errors(void)
{
    dit_config c;
    CHECK_FAILS(dit_config_load("/nonexistent/transformer/config.json", &c), CANVAS_ERR_INPUT,
                "/nonexistent/transformer/config.json");
    dit_fails("{\"num_layers\": \"60\"}", CANVAS_ERR_INPUT, "key 'num_layers': expected an integer, got a string");
    dit_fails("{\"num_layers\": 2.5}", CANVAS_ERR_INPUT, "'num_layers'");
    dit_fails("{\"num_layers\": 0}", CANVAS_ERR_INPUT, "key 'num_layers': must be positive");
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

int main(void)
{
    RUN(test_dit_defaults);
    RUN(test_dit_real_and_golden);
    RUN(test_dit_errors);
    return check_summary();
}
