/* SPDX-License-Identifier: Apache-2.0 */
/* config_file.c — finding the settings file and mapping it onto the flags (config_file.h). */
#define _POSIX_C_SOURCE 200809L

#include "cli/config_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/path.h"
#include "base/status.h"
#include "cli/commands.h"
#include "io/config_yaml.h"

/* The file named by --config, else the first default location that exists; "" for none. */
static int find_config(int argc, char **argv, const char *command, char *path, size_t size)
{
    path[0] = '\0';
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) return cli_usage_error(command, "--config needs a file name");
            snprintf(path, size, "%s", argv[i + 1]);
            return 0;
        }
    if (access("canvas.yaml", R_OK) == 0) {
        snprintf(path, size, "canvas.yaml");
        return 0;
    }
    /* the XDG base directory rule: $XDG_CONFIG_HOME when set (and absolute), else ~/.config */
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    const char *base = xdg && xdg[0] == '/' ? xdg : home, *tail = base == xdg ? "canvas/config.yaml" : ".config/canvas/config.yaml";
    if (base && base[0]) {
        char candidate[PATH_BUFFER_SIZE];
        if (path_join(candidate, sizeof candidate, base, tail) != CANVAS_OK)
            status_clear(); /* a folder name too long to hold the file: there is none */
        else if (access(candidate, R_OK) == 0)
            snprintf(path, size, "%s", candidate);
    }
    return 0;
}

int cli_config_apply(int argc, char **argv, const char *command, cli_memory_flags *flags,
                     cli_edit_defaults *defaults)
{
    static char path[4200]; /* flags->config_path points here for the life of the command */
    if (defaults) memset(defaults, 0, sizeof *defaults);
    int code = find_config(argc, argv, command, path, sizeof path);
    if (code || !path[0]) return code;
    config_settings s;
    canvas_status st = config_yaml_load(path, &s);
    if (st != CANVAS_OK) return cli_fail(st, "settings file");
    flags->config_path = path;
    cli_note("settings from %s", path);
    /* a preference list first: one `strategy` (other than auto) wins over it */
    if (s.preferred[0] && cli_memory_flags_set_strategy(flags, s.preferred) != CANVAS_OK)
        return cli_fail(CANVAS_ERR_INPUT, path);
    if (s.strategy[0] && strcmp(s.strategy, "auto") && cli_memory_flags_set_strategy(flags, s.strategy) != CANVAS_OK)
        return cli_fail(CANVAS_ERR_INPUT, path);
    if (s.fallback_enabled >= 0) flags->no_fallback = !s.fallback_enabled;
    if (s.oom_retry_attempts > 0) flags->oom_retry_attempts = s.oom_retry_attempts;
    if (s.oom_retry_attempts == 0) flags->no_fallback = 1; /* no retry: the first out-of-memory ends the run */
    if (s.has_headroom) flags->headroom_bytes = s.headroom_bytes;
    if (s.profiling_enabled == 1 && !flags->report_path) flags->report_path = "canvas-report.json";
    flags->fp8 = s.fp8;
    if (s.allow_quantize >= 0) flags->allow_quantize = s.allow_quantize;
    if (s.vram_bytes) flags->vram_bytes = s.vram_bytes;
    if (s.ram_bytes) flags->ram_bytes = s.ram_bytes;
    if (s.link_bytes_per_second > 0) flags->link_bytes_per_second = s.link_bytes_per_second;
    if (s.threads) flags->threads = s.threads;
    if (s.text_encoder_weights[0])
        snprintf(flags->text_encoder_weights, sizeof flags->text_encoder_weights, "%s", s.text_encoder_weights);
    if (defaults) {
        defaults->steps = s.default_inference_steps;
        defaults->lightning = s.lightning_lora_enabled == 1;
    }
    return 0;
}
