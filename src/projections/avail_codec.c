/*
 * Byte encoding of a practitioner's availability state, stored beside its
 * keys in the sink so a restarted worker resumes exactly where the last
 * flush left off. The encoding is canonical (published slots as sorted runs,
 * bookings sorted by id), so the same state always gives the same bytes.
 *
 * Two forms: the whole state in one blob (below), and per day (after
 * rm_avail_encode_head; described in availability.h), which the Redis sink
 * keeps so a write carries only the days that changed.
 *
 *   "RMA1"  u8 flags (bit0 exists, bit1 active)
 *   u32 nruns, nruns x (u32 first, u32 length)          published slots
 *   u32 nbookings, nbookings x (u16 idlen, id, u16 day, u16 start, u16 count)
 *
 * All integers little-endian. Decoding bounds-checks every length.
 */
#include "readmodel/availability.h"
#include "readmodel/error.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len, cap;
    int err;
} wbuf_t;

static void put(wbuf_t *w, const void *p, size_t n) {
    if (w->err)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        while (cap < w->len + n)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b) {
            w->err = RM_ERR_NOMEM;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_u16(wbuf_t *w, uint16_t v) {
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(w, b, 2);
}

static void put_u32(wbuf_t *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(w, b, 4);
}

/* The first slot >= from whose bit equals `set`, or RM_SLOTS_PER_DAY. */
static unsigned next_bit(const uint64_t words[RM_DAY_WORDS], unsigned from, bool set) {
    for (unsigned s = from; s < RM_SLOTS_PER_DAY;) {
        uint64_t v = set ? words[s / 64] : ~words[s / 64];
        v >>= s % 64;
        if (v) {
            unsigned at = s + (unsigned)__builtin_ctzll(v);
            return at < RM_SLOTS_PER_DAY ? at : RM_SLOTS_PER_DAY;
        }
        s = (s / 64 + 1) * 64;
    }
    return RM_SLOTS_PER_DAY;
}

static int cmp_booking(const void *a, const void *b) {
    const rm_booking_t *x = *(const rm_booking_t *const *)a, *y = *(const rm_booking_t *const *)b;
    size_t n = x->id_len < y->id_len ? x->id_len : y->id_len;
    int c = memcmp(rm_booking_id(x), rm_booking_id(y), n);
    return c ? c : (int)x->id_len - (int)y->id_len;
}

int rm_avail_encode(const rm_avail_t *st, char **out, size_t *len) {
    wbuf_t w = {0};
    put(&w, "RMA1", 4);
    uint8_t flags = (uint8_t)((st->exists ? 1 : 0) | (st->active ? 2 : 0));
    put(&w, &flags, 1);

    size_t runs_at = w.len;
    put_u32(&w, 0);
    /* Runs are over the global slot number day * 288 + slot, so a run that
     * reaches the end of a day continues into the next day's first slot. */
    uint32_t nruns = 0, first = 0, end = 0; /* the open run is [first, end) */
    bool open = false;
    for (uint32_t i = 0; i < st->ndays; i++) {
        const rm_day_t *d = &st->days[i];
        uint32_t base = (uint32_t)d->day * RM_SLOTS_PER_DAY;
        for (unsigned s = next_bit(d->published, 0, true); s < RM_SLOTS_PER_DAY;) {
            unsigned e = next_bit(d->published, s, false);
            if (open && end == base + s) {
                end = base + e;
            } else {
                if (open) {
                    put_u32(&w, first);
                    put_u32(&w, end - first);
                    nruns++;
                }
                first = base + s;
                end = base + e;
                open = true;
            }
            s = e < RM_SLOTS_PER_DAY ? next_bit(d->published, e, true) : RM_SLOTS_PER_DAY;
        }
    }
    if (open) {
        put_u32(&w, first);
        put_u32(&w, end - first);
        nruns++;
    }

    const rm_booking_table_t *t = &st->bookings;
    const rm_booking_t **sorted = t->count ? malloc(t->count * sizeof(*sorted)) : NULL;
    if (t->count && !sorted)
        w.err = RM_ERR_NOMEM;
    size_t n = 0;
    for (uint32_t i = 0; sorted && i < t->capacity; i++)
        if (t->slots[i].id_len)
            sorted[n++] = &t->slots[i];
    if (n)
        qsort(sorted, n, sizeof(*sorted), cmp_booking);
    put_u32(&w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        put_u16(&w, sorted[i]->id_len);
        put(&w, rm_booking_id(sorted[i]), sorted[i]->id_len);
        put_u16(&w, sorted[i]->day);
        put_u16(&w, sorted[i]->start);
        put_u16(&w, sorted[i]->count);
    }
    free(sorted);
    if (w.err) {
        free(w.buf);
        return w.err;
    }
    uint8_t *p = (uint8_t *)w.buf + runs_at;
    p[0] = (uint8_t)nruns;
    p[1] = (uint8_t)(nruns >> 8);
    p[2] = (uint8_t)(nruns >> 16);
    p[3] = (uint8_t)(nruns >> 24);
    *out = w.buf;
    *len = w.len;
    return 0;
}

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
} rbuf_t;

