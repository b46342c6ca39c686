/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_dit_case.h — a `qwen_dit_forward` golden case (tests/golden/README.md) as
 * transformer inputs: CASE_DIR/case.json gives the op, the model folder (relative to the
 * golden root, two folders above the case) and img_shapes; CASE_DIR/inputs.safetensors
 * holds hidden_states [1, N, C], encoder_hidden_states [1, L, J],
 * encoder_hidden_states_mask [1, L] (optional) and timestep [1].
 *
 * Shared by `canvas debug case` and the tests, so both read a case the same way. */
#ifndef CANVAS_MODELS_QWEN_IMAGE_DIT_CASE_H
#define CANVAS_MODELS_QWEN_IMAGE_DIT_CASE_H

#include "canvas.h"
#include "models/qwen_image_dit.h"

/* A LoRA file the case merges before the forward (pipeline/lora.h applies it). */
typedef struct qwen_dit_case_lora {
    char *path;             /* the file, joined to the case folder */
    float scale;
    char naming[16];        /* "kohya", "peft", "lightx2v", "comfy"; "auto" when the case omits it */
} qwen_dit_case_lora;

typedef struct qwen_dit_case {
    char *case_dir;
    char *model_dir;        /* the transformer component folder: <golden root>/<model>/transformer */
    qwen_dit_inputs inputs;      /* points into the buffers below */
    qwen_dit_image_shape *img_shapes;
    float *hidden_states;   /* f32 copies of the input tensors */
    float *encoder_hidden_states;
    uint8_t *text_mask;     /* NULL when the case has no mask */
    int n_loras;            /* case.json "loras": [{"file", "scale", "naming"}] */
    qwen_dit_case_lora *loras;
} qwen_dit_case;

/* Read a case. CANVAS_ERR_INPUT naming the file and key/tensor for a bad or incomplete
 * case; CANVAS_ERR_UNSUPPORTED ("op 'X' is not dit_forward") for an op other than
 * qwen_dit_forward. `loras` are read (files relative to the case folder), not opened: the
 * caller merges them after loading the model. The model folder is only named here. */
canvas_status qwen_dit_case_open(const char *case_dir, qwen_dit_case **out);
void qwen_dit_case_free(qwen_dit_case *c);

#endif
