/* SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L
/* test_plan.c — the planner: predicted device peaks against measured ones for every
 * preset, caps that force a preset, out-of-memory fallbacks that keep the result, and the
 * probe cache's versioning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/size_parse.h"
#include "check.h"
#include "io/config.h"
#include "mem/mem.h"
#include "mem/mem_device.h"
#include "ops/ops.h"
#include "pipeline/edit.h"
#include "pipeline/edit_case.h"
#include "pipeline/lora.h"
#include "models/qwen_textenc.h"
#include "plan/plan.h"

static char case_dir[4096];

typedef struct image_sink {
    float *image;
    size_t count;
} image_sink;

static canvas_status keep_image(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape)
{
    image_sink *s = ctx;
    if (strcmp(name, "image")) return CANVAS_OK;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    free(s->image);
    s->image = malloc(n * sizeof(float));
    if (!s->image) return CANVAS_ERR_OUT_OF_MEMORY;
    memcpy(s->image, data, n * sizeof(float));
    s->count = n;
    return CANVAS_OK;
}

/* Run the case on a capped device of `cap` with a strategy; the device's peak. */
static canvas_status run_case(size_t cap, plan_preset preset, thread_pool *pool, image_sink *sink, size_t *peak)
{
    mem_device *gpu;
    TRY(mem_device_create_capped("gpu", cap, &gpu));
    edit_case_plan options = {.strategy = preset, .allow_quantize = 1, .fallback_enabled = 1};
    canvas_status st = edit_case_run_planned(case_dir, pool, gpu, -1, &options, NULL, NULL, keep_image, sink);
    mem_device_stats stats;
    mem_device_get_stats(gpu, &stats);
    *peak = stats.peak_bytes;
    CHECK(stats.current_bytes == 0);
    mem_device_destroy(gpu);
    return st;
}

static void predict(size_t cap, thread_pool *pool, plan_result *out)
{
    edit_case_shape shape;
    CHECK_OK(edit_case_shape_read(case_dir, &shape));
    edit_pipeline *p = NULL;
    CHECK_OK(edit_pipeline_open(shape.model_dir, &p));
    if (!p) return;
    plan_work w;
    plan_work_edit(&w, &p->dit->config, &p->vae->config, shape.width, shape.height, shape.n_images, shape.ref_width,
                   shape.ref_height, shape.n_txt, shape.cfg, shape.steps, thread_pool_size(pool));
    plan_work_loaded(&w, p->dit, NULL, p->vae);
    plan_hardware hw;
    CHECK_OK(plan_probe(0, 0, 2, &hw));
    plan_limits l = {.device_bytes = cap, .allow_quantize = 1};
    CHECK_OK(plan_make(&w, &hw, &l, PLAN_AUTO, pool, out));
    edit_pipeline_close(p);
}

/* Every preset: predicted device peak within 5 % of the measured one, never 2 % below. */
static void test_predicted_peaks(void)
{
    thread_pool *pool;
    CHECK_OK(thread_pool_create(2, &pool));
    const size_t cap = (size_t)64 << 20;
    plan_result r;
    predict(cap, pool, &r);
    for (int i = 0; i < r.n; i++) {
        image_sink sink = {0};
        size_t measured = 0;
        CHECK_OK(run_case(cap, (plan_preset)i, pool, &sink, &measured));
        double predicted = (double)r.candidates[i].peak.device;
        printf("  %-10s predicted %10.0f measured %10zu bytes (%+.2f %%)\n", plan_preset_name((plan_preset)i),
               predicted, measured, 100.0 * (predicted - (double)measured) / (double)measured);
        CHECK(measured > 0);
        CHECK(predicted <= 1.05 * (double)measured && predicted >= 0.98 * (double)measured);
        free(sink.image);
    }
    thread_pool_destroy(pool);
}

/* Caps that leave room only for fp8, then only for nf4: auto picks them by itself; the
 * output equals the same preset's uncapped run, bit for bit; the stored format's too. */
