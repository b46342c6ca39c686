/* SPDX-License-Identifier: Apache-2.0 */
/* mem_transfer.h — the one copy path between devices, and a copy thread to overlap it.
 *
 * mem_copy moves bytes between host memory (the cpu device) and a device, in either
 * direction, through the device's own copy functions (mem_device_impl.h: start, then
 * wait); code outside mem/ never writes device memory any other way. On the capped pool a
 * copy crosses the device's link (mem_device_set_link_bandwidth) and is throttled to its
 * bandwidth: it is done in chunks and sleeps so that it takes at least bytes / bandwidth
 * seconds, which makes transfer cost and its overlap with compute real on the CPU build.
 * A copy with a measure device at either end moves nothing (its blocks are tokens) and
 * takes no time, but is counted, so a dry run knows its transfer bytes.
 *
 * The copier is a thread with a queue: submit returns a ticket at once, the copy runs in
 * the background (in submission order), wait(ticket) blocks until that copy and all
 * before it are done and adds the time it blocked to the transfer statistics. On CUDA
 * the copier becomes a copy stream and a ticket an event (docs/memory.md). */
#ifndef CANVAS_MEM_TRANSFER_H
#define CANVAS_MEM_TRANSFER_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "mem/mem_device.h"

/* Copy `bytes` from src (a block of src_device, or inside one) to dst (of dst_device); one
 * of the two is host memory (the cpu device) unless the other is a measure device.
 * CANVAS_ERR_INTERNAL when a range lies outside its device, the ranges overlap or neither
 * end is host memory; the device's failure if its copy fails. */
canvas_status mem_copy(mem_device *dst_device, void *dst, mem_device *src_device, const void *src, size_t bytes);

/* Host code reading or writing `bytes` at `at`, memory of `device`: *view is `at` itself on a
 * host-addressable device, else a host block (MEM_STAGING) filled from the device when `fill`
 * is 1. mem_host_view_end sends the view back when `write_back` is 1 and `st` is CANVAS_OK,
 * frees a host block, and returns `st` or the copy's failure; a NULL view (a failed
 * mem_host_view) only returns `st`. What a view costs in host memory is the caller's to plan. */
canvas_status mem_host_view(mem_device *device, void *at, size_t bytes, int fill, void **view);
canvas_status mem_host_view_end(mem_device *device, void *at, void *view, size_t bytes, int write_back,
                                canvas_status st);

/* Transfer counters (copies synchronous and queued): the process's, or those of one
 * device's copies (each copy counts on both of its ends, once when they are one device). */
typedef struct mem_transfer_stats {
    uint64_t copies;
    uint64_t bytes;           /* bytes really moved */
    uint64_t measured_bytes;  /* bytes "moved" to or from a measure device (dry run) */
    double copy_seconds;      /* time spent copying (including throttling sleeps) */
    double wait_seconds;      /* time callers spent blocked in mem_copier_wait */
} mem_transfer_stats;

/* Every copy of the process. */
void mem_transfer_get_stats(mem_transfer_stats *out);
/* The copies to and from `device` (a model's device: its own transfers, whatever other
 * models of the process copy). The wait of mem_copier_wait counts on the ends of the copy
 * waited for. */
void mem_transfer_get_device_stats(const mem_device *device, mem_transfer_stats *out);

typedef struct mem_copier mem_copier;
typedef uint64_t mem_ticket; /* 0 is "no copy": waiting on it returns at once */

/* Start a copy thread with a queue of `queue_length` copies (0: 256); submit blocks while
 * the queue is full. */
canvas_status mem_copier_create(int queue_length, mem_copier **out);
/* Finish the queued copies, stop the thread. NULL is ignored. */
void mem_copier_destroy(mem_copier *copier);

/* Queue a copy (arguments as mem_copy, checked now, so a queued copy cannot fail later).
 * The caller keeps src and dst valid and untouched until the ticket is waited on. */
canvas_status mem_copier_submit(mem_copier *copier, mem_device *dst_device, void *dst, mem_device *src_device,
                                const void *src, size_t bytes, mem_ticket *out_ticket);

/* Block until the copy of `ticket` (and all earlier ones) is done; *waited_seconds (may
 * be NULL) gets the time spent blocked. The status of the first of those copies that
 * failed (a device's copy engine may fail; a copy between host memories does not). */
canvas_status mem_copier_wait(mem_copier *copier, mem_ticket ticket, double *waited_seconds);

/* 1 when the copy of `ticket` is done (never blocks). */
int mem_copier_done(mem_copier *copier, mem_ticket ticket);

#endif
