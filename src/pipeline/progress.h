/* SPDX-License-Identifier: Apache-2.0 */
/* progress.h — progress events (canvas_progress, include/canvas.h) as text: a one-line
 * bar for people and a JSON line for machines. The library only formats into a buffer;
 * the command line decides where and whether to write (it draws the bar on stderr when
 * stderr is a terminal, and writes JSON lines to stdout with --json-progress).
 *
 * Bar (a STEP event; without a device, "memory X (peak Y)" of the host pool instead):
 *   denoise [##########----------] 3/6  0.41 s/it  1.2 s  ETA 1.2 s  device 38.0 MiB (peak 40.1 MiB)  host 2.3 MiB
 * (ETA: the steps left at the mean s/it so far). Other events: "vae-encode ...", "plan: ...",
 * "done". Sizes as size_format() writes them: binary units (KiB, MiB, GiB).
 *
 * JSON (one object, no newline), keys always present for a kind:
 *   {"event":"step","phase":"denoise","step":3,"steps":6,"seconds_per_step":0.411,"eta_seconds":1.233,"seconds":1.234,
 *    "on_device":true,"device_bytes":N,"device_peak_bytes":N,"host_bytes":N,"host_peak_bytes":N}
 *   {"event":"plan","phase":"plan","message":"plan: ...", ...memory keys}
 *   {"event":"phase","phase":"vae-decode", ...memory keys}    {"event":"done", ...} */
#ifndef CANVAS_PIPELINE_PROGRESS_H
#define CANVAS_PIPELINE_PROGRESS_H

#include <stddef.h>

#include "canvas.h"

/* The event's name in JSON: "plan", "phase", "step", "done". */
const char *progress_event_name(canvas_progress_kind kind);

/* The time the remaining steps of a STEP event should take at its seconds_per_step (0 for
 * other events and after the last step). */
double progress_eta_seconds(const canvas_progress *p);

/* The bar line for `p` into buf (always NUL-terminated; cut to size). bar_width is the
 * number of cells between the brackets (at least 1). Returns the length written. */
size_t progress_format_bar(char *buf, size_t size, const canvas_progress *p, int bar_width);

/* The JSON object for `p` (strings escaped). Returns the length written (cut to size). */
size_t progress_format_json(char *buf, size_t size, const canvas_progress *p);

/* Append `text` to buf as a JSON string literal (quotes included), cut to size. */
size_t progress_json_string(char *buf, size_t size, const char *text);

#endif
