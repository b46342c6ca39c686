/* SPDX-License-Identifier: Apache-2.0 */
/* quant_bounds.h — the error bounds a model's output may show with its matrices quantised
 * on load, per format, as max|got - as stored| / max|as stored|: issue 8's bounds for the
 * transformer (test_quant_dit.c), which the text encoder's quantised layers are held to
 * too (test_textenc_quant.c). */
#ifndef CANVAS_TESTS_QUANT_BOUNDS_H
#define CANVAS_TESTS_QUANT_BOUNDS_H

static const struct {
    const char *name;     /* quant_choice_parse */
    double limit;         /* the bound */
} quant_bounds[] = {{"fp8", 0.08}, {"fp8-channel", 0.08}, {"nf4", 0.30}, {"q8", 0.02}};

#define QUANT_BOUNDS_COUNT ((int)(sizeof quant_bounds / sizeof quant_bounds[0]))

#endif
