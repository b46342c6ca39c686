/* cmd_edit.c — `canvas edit` and `canvas generate`: a thin layer over the public API
 * (canvas_open, canvas_prompt_load, canvas_image_load, canvas_edit / canvas_generate,
 * canvas_image_save_png). Parses flags, draws progress, maps statuses to exit codes. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/status.h"
#include "canvas.h"
#include "cli/commands.h"
#include "cli/config_file.h"
#include "cli/memory_flags.h"
#include "io/file_read.h"
#include "io/image.h"
#include "pipeline/lora.h"
#include "pipeline/progress.h"

enum { MAX_IMAGES = 16, MAX_LORAS = 16, LORA_PATH_SIZE = 4096 };

typedef struct edit_args {
    int generate;               /* 1: canvas generate (no --image) */
    const char *command;        /* "edit" / "generate" */
    const char *model, *prompt_embeds, *prompt_text, *negative_text, *save_embeds, *output;
    const char *images[MAX_IMAGES];
    int n_images;
    canvas_edit_params params;
    char lora_paths[MAX_LORAS][LORA_PATH_SIZE];
    canvas_lora loras[MAX_LORAS];   /* --lora FILE[:scale], in order */
    int n_loras;
    int lightning;                  /* --lightning 4|8, 0 when not given */
    int steps_given, cfg_given;     /* --steps / --cfg given: they win over --lightning */
    int json_progress, force_progress;
    cli_memory_flags memory;
} edit_args;

static void print_help(FILE *to, int generate)
{
    canvas_edit_params defaults;
    canvas_edit_params_default(&defaults);
    if (generate)
        fprintf(to, "usage: canvas generate --model DIR (--prompt TEXT | --prompt-embeds FILE) -o OUT.png [options]\n"
                    "\n"
                    "Text to image with a Qwen-Image(-Edit) model folder: the denoising loop of the edit\n"
                    "pipeline without reference images.\n");
    else
        fprintf(to, "usage: canvas edit --model DIR --image IMG [--image IMG2 ...] (--prompt TEXT | --prompt-embeds FILE)\n"
                    "           -o OUT.png [options]\n"
                    "\n"
                    "Edit images with a Qwen-Image-Edit model folder (the Edit-Plus pipeline: every image is a\n"
                    "reference; the output takes the last image's aspect ratio).\n");
    fprintf(to,
            "\n"
            "input and output:\n"
            "  --model DIR            diffusers pipeline folder (model_index.json, transformer/, vae/, scheduler/)\n");
    if (!generate)
        fprintf(to, "  --image IMG            reference image (PNG, JPEG or WebP); repeat for several (up to %d)\n",
                MAX_IMAGES);
    fprintf(to,
            "  --prompt TEXT          the instruction, encoded by the model folder's tokenizer/ and text_encoder/\n"
            "                         as its pipeline does (docs/text-encoder.md)\n"
            "  --negative-prompt TEXT the negative prompt for true CFG (default \" \" when --cfg > 1, as the\n"
            "                         reference pipelines are used; give --cfg 1 to run without CFG)\n"
            "  --save-embeds FILE     also write the encoded prompt(s) as a --prompt-embeds safetensors file\n"
            "  --prompt-embeds FILE   instead of --prompt: safetensors with prompt_embeds [1, L, D] and optionally\n"
            "                         negative_prompt_embeds [1, L', D] (+ *_mask [1, L]); the negative turns on\n"
            "                         true CFG when --cfg > 1\n"
            "  -o, --output OUT.png   where to write the 8-bit RGB PNG (written to a temporary file, then\n"
            "                         renamed; never one of the inputs)\n"
            "\n"
            "sampling (defaults: the reference pipeline's):\n"
            "  --steps N              denoising steps (default %d; the 2511 model card uses 40)\n"
            "  --cfg X                true CFG scale (default %.1f; used when > 1 and a negative prompt is given)\n"
            "  --seed S               noise seed, 0 to 2^64-1 (default 0; Philox4x32-10, docs/pipeline.md)\n"
            "\n"
            "LoRA (docs/lora.md):\n"
            "  --lora FILE[:SCALE]    merge a LoRA into the transformer at load (scale default 1); repeat to\n"
            "                         stack up to %d. Namings: diffusers/PEFT, kohya, lightx2v, ComfyUI (from the\n"
            "                         keys); an unknown or mismatched key is an error (exit 4)\n"
            "  --lightning 4|8        preset for the Qwen-Image-Lightning LoRAs (give the file with --lora):\n"
            "                         that many steps, cfg 1, the Lightning scheduler (fixed shift 3);\n"
            "                         an explicit --steps or --cfg wins\n",
            defaults.steps, (double)defaults.cfg, MAX_LORAS);
    if (!generate)
        fprintf(to, "  --vae-area PIXELS      area each reference is resized to, aspect kept, sides multiples of 32\n"
                    "                         (default 1048576 = 1024x1024; also WxH, e.g. 512x512)\n"
                    "  --width W --height H   output size (default: the last image's aspect ratio at --vae-area);\n"
                    "                         floored to multiples of 16\n");
    else
        fprintf(to, "  --width W --height H   output size (default 1024x1024); floored to multiples of 16\n");
    fprintf(to,
            "\n"
            "progress:\n"
            "  --json-progress        one JSON object per event on stdout (plan, phase, step, done)\n"
            "  --progress             draw the progress bar even when stderr is not a terminal\n"
            "  -h, --help             this text\n"
            "\n");
    cli_memory_flags_help(to);
    fprintf(to, "\n"
                "Report phases: load, text-encode (with --prompt), vae-encode, plan, step 1..N, vae-decode.\n"
                "exit codes: 0 ok, 2 usage, 3 out of memory, 4 bad input (image, embeddings, model, prompt),\n"
                "130 stopped by Ctrl-C or SIGTERM (nothing written), 1 other\n");
}

