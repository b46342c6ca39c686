/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_edit.c — `canvas edit` and `canvas generate`: a thin layer over the public API
 * (canvas_open, canvas_prompt_load, canvas_image_load, canvas_edit / canvas_generate,
 * io/image.h's image_write for PNG, JPEG or WebP by the extension). Parses flags, draws
 * progress, maps statuses to exit codes. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/size_parse.h"
#include "base/status.h"
#include "canvas.h"
#include "cli/commands.h"
#include "cli/config_file.h"
#include "cli/memory_flags.h"
#include "cli/model_files.h"
#include "cli/output_path.h"
#include "cli/stop_signal.h"
#include "io/image.h"
#include "pipeline/lora.h"
#include "pipeline/progress.h"

enum { MAX_IMAGES = 16, MAX_LORAS = 16, LORA_PATH_SIZE = 4096 };

typedef struct edit_args {
    int generate;               /* 1: canvas generate (no --image) */
    const char *command;        /* "edit" / "generate" */
    const char *model, *prompt_embeds, *prompt_text, *negative_text, *save_embeds, *output;
    cli_model_files files;      /* --transformer / --text-encoder / --vae */
    const char *images[MAX_IMAGES];
    int n_images;
    canvas_edit_params params;
    char lora_paths[MAX_LORAS][LORA_PATH_SIZE];
    canvas_lora loras[MAX_LORAS];   /* --lora FILE[:scale], in order */
    int n_loras;
    int lightning;                  /* --lightning 4|8, 0 when not given */
    int steps_given, cfg_given;     /* --steps / --cfg given: they win over --lightning */
    int json_progress, force_progress;
    int quality;                    /* --quality Q for JPEG / lossy WebP, 0: the format's default */
    int lightning_from_settings;    /* the settings file turned --lightning 8 on */
    cli_memory_flags memory;
} edit_args;

static void print_help(FILE *to, int generate)
{
    canvas_edit_params defaults;
    canvas_edit_params_default(&defaults);
    if (generate)
        fprintf(to, "usage: canvas generate --model DIR (--prompt TEXT | --prompt-embeds FILE) -o OUT.png [options]\n"
                    "       canvas generate --transformer FILE --vae FILE --prompt-embeds FILE -o OUT.png [options]\n"
                    "\n"
                    "Text to image with a Qwen-Image(-Edit) model folder: the denoising loop of the edit\n"
                    "pipeline without reference images.\n");
    else
        fprintf(to, "usage: canvas edit --model DIR --image IMG [--image IMG2 ...] (--prompt TEXT | --prompt-embeds FILE)\n"
                    "           -o OUT.png [options]\n"
                    "       canvas edit --transformer FILE --vae FILE --image IMG ... --prompt-embeds FILE -o OUT.png\n"
                    "\n"
                    "Edit images with a Qwen-Image-Edit model folder (the Edit-Plus pipeline: every image is a\n"
                    "reference; the output takes the last image's aspect ratio).\n");
    fprintf(to,
            "\n"
            "%s:\n"
            "  --model DIR            diffusers pipeline folder (model_index.json, transformer/, vae/, scheduler/)\n",
            generate ? "model" : "model and images");
    cli_model_files_help(to);
    if (!generate)
        fprintf(to, "  --image IMG            reference image (PNG, JPEG or WebP; its EXIF orientation applied); repeat\n"
                    "                         for several (up to %d)\n",
                MAX_IMAGES);
    fprintf(to,
            "\n"
            "prompt:\n"
            "  --prompt TEXT          the instruction, encoded by the model folder's tokenizer/ and text_encoder/\n"
            "                         as its pipeline does (docs/text-encoder.md)\n"
            "  --negative-prompt TEXT the negative prompt for true CFG (default \" \" when --cfg > 1, as the\n"
            "                         reference pipelines are used, with a warning; --cfg 1 runs without CFG)\n"
            "  --prompt-embeds FILE   instead of --prompt: safetensors with prompt_embeds [1, L, D] and optionally\n"
            "                         negative_prompt_embeds [1, L', D] (+ *_mask [1, L]); the negative turns on\n"
            "                         true CFG when --cfg > 1\n"
            "  --save-embeds FILE     also write the encoded prompt(s) as a --prompt-embeds safetensors file\n"
            "\n"
            "output:\n"
            "  -o, --output OUT.png   where to write the image: .png (with what reproduces it in text chunks),\n"
            "                         .jpg / .jpeg or .webp by the extension; any other extension is refused\n"
            "                         before the run (written to a temporary file, then renamed; never an input)\n"
            "  --quality Q            1..100: JPEG quality (default 95), or lossy WebP (default lossless)\n"
            "\n"
            "sampling (defaults: the reference pipeline's):\n"
            "  --steps N              denoising steps (default %d; the 2511 model card uses 40)\n"
            "  --cfg X                true CFG scale (default %.1f; used when > 1 with a negative prompt: from\n"
            "                         --prompt-embeds without negative_prompt_embeds CFG is off, with a warning)\n"
            "  --seed S               noise seed, 0 to 2^64-1 (default 0; Philox4x32-10, docs/pipeline.md)\n"
            "\n"
            "LoRA (docs/lora.md):\n"
            "  --lora FILE[:SCALE]    merge a LoRA into the transformer at load (scale default 1); repeat to\n"
            "                         stack up to %d. Namings: diffusers/PEFT, kohya, lightx2v, ComfyUI (from the\n"
            "                         keys); an unknown or mismatched key is an error (exit 4)\n"
            "  --lightning 4|8        preset for the Qwen-Image-Lightning LoRAs: that many steps, cfg 1, the\n"
            "                         Lightning scheduler (fixed shift 3); needs the LoRA file with --lora\n"
            "                         (exit 2 without one); an explicit --steps or --cfg wins\n",
            defaults.steps, (double)defaults.cfg, MAX_LORAS);
    fprintf(to, "\nimage size:\n");
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
            "  --json-progress        one JSON object per event on stdout (plan, phase, step, done, written,\n"
            "                         error with the exit code when the run fails)\n"
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
        if (!parse_integer(width, 16, 16384, &w) || !parse_integer(x + 1, 16, 16384, &h)) return 0;
        *out = (int64_t)(w * h);
        return 1;
    }
    if (!parse_integer(text, 256, (long long)16384 * 16384, &w)) return 0;
    *out = w;
    return 1;
}

