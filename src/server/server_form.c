/* SPDX-License-Identifier: Apache-2.0 */
/* server_form.c — a request's fields, from multipart/form-data or a JSON object, and from
 * them a job: decoded reference images, the prompt (text, or embeddings as a safetensors
 * part), the sampling parameters. Runs on the HTTP threads; never touches the model. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/size_parse.h"
#include "base/status.h"
#include "io/image.h"
#include "io/json_file.h"
#include "mem/mem.h"
#include "server/server_internal.h"

/* ---- multipart/form-data (RFC 7578) ------------------------------------------------------ */

/* The boundary parameter of the Content-Type, into out (1-70 characters). */
static canvas_status find_boundary(const char *content_type, char *out, size_t size)
{
    if (!content_type || strncasecmp(content_type, "multipart/form-data", 19))
        return status_fail(CANVAS_ERR_USAGE, "expected Content-Type multipart/form-data");
    const char *b = strcasestr(content_type, "boundary=");
    if (!b) return status_fail(CANVAS_ERR_USAGE, "multipart/form-data without a boundary");
    b += 9;
    size_t n;
    if (*b == '"') {
        const char *end = strchr(++b, '"');
        if (!end) return status_fail(CANVAS_ERR_USAGE, "multipart boundary: unterminated quote");
        n = (size_t)(end - b);
    } else {
        n = strcspn(b, "; \t");
    }
    if (n < 1 || n > 70 || n + 1 > size) return status_fail(CANVAS_ERR_USAGE, "multipart boundary of %zu characters", n);
    memcpy(out, b, n);
    out[n] = '\0';
    return CANVAS_OK;
}

/* A parameter of a Content-Disposition header (name="...", filename="..."), into out. */
static canvas_status disposition_param(const char *header, const char *key, char *out, size_t size, int *found)
{
    *found = 0;
    out[0] = '\0';
    size_t key_len = strlen(key);
    for (const char *p = header; (p = strcasestr(p, key)) != NULL; p += key_len) {
        if (p != header && p[-1] != ' ' && p[-1] != ';' && p[-1] != '\t') continue; /* "filename" holds "name" */
        const char *v = p + key_len;
        if (*v != '=') continue;
        v++;
        size_t n = 0;
        if (*v == '"') {
            const char *end = strchr(++v, '"');
            if (!end) return status_fail(CANVAS_ERR_USAGE, "multipart part: unterminated %s", key);
            n = (size_t)(end - v);
        } else {
            n = strcspn(v, "; \t");
        }
        if (n + 1 > size) return status_fail(CANVAS_ERR_USAGE, "multipart part: %s of %zu bytes is too long", key, n);
        memcpy(out, v, n);
        out[n] = '\0';
        *found = 1;
        return CANVAS_OK;
    }
    return CANVAS_OK;
}

/* The part's headers (between `start` and `end`, CRLF-separated): its field name and file name. */
static canvas_status part_headers(char *start, char *end, form_field *f)
{
    int have_disposition = 0;
    while (start < end) {
        char *eol = memmem(start, (size_t)(end - start), "\r\n", 2);
        if (!eol) eol = end;
        *eol = '\0';
        if (!strncasecmp(start, "Content-Disposition:", 20)) {
            const char *value = start + 20;
            while (*value == ' ' || *value == '\t') value++;
            if (strncasecmp(value, "form-data", 9)) return status_fail(CANVAS_ERR_USAGE, "multipart part: not form-data");
            int found;
            TRY(disposition_param(value, "name", f->name, sizeof f->name, &found));
            if (!found || !f->name[0]) return status_fail(CANVAS_ERR_USAGE, "multipart part without a name");
            TRY(disposition_param(value, "filename", f->filename, sizeof f->filename, &found));
            have_disposition = 1;
        }
        start = eol + 2;
    }
    if (!have_disposition) return status_fail(CANVAS_ERR_USAGE, "multipart part without Content-Disposition");
    return CANVAS_OK;
}

