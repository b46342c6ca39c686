/* SPDX-License-Identifier: Apache-2.0 */
/* config_yaml.c — the settings file, read event by event with libyaml (contract in
 * config_yaml.h). libyaml allocates its own parser buffers; everything of ours is on the
 * stack. */
#include "io/config_yaml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "base/size_parse.h"
#include "base/status.h"
#include "io/file_read.h"
#include "mem/mem.h"
#include "tensor/quant.h"

/* far above any settings file; a larger one is not read into memory */
#define CONFIG_YAML_MAX_BYTES ((size_t)1 << 20)

void config_settings_init(config_settings *s)
{
    memset(s, 0, sizeof *s);
    s->fallback_enabled = s->oom_retry_attempts = s->profiling_enabled = -1;
    s->lightning_lora_enabled = s->allow_quantize = -1;
}

typedef struct reader {
    const char *path;
    yaml_parser_t parser;
    yaml_event_t event;         /* the current event (deleted before the next) */
    int have_event;
} reader;

static int line_of(const reader *r) { return (int)r->event.start_mark.line + 1; }

/* The next event; a parse error names the file and its line. */
static canvas_status next(reader *r)
{
    if (r->have_event) yaml_event_delete(&r->event);
    r->have_event = 0;
    if (!yaml_parser_parse(&r->parser, &r->event)) {
        if (r->parser.error == YAML_MEMORY_ERROR)
            return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s: out of memory while reading it", r->path);
        return status_fail(CANVAS_ERR_INPUT, "%s:%d: not valid YAML: %s", r->path,
                           (int)r->parser.problem_mark.line + 1, r->parser.problem ? r->parser.problem : "?");
    }
    r->have_event = 1;
    if (r->event.type == YAML_ALIAS_EVENT)
        return status_fail(CANVAS_ERR_INPUT, "%s:%d: aliases (*name) are not supported in the settings file", r->path,
                           line_of(r));
    return CANVAS_OK;
}

static const char *scalar(const reader *r) { return (const char *)r->event.data.scalar.value; }

/* A plain empty or ~ / null scalar. */
static int is_null(const reader *r)
{
    const char *v = scalar(r);
    return r->event.data.scalar.plain_implicit && (!v[0] || !strcmp(v, "~") || !strcasecmp(v, "null"));
}

static canvas_status wrong(const reader *r, const char *key, const char *wanted)
{
    const char *got = r->event.type == YAML_SCALAR_EVENT          ? scalar(r)
                      : r->event.type == YAML_SEQUENCE_START_EVENT ? "a list"
                                                                   : "a mapping";
    return status_fail(CANVAS_ERR_INPUT, "%s:%d: key '%s': wants %s (got '%s')", r->path, line_of(r), key, wanted,
                       got);
}

static canvas_status want_scalar(const reader *r, const char *key, const char *wanted)
{
    if (r->event.type != YAML_SCALAR_EVENT || is_null(r)) return wrong(r, key, wanted);
    return CANVAS_OK;
}

static canvas_status read_bool(const reader *r, const char *key, int *out)
{
    TRY(want_scalar(r, key, "true or false"));
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (!strcasecmp(scalar(r), yes[i])) return *out = 1, CANVAS_OK;
        if (!strcasecmp(scalar(r), no[i])) return *out = 0, CANVAS_OK;
    }
    return wrong(r, key, "true or false");
}

static canvas_status read_int(const reader *r, const char *key, long low, long high, int *out)
{
    char wanted[64];
    snprintf(wanted, sizeof wanted, "a whole number from %ld to %ld", low, high);
    TRY(want_scalar(r, key, wanted));
    char *end;
    errno = 0;
    long v = strtol(scalar(r), &end, 10);
    if (errno || end == scalar(r) || *end || v < low || v > high) return wrong(r, key, wanted);
    *out = (int)v;
    return CANVAS_OK;
}

static canvas_status read_size(const reader *r, const char *key, uint64_t *out)
{
    TRY(want_scalar(r, key, "a size (24G, 512M)"));
    if (size_parse(scalar(r), key, out) != CANVAS_OK || *out == 0) {
        status_clear();
        return wrong(r, key, "a size of more than 0 bytes (24G, 512M)");
    }
    return CANVAS_OK;
}

