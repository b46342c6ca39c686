/* SPDX-License-Identifier: Apache-2.0 */
/* scheduler.h — FlowMatchEulerDiscreteScheduler as the Qwen-Image pipelines drive it
 * (spec/qwen-image-transformer.md §4.5, §4.7).
 *
 * The pipelines pass their own sigmas, np.linspace(1, 1/S, S), and a dynamic shift mu
 * computed from the number of TARGET image tokens L (reference tokens excluded):
 *
 *   mu        = L·m + b,  m = (max_shift - base_shift) / (max_seq - base_seq),
 *               b = base_shift - m·base_seq                          (float64, as Python)
 *   shift     exponential: e^mu / (e^mu + (1/σ - 1)),  linear: mu / (mu + (1/σ - 1))
 *             (without dynamic shifting: shift·σ / (1 + (shift - 1)·σ))
 *   terminal  when shift_terminal > 0: σ = 1 - (1 - σ) / ((1 - σ_last) / (1 - shift_terminal)),
 *             so the last sigma becomes shift_terminal
 *   timesteps = σ · num_train_timesteps;  sigmas get a final 0 (1 with invert_sigmas)
 *
 * Every operation on sigmas is done in float32 in the order numpy/torch do it (scalars
 * from Python rounded to float32 first), so the schedule matches diffusers to the last
 * bit or one ulp (test_scheduler states what it reaches).
 *
 * The Euler step (stochastic_sampling false): x_next = x + (σ_next - σ)·v, in float32,
 * the difference rounded first, then the product, then the sum (no fused multiply-add). */
#ifndef CANVAS_PIPELINE_SCHEDULER_H
#define CANVAS_PIPELINE_SCHEDULER_H

#include <stdint.h>

#include "canvas.h"
#include "io/config.h"

/* ln 3: base_shift = max_shift of the Lightning scheduler config (a constant shift of 3). */
#define SCHEDULER_LIGHTNING_SHIFT 1.0986122886681098

/* The scheduler config the few-step Qwen-Image-Lightning LoRAs are used with:
 * dynamic shifting on with base_shift = max_shift = ln 3 (so mu = ln 3 whatever the
 * size, i.e. the fixed shift 3), base/max seq len 256/8192, exponential, no
 * shift_terminal. */
void scheduler_config_lightning(scheduler_config *out);

/* mu for `image_seq_len` target tokens (calculate_shift of the pipelines). */
double scheduler_mu(const scheduler_config *config, int64_t image_seq_len);

/* CANVAS_ERR_USAGE, saying how many steps to give, when `config` has no schedule of
 * `steps` steps: fewer than 1, or 1 with shift_terminal (its stretch divides 1 - sigma by 1 -
 * the last sigma, 0 for a single step whatever the shift: NaN in diffusers too). What a
 * caller checks before any work (loading, encoding) that the run would waste. */
canvas_status scheduler_check_steps(const scheduler_config *config, int steps);

/* The schedule of `steps` steps: sigmas [steps + 1] (last 0) and timesteps [steps].
 * `mu` is used only with use_dynamic_shifting. CANVAS_ERR_USAGE as scheduler_check_steps;
 * CANVAS_ERR_UNSUPPORTED for the karras / exponential / beta sigma options (no Qwen-Image
 * config uses them). */
canvas_status scheduler_sigmas(const scheduler_config *config, int steps, double mu, float *sigmas,
                               float *timesteps);

/* One Euler step in place: latents[i] += (sigma_next - sigma) * model_output[i]. */
void scheduler_step(float *latents, const float *model_output, int64_t n, float sigma, float sigma_next);

#endif
