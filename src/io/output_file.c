/* SPDX-License-Identifier: Apache-2.0 */
/* output_file.c — checking an output path before the work, and temporary files renamed into place. */
#define _GNU_SOURCE /* lstat, realpath, renameat2 */
#include "io/output_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/path.h"
#include "base/status.h"

enum { SCAN_DEPTH = 4, TEMP_TRIES = 64 };

/* path's folder ("." for a bare name) and its last component; 0 when it does not fit. */
static int split(const char *path, char *folder, size_t folder_size, const char **name)
{
    const char *slash = strrchr(path, '/');
    *name = slash ? slash + 1 : path;
    int n = !slash ? snprintf(folder, folder_size, ".")
            : slash == path ? snprintf(folder, folder_size, "/")
                            : snprintf(folder, folder_size, "%.*s", (int)(slash - path), path);
    return n > 0 && (size_t)n < folder_size;
}

/* The resolved folder + "/" + name: two spellings of one path compare equal. 0 when the
 * folder cannot be resolved. */
static int canonical(const char *path, char *out, size_t size)
{
    char folder[PATH_BUFFER_SIZE], real[PATH_MAX];
    const char *name;
    if (!split(path, folder, sizeof folder, &name) || !realpath(folder, real)) return 0;
    return path_join(out, size, real, name) == CANVAS_OK;
}

/* path (resolved as canonical does) is folder or inside it. */
static int inside(const char *folder, const char *path)
{
    char folder_real[PATH_MAX], path_real[PATH_BUFFER_SIZE];
    if (!realpath(folder, folder_real) || !canonical(path, path_real, sizeof path_real)) return 0;
    size_t len = strlen(folder_real);
    if (len == 1) return 1; /* "/" holds everything */
    return !strncmp(path_real, folder_real, len) && (path_real[len] == '/' || path_real[len] == '\0');
}

static int same_inode(const struct stat *a, const struct stat *b) { return a->st_dev == b->st_dev && a->st_ino == b->st_ino; }

/* Whether a file under folder (links followed, SCAN_DEPTH levels) is the file `target`. */
static int folder_holds(const char *folder, const struct stat *target, int depth, char *found, size_t found_size)
{
    DIR *dir = depth <= SCAN_DEPTH ? opendir(folder) : NULL;
    if (!dir) return 0;
    int hit = 0;
    struct dirent *entry;
    while (!hit && (entry = readdir(dir))) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
        char child[PATH_BUFFER_SIZE];
        struct stat sb;
        if (path_join(child, sizeof child, folder, entry->d_name) != CANVAS_OK || stat(child, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) hit = folder_holds(child, target, depth + 1, found, found_size);
        else if (same_inode(&sb, target)) {
            snprintf(found, found_size, "%s", child);
            hit = 1;
        }
    }
    closedir(dir);
    return hit;
}

static int has_extension(const char *name, const char *const *extensions)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (int i = 0; extensions[i]; i++)
        if (!strcasecmp(dot + 1, extensions[i])) return 1;
    return 0;
}

static canvas_status check_folder_of(const char *flag, const char *path, char *folder, size_t folder_size,
                                     const char **name)
{
    if (!path || !path[0]) return status_fail(CANVAS_ERR_USAGE, "%s: empty path", flag);
    if (!split(path, folder, folder_size, name) || strlen(path) >= PATH_BUFFER_SIZE)
        return status_fail(CANVAS_ERR_USAGE, "%s %s: path too long", flag, path);
    if (!(*name)[0] || !strcmp(*name, ".") || !strcmp(*name, ".."))
        return status_fail(CANVAS_ERR_USAGE, "%s %s: names a folder, not a file", flag, path);
    struct stat sb;
    if (stat(folder, &sb) != 0)
        return status_fail(CANVAS_ERR_USAGE, "%s %s: the folder %s does not exist", flag, path, folder);
    if (!S_ISDIR(sb.st_mode)) return status_fail(CANVAS_ERR_USAGE, "%s %s: %s is not a folder", flag, path, folder);
    if (access(folder, W_OK | X_OK) != 0)
        return status_fail(CANVAS_ERR_USAGE, "%s %s: cannot create files in %s (%s)", flag, path, folder,
                           strerror(errno));
    return CANVAS_OK;
}

