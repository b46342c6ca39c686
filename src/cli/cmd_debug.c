/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_debug.c — `canvas debug case CASE_DIR --out OUT.safetensors [memory flags]`:
 * run one golden case (tests/golden/README.md) and write every tensor it computes under
 * the names expected.safetensors uses, so that a script or a person can diff them. The
 * memory flags (cli/memory_flags.h) put the model on a capped device with streaming and
 * write a report and a trace, as `canvas edit` will. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/path.h"
#include "base/status.h"
#include "cli/case_diff.h"
#include "cli/commands.h"
#include "cli/config_file.h"
#include "cli/memory_flags.h"
#include "cli/output_path.h"
#include "io/golden_case.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_case.h"
#include "models/qwen_image_vae_case.h"
#include "models/qwen_textenc_case.h"
#include "ops/ops_cpu.h"
#include "ops/threadpool.h"
#include "pipeline/edit_case.h"
#include "pipeline/lora.h"
#include "pipeline/scheduler_case.h"
#include "pipeline/prompt_case.h"
#include "plan/plan.h"

static void print_help(FILE *to)
{
    fprintf(to,
            "usage: canvas debug case CASE_DIR --out OUT.safetensors [--vram SIZE] [--ram SIZE]\n"
            "           [--link-bandwidth RATE] [--resident-blocks K] [--report FILE.json] [--trace FILE.json]\n"
            "           [--threads N] [--weights fp8|fp8-channel|fp8-e5m2|nf4|q8]\n"
            "\n"
            "Run a golden case: CASE_DIR/case.json names the op and the model (relative to the\n"
            "golden root, two folders above CASE_DIR); CASE_DIR/inputs.safetensors holds the inputs.\n"
            "Every tensor computed is written to OUT under the names of expected.safetensors\n"
            "(dit_forward: output, img_in, txt_in, temb, block.K.img, block.K.txt).\n"
            "Supported ops: dit_forward (with its 'loras' merged first: lora-* cases), vae_encode,\n"
            "vae_decode, schedule, edit_pipeline, textenc_forward, encode_prompt. Others exit 1 as not\n"
            "supported yet.\n"
            "\n"
            "options:\n"
            "  --out FILE             where to write the tensors (written to FILE.tmp, then renamed)\n"
            "  --weights FORMAT       quantise the transformer blocks' matrices on load (docs/quantization.md)\n"
            "  -h, --help             this text\n"
            "\n");
    cli_memory_flags_help(to);
    fprintf(to,
            "\n"
            "Report phases: \"load\" (model, plan, weights onto the device), \"step 0\" (the forward),\n"
            "\"write\" (the output file).\n"
            "\n"
            "exit codes: 0 ok, 2 usage, 3 out of memory, 4 bad case or model, 1 other\n");
}

/* The computed tensors, in the order they were produced. */
typedef struct collected {
    int count, capacity;
    st_write_tensor *tensors;
} collected;

static canvas_status collect_add(collected *c, const char *name, const float *data, int ndim, const int64_t *shape)
{
    if (c->count == c->capacity) {
        int capacity = c->capacity ? 2 * c->capacity : 16;
        TRY(mem_realloc((void **)&c->tensors, (size_t)capacity * sizeof *c->tensors, MEM_SCRATCH));
        c->capacity = capacity;
    }
    st_write_tensor *t = &c->tensors[c->count];
    memset(t, 0, sizeof *t);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    char *name_copy;
    TRY(mem_strdup(&name_copy, name));
    void *copy;
    canvas_status st = mem_alloc(&copy, numel * sizeof(float) + 1, MEM_SCRATCH);
    if (st != CANVAS_OK) {
        mem_free(name_copy);
        return st;
    }
    memcpy(copy, data, numel * sizeof(float));
    t->name = name_copy;
    t->type = DTYPE_F32;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->data = copy;
    c->count++;
    return CANVAS_OK;
}

static canvas_status collect_tap(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape)
{
    return collect_add(ctx, name, data, ndim, shape);
}

static void collect_free(collected *c)
{
    for (int i = 0; i < c->count; i++) {
        mem_free((void *)c->tensors[i].name);
        mem_free((void *)c->tensors[i].data);
    }
    mem_free(c->tensors);
}

/* Put the model on the session's device: the resident prefix given, or the planner's
 * choice (plan/plan.h) for this case under the strategy flags; the plan line to stderr. */
