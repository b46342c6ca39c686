/* SPDX-License-Identifier: Apache-2.0 */
/* tokenizer.h — the Qwen2 byte-level BPE tokenizer (Qwen2.5-VL's prompts).
 *
 * Encoding runs the pipeline of Hugging Face's tokenizer for this model, in order:
 *   1. the added tokens (<|im_start|>, <|image_pad|>, ... 22 of them) are split out of
 *      the text first, longest match at each position, and map straight to their ids;
 *   2. every piece between them is NFC-normalised;
 *   3. the Qwen2 pre-tokenisation regex cuts it into words;
 *   4. each word's UTF-8 bytes become the printable characters of the GPT-2 byte map,
 *      and the BPE merges are applied by rank; the result is looked up in vocab.json.
 * Decoding is the reverse (ids -> tokens -> bytes); added tokens decode to their text.
 *
 * The regex is a hand-written matcher over Unicode general-category tables generated
 * from the Unicode Character Database (tools/gen_unicode_tables.py -> unicode_tables.c),
 * not PCRE2: the pattern is fixed, so a matcher of a few dozen lines states each
 * alternative in plain C and runs in linear time, needs no runtime dependency, and its
 * category tables are pinned to one Unicode version together with the NFC tables
 * (PCRE2's follow whatever version Debian built it with). docs/tokenizer.md.
 * Where Hugging Face's regex engines and JavaScript's differ (U+0085 and U+FEFF as
 * whitespace, "'ſ" as a contraction), this follows Hugging Face, as the model was trained.
 *
 * Thread safety: a tokenizer is read-only after tokenizer_open except for its word
 * cache, which a mutex guards, so encode and decode may run on several threads at once.
 *
 * Hostile input: a prompt longer than TOKENIZER_MAX_TEXT bytes, a vocabulary or merges
 * file over its size cap, a token or merge that is not what the format allows, all fail
 * with CANVAS_ERR_INPUT naming the file (or the prompt's byte offset). */
#ifndef CANVAS_TEXT_TOKENIZER_H
#define CANVAS_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"

/* Longest prompt encode accepts, in bytes (a 1024-token template is ~ 4 KiB of text). */
#define TOKENIZER_MAX_TEXT ((size_t)1 << 20)

typedef struct tokenizer tokenizer;

/* path: a folder with vocab.json + merges.txt + tokenizer_config.json, or a tokenizer.json
 * file, or a folder with a tokenizer.json and no vocab.json (a model's processor/). All
 * give the same ids. */
canvas_status tokenizer_open(const char *path, tokenizer **out);
void tokenizer_close(tokenizer *tok);

/* ids allocated with mem_alloc (caller mem_free; NULL and 0 for an empty text).
 * Invalid UTF-8 -> CANVAS_ERR_INPUT naming the byte offset. */
canvas_status tokenizer_encode(tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n_ids);

/* The text of ids, mem_alloc'd and NUL-terminated. An id outside the vocabulary is
 * CANVAS_ERR_INPUT naming its index. Byte sequences that are not valid UTF-8 on their own
 * (an id holding half a character) are copied as they are. */
canvas_status tokenizer_decode(const tokenizer *tok, const int32_t *ids, size_t n, char **text);

/* The id of an added token given by its text ("<|image_pad|>"), else of a vocabulary token
 * written as vocab.json writes it (the byte alphabet: "Ġworld" for " world"); -1 if none. */
int32_t tokenizer_token_id(const tokenizer *tok, const char *token);

#endif
