/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_lora.c — a LoRA file checked against the tiny transformer (pipeline/lora.h) and,
 * when it passes, merged into a fresh copy of it (ranks, shapes and alphas are the
 * file's to choose: the merge must stay inside its buffers). */
#include "fuzz.h"
#include "models/qwen_image_dit.h"
#include "pipeline/lora.h"

#define MODEL_DIR "golden/models/dit-tiny/transformer"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static qwen_dit_model *checked_against;
    if (!checked_against && qwen_dit_load(fuzz_test_path(MODEL_DIR), &checked_against) != CANVAS_OK) return 0;
    const char *path = fuzz_file("lora.safetensors", data, size);
    if (!path) return 0;
    lora_spec spec = {.path = path, .scale = 0.75f, .naming = LORA_NAMING_AUTO};
    lora_file *lora = NULL;
    if (lora_open(checked_against, &spec, &lora) != CANVAS_OK) return 0;
    lora_close(lora);
    qwen_dit_model *model = NULL;
    if (qwen_dit_load(fuzz_test_path(MODEL_DIR), &model) == CANVAS_OK) {
        (void)lora_apply_specs(model, NULL, &spec, 1);
        qwen_dit_free(model);
    }
    return 0;
}
