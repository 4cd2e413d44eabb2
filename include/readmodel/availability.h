/*
 * Availability projection: the state of one practitioner as the events of
 * events.md define it, and the 36-byte Redis value of each day derived from
 * it. Pure functions on in-memory state: no I/O, no clock, no randomness.
 *
 * State: for every day that any event touched, three fixed 288-bit sets
 * (published slots, and two bit planes counting the bookings that hold each
 * slot, saturating at three) in an array sorted by day; a booking table
 * (booking id -> day and slots); the `active` flag; and two CRoaring sets of
 * dirty days since rm_avail_clear_dirty(): days whose Redis value may have
 * changed, and days whose stored state (published slots or bookings) did.
 * A day is the Redis value's own shape, so every event is a few word
 * operations on one array entry.
 *
 * Stored form: either the whole state in one blob (rm_avail_encode, kept by
 * the tests' fake sink and read from stores written by earlier releases), or
 * per day (rm_avail_encode_days: a small head plus one value per day holding
 * that day's published slots and bookings, kept by the Redis sink in one
 * hash field per day and by the OpenSearch sink in one document per day and
 * slot), so a write carries only the days an event changed.
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
    uint16_t *day1;      /* capacity entries: slots[i].day + 1 while slots[i] holds
                          * slots (count > 0), else 0. A flush finds the
                          * bookings of its days by reading these 2 bytes per
                          * entry instead of the 56-byte entries */
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
    roaring_bitmap_t *dirty;  /* day numbers whose Redis value may have changed */
    roaring_bitmap_t *sdirty; /* day numbers whose stored state (published slots or
                               * bookings) changed: the days a per-day write carries */
    bool rewrite;             /* the stored copy is not in per-day form (it was
                               * decoded from rm_avail_encode bytes): the next
                               * per-day write must replace it whole */
    bool no_dirty_marks;      /* set by a replay, which marks every day at the end
                               * (rm_avail_mark_all_dirty): apply skips the marks */
    uint16_t *os_days;        /* kept by the OpenSearch sink (opensearch_state.c): the
                               * stored days its last committed head names, ascending
                               * (os_n of them; NULL: none) ... */
    int64_t *os_fences;       /* ... and the fence in each one's slot document id.
                               * Both owned, freed by rm_avail_free; nothing else reads
                               * or writes them */
    uint32_t os_n;
    int32_t os_gen; /* kept by the OpenSearch sink: the generation of the
                     * state index this state was loaded from (0: unknown);
                     * a live flush writes its state there, not through the
                     * alias */
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
 * exist in Redis). The stored-state set (sdirty) is not touched. */
void rm_avail_mark_all_dirty(rm_avail_t *st);
/* Clears both dirty sets and the rewrite flag (after a successful write). */
void rm_avail_clear_dirty(rm_avail_t *st);
/* Whether either dirty set is non-empty. */
bool rm_avail_is_dirty(const rm_avail_t *st);

/* Serialises the state into a newly malloc'd buffer (*out, *len, caller
 * frees). Returns 0, or RM_ERR_NOMEM. Dirty days are not serialised. */
int rm_avail_encode(const rm_avail_t *st, char **out, size_t *len);
/* Rebuilds state from rm_avail_encode bytes; *st must be freshly initialised.
 * Leaves nothing dirty. Returns 0, or RM_ERR_CORRUPT for bytes it did not write (checked, never
 * trusted: every length and run is bounds-checked before it is used), or
 * RM_ERR_NOMEM. */
int rm_avail_decode(rm_avail_t *st, const char *buf, size_t len);

/* ---- per-day stored form (avail_codec.c) ----
 *
 * Head: RM_AVAIL_HEAD_BYTES bytes, "RMH2" then a flags byte (bit0 exists,
 * bit1 active). Day value: the 288 published bits (36 bytes, slot s is bit
 * s % 8 of byte s / 8), u16 the number of bookings on that day, then each
 * of them sorted by id: u16 id length, the id, u16 start, u16 count (all
 * little-endian). A day with no
 * published slot and no booking has no value (length 0: not stored). The
 * encoding is canonical: the same state gives the same bytes. */
#define RM_AVAIL_HEAD_BYTES 5u

/* One day's stored value; p is borrowed (from the buffer of
 * rm_avail_encode_days, or the caller's for decoding). */
typedef struct {
    uint16_t day;
    const char *p;
    size_t len; /* 0: the day holds nothing (its stored value is deleted) */
} rm_day_bytes_t;

/* Writes the head of st. Pure, cannot fail. */
void rm_avail_encode_head(const rm_avail_t *st, uint8_t out[RM_AVAIL_HEAD_BYTES]);

/* Encodes the stored value of every day in `days` (ascending). On success
 * *buf (caller frees) holds the bytes and *out (caller frees) *n entries,
 * ascending by day, pointing into *buf. Cost: the bytes of those days plus
 * one pass over the booking table. Returns 0, or RM_ERR_NOMEM (nothing
 * allocated). */
int rm_avail_encode_days(const rm_avail_t *st, const roaring_bitmap_t *days, char **buf,
                         rm_day_bytes_t **out, size_t *n);

/* Every day that has a stored value (a published slot or a booking), into
 * the empty set `days`: what a write that replaces the whole state carries.
 * Aborts on allocation failure (CRoaring's policy). */
void rm_avail_state_days(const rm_avail_t *st, roaring_bitmap_t *days);

/* Sets st->rewrite and adds every day with a stored value to sdirty: the
 * next per-day write replaces the stored copy whole (it was read in another
 * form). Aborts on allocation failure (CRoaring's policy). */
void rm_avail_mark_rewrite(rm_avail_t *st);

/* Rebuilds state from a head and day values (in any order; the array is
 * sorted in place); *st must be freshly initialised. Leaves nothing dirty.
 * Returns 0, or RM_ERR_CORRUPT for bytes it did not write (bad head, a day
 * out of range or given twice, a bad length, a booking on two days; every
 * length is bounds-checked before use). */
int rm_avail_decode_days(rm_avail_t *st, const char *head, size_t head_len, rm_day_bytes_t *days,
                         size_t n);

/* Booking table (booking_table.c). Ids are copied; lookups by bytes. The
 * id of an entry (id_len bytes, not NUL-terminated) is rm_booking_id(). */
const char *rm_booking_id(const rm_booking_t *b);
rm_booking_t *rm_booking_find(rm_booking_table_t *t, const char *id, size_t len);
/* Inserts or returns the existing entry for id; NULL when out of memory. */
rm_booking_t *rm_booking_upsert(rm_booking_table_t *t, const char *id, size_t len);
void rm_booking_remove(rm_booking_table_t *t, rm_booking_t *b);
/* Sets b's day and slots (count 0: holds none), keeping day1 in step. */
void rm_booking_set(rm_booking_table_t *t, rm_booking_t *b, uint16_t day, uint16_t start,
                    uint16_t count);
void rm_booking_table_free(rm_booking_table_t *t);

#endif
