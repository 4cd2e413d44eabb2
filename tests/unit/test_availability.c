/*
 * Availability projection, table-driven: each case is a list of events and
 * the expected free slots of one day, compared as 36-byte Redis values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "readmodel/availability.h"
#include "readmodel/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D0 9823 /* 2026-11-23 */
#define D1 9824

static rm_event_t ev_type(rm_event_type_t t) {
    rm_event_t e;
    memset(&e, 0, sizeof(e));
    e.type = t;
    return e;
}
static rm_event_t slots(rm_event_type_t t, uint16_t day, uint16_t s, uint16_t n) {
    rm_event_t e = ev_type(t);
    e.slots = (rm_slots_t){day, s, n};
    return e;
}
static rm_event_t booking(rm_event_type_t t, const char *id, uint16_t day, uint16_t s, uint16_t n) {
    rm_event_t e = slots(t, day, s, n);
    e.booking_id = (rm_span_t){id, strlen(id)};
    return e;
}

#define PUB(d, s, n)         slots(RM_EV_SLOTS_PUBLISHED, d, s, n)
#define WDR(d, s, n)         slots(RM_EV_SLOTS_WITHDRAWN, d, s, n)
#define BOOK(id, d, s, n)    booking(RM_EV_BOOKING_CREATED, id, d, s, n)
#define CANCEL(id, d, s, n)  booking(RM_EV_BOOKING_CANCELLED, id, d, s, n)
#define RESCHED(id, d, s, n) booking(RM_EV_BOOKING_RESCHEDULED, id, d, s, n)
#define DEACT                ev_type(RM_EV_PRACTITIONER_DEACTIVATED)
#define REG                  ev_type(RM_EV_PRACTITIONER_REGISTERED)

/* Expected free slots as a list of [start, count) runs. */
typedef struct {
    uint16_t start, count;
} run_t;

static void expect_day(const rm_avail_t *st, uint16_t day, const run_t *runs, size_t n) {
    uint8_t want[RM_DAY_BYTES] = {0}, got[RM_DAY_BYTES];
    unsigned free_slots = 0;
    for (size_t i = 0; i < n; i++)
        for (unsigned s = runs[i].start; s < (unsigned)runs[i].start + runs[i].count; s++) {
            want[s / 8] |= (uint8_t)(0x80 >> (s % 8));
            free_slots++;
        }
    assert_int_equal(rm_avail_day(st, day, got), free_slots);
    assert_memory_equal(got, want, RM_DAY_BYTES);
}

static void run_events(rm_avail_t *st, const rm_event_t *evs, size_t n) {
    for (size_t i = 0; i < n; i++)
        rm_avail_apply(st, &evs[i]);
}

#define RUN(st, ...)                                                                               \
    do {                                                                                           \
        const rm_event_t evs_[] = {__VA_ARGS__};                                                   \
        run_events(st, evs_, sizeof(evs_) / sizeof(evs_[0]));                                      \
    } while (0)
#define EXPECT(st, day, ...)                                                                       \
    do {                                                                                           \
        const run_t runs_[] = {__VA_ARGS__};                                                       \
        expect_day(st, day, runs_, sizeof(runs_) / sizeof(runs_[0]));                              \
    } while (0)
#define EXPECT_NONE(st, day) expect_day(st, day, NULL, 0)

static void test_bit_order(void **state) {
    (void)state;
    rm_avail_t st;
    rm_avail_init(&st);
    RUN(&st, PUB(D0, 0, 1), PUB(D0, 287, 1));
    uint8_t v[RM_DAY_BYTES];
    assert_int_equal(rm_avail_day(&st, D0, v), 2);
    assert_int_equal(v[0], 0x80);  /* GETBIT 0 = MSB of byte 0 */
    assert_int_equal(v[35], 0x01); /* GETBIT 287 = LSB of byte 35 */
    rm_avail_free(&st);
}

