/* arch.h — a component's architecture derived from its config alone: the tensors it
 * expects (names, shapes), so that a model folder can be checked — and sized — before
 * or without its weights. */
#ifndef CANVAS_MODELS_ARCH_H
#define CANVAS_MODELS_ARCH_H

#include <stdint.h>

#include "canvas.h"
#include "io/config.h"
#include "io/model_dir.h"

#define ARCH_MAX_DIMS 5

typedef struct tensor_spec {
    char *name;                    /* full state-dict key */
    int ndim;
    int64_t shape[ARCH_MAX_DIMS];
    int group;                     /* weight group: DiT block / decoder layer index, or -1 */
} tensor_spec;

typedef struct tensor_spec_list {
    int count;
    int capacity;
    tensor_spec *items;
} tensor_spec_list;

canvas_status arch_dit(const dit_config *config, tensor_spec_list *out);
void arch_free(tensor_spec_list *list);
uint64_t arch_numel(const tensor_spec *spec);

/* Check the files against the expected tensors: every expected tensor present with that
 * shape, nothing unexpected. CANVAS_ERR_INPUT naming the component, tensor and file. */
canvas_status arch_check(const tensor_spec_list *expected, const weight_set *files, const char *component);

#endif
