/* SPDX-License-Identifier: Apache-2.0 */
/* output_path.c — an output flag checked before the run, as a usage error. */
#include "cli/output_path.h"

#include "base/status.h"
#include "cli/commands.h"
#include "io/output_file.h"

enum { MAX_FILES = 64 }; /* callers pass 41 at most (16 images, 16 LoRAs, 9 others) */

const char *const cli_image_extensions[] = {"png", "jpg", "jpeg", "webp", NULL};
const char *const cli_json_extensions[] = {"json", NULL};
const char *const cli_tensor_extensions[] = {"safetensors", NULL};

int cli_check_output(const char *command, const char *flag, const char *path, const char *const *extensions,
                     const char *const *files, int n_files, const char *folder, const char *folder_kind)
{
    /* every file the run reads but the output itself; more than the room is a bug of the
     * caller, said as one (never a file silently left unchecked) */
    const char *others[MAX_FILES];
    int n = 0;
    for (int i = 0; i < n_files; i++) {
        if (!files[i] || files[i] == path) continue;
        if (n == MAX_FILES) return cli_fail(status_fail(CANVAS_ERR_INTERNAL, "%s: more than %d files to check it "
                                                        "against", flag, MAX_FILES), command);
        others[n++] = files[i];
    }
    const char *folders[1] = {folder};
    output_rules rules = {flag, extensions, others, n, folders, folder ? 1 : 0, folder_kind};
    canvas_status st = output_check(path, &rules);
    if (st == CANVAS_OK) return 0;
    int code = cli_usage_error(command, canvas_last_error());
    status_clear();
    return code;
}
