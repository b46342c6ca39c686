/* SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L
/* test_config_yaml.c — the settings file (io/config_yaml.h): every key of a good file,
 * an empty file, and each kind of error naming the file, the line and the key. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "io/config_yaml.h"

static char path[64];

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_good_file(void)
{
    write_file("# settings\n"
               "memory_management:\n"
               "  preferred_strategies: [offload, fp8]\n"
               "  fallback_enabled: false\n"
               "  oom_retry_attempts: 5\n"
               "  memory_threshold_mb: 512\n"
               "  profiling_enabled: yes\n"
               "  fp8_enabled: false\n"
               "  lightning_lora_enabled: true\n"
               "  default_inference_steps: 40\n"
               "  vram: 24G\n"
               "  ram: 64G\n"
               "  link_bandwidth: 16G/s\n"
               "  threads: 8\n"
               "  strategy: nf4\n"
               "  allow_quantize: true\n");
    config_settings s;
    CHECK_OK(config_yaml_load(path, &s));
    CHECK(!strcmp(s.preferred, "offload,fp8"));
    CHECK(!strcmp(s.strategy, "nf4"));
    CHECK(s.fallback_enabled == 0 && s.oom_retry_attempts == 5);
    CHECK(s.has_headroom && s.headroom_bytes == (uint64_t)512 << 20);
    CHECK(s.profiling_enabled == 1 && s.fp8 == -1 && s.lightning_lora_enabled == 1);
    CHECK(s.default_inference_steps == 40 && s.threads == 8 && s.allow_quantize == 1);
    CHECK(s.vram_bytes == (uint64_t)24 << 30 && s.ram_bytes == (uint64_t)64 << 30);
    CHECK(s.link_bytes_per_second > 15e9 && s.link_bytes_per_second < 18e9);

    /* block lists and fp8 auto; what is not given stays absent */
    write_file("memory_management:\n  preferred_strategies:\n    - sequential\n    - auto\n  fp8_enabled: auto\n");
    CHECK_OK(config_yaml_load(path, &s));
    CHECK(!strcmp(s.preferred, "sequential,auto") && s.fp8 == 0);
    CHECK(s.fallback_enabled == -1 && s.oom_retry_attempts == -1 && !s.has_headroom && s.vram_bytes == 0 &&
          s.allow_quantize == -1 && s.default_inference_steps == 0 && !s.strategy[0]);

    /* empty file, comments only, an empty section: nothing set */
    const char *empties[] = {"", "# nothing\n", "memory_management:\n", "---\nmemory_management: {}\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        write_file(empties[i]);
        CHECK_OK(config_yaml_load(path, &s));
        CHECK(s.fallback_enabled == -1 && !s.preferred[0]);
    }
}

static void test_errors(void)
{
    const struct {
        const char *text, *needle;
    } cases[] = {
        {"memory_management:\n  vram: 24G\n  colour: blue\n", ":3: unknown key 'colour' in memory_management"},
        {"memory:\n  vram: 24G\n", ":1: unknown key 'memory'"},
        {"memory_management:\n  vram: lots\n", ":2: key 'vram': wants a size"},
        {"memory_management:\n  fallback_enabled: maybe\n", ":2: key 'fallback_enabled': wants true or false (got 'maybe')"},
        {"memory_management:\n  oom_retry_attempts: 1.5\n", ":2: key 'oom_retry_attempts': wants a whole number"},
        {"memory_management:\n  default_inference_steps: 0\n", "key 'default_inference_steps': wants a whole number from 1"},
        {"memory_management:\n  fp8_enabled: sometimes\n", "key 'fp8_enabled': wants auto, true or false"},
        {"memory_management:\n  preferred_strategies: offload\n", "key 'preferred_strategies': wants a list"},
        {"memory_management:\n  preferred_strategies: [offload, fast]\n", ":2: key 'preferred_strategies': wants full, fp8"},
        {"memory_management:\n  preferred_strategies: []\n", "the list is empty"},
        {"memory_management:\n  strategy: [full]\n", "key 'strategy': wants full"},
        {"memory_management:\n  threads:\n", "key 'threads': wants a whole number"},
        {"memory_management:\n  link_bandwidth: fast\n", "key 'link_bandwidth': wants a rate"},
        {"memory_management:\n  vram: 1G\n  vram: 2G\n", ":3: key 'vram' is given twice"},
        {"memory_management:\n  vram: &a 1G\n  ram: *a\n", ":3: aliases"},
        {"memory_management: [1, 2]\n", "key 'memory_management': wants a mapping"},
        {"memory_management:\n\tvram: 1G\n", ":2: not valid YAML"},
        {"- a\n- b\n", "the file must be a mapping"},
        {"memory_management: {}\n---\nmemory_management: {}\n", "one YAML document only"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(cases[i].text);
        config_settings s;
        CHECK_FAILS(config_yaml_load(path, &s), CANVAS_ERR_INPUT, cases[i].needle);
        CHECK(strstr(canvas_last_error(), path) != NULL);
        CHECK(s.fallback_enabled == -1 && s.vram_bytes == 0); /* nothing half-applied */
    }
    unlink(path);
    config_settings s;
    CHECK_FAILS(config_yaml_load(path, &s), CANVAS_ERR_INPUT, "cannot open the settings file");
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/canvas_test_config_%d.yaml", (int)getpid());
    RUN(test_good_file);
    RUN(test_errors);
    unlink(path);
    return check_summary();
}
