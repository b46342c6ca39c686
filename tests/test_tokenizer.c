/* SPDX-License-Identifier: Apache-2.0 */
/* test_tokenizer.c — the Qwen2 tokenizer against an independent one, and its edges.
 *
 * tests/tokenizer/corpus.txt (22,213 prompts, tools/gen_tokenizer_corpus.py) and ids.txt
 * (the ids of the JavaScript tokenizer @lenml/tokenizers 3.7.2, tools/
 * gen_tokenizer_reference.sh): every line must match exactly, through both loading
 * paths. Then the spec's vectors (C.4, C.7), decode round trips, UTF-8 errors with their
 * offsets, NFC cases, the regex where Hugging Face and JavaScript differ, and hostile
 * tokenizer files. */
#define _DEFAULT_SOURCE /* mkdtemp, truncate */
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "base/clock.h"
#include "io/file_read.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "text/pretokenize.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

#define REAL "real-configs/qwen-image-edit-2511"

static tokenizer *open_real(const char *relative)
{
    char path[512];
    tokenizer *tok = NULL;
    CHECK_OK(tokenizer_open(test_path(path, sizeof path, relative), &tok));
    return tok;
}

/* The ids of text, or NULL (with *n = 0) after a failed check. */
static int32_t *encode(tokenizer *tok, const char *text, size_t len, size_t *n)
{
    int32_t *ids = NULL;
    *n = 0;
    CHECK_OK(tokenizer_encode(tok, text, len, &ids, n));
    return ids;
}

static void check_ids(tokenizer *tok, const char *text, const int32_t *want, size_t n_want)
{
    size_t n;
    int32_t *ids = encode(tok, text, strlen(text), &n);
    int same = n == n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    CHECK_MSG(same, "'%s': %zu ids, first %d; wanted %zu, first %d", text, n, n ? ids[0] : -1, n_want,
              n_want ? want[0] : -1);
    mem_free(ids);
}

/* ---- the corpus ------------------------------------------------------------------------ */

typedef struct corpus {
    char *text, *ids;        /* the two files, NUL-terminated */
    char **line, **id_line;  /* line starts (NUL-terminated in place) */
    size_t *len;             /* unescaped lengths */
    size_t n;
} corpus;

static size_t split_lines(char *text, char **starts, size_t max)
{
    size_t n = 0;
    for (char *at = text; *at && n < max;) {
        char *eol = strchr(at, '\n');
        starts[n++] = at;
        if (!eol) break;
        *eol = '\0';
        at = eol + 1;
    }
    return n;
}

/* \n \r \t \\ as canvas tokenize reads them, in place. */
static size_t unescape(char *s)
{
    size_t out = 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if (c == '\\' && s[i + 1]) {
            char e = s[++i];
            c = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e;
        }
        s[out++] = c;
    }
    return out;
}

static int load_corpus(corpus *c)
{
    char path[512];
    size_t size, ids_size;
    memset(c, 0, sizeof *c);
    CHECK_OK(file_read_all(test_path(path, sizeof path, "tokenizer/corpus.txt"), 64 << 20, &c->text, &size));
    CHECK_OK(file_read_all(test_path(path, sizeof path, "tokenizer/ids.txt"), 64 << 20, &c->ids, &ids_size));
    if (!c->text || !c->ids) return 0;
    size_t max = 1;
    for (size_t i = 0; i < size; i++) max += c->text[i] == '\n';
    CHECK_OK(mem_calloc((void **)&c->line, max, 2 * sizeof(char *) + sizeof(size_t), MEM_SCRATCH));
    c->id_line = c->line + max;
    c->len = (size_t *)(c->id_line + max);
    c->n = split_lines(c->text, c->line, max);
    size_t n_ids = split_lines(c->ids, c->id_line, max);
    CHECK_MSG(c->n == n_ids && c->n >= 20000, "%zu prompts, %zu id lines", c->n, n_ids);
    for (size_t i = 0; i < c->n; i++) c->len[i] = unescape(c->line[i]);
    return c->n == n_ids;
}

