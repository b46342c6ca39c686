/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_serve.c — `canvas serve`: parses the flags and hands over to the server layer
 * (src/server/server.h, docs/server.md). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/path.h"
#include "base/size_parse.h"
#include "base/status.h"
#include "canvas.h"
#include "cli/commands.h"
#include "cli/config_file.h"
#include "cli/memory_flags.h"
#include "cli/output_path.h"
#include "io/config.h"
#include "pipeline/lora.h"
#include "server/queue.h"
#include "server/server.h"

enum { MAX_LORAS = 16 };

static void print_help(FILE *to)
{
    fprintf(to,
            "usage: canvas serve --model DIR [--listen 127.0.0.1:8188] [--api-key KEY] [--queue N] [options]\n"
            "\n"
            "Keep a model loaded and serve it over HTTP: OpenAI-compatible /v1/images/edits and\n"
            "/v1/images/generations, jobs with live events (/v1/jobs), /v1/memory, /v1/plan, /metrics,\n"
            "/healthz and a page at / (docs/server.md). One job runs at a time; the others wait in a queue.\n"
            "\n"
            "  --model DIR            diffusers pipeline folder (as canvas edit)\n"
            "  --listen HOST:PORT     IPv4 address and port (default 127.0.0.1:8188; port 0: any free port,\n"
            "                         printed on stdout). An address other than 127.x needs --api-key\n"
            "  --api-key KEY          clients must send Authorization: Bearer KEY (also $CANVAS_API_KEY)\n"
            "  --queue N              jobs waiting behind the running one (default 16); more answer 429\n"
            "  --queue redis://HOST:PORT/NAME  run no jobs here: queue them on Redis for `canvas worker`s\n"
            "                         (docs/scale-out.md); the model folder is read for its config only\n"
            "  --max-body SIZE        largest request body (default 64M); larger answer 413\n"
            "  --max-pixels N         largest reference image and output, in pixels (default 16777216)\n"
            "  --jobs-kept N          finished jobs kept for GET /v1/jobs/{id} (default 256, for an hour)\n"
            "  --steps N              steps when a request gives none (default: the settings file's, else 50)\n"
            "  --lora FILE[:SCALE]    merge a LoRA at load (repeat up to 16); requests may set its strength\n"
            "                         with lora_scale or lora=NAME:SCALE (a reload when it changes)\n"
            "  --lora-dir DIR         LoRAs requests may name (field lora=NAME[:SCALE],...): every\n"
            "                         *.safetensors in DIR, known by its file name without the extension;\n"
            "                         each checked at start, merged only for the jobs that name it\n"
            "  -h, --help             this text\n"
            "\n");
    cli_memory_flags_help(to);
    fprintf(to, "\n--report / --trace are written when the server stops (the last job's phases).\n"
                "SIGTERM or Ctrl-C: the running job is cancelled at its next step, queued ones answer 503,\n"
                "exit 0. exit codes: 2 usage, 3 out of memory, 4 bad model, 1 other (cannot listen)\n");
}


/* --resident-blocks against the transformer's config, before the server starts: the check and
 * message `canvas edit` gives after loading (a config that cannot be read is left to the load,
 * which names what is wrong; so is --device cuda without a usable GPU: its exit 1 comes first,
 * as edit's does). */
static canvas_status check_resident_blocks(const cli_memory_flags *memory, const char *model_dir)
{
    char path[PATH_BUFFER_SIZE];
    qwen_dit_config config;
    mem_cuda_info gpu;
    int use_cuda;
    if (memory->resident_blocks < 0) return CANVAS_OK;
    if (cli_memory_flags_choose_device(memory, &gpu, &use_cuda) != CANVAS_OK) {
        status_clear();
        return CANVAS_OK;
    }
    if (path_join(path, sizeof path, model_dir, "transformer/config.json") != CANVAS_OK ||
        qwen_dit_config_load(path, &config) != CANVAS_OK) {
        status_clear();
        return CANVAS_OK;
    }
    return cli_memory_flags_check_blocks(memory, config.num_layers, model_dir);
}

