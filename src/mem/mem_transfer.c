/* SPDX-License-Identifier: Apache-2.0 */
/* mem_transfer.c — throttled copies and the copy thread. */
#include "mem/mem_transfer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/status.h"
#include "mem/mem_device_impl.h"
#include "mem/mem_internal.h"

static atomic_uint_fast64_t total_copies, total_bytes, total_measured_bytes;
static atomic_uint_fast64_t total_copy_ns, total_wait_ns;

void mem_transfer_get_stats(mem_transfer_stats *out)
{
    out->copies = atomic_load(&total_copies);
    out->bytes = atomic_load(&total_bytes);
    out->measured_bytes = atomic_load(&total_measured_bytes);
    out->copy_seconds = (double)atomic_load(&total_copy_ns) * 1e-9;
    out->wait_seconds = (double)atomic_load(&total_wait_ns) * 1e-9;
}

void mem_transfer_get_device_stats(const mem_device *device, mem_transfer_stats *out)
{
    mem_device *d = (mem_device *)device;
    out->copies = atomic_load(&d->copies);
    out->bytes = atomic_load(&d->moved_bytes);
    out->measured_bytes = atomic_load(&d->measured_bytes);
    out->copy_seconds = (double)atomic_load(&d->copy_ns) * 1e-9;
    out->wait_seconds = (double)atomic_load(&d->wait_ns) * 1e-9;
}

/* Add to a counter of the process and to the same counter of each end of a copy (once
 * when the two ends are one device). */
static void count(atomic_uint_fast64_t *process, atomic_uint_fast64_t *one_end, atomic_uint_fast64_t *other_end,
                  uint64_t n)
{
    atomic_fetch_add(process, n);
    atomic_fetch_add(one_end, n);
    if (other_end != one_end) atomic_fetch_add(other_end, n);
}

static int holds_data(const mem_device *device) { return (mem_device_flags(device) & MEM_DEVICE_HOLDS_DATA) != 0; }

static canvas_status check_copy(mem_device *dst_device, void *dst, mem_device *src_device, const void *src,
                                size_t bytes)
{
    if (bytes == 0) return CANVAS_OK;
    if (!dst || !src) return status_fail(CANVAS_ERR_INTERNAL, "mem_copy: NULL %s of %zu bytes", dst ? "source" : "destination", bytes);
    if (!dst_device->ops->holds(dst_device, dst, bytes))
        return status_fail(CANVAS_ERR_INTERNAL, "mem_copy: destination of %zu bytes is not inside device '%s'", bytes,
                           mem_device_name(dst_device));
    if (!src_device->ops->holds(src_device, src, bytes))
        return status_fail(CANVAS_ERR_INTERNAL, "mem_copy: source of %zu bytes is not inside device '%s'", bytes,
                           mem_device_name(src_device));
    /* A device copies to and from host memory; a dry run's copies move nothing. */
    if (holds_data(dst_device) && holds_data(src_device) && !mem_device_is_host(dst_device) &&
        !mem_device_is_host(src_device))
        return status_fail(CANVAS_ERR_INTERNAL, "mem_copy: from device '%s' to device '%s': copies go through host memory",
                           mem_device_name(src_device), mem_device_name(dst_device));
    if (mem_device_is_addressable(dst_device) && mem_device_is_addressable(src_device)) {
        const char *d = dst, *s = src;
        if (d < s + bytes && s < d + bytes)
            return status_fail(CANVAS_ERR_INTERNAL, "mem_copy: source and destination of %zu bytes overlap", bytes);
    }
    return CANVAS_OK;
}

/* The copy itself, after check_copy: the device end copies (host to host: the destination),
 * and the caller waits for it. */
static canvas_status run_copy(mem_device *dst_device, void *dst, mem_device *src_device, const void *src, size_t bytes)
{
    if (bytes == 0) return CANVAS_OK;
    mem_device_count_copy(dst_device, bytes, 0);
    mem_device_count_copy(src_device, 0, bytes);
    count(&total_copies, &dst_device->copies, &src_device->copies, 1);
    if (!holds_data(dst_device) || !holds_data(src_device)) {
        count(&total_measured_bytes, &dst_device->measured_bytes, &src_device->measured_bytes, bytes);
        return CANVAS_OK;
    }
    uint64_t start = clock_ns();
    mem_device *device = mem_device_is_host(src_device) ? dst_device : src_device;
    mem_device_event event = 0;
    canvas_status status = device == dst_device ? device->ops->copy_to_device(device, dst, src, bytes, &event)
                                                : device->ops->copy_to_host(device, dst, src, bytes, &event);
    if (status == CANVAS_OK) status = device->ops->wait(device, event);
    if (status != CANVAS_OK)
        return status_wrap(status, "copying %zu bytes %s device '%s': ", bytes, device == dst_device ? "to" : "from",
                           mem_device_name(device));
    count(&total_bytes, &dst_device->moved_bytes, &src_device->moved_bytes, bytes);
    count(&total_copy_ns, &dst_device->copy_ns, &src_device->copy_ns, clock_ns() - start);
    return CANVAS_OK;
}

canvas_status mem_copy(mem_device *dst_device, void *dst, mem_device *src_device, const void *src, size_t bytes)
{
    TRY(check_copy(dst_device, dst, src_device, src, bytes));
    return run_copy(dst_device, dst, src_device, src, bytes);
}

/* ---- the copy thread ---- */

typedef struct copy_job {
    mem_device *dst_device, *src_device;
    void *dst;
    const void *src;
    size_t bytes;
} copy_job;