static void free_corpus(corpus *c)
{
    mem_free(c->text);
    mem_free(c->ids);
    mem_free(c->line);
}

/* Lines whose ids differ from the reference; prints the first. */
static size_t corpus_mismatches(tokenizer *tok, const corpus *c, const char *which, size_t *n_tokens)
{
    size_t bad = 0;
    *n_tokens = 0;
    for (size_t i = 0; i < c->n; i++) {
        size_t n;
        int32_t *ids = encode(tok, c->line[i], c->len[i], &n);
        *n_tokens += n;
        char got[64 * 1024];
        size_t used = 0;
        for (size_t k = 0; k < n && used + 16 < sizeof got; k++) used += (size_t)snprintf(got + used, sizeof got - used, k ? " %d" : "%d", (int)ids[k]);
        got[used] = '\0';
        if (strcmp(got, c->id_line[i]) != 0 && used + 16 < sizeof got) {
            if (bad == 0)
                fprintf(stderr, "%s: first mismatch, corpus line %zu:\n  ours: %.300s\n  ref:  %.300s\n", which, i + 1, got,
                        c->id_line[i]);
            bad++;
        }
        mem_free(ids);
    }
    return bad;
}

static void test_corpus_matches_reference(void)
{
    corpus c;
    tokenizer *folder = open_real(REAL "/tokenizer");
    tokenizer *json = open_real(REAL "/processor");   /* its tokenizer.json: no vocab.json there */
    if (load_corpus(&c) && folder && json) {
        size_t tokens;
        double t0 = clock_seconds();
        size_t bad = corpus_mismatches(folder, &c, "tokenizer/ folder", &tokens);
        double seconds = clock_seconds() - t0;
        fprintf(stderr, "corpus: %zu of %zu prompts identical to the reference (tokenizer/ folder), %zu tokens, "
                        "%.0f tokens/s on this run\n", c.n - bad, c.n, tokens, tokens / seconds);
        CHECK_MSG(bad == 0, "%zu of %zu corpus lines differ", bad, c.n);
        bad = corpus_mismatches(json, &c, "tokenizer.json", &tokens);
        fprintf(stderr, "corpus: %zu of %zu prompts identical to the reference (tokenizer.json)\n", c.n - bad, c.n);
        CHECK_MSG(bad == 0, "%zu of %zu corpus lines differ through tokenizer.json", bad, c.n);
    }
    free_corpus(&c);
    tokenizer_close(folder);
    tokenizer_close(json);
}

/* decode(encode(x)) == x for every NFC prompt, and encoding that again gives the same ids. */
static void test_decode_round_trip(void)
{
    corpus c;
    tokenizer *tok = open_real(REAL "/tokenizer");
    size_t exact = 0, nfc_lines = 0, stable = 0;
    if (load_corpus(&c) && tok) {
        for (size_t i = 0; i < c.n; i++) {
            size_t n, n2, nfc_len = 0;
            int32_t *ids = encode(tok, c.line[i], c.len[i], &n);
            char *text = NULL, *nfc = NULL;
            CHECK_OK(tokenizer_decode(tok, ids, n, &text));
            CHECK_OK(unicode_nfc(c.line[i], c.len[i], &nfc, &nfc_len));
            if (text && nfc && nfc_len == c.len[i] && memcmp(nfc, c.line[i], nfc_len) == 0) {
                nfc_lines++;
                exact += strlen(text) == c.len[i] && memcmp(text, c.line[i], c.len[i]) == 0;
            }
            int32_t *again = text ? encode(tok, text, strlen(text), &n2) : NULL;
            stable += text && n2 == n && (n == 0 || memcmp(again, ids, n * sizeof *ids) == 0);
            mem_free(again);
            mem_free(text);
            mem_free(nfc);
            mem_free(ids);
        }
    }
    fprintf(stderr, "round trip: %zu of %zu NFC prompts decode to themselves; %zu of %zu re-encode to the same ids\n",
            exact, nfc_lines, stable, c.n);
    CHECK(nfc_lines > c.n / 2);
    CHECK(exact == nfc_lines);
    CHECK(stable == c.n);
    free_corpus(&c);
    tokenizer_close(tok);
}