static canvas_status check_not_inside(const char *flag, const char *path, const char *kind,
                                      const char *const *folders, int n)
{
    for (int i = 0; i < n; i++)
        if (folders[i] && inside(folders[i], path))
            return status_fail(CANVAS_ERR_USAGE, "%s %s is a file of the %s folder %s: refusing to overwrite an input",
                               flag, path, kind ? kind : "input", folders[i]);
    return CANVAS_OK;
}

canvas_status output_check(const char *path, const output_rules *rules)
{
    const char *flag = rules->flag ? rules->flag : "output";
    char folder[PATH_BUFFER_SIZE];
    const char *name;
    TRY(check_folder_of(flag, path, folder, sizeof folder, &name));
    struct stat here;
    int exists = lstat(path, &here) == 0;
    if (exists && S_ISLNK(here.st_mode))
        return status_fail(CANVAS_ERR_USAGE, "%s %s is a symbolic link: refusing to replace it (give the file it "
                           "names, or another name)", flag, path);
    if (exists && !S_ISREG(here.st_mode))
        return status_fail(CANVAS_ERR_USAGE, "%s %s: exists and is not a regular file (a folder, device, FIFO or "
                           "socket); refusing to replace it", flag, path);
    char mine[PATH_BUFFER_SIZE], theirs[PATH_BUFFER_SIZE];
    int resolved = canonical(path, mine, sizeof mine);
    for (int i = 0; i < rules->n_inputs; i++) {
        const char *input = rules->inputs[i];
        if (!input) continue;
        struct stat sb;
        if (!strcmp(input, path) || (resolved && canonical(input, theirs, sizeof theirs) && !strcmp(mine, theirs)) ||
            (exists && stat(input, &sb) == 0 && same_inode(&sb, &here)))
            return status_fail(CANVAS_ERR_USAGE, "%s %s is the same file as %s: refusing to overwrite an input "
                               "or to write two outputs to one file", flag, path, input);
    }
    TRY(check_not_inside(flag, path, rules->folder_kind, rules->folders, rules->n_folders));
    for (int i = 0; exists && i < rules->n_folders; i++) {
        char found[PATH_BUFFER_SIZE];
        if (rules->folders[i] && folder_holds(rules->folders[i], &here, 0, found, sizeof found))
            return status_fail(CANVAS_ERR_USAGE, "%s %s is the same file as %s: refusing to overwrite an input", flag,
                               path, found);
    }
    if (rules->extensions && !has_extension(name, rules->extensions)) {
        char list[256] = "";
        for (int i = 0; rules->extensions[i]; i++) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof list - used, "%s.%s", i ? ", " : "", rules->extensions[i]);
        }
        return status_fail(CANVAS_ERR_USAGE, "%s %s: unknown file type (the name must end in %s)", flag, path, list);
    }
    return CANVAS_OK;
}

canvas_status output_check_folder(const char *flag, const char *path, const char *const *folders, int n_folders)
{
    char trimmed[PATH_BUFFER_SIZE], folder[PATH_BUFFER_SIZE];
    /* "out/" is the folder "out" */
    size_t n = path ? strlen(path) : 0;
    while (n > 1 && path[n - 1] == '/') n--;
    if (n >= sizeof trimmed) return status_fail(CANVAS_ERR_USAGE, "%s %s: path too long", flag, path);
    if (path) memcpy(trimmed, path, n);
    trimmed[n] = '\0';
    const char *name;
    TRY(check_folder_of(flag, trimmed, folder, sizeof folder, &name));
    struct stat sb;
    if (lstat(trimmed, &sb) == 0)
        return status_fail(CANVAS_ERR_USAGE, "%s %s already exists; give a new folder (nothing was written)", flag, path);
    return check_not_inside(flag, trimmed, "model", folders, n_folders);
}

/* ".NAME.<pid>-<n><suffix>" next to path: unique within this process by the counter and
 * across processes by the pid. */
