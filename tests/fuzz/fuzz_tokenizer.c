/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_tokenizer.c — prompt text through the real Qwen2.5 tokenizer (text/tokenizer.h):
 * any bytes either fail (invalid UTF-8, too long) or give ids inside the vocabulary that
 * decode again. */
#include <stdlib.h>

#include "fuzz.h"
#include "mem/mem.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tokenizer *tok;
    if (!tok && tokenizer_open(fuzz_test_path("real-configs/qwen-image-edit-2511/tokenizer"), &tok) != CANVAS_OK)
        return 0;
    int32_t *ids = NULL;
    size_t n = 0;
    if (tokenizer_encode(tok, (const char *)data, size, &ids, &n) != CANVAS_OK) return 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= 151665) __builtin_trap();
    char *text = NULL;
    if (tokenizer_decode(tok, ids, n, &text) != CANVAS_OK) __builtin_trap();
    mem_free(text);
    mem_free(ids);
    return 0;
}
