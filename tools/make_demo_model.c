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

/* Tiny widths, Qwen2.5's vocabulary and special token ids (the real tokenizer runs on it). */
static const textenc_random_shape SHAPE = {
    .vocab = 152064, .hidden = 32, .intermediate = 64, .layers = 2, .heads = 2, .kv_heads = 1, .mrope = {2, 3, 3},
    .max_window_layers = 2, .vision_depth = 2, .vision_hidden = 16, .vision_heads = 2, .vision_intermediate = 32,
    .window = 112, .bos = 151643, .eos = 151645, .image = 151655, .video = 151656, .vision_start = 151652,
    .vision_end = 151653, .vision = 151654};

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
    canvas_status st = textenc_random_model_write(dir, &SHAPE, 0.08f);
    if (st != CANVAS_OK) {
        fprintf(stderr, "make_demo_model: %s\n", canvas_last_error());
        return canvas_exit_code(st);
    }
    return 0;
}
