/* SPDX-License-Identifier: Apache-2.0 */
/* pretokenize.c — the Qwen2 pre-tokenisation regex, one block per alternative.
 *
 * Why not PCRE2: the pattern never changes, the seven alternatives are each a few lines
 * here, and the classes come from the same generated tables as NFC, so one Unicode
 * version governs the whole tokenizer (docs/tokenizer.md). Every alternative scans
 * forward only, so a segment is matched in time linear in its length. */
#include "text/pretokenize.h"

#include "text/unicode.h"

static int is_crlf(uint32_t c) { return c == '\r' || c == '\n'; }

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* (?i:'s|'t|'re|'ve|'m|'ll|'d): the length of the contraction at i, or 0. Case-
 * insensitive as Oniguruma and Python's regex fold: ASCII, and U+017F (long s) as s. */
static size_t contraction(const pretok_text *t, size_t i)
{
    if (t->cp[i] != '\'' || i + 1 >= t->n) return 0;
    uint32_t a = ascii_lower(t->cp[i + 1]);
    if (a == 0x17F) a = 's';
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= t->n) return 0;
    uint32_t b = ascii_lower(t->cp[i + 2]);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

static size_t run_of(const pretok_text *t, size_t i, uint8_t cls)
{
    while (i < t->n && t->cls[i] == cls) i++;
    return i;
}

size_t pretok_match(const pretok_text *t, size_t i)
{
    const uint32_t c = t->cp[i];
    const uint8_t cls = t->cls[i];

    size_t k = contraction(t, i);
    if (k) return i + k;

    /* [^\r\n\p{L}\p{N}]?\p{L}+ : one optional leading non-letter (" world", "(color") */
    if (cls != UCLASS_LETTER && cls != UCLASS_NUMBER && !is_crlf(c) && i + 1 < t->n &&
        t->cls[i + 1] == UCLASS_LETTER)
        return run_of(t, i + 1, UCLASS_LETTER);
    if (cls == UCLASS_LETTER) return run_of(t, i, UCLASS_LETTER);

    /* \p{N} : digits one at a time */
    if (cls == UCLASS_NUMBER) return i + 1;

    /*  ?[^\s\p{L}\p{N}]+[\r\n]* : a symbol run, one optional leading space, trailing newlines */
    k = c == ' ' ? i + 1 : i;
    if (k < t->n && t->cls[k] == UCLASS_OTHER) {
        size_t m = run_of(t, k, UCLASS_OTHER);
        while (m < t->n && is_crlf(t->cp[m])) m++;
        return m;
    }

    /* Only whitespace is left: c starts a White_Space run [i, e). */
    size_t e = run_of(t, i, UCLASS_SPACE);
    /* \s*[\r\n]+ : up to and including the run's last CR or LF */
    for (size_t p = e; p > i; p--)
        if (is_crlf(t->cp[p - 1])) return p;
    /* \s+(?!\S) : the run, less its last character when a non-space follows */
    if (e == t->n) return e;
    if (e - i >= 2) return e - 1;
    /* \s+ */
    return e;
}
