/* SPDX-License-Identifier: Apache-2.0 */
/* model_files.c — the single-file component flags (cli/model_files.h). */
#include "cli/model_files.h"

#include <string.h>

#include "cli/commands.h"

int cli_model_files_parse(cli_model_files *files, int argc, char **argv, int *i, const char *command)
{
    const char **slot = NULL;
    const char *flag = argv[*i];
    if (!strcmp(flag, "--transformer")) slot = &files->transformer;
    else if (!strcmp(flag, "--text-encoder")) slot = &files->text_encoder;
    else if (!strcmp(flag, "--vae")) slot = &files->vae;
    if (!slot) return 0;
    if (*i + 1 >= argc || !argv[*i + 1][0]) {
        char message[64];
        snprintf(message, sizeof message, "%s needs a FILE", flag);
        cli_usage_error(command, message);
        return -1;
    }
    *slot = argv[++*i];
    return 1;
}

int cli_model_files_check(const cli_model_files *files, const char *model_dir, const char *command)
{
    if (model_dir || (files->transformer && files->vae)) return 0;
    cli_usage_error(command, "missing --model DIR (or --transformer FILE and --vae FILE)");
    return -1;
}

const char *cli_model_label(const cli_model_files *files, const char *model_dir)
{
    return model_dir ? model_dir : files->transformer ? files->transformer : "";
}

void cli_model_files_apply(const cli_model_files *files, canvas_options *options)
{
    options->transformer_file = files->transformer;
    options->text_encoder_file = files->text_encoder;
    options->vae_file = files->vae;
}

void cli_model_files_help(FILE *to)
{
    fputs("  --transformer FILE     the transformer from one .safetensors file (ComfyUI's diffusion_models/\n"
          "                         qwen_image_edit_2511_*.safetensors; bf16, fp8_e4m3fn or fp8_scaled)\n"
          "                         or .gguf file (ComfyUI-GGUF's, any of its types: Q8_0, Q4_K_M, ...)\n"
          "  --text-encoder FILE    the text encoder from one file (text_encoders/qwen_2.5_vl_7b*.safetensors)\n"
          "  --vae FILE             the VAE from one file (vae/qwen_image_vae.safetensors)\n"
          "                         each replaces that part of --model DIR; without DIR, --transformer and\n"
          "                         --vae are required and the configs are read from the tensors\n",
          to);
}
