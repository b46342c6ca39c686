/* SPDX-License-Identifier: Apache-2.0 */
/* mem_device_cuda.c — a CUDA GPU behind the device interface (mem_device_impl.h), built with
 * -DCANVAS_CUDA=ON (docs/cuda.md).
 *
 * Memory: one cudaMalloc'ed region, taken at creation, carved by mem_device_pool.h (first fit,
 * exact accounting, the cap, one fault-injection point per block). One region rather than a
 * cudaMalloc per block: cudaMalloc synchronises the device and its cost varies, while the
 * pool's placement is the one the planner's dry runs predict (they run the same allocator).
 *
 * Copies: on the device's own copy stream. Host memory is pageable in general, and a copy
 * from pageable memory is neither asynchronous nor at full PCIe speed, so bytes go through a
 * ring of STAGING_SLOTS pinned buffers: the host memcpy fills a slot, cudaMemcpyAsync moves it,
 * and an event recorded after that copy says when the slot may be filled again.
 *
 * The rule for reusing a buffer: a staging slot is written only after cudaEventSynchronize on
 * the event recorded after the last copy that read it (never because the host loop moved on:
 * freeing or refilling a buffer when the copy was merely queued is the corruption ComfyUI's
 * async offload had). A device block handed back to the pool may be reused at once by the
 * next allocation: every copy into the device is waited for before mem_copy returns
 * (mem_transfer.c calls wait right after the copy), and the CUDA ops synchronise their stream
 * before returning (ops/cuda), so no queued work still reads a freed block.
 *
 * Pinned memory stays small: slots are host allocations (mem_alloc, MEM_STAGING: counted and
 * fault-injected like every other) pinned with cudaHostRegister, STAGING_SLOTS x at most
 * 64 MiB and never more than 1/16 of MemAvailable in all, so the model is never pinned. */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/status.h"
#include "base/sysinfo.h"
#include "mem/mem_device_pool.h"
#include "mem/mem_fault.h"
#include "mem/mem_internal.h"

#define STAGING_SLOTS 2
#define STAGING_SLOT_MAX ((size_t)64 << 20)
#define STAGING_SLOT_MIN ((size_t)1 << 20)

typedef struct staging_slot {
    void *host;          /* pinned (cudaHostRegister'ed) host memory */
    cudaEvent_t done;    /* recorded after the last copy that read or wrote the slot */
    int used;            /* 1: `done` was recorded and must be waited for */
} staging_slot;

typedef struct cuda_device {
    mem_pool pool; /* first: a cuda_device is a mem_pool, so a mem_device */
    cudaStream_t copy_stream;
    pthread_mutex_t staging_lock; /* one copy at a time through the ring */
    staging_slot slots[STAGING_SLOTS];
    size_t slot_bytes;
    int next_slot;
} cuda_device;

/* A CUDA error as a status naming the device and what was being done. */
static canvas_status cuda_fail(cudaError_t err, const char *device, const char *what)
{
    canvas_status status = err == cudaErrorMemoryAllocation ? CANVAS_ERR_OUT_OF_MEMORY : CANVAS_ERR_IO;
    return status_fail(status, "device '%s': %s: CUDA error %d (%s)", device, what, (int)err, cudaGetErrorString(err));
}

void mem_cuda_query(mem_cuda_info *out)
{
    memset(out, 0, sizeof *out);
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count <= 0) {
        /* no driver (cudaErrorInsufficientDriver), no GPU (cudaErrorNoDevice): no device */
        snprintf(out->reason, sizeof out->reason, "no CUDA device: %s",
                 err != cudaSuccess ? cudaGetErrorString(err) : "the driver reports none");
        (void)cudaGetLastError(); /* the runtime keeps the error for the next call otherwise */
        return;
    }
    struct cudaDeviceProp prop;
    size_t free_bytes = 0, total_bytes = 0;
    if ((err = cudaSetDevice(0)) != cudaSuccess || (err = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess ||
        (err = cudaMemGetInfo(&free_bytes, &total_bytes)) != cudaSuccess) {
        snprintf(out->reason, sizeof out->reason, "CUDA device 0 is not usable: %s", cudaGetErrorString(err));
        (void)cudaGetLastError();
        return;
    }
    out->devices = count;
    size_t len = strnlen(prop.name, sizeof prop.name); /* cut to our field, always terminated */
    if (len >= sizeof out->name) len = sizeof out->name - 1;
    memcpy(out->name, prop.name, len);
    out->compute_capability = prop.major * 10 + prop.minor;
    out->total_bytes = total_bytes;
    out->free_bytes = free_bytes;
}

