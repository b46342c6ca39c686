/* SPDX-License-Identifier: Apache-2.0 */
/* tokenizer_load.c — building the tokenizer's tables from vocab.json + merges.txt +
 * tokenizer_config.json, or from one tokenizer.json.
 *
 * Tokens are kept as the bytes they stand for: vocab.json and merges.txt write them in
 * GPT-2's byte alphabet (each byte one printable character, space = "Ġ"), which is
 * undone here once, so that encoding never builds those strings. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/status.h"
#include "io/file_read.h"
#include "io/json_file.h"
#include "mem/mem.h"
#include "text/tokenizer_internal.h"
#include "text/unicode.h"

#define ALPHABET_END 0x144

/* The byte alphabet: bytes 33-126, 161-172 and 174-255 stand for themselves; the other
 * 68, in increasing order (0-32, 127-160, 173), for U+0100 ... U+0143. The byte cp stands
 * for, or -1 (arithmetic, no table: it runs for every character of the vocabulary and
 * the merges). */
static int alphabet_byte(uint32_t cp)
{
    if (cp < 256) return (cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || cp >= 174 ? (int)cp : -1;
    if (cp >= ALPHABET_END) return -1;
    const int n = (int)cp - 256;
    return n < 33 ? n : n < 67 ? 127 + (n - 33) : 173;
}

/* The bytes a token written in the alphabet stands for, into out (at least n bytes);
 * returns their count, or -1 when s has a character outside the alphabet. */
static long alphabet_decode(const char *s, size_t n, char *out)
{
    size_t len = 0;
    for (size_t at = 0; at < n;) {
        uint32_t cp;
        size_t k = utf8_decode((const unsigned char *)s + at, n - at, &cp);
        const int byte = k ? alphabet_byte(cp) : -1;
        if (byte < 0) return -1;
        out[len++] = (char)byte;
        at += k;
    }
    return (long)len;
}

uint32_t tokenizer_hash(const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

int32_t tokenizer_vocab_find(const tokenizer *tok, const void *bytes, size_t n)
{
    for (size_t s = tokenizer_hash(bytes, n) & tok->vocab_mask;; s = (s + 1) & tok->vocab_mask) {
        int32_t id = tok->vocab_slots[s];
        if (id < 0) return -1;
        const token_bytes *t = &tok->tokens[id];
        if (t->length == n && memcmp(tok->pool + t->offset, bytes, n) == 0) return id;
    }
}

int32_t tokenizer_vocab_find_text(const tokenizer *tok, const char *text, size_t n)
{
    char bytes[TOKENIZER_MAX_TOKEN_BYTES];
    long len = n <= sizeof bytes ? alphabet_decode(text, n, bytes) : -1;
    return len > 0 ? tokenizer_vocab_find(tok, bytes, (size_t)len) : -1;
}

static size_t merge_hash(uint64_t key) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20); }

const merge_slot *tokenizer_merge_find(const tokenizer *tok, int32_t left, int32_t right)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (size_t s = merge_hash(key) & tok->merge_mask;; s = (s + 1) & tok->merge_mask) {
        const merge_slot *m = &tok->merges[s];
        if (m->rank < 0) return NULL;
        if (m->key == key) return m;
    }
}

/* A power of two with room for n entries at most 3/4 full (linear probing stays short). */
static size_t table_size(size_t n)
{
    size_t size = 16;
    while (size / 4 * 3 < n) size *= 2;
    return size;
}

/* ---- building ---------------------------------------------------------------------- */

typedef struct loader {
    tokenizer *tok;
    const char *vocab_name, *merges_name, *added_name;   /* the files, for errors */
    size_t n_merges;
} loader;

