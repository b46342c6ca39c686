/* SPDX-License-Identifier: Apache-2.0 */
/* tokenizer.c — encoding and decoding (tokenizer.h has the pipeline; the tables come
 * from tokenizer_load.c).
 *
 * BPE works on token ids, not strings: a word starts as the ids of its bytes, and the
 * merge table maps an adjacent pair of ids to (rank, merged id). The lowest rank merges
 * first, ties going to the leftmost pair; a heap keeps that order so a long word costs
 * n log n, not n². */
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "text/pretokenize.h"
#include "text/tokenizer_internal.h"
#include "text/unicode.h"

struct cached_word {
    uint32_t hash;
    uint16_t n_bytes, n_ids;
    int32_t ids[];   /* n_ids ids, then the word's n_bytes bytes */
};

/* A growing id list. */
typedef struct id_list {
    int32_t *ids;
    size_t n, cap;
} id_list;

static canvas_status push_ids(id_list *out, const int32_t *ids, size_t n)
{
    if (n > out->cap - out->n) {
        size_t cap = out->cap ? out->cap : 64;
        while (cap - out->n < n) cap *= 2;
        TRY(mem_realloc((void **)&out->ids, cap * sizeof *out->ids, MEM_SCRATCH));
        out->cap = cap;
    }
    memcpy(out->ids + out->n, ids, n * sizeof *ids);
    out->n += n;
    return CANVAS_OK;
}

/* ---- BPE over one word ---------------------------------------------------------------- */

/* A candidate merge of the symbols at left and next[left], as they were when pushed. */
typedef struct candidate {
    int32_t rank, left;
    int32_t left_id, right_id;
} candidate;

/* Scratch for one word of n bytes: the symbol list and the heap. */
typedef struct bpe_scratch {
    int32_t *id, *next, *prev;
    candidate *heap;
    size_t n_heap, cap;   /* cap: the longest word it has room for */
} bpe_scratch;