/* The planner's preset names (plan/plan.h; io/ sits below plan/, so they are listed here). */
static int is_preset(const char *name)
{
    static const char *const names[] = {"full", "sequential", "offload", "fp8", "nf4", "auto"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i])) return 1;
    return 0;
}

static const char preset_list[] = "full, fp8, nf4, offload, sequential or auto";

static canvas_status read_strategy(const reader *r, const char *key, char *out, size_t size)
{
    TRY(want_scalar(r, key, preset_list));
    if (!is_preset(scalar(r))) return wrong(r, key, preset_list);
    snprintf(out, size, "%s", scalar(r));
    return CANVAS_OK;
}

/* A list of preset names ([offload, fp8], or one per line), joined with commas. */
static canvas_status read_strategy_list(reader *r, const char *key, char *out, size_t size)
{
    if (r->event.type != YAML_SEQUENCE_START_EVENT) return wrong(r, key, "a list of strategies ([offload, fp8])");
    out[0] = '\0';
    int n = 0;
    for (;;) {
        TRY(next(r));
        if (r->event.type == YAML_SEQUENCE_END_EVENT) break;
        TRY(want_scalar(r, key, preset_list));
        if (!is_preset(scalar(r))) return wrong(r, key, preset_list);
        size_t used = strlen(out);
        if (++n > 8 || used + strlen(scalar(r)) + 2 > size)
            return status_fail(CANVAS_ERR_INPUT, "%s:%d: key '%s': at most 8 strategies", r->path, line_of(r), key);
        snprintf(out + used, size - used, "%s%s", used ? "," : "", scalar(r));
    }
    if (n == 0) return status_fail(CANVAS_ERR_INPUT, "%s:%d: key '%s': the list is empty", r->path, line_of(r), key);
    return CANVAS_OK;
}

/* One key of memory_management and its value (the current event is the value's first). */
static canvas_status read_value(reader *r, const char *key, config_settings *s)
{
    if (!strcmp(key, "preferred_strategies")) return read_strategy_list(r, key, s->preferred, sizeof s->preferred);
    if (!strcmp(key, "strategy")) return read_strategy(r, key, s->strategy, sizeof s->strategy);
    if (!strcmp(key, "fallback_enabled")) return read_bool(r, key, &s->fallback_enabled);
    if (!strcmp(key, "oom_retry_attempts")) return read_int(r, key, 0, 100, &s->oom_retry_attempts);
    if (!strcmp(key, "memory_threshold_mb")) {
        int mb;
        TRY(read_int(r, key, 0, 1 << 24, &mb));
        s->has_headroom = 1;
        s->headroom_bytes = (uint64_t)mb << 20;
        return CANVAS_OK;
    }
    if (!strcmp(key, "profiling_enabled")) return read_bool(r, key, &s->profiling_enabled);
    if (!strcmp(key, "fp8_enabled")) {
        TRY(want_scalar(r, key, "auto, true or false"));
        if (!strcasecmp(scalar(r), "auto")) return s->fp8 = 0, CANVAS_OK;
        int yes;
        if (read_bool(r, key, &yes) != CANVAS_OK) {
            status_clear();
            return wrong(r, key, "auto, true or false");
        }
        s->fp8 = yes ? 1 : -1;
        return CANVAS_OK;
    }
    if (!strcmp(key, "lightning_lora_enabled")) return read_bool(r, key, &s->lightning_lora_enabled);
    if (!strcmp(key, "default_inference_steps")) return read_int(r, key, 1, 1000, &s->default_inference_steps);
    if (!strcmp(key, "vram")) return read_size(r, key, &s->vram_bytes);
    if (!strcmp(key, "ram")) return read_size(r, key, &s->ram_bytes);
    if (!strcmp(key, "link_bandwidth")) {
        TRY(want_scalar(r, key, "a rate (16G/s)"));
        if (size_parse_rate(scalar(r), key, &s->link_bytes_per_second) != CANVAS_OK) {
            status_clear();
            return wrong(r, key, "a rate (16G/s)");
        }
        return CANVAS_OK;
    }
    if (!strcmp(key, "threads")) return read_int(r, key, 1, 4096, &s->threads);
    if (!strcmp(key, "allow_quantize")) return read_bool(r, key, &s->allow_quantize);
    if (!strcmp(key, "text_encoder_weights")) {
        quant_choice format;
        TRY(want_scalar(r, key, "a weight format (none, fp8, fp8-channel, fp8-e5m2, nf4, q8)"));
        if (quant_choice_parse(scalar(r), &format) != CANVAS_OK) {
            status_clear();
            return wrong(r, key, "a weight format (none, fp8, fp8-channel, fp8-e5m2, nf4, q8)");
        }
        snprintf(s->text_encoder_weights, sizeof s->text_encoder_weights, "%s", quant_choice_name(format));
        return CANVAS_OK;
    }
    return status_fail(CANVAS_ERR_INPUT,
                       "%s:%d: unknown key '%s' in memory_management (known: preferred_strategies, fallback_enabled, "
                       "oom_retry_attempts, memory_threshold_mb, profiling_enabled, fp8_enabled, "
                       "lightning_lora_enabled, default_inference_steps, vram, ram, link_bandwidth, threads, strategy, "
                       "allow_quantize, text_encoder_weights)",
                       r->path, line_of(r), key);
}