/* Record the token `id` with these bytes in the pool. */
static canvas_status add_token(loader *ld, int64_t id, const char *bytes, size_t n, int added, const char *file)
{
    tokenizer *tok = ld->tok;
    if (id < 0 || id >= tok->n_ids) return status_fail(CANVAS_ERR_INPUT, "%s: token id %lld is out of range", file, (long long)id);
    token_bytes *t = &tok->tokens[id];
    if (t->present) return status_fail(CANVAS_ERR_INPUT, "%s: token id %lld appears twice", file, (long long)id);
    if (n > tok->pool_size - tok->pool_used) return status_fail(CANVAS_ERR_INPUT, "%s: token bytes overflow", file);
    memcpy(tok->pool + tok->pool_used, bytes, n);
    *t = (token_bytes){(uint32_t)tok->pool_used, (uint32_t)n, 1, (uint8_t)added};
    tok->pool_used += n;
    return CANVAS_OK;
}

/* The id value of a JSON entry, checked. */
static canvas_status json_id(json_t *value, const char *file, const char *token, int64_t *id)
{
    if (!json_is_integer(value) || json_integer_value(value) < 0 || json_integer_value(value) >= TOKENIZER_MAX_IDS)
        return status_fail(CANVAS_ERR_INPUT, "%s: token '%.40s' has no valid id (an integer below %d)", file, token,
                           TOKENIZER_MAX_IDS);
    *id = json_integer_value(value);
    return CANVAS_OK;
}

/* Size the id table and the pool from the vocabulary object and the added tokens. */
static canvas_status size_tables(loader *ld, json_t *vocab, json_t *added_ids, json_t *added_texts)
{
    tokenizer *tok = ld->tok;
    if (!json_is_object(vocab) || json_object_size(vocab) < 256 || json_object_size(vocab) > TOKENIZER_MAX_IDS)
        return status_fail(CANVAS_ERR_INPUT, "%s: the vocabulary is not an object of 256 to %d tokens", ld->vocab_name,
                           TOKENIZER_MAX_IDS);
    int64_t max_id = -1;
    size_t pool = 0;
    const char *key;
    json_t *value;
    json_object_foreach(vocab, key, value) {
        int64_t id;
        TRY(json_id(value, ld->vocab_name, key, &id));
        if (id > max_id) max_id = id;
        pool += strlen(key);
    }
    for (size_t i = 0; i < json_array_size(added_ids); i++) {
        int64_t id = json_integer_value(json_array_get(added_ids, i));
        if (id > max_id) max_id = id;
        pool += strlen(json_string_value(json_array_get(added_texts, i)));
    }
    tok->n_ids = (int32_t)max_id + 1;
    tok->pool_size = pool;
    TRY(mem_calloc((void **)&tok->tokens, (size_t)tok->n_ids, sizeof *tok->tokens, MEM_SCRATCH));
    TRY(mem_alloc((void **)&tok->pool, pool ? pool : 1, MEM_SCRATCH));
    tok->vocab_mask = table_size(json_object_size(vocab)) - 1;
    TRY(mem_alloc((void **)&tok->vocab_slots, (tok->vocab_mask + 1) * sizeof *tok->vocab_slots, MEM_SCRATCH));
    memset(tok->vocab_slots, 0xFF, (tok->vocab_mask + 1) * sizeof *tok->vocab_slots);
    return CANVAS_OK;
}

static canvas_status load_vocab(loader *ld, json_t *vocab)
{
    tokenizer *tok = ld->tok;
    char bytes[TOKENIZER_MAX_TOKEN_BYTES];
    const char *key;
    json_t *value;
    json_object_foreach(vocab, key, value) {
        size_t n = strlen(key);
        long len = n <= sizeof bytes ? alphabet_decode(key, n, bytes) : -1;
        if (len <= 0)
            return status_fail(CANVAS_ERR_INPUT, "%s: token '%.40s' is empty, too long or not in the byte alphabet",
                               ld->vocab_name, key);
        int64_t id = json_integer_value(value);
        if (tokenizer_vocab_find(tok, bytes, (size_t)len) >= 0)
            return status_fail(CANVAS_ERR_INPUT, "%s: token '%.40s' appears twice", ld->vocab_name, key);
        TRY(add_token(ld, id, bytes, (size_t)len, 0, ld->vocab_name));
        size_t s = tokenizer_hash(bytes, (size_t)len) & tok->vocab_mask;
        while (tok->vocab_slots[s] >= 0) s = (s + 1) & tok->vocab_mask;
        tok->vocab_slots[s] = (int32_t)id;
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        tok->byte_id[b] = tokenizer_vocab_find(tok, &c, 1);
        if (tok->byte_id[b] < 0)
            return status_fail(CANVAS_ERR_INPUT, "%s: byte 0x%02X has no token (a byte-level vocabulary has all 256)",
                               ld->vocab_name, b);
    }
    return CANVAS_OK;
}

