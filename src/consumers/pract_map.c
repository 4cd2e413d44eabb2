/*
 * Per-partition practitioner cache: open addressing of pract_t pointers by
 * practitioner id. Bounded by eviction after each flush (only clean entries
 * are evicted; their state is in the sink and reloads on next touch).
 *
 * Only growth allocates (rehash builds the new table before touching the
 * old one, so a failure leaves the map as it was and rm_pract_add returns
 * NULL). Removal and eviction use backward-shift deletion: no tombstones,
 * no allocation, so they cannot fail and probe runs never break.
 */
#include "readmodel/pract_map.h"
#include "readmodel/hash.h"

#include <stdlib.h>
#include <string.h>

static uint32_t hash(const char *s, size_t n) {
    return rm_hash_bytes(s, n);
}

static pract_t **probe(pract_map_t *m, const char *pid, size_t len) {
    uint32_t mask = m->capacity - 1;
    for (uint32_t i = hash(pid, len) & mask;; i = (i + 1) & mask) {
        pract_t *p = m->slots[i];
        if (!p || (p->pid_len == len && memcmp(p->pid, pid, len) == 0))
            return &m->slots[i];
    }
}

pract_t *rm_pract_find(pract_map_t *m, const char *pid, size_t len) {
    return m->capacity ? *probe(m, pid, len) : NULL;
}

static int rehash(pract_map_t *m, uint32_t cap) {
    pract_t **slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    pract_map_t n = {slots, cap, 0};
    for (uint32_t i = 0; i < m->capacity; i++)
        if (m->slots[i]) {
            *probe(&n, m->slots[i]->pid, m->slots[i]->pid_len) = m->slots[i];
            n.count++;
        }
    free(m->slots);
    *m = n;
    return 0;
}

pract_t *rm_pract_add(pract_map_t *m, const char *pid, size_t len) {
    if (len == 0 || len > RM_MAX_ID_CHARS)
        return NULL;
    if ((m->count + 1) * 2 > m->capacity && rehash(m, m->capacity ? m->capacity * 2 : 64) < 0)
        return NULL;
    pract_t *p = calloc(1, sizeof(*p));
    if (!p || rm_avail_init(&p->st) != 0) {
        free(p);
        return NULL;
    }
    memcpy(p->pid, pid, len);
    p->pid_len = (uint8_t)len;
    p->fence = -1;
    p->fence_partition = -1;
    p->stored_fence = -1;
    p->stored_partition = -1;
    *probe(m, pid, len) = p;
    m->count++;
    return p;
}

static void pract_free(pract_t *p) {
    rm_avail_free(&p->st);
    rm_profile_free(&p->profile);
    free(p);
}

/* Empties slot i and moves the later entries of its probe run back into the
 * hole, so every remaining entry is still reached from its home slot. */
static void delete_slot(pract_map_t *m, uint32_t i) {
    uint32_t mask = m->capacity - 1;
    m->slots[i] = NULL;
    m->count--;
    for (uint32_t j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
        uint32_t home = hash(m->slots[j]->pid, m->slots[j]->pid_len) & mask;
        /* Entry j may move to i if its home is not in the cyclic range (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            m->slots[i] = m->slots[j];
            m->slots[j] = NULL;
            i = j;
        }
    }
}

void rm_pract_remove(pract_map_t *m, pract_t *p) {
    pract_t **slot = probe(m, p->pid, p->pid_len);
    if (*slot == p) /* else not in this map: only freed */
        delete_slot(m, (uint32_t)(slot - m->slots));
    pract_free(p);
}

void rm_pract_evict(pract_map_t *m, size_t limit, uint64_t current_seq) {
    for (uint32_t i = 0; i < m->capacity && m->count > limit;) {
        pract_t *p = m->slots[i];
        if (p && !p->dirty && !p->quarantined && p->last_used < current_seq) {
            delete_slot(m, i); /* slot i may now hold a later entry: look again */
            pract_free(p);
        } else {
            i++;
        }
    }
}

void rm_pract_map_free(pract_map_t *m) {
    for (uint32_t i = 0; i < m->capacity; i++)
        if (m->slots[i])
            pract_free(m->slots[i]);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}
