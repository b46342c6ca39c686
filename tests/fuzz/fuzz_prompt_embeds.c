/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_prompt_embeds.c — a --prompt-embeds file (canvas_prompt_load, include/canvas.h). */
#include "canvas.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("embeds.safetensors", data, size);
    canvas_prompt prompt;
    if (path && canvas_prompt_load(path, &prompt) == CANVAS_OK) canvas_prompt_free(&prompt);
    return 0;
}