static void test_caps_force_presets(void)
{
    thread_pool *pool;
    CHECK_OK(thread_pool_create(2, &pool));
    plan_result r;
    predict((size_t)64 << 20, pool, &r);
    const size_t full = r.candidates[PLAN_FULL].peak.device, fp8 = r.candidates[PLAN_FP8].peak.device,
                 nf4 = r.candidates[PLAN_NF4].peak.device;
    CHECK(nf4 < fp8 && fp8 < full);
    const struct {
        plan_preset preset;
        size_t cap;
    } cases[] = {{PLAN_FULL, full + full / 50}, {PLAN_FP8, (fp8 + full) / 2}, {PLAN_NF4, (nf4 + fp8) / 2}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        image_sink forced = {0}, reference = {0};
        size_t peak;
        CHECK_OK(run_case(cases[c].cap, PLAN_AUTO, pool, &forced, &peak));
        CHECK_OK(run_case((size_t)64 << 20, cases[c].preset, pool, &reference, &peak));
        CHECK(forced.image && reference.image && forced.count == reference.count &&
              !memcmp(forced.image, reference.image, forced.count * sizeof(float)));
        printf("  cap %zu bytes: auto ran %s, output identical to the uncapped %s run\n", cases[c].cap,
               plan_preset_name(cases[c].preset), plan_preset_name(cases[c].preset));
        free(forced.image);
        free(reference.image);
    }
    thread_pool_destroy(pool);
}

/* The public API: injected transient failures at many points, and a cap lowered between
 * steps: every run completes with the undisturbed image and counts its fallbacks. */
typedef struct lower_cap {
    canvas_model *model;
    uint64_t to;
} lower_cap;

static void on_progress(void *ctx, const canvas_progress *p)
{
    lower_cap *l = ctx;
    if (l && p->kind == CANVAS_PROGRESS_STEP && p->step == 1) CHECK_OK(canvas_set_vram_limit(l->model, l->to));
}

static void test_fallbacks(void)
{
    char model_dir[4200], path[4200];
    snprintf(model_dir, sizeof model_dir, "%s/../../models/edit-tiny", case_dir);
    canvas_options o;
    canvas_options_default(&o);
    o.vram_bytes = 8u << 20;
    o.threads = 2;
    canvas_model *m = NULL;
    canvas_prompt prompt = {0};
    canvas_image image = {0}, want = {0}, got = {0};
    CHECK_OK(canvas_open(model_dir, &o, &m));
    snprintf(path, sizeof path, "%s/inputs.safetensors", case_dir);
    CHECK_OK(canvas_prompt_load(path, &prompt));
    snprintf(path, sizeof path, "%s/image0.png", case_dir);
    CHECK_OK(canvas_image_load(path, &image));
    canvas_edit_params e;
    canvas_edit_params_default(&e);
    e.steps = 3;
    e.vae_area = 64 * 64;
    CHECK_OK(canvas_edit(m, &prompt, &image, 1, &e, NULL, NULL, &want));
    if (!want.pixels) goto done;
    int completed = 0;
    for (uint64_t n = 1; n < 100000; n += (n < 40 ? 1 : 13)) {
        mem_fault_plan plan = {n, 0, -1};
        mem_fault_arm(&plan);
        canvas_status st = canvas_edit(m, &prompt, &image, 1, &e, NULL, NULL, &got);
        uint64_t hits = mem_fault_hits();
        mem_fault_disarm();
        CHECK_MSG(st == CANVAS_OK, "N=%llu: %s", (unsigned long long)n, canvas_last_error());
        if (st == CANVAS_OK) CHECK(!memcmp(got.pixels, want.pixels, (size_t)want.width * want.height * 3));
        canvas_image_free(&got);
        if (!hits) break; /* past the run's last allocation */
        completed++;
    }
    printf("  %d runs with an injected failure, every one completed with the undisturbed image\n", completed);
    CHECK(completed > 30);
    /* the cap lowered after step 1 to the peak the run needs: the next step's arena may no
     * longer find room next to the placed weights; the run falls back and completes */
    lower_cap l = {m, 0};
    canvas_memory_snapshot snap;
    CHECK_OK(canvas_memory_snapshot_take(m, &snap));
    l.to = snap.device_peak_bytes;
    CHECK_OK(canvas_edit(m, &prompt, &image, 1, &e, on_progress, &l, &got));
    CHECK(got.pixels && !memcmp(got.pixels, want.pixels, (size_t)want.width * want.height * 3));
    canvas_image_free(&got);
    CHECK_OK(canvas_profile_write_report(m, "/tmp/canvas_test_plan_report.json"));
    FILE *f = fopen("/tmp/canvas_test_plan_report.json", "r");
    char text[4096] = {0};
    if (f) {
        size_t got_bytes = fread(text, 1, sizeof text - 1, f);
        (void)got_bytes;
        fclose(f);
    }
    remove("/tmp/canvas_test_plan_report.json");
    const char *fb = strstr(text, "\"fallbacks\": ");
    CHECK(fb && atoi(fb + 13) >= completed);
    printf("  report: %.40s\n", fb ? fb : "(no fallbacks key)");
done:
    canvas_image_free(&want);
    canvas_image_free(&image);
    canvas_prompt_free(&prompt);
    canvas_close(m);
}

