/* SPDX-License-Identifier: Apache-2.0 */
/* probe_device.h — the "probe" device, written only for tests, through the interface of
 * mem/mem_device_impl.h (test_device_interface.c shows what it proves; test_relay_backend.c
 * computes on it through tests/relay_backend.h). Everything here is static, for one test
 * program each.
 *
 * The probe device is a mem_pool (mem_device_pool.h) with its own copy functions. Its copies
 * are asynchronous: copy_to_device / copy_to_host only queue the copy and return an event,
 * and the bytes move in wait(), so a caller that used the data before waiting would see it
 * missing. It counts copies and bytes in each direction and sums a hash of every copy into
 * the device (order-free), so two runs can be shown to deliver the same bytes. Two modes:
 *
 *   open     (probe_create(0, ...)) its blocks are a read/write region
 *            (MEM_DEVICE_HOST_ADDRESSABLE): the CPU kernels compute in it, like on the
 *            capped pool.
 *   sealed   (probe_create(1, ...)) its blocks are addresses of a PROT_NONE reservation
 *            (touching one faults); the bytes live in a separate store, XOR-ed with a key,
 *            and only its copy functions reach them (flags: MEM_DEVICE_HOLDS_DATA only, as a
 *            GPU's would be). */
#ifndef CANVAS_TESTS_PROBE_DEVICE_H
#define CANVAS_TESTS_PROBE_DEVICE_H

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "mem/mem_device_pool.h"

#define PROBE_PENDING 64

typedef struct probe_copy {
    int to_device;
    void *dst;
    const void *src;
    size_t bytes;
} probe_copy;

typedef struct probe_counts {
    uint64_t copies_in, copies_out, bytes_in, bytes_out;
    uint64_t hash_in; /* sum over copies into the device of the FNV-1a hash of their bytes */
} probe_counts;

typedef struct probe_device {
    mem_pool pool; /* first: a probe_device is a mem_pool, hence a mem_device */
    unsigned char *store; /* sealed: the bytes of the region, XOR-ed; open: NULL */
    pthread_mutex_t lock;
    probe_copy pending[PROBE_PENDING]; /* queued copies, events [done + 1, issued] */
    uint64_t issued, done;
    probe_counts counts;
} probe_device;

static inline uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static inline unsigned char key_at(size_t offset) { return (unsigned char)(0xa5u ^ (offset * 131u)); }

/* Move the bytes of one queued copy (the lock is held). */
static inline void perform(probe_device *d, const probe_copy *c)
{
    if (!d->store) {
        memcpy(c->dst, c->src, c->bytes);
        return;
    }
    if (c->to_device) {
        size_t at = (size_t)((const char *)c->dst - d->pool.base);
        const unsigned char *s = c->src;
        for (size_t i = 0; i < c->bytes; i++) d->store[at + i] = s[i] ^ key_at(at + i);
    } else {
        size_t at = (size_t)((const char *)c->src - d->pool.base);
        unsigned char *o = c->dst;
        for (size_t i = 0; i < c->bytes; i++) o[i] = d->store[at + i] ^ key_at(at + i);
    }
}

/* Perform the queued copies up to `event` in order (the lock is held). */
static inline void drain(probe_device *d, uint64_t event)
{
    while (d->done < event && d->done < d->issued) {
        perform(d, &d->pending[d->done % PROBE_PENDING]);
        d->done++;
    }
}

static inline canvas_status probe_queue(mem_device *device, int to_device, void *dst, const void *src, size_t bytes,
                                 mem_device_event *event)
{
    probe_device *d = (probe_device *)device;
    pthread_mutex_lock(&d->lock);
    if (d->issued - d->done == PROBE_PENDING) drain(d, d->done + 1);
    d->pending[d->issued % PROBE_PENDING] = (probe_copy){to_device, dst, src, bytes};
    *event = ++d->issued;
    if (to_device) {
        d->counts.copies_in++;
        d->counts.bytes_in += bytes;
        d->counts.hash_in += fnv1a(src, bytes);
    } else {
        d->counts.copies_out++;
        d->counts.bytes_out += bytes;
    }
    pthread_mutex_unlock(&d->lock);
    return CANVAS_OK;
}

static inline canvas_status probe_to_device(mem_device *device, void *dst, const void *src, size_t bytes,
                                     mem_device_event *event)
{
    return probe_queue(device, 1, dst, src, bytes, event);
}

static inline canvas_status probe_to_host(mem_device *device, void *dst, const void *src, size_t bytes,
                                   mem_device_event *event)
{
    return probe_queue(device, 0, dst, src, bytes, event);
}

static inline canvas_status probe_wait(mem_device *device, mem_device_event event)
{
    probe_device *d = (probe_device *)device;
    pthread_mutex_lock(&d->lock);
    drain(d, event);
    pthread_mutex_unlock(&d->lock);
    return CANVAS_OK;
}

static inline void probe_destroy(mem_device *device)
{
    probe_device *d = (probe_device *)device;
    mem_free(d->store);
    pthread_mutex_destroy(&d->lock);
    mem_pool_destroy_mapped(device);
}

#define PROBE_OPS(flag_bits)                                                                      \
    {                                                                                             \
        .flags = (flag_bits), .alloc_block = mem_pool_alloc, .free_block = mem_pool_free,         \
        .holds = mem_pool_holds, .get_stats = mem_pool_get_stats, .reset_peaks = mem_pool_reset_peaks, \
        .set_cap = mem_pool_set_cap, .copy_to_device = probe_to_device, .copy_to_host = probe_to_host, \
        .wait = probe_wait, .destroy = probe_destroy,                                             \
    }

static inline canvas_status probe_create(int sealed, size_t cap, mem_device **out)
{
    static const mem_device_ops open_ops = PROBE_OPS(MEM_DEVICE_HOST_ADDRESSABLE | MEM_DEVICE_HOLDS_DATA);
    static const mem_device_ops sealed_ops = PROBE_OPS(MEM_DEVICE_HOLDS_DATA);
    *out = NULL;
    mem_pool *p;
    TRY(mem_pool_create_mapped(sealed ? &sealed_ops : &open_ops, sealed ? "sealed" : "open", "probe", cap, !sealed,
                               sizeof(probe_device), &p));
    probe_device *d = (probe_device *)p;
    pthread_mutex_init(&d->lock, NULL);
    if (sealed) {
        canvas_status st = mem_calloc((void **)&d->store, 1, p->region_bytes, MEM_STAGING);
        if (st != CANVAS_OK) {
            probe_destroy(&p->device);
            return st;
        }
    }
    *out = &p->device;
    return CANVAS_OK;
}

static inline probe_counts probe_counts_of(mem_device *device)
{
    probe_device *d = (probe_device *)device;
    pthread_mutex_lock(&d->lock);
    probe_counts c = d->counts;
    pthread_mutex_unlock(&d->lock);
    return c;
}

#endif