static int usage_value(const edit_args *a, const char *flag, const char *value, const char *wanted)
{
    char message[512];
    snprintf(message, sizeof message, "%s takes %s (got '%s')", flag, wanted, value);
    return cli_usage_error(a->command, message);
}

/* `--lora f:abc`: lora_spec_parse takes it as the file "f:abc" (a path may hold ':'); when
 * no such file exists but the text after the colon was meant as a scale, say so instead of
 * a missing-file error later. */
static int lora_scale_misspelt(const char *text, const char *parsed_path)
{
    const char *colon = strrchr(text, ':');
    return colon && colon[1] && !strcmp(parsed_path, text) && access(text, F_OK) != 0;
}

/* 0 when parsed, else the exit code (2) after a message; *help set for --help. */
static int parse_args(edit_args *a, int argc, char **argv, int *help)
{
    *help = 0;
    for (int i = 0; i < argc; i++) {
        int memory_flag = cli_memory_flags_parse(&a->memory, argc, argv, &i, a->command);
        if (memory_flag < 0) return 2;
        if (memory_flag > 0) continue;
        int file_flag = cli_model_files_parse(&a->files, argc, argv, &i, a->command);
        if (file_flag < 0) return 2;
        if (file_flag > 0) continue;
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
                          !strcmp(flag, "--lightning") || !strcmp(flag, "--quality") ||
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
            if (!parse_integer(value, 1, 1000, &n)) return usage_value(a, flag, value, "a whole number from 1 to 1000");
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
        } else if (!strcmp(flag, "--quality")) {
            if (!parse_integer(value, 1, 100, &n)) return usage_value(a, flag, value, "a whole number from 1 to 100");
            a->quality = (int)n;
        } else if (!strcmp(flag, "--lora")) {
            if (a->n_loras == MAX_LORAS) return cli_usage_error(a->command, "too many --lora (at most 16)");
            float scale;
            if (lora_spec_parse(value, a->lora_paths[a->n_loras], LORA_PATH_SIZE, &scale) != CANVAS_OK)
                return usage_value(a, flag, value, "FILE or FILE:SCALE with a finite SCALE");
            if (lora_scale_misspelt(value, a->lora_paths[a->n_loras]))
                return usage_value(a, flag, value, "FILE or FILE:SCALE, and the text after the last ':' is not a number "
                                                   "(nor is there a file of that whole name)");
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
            if (!parse_integer(value, 16, 16384, &n)) return usage_value(a, flag, value, "a size from 16 to 16384 pixels");
            if (flag[2] == 'w') a->params.width = (int)n;
            else a->params.height = (int)n;
        } else if (!strcmp(flag, "--vae-area")) {
            if (!parse_area(value, &a->params.vae_area))
                return usage_value(a, flag, value, "a pixel count from 256 to 16384x16384, or WxH");
        }
    }
    return 0;
}

