/* SPDX-License-Identifier: Apache-2.0 */
/* output_file.h — where a run may write, checked before any work, and writing through a
 * temporary file in the same folder that is renamed into place at the end.
 *
 * A run that fails after hours because its output folder is missing, or that overwrites
 * its own input (a weight shard, the LoRA, the settings file), is what these refuse up
 * front. Every refusal is CANVAS_ERR_USAGE and names the flag and the path. */
#ifndef CANVAS_IO_OUTPUT_FILE_H
#define CANVAS_IO_OUTPUT_FILE_H

#include <stddef.h>

#include "canvas.h"

/* What an output must not be. Every field may be NULL / 0. */
typedef struct output_rules {
    const char *flag;                  /* "-o", "--report": the start of every message */
    const char *const *extensions;     /* NULL-terminated endings without the dot ("png", ...),
                                        * matched ignoring case; NULL: any name */
    const char *const *inputs;         /* files the run reads (or writes as another output) */
    int n_inputs;
    const char *const *folders;        /* folders the run reads (a model, a golden case) */
    int n_folders;
    const char *folder_kind;           /* what they are in messages: "model", "case" */
} output_rules;

/* CANVAS_OK when a file may be written at path: the name is not empty and does not end in
 * '/'; its ending is one of rules->extensions; its folder exists, is a folder, and this
 * process may create files in it; what is at path now (if anything) is a regular file,
 * not a folder, device node, FIFO, socket or symbolic link (a rename would replace the
 * device node or the link itself, and a link names a file somewhere else); it is not the
 * same file (same string, same resolved folder and name, or same device and inode) as any
 * of rules->inputs nor any file up to four levels inside rules->folders (hard links and a
 * Hugging Face cache's links into blobs/ included); and it is not inside any of
 * rules->folders. The ending is checked last, so that overwriting an input is named as
 * such whatever the name. Reads no file's contents. */
canvas_status output_check(const char *path, const output_rules *rules);

/* CANVAS_OK when a folder may be created at path: nothing is there yet (not even a
 * dangling link), its parent folder exists and is writable, and it is not inside any of
 * `folders` (a copy of a model into itself; named "the model folder"). */
canvas_status output_check_folder(const char *flag, const char *path, const char *const *folders, int n_folders);

/* Create a new, empty, uniquely named file next to path (".NAME.XXXXXX" in path's
 * folder, O_EXCL, mode 0644 less the umask): *fd is open for writing and `tmp` (tmp_size
 * bytes) holds its name. Two runs writing the same output each get their own. */
canvas_status output_temp_create(const char *path, char *tmp, size_t tmp_size, int *fd);

/* Finish a temporary file: when st is CANVAS_OK, rename tmp onto path (atomic: readers see
 * the old file or the whole new one); otherwise, or when the rename fails, remove tmp.
 * Returns st, or the rename's failure. */
canvas_status output_temp_finish(const char *tmp, const char *path, canvas_status st);

/* Create a new, uniquely named folder next to path (".NAME.partial-XXXXXX"), for a run
 * that fills a folder and renames it to path at the end; `tmp` receives its name. Only
 * this folder (never one that existed before) may then be removed on failure. */
canvas_status output_temp_folder(const char *path, char *tmp, size_t tmp_size);

/* Rename the filled temporary folder to path, never onto anything that appeared there
 * meanwhile (another run's result, a folder the user made): CANVAS_ERR_IO then, tmp left for
 * the caller to remove. RENAME_NOREPLACE where the file system has it, else a check right
 * before the rename. */
canvas_status output_folder_finish(const char *tmp, const char *path);

/* Remove a folder tree that this process created (depth-limited; links are removed, never
 * followed). */
void output_remove_tree(const char *path);

#endif
