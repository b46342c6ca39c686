/* SPDX-License-Identifier: Apache-2.0 */
/* memory_flags.c — parsing and setting up the shared memory/profiling flags. */
#include "cli/memory_flags.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/size_parse.h"
#include "base/status.h"
#include "base/sysinfo.h"
#include "cli/commands.h"
#include "io/profiler_json.h"
#include "plan/plan.h"
#include "tensor/quant.h"

void cli_memory_flags_init(cli_memory_flags *flags)
{
    memset(flags, 0, sizeof *flags);
    flags->resident_blocks = -1;
    flags->strategy = PLAN_AUTO;
}

void cli_memory_flags_help(FILE *to)
{
    fprintf(to,
            "memory and profiling:\n"
            "  --device NAME          cuda | cpu | auto (default auto: CUDA when a GPU is present, else the CPU).\n"
            "                         On CUDA the transformer, the text encoder and each VAE pass that fits\n"
            "                         compute on the GPU (a VAE pass that does not: the CPU, said in a plan\n"
            "                         line). cuda without a usable GPU is an error (exit 1), never a CPU run\n"
            "  --vram SIZE            device memory cap (512M, 6G, 6GiB; K/M/G/T are binary, KB/MB/GB decimal).\n"
            "                         On CUDA it caps the GPU's region; on the CPU a pool of SIZE plays the GPU.\n"
            "                         Weights and activations live there and the run fails with exit code 3 if\n"
            "                         they do not fit. Default: on CUDA the GPU's free memory; on the CPU no\n"
            "                         device, the model computes in host memory and reads weights from the files\n"
            "  --ram SIZE             cap on host memory (every allocation of the process; mapped files excluded);\n"
            "                         more than the machine's memory is cut to it, with a warning\n"
            "  --link-bandwidth RATE  throttle copies between host and device to RATE (16G/s, 400M/s);\n"
            "                         needs --vram on the CPU; refused on CUDA (a GPU's link is not throttled)\n"
            "  --resident-blocks K    keep the first K transformer blocks on the device and stream the others\n"
            "                         through two buffers; needs --vram on the CPU, on CUDA the budget is --vram\n"
            "                         or else the GPU's free memory. Default: the largest K whose dry run fits\n"
            "                         in that budget next to the streaming buffers and the activations\n"
            "  --report FILE.json     write peaks per phase (device, host, pinned), transfers and times\n"
            "  --trace FILE.json      write a Chrome trace (open it in https://ui.perfetto.dev)\n"
            "  --strategy NAME        full | fp8 | nf4 | offload | sequential | auto (default auto: the fastest\n"
            "                         plan that fits, by dry runs; `canvas plan` shows them all), or a list\n"
            "                         in order of preference (offload,fp8: the first that fits)\n"
            "  --allow-quantize       let the planner quantise the transformer (fp8, nf4) below the files'\n"
            "                         precision (default: never lower than the files)\n"
            "  --text-encoder-weights FORMAT  the text encoder's layers quantised on load: none (as stored),\n"
            "                         fp8, fp8-channel, fp8-e5m2, nf4 or q8 (default: as stored, or fp8 / nf4\n"
            "                         with --strategy fp8 / nf4 when quantising is allowed)\n"
            "  --headroom SIZE        device memory the planner keeps unused (default 0); needs --vram on the CPU\n"
            "  --no-fallback          an out-of-memory ends the run (default: release, re-plan, redo the step)\n"
            "\n"
            "threads and settings:\n"
            "  --threads N            worker threads (default: CANVAS_THREADS, else every online CPU); more\n"
            "                         than the online CPUs is cut to them, with a warning\n"
            "  --config FILE          YAML settings (docs/config.md); default ./canvas.yaml, else\n"
            "                         $XDG_CONFIG_HOME/canvas/config.yaml (~/.config when unset); flags given\n"
            "                         here win over it; stderr says which file was read\n"
            "\n"
            "Every option also takes its value as --option=VALUE.\n");
}