canvas_status form_parse_multipart(const char *content_type, char *body, size_t size, form *out)
{
    memset(out, 0, sizeof *out);
    char boundary[80], delimiter[88];
    TRY(find_boundary(content_type, boundary, sizeof boundary));
    int dlen = snprintf(delimiter, sizeof delimiter, "\r\n--%s", boundary);
    /* the first delimiter may open the body (no CRLF before it) */
    char *p;
    if (size >= (size_t)dlen - 2 && !memcmp(body, delimiter + 2, (size_t)dlen - 2)) {
        p = body + dlen - 2;
    } else {
        char *first = memmem(body, size, delimiter, (size_t)dlen);
        if (!first) return status_fail(CANVAS_ERR_USAGE, "malformed multipart body: no boundary line");
        p = first + dlen;
    }
    char *end = body + size;
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') return CANVAS_OK; /* the closing delimiter */
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return status_fail(CANVAS_ERR_USAGE, "malformed multipart body: a boundary line does not end in CRLF");
        p += 2;
        char *headers_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!headers_end) return status_fail(CANVAS_ERR_USAGE, "malformed multipart body: a part's headers do not end");
        if (out->n == FORM_MAX_FIELDS)
            return status_fail(CANVAS_ERR_USAGE, "more than %d multipart parts", FORM_MAX_FIELDS);
        form_field *f = &out->fields[out->n];
        memset(f, 0, sizeof *f);
        /* the headers' CRLF before the blank line belongs to the last header */
        TRY(part_headers(p, headers_end + 2, f));
        char *data = headers_end + 4;
        char *next = memmem(data, (size_t)(end - data), delimiter, (size_t)dlen);
        if (!next) return status_fail(CANVAS_ERR_USAGE, "malformed multipart body: part '%s' has no closing boundary", f->name);
        f->data = data;
        f->size = (size_t)(next - data);
        *next = '\0'; /* the CR of the delimiter: text fields become C strings */
        out->n++;
        p = next + dlen;
    }
}

/* ---- JSON bodies --------------------------------------------------------------------- */

/* The nesting depth of JSON text, strings skipped; checked before jansson recurses. */
static int json_depth(const char *text, size_t size)
{
    int depth = 0, deepest = 0, in_string = 0;
    for (size_t i = 0; i < size; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > deepest) deepest = depth;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return deepest;
}

canvas_status form_parse_json(const char *body, size_t size, int max_depth, form *out)
{
    memset(out, 0, sizeof *out);
    if (json_depth(body, size) > max_depth)
        return status_fail(CANVAS_ERR_USAGE, "JSON body nested deeper than %d levels", max_depth);
    json_t *root;
    canvas_status st = json_text_load(body, size, "the JSON body", &root);
    if (st != CANVAS_OK) {
        char reason[512]; /* status_fail writes where canvas_last_error() points */
        snprintf(reason, sizeof reason, "%s", canvas_last_error());
        return st == CANVAS_ERR_OUT_OF_MEMORY ? st : status_fail(CANVAS_ERR_USAGE, "%s", reason);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return status_fail(CANVAS_ERR_USAGE, "the JSON body is not an object");
    }
    /* every value as text, one after the other in `owned` */
    const char *key;
    json_t *value;
    size_t total = 0;
    json_object_foreach(root, key, value) total += (json_is_string(value) ? json_string_length(value) : 32) + 1;
    st = mem_alloc((void **)&out->owned, total + 1, MEM_SCRATCH);
    size_t used = 0;
    json_object_foreach(root, key, value) {
        if (st != CANVAS_OK) break;
        if (json_is_null(value)) continue;
        if (out->n == FORM_MAX_FIELDS) {
            st = status_fail(CANVAS_ERR_USAGE, "more than %d fields", FORM_MAX_FIELDS);
            break;
        }
        if (strlen(key) >= sizeof out->fields[0].name) {
            st = status_fail(CANVAS_ERR_USAGE, "a field name of %zu bytes", strlen(key));
            break;
        }
        form_field *f = &out->fields[out->n];
        memset(f, 0, sizeof *f);
        snprintf(f->name, sizeof f->name, "%s", key);
        char *text = out->owned + used;
        if (json_is_string(value)) {
            size_t n = json_string_length(value);
            if (memchr(json_string_value(value), '\0', n)) {
                st = status_fail(CANVAS_ERR_USAGE, "field '%s' holds a NUL character", key);
                break;
            }
            memcpy(text, json_string_value(value), n + 1);
        } else if (json_is_integer(value)) {
            snprintf(text, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        } else if (json_is_real(value)) {
            snprintf(text, 32, "%.17g", json_real_value(value));
        } else if (json_is_boolean(value)) {
            snprintf(text, 32, "%s", json_is_true(value) ? "true" : "false");
        } else {
            st = status_fail(CANVAS_ERR_USAGE, "field '%s' must be a string, number or boolean", key);
            break;
        }
        f->data = text;
        f->size = strlen(text);
        used += f->size + 1;
        out->n++;
    }
    json_decref(root);
    if (st != CANVAS_OK) form_free(out);
    return st;
}

void form_free(form *f)
{
    mem_free(f->owned);
    memset(f, 0, sizeof *f);
}

/* ---- fields to a job ------------------------------------------------------------------- */


/* "WxH" within 16..16384 a side */
static int parse_size(const char *text, long long *w, long long *h)
{
    const char *x = strchr(text, 'x');
    char width[32];
    if (!x || x == text || (size_t)(x - text) >= sizeof width) return 0;
    memcpy(width, text, (size_t)(x - text));
    width[x - text] = '\0';
    return parse_integer(width, 16, 16384, w) && parse_integer(x + 1, 16, 16384, h);
}

/* OpenAI fields that do not change what this server makes: accepted and ignored. */
static int ignored_field(const char *name)
{
    static const char *const names[] = {"model", "user", "quality", "style", "background", "moderation",
                                        "input_fidelity", "output_compression"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i])) return 1;
    return 0;
}

