/* SPDX-License-Identifier: Apache-2.0 */
/* unicode.c — table look-ups, UTF-8 and NFC (Unicode Standard Annex #15).
 *
 * NFC is: full canonical decomposition (Hangul by arithmetic), canonical ordering of
 * each run of combining marks by combining class, then canonical composition. Most
 * prompts are already NFC, which the quick check sees in one pass without allocating. */
#include "text/unicode.h"

#include <string.h>

#include "base/status.h"
#include "mem/mem.h"

/* Hangul syllables are composed of jamo by arithmetic (Unicode 3.12), not by table. */
enum {
    HANGUL_S = 0xAC00, HANGUL_L = 0x1100, HANGUL_V = 0x1161, HANGUL_T = 0x11A7,
    HANGUL_L_COUNT = 19, HANGUL_V_COUNT = 21, HANGUL_T_COUNT = 28,
    HANGUL_N = HANGUL_V_COUNT * HANGUL_T_COUNT, HANGUL_S_COUNT = HANGUL_L_COUNT * HANGUL_N
};

/* Index of the range holding cp in a table of `count` sorted, disjoint ranges, or -1.
 * `stride` is the size of one row; each row starts with uint32_t lo, hi. */
static long find_range(const void *table, size_t count, size_t stride, uint32_t cp)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const uint32_t *row = (const uint32_t *)((const char *)table + mid * stride);
        if (cp < row[0]) hi = mid;
        else if (cp > row[1]) lo = mid + 1;
        else return (long)mid;
    }
    return -1;
}

unicode_class unicode_class_of(uint32_t cp)
{
    if (cp < 0x80) {   /* the common case, without a search */
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return UCLASS_LETTER;
        if (cp >= '0' && cp <= '9') return UCLASS_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return UCLASS_SPACE;
        return UCLASS_OTHER;
    }
    long i = find_range(unicode_class_ranges, unicode_class_ranges_count, sizeof unicode_class_ranges[0], cp);
    return i < 0 ? UCLASS_OTHER : (unicode_class)unicode_class_ranges[i].cls;
}

static uint8_t ccc_of(uint32_t cp)
{
    if (cp < 0x300) return 0;
    long i = find_range(unicode_ccc_ranges, unicode_ccc_ranges_count, sizeof unicode_ccc_ranges[0], cp);
    return i < 0 ? 0 : unicode_ccc_ranges[i].ccc;
}

static int nfc_quick_no(uint32_t cp)
{
    return cp >= 0x300 &&
           find_range(unicode_nfc_maybe_or_no, unicode_nfc_maybe_or_no_count, sizeof unicode_nfc_maybe_or_no[0], cp) >= 0;
}

size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char b = s[0];
    if (b < 0x80) { *cp = b; return 1; }
    size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
    if (len == 0 || b > 0xF4 || n < len) return 0;
    uint32_t v = b & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min_of_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_of_len[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

int utf8_valid(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    uint32_t cp;
    for (size_t at = 0, k; at < n; at += k)
        if ((k = utf8_decode(u + at, n - at, &cp)) == 0) return 0;
    return 1;
}

size_t utf8_encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) { out[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The canonical decomposition of cp written to out (when not NULL); returns its length. */
static size_t decompose(uint32_t cp, uint32_t *out)
{
    if (cp >= HANGUL_S && cp < HANGUL_S + HANGUL_S_COUNT) {
        uint32_t s = cp - HANGUL_S, t = s % HANGUL_T_COUNT;
        if (out) {
            out[0] = HANGUL_L + s / HANGUL_N;
            out[1] = HANGUL_V + (s % HANGUL_N) / HANGUL_T_COUNT;
            if (t) out[2] = HANGUL_T + t;
        }
        return t ? 3 : 2;
    }
    size_t lo = 0, hi = unicode_decompositions_count;
    while (cp >= 0xC0 && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const unicode_decomposition *d = &unicode_decompositions[mid];
        if (cp < d->cp) hi = mid;
        else if (cp > d->cp) lo = mid + 1;
        else {
            if (out) memcpy(out, &unicode_decomposition_pool[d->offset], d->length * sizeof *out);
            return d->length;
        }
    }
    if (out) out[0] = cp;
    return 1;
}

/* The primary composite of a + b, or 0 when there is none. */
static uint32_t compose(uint32_t a, uint32_t b)
{
    if (a >= HANGUL_L && a < HANGUL_L + HANGUL_L_COUNT && b >= HANGUL_V && b < HANGUL_V + HANGUL_V_COUNT)
        return HANGUL_S + ((a - HANGUL_L) * HANGUL_V_COUNT + (b - HANGUL_V)) * HANGUL_T_COUNT;
    if (a >= HANGUL_S && a < HANGUL_S + HANGUL_S_COUNT && (a - HANGUL_S) % HANGUL_T_COUNT == 0 &&
        b > HANGUL_T && b < HANGUL_T + HANGUL_T_COUNT)
        return a + (b - HANGUL_T);
    size_t lo = 0, hi = unicode_compositions_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const unicode_composition *c = &unicode_compositions[mid];
        if (a < c->first || (a == c->first && b < c->second)) hi = mid;
        else if (a > c->first || b > c->second) lo = mid + 1;
        else return c->composite;
    }
    return 0;
}

/* Stable sort of one run of combining marks by class. Insertion sort for the short runs
 * of real text; a counting sort for the long runs a hostile prompt may hold, so the
 * whole pass stays linear. */
static void order_run(uint32_t *cp, uint8_t *cc, size_t n, uint32_t *tmp_cp, uint8_t *tmp_cc)
{
    if (n < 32) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && cc[j - 1] > cc[j]; j--) {
                uint32_t c = cp[j]; cp[j] = cp[j - 1]; cp[j - 1] = c;
                uint8_t k = cc[j]; cc[j] = cc[j - 1]; cc[j - 1] = k;
            }
        return;
    }
    size_t start[257] = {0};
    for (size_t i = 0; i < n; i++) start[cc[i] + 1]++;
    for (int k = 1; k < 257; k++) start[k] += start[k - 1];
    for (size_t i = 0; i < n; i++) {
        size_t at = start[cc[i]]++;
        tmp_cp[at] = cp[i];
        tmp_cc[at] = cc[i];
    }
    memcpy(cp, tmp_cp, n * sizeof *cp);
    memcpy(cc, tmp_cc, n);
}

