/* SPDX-License-Identifier: Apache-2.0 */
/* mem_residency.c — resident prefix + double-buffered streaming with prefetch. */
#include "mem/mem_residency.h"

#include <string.h>

#include "base/status.h"
#include "mem/mem_transfer.h"

typedef struct stream_slot {
    char *block;        /* slot_bytes on the device */
    int group;          /* the group it holds or is being filled with; -1: none */
    int holds;          /* acquires not yet released */
    mem_ticket ready;   /* the group's last copy */
    void **pointers;    /* max_tensors entries */
} stream_slot;

struct residency_manager {
    mem_device *device;
    int zero_copy;          /* host memory (the cpu device): acquire returns the home pointers */
    int n_groups, n_resident, n_streamed;
    residency_group *groups;
    size_t *group_bytes;    /* packed size of each group on the device */
    void **pointers;        /* resident / zero-copy groups: device pointers, flattened */
    int *first_pointer;     /* index into pointers per group */
    void **resident_blocks; /* per group (NULL for streamed ones) */
    stream_slot slots[2];
    int n_slots;
    size_t slot_bytes;
    int pending_prefetch;   /* a group to prefetch once a slot is released; -1: none */
    mem_copier *copier;
    residency_stats stats;
};

static size_t align_up(size_t value, size_t alignment) { return (value + alignment - 1) / alignment * alignment; }

/* The group's tensors in one device block, in list order, each at a multiple of
 * RESIDENCY_TENSOR_ALIGNMENT: pointers[i] (when pointers is not NULL) = where tensor i
 * goes in `block`, NULL for an empty tensor. Returns the packed size. */
static size_t pack_group(const residency_group *group, char *block, void **pointers)
{
    size_t end = 0;
    for (int i = 0; i < group->n_tensors; i++) {
        size_t at = align_up(end, RESIDENCY_TENSOR_ALIGNMENT);
        if (pointers) pointers[i] = group->tensors[i].bytes ? block + at : NULL;
        end = at + group->tensors[i].bytes;
    }
    return end;
}

size_t residency_plan_device_bytes(const residency_group *groups, int n_groups, const residency_plan *plan)
{
    size_t total = 0, largest_streamed = 0;
    int n_streamed = 0;
    for (int g = 0; g < n_groups; g++) {
        size_t bytes = pack_group(&groups[g], NULL, NULL);
        if (g < plan->n_resident) {
            total += bytes;
        } else {
            n_streamed++;
            if (bytes > largest_streamed) largest_streamed = bytes;
        }
    }
    return total + (size_t)(n_streamed < 2 ? n_streamed : 2) * largest_streamed;
}

/* The streamed group that follows `group` in order, wrapping to the first streamed one. */
static int next_streamed(const residency_manager *m, int group)
{
    if (m->n_streamed == 0) return -1;
    int next = group + 1;
    return next < m->n_groups ? next : m->n_resident;
}

static int slot_of(const residency_manager *m, int group)
{
    for (int s = 0; s < m->n_slots; s++)
        if (m->slots[s].group == group) return s;
    return -1;
}

/* Queue the copies of `group` from its home into slot s. */
static canvas_status load_into(residency_manager *m, int s, int group)
{
    stream_slot *slot = &m->slots[s];
    const residency_group *g = &m->groups[group];
    slot->group = -1;
    size_t end = pack_group(g, slot->block, slot->pointers);
    mem_ticket last = 0;
    for (int i = 0; i < g->n_tensors; i++) {
        if (!g->tensors[i].bytes) continue;
        canvas_status status = mem_copier_submit(m->copier, m->device, slot->pointers[i], mem_device_cpu(),
                                                 g->tensors[i].home, g->tensors[i].bytes, &last);
        if (status != CANVAS_OK)
            return status_wrap(status, "streaming weight group '%s', tensor %d: ", g->name ? g->name : "?", i);
    }
    slot->group = group;
    slot->ready = last;
    m->stats.streamed_loads++;
    m->stats.bytes_streamed += end;
    return CANVAS_OK;
}

/* Start filling a free slot with `group` (or remember it until a slot is released). */
static canvas_status prefetch(residency_manager *m, int group)
{
    if (group < 0 || slot_of(m, group) >= 0) return CANVAS_OK;
    for (int s = 0; s < m->n_slots; s++)
        if (m->slots[s].holds == 0) {
            m->pending_prefetch = -1;
            return load_into(m, s, group);
        }
    m->pending_prefetch = group;
    return CANVAS_OK;
}

