/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_tokenize.c — `canvas tokenize DIR_OR_FILE [--decode]`: the tokenizer on stdin.
 *
 * One prompt per line in, one line of space-separated ids out (and the reverse with
 * --decode). A prompt's own newlines are written \n inside its line; \r, \t and \\ are
 * the other escapes, and decoded text is printed escaped the same way, so a line always
 * stands for one prompt. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "cli/commands.h"
#include "mem/mem.h"
#include "text/tokenizer.h"

/* An escaped line holds at most two bytes per byte of the longest prompt. */
#define LINE_MAX_BYTES (2 * TOKENIZER_MAX_TEXT + 2)

static void print_help(void)
{
    printf("usage: canvas tokenize DIR_OR_FILE [--decode]\n\n"
           "Tokenize prompts with a Qwen2 tokenizer: DIR_OR_FILE is a model's tokenizer/ folder\n"
           "(vocab.json, merges.txt, tokenizer_config.json), a tokenizer.json, or a folder holding one.\n"
           "Reads stdin, one prompt per line (write a newline inside a prompt as \\n; \\r, \\t and\n"
           "\\\\ are the other escapes), and prints one line of space-separated token ids per prompt.\n\n"
           "options:\n"
           "  --decode   read lines of ids instead and print their text, escaped the same way\n"
           "  --help     this text\n\n"
           "exit codes: 0 ok, 2 usage, 3 out of memory, 4 bad tokenizer files or bad input line, 1 other\n");
}

/* Read one line of stdin (without its '\n') into a growing buffer; 0 at the end of input (a
 * read error is 1 with *st set). */
static int read_line(char **buf, size_t *cap, size_t *len, canvas_status *st)
{
    *len = 0;
    int c, any = 0;
    while ((c = getchar()) != EOF) {
        any = 1;
        if (c == '\n') break;
        if (*len + 1 >= *cap) {
            size_t grown = *cap ? 2 * *cap : 4096;
            if (grown > LINE_MAX_BYTES) {
                *st = status_fail(CANVAS_ERR_INPUT, "the line is longer than %zu bytes", (size_t)LINE_MAX_BYTES);
                return 1;
            }
            if ((*st = mem_realloc((void **)buf, grown, MEM_SCRATCH)) != CANVAS_OK) return 1;
            *cap = grown;
        }
        (*buf)[(*len)++] = (char)c;
    }
    if (c == EOF && ferror(stdin)) { /* a folder or a failing device on stdin is not the end of input */
        *st = status_fail(CANVAS_ERR_INPUT, "cannot read stdin: %s", strerror(errno));
        return 1;
    }
    return any;
}

/* Undo the escapes in place. */
static canvas_status unescape(char *s, size_t *len)
{
    size_t out = 0;
    for (size_t i = 0; i < *len; i++) {
        char c = s[i];
        if (c == '\\') {
            char e = i + 1 < *len ? s[++i] : '\0';
            c = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e == '\\' ? '\\' : 0;
            if (!c) return status_fail(CANVAS_ERR_INPUT, "byte %zu: unknown escape (\\n, \\r, \\t, \\\\ are the escapes)", i);
        }
        s[out++] = c;
    }
    *len = out;
    return CANVAS_OK;
}

static void print_escaped(const char *s)
{
    for (; *s; s++) {
        if (*s == '\n') fputs("\\n", stdout);
        else if (*s == '\r') fputs("\\r", stdout);
        else if (*s == '\t') fputs("\\t", stdout);
        else if (*s == '\\') fputs("\\\\", stdout);
        else putchar(*s);
    }
    putchar('\n');
}

static canvas_status encode_line(tokenizer *tok, char *line, size_t len)
{
    TRY(unescape(line, &len));
    int32_t *ids;
    size_t n;
    TRY(tokenizer_encode(tok, line, len, &ids, &n));
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    putchar('\n');
    mem_free(ids);
    return CANVAS_OK;
}

static canvas_status decode_line(const tokenizer *tok, char *line, size_t len)
{
    line[len] = '\0';
    /* at most one id per two bytes ("1 2 3") */
    int32_t *ids;
    size_t n = 0;
    TRY(mem_alloc((void **)&ids, (len / 2 + 1) * sizeof *ids, MEM_SCRATCH));
    canvas_status st = CANVAS_OK;
    for (char *at = line; st == CANVAS_OK;) {
        while (*at == ' ') at++;
        if (!*at) break;
        char *end;
        long v = strtol(at, &end, 10);
        if (end == at || (*end && *end != ' ') || v < 0 || v > INT32_MAX)
            st = status_fail(CANVAS_ERR_INPUT, "byte %zu: not a token id", (size_t)(at - line));
        else ids[n++] = (int32_t)v;
        at = end;
    }
    char *text = NULL;
    if (st == CANVAS_OK) st = tokenizer_decode(tok, ids, n, &text);
    if (st == CANVAS_OK) print_escaped(text);
    mem_free(text);
    mem_free(ids);
    return st;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *path = NULL;
    int decode = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_help();
            return 0;
        }
        if (!strcmp(argv[i], "--decode")) decode = 1;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            char message[256];
            snprintf(message, sizeof message, "unknown option '%s'", argv[i]);
            return cli_usage_error("tokenize", message);
        } else if (path) return cli_usage_error("tokenize", "give one DIR_OR_FILE");
        else path = argv[i];
    }
    if (!path) return cli_usage_error("tokenize", "missing DIR_OR_FILE (a tokenizer/ folder or a tokenizer.json)");

    tokenizer *tok;
    canvas_status st = tokenizer_open(path, &tok);
    if (st != CANVAS_OK) return cli_fail(st, "tokenize");
    char *line = NULL;
    size_t cap = 0, len, number = 0;
    while (st == CANVAS_OK && read_line(&line, &cap, &len, &st)) {
        number++;
        if (st != CANVAS_OK) break;
        if (!line && (st = mem_alloc((void **)&line, cap = 4096, MEM_SCRATCH)) != CANVAS_OK) break;
        st = decode ? decode_line(tok, line, len) : encode_line(tok, line, len);
    }
    mem_free(line);
    tokenizer_close(tok);
    if (fflush(stdout) != 0 && st == CANVAS_OK) st = status_fail(CANVAS_ERR_IO, "cannot write the output");
    if (st == CANVAS_OK) return 0;
    char context[64];
    snprintf(context, sizeof context, "tokenize: stdin line %zu", number);
    return cli_fail(st, context);
}
