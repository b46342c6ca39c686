/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_plan.c — `canvas plan`: the plans the planner weighs for a run, ranked, with their
 * predicted peaks per phase and time per step, from the model's config files alone (the
 * weights are used for exact sizes when present), and the viability table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/path.h"
#include "base/size_parse.h"
#include "base/status.h"
#include "cli/commands.h"
#include "cli/config_file.h"
#include "cli/memory_flags.h"
#include "cli/inspect.h"
#include "io/config.h"
#include "cli/model_files.h"
#include "io/image.h"
#include "io/model_dir.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "models/arch.h"
#include "models/arch_infer.h"
#include "ops/ops_cuda.h"
#include "ops/threadpool.h"
#include "pipeline/compute_device.h"
#include "pipeline/edit.h"
#include "pipeline/edit_case.h"
#include "pipeline/scheduler.h"
#include "plan/plan.h"

static void print_help(FILE *to)
{
    fprintf(to,
            "usage: canvas plan (--model DIR | --transformer FILE) [--image IMG ...|--size WxH] [--refs N] [--steps N]\n"
            "           [--cfg X] [--text-encoder FILE] [--vae FILE]\n"
            "           [--vram SIZE] [--ram SIZE] [--gpu NAME_OR_SIZE] [--headroom SIZE] [--allow-quantize]\n"
            "           [--strategy NAME] [--threads N] [--link-bandwidth RATE] [--text-encoder-weights FORMAT]\n"
            "           [--device cuda|cpu|auto] [--json] [--case CASE_DIR]\n"
            "       canvas plan --model DIR --viability\n"
            "\n"
            "The plans for one edit, each preset (full, sequential, offload, fp8, nf4) estimated by dry runs\n"
            "of the real code on a measure device: peak device / pinned / host memory per phase, seconds per\n"
            "step (time model: FLOPs / measured GEMM throughput, streamed bytes / link bandwidth, overlapped).\n"
            "The chosen plan is marked '*'; the others say why not. Works from config files alone.\n"
            "\n"
            "options:\n"
            "  --model DIR            pipeline folder (model_index.json, transformer/, vae/); weights optional\n"
            "  --transformer FILE     the transformer from one file (ComfyUI's); replaces --model's, or plans alone\n"
            "  --text-encoder FILE    the text encoder from one file (its config read from its tensors)\n"
            "  --vae FILE             the VAE from one file\n"
            "  --image IMG            a reference image (repeatable): its size; the output takes the last one's\n"
            "  --size WxH             output size (default 1024x1024); references the same size\n"
            "  --refs N               references (default 1 with --size, the images given otherwise)\n"
            "  --steps N              denoising steps (default 50)\n"
            "  --cfg X                true CFG scale (default 4: two transformer calls a step; <= 1: one)\n"
            "  --text-tokens N        prompt tokens (default 200)\n"
            "  --device NAME          where the run computes, as `canvas edit --device`: cuda (this machine's GPU:\n"
            "                         its free memory, or --vram; the CUDA backend's GEMM scratch counted; no\n"
            "                         usable GPU is exit 1), cpu, or auto (default: cuda when a GPU is present,\n"
            "                         else cpu, and the device line says why)\n"
            "  --vram SIZE            the device's memory, as `canvas edit --vram`: on the CPU a pool that plays\n"
            "                         the GPU, on CUDA a cap on the GPU's region\n"
            "  --gpu NAME_OR_SIZE     plan for a CUDA GPU instead: rtx3060 (12G), rtx3070, rtx3080 (10G), rtx3090,\n"
            "                         rtx4060 (8G), rtx4060ti (16G), rtx4070 (12G), rtx4080 (16G), rtx4090, rtx5080,\n"
            "                         rtx5090, a100-40g, a100 / a100-80g, h100, l40s (case, spaces and '-' ignored),\n"
            "                         or a size (24G: a card of that memory at nominal throughput and link);\n"
            "                         the transformer runs on the CUDA backend (its GEMM scratch counted), the\n"
            "                         VAE on the device, streamed blocks live in pinned RAM; not with --device cpu\n"
            "  --ram SIZE             host RAM budget (default: MemAvailable)\n"
            "  --headroom SIZE        device memory kept unused: 0 with --vram or this machine's GPU, 512M with --gpu\n"
            "                         and --viability (a nominal card's); needs a device (not the CPU alone)\n"
            "  --allow-quantize       fp8 / nf4 may be chosen (default: never below the files' precision)\n"
            "  --strategy NAME        the preset to choose (default auto: the fastest that fits)\n"
            "  --threads N            threads the run will use (the attention workspace depends on it)\n"
            "  --link-bandwidth RATE  the host-device link in the time model (default: measured once, cached;\n"
            "                         --gpu: the card's)\n"
            "  --text-encoder-weights FORMAT  the text encoder's layers in every preset: none (as stored), fp8,\n"
            "                         fp8-channel, fp8-e5m2, nf4, q8 (default: as stored; fp8 / nf4 in those presets)\n"
            "  --json                 {\"chosen\": {...}, \"candidates\": [...]} on stdout\n"
            "  --config FILE          the settings file `canvas edit` reads (docs/config.md; default ./canvas.yaml,\n"
            "                         else $XDG_CONFIG_HOME/canvas/config.yaml): the same defaults, flags win\n"
            "  --case CASE_DIR        an edit_pipeline golden case: plan exactly what `canvas debug case CASE_DIR`\n"
            "                         with the same flags runs\n"
            "  --viability            the table: 24/16/12/8 GB CUDA GPUs x 32/64 GB RAM, bf16 and quantised\n"
            "\n"
            "exit codes: 0 a plan fits, 3 none fits (the message says what would), 2 usage, 4 bad model,\n"
            "1 --device cuda without a usable GPU\n");
}