/* --report and --trace are written at the stop, perhaps days later: checked before the model
 * loads, as `canvas edit` checks them (a FIFO, a folder, a file the server reads: exit 2). */
static int check_outputs(const char *command, const cli_memory_flags *memory, const char *model_dir,
                         const canvas_lora *loras, int n_loras)
{
    const char *files[MAX_LORAS + 3];
    int n = 0;
    for (int i = 0; i < n_loras; i++) files[n++] = loras[i].path;
    files[n++] = memory->config_path;
    files[n++] = memory->report_path;
    files[n++] = memory->trace_path;
    if (memory->report_path && cli_check_output(command, "--report", memory->report_path, cli_json_extensions, files,
                                                n, model_dir, "model"))
        return 2;
    if (memory->trace_path && cli_check_output(command, "--trace", memory->trace_path, cli_json_extensions, files, n,
                                               model_dir, "model"))
        return 2;
    return 0;
}

int cmd_serve(int argc, char **argv) { return cli_serve_or_work(argc, argv, NULL); }

int cli_serve_or_work(int argc, char **argv, const struct queue_worker_config *worker)
{
    const char *command = worker ? "worker" : "serve";
    if (argc > 0 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))) {
        if (!worker) print_help(stdout);
        return 0;
    }
    if (argc == 0) {
        if (!worker) print_help(stderr);
        return 2;
    }
    server_config c;
    server_config_default(&c);
    cli_memory_flags memory;
    cli_memory_flags_init(&memory);
    cli_edit_defaults defaults;
    int code = cli_config_apply(argc, argv, command, &memory, &defaults);
    if (code) return code;
    c.default_steps = defaults.steps;
    static char lora_paths[MAX_LORAS][4096];
    static canvas_lora loras[MAX_LORAS];
    int n_loras = 0;
    const char *key = getenv("CANVAS_API_KEY");
    c.api_key = key && key[0] ? key : NULL;
    for (int i = 0; i < argc; i++) {
        int memory_flag = cli_memory_flags_parse(&memory, argc, argv, &i, command);
        if (memory_flag < 0) return 2;
        if (memory_flag > 0) continue;
        const char *flag = argv[i];
        if (!strcmp(flag, "-h") || !strcmp(flag, "--help")) {
            if (!worker) print_help(stdout);
            return 0;
        }
        static const char *const valued[] = {"--model", "--listen", "--api-key", "--queue", "--max-body",
                                             "--max-pixels", "--jobs-kept", "--steps", "--lora", "--lora-dir"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) known |= !strcmp(flag, valued[k]);
        char message[512];
        if (!known) {
            snprintf(message, sizeof message, "unknown option '%s'", flag);
            return cli_usage_error(command, message);
        }
        if (i + 1 >= argc) {
            snprintf(message, sizeof message, "%s needs a value", flag);
            return cli_usage_error(command, message);
        }
        const char *value = argv[++i];
        /* a worker listens to no one: what only a front does would be a silent no-op there */
        if (worker && (!strcmp(flag, "--listen") || !strcmp(flag, "--api-key") || !strcmp(flag, "--max-body") ||
                       !strcmp(flag, "--jobs-kept") || (!strcmp(flag, "--queue") && strncmp(value, "redis://", 8)))) {
            snprintf(message, sizeof message, "%s is a canvas serve flag: a worker takes no HTTP requests", flag);
            return cli_usage_error(command, message);
        }
        long long n;
        uint64_t bytes;
        if (!strcmp(flag, "--model")) {
            c.model_dir = value;
        } else if (!strcmp(flag, "--listen")) {
            c.listen = value;
        } else if (!strcmp(flag, "--lora-dir")) {
            if (!value[0]) return cli_usage_error(command, "--lora-dir is empty");
            c.lora_dir = value;
        } else if (!strcmp(flag, "--api-key")) {
            if (!value[0]) return cli_usage_error(command, "--api-key is empty");
            c.api_key = value;
        } else if (!strcmp(flag, "--queue") && !strncmp(value, "redis://", 8)) {
            c.queue_url = value; /* scale-out: the jobs go to canvas workers (docs/scale-out.md) */
        } else if (!strcmp(flag, "--queue")) {
            if (!parse_integer(value, 1, 100000, &n)) return cli_usage_error(command, "--queue takes 1 to 100000 or redis://HOST:PORT/NAME");
            c.queue_max = (int)n;
        } else if (!strcmp(flag, "--max-body")) {
            if (size_parse(value, "--max-body", &bytes) != CANVAS_OK || bytes < 1024 || bytes > ((uint64_t)4 << 30))
                return cli_usage_error(command, "--max-body takes a size from 1K to 4G");
            c.max_body_bytes = (size_t)bytes;
        } else if (!strcmp(flag, "--max-pixels")) {
            if (!parse_integer(value, 256, (long long)1 << 28, &n)) return cli_usage_error(command, "--max-pixels takes 256 to 268435456");
            c.max_image_pixels = n;
        } else if (!strcmp(flag, "--jobs-kept")) {
            if (!parse_integer(value, 1, 1000000, &n)) return cli_usage_error(command, "--jobs-kept takes 1 to 1000000");
            c.jobs_kept = (int)n;
        } else if (!strcmp(flag, "--lora")) {
            if (n_loras == MAX_LORAS) return cli_usage_error(command, "too many --lora (at most 16)");
            if (lora_spec_parse(value, lora_paths[n_loras], sizeof lora_paths[n_loras], &loras[n_loras].scale) != CANVAS_OK)
                return cli_usage_error(command, "--lora takes FILE or FILE:SCALE with a finite SCALE");
            loras[n_loras].path = lora_paths[n_loras];
            n_loras++;
        } else if (!strcmp(flag, "--steps")) {
            if (!parse_integer(value, 1, 1000, &n)) return cli_usage_error(command, "--steps takes 1 to 1000");
            c.default_steps = (int)n;
        }
    }
    if (!c.model_dir) return cli_usage_error(command, "missing --model DIR");
    if (cli_memory_flags_check(&memory, command) < 0) return 2;
    if (check_outputs(command, &memory, c.model_dir, loras, n_loras)) return 2;
    if (check_resident_blocks(&memory, c.model_dir) != CANVAS_OK) return cli_fail(CANVAS_ERR_USAGE, command);
    uint32_t address;
    uint16_t port;
    int loopback;
    if (server_parse_listen(c.listen, &address, &port, &loopback) != CANVAS_OK)
        return cli_usage_error(command, canvas_last_error());
    if (!loopback && !c.api_key) {
        char message[512];
        snprintf(message, sizeof message, "--listen %s is not a loopback address: give --api-key KEY", c.listen);
        return cli_usage_error(command, message);
    }
    canvas_options *o = &c.options;
    o->device = mem_device_choice_name((mem_device_choice)memory.device);
    o->vram_bytes = memory.vram_bytes;
    o->ram_bytes = memory.ram_bytes;
    o->link_bytes_per_second = memory.link_bytes_per_second;
    o->resident_blocks = memory.resident_blocks;
    o->threads = memory.threads;
    o->loras = loras;
    o->n_loras = n_loras;
    o->strategy = memory.strategy_text[0] ? memory.strategy_text : NULL;
    o->allow_quantize = memory.allow_quantize;
    o->fp8 = memory.fp8;
    o->headroom_bytes = memory.headroom_bytes;
    o->no_fallback = memory.no_fallback;
    o->oom_retry_attempts = memory.oom_retry_attempts;
    c.report_path = memory.report_path;
    c.trace_path = memory.trace_path;
    canvas_status st = worker ? queue_worker_run(&c, worker) : server_run(&c);
    return st == CANVAS_OK ? 0 : cli_fail(st, command);
}