static int before(const candidate *a, const candidate *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(bpe_scratch *s, candidate c)
{
    size_t i = s->n_heap++;
    while (i > 0 && before(&c, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = c;
}

static candidate heap_pop(bpe_scratch *s)
{
    candidate top = s->heap[0], last = s->heap[--s->n_heap];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= s->n_heap) break;
        if (child + 1 < s->n_heap && before(&s->heap[child + 1], &s->heap[child])) child++;
        if (!before(&s->heap[child], &last)) break;
        s->heap[i] = s->heap[child];
        i = child;
    }
    if (s->n_heap) s->heap[i] = last;
    return top;
}

static void push_pair(const tokenizer *tok, bpe_scratch *s, int32_t left)
{
    int32_t right = s->next[left];
    if (right < 0) return;
    const merge_slot *m = tokenizer_merge_find(tok, s->id[left], s->id[right]);
    if (m) heap_push(s, (candidate){m->rank, left, s->id[left], s->id[right]});
}

static canvas_status scratch_reserve(bpe_scratch *s, size_t n)
{
    if (n <= s->cap) return CANVAS_OK;
    /* Each merge pushes at most two candidates: 3n in all. */
    size_t per_symbol = 3 * sizeof(int32_t) + 3 * sizeof(candidate);
    void *block = s->id;
    TRY(mem_realloc(&block, n * per_symbol, MEM_SCRATCH));
    s->id = block;
    s->next = s->id + n;
    s->prev = s->next + n;
    s->heap = (candidate *)(s->prev + n);
    s->cap = n;
    return CANVAS_OK;
}

/* The ids of one pre-token's bytes, appended to out. */
static canvas_status bpe_word(const tokenizer *tok, bpe_scratch *s, const unsigned char *bytes, size_t n, id_list *out)
{
    TRY(scratch_reserve(s, n));
    for (size_t i = 0; i < n; i++) {
        s->id[i] = tok->byte_id[bytes[i]];
        s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        s->prev[i] = (int32_t)i - 1;
    }
    s->n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(tok, s, (int32_t)i);
    while (s->n_heap) {
        candidate c = heap_pop(s);
        int32_t right = s->next[c.left];
        /* stale: the left symbol was merged away or changed, or its right neighbour did */
        if (s->id[c.left] != c.left_id || right < 0 || s->id[right] != c.right_id) continue;
        s->id[c.left] = tokenizer_merge_find(tok, c.left_id, c.right_id)->result;
        s->id[right] = -1;
        s->next[c.left] = s->next[right];
        if (s->next[right] >= 0) s->prev[s->next[right]] = c.left;
        if (s->prev[c.left] >= 0) push_pair(tok, s, s->prev[c.left]);
        push_pair(tok, s, c.left);
    }
    for (int32_t i = 0; i >= 0; i = s->next[i]) TRY(push_ids(out, &s->id[i], 1));
    return CANVAS_OK;
}

/* ---- the word cache ------------------------------------------------------------------- */

static int cache_get(tokenizer *tok, const unsigned char *bytes, size_t n, uint32_t hash, id_list *out, canvas_status *st)
{
    int hit = 0;
    pthread_mutex_lock(&tok->cache_lock);
    const cached_word *w = tok->cache[hash % WORD_CACHE_SLOTS];
    if (w && w->hash == hash && w->n_bytes == n && memcmp(w->ids + w->n_ids, bytes, n) == 0) {
        hit = 1;
        *st = push_ids(out, w->ids, w->n_ids);
    }
    pthread_mutex_unlock(&tok->cache_lock);
    return hit;
}

/* Remember a word; failing to allocate only loses the caching. */
static void cache_put(tokenizer *tok, const unsigned char *bytes, size_t n, uint32_t hash, const int32_t *ids, size_t n_ids)
{
    cached_word *w;
    if (mem_alloc((void **)&w, sizeof *w + n_ids * sizeof *ids + n, MEM_SCRATCH) != CANVAS_OK) {
        status_clear();
        return;
    }
    *w = (cached_word){hash, (uint16_t)n, (uint16_t)n_ids};
    memcpy(w->ids, ids, n_ids * sizeof *ids);
    memcpy(w->ids + n_ids, bytes, n);
    pthread_mutex_lock(&tok->cache_lock);
    cached_word **slot = &tok->cache[hash % WORD_CACHE_SLOTS];
    mem_free(*slot);
    *slot = w;
    pthread_mutex_unlock(&tok->cache_lock);
}

static canvas_status encode_word(tokenizer *tok, bpe_scratch *s, const unsigned char *bytes, size_t n, id_list *out)
{
    if (n > WORD_CACHE_MAX_BYTES) return bpe_word(tok, s, bytes, n, out);
    uint32_t hash = tokenizer_hash(bytes, n);
    canvas_status st = CANVAS_OK;
    if (cache_get(tok, bytes, n, hash, out, &st)) return st;
    size_t first = out->n;
    TRY(bpe_word(tok, s, bytes, n, out));
    cache_put(tok, bytes, n, hash, out->ids + first, out->n - first);
    return CANVAS_OK;
}

/* ---- encoding ------------------------------------------------------------------------- */

/* NFC, the pre-tokeniser and BPE over one piece of text between added tokens. */
static canvas_status encode_segment(tokenizer *tok, const char *text, size_t len, bpe_scratch *s, id_list *out)
{
    char *nfc;
    size_t n_bytes;
    TRY(unicode_nfc(text, len, &nfc, &n_bytes));
    /* per code point (at most one per byte): its byte offset, value and regex class */
    size_t *offset = NULL;
    canvas_status st = mem_calloc((void **)&offset, n_bytes, sizeof(size_t) + sizeof(uint32_t) + 1, MEM_SCRATCH);
    if (st == CANVAS_OK) {
        uint32_t *cp = (uint32_t *)(offset + n_bytes);
        uint8_t *cls = (uint8_t *)(cp + n_bytes);
        pretok_text t = {cp, cls, 0};
        for (size_t at = 0; at < n_bytes; t.n++) {
            offset[t.n] = at;
            at += utf8_decode((const unsigned char *)nfc + at, n_bytes - at, &cp[t.n]);
            cls[t.n] = (uint8_t)unicode_class_of(cp[t.n]);
        }
        for (size_t i = 0; i < t.n && st == CANVAS_OK;) {
            size_t end = pretok_match(&t, i);
            size_t b0 = offset[i], b1 = end < t.n ? offset[end] : n_bytes;
            st = encode_word(tok, s, (const unsigned char *)nfc + b0, b1 - b0, out);
            i = end;
        }
    }
    mem_free(offset);
    mem_free(nfc);
    return st;
}

/* The added token at text[0 .. len), longest first; -1 if none starts there. */
static int32_t added_at(const tokenizer *tok, const char *text, size_t len)
{
    for (int k = 0; k < tok->n_added; k++) {
        const token_bytes *t = &tok->tokens[tok->added[k]];
        if (t->length <= len && tok->pool[t->offset] == text[0] && memcmp(tok->pool + t->offset, text, t->length) == 0)
            return tok->added[k];
    }
    return -1;
}

canvas_status tokenizer_encode(tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n_ids)
{
    *ids = NULL;
    *n_ids = 0;
    if (len > TOKENIZER_MAX_TEXT)
        return status_fail(CANVAS_ERR_INPUT, "prompt: %zu bytes is more than the %zu a prompt may have", len, TOKENIZER_MAX_TEXT);
    for (size_t at = 0; at < len;) {
        uint32_t cp;
        size_t k = utf8_decode((const unsigned char *)text + at, len - at, &cp);
        if (k == 0) return status_fail(CANVAS_ERR_INPUT, "prompt: invalid UTF-8 at byte offset %zu", at);
        at += k;
    }
    id_list out = {0};
    bpe_scratch scratch = {0};
    canvas_status st = CANVAS_OK;
    size_t start = 0;
    for (size_t at = 0; at <= len && st == CANVAS_OK;) {
        int32_t added = at < len && tok->added_first[(unsigned char)text[at]] ? added_at(tok, text + at, len - at) : -1;
        if (added < 0 && at < len) {
            at++;
            continue;
        }
        if (at > start) st = encode_segment(tok, text + start, at - start, &scratch, &out);
        if (added < 0) break;
        if (st == CANVAS_OK) st = push_ids(&out, &added, 1);
        at += tok->tokens[added].length;
        start = at;
    }
    mem_free(scratch.id);
    if (st != CANVAS_OK) {
        mem_free(out.ids);
        return st;
    }
    *ids = out.ids;
    *n_ids = out.n;
    return CANVAS_OK;
}

/* ---- decoding and look-ups ------------------------------------------------------------ */

canvas_status tokenizer_decode(const tokenizer *tok, const int32_t *ids, size_t n, char **text)
{
    *text = NULL;
    size_t bytes = 1;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok->n_ids || !tok->tokens[ids[i]].present)
            return status_fail(CANVAS_ERR_INPUT, "ids[%zu] = %d is not a token of this tokenizer", i, (int)ids[i]);
        bytes += tok->tokens[ids[i]].length;   /* at most n * 1024: no overflow below 2^54 ids */
    }
    TRY(mem_alloc((void **)text, bytes, MEM_SCRATCH));
    char *at = *text;
    for (size_t i = 0; i < n; i++) {
        const token_bytes *t = &tok->tokens[ids[i]];
        memcpy(at, tok->pool + t->offset, t->length);
        at += t->length;
    }
    *at = '\0';
    return CANVAS_OK;
}

int32_t tokenizer_token_id(const tokenizer *tok, const char *token)
{
    size_t n = strlen(token);
    for (int k = 0; k < tok->n_added; k++) {
        const token_bytes *t = &tok->tokens[tok->added[k]];
        if (t->length == n && memcmp(tok->pool + t->offset, token, n) == 0) return tok->added[k];
    }
    return tokenizer_vocab_find_text(tok, token, n);
}

void tokenizer_close(tokenizer *tok)
{
    if (!tok) return;
    if (tok->cache)
        for (size_t i = 0; i < WORD_CACHE_SLOTS; i++) mem_free(tok->cache[i]);
    mem_free(tok->cache);
    pthread_mutex_destroy(&tok->cache_lock);
    mem_free(tok->pool);
    mem_free(tok->tokens);
    mem_free(tok->vocab_slots);
    mem_free(tok->merges);
    mem_free(tok->added);
    mem_free(tok);
}