/* --viability's smallest GPU, in GiB (its rows: 24, 16, 12 and this) */
#define VIABILITY_LEAST_GIB 8

typedef struct plan_args {
    const char *model, *case_dir, *gpu;
    cli_model_files files;     /* --transformer / --text-encoder / --vae */
    int width, height, refs, steps, threads, json, viability, allow_quantize, strategy, have_size;
    int ref_width, ref_height, n_images;
    int64_t text_tokens;
    double cfg, link;
    uint64_t vram, ram, headroom;
    int headroom_given;
    int headroom_flag;         /* --headroom on the command line (the settings file's is a default) */
    int text_weights_given;
    quant_choice text_weights;
    cli_memory_flags device;   /* --device (parsed and decided as every running command does) */
} plan_args;

static int parse_int(const char *text, int low, int high, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || end == text || v < low || v > high) return -1;
    *out = (int)v;
    return 0;
}

/* The settings file that `canvas edit` would read (--config, ./canvas.yaml, XDG): the same
 * defaults, so the plan shown is the plan that runs. 0 or the exit code. */
static int apply_settings(int argc, char **argv, plan_args *a, int *vram_from_settings)
{
    cli_memory_flags settings;
    cli_memory_flags_init(&settings);
    int help = 0;
    for (int i = 0; i < argc; i++) help |= !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help");
    int code = help ? 0 : cli_config_apply(argc, argv, "plan", &settings, NULL);
    if (code) return code;
    cli_memory_flags_fit_machine(&settings); /* the file describes runs on this machine, as edit reads it */
    a->vram = settings.vram_bytes;
    a->ram = settings.ram_bytes;
    *vram_from_settings = a->vram != 0;
    if (settings.headroom_bytes) a->headroom = settings.headroom_bytes, a->headroom_given = 1;
    if (settings.strategy != PLAN_AUTO) a->strategy = settings.strategy;
    a->allow_quantize = settings.allow_quantize;
    a->threads = settings.threads;
    a->link = settings.link_bytes_per_second;
    return 0;
}