/* An output flag's path against every file the run reads and its other outputs, before
 * any work (cli/output_path.h); 0 or exit 2. */
static int check_output(const edit_args *a, const char *flag, const char *path, const char *const *extensions)
{
    const char *files[MAX_IMAGES + MAX_LORAS + 9];
    int n = 0;
    for (int i = 0; i < a->n_images; i++) files[n++] = a->images[i];
    for (int i = 0; i < a->n_loras; i++) files[n++] = a->loras[i].path;
    const char *others[] = {a->prompt_embeds,       a->memory.config_path, a->output,
                            a->save_embeds,         a->memory.report_path, a->memory.trace_path,
                            a->files.transformer,   a->files.text_encoder, a->files.vae};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) files[n++] = others[i];
    return cli_check_output(a->command, flag, path, extensions, files, n, a->model, "model");
}

/* Flag combinations; 0 or the exit code 2 after a message. */
static int check_args(const edit_args *a)
{
    if (a->prompt_text && a->prompt_embeds) return cli_usage_error(a->command, "give --prompt or --prompt-embeds, not both");
    if (cli_model_files_check(&a->files, a->model, a->command)) return 2;
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
    if (a->lightning && a->n_loras == 0 && !a->lightning_from_settings)
        return cli_usage_error(a->command, "--lightning needs the Lightning LoRA file (--lora FILE): without it the "
                                           "preset's few steps and cfg 1 only blur the base model's output");
    if ((a->params.width != 0) != (a->params.height != 0))
        return cli_usage_error(a->command, "give --width and --height together");
    if (check_output(a, "-o", a->output, cli_image_extensions)) return 2;
    if (a->save_embeds && check_output(a, "--save-embeds", a->save_embeds, cli_tensor_extensions)) return 2;
    if (a->memory.report_path && check_output(a, "--report", a->memory.report_path, cli_json_extensions)) return 2;
    if (a->memory.trace_path && check_output(a, "--trace", a->memory.trace_path, cli_json_extensions)) return 2;
    if (a->quality && image_format_from_path(a->output) == IMAGE_PNG)
        return cli_usage_error(a->command, "--quality is for .jpg and .webp outputs (PNG is always lossless)");
    if (cli_memory_flags_check(&a->memory, a->command) < 0) return 2;
    return 0;
}