static void test_publish_withdraw_book(void **state) {
    (void)state;
    rm_avail_t st;
    rm_avail_init(&st);
    RUN(&st, PUB(D0, 100, 50), WDR(D0, 140, 20), BOOK("b1", D0, 110, 5));
    EXPECT(&st, D0, {100, 10}, {115, 25});
    EXPECT_NONE(&st, D1);
    RUN(&st, CANCEL("b1", D0, 110, 5));
    EXPECT(&st, D0, {100, 40});
    /* A booking outside published slots holds nothing visible. */
    RUN(&st, BOOK("b2", D0, 0, 10));
    EXPECT(&st, D0, {100, 40});
    rm_avail_free(&st);
}

static void test_cancel_unknown_is_anomaly(void **state) {
    (void)state;
    rm_avail_t st;
    rm_avail_init(&st);
    RUN(&st, PUB(D0, 0, 10));
    rm_event_t c = CANCEL("nope", D0, 0, 10);
    assert_int_equal(rm_avail_apply(&st, &c), RM_APPLY_UNKNOWN_BOOKING);
    EXPECT(&st, D0, {0, 10});
    rm_avail_free(&st);
}

static void test_repeated_create_replaces(void **state) {
    (void)state;
    rm_avail_t st;
    rm_avail_init(&st);
    RUN(&st, PUB(D0, 0, 20), PUB(D1, 0, 20), BOOK("b1", D0, 0, 5), BOOK("b1", D1, 10, 2));
    EXPECT(&st, D0, {0, 20});
    EXPECT(&st, D1, {0, 10}, {12, 8});
    rm_avail_free(&st);
}

static void test_overlapping_bookings(void **state) {
    (void)state;
    rm_avail_t st;
    rm_avail_init(&st);
    RUN(&st, PUB(D0, 0, 30), BOOK("a", D0, 0, 10), BOOK("b", D0, 5, 10));
    EXPECT(&st, D0, {15, 15});
    RUN(&st, CANCEL("a", D0, 0, 10)); /* b still holds 5..14 */
    EXPECT(&st, D0, {0, 5}, {15, 15});
    RUN(&st, RESCHED("b", D0, 20, 2));
    EXPECT(&st, D0, {0, 20}, {22, 8});
    rm_avail_free(&st);
}

/* Regression: a booking created into a table slot freed by a cancellation
 * must not inherit the cancelled booking's hold (found by the e2e test). */
static void test_reused_table_slot(void **state) {
    (void)state;
    rm_avail_t st;
    rm_avail_init(&st);
    RUN(&st, PUB(D0, 160, 32), BOOK("b5", D0, 164, 3), BOOK("b6", D0, 165, 4));
    RUN(&st, CANCEL("b6", D0, 165, 4));
    char id[8];
    for (int i = 0; i < 40; i++) { /* new ids land in freed slots */
        snprintf(id, sizeof(id), "n%d", i);
        rm_event_t e = BOOK(id, D1, (uint16_t)(i % 200), 1);
        rm_avail_apply(&st, &e);
        EXPECT(&st, D0, {160, 4}, {167, 25});
    }
    rm_avail_free(&st);
}

static void test_reschedule_unknown_creates(void **state) {
    (void)state;
    rm_avail_t st;
    rm_avail_init(&st);
    RUN(&st, PUB(D1, 0, 10), RESCHED("x", D1, 2, 2));
    EXPECT(&st, D1, {0, 2}, {4, 6});
    rm_avail_free(&st);
}

static void test_deactivate_and_reregister(void **state) {
    (void)state;
    rm_avail_t st;
    rm_avail_init(&st);
    RUN(&st, PUB(D0, 0, 10), PUB(D1, 5, 5), BOOK("b", D0, 0, 2));
    rm_avail_clear_dirty(&st);
    RUN(&st, DEACT);
    assert_true(roaring_bitmap_contains(st.dirty, D0) && roaring_bitmap_contains(st.dirty, D1));
    EXPECT_NONE(&st, D0);
    EXPECT_NONE(&st, D1);
    /* Changes while inactive are kept and appear on re-registration. */
    RUN(&st, PUB(D0, 20, 2), CANCEL("b", D0, 0, 2), REG);
    EXPECT(&st, D0, {0, 10}, {20, 2});
    EXPECT(&st, D1, {5, 5});
    rm_avail_free(&st);
}

