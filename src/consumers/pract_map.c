/*
 * Per-partition practitioner cache: open addressing of pract_t pointers by
 * practitioner id. Bounded by eviction after each flush (only clean entries
 * are evicted; their state is in the sink and reloads on next touch).
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

void rm_pract_remove(pract_map_t *m, pract_t *p) {
    pract_t **slot = probe(m, p->pid, p->pid_len);
    *slot = NULL;
    m->count--;
    pract_free(p);
    rehash(m, m->capacity); /* keeps probe chains intact after deletion */
}

void rm_pract_evict(pract_map_t *m, size_t limit, uint64_t current_seq) {
    if (m->count <= limit)
        return;
    for (uint32_t i = 0; i < m->capacity && m->count > limit; i++) {
        pract_t *p = m->slots[i];
        if (p && !p->dirty && p->last_used < current_seq) {
            m->slots[i] = NULL;
            m->count--;
            pract_free(p);
        }
    }
    rehash(m, m->capacity);
}

void rm_pract_map_free(pract_map_t *m) {
    for (uint32_t i = 0; i < m->capacity; i++)
        if (m->slots[i])
            pract_free(m->slots[i]);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}
