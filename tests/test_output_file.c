/* SPDX-License-Identifier: Apache-2.0 */
/* test_output_file.c — io/output_file.h: every refusal of output_check (with the reason it
 * names), temporary files and folders unique and finished as asked, and a tree removal that
 * never follows a link out of the tree. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/output_file.h"

static char root[256];

static const char *at(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", root, name);
    return buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static int read_is(const char *path, const char *text)
{
    char got[64] = "";
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    got[n] = '\0';
    return !strcmp(got, text);
}

static void test_check(void)
{
    static const char *const png[] = {"png", "jpg", NULL};
    char out[512], in[512], other[512], model[512], shard[512], hf_link[512], fifo[512];
    at(in, sizeof in, "in.png");
    write_text(in, "input");
    at(model, sizeof model, "model");
    mkdir(model, 0755);
    at(shard, sizeof shard, "shard.safetensors");
    write_text(shard, "weights");
    snprintf(hf_link, sizeof hf_link, "%s/model/shard.safetensors", root);
    CHECK(symlink(shard, hf_link) == 0); /* as a Hugging Face cache links into blobs/ */
    const char *inputs[] = {in};
    const char *folders[] = {model};
    output_rules rules = {"-o", png, inputs, 1, folders, 1, "model"};

    CHECK_OK(output_check(at(out, sizeof out, "new.png"), &rules));
    CHECK_OK(output_check(at(out, sizeof out, "NEW.JPG"), &rules)); /* endings ignore case */
    CHECK_FAILS(output_check(at(out, sizeof out, "new.txt"), &rules), CANVAS_ERR_USAGE,
                "new.txt: unknown file type (the name must end in .png, .jpg)");
    CHECK_FAILS(output_check(at(out, sizeof out, "new"), &rules), CANVAS_ERR_USAGE, "unknown file type");
    CHECK_FAILS(output_check(at(out, sizeof out, "nodir/new.png"), &rules), CANVAS_ERR_USAGE, "nodir does not exist");
    CHECK_FAILS(output_check(at(out, sizeof out, "in.png/new.png"), &rules), CANVAS_ERR_USAGE, "in.png is not a folder");
    CHECK_FAILS(output_check(at(out, sizeof out, ""), &rules), CANVAS_ERR_USAGE, "names a folder");
    CHECK_FAILS(output_check("", &rules), CANVAS_ERR_USAGE, "empty path");
    /* the input, by name, by another spelling, and through a hard link */
    CHECK_FAILS(output_check(in, &rules), CANVAS_ERR_USAGE, "is the same file as");
    snprintf(out, sizeof out, "%s/./model/../in.png", root);
    CHECK_FAILS(output_check(out, &rules), CANVAS_ERR_USAGE, "refusing to overwrite an input");
    at(other, sizeof other, "hard.png");
    CHECK(link(in, other) == 0);
    CHECK_FAILS(output_check(other, &rules), CANVAS_ERR_USAGE, "is the same file as");
    /* inside the model folder (new or existing), or a file the model folder links to */
    CHECK_FAILS(output_check(at(out, sizeof out, "model/new.png"), &rules), CANVAS_ERR_USAGE,
                "is a file of the model folder");
    static const char *const any_ending[] = {"safetensors", NULL};
    rules.extensions = any_ending;
    CHECK_FAILS(output_check(shard, &rules), CANVAS_ERR_USAGE, "model/shard.safetensors: refusing to overwrite an input");
    rules.extensions = png;
    /* not a regular file */
    at(fifo, sizeof fifo, "fifo.png");
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK_FAILS(output_check(fifo, &rules), CANVAS_ERR_USAGE, "exists and is not a regular file");
    CHECK_FAILS(output_check(at(out, sizeof out, "model"), &rules), CANVAS_ERR_USAGE, "is not a regular file");
    CHECK_FAILS(output_check("/dev/null", &(output_rules){"--trace", NULL, NULL, 0, NULL, 0, NULL}),
                CANVAS_ERR_USAGE, "--trace /dev/null: exists and is not a regular file");
    at(other, sizeof other, "dangling.png");
    CHECK(symlink("/nonexistent/target.png", other) == 0);
    CHECK_FAILS(output_check(other, &rules), CANVAS_ERR_USAGE, "is a symbolic link");
    /* an existing regular file that is no input may be replaced */
    at(out, sizeof out, "old.png");
    write_text(out, "old");
    CHECK_OK(output_check(out, &rules));
}