static int parse_args(int argc, char **argv, plan_args *a)
{
    memset(a, 0, sizeof *a);
    a->width = a->height = EDIT_DEFAULT_SIZE;
    a->steps = EDIT_DEFAULT_STEPS;
    a->cfg = EDIT_DEFAULT_CFG;
    a->strategy = PLAN_AUTO;
    a->refs = -1;
    cli_memory_flags_init(&a->device);
    int vram_from_settings = 0, code = apply_settings(argc, argv, a, &vram_from_settings);
    if (code) return code;
    for (int i = 0; i < argc; i++) {
        int file_flag = cli_model_files_parse(&a->files, argc, argv, &i, "plan");
        if (file_flag < 0) return 2;
        if (file_flag > 0) continue;
        if (!strcmp(argv[i], "--device")) { /* the running commands' parser: the same names and errors */
            if (cli_memory_flags_parse(&a->device, argc, argv, &i, "plan") < 0) return 2;
            continue;
        }
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            print_help(stdout);
            return 1;
        } else if (!strcmp(f, "--json")) {
            a->json = 1, takes = 0;
        } else if (!strcmp(f, "--viability")) {
            a->viability = 1, takes = 0;
        } else if (!strcmp(f, "--allow-quantize")) {
            a->allow_quantize = 1, takes = 0;
        } else if (!v) {
            char m[128];
            snprintf(m, sizeof m, "%s needs a value", f);
            return cli_usage_error("plan", m);
        } else if (!strcmp(f, "--config")) {
            /* read by apply_settings */
        } else if (!strcmp(f, "--model")) {
            a->model = v;
        } else if (!strcmp(f, "--case")) {
            a->case_dir = v;
        } else if (!strcmp(f, "--gpu")) {
            uint64_t bytes;
            if (size_parse(v, f, &bytes) == CANVAS_OK && bytes == 0) /* as --vram 0 */
                return cli_usage_error("plan", "--gpu must be a card's name or more than 0 bytes");
            status_clear();
            a->gpu = v;
        } else if (!strcmp(f, "--image")) {
            canvas_image img;
            canvas_status loaded = image_load(v, &img); /* a bad image is exit 4, no memory 3 */
            if (loaded != CANVAS_OK) return cli_fail(loaded, "plan");
            a->ref_width = img.width;
            a->ref_height = img.height;
            a->n_images++;
            image_free(&img);
        } else if (!strcmp(f, "--size")) {
            if (sscanf(v, "%dx%d", &a->width, &a->height) != 2 || a->width < 16 || a->height < 16 ||
                a->width > 16384 || a->height > 16384)
                return cli_usage_error("plan", "--size takes WxH, 16 to 16384 a side (1024x1024)");
            a->have_size = 1;
        } else if (!strcmp(f, "--refs")) {
            if (parse_int(v, 0, PLAN_MAX_REFERENCES, &a->refs)) return cli_usage_error("plan", "--refs takes 0 to 16");
        } else if (!strcmp(f, "--steps")) {
            if (parse_int(v, 1, 1000, &a->steps)) return cli_usage_error("plan", "--steps takes 1 to 1000");
        } else if (!strcmp(f, "--threads")) {
            if (parse_int(v, 1, 4096, &a->threads)) return cli_usage_error("plan", "--threads takes 1 to 4096");
        } else if (!strcmp(f, "--text-tokens")) {
            int n;
            if (parse_int(v, 1, 1 << 20, &n)) return cli_usage_error("plan", "--text-tokens takes 1 to 1048576");
            a->text_tokens = n;
        } else if (!strcmp(f, "--cfg")) {
            char *end;
            a->cfg = strtod(v, &end);
            if (*end || end == v || !(a->cfg >= 0 && a->cfg <= 100)) /* as canvas edit takes it; NaN too */
                return cli_usage_error("plan", "--cfg takes a number from 0 to 100");
        } else if (!strcmp(f, "--strategy")) {
            plan_preset p;
            if (plan_preset_parse(v, &p) != CANVAS_OK) return cli_usage_error("plan", canvas_last_error());
            a->strategy = p;
        } else if (!strcmp(f, "--vram") || !strcmp(f, "--ram") || !strcmp(f, "--headroom")) {
            uint64_t *to = f[2] == 'v' ? &a->vram : f[2] == 'r' ? &a->ram : &a->headroom;
            if (size_parse(v, f, to) != CANVAS_OK) return cli_usage_error("plan", canvas_last_error());
            if (*to == 0 && f[2] != 'h') /* as every command takes them: 0 is no size */
                return cli_usage_error("plan", f[2] == 'v' ? "--vram must be more than 0 bytes"
                                                           : "--ram must be more than 0 bytes");
            if (f[2] == 'h') a->headroom_given = a->headroom_flag = 1;
            if (f[2] == 'v') vram_from_settings = 0;
        } else if (!strcmp(f, "--text-encoder-weights")) {
            if (quant_choice_parse(v, &a->text_weights) != CANVAS_OK)
                return cli_usage_error("plan", canvas_last_error());
            a->text_weights_given = 1;
        } else if (!strcmp(f, "--link-bandwidth")) {
            if (size_parse_rate(v, f, &a->link) != CANVAS_OK) return cli_usage_error("plan", canvas_last_error());
        } else {
            char m[128];
            snprintf(m, sizeof m, "unknown option '%s'", f);
            return cli_usage_error("plan", m);
        }
        i += takes;
    }
    if (!a->model && !a->case_dir && !a->files.transformer)
        return cli_usage_error("plan", "give --model DIR (or --transformer FILE, or --case CASE_DIR)");
    if (a->gpu && vram_from_settings) a->vram = 0; /* --gpu on the command line wins over the file's vram */
    if (a->vram && a->gpu) return cli_usage_error("plan", "give --vram (this build's device) or --gpu, not both");
    /* --gpu and --viability plan CUDA GPUs, perhaps of another machine: this one's is not asked */
    if ((a->gpu || a->viability) && a->device.device == MEM_DEVICE_CHOICE_CPU)
        return cli_usage_error("plan", a->gpu ? "--gpu plans for a CUDA GPU: not with --device cpu"
                                              : "--viability plans CUDA GPUs: not with --device cpu");
    return 0;
}

/* The configs, and the weights when they are there (exact sizes). */
typedef struct loaded {
    qwen_dit_config dit;
    vae_config vae;
    qwen_dit_model *qwen_dit_model;
    weight_set *dit_files;     /* a GGUF transformer: its header (no data read) */
    vae_model *vae_model;
    int have_vae;
    int have_text_encoder;
    textenc_config text_encoder;
    plan_prompt_style prompt_style;
} loaded;

/* The text encoder's config from its single file's tensors (models/arch_infer.h). */
static canvas_status text_encoder_config_of_file(const char *file, textenc_config *out)
{
    weight_set *set;
    TRY(weights_open_file(file, WEIGHTS_TEXT_ENCODER, &set));
    canvas_status st = textenc_config_infer(set, out);
    weights_close(set);
    return st;
}

/* The folder's components (dir may be NULL), each replaced by its file when given: a file
 * must load; a folder's weights are optional (its configs will do). */