/* The planner reloads the transformer in fp8 (strategy fp8 on bf16 files): the pipeline's
 * LoRA is merged again, so the image equals a run whose transformer was loaded in fp8 and
 * merged by hand (bit for bit), and differs from the same run without the LoRA. */
typedef enum { RELOAD_WITH_LORA, LOADED_FP8_WITH_LORA, RELOAD_NO_LORA } reload_case;

static void run_reload(reload_case which, const canvas_prompt *prompt, const canvas_image *image, thread_pool *pool,
                       float **out)
{
    char model_dir[4200], lora[4200];
    snprintf(model_dir, sizeof model_dir, "%s/../../models/edit-tiny", case_dir);
    snprintf(lora, sizeof lora, "%s/../lora-kohya/lora0-kohya.safetensors", case_dir);
    const lora_spec spec = {lora, 0.8f, LORA_NAMING_AUTO};
    const quant_choice fp8 = {QUANT_FP8_E4M3, 0};
    *out = NULL;
    edit_pipeline *p = NULL;
    mem_device *gpu = NULL;
    CHECK_OK(mem_device_create_capped("gpu", (size_t)8 << 20, &gpu));
    CHECK_OK(edit_pipeline_open(model_dir, &p));
    if (!p || !gpu) return;
    if (which == RELOAD_WITH_LORA) CHECK_OK(edit_pipeline_add_loras(p, pool, &spec, 1));
    if (which == LOADED_FP8_WITH_LORA) {
        qwen_dit_model *q = NULL;
        CHECK_OK(qwen_dit_load_quantized(p->dit->component_dir, fp8, &q));
        CHECK_OK(lora_apply_specs(q, pool, &spec, 1));
        qwen_dit_free(p->dit);
        p->dit = q;
    }
    p->pool = pool;
    p->device = gpu;
    p->strategy = PLAN_FP8;
    p->allow_quantize = 1;
    edit_request r;
    memset(&r, 0, sizeof r);
    r.prompt = (edit_text){prompt->positive.values, prompt->positive.length, prompt->positive.dim, NULL};
    r.negative = (edit_text){prompt->negative.values, prompt->negative.length, prompt->negative.dim, NULL};
    r.images = image;
    r.n_images = 1;
    r.vae_area = 64 * 64;
    r.steps = 2;
    r.cfg = 4.0f;
    int w, h;
    CHECK_OK(edit_run(p, &r, NULL, out, &w, &h));
    CHECK(w == 64 && h == 64); /* the caller compares 64 x 64 x 3 floats */
    CHECK(p->dit->weights_format.format == QUANT_FP8_E4M3 && p->planned.preset == PLAN_FP8);
    edit_pipeline_close(p);
    mem_device_destroy(gpu);
}

static void test_quantised_reload_keeps_loras(void)
{
    thread_pool *pool;
    CHECK_OK(thread_pool_create(2, &pool));
    char path[4200];
    canvas_prompt prompt = {0};
    canvas_image image = {0};
    snprintf(path, sizeof path, "%s/inputs.safetensors", case_dir);
    CHECK_OK(canvas_prompt_load(path, &prompt));
    snprintf(path, sizeof path, "%s/image0.png", case_dir);
    CHECK_OK(canvas_image_load(path, &image));
    float *reloaded, *by_hand, *plain;
    run_reload(RELOAD_WITH_LORA, &prompt, &image, pool, &reloaded);
    run_reload(LOADED_FP8_WITH_LORA, &prompt, &image, pool, &by_hand);
    run_reload(RELOAD_NO_LORA, &prompt, &image, pool, &plain);
    const size_t n = 64 * 64 * 3;
    if (reloaded && by_hand && plain) {
        CHECK(!memcmp(reloaded, by_hand, n * sizeof(float)));
        double d = 0;
        for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)reloaded[i] - plain[i]));
        CHECK(d > 1e-3);
        printf("  fp8 reload: LoRA merged again (identical to fp8 + LoRA by hand; %.3g from no LoRA)\n", d);
    }
    mem_free(reloaded);
    mem_free(by_hand);
    mem_free(plain);
    canvas_image_free(&image);
    canvas_prompt_free(&prompt);
    thread_pool_destroy(pool);
}

/* ---- the text encoder in the plan (issue 12): Qwen-Image-Edit-2511's real configs -------- */

/* A machine of `flops` per second in every format, a `link` (0: none) and a 2 GB/s disk. */
static plan_hardware nominal_hardware(double flops, double link)
{
    plan_hardware hw;
    memset(&hw, 0, sizeof hw);
    for (int f = 0; f < QUANT_FORMAT_COUNT; f++) hw.flops_per_second[f] = flops;
    hw.link_bytes_per_second = link;
    hw.disk_bytes_per_second = 2e9;
    return hw;
}

