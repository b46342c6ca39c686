/* SPDX-License-Identifier: Apache-2.0 */
/* file_read.c — opening an input (regular files only, never waiting on a FIFO), reading a
 * whole one into one block checked before allocating; what an output may replace. */
#define _POSIX_C_SOURCE 200809L /* lstat */
#include "io/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/status.h"
#include "mem/mem.h"

canvas_status file_open_regular(const char *path, int *fd, size_t *size_out)
{
    *fd = -1;
    /* O_NONBLOCK: a FIFO named as an input must not wait for a writer (it is refused
     * below as not a regular file); reads of a regular file ignore the flag */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (f < 0) return status_fail(CANVAS_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    canvas_status st = CANVAS_OK;
    if (fstat(f, &sb) != 0) st = status_fail(CANVAS_ERR_INPUT, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = status_fail(CANVAS_ERR_INPUT, "%s: not a regular file (a folder, FIFO, device or socket)", path);
    else if ((uint64_t)sb.st_size > SIZE_MAX / 2)
        st = status_fail(CANVAS_ERR_INPUT, "%s: too large", path);
    if (st != CANVAS_OK) {
        close(f);
        return st;
    }
    *fd = f;
    if (size_out) *size_out = (size_t)sb.st_size;
    return CANVAS_OK;
}

canvas_status file_read_all(const char *path, size_t max_bytes, char **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    int fd;
    size_t file_size;
    TRY(file_open_regular(path, &fd, &file_size));
    canvas_status st = CANVAS_OK;
    if (file_size > max_bytes)
        st = status_fail(CANVAS_ERR_INPUT, "%s: %zu bytes is more than the %zu this file may have", path, file_size,
                         max_bytes);
    char *data = NULL;
    size_t want = st == CANVAS_OK ? file_size : 0, got = 0;
    if (st == CANVAS_OK) st = mem_alloc((void **)&data, want + 1, MEM_SCRATCH);
    while (st == CANVAS_OK && got < want) {
        ssize_t n = read(fd, data + got, want - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) st = status_fail(CANVAS_ERR_INPUT, "%s: read failed: %s", path, strerror(errno));
        else if (n == 0) want = got; /* the file shrank while we read: take what is there */
        else got += (size_t)n;
    }
    close(fd);
    if (st != CANVAS_OK) {
        mem_free(data);
        return st;
    }
    data[got] = '\0';
    *out = data;
    *size = got;
    return CANVAS_OK;
}

canvas_status file_check_replaceable(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0 || S_ISREG(sb.st_mode)) return CANVAS_OK;
    if (S_ISLNK(sb.st_mode))
        return status_fail(CANVAS_ERR_USAGE, "%s is a symbolic link: refusing to replace it (give the file it names, "
                           "or another name)", path);
    return status_fail(CANVAS_ERR_USAGE, "%s: exists and is not a regular file; refusing to replace it", path);
}
