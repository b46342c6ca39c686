/* SPDX-License-Identifier: Apache-2.0 */
/* canvas_version: compiled into the library, so a program can tell which libcanvas it runs with. */
#include "canvas.h"

const char *canvas_version(void)
{
    return CANVAS_VERSION;
}