struct mem_copier {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work;     /* signalled when a job is queued or on stop */
    pthread_cond_t progress; /* signalled when a job completes (frees a place, ends a wait) */
    copy_job *queue;         /* ring of `capacity` jobs */
    int capacity, head, count;
    mem_ticket submitted, completed;
    int stopping;
    /* The first copy that failed (a device's copy engine can fail; the host ones do not):
     * its ticket, status and reason, reported by every wait that covers it. */
    mem_ticket failed_ticket;
    canvas_status failed_status;
    char failed_reason[256];
};

static void *copier_main(void *arg)
{
    mem_copier *c = arg;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (c->count == 0 && !c->stopping) pthread_cond_wait(&c->work, &c->lock);
        if (c->count == 0) break; /* stopping and drained */
        copy_job job = c->queue[c->head];
        pthread_mutex_unlock(&c->lock);
        canvas_status status = run_copy(job.dst_device, job.dst, job.src_device, job.src, job.bytes);
        pthread_mutex_lock(&c->lock);
        if (status != CANVAS_OK && !c->failed_ticket) {
            c->failed_ticket = c->completed + 1;
            c->failed_status = status;
            snprintf(c->failed_reason, sizeof c->failed_reason, "%s", canvas_last_error());
        }
        c->head = (c->head + 1) % c->capacity;
        c->count--;
        c->completed++;
        pthread_cond_broadcast(&c->progress);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

canvas_status mem_copier_create(int queue_length, mem_copier **out)
{
    *out = NULL;
    if (queue_length <= 0) queue_length = 256;
    mem_copier *c;
    TRY(mem_calloc((void **)&c, 1, sizeof *c, MEM_SCRATCH));
    canvas_status status = mem_calloc((void **)&c->queue, (size_t)queue_length, sizeof(copy_job), MEM_SCRATCH);
    if (status != CANVAS_OK) {
        mem_free(c);
        return status;
    }
    c->capacity = queue_length;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->work, NULL);
    pthread_cond_init(&c->progress, NULL);
    if (pthread_create(&c->thread, NULL, copier_main, c) != 0) {
        pthread_cond_destroy(&c->progress);
        pthread_cond_destroy(&c->work);
        pthread_mutex_destroy(&c->lock);
        mem_free(c->queue);
        mem_free(c);
        return status_fail(CANVAS_ERR_IO, "could not start the copy thread");
    }
    *out = c;
    return CANVAS_OK;
}

void mem_copier_destroy(mem_copier *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->progress);
    pthread_cond_destroy(&c->work);
    pthread_mutex_destroy(&c->lock);
    mem_free(c->queue);
    mem_free(c);
}

canvas_status mem_copier_submit(mem_copier *c, mem_device *dst_device, void *dst, mem_device *src_device,
                                const void *src, size_t bytes, mem_ticket *out_ticket)
{
    *out_ticket = 0;
    TRY(check_copy(dst_device, dst, src_device, src, bytes));
    pthread_mutex_lock(&c->lock);
    while (c->count == c->capacity) pthread_cond_wait(&c->progress, &c->lock);
    c->queue[(c->head + c->count) % c->capacity] = (copy_job){dst_device, src_device, dst, src, bytes};
    c->count++;
    *out_ticket = ++c->submitted;
    pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->lock);
    return CANVAS_OK;
}

canvas_status mem_copier_wait(mem_copier *c, mem_ticket ticket, double *waited_seconds)
{
    uint64_t start = clock_ns(), waited = 0;
    mem_device *dst_device = NULL, *src_device = NULL;
    pthread_mutex_lock(&c->lock);
    if (ticket > c->submitted) ticket = c->submitted; /* never wait for a copy nobody queued */
    if (c->completed < ticket) {
        /* still queued: the devices of the copy waited for, to count the wait on */
        const copy_job *job = &c->queue[(c->head + (int)(ticket - c->completed - 1)) % c->capacity];
        dst_device = job->dst_device;
        src_device = job->src_device;
        while (c->completed < ticket) pthread_cond_wait(&c->progress, &c->lock);
        waited = clock_ns() - start;
    }
    int failed = c->failed_ticket && c->failed_ticket <= ticket;
    pthread_mutex_unlock(&c->lock);
    if (waited) count(&total_wait_ns, &dst_device->wait_ns, &src_device->wait_ns, waited);
    if (waited_seconds) *waited_seconds = (double)waited * 1e-9;
    /* the fields of a failure never change once set */
    return failed ? status_fail(c->failed_status, "%s", c->failed_reason) : CANVAS_OK;
}

int mem_copier_done(mem_copier *c, mem_ticket ticket)
{
    pthread_mutex_lock(&c->lock);
    int done = c->completed >= ticket;
    pthread_mutex_unlock(&c->lock);
    return done;
}

canvas_status mem_host_view(mem_device *device, void *at, size_t bytes, int fill, void **view)
{
    *view = at;
    if (mem_device_is_addressable(device)) return CANVAS_OK;
    *view = NULL;
    void *host;
    TRY(mem_alloc(&host, bytes ? bytes : 1, MEM_STAGING));
    canvas_status st = fill && bytes ? mem_copy(mem_device_cpu(), host, device, at, bytes) : CANVAS_OK;
    if (st != CANVAS_OK) {
        mem_free(host);
        return st;
    }
    *view = host;
    return CANVAS_OK;
}

canvas_status mem_host_view_end(mem_device *device, void *at, void *view, size_t bytes, int write_back,
                                canvas_status st)
{
    if (!view || view == at) return st;
    if (write_back && st == CANVAS_OK && bytes) st = mem_copy(device, at, mem_device_cpu(), view, bytes);
    mem_free(view);
    return st;
}