/* The best rate of LINK_REPEATS synchronous copies of `bytes` from src to dst. */
#define LINK_REPEATS 3
static cudaError_t best_rate(void *dst, const void *src, size_t bytes, double *out)
{
    *out = 0;
    for (int r = 0; r < LINK_REPEATS; r++) {
        double t0 = clock_seconds();
        cudaError_t err = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
        double t = clock_seconds() - t0;
        if (err != cudaSuccess) return err;
        if (t > 0 && bytes / t > *out) *out = bytes / t;
    }
    return cudaSuccess;
}

canvas_status mem_cuda_measure_link(double *pinned, double *pageable)
{
    const size_t bytes = (size_t)64 << 20;
    *pinned = *pageable = 0;
    mem_cuda_info info;
    mem_cuda_query(&info);
    if (!info.devices) return status_fail(CANVAS_ERR_UNSUPPORTED, "measuring the CUDA link: %s", info.reason);
    void *host = NULL, *dev = NULL;
    TRY(mem_alloc_aligned(&host, bytes, 4096, MEM_STAGING));
    memset(host, 1, bytes);
    int registered = 0;
    cudaError_t err = cudaMalloc(&dev, bytes);
    if (err == cudaSuccess) err = best_rate(dev, host, bytes, pageable);
    if (err == cudaSuccess && (err = cudaHostRegister(host, bytes, cudaHostRegisterDefault)) == cudaSuccess) registered = 1;
    if (err == cudaSuccess) err = best_rate(dev, host, bytes, pinned);
    if (registered) cudaHostUnregister(host);
    if (dev) cudaFree(dev);
    mem_free(host);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return cuda_fail(err, "cuda", "measuring the host-to-device link");
    }
    return CANVAS_OK;
}

/* ---- the staging ring --------------------------------------------------------------- */

static void staging_release(cuda_device *d)
{
    for (int i = 0; i < STAGING_SLOTS; i++) {
        staging_slot *s = &d->slots[i];
        if (s->done) {
            if (s->used) cudaEventSynchronize(s->done); /* never unpin under a queued copy */
            cudaEventDestroy(s->done);
        }
        if (s->host) {
            cudaHostUnregister(s->host);
            mem_free(s->host);
        }
        memset(s, 0, sizeof *s);
    }
}

static canvas_status staging_create(cuda_device *d)
{
    const char *name = d->pool.device.name;
    uint64_t available = 0;
    if (sysinfo_mem_available(&available) != CANVAS_OK) {
        status_clear();
        available = (uint64_t)STAGING_SLOT_MIN * 16 * STAGING_SLOTS;
    }
    uint64_t share = available / 16 / STAGING_SLOTS;
    size_t slot = share > STAGING_SLOT_MAX ? STAGING_SLOT_MAX : (size_t)share;
    slot = slot < STAGING_SLOT_MIN ? STAGING_SLOT_MIN : slot & ~(STAGING_SLOT_MIN - 1);
    d->slot_bytes = slot;
    for (int i = 0; i < STAGING_SLOTS; i++) {
        staging_slot *s = &d->slots[i];
        canvas_status st = mem_alloc_aligned(&s->host, slot, 4096, MEM_STAGING);
        if (st != CANVAS_OK) return status_wrap(st, "device '%s': pinned staging: ", name);
        cudaError_t err = cudaHostRegister(s->host, slot, cudaHostRegisterDefault);
        if (err != cudaSuccess) {
            mem_free(s->host);
            s->host = NULL;
            return cuda_fail(err, name, "pinning a staging buffer (cudaHostRegister)");
        }
        if ((err = cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming)) != cudaSuccess)
            return cuda_fail(err, name, "creating a staging event");
    }
    return CANVAS_OK;
}