static canvas_status place_model(qwen_dit_model *model, thread_pool *pool, const qwen_dit_case *dc,
                                 const cli_memory_session *session)
{
    const cli_memory_flags *flags = session->flags;
    if (mem_device_is_host(session->device)) return CANVAS_OK; /* qwen_dit_load placed it there */
    int k = flags->resident_blocks;
    if (k < 0) {
        plan_work work;
        plan_work_transformer(&work, &model->config, dc->inputs.n_img, dc->inputs.n_txt, thread_pool_size(pool));
        plan_work_loaded(&work, model, NULL, NULL);
        work.backend = session->backend; /* CUDA's GEMM scratch is on the device too (NULL: the CPU's) */
        mem_device_stats device; /* the --vram pool's cap, or the CUDA region's */
        mem_device_get_stats(session->device, &device);
        plan_limits limits = {.device_bytes = device.cap_bytes, .headroom_bytes = flags->headroom_bytes,
                              .host_bytes = flags->ram_bytes, .same_format_only = 1};
        plan_hardware hw;
        if (plan_probe(flags->threads, flags->link_bytes_per_second, 2, &hw) != CANVAS_OK) status_clear();
        plan_result result;
        TRY(plan_make(&work, &hw, &limits, (plan_preset)flags->strategy, pool, &result));
        if (result.chosen < 0) return plan_no_fit(&result, &limits);
        char line[512];
        plan_describe(&result.candidates[result.chosen], &work, line, sizeof line);
        cli_note("plan: %s", line);
        k = result.candidates[result.chosen].point.resident_blocks;
    }
    return qwen_dit_place(model, session->device, k);
}

/* The case's LoRA files merged into the loaded model (before it is placed). */
static canvas_status apply_case_loras(qwen_dit_model *model, thread_pool *pool, const qwen_dit_case *dc)
{
    if (dc->n_loras == 0) return CANVAS_OK;
    lora_spec *specs;
    TRY(mem_calloc((void **)&specs, (size_t)dc->n_loras, sizeof *specs, MEM_SCRATCH));
    canvas_status st = CANVAS_OK;
    for (int i = 0; st == CANVAS_OK && i < dc->n_loras; i++) {
        specs[i] = (lora_spec){dc->loras[i].path, dc->loras[i].scale, LORA_NAMING_AUTO};
        st = lora_naming_parse(dc->loras[i].naming, &specs[i].naming);
    }
    if (st == CANVAS_OK) st = lora_apply_specs(model, pool, specs, dc->n_loras);
    mem_free(specs);
    return st;
}

/* qwen_dit_forward: load the transformer, run it with a tap, write `output` and then the
 * intermediates in the order the forward produced them. Phases: load, step 0, write. */
static canvas_status run_dit_case(const qwen_dit_case *dc, const cli_memory_session *session, const char *out_path,
                                  quant_choice weights)
{
    qwen_dit_model *model = NULL;
    thread_pool *pool = NULL;
    float *output = NULL;
    collected tensors = {0};
    canvas_status st = profiler_begin(session->profiler, "load");
    if (st == CANVAS_OK) st = qwen_dit_load_quantized(dc->model_dir, weights, &model);
    if (st == CANVAS_OK) st = thread_pool_create(session->flags->threads, &pool);
    if (st == CANVAS_OK) st = apply_case_loras(model, pool, dc);
    if (st == CANVAS_OK) st = place_model(model, pool, dc, session);
    int64_t channels = model ? qwen_dit_output_channels(&model->config) : 0;
    if (st == CANVAS_OK)
        st = mem_alloc((void **)&output, (size_t)(dc->inputs.n_img * channels) * sizeof(float), MEM_ACTIVATIONS);
    if (st == CANVAS_OK) st = profiler_begin(session->profiler, "step 0");
    qwen_dit_tap tap = {collect_tap, &tensors};
    if (st == CANVAS_OK)
        st = qwen_dit_forward(model, session->backend ? session->backend : OP_BACKEND_CPU(pool), &dc->inputs, &tap, output);
    if (st == CANVAS_OK) st = profiler_begin(session->profiler, "write");
    if (st == CANVAS_OK) {
        int64_t shape[3] = {1, dc->inputs.n_img, channels};
        st = collect_add(&tensors, "output", output, 3, shape);
    }
    if (st == CANVAS_OK) {
        /* `output` first, as in expected.safetensors' reading order */
        st_write_tensor last = tensors.tensors[tensors.count - 1];
        memmove(tensors.tensors + 1, tensors.tensors, (size_t)(tensors.count - 1) * sizeof *tensors.tensors);
        tensors.tensors[0] = last;
        st = st_write(out_path, tensors.tensors, tensors.count, NULL, 0);
    }
    if (st == CANVAS_OK && !mem_device_is_host(session->device)) {
        mem_device_stats stats;
        mem_device_get_stats(session->device, &stats);
        cli_note("%d of %d blocks resident on the %llu-byte device",
                qwen_dit_resident_blocks(model), model->config.num_layers, (unsigned long long)stats.cap_bytes);
    }
    collect_free(&tensors);
    mem_free(output);
    thread_pool_destroy(pool);
    qwen_dit_free(model);
    profiler_end(session->profiler);
    return st;
}

