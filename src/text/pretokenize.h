/* SPDX-License-Identifier: Apache-2.0 */
/* pretokenize.h — the Qwen2 pre-tokenisation regex, as a hand-written matcher:
 *
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*
 *   |\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * applied findall-style over one NFC text segment; the matches cover it completely.
 * Each alternative in order, as the regex engine tries them (leftmost-first), at the
 * code point i of a segment: pretokenize.c has one block per alternative. */
#ifndef CANVAS_TEXT_PRETOKENIZE_H
#define CANVAS_TEXT_PRETOKENIZE_H

#include <stddef.h>
#include <stdint.h>

/* The code points of a segment, decoded once: cp[k] and its regex class cls[k]
 * (unicode_class values). */
typedef struct pretok_text {
    const uint32_t *cp;
    const uint8_t *cls;
    size_t n;
} pretok_text;

/* The end (exclusive, in code points) of the pre-token starting at i < t->n; always > i. */
size_t pretok_match(const pretok_text *t, size_t i);

#endif