/* ---- flag values ------------------------------------------------------------------------ */

static int parse_long(const char *text, long long low, long long high, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < low || v > high) return 0;
    *out = v;
    return 1;
}

static int parse_area(const char *text, int64_t *out)
{
    long long w, h;
    const char *x = strchr(text, 'x');
    if (x) {
        char width[32];
        size_t n = (size_t)(x - text);
        if (n == 0 || n >= sizeof width) return 0;
        memcpy(width, text, n);
        width[n] = '\0';
        if (!parse_long(width, 16, 16384, &w) || !parse_long(x + 1, 16, 16384, &h)) return 0;
        *out = (int64_t)(w * h);
        return 1;
    }
    if (!parse_long(text, 256, (long long)16384 * 16384, &w)) return 0;
    *out = w;
    return 1;
}

static int usage_value(const edit_args *a, const char *flag, const char *value, const char *wanted)
{
    char message[512];
    snprintf(message, sizeof message, "%s takes %s (got '%s')", flag, wanted, value);
    return cli_usage_error(a->command, message);
}

/* 0 when parsed, else the exit code (2) after a message; *help set for --help. */
static int parse_args(edit_args *a, int argc, char **argv, int *help)
{
    *help = 0;
    for (int i = 0; i < argc; i++) {
        int memory_flag = cli_memory_flags_parse(&a->memory, argc, argv, &i, a->command);
        if (memory_flag < 0) return 2;
        if (memory_flag > 0) continue;
        const char *flag = argv[i];
        if (!strcmp(flag, "-h") || !strcmp(flag, "--help")) {
            *help = 1;
            return 0;
        }
        if (!strcmp(flag, "--json-progress")) {
            a->json_progress = 1;
            continue;
        }
        if (!strcmp(flag, "--progress")) {
            a->force_progress = 1;
            continue;
        }
        int takes_value = !strcmp(flag, "--model") || !strcmp(flag, "--image") || !strcmp(flag, "--prompt-embeds") ||
                          !strcmp(flag, "--prompt") || !strcmp(flag, "--negative-prompt") ||
                          !strcmp(flag, "--save-embeds") || !strcmp(flag, "-o") || !strcmp(flag, "--output") ||
                          !strcmp(flag, "--steps") || !strcmp(flag, "--cfg") || !strcmp(flag, "--seed") ||
                          !strcmp(flag, "--width") || !strcmp(flag, "--height") || !strcmp(flag, "--lora") ||
                          !strcmp(flag, "--lightning") ||
                          (!a->generate && !strcmp(flag, "--vae-area"));
        if (!takes_value) {
            char message[512];
            snprintf(message, sizeof message, "unknown option '%s'", flag);
            return cli_usage_error(a->command, message);
        }
        if (i + 1 >= argc) {
            char message[128];
            snprintf(message, sizeof message, "%s needs a value", flag);
            return cli_usage_error(a->command, message);
        }
        const char *value = argv[++i];
        long long n;
        if (!strcmp(flag, "--model")) {
            a->model = value;
        } else if (!strcmp(flag, "--image")) {
            if (a->generate) return cli_usage_error(a->command, "generate takes no --image (use canvas edit)");
            if (a->n_images == MAX_IMAGES) return cli_usage_error(a->command, "too many --image (at most 16)");
            a->images[a->n_images++] = value;
        } else if (!strcmp(flag, "--prompt-embeds")) {
            a->prompt_embeds = value;
        } else if (!strcmp(flag, "--prompt")) {
            a->prompt_text = value;
        } else if (!strcmp(flag, "--negative-prompt")) {
            a->negative_text = value;
        } else if (!strcmp(flag, "--save-embeds")) {
            a->save_embeds = value;
        } else if (!strcmp(flag, "-o") || !strcmp(flag, "--output")) {
            a->output = value;
        } else if (!strcmp(flag, "--steps")) {
            if (!parse_long(value, 1, 1000, &n)) return usage_value(a, flag, value, "a whole number from 1 to 1000");
            a->params.steps = (int)n;
            a->steps_given = 1;
        } else if (!strcmp(flag, "--cfg")) {
            char *end;
            errno = 0;
            double x = strtod(value, &end);
            if (errno || end == value || *end || !isfinite(x) || x < 0 || x > 100)
                return usage_value(a, flag, value, "a number from 0 to 100");
            a->params.cfg = (float)x;
            a->cfg_given = 1;
        } else if (!strcmp(flag, "--lora")) {
            if (a->n_loras == MAX_LORAS) return cli_usage_error(a->command, "too many --lora (at most 16)");
            float scale;
            if (lora_spec_parse(value, a->lora_paths[a->n_loras], LORA_PATH_SIZE, &scale) != CANVAS_OK)
                return usage_value(a, flag, value, "FILE or FILE:SCALE with a finite SCALE");
            a->loras[a->n_loras] = (canvas_lora){a->lora_paths[a->n_loras], scale};
            a->n_loras++;
        } else if (!strcmp(flag, "--lightning")) {
            if (strcmp(value, "4") && strcmp(value, "8")) return usage_value(a, flag, value, "4 or 8 (steps)");
            a->lightning = value[0] - '0';
        } else if (!strcmp(flag, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(value, &end, 10);
            if (errno || end == value || *end || value[0] == '-')
                return usage_value(a, flag, value, "a whole number from 0 to 18446744073709551615");
            a->params.seed = s;
        } else if (!strcmp(flag, "--width") || !strcmp(flag, "--height")) {
            if (!parse_long(value, 16, 16384, &n)) return usage_value(a, flag, value, "a size from 16 to 16384 pixels");
            if (flag[2] == 'w') a->params.width = (int)n;
            else a->params.height = (int)n;
        } else if (!strcmp(flag, "--vae-area")) {
            if (!parse_area(value, &a->params.vae_area))
                return usage_value(a, flag, value, "a pixel count from 256 to 16384x16384, or WxH");
        }
    }
    return 0;
}

/* An output flag's path: not inside the model folder, not a folder or device; 0 or exit 2. */
static int check_output(const edit_args *a, const char *flag, const char *path)
{
    char message[512];
    if (a->model && cli_file_inside(a->model, path)) {
        snprintf(message, sizeof message, "%s %s is a file of the model folder %s: refusing to overwrite an input",
                 flag, path, a->model);
        return cli_usage_error(a->command, message);
    }
    if (file_check_replaceable(path) != CANVAS_OK) {
        snprintf(message, sizeof message, "%s %s", flag, canvas_last_error());
        status_clear();
        return cli_usage_error(a->command, message);
    }
    return 0;
}

/* Flag combinations; 0 or the exit code 2 after a message. */
static int check_args(const edit_args *a)
{
    if (a->prompt_text && a->prompt_embeds) return cli_usage_error(a->command, "give --prompt or --prompt-embeds, not both");
    if (!a->model) return cli_usage_error(a->command, "missing --model DIR");
    if (!a->generate && a->n_images == 0) return cli_usage_error(a->command, "missing --image IMG (at least one)");
    if (!a->prompt_embeds && !a->prompt_text)
        return cli_usage_error(a->command, "missing --prompt TEXT (or --prompt-embeds FILE.safetensors)");
    if (a->negative_text && !a->prompt_text)
        return cli_usage_error(a->command, "--negative-prompt goes with --prompt (with --prompt-embeds the negative is "
                                           "the file's negative_prompt_embeds)");
    if (a->save_embeds && !a->prompt_text) return cli_usage_error(a->command, "--save-embeds needs --prompt");
    if (a->memory.text_encoder_weights_flag && !a->prompt_text)
        return cli_usage_error(a->command, "--text-encoder-weights needs --prompt (--prompt-embeds are not encoded)");
    if (!a->output) return cli_usage_error(a->command, "missing -o OUT.png");
    if ((a->params.width != 0) != (a->params.height != 0))
        return cli_usage_error(a->command, "give --width and --height together");
    for (int i = 0; i < a->n_images; i++)
        if (image_same_file(a->output, a->images[i])) {
            char message[512];
            snprintf(message, sizeof message, "-o %s is the input image %s: refusing to overwrite an input",
                     a->output, a->images[i]);
            return cli_usage_error(a->command, message);
        }
    if (a->prompt_embeds && image_same_file(a->output, a->prompt_embeds))
        return cli_usage_error(a->command, "-o is the --prompt-embeds file: refusing to overwrite an input");
    if (a->save_embeds) {
        if (image_same_file(a->save_embeds, a->output) || !strcmp(a->save_embeds, a->output))
            return cli_usage_error(a->command, "--save-embeds and -o name the same file");
        for (int i = 0; i < a->n_images; i++)
            if (image_same_file(a->save_embeds, a->images[i]))
                return cli_usage_error(a->command, "--save-embeds is an input image: refusing to overwrite an input");
    }
    if (check_output(a, "-o", a->output)) return 2;
    if (a->save_embeds && check_output(a, "--save-embeds", a->save_embeds)) return 2;
    if (cli_memory_flags_check(&a->memory, a->command) < 0) return 2;
    return 0;
}

/* --lightning N: N steps, cfg 1, the Lightning scheduler; an explicit --steps / --cfg wins. */
static void apply_presets(edit_args *a)
{
    if (!a->lightning) return;
    if (!a->steps_given) a->params.steps = a->lightning;
    if (!a->cfg_given) a->params.cfg = 1.0f;
    a->params.lightning_scheduler = 1;
}

/* ---- progress drawing ------------------------------------------------------------------- */

typedef struct drawer {
    const char *command;
    int bar;                    /* draw the bar */
    int tty;                    /* redraw in place */
    int json;
    int open_line;              /* a bar line is on screen without its newline */
    char plan[512];             /* the last plan line (for the PNG's "strategy") */
} drawer;

static void end_line(drawer *d)
{
    if (d->open_line) fputc('\n', stderr);
    d->open_line = 0;
}

static void on_progress(void *ctx, const canvas_progress *p)
{
    drawer *d = ctx;
    char line[1024];
    if (p->kind == CANVAS_PROGRESS_PLAN) snprintf(d->plan, sizeof d->plan, "%s", p->message);
    if (d->json) {
        progress_format_json(line, sizeof line, p);
        fprintf(stdout, "%s\n", line);
        fflush(stdout);
    }
    if (p->kind == CANVAS_PROGRESS_PLAN && !d->json) {
        end_line(d);
        fprintf(stderr, "canvas %s: %s\n", d->command, p->message);
        return;
    }
    if (!d->bar || p->kind == CANVAS_PROGRESS_PLAN) return;
    if (p->kind == CANVAS_PROGRESS_PHASE && !strcmp(p->phase, "plan")) return; /* the plan line says it */
    progress_format_bar(line, sizeof line, p, 30);
    if (d->tty) {
        /* steps redraw their line; a new phase or the end starts a new one */
        if (p->kind != CANVAS_PROGRESS_STEP) end_line(d);
        fprintf(stderr, "\r\033[K%s", line);
        d->open_line = 1;
        if (p->kind == CANVAS_PROGRESS_DONE) end_line(d);
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

/* ---- the run ---------------------------------------------------------------------------- */

/* Ctrl-C (SIGINT) or SIGTERM during a run: the library stops at its next check (before a
 * transformer call, a VAE pass or the decode), frees what the run held and returns
 * CANVAS_ERR_CANCELLED; nothing is written and the exit code is 130. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

static int stop_asked(void *ctx)
{
    (void)ctx;
    return stop_requested != 0;
}

static void catch_stop_signals(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

/* --prompt: the text (and the negative: the given one, or " " when CFG is on, as the
 * reference pipelines are run) through the model's text encoder. */
static canvas_status encode_prompt(const edit_args *a, canvas_model *model, const canvas_image *images, drawer *d,
                                   canvas_prompt *prompt)
{
    const char *negative = a->negative_text;
    if (!negative && a->params.cfg > 1) negative = " ";
    canvas_status st = canvas_encode_prompt_progress(model, a->prompt_text, negative, images, a->n_images, &a->params,
                                                     on_progress, d, prompt);
    if (st == CANVAS_OK && !a->negative_text && negative && !d->json)
        fprintf(stderr, "canvas %s: --cfg %g with no --negative-prompt: the negative prompt is \" \" (as the "
                        "reference pipelines are run); --cfg 1 turns CFG off\n",
                a->command, (double)a->params.cfg);
    return st;
}

static int run(edit_args *a)
{
    canvas_options options;
    canvas_options_default(&options);
    options.vram_bytes = a->memory.vram_bytes;
    options.ram_bytes = a->memory.ram_bytes;
    options.link_bytes_per_second = a->memory.link_bytes_per_second;
    options.resident_blocks = a->memory.resident_blocks;
    options.threads = a->memory.threads;
    options.loras = a->loras;
    options.n_loras = a->n_loras;
    options.strategy = a->memory.strategy_text[0] ? a->memory.strategy_text : NULL;
    options.allow_quantize = a->memory.allow_quantize;
    options.fp8 = a->memory.fp8;
    options.headroom_bytes = a->memory.headroom_bytes;
    options.no_fallback = a->memory.no_fallback;
    options.oom_retry_attempts = a->memory.oom_retry_attempts;
    options.text_encoder_weights = a->memory.text_encoder_weights[0] ? a->memory.text_encoder_weights : NULL;

    drawer d = {0};
    d.command = a->command;
    d.json = a->json_progress;
    d.tty = isatty(fileno(stderr));
    d.bar = !d.json && (d.tty || a->force_progress);

    canvas_prompt prompt = {0};
    canvas_image images[MAX_IMAGES], out = {0};
    memset(images, 0, sizeof images);
    canvas_model *model = NULL;
    const char *context = a->command;
    canvas_status st = a->prompt_embeds ? canvas_prompt_load(a->prompt_embeds, &prompt) : CANVAS_OK;
    for (int i = 0; st == CANVAS_OK && i < a->n_images; i++) st = canvas_image_load(a->images[i], &images[i]);
    if (st == CANVAS_OK) st = canvas_open(a->model, &options, &model);
    if (st == CANVAS_OK) st = canvas_check_params(model, &a->params); /* before the encoding */
    a->params.cancel = stop_asked; /* Ctrl-C stops the encoding too */
    catch_stop_signals();
    if (st == CANVAS_OK && a->prompt_text) {
        st = encode_prompt(a, model, images, &d, &prompt);
        context = "encoding the prompt";
    }
    if (st == CANVAS_OK) {
        context = a->command;
        st = a->generate ? canvas_generate(model, &prompt, &a->params, on_progress, &d, &out)
                         : canvas_edit(model, &prompt, images, a->n_images, &a->params, on_progress, &d, &out);
        end_line(&d);
    }
    if (st == CANVAS_OK) {
        char steps[32], cfg[32], seed[32];
        snprintf(steps, sizeof steps, "%d", a->params.steps);
        snprintf(cfg, sizeof cfg, "%g", a->params.cfg);
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)a->params.seed);
        char loras[1024] = "", prompt_text[4200];
        for (int i = 0; i < a->n_loras; i++) {
            size_t used = strlen(loras);
            snprintf(loras + used, sizeof loras - used, "%s%s:%g", i ? ", " : "", a->loras[i].path,
                     a->loras[i].scale);
        }
        if (a->prompt_text)
            snprintf(prompt_text, sizeof prompt_text, "%s", a->prompt_text);
        else
            snprintf(prompt_text, sizeof prompt_text, "(embeddings) %s%s", a->prompt_embeds,
                     prompt.negative.values ? " (with negative_prompt_embeds)" : "");
        const canvas_text texts[] = {
            {"Software", "Ethereal Canvas " CANVAS_VERSION},
            {"prompt", prompt_text},
            {"seed", seed},
            {"steps", steps},
            {"cfg", cfg},
            {"model", a->model},
            {"strategy", d.plan[0] ? d.plan : "host memory"},
            {"loras", loras},
        };
        int n_texts = (int)(sizeof texts / sizeof texts[0]) - (a->n_loras == 0);
        /* --save-embeds is written with the image, after the run: a failed run leaves no output */
        if (a->save_embeds) {
            st = canvas_prompt_save(a->save_embeds, &prompt);
            context = "writing --save-embeds";
        }
        if (st == CANVAS_OK) {
            st = canvas_image_save_png(a->output, &out, texts, n_texts);
            context = "writing the output";
            if (st != CANVAS_OK && a->save_embeds) unlink(a->save_embeds);
        }
    }
    /* the report and the trace are written after a failure too: they show where memory went */
    canvas_status written = CANVAS_OK;
    if (model && a->memory.report_path) written = canvas_profile_write_report(model, a->memory.report_path);
    if (model && a->memory.trace_path) {
        canvas_status t = canvas_profile_write_trace(model, a->memory.trace_path);
        if (written == CANVAS_OK) written = t;
    }
    int code = 0;
    if (st != CANVAS_OK) code = cli_fail(st, context);
    else if (written != CANVAS_OK) code = cli_fail(written, "writing the report");
    if (code == 0) {
        if (a->json_progress) {
            char path[4200];
            progress_json_string(path, sizeof path, a->output);
            printf("{\"event\":\"written\",\"output\":%s,\"width\":%d,\"height\":%d}\n", path, out.width, out.height);
        }
        fprintf(stderr, "canvas %s: wrote %s (%dx%d, %d steps, seed %llu)\n", a->command, a->output, out.width,
                out.height, a->params.steps, (unsigned long long)a->params.seed);
    }
    canvas_image_free(&out);
    canvas_close(model);
    for (int i = 0; i < a->n_images; i++) canvas_image_free(&images[i]);
    canvas_prompt_free(&prompt);
    return code;
}

static int edit_main(int argc, char **argv, int generate)
{
    edit_args a;
    memset(&a, 0, sizeof a);
    a.generate = generate;
    a.command = generate ? "generate" : "edit";
    canvas_edit_params_default(&a.params);
    cli_memory_flags_init(&a.memory);
    cli_edit_defaults defaults;
    int help = argc > 0 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"));
    int code = help ? 0 : cli_config_apply(argc, argv, a.command, &a.memory, &defaults);
    if (code) return code;
    code = parse_args(&a, argc, argv, &help);
    if (code) return code;
    if (!help) {
        /* the settings file's defaults, under what the command line gave */
        if (!a.lightning && defaults.lightning) a.lightning = 8;
        if (defaults.steps && !a.steps_given) {
            a.params.steps = defaults.steps;
            a.steps_given = 1;
        }
    }
    if (help) {
        print_help(stdout, generate);
        return 0;
    }
    if (argc == 0) {
        print_help(stderr, generate);
        return 2;
    }
    code = check_args(&a);
    if (code) return code;
    apply_presets(&a);
    return run(&a);
}

int cmd_edit(int argc, char **argv) { return edit_main(argc, argv, 0); }

int cmd_generate(int argc, char **argv) { return edit_main(argc, argv, 1); }
