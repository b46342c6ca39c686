/* SPDX-License-Identifier: Apache-2.0 */
/* output_path.c — an output flag checked before the run, as a usage error. */
#include "cli/output_path.h"

#include "base/status.h"
#include "cli/commands.h"
#include "io/output_file.h"
#include "mem/mem.h"

const char *const cli_image_extensions[] = {"png", "jpg", "jpeg", "webp", NULL};
const char *const cli_json_extensions[] = {"json", NULL};
const char *const cli_tensor_extensions[] = {"safetensors", NULL};

int cli_check_output(const char *command, const char *flag, const char *path, const char *const *extensions,
                     const char *const *files, int n_files, const char *folder, const char *folder_kind)
{
    const char **others = NULL; /* every file the run reads, however many (model shards, LoRAs, images) */
    if (n_files > 0 && mem_alloc((void **)&others, (size_t)n_files * sizeof *others, MEM_SCRATCH) != CANVAS_OK)
        return cli_fail(CANVAS_ERR_OUT_OF_MEMORY, command);
    int n = 0;
    for (int i = 0; i < n_files; i++)
        if (files[i] && files[i] != path) others[n++] = files[i];
    const char *folders[1] = {folder};
    output_rules rules = {flag, extensions, others, n, folders, folder ? 1 : 0, folder_kind};
    canvas_status st = output_check(path, &rules);
    mem_free(others);
    if (st == CANVAS_OK) return 0;
    int code = cli_usage_error(command, canvas_last_error());
    status_clear();
    return code;
}