static void test_snapshot_replaces_day(void **state) {
    (void)state;
    rm_avail_t st;
    rm_avail_init(&st);
    RUN(&st, PUB(D0, 0, 100), PUB(D1, 0, 10), BOOK("old", D0, 0, 5), BOOK("moved", D1, 0, 2),
        BOOK("keep", D1, 5, 1));
    rm_event_t s = ev_type(RM_EV_AVAILABILITY_SNAPSHOT);
    s.slots.day = D0;
    const rm_slots_t pub[] = {{D0, 50, 10}, {D0, 70, 5}};
    const rm_snapshot_booking_t bk[] = {{{"moved", 5}, 52, 2}};
    s.published = pub;
    s.n_published = 2;
    s.bookings = bk;
    s.n_bookings = 1;
    rm_avail_apply(&st, &s);
    EXPECT(&st, D0, {50, 2}, {54, 6}, {70, 5});
    EXPECT(&st, D1, {0, 5}, {6, 4}); /* "moved" left D1, "keep" stays */
    /* "old" was removed by the snapshot: cancelling it is now unknown. */
    rm_event_t c = CANCEL("old", D0, 0, 5);
    assert_int_equal(rm_avail_apply(&st, &c), RM_APPLY_UNKNOWN_BOOKING);
    rm_avail_free(&st);
}

