/*
 * Availability projection: the state of one practitioner as the events of
 * events.md define it, and the 36-byte Redis value of each day derived from
 * it. Pure functions on in-memory state: no I/O, no clock, no randomness.
 *
 * State: for every day that any event touched, three fixed 288-bit sets
 * (published slots, and two bit planes counting the bookings that hold each
 * slot, saturating at three) in an array sorted by day; a booking table
 * (booking id -> day and slots); the `active` flag; and a CRoaring set of
 * dirty days (days whose Redis value may have changed since
 * rm_avail_clear_dirty()). A day is the Redis value's own shape, so every
 * event is a few word operations on one array entry.
 *
 * Thread-safety: none inside; an rm_avail_t belongs to one thread at a time
 * (the worker or replay thread that owns its partition). Pure functions of
 * their arguments otherwise.
 */
#ifndef READMODEL_AVAILABILITY_H
#define READMODEL_AVAILABILITY_H

#include "readmodel/date.h"
#include "readmodel/event.h"

#include <roaring/roaring.h>
#include <stdbool.h>
#include <stdint.h>

/* 288 slots in 5 words: slot s is bit s % 64 of word s / 64. */
#define RM_DAY_WORDS 5u

/* The number of bookings holding each slot is a 2-bit saturating counter
 * kept in two bit planes, (hold_hi, hold_lo) = 0, 1, 2, or 3 for "three or
 * more"; a slot is booked when either bit is set. */
typedef struct {
    uint64_t published[RM_DAY_WORDS];
    uint64_t hold_lo[RM_DAY_WORDS];
    uint64_t hold_hi[RM_DAY_WORDS];
    uint16_t day;
} rm_day_t;

/* Ids up to this many bytes are stored in the entry itself (a UUID is 36),
 * so a lookup reads no memory outside the table; longer ones (events.md
 * allows 64 characters) are malloc'd and the entry holds the pointer.
 * (64-byte, line-aligned entries measured no faster than these 56.) */
#define RM_BOOKING_INLINE 44u

typedef struct {
    char id_bytes[RM_BOOKING_INLINE]; /* the id, or (longer ids) an owned char * */
    uint16_t id_len;                  /* 1..; 0 means an empty table slot */
    uint16_t day, start, count;
    uint32_t hash; /* of id: compared before the bytes, and the home slot on deletion */
} rm_booking_t;

/* Open-addressing table of bookings keyed by id. */
typedef struct {
    rm_booking_t *slots; /* capacity entries; id_len == 0 means empty */
    uint32_t capacity;   /* power of two, or 0 */
    uint32_t count;
} rm_booking_table_t;

typedef struct {
    bool exists;        /* at least one event has been applied */
    bool active;        /* false after PractitionerDeactivated until re-registration */
    rm_day_t *days;     /* ndays entries, ascending by day; owned */
    uint16_t *day_keys; /* days[i].day, packed: the binary search reads 2 bytes
                         * per step instead of a 128-byte entry; owned */
    uint32_t ndays, days_cap;
    rm_booking_table_t bookings;
    roaring_bitmap_t *dirty; /* day numbers */
    bool no_dirty_marks;     /* set by a replay, which marks every day at the end
                              * (rm_avail_mark_all_dirty): apply skips the marks */
} rm_avail_t;

typedef enum {
    RM_APPLY_OK,
    RM_APPLY_UNKNOWN_BOOKING, /* BookingCancelled of an unknown id: nothing changed */
} rm_apply_t;

/* Initialises empty state (no practitioner). Returns RM_ERR_NOMEM on failure,
 * leaving *st safe to pass to rm_avail_free. */
int rm_avail_init(rm_avail_t *st);
/* Frees everything *st owns; a zeroed or freed state is a no-op. */
void rm_avail_free(rm_avail_t *st);

/* Applies one valid event. Marks affected days dirty. Returns
 * RM_APPLY_UNKNOWN_BOOKING for a cancellation of an unknown booking (an
 * anomaly, state unchanged), else RM_APPLY_OK. Aborts on allocation failure
 * (of the day array, the booking table or inside CRoaring, which has no
 * error return), so a partly applied event is never left behind. */
rm_apply_t rm_avail_apply(rm_avail_t *st, const rm_event_t *ev);

/* Writes day's 36-byte value (bit i, MSB-first, set when slot i is free) and
 * returns the number of free slots; 0 means the Redis key must not exist. */
unsigned rm_avail_day(const rm_avail_t *st, uint16_t day, uint8_t out[RM_DAY_BYTES]);

/* rm_avail_day for a caller that asks for days in ascending order: *pos (0
 * before the first call) is where the search resumes, so a practitioner's
 * days cost one pass instead of a binary search each. */
unsigned rm_avail_day_next(const rm_avail_t *st, uint32_t *pos, uint16_t day,
                           uint8_t out[RM_DAY_BYTES]);

/* The day's entry, or NULL when no event touched that day. */
const rm_day_t *rm_avail_find_day(const rm_avail_t *st, uint16_t day);

/* Marks every day that has a published slot dirty (all days whose value may
 * exist in Redis). */
void rm_avail_mark_all_dirty(rm_avail_t *st);
void rm_avail_clear_dirty(rm_avail_t *st);
bool rm_avail_is_dirty(const rm_avail_t *st);

/* Serialises the state into a newly malloc'd buffer (*out, *len, caller
 * frees). Returns 0, or RM_ERR_NOMEM. Dirty days are not serialised. */
int rm_avail_encode(const rm_avail_t *st, char **out, size_t *len);
/* Rebuilds state from rm_avail_encode bytes; *st must be freshly initialised.
 * Returns 0, or RM_ERR_CORRUPT for bytes it did not write (checked, never
 * trusted: every length and run is bounds-checked before it is used), or
 * RM_ERR_NOMEM. */
int rm_avail_decode(rm_avail_t *st, const char *buf, size_t len);

/* Booking table (booking_table.c). Ids are copied; lookups by bytes. The
 * id of an entry (id_len bytes, not NUL-terminated) is rm_booking_id(). */
const char *rm_booking_id(const rm_booking_t *b);
rm_booking_t *rm_booking_find(rm_booking_table_t *t, const char *id, size_t len);
/* Inserts or returns the existing entry for id; NULL when out of memory. */
rm_booking_t *rm_booking_upsert(rm_booking_table_t *t, const char *id, size_t len);
void rm_booking_remove(rm_booking_table_t *t, rm_booking_t *b);
void rm_booking_table_free(rm_booking_table_t *t);

#endif