static void test_temp_files(void)
{
    char path[512], a[4096], b[4096];
    at(path, sizeof path, "result.json");
    int fa, fb;
    CHECK_OK(output_temp_create(path, a, sizeof a, &fa));
    CHECK_OK(output_temp_create(path, b, sizeof b, &fb));
    CHECK_MSG(strcmp(a, b) != 0, "two temporary files share the name %s", a);
    CHECK(strncmp(a, root, strlen(root)) == 0 && strstr(a, "/.result.json.") != NULL);
    CHECK(write(fa, "first", 5) == 5 && write(fb, "second", 6) == 6);
    close(fa);
    close(fb);
    /* a failed write removes its file and leaves the output alone; a good one renames */
    CHECK_FAILS(output_temp_finish(a, path, CANVAS_ERR_IO), CANVAS_ERR_IO, "");
    CHECK(access(a, F_OK) != 0 && access(path, F_OK) != 0);
    CHECK_OK(output_temp_finish(b, path, CANVAS_OK));
    CHECK(access(b, F_OK) != 0 && read_is(path, "second"));
    /* a bare name: the temporary file is in the current folder */
    char bare[64];
    CHECK(chdir(root) == 0);
    CHECK_OK(output_temp_create("bare.png", bare, sizeof bare, &fa));
    close(fa);
    CHECK(bare[0] == '.' && strchr(bare, '/') == NULL);
    CHECK_OK(output_temp_finish(bare, "bare.png", CANVAS_OK));
    CHECK(access("bare.png", F_OK) == 0);
}

static void test_folders(void)
{
    char out[512], model[512], tmp[4096], inner[4200], outside[512], link[4200];
    at(model, sizeof model, "model");
    const char *folders[] = {model};
    CHECK_OK(output_check_folder("OUT_DIR", at(out, sizeof out, "converted/"), folders, 1));
    CHECK_FAILS(output_check_folder("OUT_DIR", model, folders, 1), CANVAS_ERR_USAGE, "already exists");
    CHECK_FAILS(output_check_folder("OUT_DIR", at(out, sizeof out, "model/sub"), folders, 1), CANVAS_ERR_USAGE,
                "is a file of the model folder");
    CHECK_FAILS(output_check_folder("OUT_DIR", at(out, sizeof out, "nodir/x"), folders, 1), CANVAS_ERR_USAGE,
                "does not exist");
    at(out, sizeof out, "converted");
    CHECK_OK(output_temp_folder(out, tmp, sizeof tmp));
    char second[4096];
    CHECK_OK(output_temp_folder(out, second, sizeof second));
    CHECK(strcmp(tmp, second) != 0 && strstr(tmp, "/.converted.") && strstr(tmp, ".partial"));
    /* removal: the tree goes, a file a link in it points to stays */
    at(outside, sizeof outside, "keep.txt");
    write_text(outside, "keep");
    snprintf(inner, sizeof inner, "%s/sub", tmp);
    CHECK(mkdir(inner, 0755) == 0);
    snprintf(link, sizeof link, "%s/sub/link", tmp);
    CHECK(symlink(outside, link) == 0);
    snprintf(link, sizeof link, "%s/dirlink", tmp);
    CHECK(symlink(root, link) == 0);
    output_remove_tree(tmp);
    output_remove_tree(second);
    CHECK(access(tmp, F_OK) != 0 && access(second, F_OK) != 0);
    CHECK(read_is(outside, "keep") && access(model, F_OK) == 0);

    /* finishing: into place when nothing is there; never onto a folder (even an empty one) or
     * a file that appeared meanwhile, which stay as they were */
    CHECK_OK(output_temp_folder(out, tmp, sizeof tmp));
    CHECK(mkdir(out, 0755) == 0); /* "another run" made it meanwhile */
    CHECK_FAILS(output_folder_finish(tmp, out), CANVAS_ERR_IO, "appeared while the work ran");
    CHECK(access(tmp, F_OK) == 0 && rmdir(out) == 0);
    write_text(out, "theirs");
    CHECK_FAILS(output_folder_finish(tmp, out), CANVAS_ERR_IO, "appeared while the work ran");
    CHECK(read_is(out, "theirs") && unlink(out) == 0);
    CHECK_OK(output_folder_finish(tmp, out));
    CHECK(access(tmp, F_OK) != 0 && access(out, F_OK) == 0);
    output_remove_tree(out);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/canvas_test_output_file.XXXXXX");
    if (!mkdtemp(root)) return 1;
    RUN(test_check);
    RUN(test_temp_files);
    RUN(test_folders);
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", root);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", root);
    return check_summary();
}
