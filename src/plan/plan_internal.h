/* plan_internal.h — what the files of plan/ share. */
#ifndef CANVAS_PLAN_PLAN_INTERNAL_H
#define CANVAS_PLAN_PLAN_INTERNAL_H

#include "plan/plan.h"

/* A shape model of the work's transformer in `weights` format (plan_estimate.c). */
canvas_status plan_shape_for(const plan_work *work, quant_choice weights, dit_model **out);

/* Fill c's phases, peaks, time and fits for c->point (resident_blocks -1: the largest
 * prefix that fits the device). */
canvas_status plan_estimate(const plan_work *work, const plan_hardware *hw, const plan_limits *limits,
                            thread_pool *pool, plan_candidate *c);

#endif