static canvas_status load_model(const char *dir, const cli_model_files *files, loaded *m)
{
    char path[PATH_BUFFER_SIZE];
    memset(m, 0, sizeof m[0]);
    const char *const given[] = {files->transformer, files->vae, files->text_encoder};
    for (int i = 0; i < 3; i++) /* a missing file must not be taken for a folder */
        if (given[i] && !weights_is_file(given[i])) return status_fail(CANVAS_ERR_INPUT, "%s: not a file", given[i]);
    if (files->transformer && weights_is_gguf(files->transformer)) { /* the header is all a plan needs */
        TRY(qwen_dit_header_load(files->transformer, &m->dit, &m->dit_files));
    } else if (files->transformer) {
        TRY(qwen_dit_load(files->transformer, &m->qwen_dit_model));
        m->dit = m->qwen_dit_model->config;
    } else {
        TRY(path_join(path, sizeof path, dir, "transformer"));
        if (weights_present(path)) { /* there but broken: the run would refuse it, so does the plan */
            TRY(qwen_dit_load(path, &m->qwen_dit_model));
            m->dit = m->qwen_dit_model->config;
        } else {
            status_clear();
            TRY(path_join(path, sizeof path, dir, "transformer/config.json"));
            TRY(qwen_dit_config_load(path, &m->dit));
        }
    }
    if (files->vae) {
        TRY(vae_load(files->vae, &m->vae_model));
        m->vae = m->vae_model->config;
        m->have_vae = 1;
    } else if (dir) {
        TRY(path_join(path, sizeof path, dir, "vae"));
        if (weights_present(path)) {
            TRY(vae_load(path, &m->vae_model));
            m->vae = m->vae_model->config;
            m->have_vae = 1;
        } else {
            status_clear();
            TRY(path_join(path, sizeof path, dir, "vae/config.json"));
            m->have_vae = vae_config_load(path, &m->vae) == CANVAS_OK;
            if (!m->have_vae) status_clear();
        }
    }
    struct stat sb;
    if (files->text_encoder) {
        TRY(text_encoder_config_of_file(files->text_encoder, &m->text_encoder));
        m->have_text_encoder = 1;
    } else if (dir && path_join(path, sizeof path, dir, "text_encoder/config.json") == CANVAS_OK &&
               stat(path, &sb) == 0) { /* there but broken: say so, rather than plan without it */
        TRY(textenc_config_load(path, &m->text_encoder)); /* the caller unloads what loaded */
        m->have_text_encoder = 1;
    }
    status_clear();
    pipeline_index index;
    m->prompt_style = PLAN_PROMPT_EDIT_PLUS; /* without a folder: Qwen-Image-Edit-2511's pipeline */
    if (dir && path_join(path, sizeof path, dir, "model_index.json") == CANVAS_OK &&
        pipeline_index_load(path, &index) == CANVAS_OK)
        m->prompt_style = plan_prompt_style_of(index.class_name);
    status_clear();
    return CANVAS_OK;
}

static void unload(loaded *m)
{
    qwen_dit_free(m->qwen_dit_model);
    weights_close(m->dit_files);
    vae_free(m->vae_model);
}

static void print_json_candidate(const plan_candidate *c, const plan_work *w, int with_fit)
{
    printf("{\"name\": \"%s\", \"predicted_device_peak_bytes\": %llu, \"predicted_pinned_peak_bytes\": %llu, "
           "\"predicted_host_peak_bytes\": %llu, \"mapped_bytes\": %llu, \"paged\": %s, "
           "\"predicted_seconds_per_step\": %.6g, \"seconds_source\": \"%s\", \"measured_runs\": %d, "
           "\"modelled_seconds_per_step\": %.6g, \"resident_blocks\": %d, \"weights\": \"%s\"",
           plan_preset_name(c->point.preset), (unsigned long long)c->peak.device, (unsigned long long)c->peak.pinned,
           (unsigned long long)c->peak.host, (unsigned long long)c->peak.mapped, c->point.paged ? "true" : "false",
           c->seconds_per_step, c->measured_runs ? "measured" : "modelled", c->measured_runs,
           c->modelled_seconds_per_step, c->point.resident_blocks,
           c->point.weights.format == QUANT_NONE ? "as stored" : quant_choice_name(c->point.weights));
    const plan_component *text = &w->components[PLAN_TEXT_ENCODER];
    if (text->present) {
        const plan_memory *t = &c->phases[PLAN_PHASE_TEXT];
        printf(", \"text_encoder\": {\"weights\": \"%s\", \"where\": \"%s\", \"resident_layers\": %d, \"layers\": %d, "
               "\"predicted_device_peak_bytes\": %llu, \"predicted_pinned_peak_bytes\": %llu, "
               "\"predicted_host_peak_bytes\": %llu, \"predicted_seconds\": %.6g}",
               c->point.text_weights.format == QUANT_NONE ? "as stored" : quant_choice_name(c->point.text_weights),
               c->point.text_on_host ? "host" : c->point.text_resident == plan_textenc_layers(&text->config.text)
                                                    ? "resident"
                                                    : "streamed",
               c->point.text_resident, plan_textenc_layers(&text->config.text), (unsigned long long)t->device,
               (unsigned long long)t->pinned, (unsigned long long)t->host, c->text_seconds);
    }
    if (with_fit) {
        printf(", \"fits\": %s, \"reason\": \"", c->fits ? "true" : "false");
        for (const char *r = c->reason; *r; r++) {
            if (*r == '"' || *r == '\\') putchar('\\');
            putchar(*r);
        }
        printf("\"");
    }
    printf("}");
}

