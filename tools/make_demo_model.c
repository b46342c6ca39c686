/* make_demo_model.c — writes the text encoder of the demo model (tools/demo.sh):
 * OUT_DIR/text_encoder/config.json and model.safetensors, a random-weight
 * Qwen2_5_VLForConditionalGeneration with the REAL vocabulary (152,064 rows) and the real
 * special-token ids, so that the real tokenizer files drive it, but tiny otherwise: text
 * hidden 32 (the demo transformer's joint_attention_dim), 2 layers, 2 heads x 16, 1 kv
 * head; vision depth 2, hidden 16, 2 heads, the last block full attention. BF16 storage,
 * embeddings tied (no lm_head stored): about 10 MB. Same output on every run (seeded).
 *
 *   build/make_demo_model OUT_DIR
 *
 * The tensor list comes from models/arch.h (arch_text_encoder), the names the runtime reads. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/status.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "models/arch.h"
#include "pipeline/rng.h"
#include "tensor/dtype.h"

enum { PATH_SIZE = 4096 };

static const char *const CONFIG =
    "{\n"
    "  \"architectures\": [\"Qwen2_5_VLForConditionalGeneration\"],\n"
    "  \"model_type\": \"qwen2_5_vl\",\n"
    "  \"bos_token_id\": 151643, \"eos_token_id\": 151645,\n"
    "  \"image_token_id\": 151655, \"video_token_id\": 151656, \"vision_start_token_id\": 151652,\n"
    "  \"vision_end_token_id\": 151653, \"vision_token_id\": 151654,\n"
    "  \"tie_word_embeddings\": true,\n"
    "  \"torch_dtype\": \"bfloat16\",\n"
    "  \"text_config\": {\n"
    "    \"model_type\": \"qwen2_5_vl_text\", \"vocab_size\": 152064, \"hidden_size\": 32,\n"
    "    \"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,\n"
    "    \"num_key_value_heads\": 1, \"hidden_act\": \"silu\", \"max_position_embeddings\": 128000,\n"
    "    \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0,\n"
    "    \"rope_scaling\": {\"mrope_section\": [2, 3, 3], \"rope_type\": \"default\", \"type\": \"default\"},\n"
    "    \"use_sliding_window\": false, \"sliding_window\": 32768, \"max_window_layers\": 2\n"
    "  },\n"
    "  \"vision_config\": {\n"
    "    \"depth\": 2, \"hidden_size\": 16, \"num_heads\": 2, \"intermediate_size\": 32, \"hidden_act\": \"silu\",\n"
    "    \"in_channels\": 3, \"patch_size\": 14, \"temporal_patch_size\": 2, \"spatial_merge_size\": 2,\n"
    "    \"window_size\": 112, \"out_hidden_size\": 32, \"tokens_per_second\": 2,\n"
    "    \"fullatt_block_indexes\": [1]\n"
    "  }\n"
    "}\n";

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

/* Norm weights near 1, everything else small: a forward that stays finite and varied. */
static canvas_status random_tensor(const tensor_spec *t, uint64_t seed, uint16_t **out, int64_t *count)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    float *f;
    TRY(mem_alloc((void **)&f, (size_t)n * sizeof *f, MEM_SCRATCH));
    canvas_status st = mem_alloc((void **)out, (size_t)n * sizeof **out, MEM_SCRATCH);
    if (st != CANVAS_OK) {
        mem_free(f);
        return st;
    }
    rng_normal(seed, 0, f, n);
    int is_norm = strstr(t->name, "norm") && ends_with(t->name, ".weight");
    is_norm = is_norm || ends_with(t->name, "ln_q.weight");
    float scale = t->ndim == 1 ? 0.02f : (strstr(t->name, "embed_tokens") ? 1.0f : 0.08f);
    for (int64_t i = 0; i < n; i++) (*out)[i] = f32_to_bf16(is_norm ? 1.0f + 0.05f * f[i] : scale * f[i]);
    mem_free(f);
    *count = n;
    return CANVAS_OK;
}

static canvas_status write_weights(const char *config_path, const char *weights_path)
{
    textenc_config config;
    TRY(textenc_config_load(config_path, &config));
    tensor_spec_list specs = {0};
    canvas_status st = arch_text_encoder(&config, TEXTENC_NAMES_CHECKPOINT, &specs);
    st_write_tensor *tensors = NULL;
    uint16_t **data = NULL;
    int n = 0;
    if (st == CANVAS_OK) st = mem_calloc((void **)&tensors, (size_t)specs.count, sizeof *tensors, MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_calloc((void **)&data, (size_t)specs.count, sizeof *data, MEM_SCRATCH);
    for (int i = 0; st == CANVAS_OK && i < specs.count; i++) {
        const tensor_spec *t = &specs.items[i];
        if (t->flags & ARCH_UNUSED) continue;
        int64_t count;
        st = random_tensor(t, 1000 + (uint64_t)i, &data[n], &count);
        if (st != CANVAS_OK) break;
        tensors[n] = (st_write_tensor){.name = t->name, .type = DTYPE_BF16, .ndim = t->ndim, .data = data[n]};
        memcpy(tensors[n].shape, t->shape, sizeof t->shape[0] * (size_t)t->ndim);
        n++;
    }
    if (st == CANVAS_OK) st = st_write(weights_path, tensors, n, NULL, 0);
    for (int i = 0; data && i < n; i++) mem_free(data[i]);
    mem_free(data);
    mem_free(tensors);
    arch_free(&specs);
    return st;
}

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: make_demo_model OUT_DIR   (writes OUT_DIR/text_encoder/)\n");
        return 2;
    }
    char dir[PATH_SIZE], config_path[PATH_SIZE], weights_path[PATH_SIZE];
    if (snprintf(dir, sizeof dir, "%s/text_encoder", argv[1]) >= PATH_SIZE ||
        snprintf(config_path, sizeof config_path, "%s/config.json", dir) >= PATH_SIZE ||
        snprintf(weights_path, sizeof weights_path, "%s/model.safetensors", dir) >= PATH_SIZE) {
        fprintf(stderr, "make_demo_model: %s: path too long\n", argv[1]);
        return 2;
    }
    if ((mkdir(argv[1], 0777) != 0 && errno != EEXIST) || (mkdir(dir, 0777) != 0 && errno != EEXIST)) {
        fprintf(stderr, "make_demo_model: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    FILE *f = fopen(config_path, "w");
    int written = f && fputs(CONFIG, f) != EOF;
    if ((f && fclose(f) != 0) || !written) {
        fprintf(stderr, "make_demo_model: cannot write %s\n", config_path);
        return 1;
    }
    canvas_status st = write_weights(config_path, weights_path);
    if (st != CANVAS_OK) {
        fprintf(stderr, "make_demo_model: %s\n", canvas_last_error());
        return canvas_exit_code(st);
    }
    return 0;
}