/* One merge "left right" (both in the alphabet), the next rank. */
static canvas_status add_merge(loader *ld, const char *left, size_t nl, const char *right, size_t nr, size_t line)
{
    tokenizer *tok = ld->tok;
    char bytes[2 * TOKENIZER_MAX_TOKEN_BYTES];
    long a = nl <= TOKENIZER_MAX_TOKEN_BYTES ? alphabet_decode(left, nl, bytes) : -1;
    long b = a > 0 && nr <= TOKENIZER_MAX_TOKEN_BYTES ? alphabet_decode(right, nr, bytes + a) : -1;
    int32_t id_a = a > 0 ? tokenizer_vocab_find(tok, bytes, (size_t)a) : -1;
    int32_t id_b = b > 0 ? tokenizer_vocab_find(tok, bytes + a, (size_t)b) : -1;
    int32_t id = id_a >= 0 && id_b >= 0 ? tokenizer_vocab_find(tok, bytes, (size_t)(a + b)) : -1;
    if (id < 0)
        return status_fail(CANVAS_ERR_INPUT, "%s: merge %zu ('%.*s %.*s'): it or its parts are not in the vocabulary",
                           ld->merges_name, line, (int)(nl < 40 ? nl : 40), left, (int)(nr < 40 ? nr : 40), right);
    if (ld->n_merges >= (size_t)tok->n_ids) return status_fail(CANVAS_ERR_INPUT, "%s: more merges than tokens", ld->merges_name);
    uint64_t key = (uint64_t)(uint32_t)id_a << 32 | (uint32_t)id_b;
    size_t s = merge_hash(key) & tok->merge_mask;
    while (tok->merges[s].rank >= 0 && tok->merges[s].key != key) s = (s + 1) & tok->merge_mask;
    /* A repeated merge takes its later rank, as Hugging Face's loaders (a map) do. */
    tok->merges[s] = (merge_slot){key, (int32_t)ld->n_merges++, id};
    return CANVAS_OK;
}

static canvas_status alloc_merges(tokenizer *tok, size_t n)
{
    tok->merge_mask = table_size(n) - 1;
    TRY(mem_alloc((void **)&tok->merges, (tok->merge_mask + 1) * sizeof *tok->merges, MEM_SCRATCH));
    for (size_t i = 0; i <= tok->merge_mask; i++) tok->merges[i].rank = -1;
    return CANVAS_OK;
}

/* merges.txt: an optional "#version" line, then "left right" per line; rank = order. */
static canvas_status load_merges_text(loader *ld, char *text, size_t size)
{
    size_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += text[i] == '\n';
    if (lines > (size_t)ld->tok->n_ids) return status_fail(CANVAS_ERR_INPUT, "%s: more merges than tokens", ld->merges_name);
    TRY(alloc_merges(ld->tok, lines));
    size_t line = 0;
    for (char *at = text, *end = text + size; at < end;) {
        char *eol = memchr(at, '\n', (size_t)(end - at));
        if (!eol) eol = end;
        size_t n = (size_t)(eol - at);
        if (n && at[n - 1] == '\r') n--;
        line++;
        if (memchr(at, '\0', n)) return status_fail(CANVAS_ERR_INPUT, "%s: line %zu holds a NUL byte", ld->merges_name, line);
        if (n && !(line == 1 && n >= 8 && memcmp(at, "#version", 8) == 0)) {
            char *space = memchr(at, ' ', n);
            if (!space || space == at || space == at + n - 1 || memchr(space + 1, ' ', (size_t)(at + n - space - 1)))
                return status_fail(CANVAS_ERR_INPUT, "%s: line %zu is not two tokens separated by one space",
                                   ld->merges_name, line);
            TRY(add_merge(ld, at, (size_t)(space - at), space + 1, (size_t)(at + n - space - 1), line));
        }
        at = eol + 1;
    }
    return CANVAS_OK;
}

