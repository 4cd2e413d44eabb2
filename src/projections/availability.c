/*
 * Availability projection. Each day any event touched has its published
 * slots and, per slot, how many bookings hold it: a 2-bit counter in two bit
 * planes that saturates at 3 ("three or more"). A slot range is one mask per
 * word, so publishing, withdrawing, holding and releasing are a handful of
 * word operations. Only releasing a slot whose counter is saturated needs
 * the exact count: then that one day is recomputed from the booking table
 * (triple overlaps are rare; with a plain "held by two or more" set the
 * recompute ran on every release of a double hold, a quarter of a million
 * table scans in the benchmark's log). Every change marks its day dirty
 * twice: its Redis value (dirty) and its stored state (sdirty; a change of
 * `active` touches only the former), and rm_avail_day() materialises a day
 * into the 36-byte Redis value.
 *
 * Days live in an array sorted by day. The log moves forward in time, so a
 * new day is nearly always appended, and the last day is checked first.
 */
#include "readmodel/availability.h"
#include "readmodel/error.h"

#include <stdlib.h>
#include <string.h>

int rm_avail_init(rm_avail_t *st) {
    memset(st, 0, sizeof(*st));
    st->active = true;
    st->dirty = roaring_bitmap_create();
    st->sdirty = st->dirty ? roaring_bitmap_create() : NULL;
    return st->sdirty ? 0 : RM_ERR_NOMEM;
}

void rm_avail_free(rm_avail_t *st) {
    if (st->dirty)
        roaring_bitmap_free(st->dirty);
    if (st->sdirty)
        roaring_bitmap_free(st->sdirty);
    free(st->os_days);
    free(st->os_fences);
    free(st->days);
    free(st->day_keys);
    rm_booking_table_free(&st->bookings);
    memset(st, 0, sizeof(*st));
}