/* The settings file's lightning_lora_enabled without a --lora: not applied, and said. */
static void settings_lightning(edit_args *a)
{
    if (!a->lightning_from_settings || a->n_loras) return;
    cli_warn("the settings file's lightning_lora_enabled is ignored: no --lora FILE gives the Lightning LoRA");
    a->lightning = 0;
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
        cli_note("%s", p->message);
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

/* Ctrl-C (SIGINT) or SIGTERM during a run (cli/stop_signal.h): the library stops at its next
 * check (after each layer of the text encoder, before a transformer call, a VAE pass or the
 * decode), frees what the run held and returns CANVAS_ERR_CANCELLED; a signal while the model
 * loads is acted on once it is loaded, one during the decode before the output is written. */

/* --prompt: the text (and the negative: the given one, or " " when CFG is on, as the
 * reference pipelines are run) through the model's text encoder. */
static canvas_status encode_prompt(const edit_args *a, canvas_model *model, const canvas_image *images, drawer *d,
                                   canvas_prompt *prompt)
{
    const char *negative = a->negative_text;
    if (!negative && a->params.cfg > 1) negative = " ";
    if (d->bar) cli_note("encoding the prompt");
    canvas_status st = canvas_encode_prompt_progress(model, a->prompt_text, negative, images, a->n_images, &a->params,
                                                     on_progress, d, prompt);
    /* diffusers warns the same way when a CFG scale comes without a negative prompt (said once
     * the encoding worked: a failed run has one line, its error) */
    if (st == CANVAS_OK && !a->negative_text && negative)
        cli_warn("--cfg %g with no --negative-prompt: the negative prompt is \" \" (as the reference pipelines are "
                 "run); --cfg 1 turns CFG off", (double)a->params.cfg);
    return st;
}

/* --resident-blocks above the model's block count: a usage error, as in `debug case` and `serve`. */
static canvas_status check_resident_blocks(const edit_args *a, const canvas_model *model)
{
    canvas_memory_snapshot snap;
    TRY(canvas_memory_snapshot_take(model, &snap));
    return cli_memory_flags_check_blocks(&a->memory, snap.total_blocks, cli_model_label(&a->files, a->model));
}

/* --prompt-embeds without negative_prompt_embeds: CFG cannot run, whatever --cfg says. */
static void check_embeddings_cfg(edit_args *a, const canvas_prompt *prompt)
{
    if (!a->prompt_embeds || prompt->negative.values || a->params.cfg <= 1) return;
    cli_warn("--cfg %g: %s has no negative_prompt_embeds, so CFG is off (the run is --cfg 1)", (double)a->params.cfg,
             a->prompt_embeds);
    a->params.cfg = 1;
}

/* What reproduces the image, and nothing that depends on the machine (no timings, no plan
 * line): the same flags and seed give the same file on any machine and thread count. */
typedef struct image_record {
    char steps[32], cfg[32], seed[32], size[32], loras[1024], prompt[4200], negative[4200], images[4200];
    char parameters[10000];
    canvas_text texts[12];
    int n_texts;
} image_record;

static void add_text(image_record *r, const char *key, const char *value)
{
    r->texts[r->n_texts++] = (canvas_text){key, value};
}

static void append(char *buf, size_t size, const char *fmt, const char *a, const char *b)
{
    size_t used = strlen(buf);
    if (used < size) snprintf(buf + used, size - used, fmt, a, b);
}

static void record_image(image_record *r, const edit_args *a, const canvas_prompt *prompt, const canvas_image *out)
{
    memset(r, 0, sizeof *r);
    int cfg_ran = a->params.cfg > 1 && prompt->negative.values;
    snprintf(r->steps, sizeof r->steps, "%d", a->params.steps);
    snprintf(r->cfg, sizeof r->cfg, "%g", cfg_ran ? (double)a->params.cfg : 1.0);
    snprintf(r->seed, sizeof r->seed, "%llu", (unsigned long long)a->params.seed);
    snprintf(r->size, sizeof r->size, "%dx%d", out->width, out->height);
    for (int i = 0; i < a->n_loras; i++) {
        char scale[32];
        snprintf(scale, sizeof scale, "%g", (double)a->loras[i].scale);
        append(r->loras, sizeof r->loras, i ? ", %s:%s" : "%s:%s", a->loras[i].path, scale);
    }
    for (int i = 0; i < a->n_images; i++) append(r->images, sizeof r->images, i ? "%s%s" : "%.0s%s", ", ", a->images[i]);
    if (a->prompt_text) snprintf(r->prompt, sizeof r->prompt, "%s", a->prompt_text);
    else snprintf(r->prompt, sizeof r->prompt, "(embeddings) %s", a->prompt_embeds);
    if (cfg_ran && a->prompt_text) snprintf(r->negative, sizeof r->negative, "%s", a->negative_text ? a->negative_text : " ");
    else if (cfg_ran) snprintf(r->negative, sizeof r->negative, "(embeddings) %s", a->prompt_embeds);
    const char *label = cli_model_label(&a->files, a->model);
    const char *model_name = strrchr(label, '/') && strrchr(label, '/')[1] ? strrchr(label, '/') + 1 : label;
    /* the A1111 layout image viewers and sharing sites read: prompt, negative, then settings */
    snprintf(r->parameters, sizeof r->parameters,
             "%s\n%s%s%sSteps: %s, Sampler: FlowMatchEuler%s, CFG scale: %s, Seed: %s, Size: %s, Model: %s%s%s, "
             "Version: Ethereal Canvas " CANVAS_VERSION,
             r->prompt, r->negative[0] ? "Negative prompt: " : "", r->negative, r->negative[0] ? "\n" : "", r->steps,
             a->params.lightning_scheduler ? " (Lightning)" : "", r->cfg, r->seed, r->size, model_name,
             a->n_loras ? ", Lora: " : "", r->loras);
    add_text(r, "parameters", r->parameters);
    add_text(r, "Software", "Ethereal Canvas " CANVAS_VERSION);
    add_text(r, "prompt", r->prompt);
    if (r->negative[0]) add_text(r, "negative_prompt", r->negative);
    add_text(r, "seed", r->seed);
    add_text(r, "steps", r->steps);
    add_text(r, "cfg", r->cfg);
    add_text(r, "model", label);
    add_text(r, "strategy", a->memory.strategy_text[0] ? a->memory.strategy_text : "auto");
    if (a->n_images) add_text(r, "images", r->images);
    if (a->n_loras) add_text(r, "loras", r->loras);
}

/* --json-progress: a failed run ends with an error event (the stderr line says the same). */
static void json_error_event(int code, const char *context)
{
    char message[2400], text[1200];
    snprintf(text, sizeof text, "%s%s%s", context ? context : "", context ? ": " : "", canvas_last_error());
    progress_json_string(message, sizeof message, text);
    printf("{\"event\":\"error\",\"exit_code\":%d,\"message\":%s}\n", code, message);
    fflush(stdout);
}

static int run(edit_args *a)
{
    canvas_options options;
    canvas_options_default(&options);
    options.device = mem_device_choice_name((mem_device_choice)a->memory.device);
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
    cli_model_files_apply(&a->files, &options);

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
    cli_catch_stop_signals();
    canvas_status st = a->prompt_embeds ? canvas_prompt_load(a->prompt_embeds, &prompt) : CANVAS_OK;
    if (st == CANVAS_OK) check_embeddings_cfg(a, &prompt);
    for (int i = 0; st == CANVAS_OK && i < a->n_images; i++) st = canvas_image_load(a->images[i], &images[i]);
    options.load_progress = on_progress; /* a fallback while loading is a plan line like the others */
    options.load_progress_ctx = &d;
    if (st == CANVAS_OK) st = canvas_open(a->model, &options, &model);
    if (st == CANVAS_OK && a->memory.resident_blocks >= 0) st = check_resident_blocks(a, model);
    if (st == CANVAS_OK) st = canvas_check_params(model, &a->params); /* before the encoding */
    if (st == CANVAS_OK) st = cli_check_stop("after loading the model");
    a->params.cancel = cli_stop_asked; /* Ctrl-C stops the encoding too */
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
    if (st == CANVAS_OK) st = cli_check_stop("before writing the output");
    if (st == CANVAS_OK) {
        static image_record record; /* 40 KiB of text: not on the stack */
        record_image(&record, a, &prompt, &out);
        /* --save-embeds is written with the image, after the run: a failed run leaves no output */
        if (a->save_embeds) {
            st = canvas_prompt_save(a->save_embeds, &prompt);
            context = "writing --save-embeds";
        }
        if (st == CANVAS_OK) {
            st = image_write(a->output, &out, record.texts, record.n_texts, a->quality);
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
    if (st != CANVAS_OK || written != CANVAS_OK) {
        if (st == CANVAS_OK) context = "writing the report";
        canvas_status failed = st != CANVAS_OK ? st : written;
        code = canvas_exit_code(failed);
        if (a->json_progress) json_error_event(code, context);
        cli_fail(failed, context);
    }
    if (code == 0) {
        if (a->json_progress) {
            char path[4200];
            progress_json_string(path, sizeof path, a->output);
            printf("{\"event\":\"written\",\"output\":%s,\"width\":%d,\"height\":%d}\n", path, out.width, out.height);
        }
        cli_note("wrote %s (%dx%d, %d steps, seed %llu)", a->output, out.width, out.height, a->params.steps,
                 (unsigned long long)a->params.seed);
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
        if (!a.lightning && defaults.lightning) {
            a.lightning = 8;
            a.lightning_from_settings = 1;
        }
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
    settings_lightning(&a);
    cli_memory_flags_fit_machine(&a.memory);
    apply_presets(&a);
    return run(&a);
}

int cmd_edit(int argc, char **argv) { return edit_main(argc, argv, 0); }

int cmd_generate(int argc, char **argv) { return edit_main(argc, argv, 1); }
