/* cmd_inspect.c — `canvas inspect MODEL_DIR [--json]` (placeholder until the inspect work lands). */
#include <stdio.h>

#include "cli/commands.h"

int cmd_inspect(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "canvas inspect: not written yet\n");
    return 1;
}