static int usage(const char *command, const char *message)
{
    cli_usage_error(command, message);
    return -1;
}

/* The value after a flag, or NULL after printing a usage error. */
static const char *value_of(int argc, char **argv, int *i, const char *command, const char *what)
{
    if (*i + 1 >= argc) {
        char message[128];
        snprintf(message, sizeof message, "%s needs %s", argv[*i], what);
        usage(command, message);
        return NULL;
    }
    return argv[++*i];
}

/* A size flag: the parse error (it quotes the text) is the usage message. */
static int parse_size(const char *text, const char *flag, const char *command, uint64_t *out)
{
    if (size_parse(text, flag, out) != CANVAS_OK) return usage(command, canvas_last_error());
    if (*out == 0) {
        char message[128];
        snprintf(message, sizeof message, "%s must be more than 0 bytes", flag);
        return usage(command, message);
    }
    return 1;
}

static int parse_count(const char *text, const char *flag, long low, long high, const char *command, int *out)
{
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno || *end || end == text || n < low || n > high) {
        char message[128];
        snprintf(message, sizeof message, "%s takes a whole number from %ld to %ld (got '%s')", flag, low, high, text);
        return usage(command, message);
    }
    *out = (int)n;
    return 1;
}

canvas_status cli_memory_flags_set_strategy(cli_memory_flags *flags, const char *text)
{
    plan_preset list[8];
    int n;
    TRY(plan_preset_list_parse(text, list, 8, &n));
    if (strlen(text) >= sizeof flags->strategy_text)
        return status_fail(CANVAS_ERR_USAGE, "strategy '%s' is too long", text);
    snprintf(flags->strategy_text, sizeof flags->strategy_text, "%s", text);
    flags->strategy = n == 1 ? list[0] : PLAN_AUTO;
    flags->n_preferred = n == 1 ? 0 : n;
    for (int i = 0; i < n && n > 1; i++) flags->preferred[i] = list[i];
    return CANVAS_OK;
}

int cli_memory_flags_parse(cli_memory_flags *flags, int argc, char **argv, int *i, const char *command)
{
    const char *flag = argv[*i], *value;
    if (!strcmp(flag, "--device")) {
        mem_device_choice choice;
        if (!(value = value_of(argc, argv, i, command, "cuda, cpu or auto"))) return -1;
        if (mem_device_choice_parse(value, &choice) != CANVAS_OK) return usage(command, canvas_last_error());
        flags->device = (int)choice;
        return 1;
    }
    if (!strcmp(flag, "--vram")) {
        if (!(value = value_of(argc, argv, i, command, "a size (6G)"))) return -1;
        return parse_size(value, flag, command, &flags->vram_bytes);
    }
    if (!strcmp(flag, "--ram")) {
        if (!(value = value_of(argc, argv, i, command, "a size (16G)"))) return -1;
        return parse_size(value, flag, command, &flags->ram_bytes);
    }
    if (!strcmp(flag, "--link-bandwidth")) {
        if (!(value = value_of(argc, argv, i, command, "a rate (16G/s)"))) return -1;
        if (size_parse_rate(value, flag, &flags->link_bytes_per_second) != CANVAS_OK)
            return usage(command, canvas_last_error());
        return 1;
    }
    if (!strcmp(flag, "--resident-blocks")) {
        if (!(value = value_of(argc, argv, i, command, "a number of blocks"))) return -1;
        return parse_count(value, flag, 0, 1 << 20, command, &flags->resident_blocks);
    }
    if (!strcmp(flag, "--report") || !strcmp(flag, "--trace")) {
        if (!(value = value_of(argc, argv, i, command, "a file name"))) return -1;
        if (flag[2] == 'r') flags->report_path = value;
        else flags->trace_path = value;
        return 1;
    }
    if (!strcmp(flag, "--strategy")) {
        if (!(value = value_of(argc, argv, i, command, "a strategy (auto)"))) return -1;
        if (cli_memory_flags_set_strategy(flags, value) != CANVAS_OK) return usage(command, canvas_last_error());
        return 1;
    }
    if (!strcmp(flag, "--config")) { /* read before the flags (cli/config_file.c): skipped here */
        if (!(value = value_of(argc, argv, i, command, "a file name"))) return -1;
        return 1;
    }
    if (!strcmp(flag, "--allow-quantize") || !strcmp(flag, "--no-fallback")) {
        if (flag[2] == 'a') flags->allow_quantize = 1;
        else flags->no_fallback = 1;
        return 1;
    }
    if (!strcmp(flag, "--headroom")) {
        if (!(value = value_of(argc, argv, i, command, "a size (512M)"))) return -1;
        if (size_parse(value, flag, &flags->headroom_bytes) != CANVAS_OK) return usage(command, canvas_last_error());
        flags->headroom_flag = 1;
        return 1;
    }
    if (!strcmp(flag, "--text-encoder-weights")) {
        quant_choice format;
        if (!(value = value_of(argc, argv, i, command, "a weight format (fp8)"))) return -1;
        if (quant_choice_parse(value, &format) != CANVAS_OK) return usage(command, canvas_last_error());
        snprintf(flags->text_encoder_weights, sizeof flags->text_encoder_weights, "%s", quant_choice_name(format));
        flags->text_encoder_weights_flag = 1;
        return 1;
    }
    if (!strcmp(flag, "--threads")) {
        if (!(value = value_of(argc, argv, i, command, "a number"))) return -1;
        return parse_count(value, flag, 1, 4096, command, &flags->threads);
    }
    return 0;
}

