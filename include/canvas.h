/*
 * canvas.h — the one public header of Ethereal Canvas (libcanvas).
 *
 * Ethereal Canvas runs the Qwen-Image-Edit family of diffusion models on whatever
 * memory a machine has. Every function that can fail returns a canvas_status; when it
 * is not CANVAS_OK, canvas_last_error() gives a one-line reason naming the file,
 * tensor or flag concerned. The library never exits, aborts or writes to stdout.
 */
#ifndef CANVAS_H
#define CANVAS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CANVAS_VERSION "0.1.0"

/* Status codes. The CLI maps them onto its exit codes with canvas_exit_code(). */
typedef enum canvas_status {
    CANVAS_OK = 0,
    CANVAS_ERR_USAGE,          /* a caller error: bad argument, bad flag          -> exit 2 */
    CANVAS_ERR_OUT_OF_MEMORY,  /* an allocation failed (real, capped or injected)  -> exit 3 */
    CANVAS_ERR_INPUT,          /* a bad or missing file, model, image or config    -> exit 4 */
    CANVAS_ERR_IO,             /* the system refused a read or write               -> exit 1 */
    CANVAS_ERR_UNSUPPORTED,    /* valid, but not something this build can do       -> exit 1 */
    CANVAS_ERR_INTERNAL        /* a bug: an invariant did not hold                 -> exit 1 */
} canvas_status;

/* The reason for the last failure on the calling thread ("" when none). The text stays
 * valid until the next failing call on this thread. */
const char *canvas_last_error(void);

/* Short name of a status ("out of memory", ...). */
const char *canvas_status_name(canvas_status status);

/* Exit code the canvas CLI uses for a status: 0 ok, 2 usage, 3 out of memory,
 * 4 bad input, 1 anything else. */
int canvas_exit_code(canvas_status status);

#ifdef __cplusplus
}
#endif
#endif /* CANVAS_H */
