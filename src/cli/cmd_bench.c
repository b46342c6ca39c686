/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_bench.c — `canvas bench`: the same edit under every preset (full, sequential,
 * offload, fp8, nf4, auto), each in a fresh pipeline on a fresh device, with the planner's
 * predicted peaks next to the measured ones, the time per step and the output's largest
 * difference from the first preset that ran. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/size_parse.h"
#include "base/status.h"
#include "cli/commands.h"
#include "cli/config_file.h"
#include "cli/memory_flags.h"
#include "io/image.h"
#include "mem/mem.h"
#include "mem/mem_profiler.h"
#include "ops/threadpool.h"
#include "pipeline/edit.h"
#include "pipeline/edit_case.h"
#include "pipeline/progress.h"
#include "plan/plan.h"

enum { MAX_IMAGES = 16 };

static void print_help(FILE *to)
{
    fprintf(to,
            "usage: canvas bench --case CASE_DIR [--json] [memory flags]\n"
            "       canvas bench --model DIR --image IMG [--image IMG2 ...] --prompt-embeds FILE [--steps N] [--cfg X]\n"
            "           [--seed S] [--vae-area PIXELS] [--width W --height H] [--json] [memory flags]\n"
            "\n"
            "Runs the same edit under every preset: full, sequential, offload, fp8, nf4 (these two need\n"
            "--allow-quantize unless the files are quantised) and auto, each in a fresh pipeline on a fresh\n"
            "--vram device, and prints per preset: the plan taken, the planner's predicted and the measured\n"
            "peak device / pinned / host memory, seconds per step, total seconds, and the largest absolute\n"
            "difference of the output image (floats in [0, 1]) from the first preset that ran (0 between\n"
            "presets of the same weight format: streaming never changes numerics). A preset that does not\n"
            "fit is listed with the reason. Fallbacks are off: a misprediction shows as out of memory.\n"
            "\n"
            "options:\n"
            "  --case CASE_DIR        an edit_pipeline golden case (its model, images, embeddings, latents)\n"
            "  --model DIR ...        the work as `canvas edit` takes it (--image, --prompt-embeds, --steps\n"
            "                         (default 4), --cfg, --seed, --vae-area, --width/--height)\n"
            "  --json                 {\"rows\": [{\"preset\", \"ran\", \"plan\", \"predicted_device_peak_bytes\",\n"
            "                         \"measured_device_peak_bytes\", ..., \"max_abs_diff\"}]} on stdout\n"
            "  -h, --help             this text\n"
            "\n");
    cli_memory_flags_help(to);
    fprintf(to, "\nexit codes: 0 at least one preset ran, 3 none fits, 2 usage, 4 bad input, 1 other\n");
}

typedef struct bench_args {
    const char *case_dir, *model, *prompt_embeds;
    const char *images[MAX_IMAGES];
    int n_images, steps, width, height, json;
    double cfg;
    uint64_t seed;
    int64_t vae_area;
    cli_memory_flags memory;
} bench_args;

typedef struct bench_row {
    plan_preset preset;
    int ran;
    char reason[600];
    edit_plan_record plan;
    uint64_t device, pinned, host;     /* measured peaks */
    double seconds_per_step, seconds_total;
    float *image;                      /* [h, w, 3] in [0, 1] */
    size_t count;
    double max_abs_diff;
} bench_row;

/* ---- flags ------------------------------------------------------------------------------ */

static int parse_number(const char *text, double low, double high, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !(v >= low && v <= high)) return 0;
    *out = v;
    return 1;
}