static const uint8_t *take(rbuf_t *r, size_t n) {
    if (r->bad || r->len - r->pos < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

static uint16_t get_u16(rbuf_t *r) {
    const uint8_t *p = take(r, 2);
    return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

static uint32_t get_u32(rbuf_t *r) {
    const uint8_t *p = take(r, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
             : 0;
}

static const uint64_t slot_limit = (uint64_t)(RM_DAY_MAX + 1) * RM_SLOTS_PER_DAY;

int rm_avail_decode(rm_avail_t *st, const char *buf, size_t len) {
    rbuf_t r = {(const uint8_t *)buf, len, 0, false};
    const uint8_t *magic = take(&r, 4);
    if (!magic || memcmp(magic, "RMA1", 4) != 0)
        return RM_ERR_CORRUPT;
    const uint8_t *flags = take(&r, 1);
    if (!flags)
        return RM_ERR_CORRUPT;
    st->exists = *flags & 1;
    st->active = (*flags & 2) != 0;
    uint32_t nruns = get_u32(&r);
    for (uint32_t i = 0; i < nruns && !r.bad; i++) {
        uint64_t first = get_u32(&r), n = get_u32(&r);
        if (r.bad || n == 0 || first + n > slot_limit)
            return RM_ERR_CORRUPT;
        /* One SlotsPublished per day the run covers. */
        for (uint64_t at = first, end = first + n; at < end;) {
            uint16_t day = (uint16_t)(at / RM_SLOTS_PER_DAY),
                     slot = (uint16_t)(at % RM_SLOTS_PER_DAY);
            uint64_t run = end - at < RM_SLOTS_PER_DAY - slot ? end - at : RM_SLOTS_PER_DAY - slot;
            rm_event_t ev = {.type = RM_EV_SLOTS_PUBLISHED, .slots = {day, slot, (uint16_t)run}};
            rm_avail_apply(st, &ev);
            at += run;
        }
    }
    uint32_t nb = get_u32(&r);
    for (uint32_t i = 0; i < nb && !r.bad; i++) {
        uint16_t idlen = get_u16(&r);
        const uint8_t *id = take(&r, idlen);
        uint16_t day = get_u16(&r), start = get_u16(&r), count = get_u16(&r);
        if (r.bad || idlen == 0 || day > RM_DAY_MAX || count == 0 ||
            start + count > (int)RM_SLOTS_PER_DAY)
            return RM_ERR_CORRUPT;
        rm_event_t ev = {.type = RM_EV_BOOKING_CREATED,
                         .booking_id = {(const char *)id, idlen},
                         .slots = {day, start, count}};
        rm_avail_apply(st, &ev);
    }
    if (r.bad || r.pos != len)
        return RM_ERR_CORRUPT;
    rm_avail_clear_dirty(st);
    st->exists = *flags & 1;
    return 0;
}

/* ---- per-day stored form (see availability.h) ---- */

void rm_avail_encode_head(const rm_avail_t *st, uint8_t out[RM_AVAIL_HEAD_BYTES]) {
    memcpy(out, "RMH2", 4);
    out[4] = (uint8_t)((st->exists ? 1 : 0) | (st->active ? 2 : 0));
}

static bool day_has_published(const rm_day_t *d) {
    uint64_t any = 0;
    for (unsigned w = 0; w < RM_DAY_WORDS; w++)
        any |= d->published[w];
    return any != 0;
}

void rm_avail_state_days(const rm_avail_t *st, roaring_bitmap_t *days) {
    for (uint32_t i = 0; i < st->ndays; i++)
        if (day_has_published(&st->days[i]))
            roaring_bitmap_add(days, st->days[i].day);
    const rm_booking_table_t *t = &st->bookings;
    for (uint32_t i = 0; i < t->capacity; i++)
        if (t->day1[i])
            roaring_bitmap_add(days, t->day1[i] - 1u);
}

/* Bookings sorted by day, then id (canonical order within a day). */
static int cmp_day_booking(const void *a, const void *b) {
    const rm_booking_t *x = *(const rm_booking_t *const *)a, *y = *(const rm_booking_t *const *)b;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    return cmp_booking(a, b);
}

/* The bookings on the days of `days`, sorted by day then id, into a new
 * array (*out, caller frees; NULL when there are none). -1 when out of
 * memory. One pass over the table's 2-byte day column; days outside
 * [lo, hi] are skipped without a set lookup (a flush nearly always has one
 * or two days). */
static int bookings_on(const rm_avail_t *st, const roaring_bitmap_t *days,
                       const rm_booking_t ***out, size_t *n) {
    const rm_booking_table_t *t = &st->bookings;
    uint32_t lo = roaring_bitmap_minimum(days) + 1, hi = roaring_bitmap_maximum(days) + 1;
    size_t cap = 0, k = 0;
    const rm_booking_t **v = NULL;
    for (uint32_t i = 0; i < t->capacity; i++) {
        uint32_t d1 = t->day1[i]; /* day + 1, 0 for no booking */
        if (d1 < lo || d1 > hi || !roaring_bitmap_contains(days, d1 - 1))
            continue;
        const rm_booking_t *b = &t->slots[i];
        if (k == cap) {
            cap = cap ? cap * 2 : 64;
            const rm_booking_t **nv = realloc(v, cap * sizeof(*nv));
            if (!nv) {
                free(v);
                return -1;
            }
            v = nv;
        }
        v[k++] = b;
    }
    if (k)
        qsort(v, k, sizeof(*v), cmp_day_booking);
    *out = v;
    *n = k;
    return 0;
}

/* Writes the published bits of d (NULL: none) as 36 bytes, slot s in bit
 * s % 8 of byte s / 8. */
static void put_published(wbuf_t *w, const rm_day_t *d) {
    uint8_t bytes[RM_DAY_BYTES] = {0};
    for (unsigned b = 0; d && b < RM_DAY_BYTES; b++)
        bytes[b] = (uint8_t)(d->published[b / 8] >> (8 * (b % 8)));
    put(w, bytes, RM_DAY_BYTES);
}

int rm_avail_encode_days(const rm_avail_t *st, const roaring_bitmap_t *days, char **buf,
                         rm_day_bytes_t **out, size_t *n) {
    *buf = NULL;
    *out = NULL;
    *n = 0;
    uint64_t nd = roaring_bitmap_get_cardinality(days);
    if (nd == 0)
        return 0;
    const rm_booking_t **bk = NULL;
    size_t nb = 0, at = 0;
    rm_day_bytes_t *res = malloc(nd * sizeof(*res));
    size_t *offs = malloc(nd * sizeof(*offs));
    wbuf_t w = {0};
    if (!res || !offs || bookings_on(st, days, &bk, &nb) < 0)
        w.err = RM_ERR_NOMEM;
    roaring_uint32_iterator_t it;
    roaring_init_iterator(days, &it);
    for (size_t i = 0; !w.err && it.has_value; i++, roaring_advance_uint32_iterator(&it)) {
        uint16_t day = (uint16_t)it.current_value;
        const rm_day_t *d = rm_avail_find_day(st, day);
        size_t first = at;
        while (at < nb && bk[at]->day == day)
            at++;
        res[i].day = day;
        offs[i] = w.len;
        if (at == first && (!d || !day_has_published(d))) {
            res[i].len = 0; /* nothing stored for this day */
            continue;
        }
        put_published(&w, d);
        if (at - first > UINT16_MAX) /* 288 slots: never, short of a corrupt table */
            w.err = RM_ERR_NOMEM;
        put_u16(&w, (uint16_t)(at - first));
        for (size_t k = first; k < at; k++) {
            put_u16(&w, bk[k]->id_len);
            put(&w, rm_booking_id(bk[k]), bk[k]->id_len);
            put_u16(&w, bk[k]->start);
            put_u16(&w, bk[k]->count);
        }
        res[i].len = w.len - offs[i];
    }
    free(bk);
    if (w.err) {
        free(res);
        free(offs);
        free(w.buf);
        return w.err;
    }
    for (size_t i = 0; i < nd; i++) /* the buffer has moved while it grew */
        res[i].p = w.buf ? w.buf + offs[i] : "";
    free(offs);
    *buf = w.buf ? w.buf : malloc(1); /* all days empty: a buffer to free all the same */
    if (!*buf) {
        free(res);
        return RM_ERR_NOMEM;
    }
    *out = res;
    *n = nd;
    return 0;
}

void rm_avail_mark_rewrite(rm_avail_t *st) {
    st->rewrite = true;
    rm_avail_state_days(st, st->sdirty);
}

static int cmp_day_bytes(const void *a, const void *b) {
    const rm_day_bytes_t *x = a, *y = b;
    return x->day < y->day ? -1 : x->day > y->day;
}

/* Applies one day's stored value to state that does not have that day yet. */
static int decode_day(rm_avail_t *st, const rm_day_bytes_t *dv) {
    rbuf_t r = {(const uint8_t *)dv->p, dv->len, 0, false};
    const uint8_t *pub = take(&r, RM_DAY_BYTES);
    if (!pub || dv->day > RM_DAY_MAX)
        return RM_ERR_CORRUPT;
    bool any = false;
    for (unsigned s = 0; s < RM_SLOTS_PER_DAY;) { /* one SlotsPublished per run */
        if (!(pub[s / 8] >> (s % 8) & 1)) {
            s++;
            continue;
        }
        unsigned e = s;
        while (e < RM_SLOTS_PER_DAY && pub[e / 8] >> (e % 8) & 1)
            e++;
        rm_event_t ev = {.type = RM_EV_SLOTS_PUBLISHED,
                         .slots = {dv->day, (uint16_t)s, (uint16_t)(e - s)}};
        rm_avail_apply(st, &ev);
        any = true;
        s = e;
    }
    uint16_t nb = get_u16(&r);
    for (uint16_t i = 0; i < nb && !r.bad; i++) {
        uint16_t idlen = get_u16(&r);
        const uint8_t *id = take(&r, idlen);
        uint16_t start = get_u16(&r), count = get_u16(&r);
        if (r.bad || idlen == 0 || count == 0 || start + count > (int)RM_SLOTS_PER_DAY ||
            rm_booking_find(&st->bookings, (const char *)id, idlen))
            return RM_ERR_CORRUPT; /* also: the same booking on two days */
        rm_event_t ev = {.type = RM_EV_BOOKING_CREATED,
                         .booking_id = {(const char *)id, idlen},
                         .slots = {dv->day, start, count}};
        rm_avail_apply(st, &ev);
        any = true;
    }
    /* an empty day is never stored */
    return r.bad || r.pos != r.len || !any ? RM_ERR_CORRUPT : 0;
}

int rm_avail_decode_days(rm_avail_t *st, const char *head, size_t head_len, rm_day_bytes_t *days,
                         size_t n) {
    if (head_len != RM_AVAIL_HEAD_BYTES || memcmp(head, "RMH2", 4) != 0 || (uint8_t)head[4] > 3)
        return RM_ERR_CORRUPT;
    if (n)
        qsort(days, n, sizeof(*days), cmp_day_bytes); /* ascending: each day is appended */
    for (size_t i = 0; i < n; i++) {
        if (i && days[i].day == days[i - 1].day)
            return RM_ERR_CORRUPT;
        int rc = decode_day(st, &days[i]);
        if (rc)
            return rc;
    }
    st->exists = head[4] & 1;
    st->active = (head[4] & 2) != 0;
    rm_avail_clear_dirty(st);
    return 0;
}