/* tokenizer.json's model.merges: "left right" strings or [left, right] pairs. */
static canvas_status load_merges_json(loader *ld, json_t *merges)
{
    if (!json_is_array(merges) || json_array_size(merges) > (size_t)ld->tok->n_ids)
        return status_fail(CANVAS_ERR_INPUT, "%s: model.merges is not an array of at most one merge per token", ld->merges_name);
    TRY(alloc_merges(ld->tok, json_array_size(merges)));
    for (size_t i = 0; i < json_array_size(merges); i++) {
        json_t *m = json_array_get(merges, i);
        const char *left = NULL, *right = NULL;
        size_t nl = 0, nr = 0;
        if (json_is_string(m)) {
            const char *s = json_string_value(m), *space = strchr(s, ' ');
            if (space && !strchr(space + 1, ' ')) left = s, nl = (size_t)(space - s), right = space + 1, nr = strlen(right);
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            left = json_string_value(json_array_get(m, 0)), nl = json_string_length(json_array_get(m, 0));
            right = json_string_value(json_array_get(m, 1)), nr = json_string_length(json_array_get(m, 1));
        }
        if (!left || !nl || !nr)
            return status_fail(CANVAS_ERR_INPUT, "%s: model.merges[%zu] is not a pair of tokens", ld->merges_name, i);
        TRY(add_merge(ld, left, nl, right, nr, i + 1));
    }
    return CANVAS_OK;
}

/* The added tokens, as parallel arrays of ids and texts (validated by collect_added). */
static canvas_status load_added(loader *ld, json_t *ids, json_t *texts)
{
    tokenizer *tok = ld->tok;
    size_t n = json_array_size(ids);
    TRY(mem_alloc((void **)&tok->added, (n ? n : 1) * sizeof *tok->added, MEM_SCRATCH));
    for (size_t i = 0; i < n; i++) {
        int64_t id = json_integer_value(json_array_get(ids, i));
        json_t *text = json_array_get(texts, i);
        TRY(add_token(ld, id, json_string_value(text), json_string_length(text), 1, ld->added_name));
        /* insertion by length, longest first, so the first match at a position is the longest */
        size_t k = (size_t)tok->n_added++;
        while (k > 0 && tok->tokens[tok->added[k - 1]].length < json_string_length(text)) {
            tok->added[k] = tok->added[k - 1];
            k--;
        }
        tok->added[k] = (int32_t)id;
        tok->added_first[(unsigned char)json_string_value(text)[0]] = 1;
    }
    return CANVAS_OK;
}

/* Append one added token {content, id} to the parallel arrays, checked. */
static canvas_status collect_added(loader *ld, json_t *content, int64_t id, json_t *ids, json_t *texts)
{
    const char *s = json_string_value(content);
    size_t n = s ? json_string_length(content) : 0;
    uint32_t cp;
    int valid = n > 0 && n <= TOKENIZER_MAX_TOKEN_BYTES && strlen(s) == n;
    for (size_t at = 0; valid && at < n; at += utf8_decode((const unsigned char *)s + at, n - at, &cp))
        if (utf8_decode((const unsigned char *)s + at, n - at, &cp) == 0) valid = 0;
    if (!valid)
        return status_fail(CANVAS_ERR_INPUT, "%s: added token %lld has no content (a non-empty string of at most %d bytes)",
                           ld->added_name, (long long)id, TOKENIZER_MAX_TOKEN_BYTES);
    if (json_array_size(ids) >= TOKENIZER_MAX_ADDED)
        return status_fail(CANVAS_ERR_INPUT, "%s: more than %d added tokens", ld->added_name, TOKENIZER_MAX_ADDED);
    if (json_array_append_new(ids, json_integer(id)) || json_array_append(texts, content))
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory reading %s", ld->added_name);
    return CANVAS_OK;
}