/* The pipeline's plan lines (the plan, each fallback) go to stderr. */
static void print_plan(void *ctx, const char *message)
{
    (void)ctx;
    cli_note("%s", message);
}

/* vae_encode, vae_decode, textenc_forward, schedule and edit_pipeline: their runners hand every tensor to
 * the sink; the edit pipeline records its own phases (load, vae-encode, step K, ...). */
static canvas_status run_sink_case(const char *case_dir, const char *op, const cli_memory_session *session,
                                   const char *out_path)
{
    thread_pool *pool = NULL;
    collected tensors = {0};
    int is_edit = !strcmp(op, "edit_pipeline");
    canvas_status st = is_edit ? CANVAS_OK : profiler_begin(session->profiler, "run");
    if (st == CANVAS_OK) st = thread_pool_create(session->flags->threads, &pool);
    if (st == CANVAS_OK) {
        const cli_memory_flags *f = session->flags;
        edit_case_plan plan = {.strategy = f->strategy, .allow_quantize = f->allow_quantize,
                               .headroom_bytes = f->headroom_bytes, .fallback_enabled = !f->no_fallback};
        plan.fp8 = f->fp8;
        plan.oom_retry_attempts = f->oom_retry_attempts;
        plan.n_preferred = f->n_preferred;
        plan.dit_backend = session->backend;
        memcpy(plan.preferred, f->preferred, sizeof plan.preferred);
        if (is_edit)
            st = edit_case_run_planned(case_dir, pool, session->device, f->resident_blocks, &plan, session->profiler,
                                       print_plan, collect_tap, &tensors);
        else if (!strcmp(op, "vae_encode") || !strcmp(op, "vae_decode"))
            st = vae_case_run(case_dir, OP_BACKEND_CPU(pool), collect_tap, &tensors);
        else if (!strcmp(op, "textenc_forward"))
            st = session->backend /* a device with its own backend (CUDA): the encoder placed there */
                     ? textenc_case_run_on(case_dir, session->backend, session->device, collect_tap, &tensors)
                     : textenc_case_run(case_dir, OP_BACKEND_CPU(pool), collect_tap, &tensors);
        else if (!strcmp(op, "encode_prompt"))
            st = prompt_case_run(case_dir, pool, collect_tap, &tensors);
        else
            st = schedule_case_run(case_dir, collect_tap, &tensors);
    }
    if (st == CANVAS_OK) st = profiler_begin(session->profiler, "write");
    if (st == CANVAS_OK) st = st_write(out_path, tensors.tensors, tensors.count, NULL, 0);
    collect_free(&tensors);
    thread_pool_destroy(pool);
    profiler_end(session->profiler);
    return st;
}

/* The ops a case may name (docs/cli.md). */
static const char *const case_ops[] = {"dit_forward", "edit_pipeline",   "vae_encode",    "vae_decode",
                                       "schedule",    "textenc_forward", "encode_prompt", NULL};

/* The model folder case.json names (two folders above CASE_DIR), which --out must not
 * overwrite either; "" when the case names none or cannot be read (the run says why), but
 * an out-of-memory is returned (never swallowed). */
static canvas_status case_model_folder(const char *case_dir, char *model_dir, size_t size)
{
    char path[PATH_BUFFER_SIZE];
    json_t *root;
    const char *op;
    canvas_status st = golden_case_open(case_dir, case_ops, NULL, path, sizeof path, &root, &op, model_dir, size);
    json_decref(root);
    if (st == CANVAS_OK || st == CANVAS_ERR_OUT_OF_MEMORY) return st;
    model_dir[0] = '\0';
    status_clear();
    return CANVAS_OK;
}

/* An output flag against the case folder and the model folder; 0 or exit code 2. */
static int check_case_output(const char *flag, const char *path, const char *const *extensions,
                             const char *const *files, const char *case_dir, const char *model_dir)
{
    if (cli_check_output("debug", flag, path, extensions, files, 4, case_dir, "case")) return 2;
    return model_dir[0] && cli_check_output("debug", flag, path, extensions, files, 4, model_dir, "model") ? 2 : 0;
}