static long long total_patches(const plan_work *w)
{
    long long n = 0;
    for (int i = 0; i < w->n_refs; i++) n += w->components[PLAN_TEXT_ENCODER].vision_patches[i];
    return n;
}

/* "text encoder: 7,747,169,280 parameters (lm_head left out), 14.43 GiB as stored (2 bytes a
 * parameter); embed_tokens (1.02 GiB) stays on the host; 264 tokens, 784 image patches; ..." */
static void print_text_encoder(const plan_work *w)
{
    uint64_t params, host_params;
    const plan_component *text = &w->components[PLAN_TEXT_ENCODER];
    if (!text->present || plan_textenc_size(&text->config.text, &params, &host_params) != CANVAS_OK) {
        status_clear();
        printf("text encoder: not planned (no text_encoder/config.json, or --case: the prompt comes as embeddings)\n");
        return;
    }
    char n[32], a[32], b[32];
    const uint64_t stored = (uint64_t)text->stored_bytes_per_element;
    printf("text encoder: %s parameters (lm_head left out), %s as stored (%d bytes a parameter); embed_tokens (%s) "
           "stays on the host; %lld tokens, %lld image patches; runs first, released before the transformer loads\n",
           inspect_commas(params, n, sizeof n), size_format(params * stored, a, sizeof a), (int)stored,
           size_format(host_params * stored, b, sizeof b), (long long)text->text_tokens, total_patches(w));
}

static void print_table(const plan_result *r, const plan_work *w, const char *device_text)
{
    char a[32], b[32], c3[32], c4[32];
    printf("work: %dx%d output, %d reference(s), %lld target + %lld reference + %lld text tokens, CFG %s, %d steps, "
           "%d threads\n",
           w->width, w->height, w->n_refs, (long long)w->n_target, (long long)(w->n_img - w->n_target),
           (long long)w->n_txt, w->cfg ? "on (2 transformer calls a step)" : "off", w->steps, w->threads);
    print_text_encoder(w);
    printf("device: %s\nsizes in binary units (KiB, MiB, GiB = 2^10, 2^20, 2^30 bytes)\n\n", device_text);
    printf("  %-11s %-5s %8s %12s %12s %12s %12s %11s %-11s %s\n", "preset", "fits", "resident", "device peak",
           "pinned peak", "host peak", "mapped", "s/step", "time", "why");
    for (int i = 0; i < r->n; i++) {
        const plan_candidate *c = &r->candidates[i];
        char res[24];
        snprintf(res, sizeof res, "%d/%d", c->point.resident_blocks < 0 ? 0 : c->point.resident_blocks,
                 w->components[PLAN_TRANSFORMER].config.dit.num_layers);
        char source[24]; /* measured by earlier runs here, or the time model's (scaled by them) */
        if (c->measured_runs) snprintf(source, sizeof source, "measured %d", c->measured_runs);
        else snprintf(source, sizeof source, r->time_scale != 1 ? "modelled x%.3g" : "modelled", r->time_scale);
        printf("%c %-11s %-5s %8s %12s %12s %12s %12s %11.4g %-11s %s\n", i == r->chosen ? '*' : ' ',
               plan_preset_name(c->point.preset), c->fits ? "yes" : "no", res,
               size_format(c->peak.device, a, sizeof a), size_format(c->peak.pinned, b, sizeof b),
               size_format(c->peak.host, c3, sizeof c3), size_format(c->peak.mapped, c4, sizeof c4),
               c->seconds_per_step, source, c->reason);
    }
    if (r->chosen >= 0) {
        const plan_candidate *c = &r->candidates[r->chosen];
        char line[512];
        plan_describe(c, w, line, sizeof line);
        printf("\nchosen: %s\nper phase (device / pinned / host / mapped):\n", line);
        for (int i = 0; i < w->n_order; i++) { /* in the run's order */
            const int ph = w->order[i].phase;
            if (ph == PLAN_RELEASE) continue;
            printf("  %-13s %12s %12s %12s %12s", plan_phase_name(ph), size_format(c->phases[ph].device, a, sizeof a),
                   size_format(c->phases[ph].pinned, b, sizeof b), size_format(c->phases[ph].host, c3, sizeof c3),
                   size_format(c->phases[ph].mapped, c4, sizeof c4));
            if (ph == PLAN_PHASE_TEXT) {
                char text[200];
                plan_describe_text(c, w, text, sizeof text);
                if (w->components[PLAN_TEXT_ENCODER].present)
                    printf("  (%s)", text);
                else printf("  (no text encoder: the prompt comes as embeddings)");
            }
            if (ph == PLAN_PHASE_DENOISE) printf("  (dry run of the transformer on a measure device)");
            printf("\n");
        }
        printf("predicted total: %.4g s for %d steps%s (VAE time not modelled)\n", c->seconds_total, w->steps,
               w->components[PLAN_TEXT_ENCODER].present ? " and the text encoder" : "");
    } else {
        printf("\nno plan fits: %s\n", r->suggestion);
    }
}