/* A mapping whose keys are scalars; `section` NULL: the top level. */
static canvas_status read_mapping(reader *r, const char *section, config_settings *s)
{
    char seen[32][32];
    int n_seen = 0;
    for (;;) {
        TRY(next(r));
        if (r->event.type == YAML_MAPPING_END_EVENT) return CANVAS_OK;
        if (r->event.type != YAML_SCALAR_EVENT)
            return status_fail(CANVAS_ERR_INPUT, "%s:%d: a key must be a plain word", r->path, line_of(r));
        char key[32];
        snprintf(key, sizeof key, "%s", scalar(r));
        const int key_line = line_of(r);
        for (int i = 0; i < n_seen; i++)
            if (!strcmp(seen[i], key))
                return status_fail(CANVAS_ERR_INPUT, "%s:%d: key '%s' is given twice", r->path, key_line, key);
        if (n_seen < 32) snprintf(seen[n_seen++], sizeof seen[0], "%s", key);
        if (!section && strcmp(key, "memory_management"))
            return status_fail(CANVAS_ERR_INPUT, "%s:%d: unknown key '%s' (the settings live under memory_management:)",
                               r->path, key_line, scalar(r));
        TRY(next(r));
        if (section) {
            TRY(read_value(r, key, s));
        } else if (r->event.type == YAML_MAPPING_START_EVENT) {
            TRY(read_mapping(r, key, s));
        } else if (r->event.type != YAML_SCALAR_EVENT || !is_null(r)) {
            return wrong(r, key, "a mapping of settings");
        }
    }
}

static canvas_status read_stream(reader *r, config_settings *s)
{
    TRY(next(r)); /* stream start */
    TRY(next(r));
    if (r->event.type == YAML_STREAM_END_EVENT) return CANVAS_OK; /* empty: nothing set */
    TRY(next(r));                                                 /* after the document start */
    if (r->event.type == YAML_MAPPING_START_EVENT) TRY(read_mapping(r, NULL, s));
    else if (r->event.type != YAML_SCALAR_EVENT || !is_null(r))
        return status_fail(CANVAS_ERR_INPUT, "%s:%d: the file must be a mapping (memory_management: ...)", r->path,
                           line_of(r));
    TRY(next(r)); /* document end */
    TRY(next(r));
    if (r->event.type != YAML_STREAM_END_EVENT)
        return status_fail(CANVAS_ERR_INPUT, "%s:%d: one YAML document only (a second '---' follows)", r->path,
                           line_of(r));
    return CANVAS_OK;
}

canvas_status config_yaml_load(const char *path, config_settings *out)
{
    config_settings_init(out);
    /* read whole (settings files are small) through the input opener: a FIFO or a device
     * named by --config is refused instead of waited on */
    char *text;
    size_t size;
    canvas_status read = file_read_all(path, CONFIG_YAML_MAX_BYTES, &text, &size);
    if (read != CANVAS_OK) return status_wrap(read, "cannot open the settings file: ");
    reader r;
    memset(&r, 0, sizeof r);
    r.path = path;
    if (!yaml_parser_initialize(&r.parser)) {
        mem_free(text);
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s: out of memory starting the YAML parser", path);
    }
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, size);
    canvas_status st = read_stream(&r, out);
    if (r.have_event) yaml_event_delete(&r.event);
    yaml_parser_delete(&r.parser);
    mem_free(text);
    if (st != CANVAS_OK) config_settings_init(out);
    return st;
}
