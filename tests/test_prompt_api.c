/* SPDX-License-Identifier: Apache-2.0 */
/* test_prompt_api.c — canvas_encode_prompt through the public API on the demo model
 * (tools/make_demo_model.sh, made in a scratch folder): the encoding is deterministic, the
 * cache gives the same numbers and tells images apart, canvas_prompt_save writes what
 * canvas_prompt_load reads, and an edit from the encoded prompt equals the edit from the
 * saved file pixel for pixel; the encoder's weight formats (canvas_options.text_encoder_weights). */
#define _POSIX_C_SOURCE 200809L

#include <libgen.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "quant_bounds.h"

static char scratch[] = "/tmp/canvas-prompt-api-XXXXXX";
static char model_dir[4200];

static int make_model(void)
{
    const char *cli = getenv("CANVAS_CLI");
    CHECK_MSG(cli != NULL, "CANVAS_CLI is not set (run through ctest)");
    if (!cli || !mkdtemp(scratch)) return 0;
    char build[4096], tools[4096], command[16384];
    snprintf(build, sizeof build, "%s", cli);
    test_path(tools, sizeof tools, "../tools/make_demo_model.sh");
    snprintf(model_dir, sizeof model_dir, "%s/model", scratch);
    snprintf(command, sizeof command, "bash '%s' '%s' '%s' >/dev/null", tools, dirname(build), model_dir);
    int rc = system(command);
    CHECK_MSG(rc == 0, "make_demo_model.sh exited %d", rc);
    return rc == 0;
}

static int same_embedding(const canvas_embedding *a, const canvas_embedding *b)
{
    return a->values && b->values && a->length == b->length && a->dim == b->dim &&
           !memcmp(a->values, b->values, (size_t)(a->length * a->dim) * sizeof *a->values);
}

static void test_encode_cache_save_edit(void)
{
    canvas_model *m = NULL;
    CHECK_OK(canvas_open(model_dir, NULL, &m));
    if (!m) return;
    canvas_image img = {0};
    char path[4200];
    test_path(path, sizeof path, "golden/cases/edit-cfg/image0.png");
    CHECK_OK(canvas_image_load(path, &img));
    canvas_prompt a = {0}, b = {0}, c = {0}, loaded = {0};
    CHECK_OK(canvas_encode_prompt(m, "a red boat", " ", &img, 1, &a));
    CHECK(a.positive.dim == 32 && a.positive.length > 0 && a.negative.values != NULL);
    /* the cached encoding: the same numbers */
    CHECK_OK(canvas_encode_prompt(m, "a red boat", " ", &img, 1, &b));
    CHECK(same_embedding(&a.positive, &b.positive) && same_embedding(&a.negative, &b.negative));
    /* another image with the same text is another encoding */
    img.pixels[0] ^= 0xff;
    img.pixels[1] ^= 0xff;
    CHECK_OK(canvas_encode_prompt(m, "a red boat", NULL, &img, 1, &c));
    CHECK(c.negative.values == NULL && c.positive.length == a.positive.length);
    CHECK(!same_embedding(&a.positive, &c.positive));
    img.pixels[0] ^= 0xff;
    img.pixels[1] ^= 0xff;

    /* the file format round trip */
    snprintf(path, sizeof path, "%s/embeds.safetensors", scratch);
    CHECK_OK(canvas_prompt_save(path, &a));
    CHECK_OK(canvas_prompt_load(path, &loaded));
    CHECK(same_embedding(&a.positive, &loaded.positive) && same_embedding(&a.negative, &loaded.negative));
    unlink(path);

    /* an edit from the encoded prompt equals one from the loaded file */
    canvas_edit_params p;
    canvas_edit_params_default(&p);
    p.steps = 2;
    p.vae_area = 4096;
    canvas_image x = {0}, y = {0};
    CHECK_OK(canvas_edit(m, &a, &img, 1, &p, NULL, NULL, &x));
    CHECK_OK(canvas_edit(m, &loaded, &img, 1, &p, NULL, NULL, &y));
    CHECK(x.pixels && y.pixels && x.width == y.width && x.height == y.height &&
          !memcmp(x.pixels, y.pixels, (size_t)x.width * x.height * 3));

    /* refusals */
    canvas_prompt z = {0};
    CHECK_FAILS(canvas_encode_prompt(m, NULL, NULL, &img, 1, &z), CANVAS_ERR_USAGE, "a prompt");
    CHECK_FAILS(canvas_encode_prompt(m, "x", NULL, NULL, 1, &z), CANVAS_ERR_USAGE, "images");
    CHECK(z.positive.values == NULL);
    /* a bad negative prompt says it is the negative, and the good positive is not handed out;
     * a typed <|image_pad|> is refused, not counted as one of the images */
    CHECK_FAILS(canvas_encode_prompt(m, "x", "ab\xff", &img, 1, &z), CANVAS_ERR_INPUT,
                "negative prompt: prompt: invalid UTF-8 at byte offset 2");
    CHECK(z.positive.values == NULL && z.negative.values == NULL);
    CHECK_FAILS(canvas_encode_prompt(m, "a <|image_pad|> here", NULL, &img, 1, &z), CANVAS_ERR_INPUT,
                "more <|image_pad|> tokens than there are images (1)");
    /* canvas_prompt_save never replaces a folder */
    CHECK_FAILS(canvas_prompt_save(scratch, &a), CANVAS_ERR_USAGE, "exists and is not a regular file");

    canvas_image_free(&x);
    canvas_image_free(&y);
    canvas_prompt_free(&a);
    canvas_prompt_free(&b);
    canvas_prompt_free(&c);
    canvas_prompt_free(&loaded);
    canvas_image_free(&img);
    canvas_close(m);
}