static canvas_status real_work(plan_work *w)
{
    char path[4400], dir[4096];
    test_path(dir, sizeof dir, "real-configs/qwen-image-edit-2511");
    qwen_dit_config dit;
    vae_config vae;
    textenc_config te;
    snprintf(path, sizeof path, "%s/transformer/config.json", dir);
    TRY(qwen_dit_config_load(path, &dit));
    snprintf(path, sizeof path, "%s/vae/config.json", dir);
    TRY(vae_config_load(path, &vae));
    snprintf(path, sizeof path, "%s/text_encoder/config.json", dir);
    TRY(textenc_config_load(path, &te));
    plan_work_edit(w, &dit, &vae, 1024, 1024, 1, 0, 0, 200, 1, 50, 2);
    plan_work_text_encoder(w, &te, PLAN_PROMPT_EDIT_PLUS);
    return CANVAS_OK;
}

/* Sizes by hand from config.json (tools: the python of the commit message): a decoder layer
 * packs q, k, v, o, gate, up, down at 256-byte boundaries plus 11,776 f32 vector values; a
 * vision block qkv, proj, gate, up, down plus 12,544 (its 3,420-wide biases padded to
 * 3,424); the top level the patch embed (1280 x 1176), merger 5120^2 and 3584 x 5120 as
 * stored plus 13,568 floats. nf4 and q8 cannot hold the vision down_proj (width 3,420):
 * it stays bf16. */
static void test_text_encoder_sizes(void)
{
    plan_work w;
    CHECK_OK(real_work(&w));
    const plan_component *te = &w.components[PLAN_TEXT_ENCODER];
    uint64_t params = 0, host_params = 0, bytes = 0;
    CHECK_OK(plan_textenc_size(&te->config.text, &params, &host_params));
    CHECK(params == 7747169280ull);         /* lm_head (544,997,376) left out */
    CHECK(host_params == 544997376ull);     /* embed_tokens: 152,064 x 3,584 */
    char text[32];
    CHECK(!strcmp(size_format(params * 2, text, sizeof text), "14.43 GiB"));
    CHECK(plan_textenc_layers(&te->config.text) == 60); /* 32 vision blocks + 28 decoder layers */
    const struct {
        quant_choice format;
        uint64_t resident, streamed; /* all 60 layer groups resident; none (top + two slots) */
    } formats[] = {
        {{QUANT_NONE, 0}, 14406042624ull, 92193792ull + 2 * 466139136ull},
        {{QUANT_FP8_E4M3, 0}, 7250789376ull, 92193792ull + 2 * 233093120ull},
        {{QUANT_NF4, 0}, 4321739776ull, 92193792ull + 2 * 131135488ull},
        {{QUANT_Q8_0, 0}, 7829324800ull, 92193792ull + 2 * 247658496ull},
    };
    for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
        CHECK_OK(plan_textenc_weight_bytes(&te->config.text, formats[f].format, 2, 60, &bytes));
        CHECK_MSG(bytes == formats[f].resident, "%s: %llu", quant_choice_name(formats[f].format),
                  (unsigned long long)bytes);
        CHECK_OK(plan_textenc_weight_bytes(&te->config.text, formats[f].format, 2, 0, &bytes));
        CHECK_MSG(bytes == formats[f].streamed, "%s streamed: %llu", quant_choice_name(formats[f].format),
                  (unsigned long long)bytes);
        printf("  text encoder %-9s resident %llu bytes, every layer streamed %llu\n",
               formats[f].format.format == QUANT_NONE ? "as stored" : quant_choice_name(formats[f].format),
               (unsigned long long)formats[f].resident, (unsigned long long)formats[f].streamed);
    }
    /* one streamed layer: one slot, so as much as all resident */
    CHECK_OK(plan_textenc_weight_bytes(&te->config.text, (quant_choice){QUANT_NONE, 0}, 2, 59, &bytes));
    CHECK(bytes == 14406042624ull);
    /* 264 tokens (64 dropped + 200) and 784 patches (a 28 x 28 grid): the forward's own
     * arena formula (textenc_activation_bytes, checked against a run in test_textenc) */
    CHECK(te->text_tokens == 264 && te->vision_patches[0] == 784);
    const int64_t grid28[1][3] = {{1, 28, 28}};
    CHECK(plan_textenc_activation_bytes(&te->config.text, 264, te->vision_patches, 1) ==
          textenc_activation_bytes(&te->config.text, 264, grid28, 1));
    CHECK(plan_textenc_activation_bytes(&te->config.text, 264, te->vision_patches, 1) == 74936128ull);

    /* the pipeline classes' prompts: Edit encodes its first image at ~1024x1024 (5,476
     * patches, a 74 x 74 grid: the vision pass is then the larger), text-to-image none */
    CHECK(plan_prompt_style_of("QwenImageEditPlusPipeline") == PLAN_PROMPT_EDIT_PLUS);
    CHECK(plan_prompt_style_of("QwenImageEditPipeline") == PLAN_PROMPT_EDIT);
    CHECK(plan_prompt_style_of("QwenImagePipeline") == PLAN_PROMPT_TEXT_TO_IMAGE);
    plan_work two = w;
    const plan_component *te2 = &two.components[PLAN_TEXT_ENCODER];
    two.n_refs = 2;
    plan_work_text_encoder(&two, &te->config.text, PLAN_PROMPT_EDIT);
    CHECK(te2->text_tokens == 264 && te2->vision_patches[0] == 5476 && te2->vision_patches[1] == 0);
    CHECK(plan_textenc_activation_bytes(&te->config.text, 264, te2->vision_patches, 2) == 500754560ull);
    plan_work_text_encoder(&two, &te->config.text, PLAN_PROMPT_EDIT_PLUS);
    CHECK(te2->vision_patches[0] == 784 && te2->vision_patches[1] == 784 && te2->vision_patches[2] == 0);
    plan_work_text_encoder(&two, &te->config.text, PLAN_PROMPT_TEXT_TO_IMAGE);
    CHECK(te2->text_tokens == 234 && te2->vision_patches[0] == 0);
}

