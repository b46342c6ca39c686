/* SPDX-License-Identifier: Apache-2.0 */
/* replay.c — main() for a fuzz target outside libFuzzer: the regression run of ctest.
 *
 *   fuzz_x [--mutations N] PATH...    PATH: a file, a folder of files, or @LIST (a text
 *                                     file naming one file or folder a line, relative to
 *                                     the tests/ folder two levels above LIST)
 *
 * Each file is fed to the target as it is, then (when it is at most 64 KiB) N times
 * mutated by a fixed generator: a byte flipped, set to 0x00/0xff/a digit, the input cut
 * short, a run repeated. The same inputs every run, so a failure reproduces; libFuzzer
 * (tools/fuzz.sh) is the search. Prints "fuzz_x: K inputs" and exits non-zero when a
 * path cannot be read (a crash or a sanitizer report ends the program by itself). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define MUTATE_MAX_BYTES (64u << 10)

static unsigned long long inputs_run;
static int mutations = 64;

static uint32_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*state >> 33);
}

/* One mutant of seed into buf (capacity 2 * size + 1); returns its length. */
static size_t mutate(const uint8_t *seed, size_t size, uint8_t *buf, uint64_t *state)
{
    memcpy(buf, seed, size);
    if (size == 0) return 0;
    size_t at = next_random(state) % size;
    switch (next_random(state) % 5) {
    case 0: buf[at] ^= (uint8_t)(1u << (next_random(state) % 8)); return size;
    case 1: buf[at] = 0x00; return size;
    case 2: buf[at] = 0xff; return size;
    case 3: buf[at] = (uint8_t)('0' + next_random(state) % 10); return size;
    default: {
        if (next_random(state) % 2) return at; /* cut short */
        size_t run = 1 + next_random(state) % (size - at); /* repeat [at, at+run) once */
        memmove(buf + at + run, buf + at, size - at);
        return size + run;
    }
    }
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long length = ftell(f);
    rewind(f);
    size_t size = length > 0 ? (size_t)length : 0;
    uint8_t *data = malloc(size + 1);
    uint8_t *buf = malloc(2 * size + 1);
    if (!data || !buf || fread(data, 1, size, f) != size) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        fclose(f);
        free(data);
        free(buf);
        return 1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(data, size);
    inputs_run++;
    if (size <= MUTATE_MAX_BYTES) {
        uint64_t state = size * 2654435761u + 1;
        for (int i = 0; i < mutations; i++) {
            size_t n = mutate(data, size, buf, &state);
            LLVMFuzzerTestOneInput(buf, n);
            inputs_run++;
        }
    }
    free(data);
    free(buf);
    return 0;
}

static int run_path(const char *path);

static int run_dir(const char *path)
{
    DIR *dir = opendir(path);
    if (!dir) return run_file(path);
    int bad = 0;
    struct dirent *entry;
    char child[1024];
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.') continue; /* ., .., and hidden notes */
        snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        bad |= run_path(child);
    }
    closedir(dir);
    return bad;
}

static int run_list(const char *list)
{
    char base[1024];
    snprintf(base, sizeof base, "%s", list);
    for (int up = 0; up < 3; up++) { /* tests/fuzz/seeds/x.txt -> tests */
        char *slash = strrchr(base, '/');
        if (slash) *slash = '\0'; else snprintf(base, sizeof base, "..");
    }
    FILE *f = fopen(list, "r");
    if (!f) {
        fprintf(stderr, "replay: cannot read %s\n", list);
        return 1;
    }
    int bad = 0;
    char line[1024], path[2100];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#') continue;
        snprintf(path, sizeof path, "%s/%s", base, line);
        bad |= run_path(path);
    }
    fclose(f);
    return bad;
}

static int run_path(const char *path)
{
    if (path[0] == '@') return run_list(path + 1);
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: no such file %s\n", path);
        return 1;
    }
    return S_ISDIR(st.st_mode) ? run_dir(path) : run_file(path);
}

int main(int argc, char **argv)
{
    int bad = 0, first = 1;
    if (argc > 2 && !strcmp(argv[1], "--mutations")) {
        mutations = atoi(argv[2]);
        first = 3;
    }
    for (int i = first; i < argc; i++) bad |= run_path(argv[i]);
    const char *name = strrchr(argv[0], '/');
    printf("%s: %llu inputs\n", name ? name + 1 : argv[0], inputs_run);
    return bad;
}