/* ---- the spec's vectors ---------------------------------------------------------------- */

static void test_real_vectors(void)
{
    size_t before = mem_total_current();
    tokenizer *tok = open_real(REAL "/tokenizer");
    if (!tok) return;
    /* the tables stay small: bytes, ids, two hash tables */
    size_t held = mem_total_current() - before;
    fprintf(stderr, "tokenizer tables: %.1f MiB\n", held / 1048576.0);
    CHECK(held < (size_t)32 << 20);
    check_ids(tok, "Hello world", (const int32_t[]){9707, 1879}, 2);
    check_ids(tok, " Hello world", (const int32_t[]){21927, 1879}, 2);
    check_ids(tok, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                   "<|vision_start|><|image_pad|><|image_pad|>",
              (const int32_t[]){151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198,
                                151652, 151655, 151655}, 17);
    check_ids(tok, "", NULL, 0);
    CHECK(tokenizer_token_id(tok, "<|image_pad|>") == 151655);
    CHECK(tokenizer_token_id(tok, "<|file_sep|>") == 151664);
    CHECK(tokenizer_token_id(tok, "<think>") == -1);
    CHECK(tokenizer_token_id(tok, "\xc4\xa0world") == 1879);   /* "Ġworld", as vocab.json writes it */
    CHECK(tokenizer_token_id(tok, "user") == 872);
    CHECK(tokenizer_token_id(tok, "not a token at all") == -1);
    CHECK(tokenizer_token_id(tok, "") == -1);
    /* decode: added tokens as their text, ids outside the vocabulary refused */
    char *text = NULL;
    CHECK_OK(tokenizer_decode(tok, (const int32_t[]){151644, 872, 198, 9707, 1879}, 5, &text));
    CHECK(text && strcmp(text, "<|im_start|>user\nHello world") == 0);
    mem_free(text);
    CHECK_FAILS(tokenizer_decode(tok, (const int32_t[]){9707, 151665}, 2, &text), CANVAS_ERR_INPUT, "ids[1] = 151665");
    CHECK_FAILS(tokenizer_decode(tok, (const int32_t[]){-1}, 1, &text), CANVAS_ERR_INPUT, "ids[0] = -1");
    tokenizer_close(tok);
}

/* Spec C.4's example, cut by the matcher alone. */
static void test_pretokenize_example(void)
{
    const char *text = "Hello  world\n\n  x 123 it's ;}\n";
    const char *want[] = {"Hello", " ", " world", "\n\n", " ", " x", " ", "1", "2", "3", " it", "'s", " ;}\n"};
    uint32_t cp[64];
    uint8_t cls[64];
    size_t n = 0;
    for (const char *s = text; *s; s++, n++) {
        cp[n] = (unsigned char)*s;
        cls[n] = (uint8_t)unicode_class_of(cp[n]);
    }
    pretok_text t = {cp, cls, n};
    size_t k = 0;
    for (size_t i = 0; i < n && k < 13; k++) {
        size_t end = pretok_match(&t, i);
        CHECK_MSG(end - i == strlen(want[k]) && memcmp(text + i, want[k], end - i) == 0, "piece %zu: '%.*s'", k,
                  (int)(end - i), text + i);
        i = end;
    }
    CHECK(k == 13);
}

/* The matcher's length at 0 of a short code-point string. */
static size_t first_piece(const uint32_t *cp, size_t n)
{
    uint8_t cls[16];
    for (size_t i = 0; i < n; i++) cls[i] = (uint8_t)unicode_class_of(cp[i]);
    pretok_text t = {cp, cls, n};
    return pretok_match(&t, 0);
}