static void test_codec_roundtrip(void **state) {
    (void)state;
    rm_avail_t a, b;
    rm_avail_init(&a);
    rm_avail_init(&b);
    char id[16];
    for (int i = 0; i < 200; i++) {
        RUN(&a, PUB((uint16_t)(D0 + i % 7), (uint16_t)(i % 200), 30));
        snprintf(id, sizeof(id), "b%d", i);
        rm_event_t e = BOOK(id, (uint16_t)(D0 + i % 7), (uint16_t)(i % 250), 3);
        rm_avail_apply(&a, &e);
    }
    RUN(&a, DEACT);
    char *buf;
    size_t len;
    assert_int_equal(rm_avail_encode(&a, &buf, &len), 0);
    assert_int_equal(rm_avail_decode(&b, buf, len), 0);
    assert_false(b.active);
    RUN(&a, REG);
    RUN(&b, REG);
    for (uint16_t d = D0; d < D0 + 7; d++) {
        uint8_t x[36], y[36];
        assert_int_equal(rm_avail_day(&a, d, x), rm_avail_day(&b, d, y));
        assert_memory_equal(x, y, 36);
    }
    /* Canonical: re-encoding the decoded state gives the same bytes. */
    char *buf2;
    size_t len2;
    RUN(&b, DEACT);
    assert_int_equal(rm_avail_encode(&b, &buf2, &len2), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    /* Truncated or altered bytes are rejected, never trusted. */
    for (size_t cut = 0; cut < len; cut += 7) {
        rm_avail_t c;
        rm_avail_init(&c);
        assert_int_equal(rm_avail_decode(&c, buf, cut), RM_ERR_CORRUPT);
        rm_avail_free(&c);
    }
    free(buf);
    free(buf2);
    rm_avail_free(&a);
    rm_avail_free(&b);
    rm_avail_free(&b); /* freeing twice is a no-op */
}

/* ---- random sequences against a naive model: per-slot lists of holders ---- */

#define NDAYS 3
#define NIDS  24

typedef struct {
    bool published[NDAYS][RM_SLOTS_PER_DAY];
    struct {
        bool live;
        int day, start, count;
    } booking[NIDS];
    bool active;
} naive_t;

static void naive_place(naive_t *m, int id, int day, int start, int count) {
    m->booking[id].live = true;
    m->booking[id].day = day;
    m->booking[id].start = start;
    m->booking[id].count = count;
}

static void naive_expect(const naive_t *m, const rm_avail_t *st) {
    for (int d = 0; d < NDAYS; d++) {
        uint8_t want[RM_DAY_BYTES] = {0}, got[RM_DAY_BYTES];
        unsigned n = 0;
        for (unsigned s = 0; m->active && s < RM_SLOTS_PER_DAY; s++) {
            bool held = false;
            for (int b = 0; b < NIDS; b++)
                held |= m->booking[b].live && m->booking[b].day == d &&
                        (int)s >= m->booking[b].start &&
                        (int)s < m->booking[b].start + m->booking[b].count;
            if (m->published[d][s] && !held) {
                want[s / 8] |= (uint8_t)(0x80 >> (s % 8));
                n++;
            }
        }
        assert_int_equal(rm_avail_day(st, (uint16_t)(D0 + d), got), n);
        assert_memory_equal(got, want, RM_DAY_BYTES);
    }
}

/* Thousands of random events (overlapping bookings, moves across days,
 * snapshots, deactivation) on three days; after each one every day must
 * equal the naive model, and the encoded state must decode to the same. */
static void test_random_against_naive_model(void **state) {
    (void)state;
    srand(7);
    for (int round = 0; round < 40; round++) {
        naive_t m;
        memset(&m, 0, sizeof(m));
        m.active = true;
        rm_avail_t st;
        rm_avail_init(&st);
        /* Every third id is longer than RM_BOOKING_INLINE (kept on the heap). */
        char ids[NIDS][80];
        for (int i = 0; i < NIDS; i++)
            snprintf(ids[i], sizeof(ids[i]), "b%d%s", i,
                     i % 3 ? "" : "-a-long-booking-id-stored-outside-the-table-entry");
        assert_true(strlen(ids[0]) > RM_BOOKING_INLINE && strlen(ids[1]) <= RM_BOOKING_INLINE);
        for (int step = 0; step < 300; step++) {
            int day = rand() % NDAYS, start = rand() % 288;
            int count = 1 + rand() % (rand() % 4 == 0 ? 288 - start
                                                      : (288 - start < 40 ? 288 - start : 40));
            int id = rand() % NIDS, kind = rand() % 100;
            rm_event_t e;
            if (kind < 25) {
                e = PUB((uint16_t)(D0 + day), (uint16_t)start, (uint16_t)count);
                for (int s = start; s < start + count; s++)
                    m.published[day][s] = true;
            } else if (kind < 32) {
                e = WDR((uint16_t)(D0 + day), (uint16_t)start, (uint16_t)count);
                for (int s = start; s < start + count; s++)
                    m.published[day][s] = false;
            } else if (kind < 60) {
                e = BOOK(ids[id], (uint16_t)(D0 + day), (uint16_t)start, (uint16_t)count);
                naive_place(&m, id, day, start, count);
            } else if (kind < 75) {
                e = RESCHED(ids[id], (uint16_t)(D0 + day), (uint16_t)start, (uint16_t)count);
                naive_place(&m, id, day, start, count);
            } else if (kind < 93) {
                e = CANCEL(ids[id], (uint16_t)(D0 + day), (uint16_t)start, (uint16_t)count);
                assert_int_equal(rm_avail_apply(&st, &e),
                                 m.booking[id].live ? RM_APPLY_OK : RM_APPLY_UNKNOWN_BOOKING);
                m.booking[id].live = false;
                naive_expect(&m, &st);
                continue;
            } else if (kind < 97) {
                /* Snapshot: two published ranges and two bookings. */
                static rm_slots_t pub[2];
                static rm_snapshot_booking_t bk[2];
                e = ev_type(RM_EV_AVAILABILITY_SNAPSHOT);
                e.slots.day = (uint16_t)(D0 + day);
                memset(m.published[day], 0, sizeof(m.published[day]));
                for (int i = 0; i < 2; i++) {
                    int ps = rand() % 200, pc = 1 + rand() % 80;
                    pub[i] = (rm_slots_t){(uint16_t)(D0 + day), (uint16_t)ps, (uint16_t)pc};
                    for (int s = ps; s < ps + pc; s++)
                        m.published[day][s] = true;
                }
                for (int b = 0; b < NIDS; b++)
                    if (m.booking[b].live && m.booking[b].day == day)
                        m.booking[b].live = false;
                int b0 = rand() % NIDS, b1 = (b0 + 1 + rand() % (NIDS - 1)) % NIDS;
                int bs[2] = {b0, b1};
                for (int i = 0; i < 2; i++) {
                    int s0 = rand() % 280, c0 = 1 + rand() % 8;
                    bk[i] = (rm_snapshot_booking_t){
                        {ids[bs[i]], strlen(ids[bs[i]])}, (uint16_t)s0, (uint16_t)c0};
                    naive_place(&m, bs[i], day, s0, c0);
                }
                e.published = pub;
                e.n_published = 2;
                e.bookings = bk;
                e.n_bookings = 2;
            } else {
                m.active = !m.active;
                e = m.active ? REG : DEACT;
            }
            assert_int_equal(rm_avail_apply(&st, &e), RM_APPLY_OK);
            naive_expect(&m, &st);
        }
        /* Days asked in ascending order (with days no event touched in
         * between) give what rm_avail_day gives. */
        uint32_t pos = 0;
        for (int day = -1; day <= NDAYS; day++) {
            uint8_t a[RM_DAY_BYTES], b[RM_DAY_BYTES];
            unsigned na = rm_avail_day(&st, (uint16_t)(D0 + day), a);
            assert_int_equal(rm_avail_day_next(&st, &pos, (uint16_t)(D0 + day), b), na);
            assert_memory_equal(a, b, RM_DAY_BYTES);
        }
        char *buf;
        size_t len;
        rm_avail_t back;
        rm_avail_init(&back);
        assert_int_equal(rm_avail_encode(&st, &buf, &len), 0);
        assert_int_equal(rm_avail_decode(&back, buf, len), 0);
        naive_expect(&m, &back);
        free(buf);
        rm_avail_free(&back);
        rm_avail_free(&st);
    }
}

/* The stored form's runs are over day * 288 + slot: slots published up to
 * the end of one day and from the start of the next are one run. */
/* A replay skips the per-event dirty marks; marking every day afterwards
 * still finds each day that has a published slot. */
static void test_no_dirty_marks(void **state) {
    (void)state;
    rm_avail_t st;
    rm_avail_init(&st);
    st.no_dirty_marks = true;
    rm_event_t e = PUB(D0, 0, 10);
    rm_avail_apply(&st, &e);
    e = PUB(D0 + 2, 5, 1);
    rm_avail_apply(&st, &e);
    e = BOOK("b1", D0 + 1, 0, 3); /* a day without published slots: no key */
    rm_avail_apply(&st, &e);
    assert_false(rm_avail_is_dirty(&st));
    rm_avail_mark_all_dirty(&st);
    assert_int_equal(roaring_bitmap_get_cardinality(st.dirty), 2);
    assert_true(roaring_bitmap_contains(st.dirty, D0));
    assert_true(roaring_bitmap_contains(st.dirty, D0 + 2));
    rm_avail_free(&st);
}

static void test_codec_run_across_days(void **state) {
    (void)state;
    rm_avail_t st, back;
    rm_avail_init(&st);
    rm_avail_init(&back);
    RUN(&st, PUB(D1, 0, 10), PUB(D0, 280, 8), PUB(D0, 100, 1));
    char *buf;
    size_t len;
    assert_int_equal(rm_avail_encode(&st, &buf, &len), 0);
    /* "RMA1", flags, nruns = 2, runs, nbookings = 0 */
    assert_int_equal(len, 4 + 1 + 4 + 2 * 8 + 4);
    uint8_t want[] = {2, 0, 0, 0};
    assert_memory_equal(buf + 5, want, 4);
    uint32_t first = (uint32_t)D0 * 288 + 280;
    uint8_t run2[8] = {(uint8_t)first,
                       (uint8_t)(first >> 8),
                       (uint8_t)(first >> 16),
                       (uint8_t)(first >> 24),
                       18,
                       0,
                       0,
                       0};
    assert_memory_equal(buf + 9 + 8, run2, 8);
    assert_int_equal(rm_avail_decode(&back, buf, len), 0);
    EXPECT(&back, D0, {100, 1}, {280, 8});
    EXPECT(&back, D1, {0, 10});
    free(buf);
    rm_avail_free(&st);
    rm_avail_free(&back);
}

/* ---- per-day stored form ---- */

#define SDAYS 12

/* A stored copy kept the way the Redis sink keeps it: a head and one value
 * per day, updated only with the days in sdirty. */
typedef struct {
    uint8_t head[RM_AVAIL_HEAD_BYTES];
    char *val[SDAYS];
    size_t len[SDAYS];
} stored_t;

static void stored_write(stored_t *sc, rm_avail_t *st) {
    char *buf;
    rm_day_bytes_t *days;
    size_t n;
    assert_int_equal(rm_avail_encode_days(st, st->sdirty, &buf, &days, &n), 0);
    assert_int_equal(n, roaring_bitmap_get_cardinality(st->sdirty));
    for (size_t i = 0; i < n; i++) {
        int d = days[i].day - D0;
        assert_true(d >= 0 && d < SDAYS && (i == 0 || days[i].day > days[i - 1].day));
        free(sc->val[d]);
        sc->val[d] = days[i].len ? malloc(days[i].len) : NULL;
        if (days[i].len)
            memcpy(sc->val[d], days[i].p, days[i].len);
        sc->len[d] = days[i].len;
    }
    free(buf);
    free(days);
    rm_avail_encode_head(st, sc->head);
    rm_avail_clear_dirty(st);
}

/* Decodes the stored copy and checks it is the same state as st (whole
 * encodings are canonical, so equal bytes mean equal state). */
static void stored_expect(const stored_t *sc, const rm_avail_t *st) {
    rm_day_bytes_t days[SDAYS];
    size_t n = 0;
    for (int d = SDAYS - 1; d >= 0; d--) /* any order */
        if (sc->len[d])
            days[n++] = (rm_day_bytes_t){(uint16_t)(D0 + d), sc->val[d], sc->len[d]};
    rm_avail_t back;
    rm_avail_init(&back);
    assert_int_equal(
        rm_avail_decode_days(&back, (const char *)sc->head, RM_AVAIL_HEAD_BYTES, days, n), 0);
    assert_false(rm_avail_is_dirty(&back));
    char *a, *b;
    size_t la, lb;
    assert_int_equal(rm_avail_encode(st, &a, &la), 0);
    assert_int_equal(rm_avail_encode(&back, &b, &lb), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    for (int d = 0; d < SDAYS; d++) {
        uint8_t x[RM_DAY_BYTES], y[RM_DAY_BYTES];
        assert_int_equal(rm_avail_day(st, (uint16_t)(D0 + d), x),
                         rm_avail_day(&back, (uint16_t)(D0 + d), y));
        assert_memory_equal(x, y, RM_DAY_BYTES);
    }
    free(a);
    free(b);
    rm_avail_free(&back);
}

/* Random events, written to the stored copy only through the stored-state
 * dirty set after every few events: the copy always decodes to the same
 * state. A change the dirty set missed would leave the copy behind. */
static void test_days_incremental_write(void **state) {
    (void)state;
    srand(11);
    const char *ids[] = {
        "b0", "b1", "b2", "b3", "b4", "b5", "b6-a-long-booking-id-stored-outside-the-table-entry"};
    for (int round = 0; round < 30; round++) {
        rm_avail_t st;
        rm_avail_init(&st);
        stored_t sc;
        memset(&sc, 0, sizeof(sc));
        for (int step = 0; step < 400; step++) {
            uint16_t day = (uint16_t)(D0 + rand() % SDAYS), start = (uint16_t)(rand() % 280);
            uint16_t count = (uint16_t)(1 + rand() % 8);
            const char *id = ids[rand() % 7];
            int kind = rand() % 100;
            rm_event_t e = kind < 25   ? PUB(day, start, count)
                           : kind < 35 ? WDR(day, start, count)
                           : kind < 60 ? BOOK(id, day, start, count)
                           : kind < 75 ? RESCHED(id, day, start, count)
                           : kind < 95 ? CANCEL(id, day, start, count)
                           : kind < 97 ? DEACT
                                       : REG;
            if (kind >= 99) { /* a snapshot: the day replaced */
                static rm_slots_t pub[1];
                static rm_snapshot_booking_t bk[1];
                pub[0] = (rm_slots_t){day, start, count};
                bk[0] = (rm_snapshot_booking_t){{id, strlen(id)}, start, 1};
                e = ev_type(RM_EV_AVAILABILITY_SNAPSHOT);
                e.slots.day = day;
                e.published = pub;
                e.n_published = 1;
                e.bookings = bk;
                e.n_bookings = 1;
            }
            rm_avail_apply(&st, &e);
            if (rand() % 4 == 0) {
                stored_write(&sc, &st);
                stored_expect(&sc, &st);
            }
        }
        stored_write(&sc, &st);
        stored_expect(&sc, &st);
        for (int d = 0; d < SDAYS; d++)
            free(sc.val[d]);
        rm_avail_free(&st);
    }
}

/* An event marks for writing exactly the days whose stored state it
 * changed: a cancellation of a booking on a long-past day marks that day
 * only, a reschedule both days, a deactivation no day's state (only every
 * day's Redis value). */
static void test_days_dirty_marks(void **state) {
    (void)state;
    rm_avail_t st;
    rm_avail_init(&st);
    RUN(&st, PUB(D0, 0, 288), BOOK("old", D0, 10, 2));
    for (uint16_t d = 1; d <= 300; d++)
        RUN(&st, PUB((uint16_t)(D0 + d), 0, 100), BOOK("x", (uint16_t)(D0 + d), 0, 1));
    rm_avail_clear_dirty(&st);
    RUN(&st, CANCEL("old", D0, 10, 2));
    assert_int_equal(roaring_bitmap_get_cardinality(st.sdirty), 1);
    assert_true(roaring_bitmap_contains(st.sdirty, D0));
    rm_avail_clear_dirty(&st);
    RUN(&st, RESCHED("x", D0 + 5, 0, 1)); /* "x" is on D0 + 300 */
    assert_int_equal(roaring_bitmap_get_cardinality(st.sdirty), 2);
    assert_true(roaring_bitmap_contains(st.sdirty, D0 + 5));
    assert_true(roaring_bitmap_contains(st.sdirty, D0 + 300));
    char *buf;
    rm_day_bytes_t *days;
    size_t n;
    assert_int_equal(rm_avail_encode_days(&st, st.sdirty, &buf, &days, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(days[0].len, RM_DAY_BYTES + 2 + 2 + 1 + 4); /* published, "x" */
    assert_int_equal(days[1].len, RM_DAY_BYTES + 2);             /* published only */
    free(buf);
    free(days);
    rm_avail_clear_dirty(&st);
    RUN(&st, DEACT);
    assert_true(roaring_bitmap_is_empty(st.sdirty));
    assert_int_equal(roaring_bitmap_get_cardinality(st.dirty), 301);
    /* A rewrite (state read in another form) marks every day with state. */
    rm_avail_clear_dirty(&st);
    RUN(&st, WDR(D0 + 7, 0, 100));
    rm_avail_mark_rewrite(&st);
    assert_true(st.rewrite);
    /* 300 days with state, and D0 + 7, emptied (its field is deleted) */
    assert_int_equal(roaring_bitmap_get_cardinality(st.sdirty), 301);
    rm_avail_clear_dirty(&st);
    assert_false(st.rewrite);
    rm_avail_free(&st);
}

/* Bytes the per-day form did not write are refused. */
static void test_days_decode_corrupt(void **state) {
    (void)state;
    rm_avail_t st;
    rm_avail_init(&st);
    RUN(&st, PUB(D0, 0, 8), BOOK("b1", D0, 0, 2), PUB(D1, 4, 4), BOOK("b2", D1, 4, 1));
    roaring_bitmap_t *all = roaring_bitmap_create();
    rm_avail_state_days(&st, all);
    char *buf;
    rm_day_bytes_t *days;
    size_t n;
    assert_int_equal(rm_avail_encode_days(&st, all, &buf, &days, &n), 0);
    assert_int_equal(n, 2);
    uint8_t head[RM_AVAIL_HEAD_BYTES];
    rm_avail_encode_head(&st, head);
    rm_day_bytes_t v[3];
    rm_avail_t back;
#define DECODE(hd, hl, nv)                                                                         \
    (rm_avail_init(&back), rm_avail_decode_days(&back, (const char *)(hd), hl, v, nv))
#define DONE() rm_avail_free(&back)
    memcpy(v, days, 2 * sizeof(*v));
    assert_int_equal(DECODE(head, sizeof(head), 2), 0);
    EXPECT(&back, D0, {2, 6});
    EXPECT(&back, D1, {5, 3});
    DONE();
    assert_int_equal(DECODE("RMH1\x03", 5, 2), RM_ERR_CORRUPT);
    DONE();
    assert_int_equal(DECODE(head, 4, 2), RM_ERR_CORRUPT);
    DONE();
    for (size_t cut = 0; cut < days[0].len; cut++) { /* every truncation */
        memcpy(v, days, 2 * sizeof(*v));
        v[0].len = cut;
        assert_int_equal(DECODE(head, sizeof(head), 2), RM_ERR_CORRUPT);
        DONE();
    }
    memcpy(v, days, 2 * sizeof(*v));
    v[1].day = v[0].day; /* a day given twice */
    assert_int_equal(DECODE(head, sizeof(head), 2), RM_ERR_CORRUPT);
    DONE();
    memcpy(v, days, 2 * sizeof(*v));
    v[2] = v[0];
    v[2].day = D0 + 9; /* booking b1 on two days */
    assert_int_equal(DECODE(head, sizeof(head), 3), RM_ERR_CORRUPT);
    DONE();
    memcpy(v, days, 2 * sizeof(*v));
    v[1].day = RM_DAY_MAX + 1;
    assert_int_equal(DECODE(head, sizeof(head), 2), RM_ERR_CORRUPT);
    DONE();
    static const char empty[RM_DAY_BYTES + 2] = {0}; /* an empty day is never stored */
    v[0] = (rm_day_bytes_t){D0, empty, sizeof(empty)};
    assert_int_equal(DECODE(head, sizeof(head), 1), RM_ERR_CORRUPT);
    DONE();
#undef DECODE
#undef DONE
    free(buf);
    free(days);
    roaring_bitmap_free(all);
    rm_avail_free(&st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bit_order),
        cmocka_unit_test(test_publish_withdraw_book),
        cmocka_unit_test(test_cancel_unknown_is_anomaly),
        cmocka_unit_test(test_repeated_create_replaces),
        cmocka_unit_test(test_overlapping_bookings),
        cmocka_unit_test(test_reused_table_slot),
        cmocka_unit_test(test_reschedule_unknown_creates),
        cmocka_unit_test(test_deactivate_and_reregister),
        cmocka_unit_test(test_snapshot_replaces_day),
        cmocka_unit_test(test_codec_roundtrip),
        cmocka_unit_test(test_random_against_naive_model),
        cmocka_unit_test(test_codec_run_across_days),
        cmocka_unit_test(test_no_dirty_marks),
        cmocka_unit_test(test_days_incremental_write),
        cmocka_unit_test(test_days_dirty_marks),
        cmocka_unit_test(test_days_decode_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