/* A CUDA machine as `plan --gpu` and every --viability row plan it (one rule, so that the
 * two agree): the GPU's memory, nominal throughput and link (plan_gpu_lookup; --link-bandwidth
 * wins), 512 MiB headroom unless --headroom, the VAE on the device, streamed blocks in pinned
 * RAM, and `ram` as the host budget, as given: the number a run's --ram caps it at. The
 * transformer's backend is the caller's (plan_work.backend: the CUDA sizes). */
static canvas_status gpu_machine(const char *gpu, uint64_t ram, const plan_args *a, plan_hardware *hw, plan_limits *l,
                                 char *label, size_t label_size)
{
    double flops, link;
    TRY(plan_gpu_lookup(gpu, &l->device_bytes, &flops, &link, label, label_size));
    for (int f = 0; f < QUANT_FORMAT_COUNT; f++) hw->flops_per_second[f] = flops;
    if (!(a->link > 0)) hw->link_bytes_per_second = link;
    l->headroom_bytes = a->headroom_given ? a->headroom : (uint64_t)512 << 20;
    char device_from[96];
    snprintf(device_from, sizeof device_from, "--gpu %s", gpu);
    TRY(cli_memory_flags_check_headroom(l->headroom_bytes,
                                        !a->headroom_given ? "a --gpu plan's default headroom"
                                        : a->headroom_flag ? "--headroom"
                                                           : "the settings file's memory_threshold_mb",
                                        l->device_bytes, device_from));
    l->vae_on_device = l->pinned_streaming = 1;
    l->host_bytes = ram;
    l->allow_quantize = a->allow_quantize;
    l->text_weights_given = a->text_weights_given;
    l->text_weights = a->text_weights;
    return CANVAS_OK;
}

/* This machine's CUDA GPU as `canvas edit --device cuda` sets it up (pipeline/compute_device.h):
 * a region of --vram, else of the free memory less what the CUDA runtime keeps, --headroom
 * inside it, the VAE in host memory; the time model's rates are this machine's probe, as the
 * run's planner takes them. */
static canvas_status cuda_here(const mem_cuda_info *gpu, const plan_args *a, const plan_hardware *hw, plan_limits *l,
                               char *text, size_t text_size)
{
    const uint64_t reserve = COMPUTE_DEVICE_CUDA_RESERVE;
    l->device_bytes = a->vram ? a->vram : gpu->free_bytes > reserve ? gpu->free_bytes - reserve : 0;
    if (!l->device_bytes)
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "--device cuda: %s has no free memory beyond the runtime's",
                           gpu->name);
    l->headroom_bytes = a->headroom;
    TRY(cli_memory_flags_check_headroom(l->headroom_bytes, a->headroom_flag ? "--headroom"
                                                           : "the settings file's memory_threshold_mb",
                                        l->device_bytes, a->vram ? "--vram" : "the GPU's free memory"));
    char region[32], free_text[32];
    snprintf(text, text_size, "%s (CUDA, sm_%d, %s free): a %s region (%s); link %.3g GB/s (%s), GEMM %.3g GFLOP/s "
             "(%s)", gpu->name, gpu->compute_capability, size_format(gpu->free_bytes, free_text, sizeof free_text),
             size_format(l->device_bytes, region, sizeof region), a->vram ? "--vram" : "free memory",
             hw->link_bytes_per_second / 1e9, hw->link_source, hw->flops_per_second[QUANT_NONE] / 1e9, hw->flops_source);
    return CANVAS_OK;
}

