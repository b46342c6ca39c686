/* SPDX-License-Identifier: Apache-2.0 */
/* inspect_table.c — `canvas inspect` as a readable table: one row per component and
 * indented rows for its parts, sizes in decimal units (GB = 10^9 bytes), then one note
 * line per component. */
#include <stdio.h>

#include "cli/inspect.h"

const char *inspect_commas(uint64_t value, char *buf, size_t size)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)value);
    size_t out = 0;
    for (int i = 0; i < n && out + 2 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[out++] = ',';
        buf[out++] = digits[i];
    }
    buf[out] = '\0';
    return buf;
}

static const char *human_bytes(uint64_t bytes, char *buf, size_t size)
{
    if (bytes >= 1000000000ull) snprintf(buf, size, "%.2f GB", bytes / 1e9);
    else if (bytes >= 1000000ull) snprintf(buf, size, "%.2f MB", bytes / 1e6);
    else if (bytes >= 1000ull) snprintf(buf, size, "%.2f kB", bytes / 1e3);
    else snprintf(buf, size, "%llu B", (unsigned long long)bytes);
    return buf;
}

static void print_row(const char *label, const inspect_sizes *s, int weights_present)
{
    char params[32], tensors[32], stored[32], as[ARCH_SIZE_FORMAT_COUNT][32];
    for (int f = 0; f < ARCH_SIZE_FORMAT_COUNT; f++) human_bytes(s->bytes_as[f], as[f], sizeof as[f]);
    printf("%-34s %16s %8s %11s %11s %11s %11s %11s\n", label, inspect_commas(s->params, params, sizeof params),
           inspect_commas((uint64_t)s->tensors, tensors, sizeof tensors),
           weights_present ? human_bytes(s->stored_bytes, stored, sizeof stored) : "absent", as[0], as[1], as[2],
           as[3]);
}

static void print_header(void)
{
    printf("%-34s %16s %8s %11s", "", "params", "tensors", "stored");
    for (int f = 0; f < ARCH_SIZE_FORMAT_COUNT; f++) printf(" %11s", arch_format_name(ARCH_SIZE_FORMATS[f]));
    printf("\n");
}

static void print_component_rows(const inspect_component *c)
{
    print_row(c->name, &c->total, c->weights_present);
    char label[64];
    for (int p = 0; p < c->n_parts; p++) {
        snprintf(label, sizeof label, "  %s", c->parts[p].label);
        print_row(label, &c->parts[p].sizes, c->weights_present);
    }
}

static void print_note(const inspect_component *c)
{
    printf("%-13s %s", c->name, c->class_name[0] ? c->class_name : "(unknown class)");
    switch (c->state) {
    case INSPECT_CHECKED:
        printf(": %s\n%-13s ", c->summary, "");
        if (c->single_file)
            printf("a single file (%s), checked against the architecture its tensors imply\n", c->dtypes);
        else if (c->weights_present)
            printf("%d weight file%s (%s), checked against the architecture from config.json\n", c->n_files,
                   c->n_files == 1 ? "" : "s", c->dtypes);
        else
            printf("weights absent: sizes come from config.json alone\n");
        break;
    case INSPECT_CONFIG_ONLY: printf(": %s\n", c->summary); break;
    case INSPECT_LISTED: printf(": present, not inspected\n"); break;
    case INSPECT_ABSENT: printf(": folder absent\n"); break;
    }
}

static void print_file(const inspect_report *r)
{
    char a[32], b[32], c[32];
    printf("%s: safetensors file, %s bytes, %d metadata entr%s\n\n", r->path,
           inspect_commas(r->file_size, a, sizeof a), r->file_metadata, r->file_metadata == 1 ? "y" : "ies");
    printf("%-8s %8s %16s %16s\n", "dtype", "tensors", "params", "bytes");
    for (int t = 0; t < DTYPE_COUNT; t++) {
        const inspect_dtype_count *d = &r->file_dtypes[t];
        if (d->tensors)
            printf("%-8s %8d %16s %16s\n", dtype_name((dtype)t), d->tensors, inspect_commas(d->params, b, sizeof b),
                   inspect_commas(d->bytes, c, sizeof c));
    }
    printf("%-8s %8d %16s %16s\n", "total", r->file_tensors, inspect_commas(r->file_params, b, sizeof b),
           inspect_commas(r->file_bytes, c, sizeof c));
}

void inspect_print_table(const inspect_report *r)
{
    if (r->kind == INSPECT_FILE) {
        print_file(r);
        return;
    }
    if (r->kind == INSPECT_PIPELINE) printf("%s: pipeline %s\n\n", r->path, r->pipeline_class);
    else printf("%s: %s component\n\n", r->path, r->components[0].name);
    print_header();
    int present = 1, rows = 0;
    for (int i = 0; i < r->n_components; i++) {
        const inspect_component *c = &r->components[i];
        if (c->state != INSPECT_CHECKED) continue;
        print_component_rows(c);
        present &= c->weights_present;
        rows++;
    }
    if (r->kind == INSPECT_PIPELINE && rows > 1) print_row("total", &r->total, present);
    printf("\n");
    for (int i = 0; i < r->n_components; i++) print_note(&r->components[i]);
    printf("\nbf16 2 B/param; fp8 1 B/param + a scale per matrix; nf4 4.5 bits/param and q8 8.5 bits/param for\n"
           "2-D weights whose input width is a multiple of 64 (nf4) / 32 (q8); everything else stays bf16.\n");
}
