/*
 * Booking table: open addressing with linear probing and backward-shift
 * deletion (no tombstones), keyed by booking id (rm_hash_bytes). Sized to stay
 * at most 3/4 full. Ids of up to RM_BOOKING_INLINE bytes live in the entry;
 * a longer one is malloc'd and its pointer kept in the entry's id bytes.
 */
#include "readmodel/availability.h"
#include "readmodel/hash.h"

#include <stdlib.h>
#include <string.h>

static uint32_t hash(const char *s, size_t n) {
    return rm_hash_bytes(s, n);
}

static char *heap_id(const rm_booking_t *b) {
    char *p;
    memcpy(&p, b->id_bytes, sizeof(p));
    return p;
}

const char *rm_booking_id(const rm_booking_t *b) {
    return b->id_len <= RM_BOOKING_INLINE ? b->id_bytes : heap_id(b);
}

static rm_booking_t *probe(rm_booking_table_t *t, const char *id, size_t len, uint32_t h) {
    uint32_t mask = t->capacity - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        rm_booking_t *b = &t->slots[i];
        if (!b->id_len ||
            (b->hash == h && b->id_len == len && memcmp(rm_booking_id(b), id, len) == 0))
            return b;
    }
}

rm_booking_t *rm_booking_find(rm_booking_table_t *t, const char *id, size_t len) {
    if (t->capacity == 0 || len == 0)
        return NULL;
    rm_booking_t *b = probe(t, id, len, hash(id, len));
    return b->id_len ? b : NULL;
}

static int grow(rm_booking_table_t *t) {
    uint32_t cap = t->capacity ? t->capacity * 2 : 8;
    rm_booking_t *slots = calloc(cap, sizeof(*slots));
    uint16_t *day1 = slots ? calloc(cap, sizeof(*day1)) : NULL;
    if (!day1) {
        free(slots);
        return -1;
    }
    rm_booking_table_t n = {slots, day1, cap, 0};
    uint32_t mask = cap - 1;
    for (uint32_t i = 0; i < t->capacity; i++) {
        if (!t->slots[i].id_len)
            continue;
        /* Ids are unique: the first free slot from home is its place. */
        uint32_t j = t->slots[i].hash & mask;
        while (n.slots[j].id_len)
            j = (j + 1) & mask;
        n.slots[j] = t->slots[i];
        n.day1[j] = t->day1[i];
        n.count++;
    }
    free(t->slots);
    free(t->day1);
    *t = n;
    return 0;
}

rm_booking_t *rm_booking_upsert(rm_booking_table_t *t, const char *id, size_t len) {
    if (len == 0 || len > UINT16_MAX)
        return NULL;
    if ((t->count + 1) * 4 > t->capacity * 3 && grow(t) < 0)
        return NULL;
    uint32_t h = hash(id, len);
    rm_booking_t *b = probe(t, id, len, h);
    if (b->id_len)
        return b;
    memset(b, 0, sizeof(*b)); /* a reused slot must not keep a removed booking's fields */
    t->day1[b - t->slots] = 0;
    if (len <= RM_BOOKING_INLINE) {
        memcpy(b->id_bytes, id, len);
    } else {
        char *p = malloc(len);
        if (!p)
            return NULL;
        memcpy(p, id, len);
        memcpy(b->id_bytes, &p, sizeof(p));
    }
    b->hash = h;
    b->id_len = (uint16_t)len;
    t->count++;
    return b;
}

static void entry_free(rm_booking_t *b) {
    if (b->id_len > RM_BOOKING_INLINE)
        free(heap_id(b));
}

void rm_booking_remove(rm_booking_table_t *t, rm_booking_t *b) {
    uint32_t mask = t->capacity - 1;
    uint32_t i = (uint32_t)(b - t->slots);
    entry_free(b);
    memset(&t->slots[i], 0, sizeof(t->slots[i]));
    t->day1[i] = 0;
    t->count--;
    /* Backward-shift: move later entries of the probe run into the hole. */
    for (uint32_t j = (i + 1) & mask; t->slots[j].id_len; j = (j + 1) & mask) {
        uint32_t home = t->slots[j].hash & mask;
        /* Entry j may move to i if its home is not in the cyclic range (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            t->slots[i] = t->slots[j];
            t->day1[i] = t->day1[j];
            memset(&t->slots[j], 0, sizeof(t->slots[j]));
            t->day1[j] = 0;
            i = j;
        }
    }
}

void rm_booking_set(rm_booking_table_t *t, rm_booking_t *b, uint16_t day, uint16_t start,
                    uint16_t count) {
    b->day = day;
    b->start = start;
    b->count = count;
    t->day1[b - t->slots] = count ? (uint16_t)(day + 1) : 0;
}

void rm_booking_table_free(rm_booking_table_t *t) {
    for (uint32_t i = 0; i < t->capacity; i++)
        entry_free(&t->slots[i]);
    free(t->slots);
    free(t->day1);
    memset(t, 0, sizeof(*t));
}