static uint64_t phase_max(const plan_candidate *c, int kind)
{
    uint64_t most = 0;
    for (int ph = 0; ph < PLAN_PHASE_COUNT; ph++) {
        const uint64_t v = kind == 0 ? c->phases[ph].device : kind == 1 ? c->phases[ph].pinned : c->phases[ph].host;
        if (v > most) most = v;
    }
    return most;
}

/* A GPU: 24 GB holds the encoder resident (its weights + its arena, to the byte); 8 GB only
 * streamed (all resident would not fit; the largest prefix does); 1 GiB not even streamed
 * as stored: it computes on the host. The run's peak is the largest phase, not the sum. */
static void test_text_encode_phase(void)
{
    plan_work w;
    CHECK_OK(real_work(&w));
    const plan_component *te = &w.components[PLAN_TEXT_ENCODER];
    thread_pool *pool;
    CHECK_OK(thread_pool_create(2, &pool));
    const plan_hardware hw = nominal_hardware(50e12, 25e9);
    const uint64_t headroom = (uint64_t)512 << 20;
    plan_limits l = {.headroom_bytes = headroom, .host_bytes = (uint64_t)60 << 30, .vae_on_device = 1,
                     .pinned_streaming = 1};
    const uint64_t arena = plan_textenc_activation_bytes(&te->config.text, te->text_tokens, te->vision_patches, 1);
    plan_result r;

    l.device_bytes = (uint64_t)24 << 30;
    CHECK_OK(plan_make(&w, &hw, &l, PLAN_AUTO, pool, &r));
    const plan_candidate *c = r.chosen >= 0 ? &r.candidates[r.chosen] : NULL;
    CHECK(c != NULL);
    if (c) {
        CHECK(c->point.preset == PLAN_OFFLOAD && !c->point.text_on_host && c->point.text_resident == 60);
        CHECK(c->phases[PLAN_PHASE_TEXT].device == 14406042624ull + arena);
        CHECK(c->phases[PLAN_PHASE_TEXT].pinned == 0);
        CHECK(c->peak.device == phase_max(c, 0) && c->peak.host == phase_max(c, 2));
        CHECK(c->peak.device == c->phases[PLAN_PHASE_DENOISE].device); /* 23.12 GiB: the transformer's */
        CHECK(c->peak.device < c->phases[PLAN_PHASE_DENOISE].device + c->phases[PLAN_PHASE_TEXT].device);
        CHECK(c->text_seconds > 0);
    }

    l.device_bytes = (uint64_t)8 << 30;
    CHECK_OK(plan_make(&w, &hw, &l, PLAN_AUTO, pool, &r));
    c = r.chosen >= 0 ? &r.candidates[r.chosen] : NULL;
    CHECK(c != NULL);
    if (c) {
        const int k = c->point.text_resident;
        uint64_t weights = 0, more = 0;
        CHECK_OK(plan_textenc_weight_bytes(&te->config.text, c->point.text_weights, 2, k, &weights));
        CHECK_OK(plan_textenc_weight_bytes(&te->config.text, c->point.text_weights, 2, k + 1, &more));
        const uint64_t room = l.device_bytes - headroom;
        CHECK_MSG(!c->point.text_on_host && k == 44, "8 GB: %d layers resident", k); /* 32 vision + 12 decoder */
        CHECK(c->phases[PLAN_PHASE_TEXT].device == weights + arena && weights + arena <= room);
        CHECK(more + arena > room); /* one more resident layer would not fit */
        CHECK(14406042624ull + arena > room); /* nor would all of them: only streaming fits */
        /* time: two passes (CFG), each reading the 16 streamed decoder layers (466,139,136
         * bytes each as stored) from the file at 2 GB/s: at least 7.46 s */
        CHECK(c->text_seconds >= 2 * 16 * 466139136.0 / 2e9 && c->text_seconds < 10.0);
        /* here the encoder's phase is the run's peak (7.41 GiB over the transformer's 7.29 GiB) */
        CHECK(c->peak.device == c->phases[PLAN_PHASE_TEXT].device &&
              c->phases[PLAN_PHASE_TEXT].device > c->phases[PLAN_PHASE_DENOISE].device);
        printf("  8 GB: text encoder %d of 60 layers resident, text-encode %llu bytes, denoise %llu, peak %llu\n", k,
               (unsigned long long)c->phases[PLAN_PHASE_TEXT].device,
               (unsigned long long)c->phases[PLAN_PHASE_DENOISE].device, (unsigned long long)c->peak.device);
    }

    /* 1 GiB, no headroom: as stored, the top level and two decoder-layer slots (0.95 GiB)
     * plus the arena do not fit: sequential computes the encoder on the host (its phase
     * costs host memory, no device bytes); nf4's slots (0.33 GiB with the top level) do */
    l.device_bytes = (uint64_t)1 << 30;
    l.headroom_bytes = 0;
    CHECK_OK(plan_make(&w, &hw, &l, PLAN_AUTO, pool, &r));
    c = &r.candidates[PLAN_SEQUENTIAL];
    CHECK(c->point.text_on_host && c->phases[PLAN_PHASE_TEXT].device == 0);
    CHECK(c->phases[PLAN_PHASE_TEXT].host > arena); /* its activations in host memory */
    c = &r.candidates[PLAN_NF4];
    CHECK(!c->point.text_on_host && c->point.text_resident > 0 && c->point.text_resident < 60);
    thread_pool_destroy(pool);
}

