/*
 * Booking table: open addressing with linear probing and backward-shift
 * deletion (no tombstones), keyed by booking id with FNV-1a. Sized to stay
 * at most 3/4 full. Entries own a copy of their id.
 */
#include "readmodel/availability.h"

#include <stdlib.h>
#include <string.h>

static uint32_t hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static rm_booking_t *probe(rm_booking_table_t *t, const char *id, size_t len, uint32_t h) {
    uint32_t mask = t->capacity - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        rm_booking_t *b = &t->slots[i];
        if (!b->id || (b->hash == h && b->id_len == len && memcmp(b->id, id, len) == 0))
            return b;
    }
}

rm_booking_t *rm_booking_find(rm_booking_table_t *t, const char *id, size_t len) {
    if (t->capacity == 0)
        return NULL;
    rm_booking_t *b = probe(t, id, len, hash(id, len));
    return b->id ? b : NULL;
}

static int grow(rm_booking_table_t *t) {
    uint32_t cap = t->capacity ? t->capacity * 2 : 8;
    rm_booking_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    rm_booking_table_t n = {slots, cap, 0};
    for (uint32_t i = 0; i < t->capacity; i++) {
        if (t->slots[i].id) {
            *probe(&n, t->slots[i].id, t->slots[i].id_len, t->slots[i].hash) = t->slots[i];
            n.count++;
        }
    }
    free(t->slots);
    *t = n;
    return 0;
}

rm_booking_t *rm_booking_upsert(rm_booking_table_t *t, const char *id, size_t len) {
    if ((t->count + 1) * 4 > t->capacity * 3 && grow(t) < 0)
        return NULL;
    uint32_t h = hash(id, len);
    rm_booking_t *b = probe(t, id, len, h);
    if (b->id)
        return b;
    memset(b, 0, sizeof(*b)); /* a reused slot must not keep a removed booking's fields */
    b->hash = h;
    b->id = malloc(len + 1);
    if (!b->id)
        return NULL;
    memcpy(b->id, id, len);
    b->id[len] = '\0';
    b->id_len = (uint16_t)len;
    t->count++;
    return b;
}

void rm_booking_remove(rm_booking_table_t *t, rm_booking_t *b) {
    uint32_t mask = t->capacity - 1;
    uint32_t i = (uint32_t)(b - t->slots);
    free(b->id);
    memset(&t->slots[i], 0, sizeof(t->slots[i]));
    t->count--;
    /* Backward-shift: move later entries of the probe run into the hole. */
    for (uint32_t j = (i + 1) & mask; t->slots[j].id; j = (j + 1) & mask) {
        uint32_t home = t->slots[j].hash & mask;
        /* Entry j may move to i if its home is not in the cyclic range (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            t->slots[i] = t->slots[j];
            memset(&t->slots[j], 0, sizeof(t->slots[j]));
            i = j;
        }
    }
}

void rm_booking_table_free(rm_booking_table_t *t) {
    for (uint32_t i = 0; i < t->capacity; i++)
        free(t->slots[i].id);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}