/* Canonical composition in place (UAX #15's algorithm); returns the new length. */
static size_t compose_all(uint32_t *cp, const uint8_t *cc, size_t n)
{
    size_t starter = 0, kept = 1;
    int last_class = cc[0] ? 256 : 0;   /* a leading mark blocks composition with it */
    for (size_t i = 1; i < n; i++) {
        uint32_t composite = compose(cp[starter], cp[i]);
        if (composite && last_class != 256 && (last_class < cc[i] || last_class == 0)) {
            cp[starter] = composite;
            continue;
        }
        if (cc[i] == 0) starter = kept;
        last_class = cc[i];
        cp[kept++] = cp[i];
    }
    return kept;
}

canvas_status unicode_nfc(const char *text, size_t len, char **out, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n_decomposed = 0;
    int is_nfc = 1;
    uint8_t last_cc = 0;
    for (size_t at = 0; at < len;) {
        uint32_t c;
        size_t k = utf8_decode(s + at, len - at, &c);
        if (k == 0) return status_fail(CANVAS_ERR_INPUT, "text: invalid UTF-8 at byte %zu", at);
        at += k;
        uint8_t cc = ccc_of(c);
        if (nfc_quick_no(c) || (cc && last_cc > cc)) is_nfc = 0;
        last_cc = cc;
        n_decomposed += decompose(c, NULL);
    }
    if (is_nfc || len == 0) {
        TRY(mem_alloc((void **)out, len ? len : 1, MEM_SCRATCH));
        if (len) memcpy(*out, text, len);
        *out_len = len;
        return CANVAS_OK;
    }
    /* Code points and their classes, and the same again as the counting sort's scratch;
     * mem_calloc checks the product for overflow. */
    uint32_t *cp = NULL;
    TRY(mem_calloc((void **)&cp, n_decomposed, 2 * sizeof(uint32_t) + 2, MEM_SCRATCH));
    uint32_t *tmp_cp = cp + n_decomposed;
    uint8_t *cc = (uint8_t *)(tmp_cp + n_decomposed), *tmp_cc = cc + n_decomposed;
    size_t n = 0;
    for (size_t at = 0; at < len;) {
        uint32_t c;
        at += utf8_decode(s + at, len - at, &c);
        n += decompose(c, cp + n);
    }
    for (size_t i = 0; i < n; i++) cc[i] = ccc_of(cp[i]);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && cc[j]) j++;
        if (j - i > 1) order_run(cp + i, cc + i, j - i, tmp_cp, tmp_cc);
        i = j > i ? j : i + 1;
    }
    n = compose_all(cp, cc, n);
    canvas_status st = n > SIZE_MAX / 4 ? status_fail(CANVAS_ERR_INPUT, "text: too long for NFC")
                                        : mem_alloc((void **)out, 4 * n, MEM_SCRATCH);
    if (st == CANVAS_OK) {
        size_t bytes = 0;
        for (size_t i = 0; i < n; i++) bytes += utf8_encode(cp[i], (unsigned char *)*out + bytes);
        *out_len = bytes;
    }
    mem_free(cp);
    return st;
}