static canvas_status encode_with(const char *format, canvas_prompt *out)
{
    canvas_options o;
    canvas_options_default(&o);
    o.text_encoder_weights = format;
    canvas_model *m = NULL;
    canvas_status st = canvas_open(model_dir, &o, &m);
    if (st == CANVAS_OK) st = canvas_encode_prompt(m, "a red boat", NULL, NULL, 0, out);
    canvas_close(m);
    return st;
}

/* canvas_options.text_encoder_weights: each format's embeddings within the transformer's
 * bound of the as-stored ones ("none" is as stored); an fp8 / nf4 strategy with
 * quantising allowed quantises the encoder as the planner counts it, and switching it
 * back re-encodes (the cache holds no other format's encodings). Text alone, no image. */
static void test_text_encoder_weights(void)
{
    canvas_prompt stored = {0}, none = {0}, q = {0}, nf4 = {0}, again = {0};
    CHECK_OK(encode_with(NULL, &stored));
    CHECK_OK(encode_with("none", &none));
    CHECK(same_embedding(&stored.positive, &none.positive));
    for (int f = 0; f < QUANT_BOUNDS_COUNT && stored.positive.values; f++) {
        CHECK_OK(encode_with(quant_bounds[f].name, &q));
        const size_t n = (size_t)(stored.positive.length * stored.positive.dim);
        const double error = q.positive.values && q.positive.length == stored.positive.length
                                 ? test_relative_error(q.positive.values, stored.positive.values, n)
                                 : INFINITY;
        printf("  %-12s embeddings %.4f from as stored (limit %.2f)\n", quant_bounds[f].name, error,
               quant_bounds[f].limit);
        CHECK_MSG(error > 0 && error <= quant_bounds[f].limit, "%s: %.4f", quant_bounds[f].name, error);
        if (f == 2) CHECK_OK(encode_with("nf4", &nf4));
        canvas_prompt_free(&q);
    }
    canvas_options o;
    canvas_options_default(&o);
    o.text_encoder_weights = "int3";
    canvas_model *m = NULL;
    CHECK_FAILS(canvas_open(model_dir, &o, &m), CANVAS_ERR_USAGE, "int3");
    CHECK(m == NULL);
    o.text_encoder_weights = NULL;
    o.allow_quantize = 1;
    CHECK_OK(canvas_open(model_dir, &o, &m));
    if (m) {
        CHECK_OK(canvas_set_strategy(m, "nf4", 1));
        CHECK_OK(canvas_encode_prompt(m, "a red boat", NULL, NULL, 0, &q));
        CHECK(same_embedding(&q.positive, &nf4.positive));
        CHECK_OK(canvas_set_strategy(m, "auto", 1));
        CHECK_OK(canvas_encode_prompt(m, "a red boat", NULL, NULL, 0, &again));
        CHECK(same_embedding(&again.positive, &stored.positive));
    }
    canvas_close(m);
    canvas_prompt_free(&q);
    canvas_prompt_free(&again);
    canvas_prompt_free(&nf4);
    canvas_prompt_free(&none);
    canvas_prompt_free(&stored);
}

static int stop_now(void *ctx)
{
    (void)ctx;
    return 1;
}

/* What the progress callback saw; cancel_after > 0: the cancel callback says stop once that
 * many layers are done. */
typedef struct seen {
    int phases, layers, last_step, last_steps, negatives, cancel_after;
} seen;

static void count_event(void *ctx, const canvas_progress *p)
{
    seen *s = ctx;
    if (strcmp(p->phase, "text-encode")) return;
    if (p->kind == CANVAS_PROGRESS_PHASE) s->phases++;
    if (p->kind != CANVAS_PROGRESS_STEP) return;
    s->layers++;
    s->last_step = p->step;
    s->last_steps = p->steps;
    s->negatives += !strcmp(p->message, "negative prompt");
}