static int parse_args(bench_args *a, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        int memory_flag = cli_memory_flags_parse(&a->memory, argc, argv, &i, "bench");
        if (memory_flag < 0) return 2;
        if (memory_flag > 0) continue;
        const char *f = argv[i];
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            print_help(stdout);
            return -1;
        }
        if (!strcmp(f, "--json")) {
            a->json = 1;
            continue;
        }
        if (i + 1 >= argc || f[0] != '-') {
            char m[256];
            snprintf(m, sizeof m, i + 1 >= argc && f[0] == '-' ? "%s needs a value" : "unknown argument '%s'", f);
            return cli_usage_error("bench", m);
        }
        const char *v = argv[++i];
        double x;
        if (!strcmp(f, "--case")) a->case_dir = v;
        else if (!strcmp(f, "--model")) a->model = v;
        else if (!strcmp(f, "--prompt-embeds")) a->prompt_embeds = v;
        else if (!strcmp(f, "--image")) {
            if (a->n_images == MAX_IMAGES) return cli_usage_error("bench", "too many --image (at most 16)");
            a->images[a->n_images++] = v;
        } else if (!strcmp(f, "--steps") && parse_number(v, 1, 1000, &x)) a->steps = (int)x;
        else if (!strcmp(f, "--cfg") && parse_number(v, 0, 100, &x)) a->cfg = x;
        else if (!strcmp(f, "--seed") && parse_number(v, 0, 1.8e19, &x)) a->seed = strtoull(v, NULL, 10);
        else if (!strcmp(f, "--vae-area") && parse_number(v, 256, 268435456.0, &x)) a->vae_area = (int64_t)x;
        else if (!strcmp(f, "--width") && parse_number(v, 16, 16384, &x)) a->width = (int)x;
        else if (!strcmp(f, "--height") && parse_number(v, 16, 16384, &x)) a->height = (int)x;
        else {
            char m[256];
            snprintf(m, sizeof m, "unknown option '%s' or a bad value '%s'", f, v);
            return cli_usage_error("bench", m);
        }
    }
    if (!a->case_dir && !a->model) return cli_usage_error("bench", "give --case CASE_DIR or --model DIR with the edit");
    if (a->case_dir && a->model) return cli_usage_error("bench", "give --case or --model, not both");
    if (a->model && (!a->prompt_embeds || a->n_images == 0))
        return cli_usage_error("bench", "--model needs --image IMG and --prompt-embeds FILE");
    if ((a->width != 0) != (a->height != 0)) return cli_usage_error("bench", "give --width and --height together");
    if (cli_memory_flags_check(&a->memory, "bench") < 0) return 2;
    /* each preset runs with a profiler of its own: the rows (and --json) are the report */
    if (a->memory.report_path || a->memory.trace_path)
        cli_warn("--report and --trace are not written by bench (nor the settings file's profiling_enabled): each "
                 "row gives its preset's measured peaks and times, --json the same as JSON");
    a->memory.report_path = a->memory.trace_path = NULL;
    cli_memory_flags_fit_machine(&a->memory);
    return 0;
}

/* ---- one run ---------------------------------------------------------------------------- */

static canvas_status keep_image(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape)
{
    bench_row *row = ctx;
    if (strcmp(name, "image")) return CANVAS_OK;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    TRY(mem_alloc((void **)&row->image, n * sizeof(float), MEM_SCRATCH));
    memcpy(row->image, data, n * sizeof(float));
    row->count = n;
    return CANVAS_OK;
}

/* The edit given by flags, in a pipeline set up like the case runner does. */
static canvas_status run_flags(const bench_args *a, thread_pool *pool, mem_device *device, profiler *prof,
                               plan_preset preset, bench_row *row)
{
    canvas_prompt prompt = {0};
    canvas_image images[MAX_IMAGES];
    memset(images, 0, sizeof images);
    edit_pipeline *p = NULL;
    float *image = NULL;
    int width = 0, height = 0;
    canvas_status st = canvas_prompt_load(a->prompt_embeds, &prompt);
    for (int i = 0; st == CANVAS_OK && i < a->n_images; i++) st = image_load(a->images[i], &images[i]);
    if (st == CANVAS_OK) st = profiler_begin(prof, "load");
    if (st == CANVAS_OK) st = edit_pipeline_open(a->model, &p);
    if (st == CANVAS_OK) {
        const cli_memory_flags *f = &a->memory;
        const edit_runtime runtime = {.pool = pool, .device = device, .profiler = prof};
        edit_pipeline_attach(p, &runtime);
        edit_policy policy;
        edit_pipeline_get_policy(p, &policy);
        policy.strategy = preset;
        policy.allow_quantize = f->allow_quantize;
        policy.fp8 = f->fp8;
        policy.headroom_bytes = f->headroom_bytes;
        policy.fallback_enabled = 0;
        st = edit_pipeline_set_policy(p, &policy);
    }
    if (st == CANVAS_OK) {
        canvas_edit_params params;
        canvas_edit_params_default(&params);
        params.width = a->width;
        params.height = a->height;
        params.vae_area = a->vae_area;
        params.steps = a->steps;
        params.cfg = (float)a->cfg;
        params.seed = a->seed;
        edit_request r;
        edit_request_from_params(&r, &prompt, images, a->n_images, &params);
        st = edit_run(p, &r, NULL, &image, &width, &height);
        row->plan = p->planned;
    }
    if (st == CANVAS_OK) {
        row->image = image;
        row->count = (size_t)width * height * 3;
        image = NULL;
    }
    mem_free(image);
    edit_pipeline_close(p);
    for (int i = 0; i < a->n_images; i++) image_free(&images[i]);
    canvas_prompt_free(&prompt);
    return st;
}