/* Where the Hugging Face tokenizer (Oniguruma / Python regex) and the JavaScript reference
 * differ, the corpus stays out and we follow Hugging Face: the model was trained with it. */
static void test_regex_follows_hugging_face(void)
{
    /* White_Space has U+0085 (JS's \s lacks it) and not U+FEFF (JS's has it) */
    CHECK(unicode_class_of(0x85) == UCLASS_SPACE);
    CHECK(unicode_class_of(0xFEFF) == UCLASS_OTHER);
    CHECK(first_piece((const uint32_t[]){'!', 0x85}, 2) == 1);
    CHECK(first_piece((const uint32_t[]){0xFEFF, '!'}, 2) == 2);
    /* (?i:'s) folds U+017F (long s) to s */
    CHECK(first_piece((const uint32_t[]){'\'', 0x17F, 'x'}, 3) == 2);
    CHECK(first_piece((const uint32_t[]){'\'', 'L', 'l', 'x'}, 4) == 3);
    /* the 25 White_Space code points of spec C.4 */
    const uint32_t space[] = {9, 10, 11, 12, 13, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005,
                              0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
    int spaces = 0;
    for (uint32_t c = 0; c < 0x110000; c++) spaces += unicode_class_of(c) == UCLASS_SPACE;
    CHECK(spaces == 25);
    for (size_t i = 0; i < sizeof space / sizeof space[0]; i++) CHECK(unicode_class_of(space[i]) == UCLASS_SPACE);
    CHECK(unicode_class_of(0x4E00) == UCLASS_LETTER && unicode_class_of(0x2163) == UCLASS_NUMBER);  /* 一, Ⅳ (Nl) */
    CHECK(unicode_class_of(0xBD) == UCLASS_NUMBER && unicode_class_of(0x300) == UCLASS_OTHER);      /* ½ (No), a mark */
    CHECK(unicode_class_of(0x1F600) == UCLASS_OTHER && unicode_class_of(0x10FFFF) == UCLASS_OTHER);
}

static void nfc_is(const char *in, const char *want)
{
    char *out = NULL;
    size_t n = 0;
    CHECK_OK(unicode_nfc(in, strlen(in), &out, &n));
    CHECK_MSG(out && n == strlen(want) && memcmp(out, want, n) == 0, "NFC of '%s' is '%.*s', wanted '%s'", in, (int)n,
              out ? out : "", want);
    mem_free(out);
}

static void test_nfc(void)
{
    nfc_is("e\xcc\x81", "\xc3\xa9");                          /* e + acute -> é */
    nfc_is("\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", "\xea\xb0\x81");   /* jamo -> 각 (Hangul arithmetic) */
    nfc_is("\xea\xb0\x80\xe1\x86\xa8", "\xea\xb0\x81");       /* LV + T -> LVT */
    nfc_is("\xe0\xa5\x98", "\xe0\xa4\x95\xe0\xa4\xbc");      /* U+0958 is excluded from composition */
    nfc_is("\xe2\x84\xab", "\xc3\x85");                       /* Angstrom sign -> Å (singleton) */
    nfc_is("a\xcc\x81\xcc\xa3", "\xe1\xba\xa1\xcc\x81");     /* a + acute + dot below: reordered, ạ + acute */
    nfc_is("\xcc\x81" "a", "\xcc\x81" "a");                   /* a leading mark stays */
    nfc_is("plain ASCII", "plain ASCII");
    nfc_is("\xcf\x92\xcc\x81", "\xcf\x93");                   /* spec C.7: U+03D2 U+0301 -> U+03D3 */
}

/* ---- spec C.7's tiny tokenizer --------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(text, 1, len, f) == len);
    fclose(f);
}

/* The 256 byte tokens in bytes_to_unicode() order, plus `extra` entries, as vocab.json. */
static void write_tiny_vocab(const char *dir, const char *extra, int skip_byte)
{
    char json[16384];
    size_t used = (size_t)snprintf(json, sizeof json, "{");
    int id = 0, n_shifted = 0;
    uint32_t cp_of[256];
    for (int b = 0; b < 256; b++) {
        int self = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        cp_of[b] = self ? (uint32_t)b : 256u + (uint32_t)n_shifted++;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            int self = cp_of[b] == (uint32_t)b;
            if (self != (pass == 0)) continue;
            if (b != skip_byte) used += (size_t)snprintf(json + used, sizeof json - used, "\"\\u%04X\": %d, ", cp_of[b], id);
            id++;
        }
    used += (size_t)snprintf(json + used, sizeof json - used, "%s}", extra);
    write_file(dir, "vocab.json", json, used);
}

static const char TINY_EXTRA[] =
    "\"\\u0120l\": 256, \"\\u0120n\": 257, \"\\u0120lo\": 258, \"\\u0120low\": 259, \"er\": 260, "
    "\"\\u0120lowest\": 261, \"\\u0120newer\": 262, \"\\u0120wider\": 263, \"01\": 264, \";}\": 265, "
    "\";}\\u010A\": 266, \"\\u00CF\\u0135\": 267";
static const char TINY_MERGES[] = "#version: 0.2\n\xc4\xa0 l\n\xc4\xa0l o\n\xc4\xa0lo w\ne r\n0 1\n; }\n;} \xc4\x8a\n\xc3\x8f \xc4\xb5\n";
static const char TINY_CONFIG[] = "{\"added_tokens_decoder\": {\"268\": {\"content\": \"<|endoftext|>\", \"special\": true}}}";

static void make_tiny(const char *dir)
{
    mkdir(dir, 0700);
    write_tiny_vocab(dir, TINY_EXTRA, -1);
    write_file(dir, "merges.txt", TINY_MERGES, strlen(TINY_MERGES));
    write_file(dir, "tokenizer_config.json", TINY_CONFIG, strlen(TINY_CONFIG));
}

static void test_tiny_tokenizer(void)
{
    char dir[] = "/tmp/canvas_test_tokenizer.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    make_tiny(dir);
    tokenizer *tok = NULL;
    CHECK_OK(tokenizer_open(dir, &tok));
    if (tok) {
        check_ids(tok, "lower lower newer 010;}\n<|endoftext|>\xcf\x92\xcc\x81",
                  (const int32_t[]){75, 78, 86, 260, 259, 260, 220, 77, 68, 86, 260, 220, 15, 16, 15, 266, 268, 267}, 18);
        CHECK(tokenizer_token_id(tok, "<|endoftext|>") == 268);
        CHECK(tokenizer_token_id(tok, "!") == 0 && tokenizer_token_id(tok, "0") == 15);
    }
    tokenizer_close(tok);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* The golden prompt-edit-plus-one case's input_ids (from transformers' Qwen2 tokenizer):
 * the Edit-Plus template of spec B.9 around one picture, whose 22x34 grid is 187 image pads. */
static void test_golden_edit_plus_prompt(void)
{
    char path[512], text[4096];
    tokenizer *tok = open_real(REAL "/tokenizer");
    st_file *golden = NULL;
    CHECK_OK(st_open(test_path(path, sizeof path, "golden/cases/prompt-edit-plus-one/expected.safetensors"), &golden));
    const st_tensor *want = golden ? st_find(golden, "input_ids") : NULL;
    CHECK(want && want->type == DTYPE_I64 && st_numel(want) == 274);
    if (tok && want) {
        size_t used = (size_t)snprintf(text, sizeof text, "%s",
            "<|im_start|>system\nDescribe the key features of the input image (color, shape, size, texture, objects, "
            "background), then explain how the user's text instruction should alter or modify the image. Generate a new "
            "image that meets the user's requirements while maintaining consistency with the original input where "
            "appropriate.<|im_end|>\n<|im_start|>user\nPicture 1: <|vision_start|>");
        for (int i = 0; i < 187; i++) used += (size_t)snprintf(text + used, sizeof text - used, "<|image_pad|>");
        snprintf(text + used, sizeof text - used,
                 "<|vision_end|>Make the sky purple and add a small red boat.<|im_end|>\n<|im_start|>assistant\n");
        size_t n;
        int32_t *ids = encode(tok, text, strlen(text), &n);
        int same = n == 274;
        for (size_t i = 0; same && i < n; i++) {
            int64_t id;
            memcpy(&id, (const char *)want->data + 8 * i, 8);
            same = id == ids[i];
        }
        CHECK_MSG(same, "%zu ids, not the golden 274", n);
        mem_free(ids);
    }
    st_close(golden);
    tokenizer_close(tok);
}

/* ---- bad prompts ----------------------------------------------------------------------- */

static void test_invalid_utf8(void)
{
    tokenizer *tok = open_real(REAL "/tokenizer");
    if (!tok) return;
    int32_t *ids = NULL;
    size_t n;
    CHECK_FAILS(tokenizer_encode(tok, "ab\xc3(", 4, &ids, &n), CANVAS_ERR_INPUT, "invalid UTF-8 at byte offset 2");
    CHECK_FAILS(tokenizer_encode(tok, "\xed\xa0\x80", 3, &ids, &n), CANVAS_ERR_INPUT, "byte offset 0");   /* surrogate */
    CHECK_FAILS(tokenizer_encode(tok, "x\xc0\xaf", 3, &ids, &n), CANVAS_ERR_INPUT, "byte offset 1");     /* overlong */
    CHECK_FAILS(tokenizer_encode(tok, "12345\xf4\x90\x80\x80", 9, &ids, &n), CANVAS_ERR_INPUT, "byte offset 5"); /* > U+10FFFF */
    CHECK_FAILS(tokenizer_encode(tok, "<|im_end|>\xe4\xb8", 12, &ids, &n), CANVAS_ERR_INPUT, "byte offset 10"); /* cut */
    CHECK_FAILS(tokenizer_encode(tok, "\x80", 1, &ids, &n), CANVAS_ERR_INPUT, "byte offset 0");
    CHECK(ids == NULL && n == 0);
    /* the cap is checked before the text is read */
    CHECK_FAILS(tokenizer_encode(tok, "x", TOKENIZER_MAX_TEXT + 1, &ids, &n), CANVAS_ERR_INPUT, "more than");
    /* a NUL byte is text like any other */
    ids = encode(tok, "a\0b", 3, &n);
    CHECK(n == 3 && ids && ids[1] == 188);   /* byte 0x00 is the byte token U+0100, id 188 */
    mem_free(ids);
    tokenizer_close(tok);
}

/* ---- hostile tokenizer files ----------------------------------------------------------- */

static void expect_open_fails(const char *path, const char *needle)
{
    tokenizer *tok = NULL;
    CHECK_FAILS(tokenizer_open(path, &tok), CANVAS_ERR_INPUT, needle);
    CHECK(tok == NULL);
}

static void test_hostile_files(void)
{
    char dir[] = "/tmp/canvas_test_tokenizer.XXXXXX", path[600], real[512];
    CHECK(mkdtemp(dir) != NULL);
    make_tiny(dir);
    snprintf(path, sizeof path, "%s/missing", dir);
    expect_open_fails(path, "no such tokenizer");

    /* vocab.json cut short, not an object, an id that is not one, a missing byte, a repeated id */
    char *vocab = NULL;
    size_t size;
    CHECK_OK(file_read_all(test_path(real, sizeof real, REAL "/tokenizer/vocab.json"), 64 << 20, &vocab, &size));
    if (vocab) write_file(dir, "vocab.json", vocab, size / 2);
    mem_free(vocab);
    expect_open_fails(dir, "bad JSON");
    write_file(dir, "vocab.json", "[1, 2]", 6);
    expect_open_fails(dir, "not an object");
    write_tiny_vocab(dir, "\"zz\": -3", -1);
    expect_open_fails(dir, "no valid id");
    write_tiny_vocab(dir, "\"zz\": \"7\"", -1);
    expect_open_fails(dir, "no valid id");
    write_tiny_vocab(dir, "\"zz\": 99999999", -1);
    expect_open_fails(dir, "no valid id");
    write_tiny_vocab(dir, TINY_EXTRA, 'q');
    expect_open_fails(dir, "byte 0x71 has no token");
    write_tiny_vocab(dir, "\"zz\": 5", -1);
    expect_open_fails(dir, "appears twice");
    write_tiny_vocab(dir, "\"\\u4e00\": 300", -1);
    expect_open_fails(dir, "not in the byte alphabet");

    /* merges.txt: a token not in the vocabulary, three tokens on a line, a NUL byte */
    write_tiny_vocab(dir, TINY_EXTRA, -1);
    write_file(dir, "merges.txt", "#version: 0.2\nx yz\n", 19);
    expect_open_fails(dir, "merge 2 ('x yz')");
    write_file(dir, "merges.txt", "e r q\n", 6);
    expect_open_fails(dir, "line 1 is not two tokens");
    write_file(dir, "merges.txt", "e r\n e\n", 7);
    expect_open_fails(dir, "line 2 is not two tokens");
    write_file(dir, "merges.txt", "e \0r\n", 5);
    expect_open_fails(dir, "NUL byte");
    /* over the size cap (a sparse file: nothing is written) */
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    CHECK(truncate(path, (off_t)65 << 20) == 0);
    expect_open_fails(dir, "more than");
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    CHECK(unlink(path) == 0 && mkdir(path, 0700) == 0);
    expect_open_fails(dir, "not a regular file");
    CHECK(rmdir(path) == 0);
    write_file(dir, "merges.txt", TINY_MERGES, strlen(TINY_MERGES));

    /* tokenizer_config.json: empty content, a bad key, a clash with a vocabulary id */
    const char *empty = "{\"added_tokens_decoder\": {\"268\": {\"content\": \"\"}}}";
    write_file(dir, "tokenizer_config.json", empty, strlen(empty));
    expect_open_fails(dir, "has no content");
    const char *key = "{\"added_tokens_decoder\": {\"x268\": {\"content\": \"<a>\"}}}";
    write_file(dir, "tokenizer_config.json", key, strlen(key));
    expect_open_fails(dir, "is not a token id");
    const char *clash = "{\"added_tokens_decoder\": {\"260\": {\"content\": \"<a>\"}}}";
    write_file(dir, "tokenizer_config.json", clash, strlen(clash));
    expect_open_fails(dir, "token id 260 appears twice");

    /* tokenizer.json: not BPE, merges of the wrong shape */
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    const char *wordpiece = "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}";
    write_file(dir, "tokenizer.json", wordpiece, strlen(wordpiece));
    expect_open_fails(path, "not a BPE model");
    const char *no_vocab = "{\"model\": {\"type\": \"BPE\", \"merges\": []}}";
    write_file(dir, "tokenizer.json", no_vocab, strlen(no_vocab));
    expect_open_fails(path, "not an object of 256");
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    CHECK(system(path) == 0);
}

/* ---- out of memory --------------------------------------------------------------------- */

/* Fail the N-th allocation of opening and of encoding, for every N: each failure is
 * CANVAS_ERR_OUT_OF_MEMORY and leaves nothing allocated, except a lost word-cache entry,
 * which only loses the caching (the ids are still right). */
static void test_fail_at_n(void)
{
    char dir[] = "/tmp/canvas_test_tokenizer.XXXXXX", cmd[600];
    CHECK(mkdtemp(dir) != NULL);
    make_tiny(dir);
    const char *text = "lower lower newer 010;}\n<|endoftext|>\xcf\x92\xcc\x81";
    const int32_t want[] = {75, 78, 86, 260, 259, 260, 220, 77, 68, 86, 260, 220, 15, 16, 15, 266, 268, 267};
    int finished = 0;
    for (int phase = 0; phase < 2; phase++)
        for (uint64_t nth = 1; nth < 10000; nth++) {
            size_t baseline = mem_total_current();
            tokenizer *tok = NULL;
            if (phase == 1) CHECK_OK(tokenizer_open(dir, &tok));
            int32_t *ids = NULL;
            size_t n = 0;
            mem_fault_plan plan = {nth, 0, -1};
            mem_fault_arm(&plan);
            canvas_status st = phase == 0 ? tokenizer_open(dir, &tok) : tokenizer_encode(tok, text, strlen(text), &ids, &n);
            uint64_t hits = mem_fault_hits();
            mem_fault_disarm();
            if (phase == 1 && st == CANVAS_OK)
                CHECK_MSG(n == 18 && memcmp(ids, want, sizeof want) == 0, "N=%llu: wrong ids", (unsigned long long)nth);
            else if (hits) CHECK_MSG(st == CANVAS_ERR_OUT_OF_MEMORY, "N=%llu: %s", (unsigned long long)nth, canvas_last_error());
            mem_free(ids);
            tokenizer_close(tok);
            CHECK_MSG(mem_total_current() == baseline, "phase %d N=%llu: %zu bytes left", phase, (unsigned long long)nth,
                      mem_total_current() - baseline);
            if (hits == 0) {
                CHECK_OK(st);
                finished++;
                break;
            }
        }
    CHECK(finished == 2);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* ---- threads --------------------------------------------------------------------------- */

typedef struct thread_job {
    tokenizer *tok;
    const corpus *c;
    size_t start, differ;
} thread_job;

static void *encode_every_other(void *arg)
{
    thread_job *job = arg;
    for (size_t i = job->start; i < job->c->n; i += 2) {
        int32_t *ids = NULL;
        size_t n;
        if (tokenizer_encode(job->tok, job->c->line[i], job->c->len[i], &ids, &n) != CANVAS_OK) {
            job->differ++;
            continue;
        }
        char got[4096];
        size_t used = 0;
        for (size_t k = 0; k < n && used + 16 < sizeof got; k++) used += (size_t)snprintf(got + used, sizeof got - used, k ? " %d" : "%d", (int)ids[k]);
        got[used] = '\0';
        if (used + 16 < sizeof got && strcmp(got, job->c->id_line[i]) != 0) job->differ++;
        mem_free(ids);
    }
    return NULL;
}

/* Two threads share one tokenizer (and its word cache). */
static void test_threads_share_a_tokenizer(void)
{
    corpus c;
    tokenizer *tok = open_real(REAL "/tokenizer");
    if (load_corpus(&c) && tok) {
        thread_job jobs[2] = {{tok, &c, 0, 0}, {tok, &c, 1, 0}};
        pthread_t thread;
        CHECK(pthread_create(&thread, NULL, encode_every_other, &jobs[1]) == 0);
        encode_every_other(&jobs[0]);
        pthread_join(thread, NULL);
        CHECK(jobs[0].differ == 0 && jobs[1].differ == 0);
    }
    free_corpus(&c);
    tokenizer_close(tok);
}

int main(void)
{
    RUN(test_real_vectors);
    RUN(test_pretokenize_example);
    RUN(test_regex_follows_hugging_face);
    RUN(test_nfc);
    RUN(test_tiny_tokenizer);
    RUN(test_golden_edit_plus_prompt);
    RUN(test_invalid_utf8);
    RUN(test_hostile_files);
    RUN(test_fail_at_n);
    RUN(test_corpus_matches_reference);
    RUN(test_decode_round_trip);
    RUN(test_threads_share_a_tokenizer);
    return check_summary();
}
