/* SPDX-License-Identifier: Apache-2.0 */
/* mem_device_select.c — --device / canvas_options.device: which device a run computes on,
 * one rule for the CLI and the API (mem_device.h). */
#include <string.h>

#include "base/status.h"
#include "mem/mem_device.h"

canvas_status mem_device_choice_parse(const char *text, mem_device_choice *out)
{
    if (!text || !strcmp(text, "auto")) *out = MEM_DEVICE_CHOICE_AUTO;
    else if (!strcmp(text, "cpu")) *out = MEM_DEVICE_CHOICE_CPU;
    else if (!strcmp(text, "cuda")) *out = MEM_DEVICE_CHOICE_CUDA;
    else return status_fail(CANVAS_ERR_USAGE, "device '%s': give cuda, cpu or auto", text);
    return CANVAS_OK;
}

const char *mem_device_choice_name(mem_device_choice choice)
{
    return choice == MEM_DEVICE_CHOICE_CPU ? "cpu" : choice == MEM_DEVICE_CHOICE_CUDA ? "cuda" : "auto";
}

canvas_status mem_device_choose(mem_device_choice choice, int *use_cuda)
{
    *use_cuda = 0;
    if (choice == MEM_DEVICE_CHOICE_CPU) return CANVAS_OK;
    mem_cuda_info info;
    mem_cuda_query(&info);
    if (!info.devices) {
        if (choice == MEM_DEVICE_CHOICE_AUTO) return CANVAS_OK;
        return status_fail(CANVAS_ERR_UNSUPPORTED, "--device cuda: %s", info.reason);
    }
    /* the transformer and the text encoder compute there (their op backend, ops/cuda), and
     * each VAE pass that fits (docs/cuda.md, "What runs where") */
    *use_cuda = 1;
    return CANVAS_OK;
}
