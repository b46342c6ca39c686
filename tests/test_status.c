/* SPDX-License-Identifier: Apache-2.0 */
/* test_status.c — status codes, exit codes and the error text. */
#include "base/status.h"
#include "check.h"
#include "mem/mem.h"

static void test_exit_codes(void)
{
    CHECK(canvas_exit_code(CANVAS_OK) == 0);
    CHECK(canvas_exit_code(CANVAS_ERR_USAGE) == 2);
    CHECK(canvas_exit_code(CANVAS_ERR_OUT_OF_MEMORY) == 3);
    CHECK(canvas_exit_code(CANVAS_ERR_INPUT) == 4);
    CHECK(canvas_exit_code(CANVAS_ERR_IO) == 1);
    CHECK(canvas_exit_code(CANVAS_ERR_INTERNAL) == 1);
    CHECK(canvas_exit_code(CANVAS_ERR_CANCELLED) == 130);
    CHECK(!strcmp(canvas_status_name(CANVAS_ERR_CANCELLED), "cancelled"));
}

static void test_error_text(void)
{
    CHECK(status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' missing", "a.safetensors", "w") == CANVAS_ERR_INPUT);
    CHECK(strcmp(canvas_last_error(), "a.safetensors: tensor 'w' missing") == 0);
    CHECK(status_wrap(CANVAS_ERR_INPUT, "loading %s: ", "vae") == CANVAS_ERR_INPUT);
    CHECK(strcmp(canvas_last_error(), "loading vae: a.safetensors: tensor 'w' missing") == 0);
    status_clear();
    CHECK(canvas_last_error()[0] == '\0');
}

static void test_allocator_accounting(void)
{
    mem_class_stats before, during, after;
    mem_get_stats(MEM_ACTIVATIONS, &before);
    void *a, *b;
    CHECK_OK(mem_alloc(&a, 1000, MEM_ACTIVATIONS));
    CHECK_OK(mem_calloc(&b, 10, 30, MEM_ACTIVATIONS));
    CHECK(((uintptr_t)a % MEM_ALIGNMENT) == 0 && ((uintptr_t)b % MEM_ALIGNMENT) == 0);
    CHECK(((unsigned char *)b)[299] == 0);
    mem_get_stats(MEM_ACTIVATIONS, &during);
    CHECK(during.current_bytes == before.current_bytes + 1300);
    CHECK(during.live_blocks == before.live_blocks + 2);
    CHECK(during.peak_bytes >= during.current_bytes);
    CHECK_OK(mem_realloc(&a, 4000, MEM_ACTIVATIONS));
    mem_free(a);
    mem_free(b);
    mem_get_stats(MEM_ACTIVATIONS, &after);
    CHECK(after.current_bytes == before.current_bytes);
    CHECK(after.peak_bytes >= before.current_bytes + 4300);
    void *huge;
    CHECK_FAILS(mem_calloc(&huge, SIZE_MAX / 2, 4, MEM_SCRATCH), CANVAS_ERR_OUT_OF_MEMORY, "scratch");
    CHECK(huge == NULL);
}

static void test_fault_injection(void)
{
    mem_fault_plan plan;
    CHECK_OK(mem_fault_parse("3", &plan));
    CHECK(plan.nth == 3 && !plan.persistent && plan.only_class == -1);
    CHECK_OK(mem_fault_parse("2+:weights", &plan));
    CHECK(plan.nth == 2 && plan.persistent && plan.only_class == MEM_WEIGHTS);
    CHECK_FAILS(mem_fault_parse("0", &plan), CANVAS_ERR_USAGE, "CANVAS_FAIL_ALLOC");
    CHECK_FAILS(mem_fault_parse("4:bogus", &plan), CANVAS_ERR_USAGE, "bogus");
    CHECK_FAILS(mem_fault_parse("x", &plan), CANVAS_ERR_USAGE, "CANVAS_FAIL_ALLOC");

    /* Transient: only the 3rd allocation fails. */
    void *blocks[6] = {0};
    mem_fault_arm(&(mem_fault_plan){3, 0, -1});
    int failed_at = -1, failures = 0;
    for (int i = 0; i < 6; i++) {
        if (mem_alloc(&blocks[i], 16, MEM_SCRATCH) != CANVAS_OK) {
            failures++;
            failed_at = i + 1;
            CHECK(strstr(canvas_last_error(), "injected") != NULL);
        }
    }
    CHECK(failures == 1 && failed_at == 3 && mem_fault_hits() == 1);
    for (int i = 0; i < 6; i++) mem_free(blocks[i]);

    /* Persistent and filtered: scratch allocations pass, the 2nd weights one and later fail. */
    mem_fault_arm(&(mem_fault_plan){2, 1, MEM_WEIGHTS});
    void *w1, *w2, *w3, *s1;
    CHECK_OK(mem_alloc(&w1, 8, MEM_WEIGHTS));
    CHECK_OK(mem_alloc(&s1, 8, MEM_SCRATCH));
    CHECK(mem_alloc(&w2, 8, MEM_WEIGHTS) == CANVAS_ERR_OUT_OF_MEMORY && w2 == NULL);
    CHECK(mem_alloc(&w3, 8, MEM_WEIGHTS) == CANVAS_ERR_OUT_OF_MEMORY && w3 == NULL);
    CHECK(mem_fault_hits() == 2);
    mem_fault_disarm();
    CHECK_OK(mem_alloc(&w2, 8, MEM_WEIGHTS));
    mem_free(w1);
    mem_free(w2);
    mem_free(s1);
}

int main(void)
{
    RUN(test_exit_codes);
    RUN(test_error_text);
    RUN(test_allocator_accounting);
    RUN(test_fault_injection);
    return check_summary();
}