/* Edit-2511-style viability: every GPU size x RAM, bf16 only and quantisation allowed. */
static canvas_status viability(plan_work *w, thread_pool *pool, const plan_args *a)
{
    static const int gib[] = {24, 16, 12, VIABILITY_LEAST_GIB}, ram_gib[] = {32, 64};
    printf("Does it fit? %dx%d output, %d reference(s) of %dx%d, %lld text tokens, CFG on, per step = 2 transformer "
           "calls.\nGPU: nominal 50 TFLOP/s, 25 GB/s PCIe link, 512 MiB headroom; host budget = RAM (each row is "
           "`canvas plan --gpu SIZE --ram RAM`).\nSizes in binary units (MiB, GiB = 2^20, 2^30 bytes); rates (GB/s, "
           "TFLOP/s) decimal.\n\n",
           w->width, w->height, w->n_refs, w->ref_width[0], w->ref_height[0], (long long)w->n_txt);
    print_text_encoder(w);
    printf("The transformer's cells: its phases (VAE included); the text encoder's: the text-encode phase, before "
           "them.\nThe run's device peak is the larger of the two, not their sum.\n");
    printf("\n| GPU | RAM | as stored%s | text encoder | s/step | quantisation allowed | text encoder | s/step |\n"
           "|---|---|---|---|---|---|---|---|\n", w->components[PLAN_TRANSFORMER].dit_files ? " (GGUF)" : " (bf16)");
    for (size_t g = 0; g < sizeof gib / sizeof gib[0]; g++)
        for (size_t r = 0; r < sizeof ram_gib / sizeof ram_gib[0]; r++) {
            plan_hardware hw;
            plan_limits l;
            memset(&hw, 0, sizeof hw);
            memset(&l, 0, sizeof l);
            hw.disk_bytes_per_second = 2e9;
            char size[16], label[160];
            snprintf(size, sizeof size, "%dG", gib[g]);
            TRY(gpu_machine(size, (uint64_t)ram_gib[r] << 30, a, &hw, &l, label, sizeof label));
            printf("| %d GiB | %d GiB |", gib[g], ram_gib[r]);
            for (int q = 0; q < 2; q++) {
                l.allow_quantize = q;
                plan_result res;
                TRY(plan_make(w, &hw, &l, PLAN_AUTO, pool, &res));
                if (res.chosen < 0) {
                    printf(" no: %s | - | - |", res.suggestion);
                    continue;
                }
                const plan_candidate *c = &res.candidates[res.chosen];
                /* the transformer's cell: the phases after the text encoder has been released */
                plan_memory later = {0};
                for (int i = 0, released = 0; i < w->n_order; i++) {
                    const int ph = w->order[i].phase;
                    if (ph == PLAN_RELEASE) released |= (w->order[i].releases & PLAN_BIT(PLAN_TEXT_ENCODER)) != 0;
                    if (ph == PLAN_RELEASE || !released) continue;
                    if (c->phases[ph].device > later.device) later.device = c->phases[ph].device;
                    if (c->phases[ph].host + c->phases[ph].pinned > later.host)
                        later.host = c->phases[ph].host + c->phases[ph].pinned;
                }
                char d[32], h[32], text[200];
                printf(" %s: %d/%d blocks resident%s, device %s, host %s |", plan_preset_name(c->point.preset),
                       c->point.resident_blocks, w->components[PLAN_TRANSFORMER].config.dit.num_layers,
                       c->point.stream_from_file ? ", rest streamed from the file (disk)" : "",
                       size_format(later.device, d, sizeof d), size_format(later.host, h, sizeof h));
                plan_describe_text(c, w, text, sizeof text);
                printf(" %s | %.2f |", w->components[PLAN_TEXT_ENCODER].present ? text + strlen("text encoder ") : text,
                       c->seconds_per_step);
            }
            printf("\n");
        }
    return CANVAS_OK;
}