/* ---- the two layouts ----------------------------------------------------------------- */

/* Read a JSON file under the size cap. */
static canvas_status load_json(const char *path, json_t **out)
{
    char *text;
    size_t size;
    TRY(file_read_all(path, TOKENIZER_MAX_FILE_BYTES, &text, &size));
    canvas_status st = json_text_load(text, size, path, out);
    mem_free(text);
    return st;
}

/* tokenizer_config.json: "added_tokens_decoder": {"151643": {"content": "<|endoftext|>", ...}} */
static canvas_status gather_config_added(loader *ld, json_t *config, json_t *ids, json_t *texts)
{
    json_t *decoder = json_object_get(config, "added_tokens_decoder");
    if (!decoder) return CANVAS_OK;
    if (!json_is_object(decoder))
        return status_fail(CANVAS_ERR_INPUT, "%s: added_tokens_decoder is not an object", ld->added_name);
    const char *key;
    json_t *value;
    json_object_foreach(decoder, key, value) {
        char *end;
        long long id = strtoll(key, &end, 10);
        if (*key < '0' || *key > '9' || *end || id >= TOKENIZER_MAX_IDS)
            return status_fail(CANVAS_ERR_INPUT, "%s: added_tokens_decoder key '%.20s' is not a token id", ld->added_name, key);
        TRY(collect_added(ld, json_object_get(value, "content"), id, ids, texts));
    }
    return CANVAS_OK;
}

/* tokenizer.json: "added_tokens": [{"id": 151643, "content": "<|endoftext|>", ...}] */
static canvas_status gather_json_added(loader *ld, json_t *added, json_t *ids, json_t *texts)
{
    if (!added) return CANVAS_OK;
    if (!json_is_array(added)) return status_fail(CANVAS_ERR_INPUT, "%s: added_tokens is not an array", ld->added_name);
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_t *entry = json_array_get(added, i);
        int64_t id;
        TRY(json_id(json_object_get(entry, "id"), ld->added_name, "added token", &id));
        TRY(collect_added(ld, json_object_get(entry, "content"), id, ids, texts));
    }
    return CANVAS_OK;
}

/* A folder: vocab.json, merges.txt, tokenizer_config.json. */
static canvas_status load_folder(loader *ld, const char *dir, json_t *ids, json_t *texts)
{
    size_t n = strlen(dir) + 32;
    char *vocab_path = NULL, *merges_path = NULL, *config_path = NULL, *merges = NULL;
    json_t *vocab = NULL, *config = NULL;
    size_t merges_size;
    canvas_status st = mem_alloc((void **)&vocab_path, 3 * n, MEM_SCRATCH);
    if (st == CANVAS_OK) {
        merges_path = vocab_path + n, config_path = merges_path + n;
        snprintf(vocab_path, n, "%s/vocab.json", dir);
        snprintf(merges_path, n, "%s/merges.txt", dir);
        snprintf(config_path, n, "%s/tokenizer_config.json", dir);
        ld->vocab_name = vocab_path, ld->merges_name = merges_path, ld->added_name = config_path;
        st = load_json(config_path, &config);
    }
    if (st == CANVAS_OK) st = gather_config_added(ld, config, ids, texts);
    if (st == CANVAS_OK) st = load_json(vocab_path, &vocab);
    if (st == CANVAS_OK) st = size_tables(ld, vocab, ids, texts);
    if (st == CANVAS_OK) st = load_vocab(ld, vocab);
    json_decref(vocab);   /* 150,000 strings: gone before the merges come in */
    if (st == CANVAS_OK) st = file_read_all(merges_path, TOKENIZER_MAX_FILE_BYTES, &merges, &merges_size);
    if (st == CANVAS_OK) st = load_merges_text(ld, merges, merges_size);
    if (st == CANVAS_OK) st = load_added(ld, ids, texts);
    mem_free(merges);
    json_decref(config);
    mem_free(vocab_path);
    return st;
}

