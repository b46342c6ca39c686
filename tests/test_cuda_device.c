/* SPDX-License-Identifier: Apache-2.0 */
/* test_cuda_device.c — what every build answers about CUDA, checked wherever the tests run:
 * without a CUDA device (no GPU, no driver, or a build without CUDA) the query says none and
 * why, creating a CUDA device fails with that reason, --device cuda is refused (never a CPU
 * run), auto and cpu pick the CPU, and the hardware probe reports no CUDA. With a device (a
 * CUDA build on a GPU machine: tools/device-check.sh) the query's figures are checked and a
 * small device is created, used through mem_copy and destroyed without a leak. A CUDA build
 * also loads cuBLASLt (no GPU needed for that) and finds every function its backend calls. */
#include "check.h"
#include "mem/mem_device.h"
#include "mem/mem_transfer.h"
#include "plan/plan.h"
#ifdef CANVAS_HAVE_CUDA
#include "ops/cuda/cublaslt_lazy.h"

/* cuBLASLt is loaded on demand (no GPU needed for that): every function the backend calls is
 * found, and the library answers. */
static void test_cublaslt_load(void)
{
    const cublaslt_api *lt = NULL, *again = NULL;
    CHECK_OK(cublaslt_load(&lt));
    CHECK_OK(cublaslt_load(&again));
    CHECK(lt && lt == again);
    if (!lt) return;
    CHECK(lt->Create && lt->Matmul && lt->MatmulAlgoGetHeuristic && lt->GetStatusString);
    CHECK(!strcmp(lt->GetStatusName(CUBLAS_STATUS_SUCCESS), "CUBLAS_STATUS_SUCCESS"));
    CHECK(!strcmp(lt->GetStatusName(CUBLAS_STATUS_NOT_SUPPORTED), "CUBLAS_STATUS_NOT_SUPPORTED"));
}
#endif

static void test_choice_names(void)
{
    mem_device_choice c;
    CHECK_OK(mem_device_choice_parse(NULL, &c));
    CHECK(c == MEM_DEVICE_CHOICE_AUTO);
    CHECK_OK(mem_device_choice_parse("cpu", &c));
    CHECK(c == MEM_DEVICE_CHOICE_CPU && !strcmp(mem_device_choice_name(c), "cpu"));
    CHECK_OK(mem_device_choice_parse("cuda", &c));
    CHECK(c == MEM_DEVICE_CHOICE_CUDA && !strcmp(mem_device_choice_name(c), "cuda"));
    CHECK_OK(mem_device_choice_parse("auto", &c));
    CHECK(c == MEM_DEVICE_CHOICE_AUTO && !strcmp(mem_device_choice_name(c), "auto"));
    CHECK_FAILS(mem_device_choice_parse("gpu", &c), CANVAS_ERR_USAGE, "device 'gpu': give cuda, cpu or auto");
    CHECK_FAILS(mem_device_choice_parse("CUDA", &c), CANVAS_ERR_USAGE, "give cuda, cpu or auto");
}

static mem_cuda_info found;