static int cmd_debug_case(int argc, char **argv)
{
    const char *case_dir = NULL, *out_path = NULL;
    quant_choice weights = {QUANT_NONE, 0};
    cli_memory_flags flags;
    cli_memory_flags_init(&flags);
    int config_code = cli_config_apply(argc, argv, "debug", &flags, NULL);
    if (config_code) return config_code;
    for (int i = 0; i < argc; i++) {
        int memory_flag = cli_memory_flags_parse(&flags, argc, argv, &i, "debug");
        if (memory_flag < 0) return 2;
        if (memory_flag > 0) continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            print_help(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--out")) {
            if (++i == argc) return cli_usage_error("debug", "--out needs a file name");
            out_path = argv[i];
        } else if (!strcmp(argv[i], "--weights")) {
            if (++i == argc || quant_choice_parse(argv[i], &weights) != CANVAS_OK)
                return cli_usage_error("debug", "--weights needs fp8, fp8-channel, fp8-e5m2, nf4, q8 or none");
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            char message[256];
            snprintf(message, sizeof message, "unknown option '%s'", argv[i]);
            return cli_usage_error("debug", message);
        } else if (!case_dir) {
            case_dir = argv[i];
        } else {
            return cli_usage_error("debug", "give one CASE_DIR");
        }
    }
    if (!case_dir) return cli_usage_error("debug", "missing CASE_DIR");
    if (!out_path) return cli_usage_error("debug", "missing --out OUT.safetensors");
    const char *files[] = {out_path, flags.report_path, flags.trace_path, flags.config_path};
    char model_dir[PATH_BUFFER_SIZE] = "";
    canvas_status st = case_model_folder(case_dir, model_dir, sizeof model_dir);
    if (st != CANVAS_OK) return cli_fail(st, "debug case");
    if (check_case_output("--out", out_path, cli_tensor_extensions, files, case_dir, model_dir)) return 2;
    if (flags.report_path && check_case_output("--report", flags.report_path, cli_json_extensions, files, case_dir, model_dir))
        return 2;
    if (flags.trace_path && check_case_output("--trace", flags.trace_path, cli_json_extensions, files, case_dir, model_dir))
        return 2;
    if (cli_memory_flags_check(&flags, "debug") < 0) return 2;
    cli_memory_flags_fit_machine(&flags);

    cli_memory_session session;
    st = cli_memory_session_begin(&flags, &session);
    if (st != CANVAS_OK) return cli_fail(st, "debug case");
    char op[64] = "";
    st = golden_case_op(case_dir, op, sizeof op);
    if (st != CANVAS_OK) {
        /* reported below */
    } else if (!strcmp(op, "edit_pipeline") || !strcmp(op, "vae_encode") || !strcmp(op, "vae_decode") ||
               !strcmp(op, "schedule") || !strcmp(op, "textenc_forward") || !strcmp(op, "encode_prompt")) {
        st = run_sink_case(case_dir, op, &session, out_path);
    } else if (!strcmp(op, "dit_forward")) {
        qwen_dit_case *dc = NULL;
        st = qwen_dit_case_open(case_dir, &dc);
        if (st == CANVAS_OK) st = run_dit_case(dc, &session, out_path, weights);
        qwen_dit_case_free(dc);
    } else {
        char known[160] = "";
        for (int i = 0; case_ops[i]; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", case_ops[i]);
        st = status_fail(CANVAS_ERR_UNSUPPORTED, "%s/case.json: op '%s' is not supported (known: %s)", case_dir, op, known);
    }
    /* the report and the trace are written after a failure too: they show where memory went */
    canvas_status written = cli_memory_session_end(&session);
    if (st != CANVAS_OK) return cli_fail(st, "debug case");
    if (written != CANVAS_OK) return cli_fail(written, "debug case");
    cli_note("wrote %s", out_path);
    /* a diagnostic after the run: the output stands even when the comparison cannot be made */
    if (cli_print_case_diff(case_dir, out_path) != CANVAS_OK) {
        cli_warn("no comparison with the expected values: %s", canvas_last_error());
        status_clear();
    }
    return 0;
}

int cmd_debug(int argc, char **argv)
{
    if (argc < 1) {
        print_help(stderr);
        return 2;
    }
    if (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help")) {
        print_help(stdout);
        return 0;
    }
    if (!strcmp(argv[0], "case")) {
        cli_set_command("debug case");
        return cmd_debug_case(argc - 1, argv + 1);
    }
    char message[256];
    snprintf(message, sizeof message, "unknown debug command '%s' (known: case)", argv[0]);
    return cli_usage_error("debug", message);
}
