/* SPDX-License-Identifier: Apache-2.0 */
/* tokenizer_internal.h — the tokenizer's tables, shared by its loader and its encoder.
 * Nothing outside src/text/ includes this. */
#ifndef CANVAS_TEXT_TOKENIZER_INTERNAL_H
#define CANVAS_TEXT_TOKENIZER_INTERNAL_H

#include <pthread.h>

#include "text/tokenizer.h"

/* Caps on what the files may hold (the real Qwen2.5 files: 2.8 MB vocab.json with
 * 151,643 tokens, 1.7 MB merges.txt, 5.4 MB tokenizer.json, 22 added tokens). */
#define TOKENIZER_MAX_FILE_BYTES ((size_t)64 << 20)
#define TOKENIZER_MAX_IDS (1 << 22)
#define TOKENIZER_MAX_ADDED 1024
#define TOKENIZER_MAX_TOKEN_BYTES 1024

/* Words up to this many bytes are cached; the cache has WORD_CACHE_SLOTS entries,
 * direct-mapped (a new word replaces the one in its slot). */
#define WORD_CACHE_MAX_BYTES 64
#define WORD_CACHE_SLOTS 8192

/* The bytes of the token with a given id: pool[offset .. offset + length). */
typedef struct token_bytes {
    uint32_t offset, length;
    uint8_t present, added;
} token_bytes;

typedef struct merge_slot {
    uint64_t key;      /* left id << 32 | right id */
    int32_t rank;      /* -1: empty slot */
    int32_t result;    /* the id of the merged token */
} merge_slot;

typedef struct cached_word cached_word;

struct tokenizer {
    char *pool;                  /* the bytes of every token, one after the other */
    size_t pool_used, pool_size;
    token_bytes *tokens;         /* by id, n_ids of them */
    int32_t n_ids;
    int32_t *vocab_slots;        /* bytes -> regular-token id, open addressing; -1 empty */
    size_t vocab_mask;
    int32_t byte_id[256];        /* the one-byte token of each byte */
    merge_slot *merges;
    size_t merge_mask;
    int32_t *added;              /* added-token ids, longest first */
    int n_added;
    uint8_t added_first[256];    /* 1 for a byte some added token starts with */
    pthread_mutex_t cache_lock;  /* guards cache[] */
    cached_word **cache;
};

uint32_t tokenizer_hash(const void *bytes, size_t n);

/* The id of the regular (vocab.json) token with these bytes, -1 if none. */
int32_t tokenizer_vocab_find(const tokenizer *tok, const void *bytes, size_t n);

/* The same for a token written as in vocab.json (the byte alphabet: "Ġworld"). */
int32_t tokenizer_vocab_find_text(const tokenizer *tok, const char *text, size_t n);

/* The merge of (left, right): its rank and result, NULL if none. */
const merge_slot *tokenizer_merge_find(const tokenizer *tok, int32_t left, int32_t right);

#endif
