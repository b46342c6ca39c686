/* SPDX-License-Identifier: Apache-2.0 */
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
 * The tensor list comes from models/arch.h (arch_text_encoder), the names the runtime reads;
 * tests/textenc_random_model.h writes the files (matrices 0.08 N). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../tests/textenc_random_model.h"
#include "base/status.h"

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

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: make_demo_model OUT_DIR   (writes OUT_DIR/text_encoder/)\n");
        return 2;
    }
    char dir[PATH_SIZE];
    if (snprintf(dir, sizeof dir, "%s/text_encoder", argv[1]) >= PATH_SIZE) {
        fprintf(stderr, "make_demo_model: %s: path too long\n", argv[1]);
        return 2;
    }
    if ((mkdir(argv[1], 0777) != 0 && errno != EEXIST) || (mkdir(dir, 0777) != 0 && errno != EEXIST)) {
        fprintf(stderr, "make_demo_model: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    canvas_status st = textenc_random_model_write(dir, CONFIG, 0.08f);
    if (st != CANVAS_OK) {
        fprintf(stderr, "make_demo_model: %s\n", canvas_last_error());
        return canvas_exit_code(st);
    }
    return 0;
}
