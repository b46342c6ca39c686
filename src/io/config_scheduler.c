/* SPDX-License-Identifier: Apache-2.0 */
/* config_scheduler.c — FlowMatchEulerDiscreteScheduler config. */
#include <string.h>

#include "base/status.h"
#include "io/config.h"
#include "io/config_fields.h"

void scheduler_config_default(scheduler_config *out)
{
    /* diffusers scheduling_flow_match_euler_discrete.py constructor defaults */
    *out = (scheduler_config){
        .num_train_timesteps = 1000,
        .shift = 1.0,
        .base_shift = 0.5,
        .max_shift = 1.15,
        .base_image_seq_len = 256,
        .max_image_seq_len = 4096,
        .time_shift = TIME_SHIFT_EXPONENTIAL,
    };
}

static canvas_status read_time_shift(const cfg_source *src, scheduler_config *c)
{
    char name[32] = "exponential";
    TRY(cfg_string(src, "time_shift_type", name, sizeof name));
    if (!strcmp(name, "exponential")) c->time_shift = TIME_SHIFT_EXPONENTIAL;
    else if (!strcmp(name, "linear")) c->time_shift = TIME_SHIFT_LINEAR;
    else return cfg_bad_value(src, "time_shift_type", "must be \"exponential\" or \"linear\"");
    return CANVAS_OK;
}

static canvas_status read_scheduler(const cfg_source *src, scheduler_config *c)
{
    TRY(cfg_check_class(src, "FlowMatchEulerDiscreteScheduler"));
    TRY(cfg_int(src, "num_train_timesteps", &c->num_train_timesteps));
    TRY(cfg_double(src, "shift", &c->shift));
    TRY(cfg_bool(src, "use_dynamic_shifting", &c->use_dynamic_shifting));
    TRY(cfg_double(src, "base_shift", &c->base_shift));
    TRY(cfg_double(src, "max_shift", &c->max_shift));
    TRY(cfg_int(src, "base_image_seq_len", &c->base_image_seq_len));
    TRY(cfg_int(src, "max_image_seq_len", &c->max_image_seq_len));
    TRY(cfg_bool(src, "invert_sigmas", &c->invert_sigmas));
    TRY(cfg_double(src, "shift_terminal", &c->shift_terminal));
    TRY(cfg_bool(src, "use_karras_sigmas", &c->use_karras_sigmas));
    TRY(cfg_bool(src, "use_exponential_sigmas", &c->use_exponential_sigmas));
    TRY(cfg_bool(src, "use_beta_sigmas", &c->use_beta_sigmas));
    TRY(read_time_shift(src, c));
    return cfg_bool(src, "stochastic_sampling", &c->stochastic_sampling);
}

static canvas_status check_scheduler(const cfg_source *src, const scheduler_config *c)
{
    TRY(cfg_check_positive(src, "num_train_timesteps", c->num_train_timesteps));
    TRY(cfg_check_positive(src, "shift", c->shift));
    TRY(cfg_check_positive(src, "base_image_seq_len", c->base_image_seq_len));
    if (c->max_image_seq_len <= c->base_image_seq_len)
        return cfg_bad_value(src, "max_image_seq_len", "must be larger than base_image_seq_len");
    if (!(c->shift_terminal >= 0 && c->shift_terminal < 1))
        return cfg_bad_value(src, "shift_terminal", "must be in [0, 1) (or null for none)");
    if (c->use_karras_sigmas + c->use_exponential_sigmas + c->use_beta_sigmas > 1)
        return cfg_bad_value(src, "use_karras_sigmas",
                             "only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas may be true");
    return CANVAS_OK;
}

canvas_status scheduler_config_from_json(json_t *object, const char *path, const char *key, scheduler_config *out)
{
    scheduler_config_default(out);
    if (!json_is_object(object))
        return status_fail(CANVAS_ERR_INPUT, "%s: key '%s' must be an object (a scheduler config)", path, key);
    cfg_source src = {path, key, object};
    TRY(read_scheduler(&src, out));
    return check_scheduler(&src, out);
}

canvas_status scheduler_config_load(const char *config_json_path, scheduler_config *out)
{
    scheduler_config_default(out);
    json_t *root;
    TRY(cfg_open(config_json_path, &root));
    canvas_status status = scheduler_config_from_json(root, config_json_path, "", out);
    json_decref(root);
    return status;
}
