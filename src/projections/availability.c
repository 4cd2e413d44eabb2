/*
 * Availability projection. Slots are indexed day * 288 + slot in CRoaring
 * bitmaps: `published`, `booked` (held by at least one booking) and
 * `overlap` (held by two or more). Overlaps are rare, so removing a booking
 * is a range removal unless it touches `overlap`; only then is that one day
 * recomputed from the booking table. Every change marks its day dirty, and
 * rm_avail_day() materialises a dirty day into the 36-byte Redis value.
 */
#include "readmodel/availability.h"
#include "readmodel/error.h"

#include <stdlib.h>
#include <string.h>

static uint32_t slot_index(uint16_t day, uint16_t slot) {
    return (uint32_t)day * RM_SLOTS_PER_DAY + slot;
}

int rm_avail_init(rm_avail_t *st) {
    memset(st, 0, sizeof(*st));
    st->active = true;
    st->published = roaring_bitmap_create();
    st->booked = roaring_bitmap_create();
    st->overlap = roaring_bitmap_create();
    st->dirty = roaring_bitmap_create();
    if (!st->published || !st->booked || !st->overlap || !st->dirty) {
        rm_avail_free(st);
        return RM_ERR_NOMEM;
    }
    return 0;
}

void rm_avail_free(rm_avail_t *st) {
    if (st->published)
        roaring_bitmap_free(st->published);
    if (st->booked)
        roaring_bitmap_free(st->booked);
    if (st->overlap)
        roaring_bitmap_free(st->overlap);
    if (st->dirty)
        roaring_bitmap_free(st->dirty);
    rm_booking_table_free(&st->bookings);
    memset(st, 0, sizeof(*st));
}

static void mark(rm_avail_t *st, uint16_t day) {
    roaring_bitmap_add(st->dirty, day);
}

/* Adds a booking's hold on [start, start+count) of day. */
static void hold_add(rm_avail_t *st, uint16_t day, uint16_t start, uint16_t count) {
    uint32_t lo = slot_index(day, start), hi = lo + count;
    if (roaring_bitmap_range_cardinality(st->booked, lo, hi) > 0) {
        for (uint32_t s = lo; s < hi; s++)
            if (roaring_bitmap_contains(st->booked, s))
                roaring_bitmap_add(st->overlap, s);
    }
    roaring_bitmap_add_range(st->booked, lo, hi);
    mark(st, day);
}

/* Recomputes `booked` and `overlap` of one day from the booking table. */
static void recompute_day(rm_avail_t *st, uint16_t day) {
    uint8_t held[RM_SLOTS_PER_DAY] = {0};
    const rm_booking_table_t *t = &st->bookings;
    for (uint32_t i = 0; i < t->capacity; i++) {
        const rm_booking_t *b = &t->slots[i];
        if (!b->id || b->day != day || b->count == 0)
            continue;
        for (unsigned s = b->start; s < (unsigned)b->start + b->count; s++)
            if (held[s] < 2)
                held[s]++;
    }
    uint32_t base = slot_index(day, 0);
    roaring_bitmap_remove_range(st->booked, base, base + RM_SLOTS_PER_DAY);
    roaring_bitmap_remove_range(st->overlap, base, base + RM_SLOTS_PER_DAY);
    /* One range per run of held slots (and of doubly held ones). */
    for (unsigned level = 1; level <= 2; level++) {
        roaring_bitmap_t *into = level == 1 ? st->booked : st->overlap;
        for (unsigned s = 0; s < RM_SLOTS_PER_DAY;) {
            if (held[s] < level) {
                s++;
                continue;
            }
            unsigned e = s;
            while (e < RM_SLOTS_PER_DAY && held[e] >= level)
                e++;
            roaring_bitmap_add_range(into, base + s, base + e);
            s = e;
        }
    }
    mark(st, day);
}

/* Removes a hold that is no longer in the table (or has count 0). */
static void hold_remove(rm_avail_t *st, uint16_t day, uint16_t start, uint16_t count) {
    uint32_t lo = slot_index(day, start), hi = lo + count;
    if (roaring_bitmap_range_cardinality(st->overlap, lo, hi) == 0) {
        roaring_bitmap_remove_range(st->booked, lo, hi);
        mark(st, day);
    } else {
        recompute_day(st, day);
    }
}