/* The measured peaks: the largest over the profiler's phases. */
static void measured_peaks(const profiler *prof, bench_row *row, int on_device)
{
    double step_seconds = 0;
    int steps = 0;
    for (int i = 0; i < profiler_phase_count(prof); i++) {
        const profiler_phase *ph = profiler_phase_at(prof, i);
        if (on_device && ph->device_peak_bytes > row->device) row->device = ph->device_peak_bytes;
        if (ph->host_peak_bytes > row->host) row->host = ph->host_peak_bytes;
        if (ph->pinned_peak_bytes > row->pinned) row->pinned = ph->pinned_peak_bytes;
        if (!strncmp(ph->name, "step ", 5)) {
            step_seconds += ph->seconds;
            steps++;
        }
    }
    row->seconds_per_step = steps ? step_seconds / steps : 0;
}

/* One preset on a fresh device with a fresh profiler. A plan that does not fit (or an
 * out-of-memory) is a row with its reason, not an error. */
static canvas_status run_preset(const bench_args *a, thread_pool *pool, plan_preset preset, bench_row *row)
{
    memset(row, 0, sizeof *row);
    row->preset = preset;
    row->plan.preset = -1;
    mem_device *device = mem_device_cpu();
    profiler *prof = NULL;
    int use_cuda;
    TRY(mem_device_choose((mem_device_choice)a->memory.device, &use_cuda));
    if (use_cuda && a->memory.device == MEM_DEVICE_CHOICE_CUDA) /* bench plays the device with --vram */
        return status_fail(CANVAS_ERR_UNSUPPORTED, "canvas bench: --device cuda: bench runs its presets on the "
                           "CPU (a --vram pool plays the GPU); time CUDA with canvas edit --device cuda --report");
    if (a->memory.vram_bytes) {
        TRY(mem_device_create_capped("gpu", (size_t)a->memory.vram_bytes, &device));
        mem_device_set_link_bandwidth(device, a->memory.link_bytes_per_second);
    }
    canvas_status st = profiler_create(device, mem_device_cpu(), &prof);
    const double start = clock_seconds();
    if (st == CANVAS_OK) {
        if (a->case_dir) {
            edit_case_plan options = {.strategy = preset, .allow_quantize = a->memory.allow_quantize,
                                      .headroom_bytes = a->memory.headroom_bytes, .fallback_enabled = 0,
                                      .fp8 = a->memory.fp8, .record = &row->plan};
            st = edit_case_run_planned(a->case_dir, pool, device, -1, &options, prof, NULL, keep_image, row);
        } else {
            st = run_flags(a, pool, device, prof, preset, row);
        }
        profiler_end(prof);
    }
    row->seconds_total = clock_seconds() - start;
    if (prof) measured_peaks(prof, row, !mem_device_is_host(device));
    profiler_destroy(prof);
    if (device != mem_device_cpu()) mem_device_destroy(device);
    /* fp8 / nf4 below the files' precision without --allow-quantize: a usage error for a run
     * that asked for it, a row here (bench tries every preset) */
    const int needs_quantize =
        st == CANVAS_ERR_USAGE && !a->memory.allow_quantize && (preset == PLAN_FP8 || preset == PLAN_NF4);
    if (st == CANVAS_ERR_OUT_OF_MEMORY || needs_quantize) {
        snprintf(row->reason, sizeof row->reason, "%s", canvas_last_error());
        status_clear();
        mem_free(row->image);
        row->image = NULL;
        return CANVAS_OK;
    }
    row->ran = st == CANVAS_OK;
    return st;
}

/* ---- output ----------------------------------------------------------------------------- */

static const char *weights_name(const edit_plan_record *p)
{
    return p->weights.format == QUANT_NONE ? "as stored" : quant_choice_name(p->weights);
}

static void print_json(const bench_row *rows, int n)
{
    printf("{\"rows\": [");
    for (int i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        printf("%s{\"preset\": \"%s\", \"ran\": %s, ", i ? ", " : "", plan_preset_name(r->preset),
               r->ran ? "true" : "false");
        if (!r->ran) {
            char reason[6 * sizeof r->reason + 3];
            progress_json_string(reason, sizeof reason, r->reason);
            printf("\"reason\": %s}", reason);
            continue;
        }
        printf("\"plan\": \"%s\", \"weights\": \"%s\", \"resident_blocks\": %d, "
               "\"predicted_device_peak_bytes\": %llu, \"predicted_pinned_peak_bytes\": %llu, "
               "\"predicted_host_peak_bytes\": %llu, \"measured_device_peak_bytes\": %llu, "
               "\"measured_pinned_peak_bytes\": %llu, \"measured_host_peak_bytes\": %llu, "
               "\"predicted_seconds_per_step\": %.6g, \"seconds_per_step\": %.6g, \"seconds_total\": %.6g, "
               "\"max_abs_diff\": %.9g}",
               r->plan.preset >= 0 ? plan_preset_name((plan_preset)r->plan.preset) : "host memory",
               weights_name(&r->plan), r->plan.resident_blocks, (unsigned long long)r->plan.device,
               (unsigned long long)r->plan.pinned, (unsigned long long)r->plan.host, (unsigned long long)r->device,
               (unsigned long long)r->pinned, (unsigned long long)r->host, r->plan.seconds_per_step,
               r->seconds_per_step, r->seconds_total, r->max_abs_diff);
    }
    printf("]}\n");
}