/* The next slot, once the copy that last used it has finished (the reuse rule above). */
static canvas_status staging_take(cuda_device *d, staging_slot **out)
{
    staging_slot *s = &d->slots[d->next_slot];
    d->next_slot = (d->next_slot + 1) % STAGING_SLOTS;
    if (s->used) {
        cudaError_t err = cudaEventSynchronize(s->done);
        s->used = 0;
        if (err != cudaSuccess) return cuda_fail(err, d->pool.device.name, "waiting for a staging copy");
    }
    *out = s;
    return CANVAS_OK;
}

/* ---- the ops table ---------------------------------------------------------------- */

/* One copy between host and device memory through the ring, a slot-sized chunk at a time.
 * To the device: the host memcpy fills a slot and its cudaMemcpyAsync is queued, so the next
 * chunk's memcpy overlaps this chunk's transfer; the slot's event guards its refill. To the
 * host: each chunk is waited for before the memcpy out of its slot, so the copy is complete
 * when this returns. */
static canvas_status staged_copy(cuda_device *d, void *dst, const void *src, size_t bytes, int to_device)
{
    canvas_status st = CANVAS_OK;
    pthread_mutex_lock(&d->staging_lock);
    for (size_t done = 0; done < bytes && st == CANVAS_OK;) {
        size_t n = bytes - done < d->slot_bytes ? bytes - done : d->slot_bytes;
        char *to = (char *)dst + done;
        const char *from = (const char *)src + done;
        staging_slot *s = NULL;
        st = staging_take(d, &s);
        if (st != CANVAS_OK) break;
        if (to_device) memcpy(s->host, from, n);
        cudaError_t err = to_device ? cudaMemcpyAsync(to, s->host, n, cudaMemcpyHostToDevice, d->copy_stream)
                                    : cudaMemcpyAsync(s->host, from, n, cudaMemcpyDeviceToHost, d->copy_stream);
        if (err == cudaSuccess) err = cudaEventRecord(s->done, d->copy_stream);
        if (err == cudaSuccess && !to_device) err = cudaEventSynchronize(s->done);
        if (err != cudaSuccess) {
            st = cuda_fail(err, d->pool.device.name, to_device ? "copying to the device (cudaMemcpyAsync)"
                                                                : "copying from the device (cudaMemcpyAsync)");
        } else if (to_device) {
            s->used = 1;
        } else {
            memcpy(to, s->host, n);
        }
        done += n;
    }
    pthread_mutex_unlock(&d->staging_lock);
    return st;
}

static canvas_status cuda_copy_to_device(mem_device *device, void *dst, const void *src, size_t bytes,
                                         mem_device_event *event)
{
    cuda_device *d = (cuda_device *)device;
    *event = 0;
    TRY(staged_copy(d, dst, src, bytes, 1));
    /* The copy's own event, recorded after its last chunk: the stream runs in order, so it
     * completes when every chunk has. wait() destroys it. */
    cudaEvent_t e;
    cudaError_t err = cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
    if (err == cudaSuccess && (err = cudaEventRecord(e, d->copy_stream)) != cudaSuccess) cudaEventDestroy(e);
    if (err != cudaSuccess) return cuda_fail(err, device->name, "recording a copy's event");
    *event = (mem_device_event)(uintptr_t)e;
    return CANVAS_OK;
}

/* Device to host: complete when it returns (event 0). */
static canvas_status cuda_copy_to_host(mem_device *device, void *dst, const void *src, size_t bytes,
                                       mem_device_event *event)
{
    *event = 0;
    return staged_copy((cuda_device *)device, dst, src, bytes, 0);
}