void residency_destroy(residency_manager *m)
{
    if (!m) return;
    mem_copier_destroy(m->copier); /* finishes copies still writing into the slots */
    for (int s = 0; s < m->n_slots; s++) {
        mem_device_free(m->device, m->slots[s].block);
        mem_free(m->slots[s].pointers);
    }
    if (m->resident_blocks)
        for (int g = 0; g < m->n_groups; g++) mem_device_free(m->device, m->resident_blocks[g]);
    mem_free(m->resident_blocks);
    mem_free(m->pointers);
    mem_free(m->first_pointer);
    mem_free(m->group_bytes);
    mem_free(m->groups);
    mem_free(m);
}

static canvas_status check_groups(const residency_group *groups, int n_groups, const residency_plan *plan)
{
    if (n_groups <= 0 || !groups) return status_fail(CANVAS_ERR_USAGE, "residency: no weight groups");
    if (plan->n_resident < 0 || plan->n_resident > n_groups)
        return status_fail(CANVAS_ERR_USAGE, "residency: plan keeps %d of %d groups resident", plan->n_resident, n_groups);
    for (int g = 0; g < n_groups; g++) {
        if (groups[g].n_tensors < 0 || (groups[g].n_tensors > 0 && !groups[g].tensors))
            return status_fail(CANVAS_ERR_USAGE, "residency: group %d has no tensor list", g);
        for (int i = 0; i < groups[g].n_tensors; i++)
            if (groups[g].tensors[i].bytes && !groups[g].tensors[i].home)
                return status_fail(CANVAS_ERR_USAGE, "residency: group '%s' tensor %d has no home",
                                   groups[g].name ? groups[g].name : "?", i);
    }
    return CANVAS_OK;
}

/* Allocate the manager's tables (host bookkeeping). */
static canvas_status create_tables(residency_manager *m, const residency_group *groups)
{
    int n = m->n_groups, total_tensors = 0;
    for (int g = 0; g < n; g++) total_tensors += groups[g].n_tensors;
    TRY(mem_calloc((void **)&m->groups, (size_t)n, sizeof *m->groups, MEM_SCRATCH));
    memcpy(m->groups, groups, (size_t)n * sizeof *groups);
    TRY(mem_calloc((void **)&m->group_bytes, (size_t)n, sizeof *m->group_bytes, MEM_SCRATCH));
    TRY(mem_calloc((void **)&m->first_pointer, (size_t)n, sizeof *m->first_pointer, MEM_SCRATCH));
    TRY(mem_calloc((void **)&m->pointers, (size_t)(total_tensors ? total_tensors : 1), sizeof *m->pointers, MEM_SCRATCH));
    TRY(mem_calloc((void **)&m->resident_blocks, (size_t)n, sizeof *m->resident_blocks, MEM_SCRATCH));
    for (int g = 0, at = 0; g < n; g++) {
        m->group_bytes[g] = pack_group(&groups[g], NULL, NULL);
        m->first_pointer[g] = at;
        at += groups[g].n_tensors;
    }
    return CANVAS_OK;
}

/* Resident groups and slots on the device; resident data copied in (waited for). */
static canvas_status place_on_device(residency_manager *m)
{
    int max_tensors = 0;
    for (int g = 0; g < m->n_groups; g++) {
        if (m->groups[g].n_tensors > max_tensors) max_tensors = m->groups[g].n_tensors;
        if (g >= m->n_resident && m->group_bytes[g] > m->slot_bytes) m->slot_bytes = m->group_bytes[g];
    }
    TRY(mem_copier_create(0, &m->copier));
    for (int g = 0; g < m->n_resident; g++) {
        if (!m->group_bytes[g]) continue;
        canvas_status status = mem_device_alloc(m->device, MEM_WEIGHTS, m->group_bytes[g], RESIDENCY_TENSOR_ALIGNMENT,
                                                &m->resident_blocks[g]);
        if (status != CANVAS_OK)
            return status_wrap(status, "keeping weight group '%s' resident: ", m->groups[g].name ? m->groups[g].name : "?");
    }
    m->n_slots = m->n_streamed < 2 ? m->n_streamed : 2;
    for (int s = 0; s < m->n_slots; s++) {
        m->slots[s].group = -1;
        TRY(mem_calloc((void **)&m->slots[s].pointers, (size_t)(max_tensors ? max_tensors : 1), sizeof(void *), MEM_SCRATCH));
        canvas_status status = mem_device_alloc(m->device, MEM_WEIGHTS, m->slot_bytes ? m->slot_bytes : 1,
                                                RESIDENCY_TENSOR_ALIGNMENT, (void **)&m->slots[s].block);
        if (status != CANVAS_OK) return status_wrap(status, "streaming buffer %d of 2 for weights: ", s + 1);
    }
    mem_ticket last = 0;
    for (int g = 0; g < m->n_resident; g++) {
        void **pointers = m->pointers + m->first_pointer[g];
        pack_group(&m->groups[g], m->resident_blocks[g], pointers);
        for (int i = 0; i < m->groups[g].n_tensors; i++) {
            const residency_tensor *t = &m->groups[g].tensors[i];
            if (t->bytes) TRY(mem_copier_submit(m->copier, m->device, pointers[i], mem_device_cpu(), t->home, t->bytes, &last));
        }
    }
    TRY(mem_copier_wait(m->copier, last, NULL));
    return m->n_streamed ? prefetch(m, m->n_resident) : CANVAS_OK;
}

