/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_weights_file.c — one .safetensors file given as a component (io/weights_file.h): the
 * key prefix found, the original VAE names renamed, the markers left out, then the config
 * read from the tensors (models/arch_infer.h) and checked against them (arch_check), as the
 * loaders do, for each of the three components. */
#include <stdio.h>

#include "fuzz.h"
#include "io/weights_file.h"
#include "models/arch_infer.h"

/* The config the tensors imply, checked against them; any status is fine. */
static void infer_and_check(const weight_set *set, weights_component component)
{
    tensor_spec_list expected = {0};
    canvas_status st;
    if (component == WEIGHTS_TRANSFORMER) {
        qwen_dit_config c;
        st = qwen_dit_config_infer(set, &c);
        if (st == CANVAS_OK) st = arch_dit(&c, &expected);
    } else if (component == WEIGHTS_VAE) {
        vae_config c;
        st = vae_config_infer(set, &c);
        if (st == CANVAS_OK) st = arch_vae(&c, &expected);
    } else {
        textenc_config c;
        st = textenc_config_infer(set, &c);
        if (st == CANVAS_OK) st = arch_text_encoder(&c, textenc_naming_of(set), &expected);
    }
    if (st == CANVAS_OK) (void)arch_check(&expected, set, weights_component_name(component));
    arch_free(&expected);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *written = fuzz_dir() ? fuzz_file("component.safetensors", data, size) : NULL;
    if (!written) return 0;
    char path[512];
    snprintf(path, sizeof path, "%s", written);
    for (int c = 0; c < WEIGHTS_COMPONENT_COUNT; c++) {
        weight_set *set = NULL;
        if (weights_open_file(path, (weights_component)c, &set) != CANVAS_OK) continue;
        for (int i = 0; i < set->n_tensors; i++) /* the table is sorted and every name found */
            if (weights_find(set, set->tensors[i]->name) != set->tensors[i]) __builtin_trap();
        infer_and_check(set, (weights_component)c);
        weights_close(set);
    }
    return 0;
}