/* The probe cache: an entry without the current version is measured again and rewritten;
 * the rewritten one is then read back as cached. */
static void test_probe_cache_version(void)
{
    plan_hardware hw;
    CHECK_OK(plan_probe(1, 0, 2, &hw)); /* no cache (CANVAS_PROBE_CACHE is unreadable): nominal */
    char path[] = "/tmp/canvas_test_probeXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    /* an entry as the previous version wrote it: this CPU, plausible figures, no version */
    char old_entry[1024];
    int len = snprintf(old_entry, sizeof old_entry,
                       "{\"threads_1\": {\"cpu\": \"%s\", \"link_bytes_per_second\": 1e9, \"none\": 1e9, "
                       "\"fp8_e4m3\": 1e9, \"fp8_e5m2\": 1e9, \"nf4\": 1e9, \"q8_0\": 1e9}}",
                       hw.cpu_features);
    CHECK(write(fd, old_entry, (size_t)len) == (ssize_t)len);
    close(fd);
    char *saved = getenv("CANVAS_PROBE_CACHE") ? strdup(getenv("CANVAS_PROBE_CACHE")) : NULL;
    setenv("CANVAS_PROBE_CACHE", path, 1);
    CHECK_OK(plan_probe(1, 0, 1, &hw));
    CHECK_MSG(strstr(hw.flops_source, "cached") == NULL, "an unversioned entry was trusted: %s", hw.flops_source);
    CHECK(hw.flops_per_second[QUANT_NONE] > 1e9); /* measured, not the planted 1e9 */
    CHECK_OK(plan_probe(1, 0, 1, &hw));
    CHECK_MSG(strstr(hw.flops_source, "cached") != NULL, "the rewritten entry was not read back: %s",
              hw.flops_source);
    if (saved) setenv("CANVAS_PROBE_CACHE", saved, 1);
    free(saved);
    unlink(path);
}

