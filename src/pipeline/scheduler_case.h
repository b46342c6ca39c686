/* SPDX-License-Identifier: Apache-2.0 */
/* scheduler_case.h — running a `schedule` golden case (tests/golden/README.md):
 * case.json gives `scheduler_config` (the diffusers scheduler_config.json contents),
 * `steps` (S values) and `image_seq_lens` (L values); for every (S, L) the case expects
 * `sigmas.S.L` [S+1], `timesteps.S.L` [S] and `mu.S.L` [1].
 *
 * Shared by `canvas debug case` and the tests. */
#ifndef CANVAS_PIPELINE_SCHEDULER_CASE_H
#define CANVAS_PIPELINE_SCHEDULER_CASE_H

#include <jansson.h>
#include <stdint.h>

#include "canvas.h"
#include "io/golden_case.h"
#include "io/config.h"

/* Compute every (S, L) of the case and hand sigmas.S.L, timesteps.S.L and mu.S.L to the
 * sink, in the order S then L of case.json. CANVAS_ERR_INPUT for a bad case. */
canvas_status schedule_case_run(const char *case_dir, golden_sink_fn sink, void *ctx);

#endif
