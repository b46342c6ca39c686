/* SPDX-License-Identifier: Apache-2.0 */
/* memory_flags.h — the memory and profiling flags every running command shares
 * (`canvas debug case`, later `canvas edit` / `generate`), parsed once and set up once:
 *
 *   --device NAME          cuda | cpu | auto: where the model computes (mem_device_choose)
 *   --vram SIZE            a capped device of SIZE plays the GPU (weights + activations)
 *   --ram SIZE             cap on host memory (every host allocation of the process)
 *   --link-bandwidth RATE  throttle copies between host and the device ("16G/s")
 *   --resident-blocks K    keep K transformer blocks on the device, stream the rest
 *   --report FILE.json     memory/time report per phase (docs/memory.md)
 *   --trace FILE.json      Chrome/Perfetto trace of the phases and memory counters
 *   --threads N            worker threads
 *   --strategy NAME        full | fp8 | nf4 | offload | sequential | auto (plan/plan.h)
 *   --allow-quantize       the planner may lower the transformer's precision (fp8, nf4)
 *   --text-encoder-weights FORMAT  the text encoder's layers quantised on load (none: as stored)
 *   --headroom SIZE        device memory the planner keeps free
 *   --no-fallback          no re-planning after an out-of-memory
 *   --config FILE          the YAML config (cli/config_file.h; read before the flags, which win)
 *
 * docs/cli.md documents them for users. */
#ifndef CANVAS_CLI_MEMORY_FLAGS_H
#define CANVAS_CLI_MEMORY_FLAGS_H

#include <stdint.h>
#include <stdio.h>

#include "canvas.h"
#include "mem/mem_device.h"
#include "mem/mem_profiler.h"
#include "pipeline/compute_device.h"

typedef struct cli_memory_flags {
    int device;                 /* a mem_device_choice: --device (auto by default) */
    uint64_t vram_bytes;        /* 0: no device cap (compute on the cpu device) */
    uint64_t ram_bytes;         /* 0: no host cap */
    double link_bytes_per_second; /* 0: unthrottled */
    int resident_blocks;        /* -1: the planner chooses */
    const char *report_path, *trace_path;
    int threads;                /* 0: CANVAS_THREADS, else every online CPU */
    int strategy;               /* a plan_preset (plan/plan.h); PLAN_AUTO by default */
    int allow_quantize;         /* --allow-quantize: the planner may use fp8 / nf4 */
    uint64_t headroom_bytes;    /* --headroom: kept free on the device */
    int headroom_flag;          /* 1: --headroom from the command line (not the settings file) */
    int no_fallback;            /* --no-fallback: an out-of-memory ends the run */
    char strategy_text[96];     /* --strategy as given (a name or a list "offload,fp8"); "": auto */
    int preferred[8];           /* a list: the presets in order (strategy is then PLAN_AUTO) */
    int n_preferred;
    int fp8;                    /* config fp8_enabled: 0 auto (as allow_quantize), 1 true, -1 false */
    int oom_retry_attempts;     /* config oom_retry_attempts; 0: the default (3) */
    const char *config_path;    /* the config file read (cli/config_file.h), NULL: none */
    char text_encoder_weights[16]; /* --text-encoder-weights (a quant_choice_parse name); "": not given */
    int text_encoder_weights_flag; /* 1: from the command line (not the settings file) */
} cli_memory_flags;

void cli_memory_flags_init(cli_memory_flags *flags);

/* Try to parse argv[*i] (and its value) as one of the flags above. Returns 1 when it was
 * one (*i moved past its value), 0 when argv[*i] is not a memory flag, and -1 after
 * printing a usage error naming `command` (exit code 2). */
int cli_memory_flags_parse(cli_memory_flags *flags, int argc, char **argv, int *i, const char *command);

/* --strategy's value (a name or a preference list) into strategy / preferred; CANVAS_ERR_USAGE. */
canvas_status cli_memory_flags_set_strategy(cli_memory_flags *flags, const char *text);

/* Where --device puts the transformer on this machine, by the rule compute_device_open follows
 * (mem_device_choose): *use_cuda 1 for the CUDA GPU; *info is mem_cuda_query's (with devices
 * 0, its reason says why auto chose the CPU: the caller says so). cuda without a usable GPU:
 * CANVAS_ERR_UNSUPPORTED (exit 1) naming the reason, never a CPU run. `edit` and `plan` decide
 * by it alike. */
canvas_status cli_memory_flags_choose_device(const cli_memory_flags *flags, mem_cuda_info *info, int *use_cuda);

/* Check combinations after parsing; 0 ok, -1 after printing a usage error. Where the
 * transformer computes decides three of them (cli_memory_flags_choose_device; `bench` computes
 * on the CPU; cuda without a GPU skips them, the session's begin reports that): on the CPU
 * --link-bandwidth, --resident-blocks and a --headroom from the command line need --vram (the
 * pool that plays the GPU; the settings file's headroom is a default, unused there); on CUDA
 * --resident-blocks and --headroom need no --vram (the GPU's free memory is the budget) and
 * --link-bandwidth is refused (a real link is not throttled). */
int cli_memory_flags_check(const cli_memory_flags *flags, const char *command);

/* A headroom of at least the device's memory leaves the planner nothing (every plan would say
 * "give a device of at least <the headroom>", exit 3): CANVAS_ERR_USAGE naming both, each by
 * where it came from (`headroom_from`: "--headroom", or the settings file's key; `device_from`:
 * "--vram", "--gpu 8G"). CANVAS_OK below it. */
canvas_status cli_memory_flags_check_headroom(uint64_t headroom_bytes, const char *headroom_from, uint64_t device_bytes,
                                              const char *device_from);

/* --resident-blocks above the transformer's `total_blocks`: CANVAS_ERR_USAGE naming the
 * model (`model_label`), the message `canvas edit` and `canvas serve` both give. */
canvas_status cli_memory_flags_check_blocks(const cli_memory_flags *flags, int total_blocks, const char *model_label);

/* The flags' lines for a command's --help. */
void cli_memory_flags_help(FILE *to);

/* What the flags set up for a run: the device the model computes on (the CUDA device, the
 * capped device, or the cpu device) with its op backend, and the profiler watching it and
 * the host. */
typedef struct cli_memory_session {
    mem_device *device;         /* compute.device */
    op_backend *backend;        /* compute.backend: the transformer's op backend; NULL: the CPU's */
    compute_device compute;     /* owned */
    profiler *profiler;
    const cli_memory_flags *flags;
} cli_memory_session;

/* For the commands that run a model on this machine: --threads above the online CPUs and
 * --ram above the physical memory are cut to what the machine has, with a warning on
 * stderr (`canvas plan` keeps them: it may plan for another machine). */
void cli_memory_flags_fit_machine(cli_memory_flags *flags);

/* Cap the host, create the device (compute_device_open: CUDA with its backend, or the capped
 * device with its link), start the profiler. On failure
 * nothing is left set up. */
canvas_status cli_memory_session_begin(const cli_memory_flags *flags, cli_memory_session *session);
/* End the open phase, write --report / --trace (also after a failed run: they show where
 * the memory went), free the device and the profiler, lift the host cap. Returns the
 * first write error. */
canvas_status cli_memory_session_end(cli_memory_session *session);

#endif
