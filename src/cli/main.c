/* main.c — `canvas`: a thin command line over libcanvas. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "canvas.h"
#include "cli/commands.h"
#include "mem/mem.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"edit", cmd_edit, "edit images with a Qwen-Image-Edit model (`canvas edit --help`)"},
    {"generate", cmd_generate, "make an image from a prompt (text to image)"},
    {"inspect", cmd_inspect, "validate a model folder and show its parameters and sizes per format"},
    {"convert", cmd_convert, "quantise a model once (`canvas convert MODEL_DIR OUT_DIR --weights nf4`)"},
    {"plan", cmd_plan, "which memory plans fit a run, ranked (`canvas plan --model DIR --vram 24G`, `--viability`)"},
    {"bench", cmd_bench, "the same edit under every preset: predicted vs measured peaks, time, output difference"},
    {"tokenize", cmd_tokenize, "prompts on stdin to token ids, one line each (`canvas tokenize TOKENIZER_DIR`, `--decode`)"},
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

int cli_fail(canvas_status status, const char *context)
{
    /* The library keeps the reason; the status decides the exit code. */
    const char *reason = canvas_last_error();
    fprintf(stderr, "canvas: %s%s%s\n", context ? context : "", context ? ": " : "", reason[0] ? reason : canvas_status_name(status));
    return canvas_exit_code(status);
}

int cli_usage_error(const char *command_name, const char *message)
{
    fprintf(stderr, "canvas %s: %s\n(see `canvas %s --help`)\n", command_name, message, command_name);
    return 2;
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
    /* Tests make the N-th allocation fail through the environment (mem/mem.h). */
    canvas_status fault_status = mem_fault_arm_from_env();
    if (fault_status != CANVAS_OK) return cli_fail(fault_status, NULL);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "canvas: unknown command '%s'\n", argv[1]);
    print_usage(stderr);
    return 2;
}
