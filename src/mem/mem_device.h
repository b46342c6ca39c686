/* SPDX-License-Identifier: Apache-2.0 */
/* mem_device.h — where memory lives: devices with classes, caps and exact accounting.
 *
 * A device is an interface (mem_device_impl.h: a table of functions for alloc, free,
 * host <-> device copies and their wait, statistics), and model code sees only the calls
 * below. Three implementations ship, one file each:
 *
 *   cpu       host RAM: the pool behind mem_alloc (there is one, mem_device_cpu()).
 *             Its optional cap (--ram of the CLI's commands) covers every host
 *             allocation of the process. (mem_device_cpu.c)
 *   host scope  host RAM of one owner (an open model): a host accounting scope (mem.h)
 *             shown as a device, with its own counters, peaks and cap; blocks are
 *             host memory as on the cpu device. (mem_device_cpu.c)
 *   capped    a pool of `cap` bytes that plays a GPU on the CPU build: one region mapped
 *             from the kernel at creation and carved by a first-fit allocator with
 *             coalescing (mem_device_pool.h over mem_range.h). An allocation that does
 *             not fit fails with CANVAS_ERR_OUT_OF_MEMORY exactly like a full GPU: over the
 *             cap *or* when fragmentation leaves no hole large enough. Its memory is
 *             ordinary host memory, so the CPU kernels read it directly; copies to and
 *             from it cross a throttled link. (mem_device_capped.c)
 *   measure   allocates nothing: the same first-fit allocator over an address range that
 *             faults when touched, so blocks get unique, non-dereferenceable addresses
 *             and sizes, peaks and fragmentation come out as the capped pool would have
 *             them. Running the real code on it is the dry run. Never fault-injected.
 *             (mem_device_measure.c)
 *
 * A CUDA device is one more implementation; what code outside mem/ may assume about a
 * device's blocks is in its flags (below), never in which implementation it is.
 *
 * Accounting is exact to the byte the callers asked for, per device and per class:
 * current, peak (since the last reset), successful allocations, live blocks. On pooled
 * devices the cap is checked against granule-rounded bytes (what the pool really
 * spends), so requested bytes never exceed the cap.
 *
 * Thread safety: alloc/free/stats may be called from any thread. */
#ifndef CANVAS_MEM_DEVICE_H
#define CANVAS_MEM_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "mem/mem.h"

typedef struct mem_device mem_device;

/* What a device's blocks are (mem_device_flags). */
enum {
    /* Host code and the CPU kernels may read and write its blocks through their addresses.
     * Without it, bytes reach its blocks only through mem_copy (mem_transfer.h). */
    MEM_DEVICE_HOST_ADDRESSABLE = 1u << 0,
    /* Copies move bytes. Without it the device is a dry run: blocks are tokens, copies are
     * counted and move nothing, allocations are never fault-injected. */
    MEM_DEVICE_HOLDS_DATA = 1u << 1,
    /* Its memory is host RAM itself: a host pointer is already one of its blocks, so
     * weights can be used where they are (zero copy). The cpu device. */
    MEM_DEVICE_IS_HOST = 1u << 2,
};

typedef struct mem_device_stats {
    mem_class_stats classes[MEM_CLASS_COUNT];
    size_t current_bytes;      /* all classes, as requested */
    size_t peak_bytes;         /* all classes, since the last mem_device_reset_peaks */
    size_t cap_bytes;          /* 0: no cap */
    size_t reserved_bytes;     /* pooled devices: granule-rounded bytes in use; cpu: current_bytes */
    size_t free_bytes;         /* what the cap still allows (cap - reserved); 0 with no cap */
    size_t largest_free_block; /* pooled: the largest block that would fit now; cpu: free_bytes */
    double fragmentation;      /* 1 - largest_free_block / free_bytes (0 when nothing is free) */
    uint64_t refused;          /* allocations refused for lack of room (not injected ones) */
    uint64_t bytes_in;         /* bytes copied onto the device (mem_copy)  */
    uint64_t bytes_out;        /* bytes copied off the device              */
} mem_device_stats;

/* The host RAM device (process-wide, never destroyed). */
mem_device *mem_device_cpu(void);

/* A host scope device: a new host accounting scope with a cap (0: none) and its device.
 * Its stats, peaks and cap are the scope's (what was allocated inside it, on any device
 * that allocates from host RAM: mem_alloc); mem_device_alloc on it allocates inside it.
 * Flags as the cpu device's, but it is not mem_device_cpu(): code that asks where weights
 * live keeps using that. `name` is what reports show. mem_device_destroy lets go of the
 * scope (blocks still live keep it until they are freed). */
canvas_status mem_device_create_host_scope(const char *name, size_t cap, mem_device **out);
/* The scope of a host scope device, for mem_scope_enter around its owner's work; NULL for
 * any other device. */
mem_scope *mem_device_host_scope(const mem_device *device);

/* A pool of `cap` bytes (> 0) that plays a GPU. `name` ("gpu") appears in errors. */
canvas_status mem_device_create_capped(const char *name, size_t cap, mem_device **out);

/* A measure device; cap 0 means "as large as the address space reservation" (1 TiB, or
 * less if the kernel refuses), otherwise allocations past the cap fail like on a capped
 * pool of that size. */
canvas_status mem_device_create_measure(const char *name, size_t cap, mem_device **out);