/* One tokenizer.json: model.vocab, model.merges, added_tokens. */
static canvas_status load_tokenizer_json(loader *ld, const char *path, json_t *ids, json_t *texts)
{
    json_t *root;
    ld->vocab_name = ld->merges_name = ld->added_name = path;
    TRY(load_json(path, &root));
    json_t *model = json_object_get(root, "model");
    json_t *type = json_object_get(model, "type");
    canvas_status st = CANVAS_OK;
    if (!json_is_object(model) || (type && (!json_is_string(type) || strcmp(json_string_value(type), "BPE") != 0)))
        st = status_fail(CANVAS_ERR_INPUT, "%s: model is not a BPE model", path);
    if (st == CANVAS_OK) st = gather_json_added(ld, json_object_get(root, "added_tokens"), ids, texts);
    if (st == CANVAS_OK) st = size_tables(ld, json_object_get(model, "vocab"), ids, texts);
    if (st == CANVAS_OK) st = load_vocab(ld, json_object_get(model, "vocab"));
    if (st == CANVAS_OK) st = load_merges_json(ld, json_object_get(model, "merges"));
    if (st == CANVAS_OK) st = load_added(ld, ids, texts);
    json_decref(root);
    return st;
}

/* dir/tokenizer.json in *json_path (mem_alloc'd) when dir has it and no vocab.json, else NULL. */
static canvas_status folder_json(const char *dir, char **json_path)
{
    size_t n = strlen(dir) + 32;
    struct stat sb;
    *json_path = NULL;
    TRY(mem_alloc((void **)json_path, n, MEM_SCRATCH));
    snprintf(*json_path, n, "%s/vocab.json", dir);
    int has_vocab = stat(*json_path, &sb) == 0;
    snprintf(*json_path, n, "%s/tokenizer.json", dir);
    if (has_vocab || stat(*json_path, &sb) != 0) {
        mem_free(*json_path);
        *json_path = NULL;
    }
    return CANVAS_OK;
}

canvas_status tokenizer_open(const char *path, tokenizer **out)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return status_fail(CANVAS_ERR_INPUT, "%s: no such tokenizer folder or file", path);
    if (!S_ISDIR(sb.st_mode) && !S_ISREG(sb.st_mode))
        return status_fail(CANVAS_ERR_INPUT, "%s: not a tokenizer folder or tokenizer.json file", path);
    tokenizer *tok;
    TRY(mem_calloc((void **)&tok, 1, sizeof *tok, MEM_SCRATCH));
    if (pthread_mutex_init(&tok->cache_lock, NULL) != 0) {
        mem_free(tok);
        return status_fail(CANVAS_ERR_INTERNAL, "%s: cannot create the tokenizer's lock", path);
    }
    loader ld = {.tok = tok};
    json_t *ids = json_array(), *texts = json_array();
    char *json_path = NULL;
    canvas_status st = ids && texts ? mem_calloc((void **)&tok->cache, WORD_CACHE_SLOTS, sizeof *tok->cache, MEM_SCRATCH)
                                    : status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory opening %s", path);
    /* a folder with tokenizer.json and no vocab.json (a model's processor/) reads the former */
    if (st == CANVAS_OK && S_ISDIR(sb.st_mode)) st = folder_json(path, &json_path);
    if (st == CANVAS_OK)
        st = json_path ? load_tokenizer_json(&ld, json_path, ids, texts)
             : S_ISDIR(sb.st_mode) ? load_folder(&ld, path, ids, texts) : load_tokenizer_json(&ld, path, ids, texts);
    mem_free(json_path);
    json_decref(ids);
    json_decref(texts);
    if (st != CANVAS_OK) {
        tokenizer_close(tok);
        return st;
    }
    *out = tok;
    return CANVAS_OK;
}
