/* SPDX-License-Identifier: Apache-2.0 */
/* test_queue_payload.c — what the scale-out queue carries without Redis (src/server/queue.h):
 * the queue URL, a job's payload round trip (binary file parts with NUL bytes, text fields
 * handed back NUL-terminated), every truncation and a forged length refused, the pixels a
 * job asks for. Redis itself: tests/test_scaleout.sh. */
#include <string.h>

#include "check.h"
#include "mem/mem.h"
#include "server/queue.h"

static void test_url(void)
{
    queue_url u;
    CHECK_OK(queue_parse_url("redis://127.0.0.1:6379/edits", &u));
    CHECK(!strcmp(u.host, "127.0.0.1") && u.port == 6379 && !strcmp(u.name, "edits"));
    CHECK_OK(queue_parse_url("redis://queue.lan:1/a-b_c.d", &u));
    CHECK(!strcmp(u.host, "queue.lan") && u.port == 1 && !strcmp(u.name, "a-b_c.d"));
    CHECK_FAILS(queue_parse_url("http://127.0.0.1:6379/q", &u), CANVAS_ERR_USAGE, "redis://HOST:PORT/NAME");
    CHECK_FAILS(queue_parse_url("redis://127.0.0.1/q", &u), CANVAS_ERR_USAGE, "give redis://HOST:PORT/NAME");
    CHECK_FAILS(queue_parse_url("redis://:6379/q", &u), CANVAS_ERR_USAGE, "give redis://HOST:PORT/NAME");
    CHECK_FAILS(queue_parse_url("redis://h:0/q", &u), CANVAS_ERR_USAGE, "port must be 1 to 65535");
    CHECK_FAILS(queue_parse_url("redis://h:65536/q", &u), CANVAS_ERR_USAGE, "port must be 1 to 65535");
    CHECK_FAILS(queue_parse_url("redis://h:12x/q", &u), CANVAS_ERR_USAGE, "port must be 1 to 65535");
    CHECK_FAILS(queue_parse_url("redis://h: 6379/q", &u), CANVAS_ERR_USAGE, "port must be 1 to 65535");
    CHECK_FAILS(queue_parse_url("redis://h:+6379/q", &u), CANVAS_ERR_USAGE, "port must be 1 to 65535");
    CHECK_FAILS(queue_parse_url("redis://[::1]:6379/q", &u), CANVAS_ERR_USAGE, "an IPv6 address is not taken here");
    CHECK_FAILS(queue_parse_url("redis://h:1/", &u), CANVAS_ERR_USAGE, "NAME must be 1 to 127");
    CHECK_FAILS(queue_parse_url("redis://h:1/a b", &u), CANVAS_ERR_USAGE, "NAME takes letters");
    CHECK_FAILS(queue_parse_url("redis://h:1/a:b", &u), CANVAS_ERR_USAGE, "NAME takes letters");
    CHECK_FAILS(queue_parse_url(NULL, &u), CANVAS_ERR_USAGE, "redis://HOST:PORT/NAME");
}

