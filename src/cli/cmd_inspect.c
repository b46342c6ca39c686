/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_inspect.c — `canvas inspect PATH [--json]`: validate a model and show what it
 * weighs. The work is in inspect_gather.c; printing in inspect_table.c / inspect_json.c. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "cli/inspect.h"
#include "cli/model_files.h"
#include "io/safetensors.h"
#include "mem/mem.h"

static void print_help(void)
{
    printf("usage: canvas inspect PATH [--json]\n"
           "       canvas inspect [--transformer FILE] [--text-encoder FILE] [--vae FILE] [--json]\n\n"
           "Validate a model and show its parameters and sizes. PATH is one of\n"
           "  a pipeline folder   (model_index.json): every component folder present is inspected\n"
           "  a component folder  (config.json: transformer, vae, text_encoder; scheduler_config.json)\n"
           "  a .safetensors file (totals per dtype, then every tensor: name, dtype, shape, bytes;\n"
           "                       strict checks only)\n"
           "  a .gguf file        (the same for a GGUF checkpoint: totals per ggml type, the\n"
           "                       transformer blocks, every tensor; strict checks only)\n"
           "or components as single files (ComfyUI's): each checked against the architecture its\n"
           "tensors imply, after its key prefix is stripped (and the original VAE names renamed).\n\n"
           "Every file read is checked strictly, and weights are checked against the architecture\n"
           "their config.json implies (missing, unexpected or wrong-shaped tensors are errors).\n"
           "Without weight files the sizes come from config.json alone.\n"
           "Per component: parameters, tensors, bytes as stored, and the bytes as bf16, fp8, nf4\n"
           "(4.5 bits/param) and q8 (8.5 bits/param); per transformer block.\n\n"
           "options:\n"
           "  --transformer FILE  the transformer from one file (ComfyUI's diffusion_models/)\n"
           "  --text-encoder FILE the text encoder from one file (text_encoders/)\n"
           "  --vae FILE          the VAE from one file (vae/)\n"
           "  --json     print the report as JSON (docs/cli-inspect.md lists the fields)\n"
           "  --help     this text\n\n"
           "exit codes: 0 ok, 2 usage, 3 out of memory, 4 bad or missing model file\n");
}

/* A single file: every tensor, in name order, after the totals. */
static canvas_status print_tensors(const char *path)
{
    st_file *file;
    TRY(st_open(path, &file));
    printf("\n%-48s %-8s %-24s %15s\n", "tensor", "dtype", "shape", "bytes");
    for (int i = 0; i < file->n_tensors; i++) {
        const st_tensor *t = &file->tensors[i];
        char shape[96] = "[";
        for (int d = 0; d < t->ndim; d++) {
            size_t used = strlen(shape);
            snprintf(shape + used, sizeof shape - used, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        }
        size_t used = strlen(shape);
        snprintf(shape + used, sizeof shape - used, "]");
        printf("%-48s %-8s %-24s %15llu\n", t->name, dtype_name(t->type), shape, (unsigned long long)t->nbytes);
    }
    st_close(file);
    return CANVAS_OK;
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    cli_model_files files = {0};
    for (int i = 0; i < argc; i++) {
        int file_flag = cli_model_files_parse(&files, argc, argv, &i, "inspect");
        if (file_flag < 0) return 2;
        if (file_flag > 0) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_help();
            return 0;
        }
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            char message[256];
            snprintf(message, sizeof message, "unknown option '%s'", argv[i]);
            return cli_usage_error("inspect", message);
        } else if (path) return cli_usage_error("inspect", "give one PATH");
        else path = argv[i];
    }
    const int single = files.transformer || files.text_encoder || files.vae;
    if (single && path) return cli_usage_error("inspect", "give PATH or the component files, not both");
    if (path && inspect_is_gguf(path)) return inspect_gguf(path, json);
    if (!path && !single)
        return cli_usage_error("inspect", "missing PATH (a model folder or a .safetensors file)");

    inspect_report *report;
    canvas_status status = mem_calloc((void **)&report, 1, sizeof *report, MEM_SCRATCH);
    if (status != CANVAS_OK) return cli_fail(status, "inspect");
    status = single ? inspect_gather_files(files.transformer, files.text_encoder, files.vae, report)
                    : inspect_gather(path, report);
    if (status == CANVAS_OK) {
        if (json) status = inspect_print_json(report);
        else inspect_print_table(report);
    }
    struct stat sb;
    if (status == CANVAS_OK && !json && path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) status = print_tensors(path);
    inspect_report_free(report);
    mem_free(report);
    return status == CANVAS_OK ? 0 : cli_fail(status, NULL);
}