static void test_absent(void)
{
    const mem_cuda_info *info = &found;
    CHECK(info->devices == 0 && info->total_bytes == 0 && info->compute_capability == 0);
    CHECK_MSG(!strncmp(info->reason, "no CUDA device: ", 16) || strstr(info->reason, "this build has no CUDA"),
              "reason '%s'", info->reason);
#ifdef CANVAS_HAVE_CUDA
    CHECK(strstr(info->reason, "this build has no CUDA") == NULL);
#else
    CHECK(strstr(info->reason, "this build has no CUDA") != NULL);
#endif
    mem_device *d = (mem_device *)1;
    CHECK_FAILS(mem_device_create_cuda(NULL, 0, 0, &d), CANVAS_ERR_UNSUPPORTED, info->reason);
    CHECK(d == NULL);
    CHECK(strstr(canvas_last_error(), "device 'cuda'") != NULL);
    double pinned = 1, pageable = 1;
    CHECK_FAILS(mem_cuda_measure_link(&pinned, &pageable), CANVAS_ERR_UNSUPPORTED, "measuring the CUDA link");
    CHECK(pinned == 0 && pageable == 0);

    int use_cuda = 1;
    CHECK_FAILS(mem_device_choose(MEM_DEVICE_CHOICE_CUDA, &use_cuda), CANVAS_ERR_UNSUPPORTED, info->reason);
    CHECK(strncmp(canvas_last_error(), "--device cuda: ", 15) == 0);
    CHECK_OK(mem_device_choose(MEM_DEVICE_CHOICE_AUTO, &use_cuda));
    CHECK(use_cuda == 0);
    CHECK_OK(mem_device_choose(MEM_DEVICE_CHOICE_CPU, &use_cuda));
    CHECK(use_cuda == 0);

    plan_hardware hw;
    CHECK_OK(plan_probe(1, 0, 2, &hw));
    CHECK(hw.cuda == 0 && hw.cuda_fp8 == 0 && hw.cuda_total_bytes == 0 && hw.cuda_link_pinned == 0);
    CHECK(!strcmp(hw.cuda_reason, info->reason));
    CHECK(hw.link_bytes_per_second > 0 && strstr(hw.link_source, "CUDA") == NULL);
}

static void test_present(void)
{
    const mem_cuda_info *info = &found;
    CHECK(info->compute_capability >= 50 && info->total_bytes > 0 && info->free_bytes <= info->total_bytes);
    CHECK(info->name[0] != '\0' && info->reason[0] == '\0');
    mem_device *d = NULL;
    CHECK_OK(mem_device_create_cuda(NULL, (size_t)64 << 20, 0, &d));
    if (!d) return;
    CHECK(mem_device_is_cuda(d) && !mem_device_is_cuda(mem_device_cpu()));
    CHECK(mem_device_flags(d) == MEM_DEVICE_HOLDS_DATA);
    void *block = NULL;
    char in[1000], out[1000];
    for (int i = 0; i < 1000; i++) in[i] = (char)(i * 7), out[i] = 0;
    CHECK_OK(mem_device_alloc(d, MEM_ACTIVATIONS, sizeof in, 0, &block));
    CHECK_OK(mem_copy(d, block, mem_device_cpu(), in, sizeof in));
    CHECK_OK(mem_copy(mem_device_cpu(), out, d, block, sizeof out));
    CHECK(memcmp(in, out, sizeof in) == 0);
    CHECK_FAILS(mem_device_alloc(d, MEM_ACTIVATIONS, (size_t)65 << 20, 0, &block), CANVAS_ERR_OUT_OF_MEMORY, "cuda");
    mem_device_free(d, block);
    CHECK(mem_device_live_blocks(d) == 0);
    mem_device_destroy(d);
    int use_cuda = 0;
    CHECK_OK(mem_device_choose(MEM_DEVICE_CHOICE_CUDA, &use_cuda));
    CHECK(use_cuda == 1);
    use_cuda = 0;
    CHECK_OK(mem_device_choose(MEM_DEVICE_CHOICE_AUTO, &use_cuda));
    CHECK(use_cuda == 1);
    CHECK_OK(mem_device_choose(MEM_DEVICE_CHOICE_CPU, &use_cuda));
    CHECK(use_cuda == 0);
    plan_hardware hw;
    CHECK_OK(plan_probe(1, 0, 0, &hw));
    CHECK(hw.cuda == info->devices && hw.cuda_compute_capability == info->compute_capability);
    CHECK(hw.cuda_fp8 == (info->compute_capability >= 89));
    CHECK(hw.cuda_link_pinned > 1e9 && hw.cuda_link_pageable > 1e8);
    CHECK(hw.link_bytes_per_second == hw.cuda_link_pinned);
}

int main(void)
{
    RUN(test_choice_names);
#ifdef CANVAS_HAVE_CUDA
    RUN(test_cublaslt_load);
#endif
    mem_cuda_query(&found);
    printf("CUDA: %s\n", found.devices ? found.name : found.reason);
    if (found.devices) RUN(test_present);
    else RUN(test_absent);
    CHECK(!mem_device_is_cuda(mem_device_cpu()) && !mem_device_is_cuda(NULL));
    return check_summary();
}