static canvas_status temp_name(const char *path, const char *suffix, unsigned attempt, char *out, size_t size)
{
    static atomic_uint counter;
    char folder[PATH_BUFFER_SIZE], leaf[512];
    const char *name;
    if (!split(path, folder, sizeof folder, &name))
        return status_fail(CANVAS_ERR_USAGE, "%s: path too long", path);
    unsigned serial = atomic_fetch_add(&counter, 1u) + attempt;
    int n = snprintf(leaf, sizeof leaf, ".%.200s.%ld-%u%s", name, (long)getpid(), serial, suffix);
    if (n < 0 || (size_t)n >= sizeof leaf) return status_fail(CANVAS_ERR_USAGE, "%s: name too long", path);
    if (strlen(folder) + 1 + (size_t)n >= size) return status_fail(CANVAS_ERR_USAGE, "%s: path too long", path);
    return path_join(out, size, strchr(path, '/') ? folder : "", leaf);
}

canvas_status output_temp_create(const char *path, char *tmp, size_t tmp_size, int *fd)
{
    *fd = -1;
    for (unsigned attempt = 0; attempt < TEMP_TRIES; attempt++) {
        TRY(temp_name(path, ".tmp", attempt, tmp, tmp_size));
        /* O_EXCL | O_NOFOLLOW: never a file or link someone else put there */
        *fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (*fd >= 0) return CANVAS_OK;
        if (errno != EEXIST) break;
    }
    return status_fail(CANVAS_ERR_IO, "%s: cannot create a temporary file next to it (%s): %s", path, tmp,
                       strerror(errno));
}

canvas_status output_temp_finish(const char *tmp, const char *path, canvas_status st)
{
    if (st == CANVAS_OK && rename(tmp, path) != 0)
        st = status_fail(CANVAS_ERR_IO, "%s: cannot rename %s onto it: %s", path, tmp, strerror(errno));
    if (st != CANVAS_OK) unlink(tmp);
    return st;
}

canvas_status output_temp_folder(const char *path, char *tmp, size_t tmp_size)
{
    char trimmed[PATH_BUFFER_SIZE];
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    if (n >= sizeof trimmed) return status_fail(CANVAS_ERR_USAGE, "%s: path too long", path);
    memcpy(trimmed, path, n);
    trimmed[n] = '\0';
    for (unsigned attempt = 0; attempt < TEMP_TRIES; attempt++) {
        TRY(temp_name(trimmed, ".partial", attempt, tmp, tmp_size));
        if (mkdir(tmp, 0755) == 0) return CANVAS_OK;
        if (errno != EEXIST) break;
    }
    return status_fail(CANVAS_ERR_IO, "%s: cannot create a temporary folder next to it (%s): %s", path, tmp,
                       strerror(errno));
}

canvas_status output_folder_finish(const char *tmp, const char *path)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) return CANVAS_OK;
    if (errno == EINVAL || errno == ENOSYS) { /* a file system without it: check right before (a window stays) */
        struct stat sb;
        if (lstat(path, &sb) != 0 && rename(tmp, path) == 0) return CANVAS_OK;
        if (lstat(path, &sb) == 0) errno = EEXIST;
    }
    if (errno == EEXIST)
        return status_fail(CANVAS_ERR_IO, "%s appeared while the work ran; the result is not moved onto it", path);
    return status_fail(CANVAS_ERR_IO, "%s: cannot rename to %s (%s)", tmp, path, strerror(errno));
}

static void remove_tree(const char *path, int depth)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (!S_ISDIR(sb.st_mode)) {
        unlink(path);
        return;
    }
    DIR *dir = depth <= 2 * SCAN_DEPTH ? opendir(path) : NULL;
    struct dirent *entry;
    while (dir && (entry = readdir(dir))) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
        char child[PATH_BUFFER_SIZE];
        if (path_join(child, sizeof child, path, entry->d_name) == CANVAS_OK) remove_tree(child, depth + 1);
    }
    if (dir) closedir(dir);
    rmdir(path);
}

void output_remove_tree(const char *path) { remove_tree(path, 0); }
