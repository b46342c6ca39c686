/* SPDX-License-Identifier: Apache-2.0 */
/* cublaslt_lazy.c — dlopen of cuBLASLt at the first CUDA backend (cublaslt_lazy.h). */
#include "ops/cuda/cublaslt_lazy.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "base/status.h"

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
/* the major version the headers are of: the library's ABI */
#define CUBLASLT_SONAME "libcublasLt.so." STRINGIFY(CUBLAS_VER_MAJOR)

static cublaslt_api api;
static char failure[256]; /* "" once loaded */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
    void *lib = dlopen(CUBLASLT_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(failure, sizeof failure, "cannot load %s: %s", CUBLASLT_SONAME, dlerror());
        return;
    }
    /* dlsym returns void *; POSIX guarantees it converts to a function pointer. */
#define CUBLASLT_RESOLVE(ret, name, params)                                                                       \
    *(void **)&api.name = dlsym(lib, "cublasLt" #name);                                                           \
    if (!api.name) {                                                                                              \
        snprintf(failure, sizeof failure, "%s has no cublasLt" #name, CUBLASLT_SONAME);                           \
        return;                                                                                                   \
    }
    CUBLASLT_FUNCTIONS(CUBLASLT_RESOLVE)
#undef CUBLASLT_RESOLVE
    /* the library stays loaded for the process's life: handles made from it may outlive any backend */
}

canvas_status cublaslt_load(const cublaslt_api **out)
{
    *out = NULL;
    pthread_once(&once, load);
    if (failure[0]) return status_fail(CANVAS_ERR_UNSUPPORTED, "cuda: %s", failure);
    *out = &api;
    return CANVAS_OK;
}