/* ---- CUDA (mem_device_cuda.c; docs/cuda.md) ---------------------------------------------
 * What the CUDA runtime sees. A build without CUDA (mem_device_cuda_none.c), a machine with no
 * driver and one with no GPU all answer devices = 0 with the reason: absent is an answer,
 * never a failure, so one binary runs on the CPU wherever no GPU is. */
typedef struct mem_cuda_info {
    int devices;                 /* usable CUDA devices; 0: none (reason says why) */
    char name[96];               /* device 0's name */
    int compute_capability;      /* device 0: 90 for sm_90; fp8 GEMMs from 89 on */
    uint64_t total_bytes, free_bytes; /* device 0's memory (cudaMemGetInfo) */
    char reason[192];            /* with devices 0: "this build has no CUDA", the runtime's error */
} mem_cuda_info;

void mem_cuda_query(mem_cuda_info *out);

/* A CUDA device (device 0) behind the device interface: one cudaMalloc'ed region of
 * min(cap, free memory - headroom) bytes (cap 0: free memory - headroom) carved by the pool of
 * mem_device_pool.h, so its accounting, cap and fault injection are the capped pool's. Its
 * blocks are device memory (MEM_DEVICE_HOLDS_DATA only: the CPU never touches them); bytes
 * reach them through mem_copy, staged through a small ring of pinned host buffers.
 * CANVAS_ERR_UNSUPPORTED when there is no CUDA device (the reason of mem_cuda_query),
 * CANVAS_ERR_OUT_OF_MEMORY when free memory - headroom is below cap or zero. */
canvas_status mem_device_create_cuda(const char *name, size_t cap, size_t headroom, mem_device **out);
/* Host-to-device bandwidth of device 0, bytes per second: the best of a few synchronous 64 MiB
 * copies from pinned and from pageable host memory. CANVAS_ERR_UNSUPPORTED without a device. */
canvas_status mem_cuda_measure_link(double *pinned, double *pageable);

/* 1 for a device made by mem_device_create_cuda (its blocks are CUDA device memory). */
int mem_device_is_cuda(const mem_device *device);

/* Where a run computes: --device of the CLI, canvas_options.device (mem_device_select.c). */
typedef enum mem_device_choice {
    MEM_DEVICE_CHOICE_AUTO, /* CUDA when a device is present, else the CPU */
    MEM_DEVICE_CHOICE_CPU,
    MEM_DEVICE_CHOICE_CUDA, /* CUDA or an error: never a silent CPU run */
} mem_device_choice;

/* "auto" (or NULL), "cpu", "cuda"; CANVAS_ERR_USAGE naming the text otherwise. */
canvas_status mem_device_choice_parse(const char *text, mem_device_choice *out);
/* The name mem_device_choice_parse takes for a choice. */
const char *mem_device_choice_name(mem_device_choice choice);
/* Check a choice against this machine and build: *use_cuda 1 when the run computes on the
 * CUDA device (CUDA, or AUTO with a device present), 0 for the CPU. CUDA without a usable
 * device: CANVAS_ERR_UNSUPPORTED with mem_cuda_query's reason, never a CPU run. */
canvas_status mem_device_choose(mem_device_choice choice, int *use_cuda);

/* Destroy a device made by a create function (the cpu device is left alone). Blocks still
 * live are counted in the leak check of mem_device_live_blocks() before destruction. */
void mem_device_destroy(mem_device *device);

/* Change the cap: on the cpu device any value (0 removes it); on a pooled device any value
 * from 1 to the size it was created with (a lowered cap models another process taking
 * memory). Blocks already placed stay; later allocations see the new cap. */
canvas_status mem_device_set_cap(mem_device *device, size_t cap);

/* Allocate `size` bytes of class `cls` aligned to `align` (a power of two; values below
 * MEM_ALIGNMENT mean MEM_ALIGNMENT). One fault-injection point per call (except on a
 * device without MEM_DEVICE_HOLDS_DATA). On failure *out is NULL and the reason names the
 * device, class, size and what is in use. */
canvas_status mem_device_alloc(mem_device *device, mem_class cls, size_t size, size_t align, void **out);

/* Free a block of this device; NULL is ignored, a foreign pointer is ignored and counted
 * (mem_device_foreign_frees) instead of corrupting the pool. */
void mem_device_free(mem_device *device, void *block);

void mem_device_get_stats(const mem_device *device, mem_device_stats *out);
/* Peaks (total and per class) restart from the current values. On the cpu device this is
 * mem_reset_peaks(). */
void mem_device_reset_peaks(mem_device *device);

const char *mem_device_name(const mem_device *device);
/* The MEM_DEVICE_* flags above. */
unsigned mem_device_flags(const mem_device *device);
/* MEM_DEVICE_HOST_ADDRESSABLE: 0 for a measure device (its blocks are tokens and must never
 * be read or written) and for any device whose memory only mem_copy reaches. */
int mem_device_is_addressable(const mem_device *device);
/* MEM_DEVICE_IS_HOST: the device is host RAM (the cpu device). */
int mem_device_is_host(const mem_device *device);
/* Live blocks of all classes; pointers freed that did not belong to the device. */
uint64_t mem_device_live_blocks(const mem_device *device);
uint64_t mem_device_foreign_frees(const mem_device *device);

/* The link between this device and host RAM, used by the copies of mem_copy
 * (mem_transfer.h): bytes per second, 0 for unthrottled. The cpu device has no link. */
void mem_device_set_link_bandwidth(mem_device *device, double bytes_per_second);
double mem_device_link_bandwidth(const mem_device *device);

#endif