/* Computing in host memory (no device), the transformer reads every stored matrix in place
 * from the mapping at each call: 40,849,637,376 bytes in bf16 (20,424,818,688 matrix
 * parameters of the 60 blocks and the top level). With 16 GiB of RAM they cannot stay in the
 * page cache next to the allocations: bf16 pages them from disk at every call (priced at 2
 * GB/s: 2 calls x 20.4 s a step more), nf4 (12.07 GiB of host blobs, only the top level's
 * 77 MiB mapped) fits and, at the same GEMM rate, ranks first. With 128 GiB nothing is paged
 * and the two are as fast: the reason says so instead of "slower". */
static void test_cpu_only_against_ram(void)
{
    plan_work w;
    CHECK_OK(real_work(&w));
    thread_pool *pool;
    CHECK_OK(thread_pool_create(2, &pool));
    const plan_hardware hw = nominal_hardware(1e12, 0);
    plan_limits l = {.host_bytes = (uint64_t)16 << 30, .allow_quantize = 1};
    plan_result small, large;
    CHECK_OK(plan_make(&w, &hw, &l, PLAN_AUTO, pool, &small));
    l.host_bytes = (uint64_t)128 << 30;
    CHECK_OK(plan_make(&w, &hw, &l, PLAN_AUTO, pool, &large));
    thread_pool_destroy(pool);
    const uint64_t mapped = 40849637376ull;
    const plan_candidate *full = &small.candidates[PLAN_FULL], *nf4 = &small.candidates[PLAN_NF4];
    CHECK(full->fits && full->point.paged && full->phases[PLAN_PHASE_DENOISE].mapped == mapped);
    CHECK(full->phases[PLAN_PHASE_DENOISE].host < ((uint64_t)2 << 30)); /* 1.39 GiB allocated, 38.04 mapped */
    CHECK_MSG(strstr(full->reason, "pages 38.04 GiB of mapped weights from disk at every call") != NULL, "%s",
              full->reason);
    CHECK(nf4->fits && !nf4->point.paged && nf4->phases[PLAN_PHASE_DENOISE].mapped < ((uint64_t)80 << 20));
    CHECK(nf4->phases[PLAN_PHASE_DENOISE].host + nf4->phases[PLAN_PHASE_DENOISE].mapped < ((uint64_t)16 << 30));
    CHECK_MSG(small.chosen == PLAN_NF4, "16 GiB: chose %d", small.chosen);
    /* the price of paging: each of the 2 calls reads the mapped bytes at 2 GB/s */
    const plan_candidate *cached = &large.candidates[PLAN_FULL];
    CHECK(cached->fits && !cached->point.paged && cached->phases[PLAN_PHASE_DENOISE].mapped == mapped);
    CHECK_NEAR(full->seconds_per_step - cached->seconds_per_step, 2.0 * (double)mapped / 2e9, 1e-6);
    CHECK(full->transfer_bytes_per_step == 2 * mapped && cached->transfer_bytes_per_step == 0);
    printf("  16 GiB: bf16 %.5g s/step (paged), nf4 %.5g; 128 GiB: bf16 %.5g\n", full->seconds_per_step,
           nf4->seconds_per_step, cached->seconds_per_step);
    /* 128 GiB: as fast, the tie to the preset listed first, and said so */
    CHECK(large.chosen == PLAN_FULL);
    CHECK_MSG(strstr(large.candidates[PLAN_NF4].reason, "as fast as full") != NULL, "%s",
              large.candidates[PLAN_NF4].reason);
}

/* The order of the phases is data (plan_step): the edit's table runs each component in its
 * own phases, the text encoder first and released before the others; a table that is not
 * plannable is refused naming its step; and another order is planned by the same code: the
 * text encoder kept on the device through the denoise phase (a server that encodes often)
 * takes its resident weights from the transformer's room, so the transformer keeps fewer
 * blocks resident, and the denoise phase holds both (Edit-2511's configs on a 24 GiB GPU). */