/* Index of the first entry whose day is >= day (ndays when none). */
static uint32_t lower_bound(const rm_avail_t *st, uint16_t day) {
    uint32_t lo = 0, hi = st->ndays;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (st->day_keys[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const rm_day_t *rm_avail_find_day(const rm_avail_t *st, uint16_t day) {
    if (st->ndays && st->day_keys[st->ndays - 1] == day)
        return &st->days[st->ndays - 1];
    uint32_t i = lower_bound(st, day);
    return i < st->ndays && st->day_keys[i] == day ? &st->days[i] : NULL;
}

/* The day's entry, created empty when absent. The pointer is valid until
 * the next call that may create a day. */
static rm_day_t *day_get(rm_avail_t *st, uint16_t day) {
    uint32_t i = st->ndays && st->day_keys[st->ndays - 1] < day ? st->ndays : lower_bound(st, day);
    if (i < st->ndays && st->day_keys[i] == day)
        return &st->days[i];
    if (st->ndays == st->days_cap) {
        uint32_t cap = st->days_cap ? st->days_cap * 2 : 8;
        rm_day_t *d = realloc(st->days, cap * sizeof(*d));
        if (d)
            st->days = d;
        uint16_t *k = d ? realloc(st->day_keys, cap * sizeof(*k)) : NULL;
        if (!k)
            abort(); /* allocation failure: the same policy as CRoaring */
        st->day_keys = k;
        st->days_cap = cap;
    }
    memmove(&st->days[i + 1], &st->days[i], (st->ndays - i) * sizeof(*st->days));
    memmove(&st->day_keys[i + 1], &st->day_keys[i], (st->ndays - i) * sizeof(*st->day_keys));
    st->day_keys[i] = day;
    st->ndays++;
    memset(&st->days[i], 0, sizeof(st->days[i]));
    st->days[i].day = day;
    return &st->days[i];
}

/* The words of the slot range [start, start + count) of one day. */
static void range_mask(unsigned start, unsigned count, uint64_t m[RM_DAY_WORDS]) {
    unsigned end = start + count;
    for (unsigned w = 0; w < RM_DAY_WORDS; w++) {
        unsigned lo = w * 64, hi = lo + 64;
        unsigned a = start > lo ? start : lo, b = end < hi ? end : hi;
        if (a >= b)
            m[w] = 0;
        else
            m[w] = (b - a == 64 ? ~0ull : ((1ull << (b - a)) - 1)) << (a - lo);
    }
}

static void mark(rm_avail_t *st, uint16_t day) {
    if (!st->no_dirty_marks) {
        roaring_bitmap_add(st->dirty, day);
        roaring_bitmap_add(st->sdirty, day);
    }
}

static void publish(rm_avail_t *st, uint16_t day, uint16_t start, uint16_t count, bool on) {
    uint64_t m[RM_DAY_WORDS];
    range_mask(start, count, m);
    rm_day_t *d = day_get(st, day);
    for (unsigned w = 0; w < RM_DAY_WORDS; w++)
        d->published[w] = on ? d->published[w] | m[w] : d->published[w] & ~m[w];
    mark(st, day);
}

/* Adds a hold on the slots of m: each counter goes up by one, except those
 * already saturated. */
static void hold_words(rm_day_t *d, const uint64_t m[RM_DAY_WORDS]) {
    for (unsigned w = 0; w < RM_DAY_WORDS; w++) {
        uint64_t up = m[w] & ~(d->hold_lo[w] & d->hold_hi[w]);
        d->hold_hi[w] |= d->hold_lo[w] & up; /* 1 -> 2 (a 2 has lo clear, a 3 is not in up) */
        d->hold_lo[w] ^= up;                 /* 0 -> 1, 1 -> 0 (now 2), 2 -> 3 */
    }
}

static void hold_add(rm_avail_t *st, uint16_t day, uint16_t start, uint16_t count) {
    uint64_t m[RM_DAY_WORDS];
    range_mask(start, count, m);
    hold_words(day_get(st, day), m);
    mark(st, day);
}

/* Recomputes the hold counters of one day from the booking table. */
static void recompute_day(rm_avail_t *st, uint16_t day) {
    rm_day_t *d = day_get(st, day);
    memset(d->hold_lo, 0, sizeof(d->hold_lo));
    memset(d->hold_hi, 0, sizeof(d->hold_hi));
    const rm_booking_table_t *t = &st->bookings;
    for (uint32_t i = 0; i < t->capacity; i++) {
        if (t->day1[i] != day + 1)
            continue;
        const rm_booking_t *b = &t->slots[i];
        uint64_t m[RM_DAY_WORDS];
        range_mask(b->start, b->count, m);
        hold_words(d, m);
    }
    mark(st, day);
}

/* Removes a hold that is no longer in the table (or has count 0): each
 * counter of its slots goes down by one. A saturated counter does not know
 * its count, so then the day is recomputed. */
static void hold_remove(rm_avail_t *st, uint16_t day, uint16_t start, uint16_t count) {
    uint64_t m[RM_DAY_WORDS], saturated = 0;
    range_mask(start, count, m);
    rm_day_t *d = day_get(st, day);
    for (unsigned w = 0; w < RM_DAY_WORDS; w++)
        saturated |= d->hold_lo[w] & d->hold_hi[w] & m[w];
    if (saturated) {
        recompute_day(st, day);
        return;
    }
    for (unsigned w = 0; w < RM_DAY_WORDS; w++) {
        uint64_t two = m[w] & d->hold_hi[w]; /* 2 -> 1; else 1 -> 0 */
        d->hold_hi[w] &= ~two;
        d->hold_lo[w] ^= m[w];
    }
    mark(st, day);
}

/* Booking `id` now holds the given slots (created, replaced or moved). */
static void booking_place(rm_avail_t *st, rm_span_t id, uint16_t day, uint16_t start,
                          uint16_t count) {
    rm_booking_t *b = rm_booking_upsert(&st->bookings, id.ptr, id.len);
    if (!b)
        abort(); /* allocation failure: CRoaring has the same policy */
    if (b->count) {
        uint16_t od = b->day, os = b->start, oc = b->count;
        rm_booking_set(&st->bookings, b, od, os, 0); /* detached while its old hold is removed */
        hold_remove(st, od, os, oc);
    }
    rm_booking_set(&st->bookings, b, day, start, count);
    hold_add(st, day, start, count);
}

static void snapshot(rm_avail_t *st, const rm_event_t *ev) {
    uint16_t day = ev->slots.day;
    rm_day_t *d = day_get(st, day);
    memset(d->published, 0, sizeof(d->published));
    for (size_t i = 0; i < ev->n_published; i++) {
        uint64_t m[RM_DAY_WORDS];
        range_mask(ev->published[i].start, ev->published[i].count, m);
        for (unsigned w = 0; w < RM_DAY_WORDS; w++)
            d->published[w] |= m[w];
    }
    /* Every booking on that date is removed (backward-shift deletion may
     * move a later entry into slot i, so i advances only when it is kept). */
    rm_booking_table_t *t = &st->bookings;
    for (uint32_t i = 0; i < t->capacity;) {
        if (t->day1[i] == day + 1) /* a booking that holds slots on that day */
            rm_booking_remove(t, &t->slots[i]);
        else
            i++;
    }
    memset(d->hold_lo, 0, sizeof(d->hold_lo));
    memset(d->hold_hi, 0, sizeof(d->hold_hi));
    mark(st, day);
    for (size_t i = 0; i < ev->n_bookings; i++)
        booking_place(st, ev->bookings[i].booking_id, day, ev->bookings[i].start,
                      ev->bookings[i].count);
}

static void set_active(rm_avail_t *st, bool active) {
    if (st->active != active) {
        st->active = active;
        if (!st->no_dirty_marks)
            rm_avail_mark_all_dirty(st);
    }
}

rm_apply_t rm_avail_apply(rm_avail_t *st, const rm_event_t *ev) {
    st->exists = true;
    const rm_slots_t *s = &ev->slots;
    switch (ev->type) {
    case RM_EV_PRACTITIONER_REGISTERED:
        set_active(st, true);
        break;
    case RM_EV_PRACTITIONER_DEACTIVATED:
        set_active(st, false);
        break;
    case RM_EV_SLOTS_PUBLISHED:
        publish(st, s->day, s->start, s->count, true);
        break;
    case RM_EV_SLOTS_WITHDRAWN:
        publish(st, s->day, s->start, s->count, false);
        break;
    case RM_EV_BOOKING_CREATED:
    case RM_EV_BOOKING_RESCHEDULED:
        booking_place(st, ev->booking_id, s->day, s->start, s->count);
        break;
    case RM_EV_BOOKING_CANCELLED: {
        rm_booking_t *b = rm_booking_find(&st->bookings, ev->booking_id.ptr, ev->booking_id.len);
        if (!b)
            return RM_APPLY_UNKNOWN_BOOKING;
        uint16_t od = b->day, os = b->start, oc = b->count;
        rm_booking_remove(&st->bookings, b);
        hold_remove(st, od, os, oc);
        break;
    }
    case RM_EV_AVAILABILITY_SNAPSHOT:
        snapshot(st, ev);
        break;
    default: /* PractitionerUpdated: profile only, no availability effect */
        break;
    }
    return RM_APPLY_OK;
}

/* Byte b with its bit order reversed (the words keep slot 0 in the least
 * significant bit; the Redis value keeps it in the most significant). */
static const uint8_t reversed[256] = {
#define R2(n) n, n + 2 * 64, n + 1 * 64, n + 3 * 64
#define R4(n) R2(n), R2(n + 2 * 16), R2(n + 1 * 16), R2(n + 3 * 16)
#define R6(n) R4(n), R4(n + 2 * 4), R4(n + 1 * 4), R4(n + 3 * 4)
    R6(0), R6(2), R6(1), R6(3)
#undef R6
#undef R4
#undef R2
};

/* The 36-byte value of day entry d (NULL: no slot free); the number of
 * free slots. */
static unsigned materialise(const rm_day_t *d, uint8_t out[RM_DAY_BYTES]) {
    memset(out, 0, RM_DAY_BYTES);
    if (!d)
        return 0;
    unsigned n = 0;
    for (unsigned w = 0; w < RM_DAY_WORDS; w++) {
        uint64_t free = d->published[w] & ~(d->hold_lo[w] | d->hold_hi[w]);
        n += (unsigned)__builtin_popcountll(free);
        for (unsigned b = 0; b < 8 && w * 8 + b < RM_DAY_BYTES; b++)
            out[w * 8 + b] = reversed[(free >> (8 * b)) & 0xff];
    }
    return n;
}

unsigned rm_avail_day(const rm_avail_t *st, uint16_t day, uint8_t out[RM_DAY_BYTES]) {
    return materialise(st->active ? rm_avail_find_day(st, day) : NULL, out);
}

unsigned rm_avail_day_next(const rm_avail_t *st, uint32_t *pos, uint16_t day,
                           uint8_t out[RM_DAY_BYTES]) {
    while (*pos < st->ndays && st->day_keys[*pos] < day)
        (*pos)++;
    bool found = st->active && *pos < st->ndays && st->day_keys[*pos] == day;
    return materialise(found ? &st->days[*pos] : NULL, out);
}

void rm_avail_mark_all_dirty(rm_avail_t *st) {
    for (uint32_t i = 0; i < st->ndays; i++) {
        const rm_day_t *d = &st->days[i];
        uint64_t any = 0;
        for (unsigned w = 0; w < RM_DAY_WORDS; w++)
            any |= d->published[w];
        if (any) /* asked for explicitly: also when no_dirty_marks is set */
            roaring_bitmap_add(st->dirty, d->day);
    }
}

void rm_avail_clear_dirty(rm_avail_t *st) {
    roaring_bitmap_clear(st->dirty);
    roaring_bitmap_clear(st->sdirty);
    st->rewrite = false;
}

bool rm_avail_is_dirty(const rm_avail_t *st) {
    return !roaring_bitmap_is_empty(st->dirty) || !roaring_bitmap_is_empty(st->sdirty);
}