static void print_table(const bench_row *rows, int n, const bench_args *a)
{
    char v[32];
    printf("device: %s; peaks predicted / measured (bytes)\n\n",
           a->memory.vram_bytes ? size_format(a->memory.vram_bytes, v, sizeof v) : "none (host memory)");
    printf("%-10s %-10s %-9s %8s %23s %23s %23s %9s %8s %10s\n", "preset", "plan", "weights", "resident",
           "device peak", "pinned peak", "host peak", "s/step", "total s", "max|diff|");
    for (int i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        if (!r->ran) {
            printf("%-10s does not fit: %s\n", plan_preset_name(r->preset), r->reason);
            continue;
        }
        char dev[48], pin[48], host[48];
        snprintf(dev, sizeof dev, "%llu / %llu", (unsigned long long)r->plan.device, (unsigned long long)r->device);
        snprintf(pin, sizeof pin, "%llu / %llu", (unsigned long long)r->plan.pinned, (unsigned long long)r->pinned);
        snprintf(host, sizeof host, "%llu / %llu", (unsigned long long)r->plan.host, (unsigned long long)r->host);
        printf("%-10s %-10s %-9s %8d %23s %23s %23s %9.4f %8.3f %10.3g\n", plan_preset_name(r->preset),
               r->plan.preset >= 0 ? plan_preset_name((plan_preset)r->plan.preset) : "host",
               weights_name(&r->plan), r->plan.resident_blocks, dev, pin, host, r->seconds_per_step,
               r->seconds_total, r->max_abs_diff);
    }
}

int cmd_bench(int argc, char **argv)
{
    bench_args a;
    memset(&a, 0, sizeof a);
    a.steps = 4;
    a.cfg = EDIT_DEFAULT_CFG;
    a.vae_area = EDIT_DEFAULT_VAE_AREA;
    cli_memory_flags_init(&a.memory);
    if (argc == 0) {
        print_help(stderr);
        return 2;
    }
    int help = !strcmp(argv[0], "-h") || !strcmp(argv[0], "--help");
    int code = help ? 0 : cli_config_apply(argc, argv, "bench", &a.memory, NULL);
    if (code) return code;
    code = parse_args(&a, argc, argv);
    if (code) return code < 0 ? 0 : code;

    static const plan_preset order[] = {PLAN_FULL, PLAN_SEQUENTIAL, PLAN_OFFLOAD, PLAN_FP8, PLAN_NF4, PLAN_AUTO};
    enum { N = sizeof order / sizeof order[0] };
    bench_row rows[N];
    memset(rows, 0, sizeof rows);
    thread_pool *pool = NULL;
    canvas_status st = CANVAS_OK;
    if (a.memory.ram_bytes) st = mem_device_set_cap(mem_device_cpu(), (size_t)a.memory.ram_bytes);
    if (st == CANVAS_OK) st = thread_pool_create(a.memory.threads, &pool);
    int n = 0, first = -1, ran = 0;
    for (; st == CANVAS_OK && n < N; n++) {
        st = run_preset(&a, pool, order[n], &rows[n]);
        if (st != CANVAS_OK || !rows[n].ran) continue;
        ran++;
        if (first < 0) first = n;
        const bench_row *f = &rows[first];
        double diff = f->count == rows[n].count ? 0 : INFINITY;
        for (size_t k = 0; f->count == rows[n].count && k < f->count; k++)
            diff = fmax(diff, fabs((double)rows[n].image[k] - f->image[k]));
        rows[n].max_abs_diff = diff;
        if (!a.json)
            cli_note("%s ran in %.3f s", plan_preset_name(order[n]), rows[n].seconds_total);
    }
    thread_pool_destroy(pool);
    if (a.memory.ram_bytes) mem_device_set_cap(mem_device_cpu(), 0);
    if (st == CANVAS_OK) {
        if (a.json) print_json(rows, n);
        else print_table(rows, n, &a);
    }
    for (int i = 0; i < N; i++) mem_free(rows[i].image);
    if (st != CANVAS_OK) return cli_fail(st, "bench");
    if (ran == 0) {
        cli_note("no preset fits (the rows say why)");
        return 3;
    }
    return 0;
}