static canvas_status cuda_wait(mem_device *device, mem_device_event event)
{
    if (!event) return CANVAS_OK;
    cudaEvent_t e = (cudaEvent_t)(uintptr_t)event;
    cudaError_t err = cudaEventSynchronize(e);
    cudaEventDestroy(e);
    return err == cudaSuccess ? CANVAS_OK : cuda_fail(err, device->name, "waiting for a copy");
}

static void cuda_destroy(mem_device *device)
{
    cuda_device *d = (cuda_device *)device;
    staging_release(d);
    if (d->copy_stream) {
        cudaStreamSynchronize(d->copy_stream);
        cudaStreamDestroy(d->copy_stream);
    }
    pthread_mutex_destroy(&d->staging_lock);
    mem_pool_finish(&d->pool);
    cudaFree(d->pool.base);
    mem_free(d);
}

static const mem_device_ops cuda_ops = {
    .flags = MEM_DEVICE_HOLDS_DATA,
    .alloc_block = mem_pool_alloc,
    .free_block = mem_pool_free,
    .holds = mem_pool_holds,
    .get_stats = mem_pool_get_stats,
    .reset_peaks = mem_pool_reset_peaks,
    .set_cap = mem_pool_set_cap,
    .copy_to_device = cuda_copy_to_device,
    .copy_to_host = cuda_copy_to_host,
    .wait = cuda_wait,
    .destroy = cuda_destroy,
};

int mem_device_is_cuda(const mem_device *device) { return device && device->ops == &cuda_ops; }

canvas_status mem_device_create_cuda(const char *name, size_t cap, size_t headroom, mem_device **out)
{
    *out = NULL;
    name = name && *name ? name : "cuda";
    mem_cuda_info info;
    mem_cuda_query(&info);
    if (!info.devices) return status_fail(CANVAS_ERR_UNSUPPORTED, "device '%s': %s", name, info.reason);
    size_t usable = info.free_bytes > headroom ? (size_t)(info.free_bytes - headroom) : 0;
    if (usable == 0 || cap > usable)
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY,
                           "device '%s': %zu bytes asked, but %s has %llu bytes free and %zu are kept as headroom",
                           name, cap, info.name, (unsigned long long)info.free_bytes, headroom);
    size_t region = cap ? cap : usable;
    /* whole MiB: cudaMalloc's granularity, and what the pool's granules divide */
    region &= ~(((size_t)1 << 20) - 1);
    if (region == 0) return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "device '%s': under 1 MiB usable", name);

    if (mem_fault_should_fail(MEM_WEIGHTS))
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory on %s: its region of %zu bytes (injected)", name,
                           region);
    cuda_device *d;
    TRY(mem_calloc((void **)&d, 1, sizeof *d, MEM_SCRATCH));
    pthread_mutex_init(&d->staging_lock, NULL);
    void *base = NULL;
    cudaError_t err = cudaMalloc(&base, region);
    if (err != cudaSuccess) {
        pthread_mutex_destroy(&d->staging_lock);
        mem_free(d);
        (void)cudaGetLastError();
        return cuda_fail(err, name, "allocating its region (cudaMalloc)");
    }
    canvas_status st = mem_pool_init(&d->pool, &cuda_ops, name, "cuda", base, region, cap ? cap : region);
    if (st != CANVAS_OK) {
        cudaFree(base);
        pthread_mutex_destroy(&d->staging_lock);
        mem_free(d);
        return st;
    }
    err = cudaStreamCreateWithFlags(&d->copy_stream, cudaStreamNonBlocking);
    if (err != cudaSuccess) {
        d->copy_stream = NULL;
        st = cuda_fail(err, name, "creating the copy stream");
    }
    if (st == CANVAS_OK) st = staging_create(d);
    if (st != CANVAS_OK) {
        cuda_destroy(&d->pool.device);
        return st;
    }
    *out = &d->pool.device;
    return CANVAS_OK;
}
