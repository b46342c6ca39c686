/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_settings.c — the YAML settings file (io/config_yaml.h). */
#include "fuzz.h"
#include "io/config_yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("canvas.yaml", data, size);
    config_settings settings;
    if (path) (void)config_yaml_load(path, &settings);
    return 0;
}
