/* file_read.c — a whole regular file into one block, checked before allocating. */
#include "io/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/status.h"
#include "mem/mem.h"

canvas_status file_read_all(const char *path, size_t max_bytes, char **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return status_fail(CANVAS_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    canvas_status st = CANVAS_OK;
    if (fstat(fd, &sb) != 0) st = status_fail(CANVAS_ERR_INPUT, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode)) st = status_fail(CANVAS_ERR_INPUT, "%s: not a regular file", path);
    else if ((uint64_t)sb.st_size > max_bytes)
        st = status_fail(CANVAS_ERR_INPUT, "%s: %lld bytes is more than the %zu this file may have", path,
                         (long long)sb.st_size, max_bytes);
    char *data = NULL;
    size_t want = st == CANVAS_OK ? (size_t)sb.st_size : 0, got = 0;
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