canvas_status cli_memory_flags_choose_device(const cli_memory_flags *flags, mem_cuda_info *info, int *use_cuda)
{
    memset(info, 0, sizeof *info);
    *use_cuda = 0;
    if (flags->device == MEM_DEVICE_CHOICE_CPU) return CANVAS_OK; /* no GPU asked about */
    TRY(mem_device_choose((mem_device_choice)flags->device, use_cuda));
    mem_cuda_query(info);
    return CANVAS_OK;
}

/* The settings file's key for --headroom (docs/config.md). */
#define HEADROOM_SETTING "the settings file's memory_threshold_mb"

int cli_memory_flags_check(const cli_memory_flags *flags, const char *command)
{
    /* 1: the CUDA GPU, 0: the CPU, -1: cuda asked for and missing (cli_memory_session_begin says
     * so). bench runs its presets on the CPU whatever --device says (a --vram pool plays the GPU). */
    int where = 0;
    const int on_cpu = flags->device == MEM_DEVICE_CHOICE_CPU || !strcmp(command, "bench");
    const int headroom = flags->headroom_flag && flags->headroom_bytes;
    if (!on_cpu && (flags->resident_blocks >= 0 || flags->link_bytes_per_second > 0 || flags->headroom_bytes)) {
        mem_cuda_info info;
        int use_cuda;
        if (cli_memory_flags_choose_device(flags, &info, &use_cuda) == CANVAS_OK) {
            where = use_cuda;
        } else {
            status_clear();
            where = -1;
        }
    }
    if (where == 1 && flags->link_bytes_per_second > 0)
        return usage(command, "--link-bandwidth throttles the pool that plays a GPU on the CPU (--device cpu --vram); "
                              "a CUDA GPU's copies run at its own link's speed");
    if (where == 0 && !flags->vram_bytes && flags->link_bytes_per_second > 0)
        return usage(command, "--link-bandwidth needs --vram (without a device there is no link to throttle)");
    if (where == 0 && !flags->vram_bytes && flags->resident_blocks >= 0)
        return usage(command, "--resident-blocks needs --vram or a CUDA GPU (without a device every block is read "
                              "in place)");
    if (where == 0 && !flags->vram_bytes && headroom)
        return usage(command, "--headroom needs --vram or a CUDA GPU (without a device there is no device memory to "
                              "keep free)");
    if (where >= 0 && flags->vram_bytes &&
        cli_memory_flags_check_headroom(flags->headroom_bytes, flags->headroom_flag ? "--headroom" : HEADROOM_SETTING,
                                        flags->vram_bytes, "--vram") != CANVAS_OK)
        return usage(command, canvas_last_error());
    if (flags->text_encoder_weights_flag && strcmp(command, "edit") && strcmp(command, "generate"))
        return usage(command, "--text-encoder-weights is for edit and generate with --prompt (nothing is encoded here)");
    if (flags->report_path && flags->trace_path && !strcmp(flags->report_path, flags->trace_path))
        return usage(command, "--report and --trace name the same file");
    return 0;
}