int cmd_plan(int argc, char **argv)
{
    plan_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc == 1 ? 0 : rc;
    /* where the run would compute: --gpu and --viability are CUDA GPUs, else --device decides
     * here as it does for `canvas edit` (cuda without a GPU: exit 1 before any work) */
    int use_cuda = 0;
    mem_cuda_info here;
    if (!a.gpu && !a.viability) {
        canvas_status chosen = cli_memory_flags_choose_device(&a.device, &here, &use_cuda);
        if (chosen != CANVAS_OK) return cli_fail(chosen, "plan");
    }
    /* as the running commands refuse it (cli_memory_flags_check): no device, nothing to keep free */
    if (a.headroom_flag && a.headroom && !a.gpu && !a.viability && !use_cuda && !a.vram)
        return cli_usage_error("plan", "--headroom needs --vram, --gpu or a CUDA GPU (without a device there is no "
                                       "device memory to keep free)");
    /* a headroom that keeps the whole device free leaves no plan: a usage error, not exit 3 */
    const char *headroom_from = a.headroom_flag ? "--headroom" : "the settings file's memory_threshold_mb";
    if (a.vram && cli_memory_flags_check_headroom(a.headroom, headroom_from, a.vram, "--vram") != CANVAS_OK)
        return cli_usage_error("plan", canvas_last_error());
    if (a.viability && cli_memory_flags_check_headroom(a.headroom, headroom_from, (uint64_t)VIABILITY_LEAST_GIB << 30,
                                                       "--viability's smallest GPU") != CANVAS_OK)
        return cli_usage_error("plan", canvas_last_error());
    edit_case_shape shape;
    const char *model_dir = a.model;
    if (a.case_dir) {
        canvas_status read = edit_case_shape_read(a.case_dir, &shape); /* another op: 1, as bench and debug case */
        if (read != CANVAS_OK) return cli_fail(read, "plan --case");
        model_dir = shape.model_dir;
    }
    /* a step count the scheduler has no schedule for is refused, not planned */
    scheduler_config scheduler;
    canvas_status st = edit_scheduler_load(model_dir, &scheduler);
    if (st == CANVAS_OK) st = scheduler_check_steps(&scheduler, a.case_dir ? shape.steps : a.steps);
    if (st != CANVAS_OK) return cli_fail(st, "plan");
    loaded m;
    st = load_model(model_dir, &a.files, &m);
    if (st != CANVAS_OK) {
        unload(&m); /* what loaded before the failure */
        return cli_fail(st, "plan");
    }
    thread_pool *pool = NULL;
    st = thread_pool_create(a.threads, &pool);
    plan_work w;
    if (a.case_dir) {
        plan_work_edit(&w, &m.dit, &m.vae, shape.width, shape.height, shape.n_images, shape.ref_width,
                       shape.ref_height, shape.n_txt, shape.cfg, shape.steps, thread_pool_size(pool));
    } else {
        int refs = a.refs >= 0 ? a.refs : a.n_images ? a.n_images : 1;
        int w_px = a.width, h_px = a.height;
        if (a.n_images && !a.have_size) {
            w_px = a.ref_width;
            h_px = a.ref_height;
        }
        plan_work_edit(&w, &m.dit, m.have_vae ? &m.vae : NULL, w_px, h_px, refs, a.n_images ? a.ref_width : 0,
                       a.n_images ? a.ref_height : 0, a.text_tokens, a.cfg > 1.0, a.steps, thread_pool_size(pool));
    }
    plan_work_loaded(&w, m.qwen_dit_model, m.dit_files, m.vae_model);
    if (m.have_text_encoder && !a.case_dir) plan_work_text_encoder(&w, &m.text_encoder, m.prompt_style);
    /* a CUDA run's transformer computes on the CUDA backend: its GEMM scratch is in the device peak */
    const op_backend cuda_sizes = op_backend_cuda_sizes();
    if (a.gpu || a.viability || use_cuda) w.backend = &cuda_sizes;
    if (st == CANVAS_OK && a.viability) {
        st = viability(&w, pool, &a);
        thread_pool_destroy(pool);
        unload(&m);
        return st == CANVAS_OK ? 0 : cli_fail(st, "plan --viability");
    }
    plan_hardware hw;
    plan_limits l;
    memset(&l, 0, sizeof l);
    char device_text[512];
    if (st == CANVAS_OK) st = plan_probe(a.threads, a.link, 1, &hw);
    if (st == CANVAS_OK && a.gpu) {
        st = gpu_machine(a.gpu, a.ram ? a.ram : hw.ram_available_bytes, &a, &hw, &l, device_text, sizeof device_text);
    } else if (st == CANVAS_OK && use_cuda) {
        st = cuda_here(&here, &a, &hw, &l, device_text, sizeof device_text);
    } else if (a.vram) {
        char s1[32];
        l.device_bytes = a.vram;
        l.headroom_bytes = a.headroom;
        snprintf(device_text, sizeof device_text, "a %s pool that plays the GPU (--vram); link %.3g GB/s (%s), GEMM %.3g "
                 "GFLOP/s (%s)", size_format(a.vram, s1, sizeof s1), hw.link_bytes_per_second / 1e9, hw.link_source,
                 hw.flops_per_second[QUANT_NONE] / 1e9, hw.flops_source);
    } else {
        snprintf(device_text, sizeof device_text, "none: the model computes in host memory; GEMM %.3g GFLOP/s (%s)",
                 hw.flops_per_second[QUANT_NONE] / 1e9, hw.flops_source);
    }
    if (!a.gpu && !use_cuda && a.device.device == MEM_DEVICE_CHOICE_AUTO) { /* auto chose the CPU: say why */
        size_t used = strlen(device_text);
        snprintf(device_text + used, sizeof device_text - used, " [--device auto: the CPU, no CUDA GPU: %s]",
                 here.reason);
    }
    l.host_bytes = a.ram ? a.ram : hw.ram_available_bytes;
    l.allow_quantize = a.allow_quantize;
    l.text_weights_given = a.text_weights_given;
    l.text_weights = a.text_weights;
    plan_result r;
    if (st == CANVAS_OK) st = plan_make(&w, &hw, &l, (plan_preset)a.strategy, pool, &r);
    thread_pool_destroy(pool);
    if (st != CANVAS_OK) {
        unload(&m);
        return cli_fail(st, "plan");
    }
    if (a.json) {
        printf("{\"chosen\": ");
        if (r.chosen >= 0) print_json_candidate(&r.candidates[r.chosen], &w, 0);
        else printf("null");
        printf(", \"candidates\": [");
        for (int i = 0; i < r.n; i++) {
            if (i) printf(", ");
            print_json_candidate(&r.candidates[i], &w, 1);
        }
        printf("]}\n");
    } else {
        if (m.dit_files) printf("transformer weights: sizes as its GGUF header stores them\n");
        else if (!m.qwen_dit_model) printf("weights absent: sizes from the config (bf16 as stored)\n");
        print_table(&r, &w, device_text);
    }
    unload(&m);
    if (r.chosen < 0) return cli_fail(plan_no_fit(&r, &l), "plan");
    return 0;
}