/* Booking `id` now holds the given slots (created, replaced or moved). */
static void booking_place(rm_avail_t *st, rm_span_t id, uint16_t day, uint16_t start,
                          uint16_t count) {
    rm_booking_t *b = rm_booking_upsert(&st->bookings, id.ptr, id.len);
    if (!b)
        abort(); /* allocation failure: CRoaring has the same policy */
    if (b->count) {
        uint16_t od = b->day, os = b->start, oc = b->count;
        b->count = 0; /* detached while its old hold is removed */
        hold_remove(st, od, os, oc);
    }
    b->day = day;
    b->start = start;
    b->count = count;
    hold_add(st, day, start, count);
}

static void snapshot(rm_avail_t *st, const rm_event_t *ev) {
    uint16_t day = ev->slots.day;
    uint32_t base = slot_index(day, 0);
    roaring_bitmap_remove_range(st->published, base, base + RM_SLOTS_PER_DAY);
    for (size_t i = 0; i < ev->n_published; i++) {
        uint32_t lo = base + ev->published[i].start;
        roaring_bitmap_add_range(st->published, lo, lo + ev->published[i].count);
    }
    /* Every booking on that date is removed (backward-shift deletion may
     * move a later entry into slot i, so i advances only when it is kept). */
    rm_booking_table_t *t = &st->bookings;
    for (uint32_t i = 0; i < t->capacity;) {
        if (t->slots[i].id && t->slots[i].day == day)
            rm_booking_remove(t, &t->slots[i]);
        else
            i++;
    }
    roaring_bitmap_remove_range(st->booked, base, base + RM_SLOTS_PER_DAY);
    roaring_bitmap_remove_range(st->overlap, base, base + RM_SLOTS_PER_DAY);
    mark(st, day);
    for (size_t i = 0; i < ev->n_bookings; i++)
        booking_place(st, ev->bookings[i].booking_id, day, ev->bookings[i].start,
                      ev->bookings[i].count);
}

static void set_active(rm_avail_t *st, bool active) {
    if (st->active != active) {
        st->active = active;
        rm_avail_mark_all_dirty(st);
    }
}

rm_apply_t rm_avail_apply(rm_avail_t *st, const rm_event_t *ev) {
    st->exists = true;
    const rm_slots_t *s = &ev->slots;
    uint32_t lo = slot_index(s->day, s->start), hi = lo + s->count;
    switch (ev->type) {
    case RM_EV_PRACTITIONER_REGISTERED:
        set_active(st, true);
        break;
    case RM_EV_PRACTITIONER_DEACTIVATED:
        set_active(st, false);
        break;
    case RM_EV_SLOTS_PUBLISHED:
        roaring_bitmap_add_range(st->published, lo, hi);
        mark(st, s->day);
        break;
    case RM_EV_SLOTS_WITHDRAWN:
        roaring_bitmap_remove_range(st->published, lo, hi);
        mark(st, s->day);
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

unsigned rm_avail_day(const rm_avail_t *st, uint16_t day, uint8_t out[RM_DAY_BYTES]) {
    memset(out, 0, RM_DAY_BYTES);
    if (!st->active)
        return 0;
    uint32_t base = slot_index(day, 0), end = base + RM_SLOTS_PER_DAY;
    roaring_uint32_iterator_t it;
    roaring_init_iterator(st->published, &it);
    roaring_move_uint32_iterator_equalorlarger(&it, base);
    for (; it.has_value && it.current_value < end; roaring_advance_uint32_iterator(&it)) {
        uint32_t s = it.current_value - base;
        out[s >> 3] |= (uint8_t)(0x80u >> (s & 7));
    }
    roaring_init_iterator(st->booked, &it);
    roaring_move_uint32_iterator_equalorlarger(&it, base);
    for (; it.has_value && it.current_value < end; roaring_advance_uint32_iterator(&it)) {
        uint32_t s = it.current_value - base;
        out[s >> 3] &= (uint8_t) ~(0x80u >> (s & 7));
    }
    unsigned n = 0;
    for (unsigned i = 0; i < RM_DAY_BYTES; i++)
        n += (unsigned)__builtin_popcount(out[i]);
    return n;
}

void rm_avail_mark_all_dirty(rm_avail_t *st) {
    roaring_uint32_iterator_t it;
    roaring_init_iterator(st->published, &it);
    while (it.has_value) {
        uint16_t day = (uint16_t)(it.current_value / RM_SLOTS_PER_DAY);
        mark(st, day);
        roaring_move_uint32_iterator_equalorlarger(&it, slot_index(day, 0) + RM_SLOTS_PER_DAY);
    }
}

void rm_avail_clear_dirty(rm_avail_t *st) {
    roaring_bitmap_clear(st->dirty);
}

bool rm_avail_is_dirty(const rm_avail_t *st) {
    return !roaring_bitmap_is_empty(st->dirty);
}
