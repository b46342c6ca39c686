/* SPDX-License-Identifier: Apache-2.0 */
/* test_path.c — path_join: one '/', exact fits, never a cut-short path. */
#include <string.h>

#include "base/path.h"
#include "check.h"

static void test_joins(void)
{
    char out[64];
    CHECK_OK(path_join(out, sizeof out, "models/edit", "vae"));
    CHECK(!strcmp(out, "models/edit/vae"));
    CHECK_OK(path_join(out, sizeof out, "models/edit/", "vae"));
    CHECK(!strcmp(out, "models/edit/vae"));
    CHECK_OK(path_join(out, sizeof out, "/", "tmp"));
    CHECK(!strcmp(out, "/tmp"));
    CHECK_OK(path_join(out, sizeof out, "", "case.json"));
    CHECK(!strcmp(out, "case.json"));
    CHECK_OK(path_join(out, sizeof out, "m", "transformer/config.json"));
    CHECK(!strcmp(out, "m/transformer/config.json"));
    CHECK_OK(path_join(out, sizeof out, "../..", ""));
    CHECK(!strcmp(out, "../../"));
}

static void test_in_place(void)
{
    char out[32] = "cases/dit";
    CHECK_OK(path_join(out, sizeof out, out, "inputs.safetensors"));
    CHECK(!strcmp(out, "cases/dit/inputs.safetensors"));
}

/* "ab/cd" needs 6 bytes: 6 fits, 5 fails with "" and the folder named. */
static void test_limits(void)
{
    char out[8];
    CHECK_OK(path_join(out, 6, "ab", "cd"));
    CHECK(!strcmp(out, "ab/cd"));
    memcpy(out, "xxxxxxx", 8);
    CHECK_FAILS(path_join(out, 5, "ab", "cd"), CANVAS_ERR_INPUT, "ab: path too long (adding cd)");
    CHECK(out[0] == '\0');
    CHECK_OK(path_join(out, 6, "ab/", "cd")); /* no second slash to make room for */
    CHECK(!strcmp(out, "ab/cd"));
    memcpy(out, "xxxxxxx", 8);
    CHECK_FAILS(path_join(out, 4, "abcd", ""), CANVAS_ERR_INPUT, "path too long");
    CHECK(out[0] == '\0');
    CHECK_FAILS(path_join(out, 3, "", "abc"), CANVAS_ERR_INPUT, "path too long");
    CHECK(out[0] == '\0');
    out[0] = 'x';
    CHECK_FAILS(path_join(out, 0, "", ""), CANVAS_ERR_INPUT, "path too long");
    CHECK(out[0] == 'x'); /* size 0: nothing written */
}

/* A name longer than the buffer, so that dir + name would wrap a naive sum check. */
static void test_long(void)
{
    static char name[PATH_BUFFER_SIZE + 10];
    memset(name, 'n', sizeof name - 1);
    char out[PATH_BUFFER_SIZE];
    CHECK_FAILS(path_join(out, sizeof out, "dir", name), CANVAS_ERR_INPUT, "dir: path too long");
    CHECK(out[0] == '\0');
    name[PATH_BUFFER_SIZE - 5] = '\0'; /* "dir/" + 4091 + NUL = 4096 */
    CHECK_OK(path_join(out, sizeof out, "dir", name));
    CHECK(strlen(out) == PATH_BUFFER_SIZE - 1);
    CHECK(!strncmp(out, "dir/nnn", 7));
}

int main(void)
{
    RUN(test_joins);
    RUN(test_in_place);
    RUN(test_limits);
    RUN(test_long);
    return check_summary();
}
