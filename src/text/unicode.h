/* SPDX-License-Identifier: Apache-2.0 */
/* unicode.h — the few Unicode facts the tokenizer needs: UTF-8, the classes of the
 * pre-tokenisation regex, and NFC.
 *
 * The tables live in unicode_tables.c, generated from the Unicode Character Database by
 * tools/gen_unicode_tables.py (docs/tokenizer.md); they are sorted ranges searched by
 * bisection, a few thousand entries in all rather than one per code point. */
#ifndef CANVAS_TEXT_UNICODE_H
#define CANVAS_TEXT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"

/* The regex's classes: \p{L} (Lu Ll Lt Lm Lo), \p{N} (Nd Nl No), \s (White_Space). The
 * three are disjoint in every Unicode version so far; everything else is OTHER. */
typedef enum unicode_class { UCLASS_OTHER = 0, UCLASS_LETTER, UCLASS_NUMBER, UCLASS_SPACE } unicode_class;

typedef struct unicode_range { uint32_t lo, hi; } unicode_range;
typedef struct unicode_class_range { uint32_t lo, hi; uint8_t cls; } unicode_class_range;
typedef struct unicode_ccc_range { uint32_t lo, hi; uint8_t ccc; } unicode_ccc_range;
/* The full (recursive) canonical decomposition of cp: pool[offset .. offset + length). */
typedef struct unicode_decomposition { uint32_t cp; uint16_t offset; uint8_t length; } unicode_decomposition;
/* A primary composite: first + second -> composite (composition exclusions left out). */
typedef struct unicode_composition { uint32_t first, second, composite; } unicode_composition;

extern const char unicode_version[];
extern const unicode_class_range unicode_class_ranges[];   /* classes other than OTHER */
extern const size_t unicode_class_ranges_count;
extern const unicode_ccc_range unicode_ccc_ranges[];       /* canonical combining class != 0 */
extern const size_t unicode_ccc_ranges_count;
extern const unicode_decomposition unicode_decompositions[];  /* sorted by cp; Hangul is algorithmic */
extern const size_t unicode_decompositions_count;
extern const uint32_t unicode_decomposition_pool[];
extern const size_t unicode_decomposition_pool_count;
extern const unicode_composition unicode_compositions[];   /* sorted by (first, second) */
extern const size_t unicode_compositions_count;
extern const unicode_range unicode_nfc_maybe_or_no[];      /* NFC_Quick_Check is not Yes */
extern const size_t unicode_nfc_maybe_or_no_count;

unicode_class unicode_class_of(uint32_t cp);

/* Decode one UTF-8 scalar value at s[0 .. n) (n >= 1) into *cp; returns its length 1-4,
 * or 0 when the bytes there are not valid UTF-8 (overlong, surrogate, > U+10FFFF, cut). */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Whether the NUL-terminated s is valid UTF-8 throughout (file names need not be, and JSON
 * can hold only valid text). */
int utf8_valid(const char *s);

/* Encode cp (a scalar value) into out[0..4); returns the length. */
size_t utf8_encode(uint32_t cp, unsigned char *out);

/* The NFC form of valid UTF-8 text[0 .. len): *out is mem_alloc'd (caller mem_free),
 * *out_len its length, not NUL-terminated. Text that is already NFC by the quick check
 * is copied unchanged. Invalid UTF-8 is CANVAS_ERR_INPUT naming the byte offset. */
canvas_status unicode_nfc(const char *text, size_t len, char **out, size_t *out_len);

#endif
