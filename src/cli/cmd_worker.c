/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_worker.c — `canvas worker`: takes its own flags, then reads the rest as `canvas serve`
 * does (model, LoRAs, limits, memory flags) and hands over to the queue's worker
 * (src/server/queue.h, docs/scale-out.md). */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "base/size_parse.h"
#include "cli/commands.h"
#include "cli/memory_flags.h"
#include "server/queue.h"

static void print_help(FILE *to)
{
    fprintf(to,
            "usage: canvas worker --model DIR --queue redis://HOST:PORT/NAME [options]\n"
            "\n"
            "Keep a model loaded and run the jobs `canvas serve --queue redis://HOST:PORT/NAME` queues\n"
            "on the Redis stream NAME, with any number of other workers on this or other machines\n"
            "(docs/scale-out.md). A job whose worker dies is run again by another one.\n"
            "\n"
            "  --model DIR            diffusers pipeline folder (as canvas edit)\n"
            "  --queue redis://HOST:PORT/NAME  the Redis server and the stream's key\n"
            "  --name NAME            this worker's name in the consumer group (default HOSTNAME-PID)\n"
            "  --visibility SECONDS   a job pending this long on a silent worker goes to another (default 30)\n"
            "  --max-tries N          failed tries before a job goes to the stream NAME:dead (default 3)\n"
            "  --result-ttl SECONDS   how long results stay in Redis (default 86400)\n"
            "  --max-pixels N         largest reference image and output, in pixels (default 16777216);\n"
            "                         larger jobs are left to a worker with room\n"
            "  --steps N              steps when a request gives none (default: the settings file's, else 50)\n"
            "  --lora FILE[:SCALE]    merge a LoRA at load (repeat up to 16; the same list as the front's)\n"
            "  -h, --help             this text\n"
            "\n");
    cli_memory_flags_help(to);
    fprintf(to, "\nSIGTERM or Ctrl-C: the running job is cancelled and handed back to the queue, exit 0.\n"
                "exit codes: 2 usage, 3 out of memory, 4 bad model, 1 other\n");
}

int cmd_worker(int argc, char **argv)
{
    if (argc == 0 || !strcmp(argv[0], "-h") || !strcmp(argv[0], "--help")) {
        print_help(argc ? stdout : stderr);
        return argc ? 0 : 2;
    }
    queue_worker_config w;
    queue_worker_config_default(&w);
    /* this command's flags out; the rest (argv[0..n)) as canvas serve reads them */
    int n = 0, has_queue = 0;
    for (int i = 0; i < argc; i++) {
        const char *flag = argv[i];
        long long v;
        if (!strcmp(flag, "-h") || !strcmp(flag, "--help")) {
            print_help(stdout);
            return 0;
        }
        int ours = !strcmp(flag, "--name") || !strcmp(flag, "--visibility") || !strcmp(flag, "--max-tries") ||
                   !strcmp(flag, "--result-ttl");
        if (!strcmp(flag, "--queue") && i + 1 < argc) {
            if (strncmp(argv[i + 1], "redis://", 8)) return cli_usage_error("worker", "--queue takes redis://HOST:PORT/NAME");
            has_queue = 1;
        }
        if (!ours) {
            argv[n++] = argv[i];
            continue;
        }
        if (i + 1 >= argc) {
            char message[128];
            snprintf(message, sizeof message, "%s needs a value", flag);
            return cli_usage_error("worker", message);
        }
        const char *value = argv[++i];
        if (!strcmp(flag, "--name")) {
            if (!value[0] || strlen(value) > 100) return cli_usage_error("worker", "--name takes 1 to 100 characters");
            w.name = value;
        } else if (!strcmp(flag, "--visibility")) {
            if (!parse_integer(value, 1, 86400, &v)) return cli_usage_error("worker", "--visibility takes 1 to 86400 seconds");
            w.visibility_ms = (int)v * 1000;
        } else if (!strcmp(flag, "--max-tries")) {
            if (!parse_integer(value, 1, 1000, &v)) return cli_usage_error("worker", "--max-tries takes 1 to 1000");
            w.max_tries = (int)v;
        } else {
            if (!parse_integer(value, 1, 365 * 86400, &v)) return cli_usage_error("worker", "--result-ttl takes 1 to 31536000 seconds");
            w.result_ttl_seconds = (int)v;
        }
    }
    if (!has_queue) return cli_usage_error("worker", "missing --queue redis://HOST:PORT/NAME");
    return cli_serve_or_work(n, argv, &w);
}
