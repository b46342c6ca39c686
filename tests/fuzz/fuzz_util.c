/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_util.c — the private temporary folder and the file writer of fuzz.h. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static char dir_path[256];

/* Remove the files this program wrote, then the folder (only ours: made by mkdtemp). */
static void remove_dir(void)
{
    DIR *dir = opendir(dir_path);
    if (dir) {
        struct dirent *entry;
        char path[512];
        while ((entry = readdir(dir)) != NULL) {
            if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
            snprintf(path, sizeof path, "%s/%s", dir_path, entry->d_name);
            unlink(path);
        }
        closedir(dir);
    }
    rmdir(dir_path);
}

const char *fuzz_dir(void)
{
    if (dir_path[0]) return dir_path;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir_path, sizeof dir_path, "%s/canvas-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir_path)) {
        dir_path[0] = '\0';
        return NULL;
    }
    atexit(remove_dir);
    return dir_path;
}

const char *fuzz_file(const char *name, const void *data, size_t size)
{
    static char path[512];
    if (!fuzz_dir()) return NULL;
    snprintf(path, sizeof path, "%s/%s", dir_path, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return NULL;
    const uint8_t *bytes = data;
    while (size > 0) {
        ssize_t n = write(fd, bytes, size);
        if (n <= 0) {
            close(fd);
            return NULL;
        }
        bytes += n;
        size -= (size_t)n;
    }
    close(fd);
    return path;
}

const char *fuzz_test_path(const char *relative)
{
    static char path[1024];
    const char *root = getenv("CANVAS_TEST_DIR");
    snprintf(path, sizeof path, "%s/%s", root && *root ? root : "tests", relative);
    return path;
}