canvas_status residency_create(mem_device *device, const residency_group *groups, int n_groups,
                               const residency_plan *plan, residency_manager **out)
{
    *out = NULL;
    TRY(check_groups(groups, n_groups, plan));
    residency_manager *m;
    TRY(mem_calloc((void **)&m, 1, sizeof *m, MEM_SCRATCH));
    m->device = device;
    m->zero_copy = mem_device_is_host(device);
    m->n_groups = n_groups;
    m->n_resident = m->zero_copy ? n_groups : plan->n_resident;
    m->n_streamed = n_groups - m->n_resident;
    m->pending_prefetch = -1;
    canvas_status status = create_tables(m, groups);
    if (status == CANVAS_OK && m->zero_copy) {
        for (int g = 0; g < n_groups; g++)
            for (int i = 0; i < groups[g].n_tensors; i++)
                m->pointers[m->first_pointer[g] + i] = (void *)groups[g].tensors[i].home;
    } else if (status == CANVAS_OK) {
        status = place_on_device(m);
    }
    if (status != CANVAS_OK) {
        residency_destroy(m);
        return status;
    }
    residency_plan actual = {m->n_resident};
    m->stats.device_bytes = m->zero_copy ? 0 : residency_plan_device_bytes(groups, n_groups, &actual);
    m->stats.slot_bytes = m->n_slots ? m->slot_bytes : 0;
    *out = m;
    return CANVAS_OK;
}

canvas_status residency_acquire(residency_manager *m, int group, void *const **out_tensors)
{
    *out_tensors = NULL;
    if (group < 0 || group >= m->n_groups)
        return status_fail(CANVAS_ERR_INTERNAL, "residency: group %d does not exist (%d groups)", group, m->n_groups);
    m->stats.acquires++;
    if (group < m->n_resident) {
        *out_tensors = m->pointers + m->first_pointer[group];
        return CANVAS_OK;
    }
    int s = slot_of(m, group);
    if (s < 0) {
        /* Not prefetched: load it now into a free slot, sparing the one that holds the group
         * that comes next. */
        int next = next_streamed(m, group);
        for (int i = 0; i < m->n_slots; i++)
            if (m->slots[i].holds == 0 && (s < 0 || m->slots[s].group == next)) s = i;
        if (s < 0)
            return status_fail(CANVAS_ERR_INTERNAL,
                               "residency: acquiring weight group '%s' while two streamed groups are held "
                               "(release one first)",
                               m->groups[group].name ? m->groups[group].name : "?");
        TRY(load_into(m, s, group));
    }
    stream_slot *slot = &m->slots[s];
    double waited = 0;
    canvas_status copied = mem_copier_wait(m->copier, slot->ready, &waited);
    if (waited > 0) {
        m->stats.waits++;
        m->stats.wait_seconds += waited;
    }
    if (copied != CANVAS_OK) {
        slot->group = -1; /* its bytes are not the group's: load it again next time */
        return status_wrap(copied, "streaming weight group '%s': ", m->groups[group].name ? m->groups[group].name : "?");
    }
    slot->holds++;
    *out_tensors = slot->pointers;
    return prefetch(m, next_streamed(m, group));
}

void residency_release(residency_manager *m, int group)
{
    if (group < m->n_resident || group >= m->n_groups) return;
    int s = slot_of(m, group);
    if (s < 0 || m->slots[s].holds == 0) return;
    m->slots[s].holds--;
    if (m->slots[s].holds == 0 && m->pending_prefetch >= 0) {
        int next = m->pending_prefetch;
        m->pending_prefetch = -1;
        /* A failed queueing (a bug) shows up at the next acquire, which loads it again. */
        if (prefetch(m, next) != CANVAS_OK) m->slots[s].group = -1;
    }
}

void residency_get_stats(const residency_manager *m, residency_stats *out) { *out = m->stats; }
