/*
 * The practitioner cache: per practitioner its projected state and the
 * fence bookkeeping of the exactly-once protocol, in an open-addressing map
 * keyed by practitioner id (backward-shift deletion, no tombstones). serve's
 * workers keep one per owned partition; the replay of rebuild and verify
 * one per partition of the topic.
 *
 * Ownership: the map owns its entries and their state; pointers returned
 * by find/add stay valid until the entry is evicted or the map freed.
 * Thread-safety: none; a map belongs to one thread at a time.
 */
#ifndef READMODEL_PRACT_MAP_H
#define READMODEL_PRACT_MAP_H

#include "readmodel/availability.h"
#include "readmodel/event.h"
#include "readmodel/practitioner_doc.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct pract {
    char pid[RM_MAX_ID_CHARS + 1];
    uint8_t pid_len;
    bool dirty;       /* an event was applied since the last flush */
    bool loaded;      /* stored state has been read */
    bool quarantined; /* the stored state does not decode: events skipped, nothing
                       * written, until a rebuild repairs it */
    int32_t fence_partition;
    int64_t fence;            /* offset of the last event applied, -1 if none */
    int32_t stored_partition; /* the fence the sink holds, as last read or written */
    int64_t stored_fence;     /* -1: the sink holds no state */
    uint64_t last_used;
    rm_avail_t st;
    rm_profile_t profile; /* projected only for sinks that keep profiles */
} pract_t;

typedef struct {
    pract_t **slots;
    uint32_t capacity, count;
} pract_map_t;

pract_t *rm_pract_find(pract_map_t *m, const char *pid, size_t len);
/* Inserts a new, loaded=false entry; NULL on ENOMEM. */
pract_t *rm_pract_add(pract_map_t *m, const char *pid, size_t len);
/* Frees entries not used in the current batch until at most `limit` remain
 * (dirty and quarantined entries are never evicted: a quarantine holds
 * until the partition is re-read from its stored checkpoint). */
void rm_pract_evict(pract_map_t *m, size_t limit, uint64_t current_seq);
void rm_pract_remove(pract_map_t *m, pract_t *p);
void rm_pract_map_free(pract_map_t *m);

#endif