/* The embeddings part through a private file, as canvas_prompt_load reads them. */
static canvas_status load_embeds(server *s, const job *j, const form_field *f, canvas_prompt *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", s->tmp_dir, j->id);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return status_fail(CANVAS_ERR_IO, "%s: %s", path, strerror(errno));
    size_t done = 0;
    while (done < f->size) {
        ssize_t n = write(fd, f->data + done, f->size - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    close(fd);
    canvas_status st = done == f->size ? canvas_prompt_load(path, out)
                                       : status_fail(CANVAS_ERR_IO, "%s: write failed", path);
    unlink(path);
    if (st == CANVAS_ERR_INPUT) { /* the reason without the private file's path */
        char reason[512];
        const char *after_path = strstr(canvas_last_error(), ": ");
        snprintf(reason, sizeof reason, "%s", after_path ? after_path + 2 : canvas_last_error());
        st = status_fail(CANVAS_ERR_INPUT, "prompt_embeds: %s", reason);
    }
    return st;
}

#define BAD(code, ...) (snprintf(message, message_size, __VA_ARGS__), (code))

/* Field `lora`: "NAME[:SCALE][,NAME[:SCALE]...]" (SCALE 1 when left out), each NAME one of the
 * server's LoRAs (GET /healthz lists them): that LoRA at that strength for this job. Names
 * only: a client never gives a path. 0, or the 4xx to answer with the message. */
static int lora_by_name(const server *s, const char *v, float *scales, char *message, size_t message_size)
{
    if (!v[0]) return BAD(400, "lora is empty: give NAME or NAME:SCALE, comma-separated");
    unsigned char named[SERVER_MAX_LORAS] = {0}; /* a name given twice is a mistake, not "the last wins" */
    for (const char *at = v; *at;) {
        size_t len = strcspn(at, ":,");
        int found = -1;
        for (int i = 0; i < s->n_loras && found < 0; i++)
            if (strlen(s->lora_names[i]) == len && !strncmp(s->lora_names[i], at, len)) found = i;
        if (found < 0) {
            char known[512] = "";
            for (int i = 0, used = 0; i < s->n_loras && used < (int)sizeof known; i++)
                used += snprintf(known + used, sizeof known - (size_t)used, "%s%s", i ? ", " : "", s->lora_names[i]);
            return BAD(400, "lora: the server has no LoRA named '%.*s' (it has: %s)", (int)(len < 200 ? len : 200),
                       at, s->n_loras ? known : "none; start it with --lora-dir or --lora");
        }
        if (named[found]++) return BAD(400, "lora: '%s' is named twice; give each LoRA once", s->lora_names[found]);
        double x = 1.0;
        at += len;
        if (*at == ':') {
            char *end;
            errno = 0;
            x = strtod(at + 1, &end);
            if (errno || end == at + 1 || !isfinite(x) || x < -100 || x > 100 || (*end && *end != ','))
                return BAD(400, "lora: the strength of '%s' takes a number from -100 to 100", s->lora_names[found]);
            at = end;
        }
        scales[found] = (float)x;
        if (*at == ',') at++;
    }
    return 0;
}

int job_from_form(server *s, const form *f, int edit, job *j, char *message, size_t message_size)
{
    canvas_edit_params *p = &j->params;
    canvas_edit_params_default(p);
    memcpy(j->lora_scales, s->lora_defaults, sizeof j->lora_scales);
    if (s->config.default_steps > 0) p->steps = s->config.default_steps;
    const form_field *prompt = NULL, *negative = NULL, *embeds = NULL;
    int steps_given = 0, cfg_given = 0, lightning = 0;
    for (int i = 0; i < f->n; i++) {
        const form_field *field = &f->fields[i];
        const char *name = field->name, *v = field->data;
        long long n, w, h;
        for (int k = 0; k < i; k++)
            if (!strcmp(f->fields[k].name, name) && strcmp(name, "image") && strcmp(name, "image[]"))
                return BAD(400, "field '%s' given twice", name);
        int is_file = !strcmp(name, "image") || !strcmp(name, "image[]") || !strcmp(name, "prompt_embeds");
        if (!is_file && strlen(v) != field->size) return BAD(400, "field '%s' holds a NUL character", name);
        if (!strcmp(name, "image") || !strcmp(name, "image[]")) {
            if (edit < 0) return BAD(400, "a generation takes no image (use /v1/images/edits)");
            if (j->n_images == SERVER_MAX_IMAGES) return BAD(400, "more than %d images", SERVER_MAX_IMAGES);
            char label[160];
            snprintf(label, sizeof label, "image %d%s%s", j->n_images + 1, field->filename[0] ? " " : "", field->filename);
            canvas_image *img = &j->images[j->n_images];
            /* the server's pixel limit is checked from the header, before the pixels are decoded */
            canvas_status st = image_decode_limited(field->data, field->size, label, s->config.max_image_pixels, img);
            if (st != CANVAS_OK)
                return BAD(st == CANVAS_ERR_OUT_OF_MEMORY ? 507 : strstr(canvas_last_error(), "over the limit") ? 413 : 400,
                           "%s", canvas_last_error());
            j->n_images++;
        } else if (!strcmp(name, "prompt")) {
            prompt = field;
        } else if (!strcmp(name, "negative_prompt")) {
            negative = field;
        } else if (!strcmp(name, "prompt_embeds")) {
            embeds = field;
        } else if (!strcmp(name, "size")) {
            if (strcmp(v, "auto")) {
                if (!parse_size(v, &w, &h)) return BAD(400, "size takes WxH (16 to 16384 a side) or auto (got '%s')", v);
                if (w * h > s->config.max_image_pixels)
                    return BAD(413, "size %s is over the server's limit of %lld pixels", v,
                               (long long)s->config.max_image_pixels);
                p->width = (int)w;
                p->height = (int)h;
            }
        } else if (!strcmp(name, "n")) {
            if (strcmp(v, "1")) return BAD(400, "n must be 1 (got '%s'): one image per request", v);
        } else if (!strcmp(name, "response_format")) {
            if (strcmp(v, "b64_json"))
                return BAD(400, "response_format must be b64_json (got '%s'; jobs give /v1/jobs/{id}/image.png)", v);
        } else if (!strcmp(name, "output_format")) {
            if (strcmp(v, "png")) return BAD(400, "output_format must be png (got '%s')", v);
        } else if (!strcmp(name, "steps")) {
            if (!parse_integer(v, 1, 1000, &n)) return BAD(400, "steps takes a whole number from 1 to 1000 (got '%s')", v);
            p->steps = (int)n;
            steps_given = 1;
        } else if (!strcmp(name, "cfg")) {
            char *end;
            errno = 0;
            double x = strtod(v, &end);
            if (errno || end == v || *end || !isfinite(x) || x < 0 || x > 100)
                return BAD(400, "cfg takes a number from 0 to 100 (got '%s')", v);
            p->cfg = (float)x;
            cfg_given = 1;
        } else if (!strcmp(name, "seed")) {
            char *end;
            errno = 0;
            unsigned long long seed = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-')
                return BAD(400, "seed takes a whole number from 0 to 18446744073709551615 (got '%s')", v);
            p->seed = seed;
        } else if (!strcmp(name, "vae_area")) {
            if (parse_size(v, &w, &h)) n = w * h;
            else if (!parse_integer(v, 256, (long long)16384 * 16384, &n))
                return BAD(400, "vae_area takes a pixel count from 256 or WxH (got '%s')", v);
            if (n > s->config.max_image_pixels)
                return BAD(413, "vae_area %s is over the server's limit of %lld pixels", v, (long long)s->config.max_image_pixels);
            p->vae_area = n;
        } else if (!strcmp(name, "lightning")) {
            if (strcmp(v, "4") && strcmp(v, "8")) return BAD(400, "lightning takes 4 or 8 (steps; got '%s')", v);
            lightning = v[0] - '0';
        } else if (!strcmp(name, "lora_scale")) {
            /* one scale per LoRA the server was started with, in order: "0.8" or "0.8,1" */
            const char *at = v;
            int n_scales = 0;
            while (*at) {
                char *end;
                errno = 0;
                double x = strtod(at, &end);
                if (errno || end == at || !isfinite(x) || x < -100 || x > 100 || (*end && *end != ','))
                    return BAD(400, "lora_scale takes numbers from -100 to 100 separated by commas (got '%s')", v);
                if (n_scales == s->n_loras)
                    return BAD(400, "lora_scale gives more scales than the server's %d LoRA(s)", s->n_loras);
                j->lora_scales[n_scales++] = (float)x;
                at = *end ? end + 1 : end;
            }
            if (n_scales == 0) return BAD(400, "lora_scale is empty");
        } else if (!strcmp(name, "lora")) {
            int code = lora_by_name(s, v, j->lora_scales, message, message_size);
            if (code) return code;
        } else if (!strcmp(name, "mask")) {
            return BAD(400, "mask is not supported: Qwen-Image-Edit edits from the prompt");
        } else if (!ignored_field(name)) {
            return BAD(400, "unknown field '%s'", name);
        }
    }
    if (edit > 0 && j->n_images == 0) return BAD(400, "an edit needs at least one image (field 'image' or 'image[]')");
    j->generate = j->n_images == 0;
    if (lightning) { /* as the CLI's --lightning: an explicit steps / cfg wins */
        if (!steps_given) p->steps = lightning;
        if (!cfg_given) p->cfg = 1.0f;
        p->lightning_scheduler = 1;
    }
    if (!prompt == !embeds) return BAD(400, "give a prompt (text) or prompt_embeds (a safetensors file part), one of them");
    if (prompt) {
        if (!s->has_text_encoder)
            return BAD(400, "this model folder has no text encoder: send prompt_embeds (a safetensors part) instead of prompt");
        if (!prompt->data[0]) return BAD(400, "prompt is empty");
        /* the negative as `canvas edit` takes it: " " when CFG is on and none is given */
        const char *neg = negative ? negative->data : p->cfg > 1 ? " " : NULL;
        if (mem_strdup(&j->prompt_text, prompt->data) != CANVAS_OK ||
            (neg && mem_strdup(&j->negative_text, neg) != CANVAS_OK))
            return BAD(507, "out of memory copying the prompt");
    } else {
        if (negative) return BAD(400, "negative_prompt goes with prompt; with prompt_embeds the negative is the file's negative_prompt_embeds");
        canvas_status st = load_embeds(s, j, embeds, &j->embeds);
        if (st != CANVAS_OK) return BAD(server_http_status(st), "%s", canvas_last_error());
    }
    status_clear();
    return 0;
}
