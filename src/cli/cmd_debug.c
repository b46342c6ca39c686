/* cmd_debug.c — `canvas debug case CASE_DIR --out OUT.safetensors` (placeholder). */
#include <stdio.h>

#include "cli/commands.h"

int cmd_debug(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "canvas debug: not written yet\n");
    return 1;
}
