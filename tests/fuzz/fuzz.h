/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz.h — what every fuzz target shares.
 *
 * A target is one LLVMFuzzerTestOneInput over the bytes of one kind of hostile input (a
 * safetensors file, a config, an image...). It is linked two ways (docs/fuzzing.md):
 * with libFuzzer (clang, CANVAS_FUZZ=ON, tools/fuzz.sh) to search for new inputs, and
 * with replay.c in every normal build, where ctest feeds it the seed corpus, the crash
 * regressions and deterministic mutations of each seed.
 *
 * The loaders under test read paths, so the bytes are written to a file in a private
 * temporary folder first (fuzz_file); a target that needs a second file (a shard next to
 * an index) writes it there too. A target must accept every input: success or a status
 * both pass, only a crash, a sanitizer report, a leak or a hang fails. */
#ifndef CANVAS_TESTS_FUZZ_H
#define CANVAS_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The private folder (made on first use, removed with its files at exit); NULL when it
 * cannot be made. */
const char *fuzz_dir(void);

/* Write the bytes to fuzz_dir()/name and return that path (a static buffer, valid until
 * the next call), or NULL when the file cannot be written. */
const char *fuzz_file(const char *name, const void *data, size_t size);

/* $CANVAS_TEST_DIR/relative (the repository's tests/ folder), in a static buffer. */
const char *fuzz_test_path(const char *relative);

#endif