static void test_phase_table(void)
{
    const plan_step *edit = plan_edit_steps;
    const int n = plan_edit_n_steps;
    CHECK_OK(plan_steps_check(edit, n));
    CHECK(n == 5 && edit[1].phase == PLAN_RELEASE && edit[1].releases == PLAN_BIT(PLAN_TEXT_ENCODER));
    CHECK(plan_component_phases(edit, n, PLAN_TEXT_ENCODER) == 1u << PLAN_PHASE_TEXT);
    CHECK(plan_component_phases(edit, n, PLAN_TRANSFORMER) == 1u << PLAN_PHASE_DENOISE);
    CHECK(plan_component_phases(edit, n, PLAN_VAE) == (1u << PLAN_PHASE_VAE_ENCODE | 1u << PLAN_PHASE_VAE_DECODE));
    const unsigned text = PLAN_BIT(PLAN_TEXT_ENCODER), dit = PLAN_BIT(PLAN_TRANSFORMER), vae = PLAN_BIT(PLAN_VAE);
    const plan_step after_release[] = {edit[0], edit[1], {PLAN_PHASE_DENOISE, PLAN_TRANSFORMER, dit | text, 0}};
    const plan_step dit_held[] = {{PLAN_PHASE_DENOISE, PLAN_TRANSFORMER, dit, 0},
                                  {PLAN_PHASE_VAE_DECODE, PLAN_VAE, vae | dit, 0}};
    const plan_step twice[] = {edit[3], edit[3]};
    CHECK(plan_steps_check(after_release, 3) == CANVAS_ERR_USAGE && strstr(canvas_last_error(), "step 3"));
    CHECK(plan_steps_check(dit_held, 2) == CANVAS_ERR_USAGE && strstr(canvas_last_error(), "only the text encoder"));
    CHECK(plan_steps_check(twice, 2) == CANVAS_ERR_USAGE);
    status_clear();

    plan_work w;
    CHECK_OK(real_work(&w));
    thread_pool *pool;
    CHECK_OK(thread_pool_create(2, &pool));
    const plan_hardware hw = nominal_hardware(50e12, 25e9);
    plan_limits l = {.device_bytes = (uint64_t)24 << 30, .headroom_bytes = (uint64_t)512 << 20,
                     .host_bytes = (uint64_t)64 << 30, .vae_on_device = 1, .pinned_streaming = 1};
    plan_result released, kept;
    CHECK_OK(plan_make(&w, &hw, &l, PLAN_OFFLOAD, pool, &released));
    const plan_step keep[] = {edit[0], edit[2], {PLAN_PHASE_DENOISE, PLAN_TRANSFORMER, dit | text, 0},
                              {PLAN_RELEASE, PLAN_TEXT_ENCODER, 0, text}, edit[4]};
    memcpy(w.order, keep, sizeof keep);
    w.n_order = 5;
    CHECK_OK(plan_make(&w, &hw, &l, PLAN_OFFLOAD, pool, &kept));
    const plan_candidate *a = &released.candidates[PLAN_OFFLOAD], *b = &kept.candidates[PLAN_OFFLOAD];
    uint64_t held = 0, dit_peak = 0;
    int fits = 0;
    CHECK_OK(plan_textenc_weight_bytes(&w.components[PLAN_TEXT_ENCODER].config.text, b->point.text_weights, 2,
                                       b->point.text_resident, &held));
    CHECK_OK(plan_dit_dry_run(&w, b->point.weights, b->point.resident_blocks, 0, pool, &dit_peak, &fits));
    thread_pool_destroy(pool);
    /* the text phase is the same plan; the encoder's 60 resident layers (13.42 GiB) stay */
    CHECK(a->point.text_resident == 60 && b->point.text_resident == 60 && held == 14406042624ull);
    CHECK(a->phases[PLAN_PHASE_TEXT].device == b->phases[PLAN_PHASE_TEXT].device);
    CHECK(b->phases[PLAN_PHASE_DENOISE].device == held + dit_peak && fits);
    CHECK(b->phases[PLAN_PHASE_DENOISE].device <= l.device_bytes - l.headroom_bytes && b->fits);
    CHECK_MSG(a->point.resident_blocks == 33 && b->point.resident_blocks == 12, "released %d, kept %d",
              a->point.resident_blocks, b->point.resident_blocks);
    CHECK(b->phases[PLAN_PHASE_VAE_DECODE].device == a->phases[PLAN_PHASE_VAE_DECODE].device);
    printf("  24 GiB: the text encoder released first: %d of 60 blocks resident; kept through the denoise: %d "
           "(denoise %llu bytes = %llu of it + the transformer's %llu)\n",
           a->point.resident_blocks, b->point.resident_blocks,
           (unsigned long long)b->phases[PLAN_PHASE_DENOISE].device, (unsigned long long)held,
           (unsigned long long)dit_peak);
}

int main(void)
{
    test_path(case_dir, sizeof case_dir, "golden/cases/edit-cfg");
    setenv("CANVAS_PROBE_CACHE", "/nonexistent/canvas-probe.json", 1);
    RUN(test_text_encoder_sizes);
    RUN(test_text_encode_phase);
    RUN(test_phase_table);
    RUN(test_cpu_only_against_ram);
    RUN(test_predicted_peaks);
    RUN(test_caps_force_presets);
    RUN(test_fallbacks);
    RUN(test_quantised_reload_keeps_loras);
    RUN(test_probe_cache_version);
    return check_summary();
}
