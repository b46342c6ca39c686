/* SPDX-License-Identifier: Apache-2.0 */
/* scheduler.c — the flow-match Euler schedule and step, float32 as diffusers computes them.
 *
 * Products and sums are written as separate statements on purpose: a compiler allowed to
 * contract a*b + c into one fused multiply-add would round once where numpy and torch
 * round twice. */
#include "pipeline/scheduler.h"

#include <math.h>

#include "base/status.h"

void scheduler_config_lightning(scheduler_config *out)
{
    scheduler_config_default(out);
    out->use_dynamic_shifting = true;
    out->base_shift = SCHEDULER_LIGHTNING_SHIFT;
    out->max_shift = SCHEDULER_LIGHTNING_SHIFT;
    out->base_image_seq_len = 256;
    out->max_image_seq_len = 8192;
    out->shift_terminal = 0.0;
    out->time_shift = TIME_SHIFT_EXPONENTIAL;
}

double scheduler_mu(const scheduler_config *c, int64_t image_seq_len)
{
    double m = (c->max_shift - c->base_shift) / (double)(c->max_image_seq_len - c->base_image_seq_len);
    double base_term = m * (double)c->base_image_seq_len;
    double b = c->base_shift - base_term;
    double scaled = (double)image_seq_len * m;
    return scaled + b;
}

/* np.linspace(1, 1/steps, steps) in float64 (i·step + start, the last value exact),
 * then cast to float32 as set_timesteps does. */
static void linspace_sigmas(int steps, float *sigmas)
{
    const double start = 1.0, stop = 1.0 / steps;
    if (steps == 1) {
        sigmas[0] = (float)start;
        return;
    }
    const double step = (stop - start) / (double)(steps - 1);
    for (int i = 0; i < steps; i++) {
        double offset = (double)i * step;
        sigmas[i] = (float)(offset + start);
    }
    sigmas[steps - 1] = (float)stop;
}

/* time_shift(mu, 1.0, sigma): exponential e^mu / (e^mu + (1/σ - 1)^1), linear mu / (mu + ...).
 * The Python float e^mu (or mu) meets a float32 array: it is rounded to float32 first. */
static float dynamic_shift(const scheduler_config *c, double mu, float sigma)
{
    const float numerator = c->time_shift == TIME_SHIFT_LINEAR ? (float)mu : (float)exp(mu);
    float reciprocal = 1.0f / sigma;
    float odds = reciprocal - 1.0f; /* ** 1.0 leaves it unchanged */
    float denominator = numerator + odds;
    return numerator / denominator;
}

/* shift·σ / (1 + (shift - 1)·σ) */
static float static_shift(const scheduler_config *c, float sigma)
{
    const float shift = (float)c->shift, shift_less_one = (float)(c->shift - 1.0);
    float top = shift * sigma;
    float grown = shift_less_one * sigma;
    float bottom = 1.0f + grown;
    return top / bottom;
}

/* stretch_shift_to_terminal: one_minus_z = 1 - σ; scale = one_minus_z[-1] / (1 - terminal);
 * σ = 1 - one_minus_z / scale. The scale is a numpy float32 scalar divided by a Python
 * float, which numpy 1.x computes in float64; it meets the float32 array rounded to
 * float32. (All-float32 arithmetic puts the last sigma one ulp lower than diffusers.) */
static void stretch_to_terminal(const scheduler_config *c, int steps, float *sigmas)
{
    const float last = 1.0f - sigmas[steps - 1];
    const float scale = (float)((double)last / (1.0 - c->shift_terminal));
    for (int i = 0; i < steps; i++) {
        float one_minus = 1.0f - sigmas[i];
        float ratio = one_minus / scale;
        sigmas[i] = 1.0f - ratio;
    }
}

canvas_status scheduler_check_steps(const scheduler_config *c, int steps)
{
    if (steps < 1) return status_fail(CANVAS_ERR_USAGE, "scheduler: %d steps; at least 1 is needed", steps);
    if (steps == 1 && c->shift_terminal > 0)
        return status_fail(CANVAS_ERR_USAGE,
                           "1 step gives an undefined schedule with this scheduler config (shift_terminal %g divides "
                           "by 1 - last sigma = 0): use at least 2 steps",
                           c->shift_terminal);
    return CANVAS_OK;
}

canvas_status scheduler_sigmas(const scheduler_config *c, int steps, double mu, float *sigmas, float *timesteps)
{
    TRY(scheduler_check_steps(c, steps));
    if (c->use_karras_sigmas || c->use_exponential_sigmas || c->use_beta_sigmas)
        return status_fail(CANVAS_ERR_UNSUPPORTED,
                           "scheduler: the karras / exponential / beta sigma options are not supported");
    linspace_sigmas(steps, sigmas);
    for (int i = 0; i < steps; i++)
        sigmas[i] = c->use_dynamic_shifting ? dynamic_shift(c, mu, sigmas[i]) : static_shift(c, sigmas[i]);
    /* a large image shifts every sigma to 1.0f (mu grows with the token count): the terminal
     * stretch would divide by 1 - last sigma = 0 and the run would denoise NaN */
    if (c->shift_terminal > 0 && 1.0f - sigmas[steps - 1] == 0.0f)
        return status_fail(CANVAS_ERR_USAGE,
                           "the schedule is undefined at this image size: its shift (mu %.1f) rounds every sigma of "
                           "the %d steps to 1; choose a smaller output",
                           mu, steps);
    if (c->shift_terminal > 0) stretch_to_terminal(c, steps, sigmas);
    const float train_steps = (float)c->num_train_timesteps;
    if (c->invert_sigmas) {
        for (int i = 0; i < steps; i++) sigmas[i] = 1.0f - sigmas[i];
        for (int i = 0; i < steps; i++) timesteps[i] = sigmas[i] * train_steps;
        sigmas[steps] = 1.0f;
    } else {
        for (int i = 0; i < steps; i++) timesteps[i] = sigmas[i] * train_steps;
        sigmas[steps] = 0.0f;
    }
    return CANVAS_OK;
}

void scheduler_step(float *latents, const float *model_output, int64_t n, float sigma, float sigma_next)
{
    const float dt = sigma_next - sigma;
    for (int64_t i = 0; i < n; i++) {
        float change = dt * model_output[i];
        latents[i] = latents[i] + change;
    }
}