static void test_round_trip(void)
{
    static const char png[] = {'\x89', 'P', 'N', 'G', '\0', '\r', '\n', '\0', 'x'};
    form f;
    memset(&f, 0, sizeof f);
    f.n = 3;
    snprintf(f.fields[0].name, sizeof f.fields[0].name, "image[]");
    snprintf(f.fields[0].filename, sizeof f.fields[0].filename, "cat.png");
    f.fields[0].data = png;
    f.fields[0].size = sizeof png;
    snprintf(f.fields[1].name, sizeof f.fields[1].name, "steps");
    f.fields[1].data = "12";
    f.fields[1].size = 2;
    snprintf(f.fields[2].name, sizeof f.fields[2].name, "negative_prompt");
    f.fields[2].data = "";
    f.fields[2].size = 0;
    uint8_t *payload = NULL;
    size_t size = 0;
    CHECK_OK(queue_payload_pack(&f, 1, &payload, &size));
    /* header 9, per field 2 + name + 2 + filename + 8 + value + 1 */
    CHECK(size == 9 + (2 + 7 + 2 + 7 + 8 + 9 + 1) + (2 + 5 + 2 + 8 + 2 + 1) + (2 + 15 + 2 + 8 + 0 + 1));
    form back;
    int edit = 0;
    CHECK_OK(queue_payload_unpack(payload, size, &back, &edit));
    CHECK(edit == 1 && back.n == 3);
    CHECK(!strcmp(back.fields[0].name, "image[]") && !strcmp(back.fields[0].filename, "cat.png"));
    CHECK(back.fields[0].size == sizeof png && !memcmp(back.fields[0].data, png, sizeof png));
    CHECK(!strcmp(back.fields[1].name, "steps") && !strcmp(back.fields[1].data, "12") && back.fields[1].size == 2);
    CHECK(back.fields[2].size == 0 && back.fields[2].data[0] == '\0' && back.fields[2].filename[0] == '\0');
    for (int kind = -1; kind <= 1; kind++) { /* generation, jobs, edit */
        uint8_t *p = NULL;
        size_t n = 0;
        CHECK_OK(queue_payload_pack(&f, kind, &p, &n));
        CHECK(queue_payload_unpack(p, n, &back, &edit) == CANVAS_OK && edit == kind);
        mem_free(p);
    }

    /* every truncation is refused, as is a byte too many */
    int refused = 0;
    for (size_t cut = 0; cut < size; cut++) refused += queue_payload_unpack(payload, cut, &back, &edit) == CANVAS_ERR_INPUT;
    CHECK_MSG(refused == (int)size, "%d of %zu truncations refused", refused, size);
    uint8_t *longer = NULL;
    CHECK_OK(mem_alloc((void **)&longer, size + 1, MEM_SCRATCH));
    memcpy(longer, payload, size);
    longer[size] = 0;
    CHECK_FAILS(queue_payload_unpack(longer, size + 1, &back, &edit), CANVAS_ERR_INPUT, "1 bytes after the last field");
    mem_free(longer);

    /* forged lengths: a value running past the end, a huge one, a missing NUL, too many fields */
    size_t value_length_at = 9 + 2 + 7 + 2 + 7;
    payload[value_length_at] = (uint8_t)(sizeof png + 1);
    CHECK_FAILS(queue_payload_unpack(payload, size, &back, &edit), CANVAS_ERR_INPUT, "field 'image[]' is cut short");
    payload[value_length_at + 7] = 0xff;
    CHECK_FAILS(queue_payload_unpack(payload, size, &back, &edit), CANVAS_ERR_INPUT, "field 'image[]' is cut short");
    payload[value_length_at + 7] = 0;
    payload[value_length_at] = (uint8_t)sizeof png;
    payload[value_length_at + 8 + sizeof png] = 'z';
    CHECK_FAILS(queue_payload_unpack(payload, size, &back, &edit), CANVAS_ERR_INPUT, "field 'image[]' is cut short");
    payload[value_length_at + 8 + sizeof png] = 0;
    CHECK_OK(queue_payload_unpack(payload, size, &back, &edit));
    payload[5] = FORM_MAX_FIELDS + 1;
    CHECK_FAILS(queue_payload_unpack(payload, size, &back, &edit), CANVAS_ERR_INPUT, "65 fields (at most 64)");
    payload[5] = 3;
    payload[4] = 7;
    CHECK_FAILS(queue_payload_unpack(payload, size, &back, &edit), CANVAS_ERR_INPUT, "unknown kind 7");
    payload[0] = 'X';
    CHECK_FAILS(queue_payload_unpack(payload, size, &back, &edit), CANVAS_ERR_INPUT, "not a canvas job");
    CHECK_FAILS(queue_payload_unpack((const uint8_t *)"garbage", 7, &back, &edit), CANVAS_ERR_INPUT, "not a canvas job");
    mem_free(payload);
}

static void test_pixels(void)
{
    job j;
    memset(&j, 0, sizeof j);
    canvas_edit_params_default(&j.params);
    CHECK(queue_job_pixels(&j) == j.params.vae_area);
    j.params.vae_area = 0;
    CHECK(queue_job_pixels(&j) == 1024 * 1024);
    j.params.vae_area = 4096;
    CHECK(queue_job_pixels(&j) == 4096);
    j.params.width = 640;
    j.params.height = 480;
    CHECK(queue_job_pixels(&j) == 640 * 480);
}

int main(void)
{
    RUN(test_url);
    RUN(test_round_trip);
    RUN(test_pixels);
    return check_summary();
}
