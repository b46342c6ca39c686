/* SPDX-License-Identifier: Apache-2.0 */
/* inspect.h — what `canvas inspect` gathers (inspect_gather.c) and prints as a table
 * (inspect_table.c) or as JSON (inspect_json.c). The gathering validates; printing
 * cannot fail except for memory. */
#ifndef CANVAS_CLI_INSPECT_H
#define CANVAS_CLI_INSPECT_H

#include <stdbool.h>
#include <stdint.h>

#include "io/config.h"
#include "models/arch.h"

/* Sizes of a set of tensors. stored_bytes is 0 when the weights are absent. */
typedef struct inspect_sizes {
    uint64_t params;
    int tensors;
    uint64_t stored_bytes;
    uint64_t bytes_as[ARCH_SIZE_FORMAT_COUNT]; /* in each of ARCH_SIZE_FORMATS */
} inspect_sizes;

/* A sub-row of a component: "top level", "blocks 0-59 (each)", "vision tower", ... */
#define INSPECT_MAX_PARTS 128
typedef struct inspect_part {
    char label[48];
    inspect_sizes sizes;
} inspect_part;

typedef enum inspect_state {
    INSPECT_CHECKED = 0,  /* config (and weights when present) read and validated */
    INSPECT_CONFIG_ONLY,  /* a component without tensors (scheduler): config validated */
    INSPECT_LISTED,       /* folder present, not something inspect reads (tokenizer, ...) */
    INSPECT_ABSENT        /* listed in model_index.json, folder missing */
} inspect_state;

typedef struct inspect_component {
    char name[32];              /* "transformer", "vae", "text_encoder", "scheduler", ... */
    char library[32];           /* "diffusers" / "transformers" / "" */
    char class_name[64];
    char dir[4096];
    inspect_state state;
    bool weights_present;
    bool single_file;           /* one file given for the component; its config read from its tensors */
    int n_files;                /* weight files (shards) */
    char dtypes[64];            /* stored dtypes, "F32" or "BF16+F32" */
    char summary[256];          /* one line of config facts */
    inspect_sizes total;
    int n_parts;
    inspect_part parts[INSPECT_MAX_PARTS];
    int n_blocks;               /* transformer only: every block, for JSON */
    inspect_sizes *blocks;
} inspect_component;

typedef struct inspect_dtype_count {
    int tensors;
    uint64_t params;
    uint64_t bytes;
} inspect_dtype_count;

typedef enum inspect_kind { INSPECT_PIPELINE = 0, INSPECT_COMPONENT, INSPECT_FILE } inspect_kind;

typedef struct inspect_report {
    inspect_kind kind;
    const char *path;
    char pipeline_class[64];    /* INSPECT_PIPELINE */
    int n_components;
    inspect_component components[PIPELINE_MAX_COMPONENTS];
    inspect_sizes total;        /* over the checked components */
    /* INSPECT_FILE */
    int file_tensors;
    uint64_t file_params, file_bytes, file_size;
    int file_metadata;
    inspect_dtype_count file_dtypes[DTYPE_COUNT];
} inspect_report;

/* Fill the report for PATH (pipeline folder, component folder or .safetensors file);
 * every failure carries a message naming the file / tensor. */
canvas_status inspect_gather(const char *path, inspect_report *report);
/* The same for components given as single files (each may be NULL; report->path is the
 * first given): each checked against the architecture its tensors imply (models/arch_infer.h). */
canvas_status inspect_gather_files(const char *transformer, const char *text_encoder, const char *vae,
                                   inspect_report *report);
void inspect_report_free(inspect_report *report);

void inspect_print_table(const inspect_report *report);
canvas_status inspect_print_json(const inspect_report *report);

/* A path ending in ".gguf", and `canvas inspect` of one (inspect_gguf.c): prints the report
 * (or the failure) and returns the exit code. */
int inspect_is_gguf(const char *path);
int inspect_gguf(const char *path, int json);

/* "20,430,401,088" */
const char *inspect_commas(uint64_t value, char *buf, size_t size);

#endif
