/* SPDX-License-Identifier: Apache-2.0 */
/* config_yaml.h — the user's settings file (canvas.yaml / config.yaml, docs/config.md),
 * read with libyaml into plain values the command line maps onto its flags.
 *
 *   memory_management:
 *     preferred_strategies: [offload, fp8]   # tried in order, the first plan that fits
 *     fallback_enabled: true                 # re-plan and redo a step after an out-of-memory
 *     oom_retry_attempts: 3                  # fallbacks per step or phase
 *     memory_threshold_mb: 512               # device headroom the planner keeps free
 *     profiling_enabled: false               # write the memory/time report
 *     fp8_enabled: auto                      # auto | true | false
 *     lightning_lora_enabled: false          # the Lightning preset (cfg 1, its scheduler)
 *     default_inference_steps: 40
 *     vram: 24G   ram: 64G   link_bandwidth: 16G/s   threads: 8
 *     strategy: auto   allow_quantize: false
 *     text_encoder_weights: fp8              # none | fp8 | fp8-channel | fp8-e5m2 | nf4 | q8
 *
 * Every key is checked: an unknown key, a value of the wrong type, an alias or a second
 * document is CANVAS_ERR_INPUT with "FILE:LINE: key 'K': what is wrong". Only the
 * memory_management mapping is read (anything else at the top level is an error too). */
#ifndef CANVAS_IO_CONFIG_YAML_H
#define CANVAS_IO_CONFIG_YAML_H

#include <stdint.h>

#include "canvas.h"

typedef struct config_settings {
    char strategy[96];              /* "strategy": one preset name; "" when absent */
    char preferred[96];             /* "preferred_strategies" joined with commas ("offload,fp8"); "" */
    int fallback_enabled;           /* -1 absent, 0, 1 */
    int oom_retry_attempts;         /* -1 absent, else 0..100 */
    int has_headroom;               /* memory_threshold_mb given */
    uint64_t headroom_bytes;
    int profiling_enabled;          /* -1 absent, 0, 1 */
    int fp8;                        /* fp8_enabled: 0 auto (or absent), 1 true, -1 false */
    int lightning_lora_enabled;     /* -1 absent, 0, 1 */
    int default_inference_steps;    /* 0 absent, else 1..1000 */
    uint64_t vram_bytes, ram_bytes; /* 0 absent */
    double link_bytes_per_second;   /* 0 absent */
    int threads;                    /* 0 absent */
    int allow_quantize;             /* -1 absent, 0, 1 */
    char text_encoder_weights[16];  /* a quant_choice_parse name ("fp8"); "" absent */
} config_settings;

/* Every field "absent". */
void config_settings_init(config_settings *s);

/* Read `path` into *out (initialised first). CANVAS_ERR_INPUT naming the file, the line and
 * the key for a file that is missing, not YAML, or has a key or value this page does not
 * describe; CANVAS_ERR_OUT_OF_MEMORY as usual. */
canvas_status config_yaml_load(const char *path, config_settings *out);

#endif
