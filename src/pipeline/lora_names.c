/* SPDX-License-Identifier: Apache-2.0 */
/* lora_names.c — the key namings of LoRA files for the Qwen-Image transformer (lora.h):
 * prefixes and suffixes per naming, and a model module written the way each naming does. */
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "pipeline/lora.h"

static const char *const naming_names[LORA_NAMING_COUNT] = {"auto", "peft", "kohya", "lightx2v", "comfy"};

canvas_status lora_naming_parse(const char *text, lora_naming *out)
{
    for (int i = 0; i < LORA_NAMING_COUNT; i++)
        if (!strcmp(text, naming_names[i])) {
            *out = (lora_naming)i;
            return CANVAS_OK;
        }
    if (!strcmp(text, "diffusers")) {
        *out = LORA_NAMING_PEFT;
        return CANVAS_OK;
    }
    return status_fail(CANVAS_ERR_INPUT, "LoRA naming '%s' is unknown (known: auto, peft, kohya, lightx2v, comfy)",
                       text);
}

const char *lora_naming_name(lora_naming naming)
{
    return naming >= 0 && naming < LORA_NAMING_COUNT ? naming_names[naming] : "?";
}

/* Key prefixes per naming, longest first where one extends another. */
static const char *const peft_prefixes[] = {"base_model.model.transformer.", "base_model.model.", "transformer.", NULL};
static const char *const kohya_prefixes[] = {"lora_unet_", "lora_transformer_", NULL};
static const char *const lightx2v_prefixes[] = {"", NULL};
static const char *const comfy_prefixes[] = {"diffusion_model.", NULL};

static const char *const *prefixes_of(lora_naming naming)
{
    switch (naming) {
    case LORA_NAMING_PEFT: return peft_prefixes;
    case LORA_NAMING_KOHYA: return kohya_prefixes;
    case LORA_NAMING_LIGHTX2V: return lightx2v_prefixes;
    case LORA_NAMING_COMFY: return comfy_prefixes;
    default: return NULL;
    }
}

static const struct {
    const char *suffix;
    lora_role role;
} suffixes[] = {
    {".lora_down.weight", LORA_ROLE_DOWN}, {".lora_up.weight", LORA_ROLE_UP},
    {".lora_A.weight", LORA_ROLE_DOWN},    {".lora_B.weight", LORA_ROLE_UP},
    {".alpha", LORA_ROLE_ALPHA},
};

static int starts_with(const char *text, const char *prefix) { return !strncmp(text, prefix, strlen(prefix)); }

lora_naming lora_naming_detect(const st_file *file)
{
    if (file->n_tensors == 0) return LORA_NAMING_LIGHTX2V;
    const char *key = file->tensors[0].name;
    for (int n = LORA_NAMING_PEFT; n < LORA_NAMING_COUNT; n++) {
        if (n == LORA_NAMING_LIGHTX2V) continue; /* no prefix: what is left */
        for (const char *const *p = prefixes_of((lora_naming)n); *p; p++)
            if (starts_with(key, *p)) return (lora_naming)n;
    }
    return LORA_NAMING_LIGHTX2V;
}

int lora_key_split(lora_naming naming, const char *key, char *module, size_t module_size, lora_role *role)
{
    const char *const *prefixes = prefixes_of(naming);
    if (!prefixes) return 0;
    const char *rest = NULL;
    for (const char *const *p = prefixes; *p && !rest; p++)
        if (starts_with(key, *p)) rest = key + strlen(*p);
    if (!rest) return 0;
    size_t length = strlen(rest);
    for (size_t s = 0; s < sizeof suffixes / sizeof suffixes[0]; s++) {
        size_t n = strlen(suffixes[s].suffix);
        if (length > n && !strcmp(rest + length - n, suffixes[s].suffix)) {
            size_t module_length = length - n;
            if (module_length + 1 > module_size) return 0;
            memcpy(module, rest, module_length);
            module[module_length] = '\0';
            *role = suffixes[s].role;
            return 1;
        }
    }
    return 0;
}

void lora_module_name(lora_naming naming, const char *tensor_name, char *out, size_t size)
{
    snprintf(out, size, "%s", tensor_name);
    size_t length = strlen(out);
    const char *weight = ".weight";
    if (length > strlen(weight) && !strcmp(out + length - strlen(weight), weight)) out[length - strlen(weight)] = '\0';
    if (naming == LORA_NAMING_KOHYA)
        for (char *c = out; *c; c++)
            if (*c == '.') *c = '_';
}