canvas_status cli_memory_flags_check_headroom(uint64_t headroom_bytes, const char *headroom_from, uint64_t device_bytes,
                                              const char *device_from)
{
    if (headroom_bytes < device_bytes) return CANVAS_OK;
    char headroom[32], device[32];
    return status_fail(CANVAS_ERR_USAGE, "%s (%s) keeps all of %s (%s) unused: give a headroom below the device's memory",
                       headroom_from, size_format(headroom_bytes, headroom, sizeof headroom), device_from,
                       size_format(device_bytes, device, sizeof device));
}

canvas_status cli_memory_flags_check_blocks(const cli_memory_flags *flags, int total_blocks, const char *model_label)
{
    if (flags->resident_blocks > total_blocks)
        return status_fail(CANVAS_ERR_USAGE, "--resident-blocks %d: the transformer of %s has %d blocks",
                           flags->resident_blocks, model_label, total_blocks);
    return CANVAS_OK;
}

void cli_memory_flags_fit_machine(cli_memory_flags *flags)
{
    int online = sysinfo_online_cpus();
    if (online >= 1 && flags->threads > online) {
        cli_warn("--threads %d is more than the %d online CPUs: using %d (more threads than cores spin against "
                 "each other)", flags->threads, online, online);
        flags->threads = online;
    }
    uint64_t total = 0;
    if (sysinfo_mem_total(&total) != CANVAS_OK) status_clear();
    else if (total && flags->ram_bytes > total) {
        char asked[32], have[32];
        size_format(flags->ram_bytes, asked, sizeof asked);
        size_format(total, have, sizeof have);
        cli_warn("--ram %s is more than this machine's %s: planning for %s", asked, have, have);
        flags->ram_bytes = total;
    }
}

canvas_status cli_memory_session_begin(const cli_memory_flags *flags, cli_memory_session *session)
{
    memset(session, 0, sizeof *session);
    session->flags = flags;
    canvas_status st = compute_device_open((mem_device_choice)flags->device, flags->vram_bytes,
                                           flags->link_bytes_per_second, &session->compute);
    if (st != CANVAS_OK) return st;
    session->device = session->compute.device;
    session->backend = session->compute.backend;
    if (flags->ram_bytes) st = mem_device_set_cap(mem_device_cpu(), (size_t)flags->ram_bytes);
    if (st == CANVAS_OK) st = profiler_create(session->device, mem_device_cpu(), &session->profiler);
    if (st != CANVAS_OK) {
        mem_device_set_cap(mem_device_cpu(), 0);
        compute_device_close(&session->compute);
        session->device = NULL;
        session->backend = NULL;
    }
    return st;
}

canvas_status cli_memory_session_end(cli_memory_session *session)
{
    canvas_status st = CANVAS_OK;
    if (session->profiler) {
        profiler_end(session->profiler);
        if (session->flags->report_path) st = profiler_write_report(session->profiler, session->flags->report_path);
        if (session->flags->trace_path) {
            canvas_status trace = profiler_write_trace(session->profiler, session->flags->trace_path);
            if (st == CANVAS_OK) st = trace;
        }
        profiler_destroy(session->profiler);
        session->profiler = NULL;
    }
    compute_device_close(&session->compute);
    session->device = NULL;
    session->backend = NULL;
    if (session->flags && session->flags->ram_bytes) mem_device_set_cap(mem_device_cpu(), 0);
    return st;
}
