/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_config.c — every JSON config the runtime reads (io/config.h): the transformer's,
 * the VAE's, the scheduler's, the text encoder's, the image processor's and
 * model_index.json; and the architectures built from the first three (models/arch.h),
 * which must refuse absurd sizes before allocating for them. */
#include "fuzz.h"
#include "io/config.h"
#include "models/arch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("config.json", data, size);
    if (!path) return 0;
    tensor_spec_list list = {0};
    qwen_dit_config dit;
    if (qwen_dit_config_load(path, &dit) == CANVAS_OK) (void)arch_dit(&dit, &list);
    arch_free(&list);
    vae_config vae;
    if (vae_config_load(path, &vae) == CANVAS_OK) (void)arch_vae(&vae, &list);
    arch_free(&list);
    textenc_config textenc;
    if (textenc_config_load(path, &textenc) == CANVAS_OK)
        (void)arch_text_encoder(&textenc, TEXTENC_NAMES_CHECKPOINT, &list);
    arch_free(&list);
    scheduler_config scheduler;
    (void)scheduler_config_load(path, &scheduler);
    vl_image_config processor;
    (void)vl_image_config_load(path, &processor);
    pipeline_index index;
    if (pipeline_index_load(path, &index) == CANVAS_OK) (void)pipeline_index_find(&index, "transformer");
    return 0;
}