static int cancel_when(void *ctx)
{
    const seen *s = ctx;
    return s->cancel_after > 0 && s->layers >= s->cancel_after;
}

/* canvas_encode_prompt_progress: a text-encode phase, one STEP per vision block and decoder
 * layer of each encoding (the demo encoder: 2 + 2), none for a cached one; cancelled after
 * a layer or before the encoding, with nothing returned and the model usable after. */
static void test_progress_and_cancel(void)
{
    canvas_model *m = NULL;
    CHECK_OK(canvas_open(model_dir, NULL, &m));
    if (!m) return;
    canvas_image img = {0};
    char path[4200];
    CHECK_OK(canvas_image_load(test_path(path, sizeof path, "golden/cases/edit-cfg/image0.png"), &img));
    canvas_edit_params params;
    canvas_edit_params_default(&params);
    params.cancel = cancel_when;
    seen s = {0};
    params.cancel_ctx = &s;
    canvas_prompt a = {0}, b = {0}, c = {0};
    CHECK_OK(canvas_encode_prompt_progress(m, "a green boat", "blurry", &img, 1, &params, count_event, &s, &a));
    CHECK_MSG(s.phases == 1 && s.layers == 8 && s.negatives == 4 && s.last_step == 4 && s.last_steps == 4,
              "phases %d, layers %d (negative %d), last %d of %d", s.phases, s.layers, s.negatives, s.last_step,
              s.last_steps);
    memset(&s, 0, sizeof s);
    CHECK_OK(canvas_encode_prompt_progress(m, "a green boat", "blurry", &img, 1, &params, count_event, &s, &b));
    CHECK(s.phases == 1 && s.layers == 0); /* both cached */
    CHECK(same_embedding(&a.positive, &b.positive) && same_embedding(&a.negative, &b.negative));
    canvas_prompt_free(&b);
    /* cancelled after the 3rd layer of the prompt: nothing returned, not cached */
    memset(&s, 0, sizeof s);
    s.cancel_after = 3;
    CHECK_FAILS(canvas_encode_prompt_progress(m, "a grey boat", NULL, &img, 1, &params, count_event, &s, &b),
                CANVAS_ERR_CANCELLED, "after layer 3 of 4");
    CHECK(b.positive.values == NULL && s.layers == 3);
    memset(&s, 0, sizeof s);
    CHECK_OK(canvas_encode_prompt_progress(m, "a grey boat", NULL, &img, 1, &params, count_event, &s, &b));
    CHECK(s.layers == 4 && b.positive.values != NULL);
    /* asked before any work */
    memset(&s, 0, sizeof s);
    s.cancel_after = -1;
    params.cancel = stop_now;
    CHECK_FAILS(canvas_encode_prompt_progress(m, "a blue boat", NULL, &img, 1, &params, count_event, &s, &c),
                CANVAS_ERR_CANCELLED, "before the text encoding");
    CHECK(s.layers == 0 && c.positive.values == NULL);
    canvas_prompt_free(&a);
    canvas_prompt_free(&b);
    canvas_image_free(&img);
    canvas_close(m);
}

/* canvas_check_params refuses what the run would, before the encoding: 1 step with the
 * model's scheduler (shift_terminal), not with the Lightning one. */
static void test_check_params(void)
{
    canvas_model *m = NULL;
    CHECK_OK(canvas_open(model_dir, NULL, &m));
    canvas_edit_params p;
    canvas_edit_params_default(&p);
    CHECK_OK(canvas_check_params(m, &p));
    p.steps = 1;
    CHECK_FAILS(canvas_check_params(m, &p), CANVAS_ERR_USAGE, "use at least 2 steps");
    p.lightning_scheduler = 1;
    CHECK_OK(canvas_check_params(m, &p));
    p.steps = 0;
    CHECK_FAILS(canvas_check_params(m, &p), CANVAS_ERR_USAGE, "0 steps");
    CHECK_FAILS(canvas_check_params(NULL, &p), CANVAS_ERR_USAGE, "a model");
    canvas_close(m);
}

int main(void)
{
    if (make_model()) RUN(test_encode_cache_save_edit);
    if (model_dir[0]) RUN(test_text_encoder_weights);
    if (model_dir[0]) RUN(test_check_params);
    if (model_dir[0]) RUN(test_progress_and_cancel);
    char command[4200];
    snprintf(command, sizeof command, "rm -rf '%s'", scratch); /* the scratch folder this test made */
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", scratch);
    return check_summary();
}
