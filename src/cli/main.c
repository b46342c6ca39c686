/* SPDX-License-Identifier: Apache-2.0 */
/* main.c — `canvas`: a thin command line over libcanvas. */
#define _XOPEN_SOURCE 700 /* realpath, setenv */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "canvas.h"
#include "cli/commands.h"
#include "base/sysinfo.h"
#include "mem/mem.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

int cmd_serve(int argc, char **argv); /* cmd_serve.c */

static const command commands[] = {
    {"edit", cmd_edit, "edit images with a Qwen-Image-Edit model (`canvas edit --help`)"},
    {"generate", cmd_generate, "make an image from a prompt (text to image)"},
    {"inspect", cmd_inspect, "validate a model folder and show its parameters and sizes per format"},
    {"convert", cmd_convert, "quantise a model once (`canvas convert MODEL_DIR OUT_DIR --weights nf4`)"},
    {"plan", cmd_plan, "which memory plans fit a run, ranked (`canvas plan --model DIR --vram 24G`, `--viability`)"},
    {"bench", cmd_bench, "the same edit under every preset: predicted vs measured peaks, time, output difference"},
    {"tokenize", cmd_tokenize, "prompts on stdin to token ids, one line each (`canvas tokenize TOKENIZER_DIR`, `--decode`)"},
    {"serve", cmd_serve, "keep a model loaded and serve it over HTTP (`canvas serve --model DIR`, docs/server.md)"},
    {"worker", cmd_worker, "run the jobs `canvas serve --queue redis://...` queues, beside other workers (docs/scale-out.md)"},
    {"debug", cmd_debug, "run a golden case (`canvas debug case CASE_DIR --out OUT.safetensors [--vram SIZE ...]`)"},
};

static void print_usage(FILE *to)
{
    fprintf(to, "usage: canvas <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(to, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(to, "\n`canvas <command> --help` describes a command's options (docs/cli.md has them all).\n"
                "exit codes: 0 ok, 2 usage, 3 out of memory, 4 bad input, 1 other\n");
}

/* The command being run, for the "canvas <command>: " prefix of every message. */
static const char *current_command = "";

void cli_set_command(const char *name) { current_command = name; }

/* One line to stderr. Messages quote names from files (tensors, keys, paths) that anyone
 * may have written: control characters (a terminal's escape sequences, a newline that would
 * forge a second line) are printed as \xNN. */
static void say(const char *kind, const char *fmt, va_list args)
{
    char line[4096];
    vsnprintf(line, sizeof line, fmt, args);
    fprintf(stderr, "canvas%s%s: %s", current_command[0] ? " " : "", current_command, kind);
    for (const unsigned char *c = (const unsigned char *)line; *c; c++)
        if (*c < 0x20 || *c == 0x7f) fprintf(stderr, "\\x%02x", *c);
        else fputc(*c, stderr);
    fputc('\n', stderr);
}

void cli_warn(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    say("warning: ", fmt, args);
    va_end(args);
}

void cli_note(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    say("", fmt, args);
    va_end(args);
}

static void cli_error(const char *fmt, ...) CANVAS_CLI_PRINTF(1, 2);
static void cli_error(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    say("error: ", fmt, args);
    va_end(args);
}

int cli_fail(canvas_status status, const char *context)
{
    /* The library keeps the reason; the status decides the exit code. */
    const char *reason = canvas_last_error();
    if (context && !strcmp(context, current_command)) context = NULL; /* the prefix says it */
    cli_error("%s%s%s", context ? context : "", context ? ": " : "", reason[0] ? reason : canvas_status_name(status));
    return canvas_exit_code(status);
}

int cli_usage_error(const char *command_name, const char *message)
{
    (void)command_name; /* the prefix names the command being run */
    cli_error("%s (see `canvas %s --help`)", message, current_command);
    return 2;
}

/* `--opt=value` as two arguments, `--opt value`, for every command: the text is split at
 * its first '=' in place (argv's strings are writable). A value that itself starts with
 * "--" and holds '=' can therefore be given only as `--opt=--a=b`. NULL when nothing is
 * split (argv is used as it is) or on out of memory (reported). */
static char **split_equals(int *argc, char **argv, canvas_status *st)
{
    int n_split = 0;
    for (int i = 0; i < *argc; i++)
        if (!strncmp(argv[i], "--", 2) && argv[i][2] != '=' && strchr(argv[i], '=')) n_split++;
    *st = CANVAS_OK;
    if (!n_split) return NULL;
    char **out;
    *st = mem_alloc((void **)&out, ((size_t)*argc + (size_t)n_split + 1) * sizeof *out, MEM_SCRATCH);
    if (*st != CANVAS_OK) return NULL;
    int n = 0;
    for (int i = 0; i < *argc; i++) {
        char *eq = strncmp(argv[i], "--", 2) || argv[i][2] == '=' ? NULL : strchr(argv[i], '=');
        out[n++] = argv[i];
        if (eq) {
            *eq = '\0';
            out[n++] = eq + 1;
        }
    }
    out[n] = NULL;
    *argc = n;
    return out;
}

/* CANVAS_THREADS is read by the library, which ignores a value it cannot use: here a bad
 * one is a usage error and one above the CPUs is cut to them (more threads than cores
 * spin against each other: a run many times slower). 0 or the exit code. */
static int check_thread_environment(void)
{
    const char *text = getenv("CANVAS_THREADS");
    if (!text || !text[0]) return 0;
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno || *end || n < 1 || n > 4096) {
        cli_error("CANVAS_THREADS=%s: a whole number of threads from 1 to 4096 expected", text);
        return 2;
    }
    int online = sysinfo_online_cpus();
    if (online >= 1 && n > online) {
        cli_warn("CANVAS_THREADS=%ld is more than the %d online CPUs: using %d", n, online, online);
        char value[16];
        snprintf(value, sizeof value, "%d", online);
        setenv("CANVAS_THREADS", value, 1);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("canvas %s\n", CANVAS_VERSION);
        return 0;
    }
    const command *chosen = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) chosen = &commands[i];
    if (!chosen) {
        cli_error("unknown command '%s'", argv[1]);
        print_usage(stderr);
        return 2;
    }
    current_command = chosen->name;
    int code = check_thread_environment();
    if (code) return code;
    /* before the fault injector is armed: this allocation is not one a test counts */
    int n = argc - 2;
    canvas_status st;
    char **split = split_equals(&n, argv + 2, &st);
    if (st != CANVAS_OK) return cli_fail(st, NULL);
    /* Tests make the N-th allocation fail through the environment (mem/mem.h). */
    canvas_status fault_status = mem_fault_arm_from_env();
    if (fault_status != CANVAS_OK) code = cli_fail(fault_status, NULL);
    else code = chosen->run(n, split ? split : argv + 2);
    mem_free(split);
    return code;
}
