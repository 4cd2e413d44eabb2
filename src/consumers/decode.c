/*
 * Event decoder: bytes -> validated rm_event_t, following events.md rule by
 * rule. The JSON is tokenized once by the strict scanner (json_scan.c); the
 * top-level members are mapped to a fixed field table by name, then the
 * envelope and the type-specific fields are checked in a fixed order so that
 * every rejection carries one reason and the field it is about. A nested
 * object the decoder reads (location, from/to, a snapshot booking) is mapped
 * by the same code under the same rules: names compared after unescaping,
 * unknown members ignored at any depth, a known member twice rejected.
 *
 * Order of checks: size, JSON, object, duplicate fields, schema_version,
 * envelope fields, key, type, then the type's own fields (a nested object's
 * duplicates first, then its members). An unknown type with a valid
 * envelope is IGNORED, not INVALID (contract).
 */
#include "readmodel/event.h"
#include "readmodel/date.h"
#include "json_scan.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS        (RM_MAX_MESSAGE_BYTES / 2 + 8)
#define MAX_PUBLISHED     (RM_MAX_MESSAGE_BYTES / 5)
#define MAX_SNAP_BOOKINGS (RM_MAX_MESSAGE_BYTES / 40)

typedef enum {
    F_EVENT_ID,
    F_TYPE,
    F_SCHEMA_VERSION,
    F_OCCURRED_AT,
    F_PRACTITIONER_ID,
    F_NAME,
    F_SPECIALTIES,
    F_CITY,
    F_LOCATION,
    F_LANGUAGES,
    F_ACCEPTS,
    F_DATE,
    F_START_SLOT,
    F_SLOT_COUNT,
    F_BOOKING_ID,
    F_PATIENT_ID,
    F_FROM,
    F_TO,
    F_PUBLISHED,
    F_BOOKINGS,
    F__COUNT
} field_t;

_Static_assert(F__COUNT < 32, "map_members takes the wanted fields as a 32-bit mask");

static const char *const field_names[F__COUNT] = {
    "event_id",
    "type",
    "schema_version",
    "occurred_at",
    "practitioner_id",
    "name",
    "specialties",
    "city",
    "location",
    "languages",
    "accepts_new_patients",
    "date",
    "start_slot",
    "slot_count",
    "booking_id",
    "patient_id",
    "from",
    "to",
    "published",
    "bookings",
};

/* Members of the nested objects the decoder reads: location {lat, lon},
 * Rescheduled's from/to {date, start_slot, slot_count}, and a snapshot's
 * bookings [{booking_id, start_slot, slot_count}]. */
typedef enum { N_LAT, N_LON, N_DATE, N_START_SLOT, N_SLOT_COUNT, N_BOOKING_ID, N__COUNT } nested_t;

static const char *const nested_names[N__COUNT] = {
    "lat", "lon", "date", "start_slot", "slot_count", "booking_id",
};

/* Which members each nested object has, and the field names its
 * rejections carry. A name outside the mask is an unknown member there. */
#define LOCATION_MEMBERS (1u << N_LAT | 1u << N_LON)
#define SLOT_MEMBERS     (1u << N_DATE | 1u << N_START_SLOT | 1u << N_SLOT_COUNT)
#define BOOKING_MEMBERS  (1u << N_BOOKING_ID | 1u << N_START_SLOT | 1u << N_SLOT_COUNT)

static const char *const location_fields[N__COUNT] = {
    [N_LAT] = "location.lat", [N_LON] = "location.lon"};
static const char *const from_fields[N__COUNT] = {
    [N_DATE] = "from.date", [N_START_SLOT] = "from.start_slot", [N_SLOT_COUNT] = "from.slot_count"};
static const char *const to_fields[N__COUNT] = {
    [N_DATE] = "to.date", [N_START_SLOT] = "to.start_slot", [N_SLOT_COUNT] = "to.slot_count"};
static const char *const booking_fields[N__COUNT] = {[N_BOOKING_ID] = "bookings.booking_id",
                                                     [N_START_SLOT] = "bookings.start_slot",
                                                     [N_SLOT_COUNT] = "bookings.slot_count"};

struct rm_decoder {
    rm_json_tok_t toks[MAX_TOKENS];
    char scratch[RM_MAX_MESSAGE_BYTES + 64]; /* unescaped strings */
    size_t scratch_used;
    rm_slots_t published[MAX_PUBLISHED];
    rm_snapshot_booking_t bookings[MAX_SNAP_BOOKINGS];
    const char *js;
    uint32_t field_tok[F__COUNT]; /* 0 = absent (token 0 is the root) */
};

/* Names to numbers (member names to fields, type strings to types): small
 * open-addressing tables built once, hashed on length and the first and last
 * bytes, so a lookup costs one comparison with the one likely candidate. */
typedef struct {
    const char *name; /* NULL: empty slot */
    uint8_t len;
    uint8_t value;
} name_slot_t;

#define NAME_SLOTS 64u /* power of two, more than twice the names of any table */

static name_slot_t field_table[NAME_SLOTS], type_table[NAME_SLOTS], nested_table[NAME_SLOTS];

static unsigned name_hash(const char *k, size_t n) {
    return (unsigned)(n * 7u + (unsigned char)k[0] * 3u + (unsigned char)k[n - 1]) &
           (NAME_SLOTS - 1);
}

static void name_add(name_slot_t *table, const char *name, uint8_t value) {
    size_t n = strlen(name);
    unsigned i = name_hash(name, n);
    while (table[i].name)
        i = (i + 1) & (NAME_SLOTS - 1);
    table[i] = (name_slot_t){name, (uint8_t)n, value};
}

static uint64_t load64(const char *p) {
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint32_t load32(const char *p) {
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* a[0..n) == b[0..n) for the short names of these tables: a few word loads
 * that may overlap, all inside [0, n), instead of a call to memcmp (which
 * was a tenth of the decoder's time). */
static bool same_name(const char *a, const char *b, size_t n) {
    if (n >= 8) {
        if (n > 24)
            return memcmp(a, b, n) == 0;
        bool same = load64(a) == load64(b) && load64(a + n - 8) == load64(b + n - 8);
        return n > 16 ? same && load64(a + 8) == load64(b + 8) : same;
    }
    if (n >= 4)
        return load32(a) == load32(b) && load32(a + n - 4) == load32(b + n - 4);
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* The value of name k[0..n), or `none`. */
static unsigned name_find(const name_slot_t *table, const char *k, size_t n, unsigned none) {
    if (n == 0)
        return none;
    for (unsigned i = name_hash(k, n); table[i].name; i = (i + 1) & (NAME_SLOTS - 1))
        if (table[i].len == n && same_name(table[i].name, k, n))
            return table[i].value;
    return none;
}

static void tables_init(void) {
    for (int f = 0; f < F__COUNT; f++)
        name_add(field_table, field_names[f], (uint8_t)f);
    for (int t = 0; t < RM_EV__COUNT; t++)
        name_add(type_table, rm_event_type_name((rm_event_type_t)t), (uint8_t)t);
    for (int m = 0; m < N__COUNT; m++)
        name_add(nested_table, nested_names[m], (uint8_t)m);
}

rm_decoder_t *rm_decoder_new(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, tables_init);
    return calloc(1, sizeof(rm_decoder_t));
}

void rm_decoder_free(rm_decoder_t *d) {
    free(d);
}

/* A rejection: sets *why and returns -1 so checks read `return reject(...)`. */
static int reject(rm_reject_t *why, rm_reason_t reason, const char *field) {
    why->reason = reason;
    why->field = field;
    return -1;
}

/* The decoded text of a string token: points into the message when it has no
 * escapes, else into the decoder's scratch. */
static rm_span_t str_of(rm_decoder_t *d, const rm_json_tok_t *t) {
    if (!t->escaped)
        return (rm_span_t){d->js + t->start, t->end - t->start};
    char *out = d->scratch + d->scratch_used;
    size_t n = rm_json_unescape(d->js, t, out);
    d->scratch_used += n;
    return (rm_span_t){out, n};
}

/* Raw JSON text of a value, quotes included for strings. */
static rm_span_t raw_of(rm_decoder_t *d, const rm_json_tok_t *t) {
    if (t->type == RM_JSON_STRING)
        return (rm_span_t){d->js + t->start - 1, t->end - t->start + 2};
    return (rm_span_t){d->js + t->start, t->end - t->start};
}

static size_t utf8_chars(rm_span_t s) {
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++)
        n += ((unsigned char)s.ptr[i] & 0xC0) != 0x80;
    return n;
}

/* A required string of 1..64 characters. */
static int get_id(rm_decoder_t *d, const rm_json_tok_t *t, const char *name, rm_span_t *out,
                  rm_reject_t *why) {
    if (!t)
        return reject(why, RM_REASON_MISSING_FIELD, name);
    if (t->type != RM_JSON_STRING)
        return reject(why, RM_REASON_WRONG_TYPE, name);
    *out = str_of(d, t);
    size_t n = t->escaped || t->non_ascii ? utf8_chars(*out) : out->len;
    if (n < 1 || n > RM_MAX_ID_CHARS)
        return reject(why, RM_REASON_INVALID_ID, name);
    return 0;
}

static int get_int(rm_decoder_t *d, const rm_json_tok_t *t, const char *name, long min, long max,
                   long *out, rm_reject_t *why) {
    if (!t)
        return reject(why, RM_REASON_MISSING_FIELD, name);
    if (t->type != RM_JSON_NUMBER)
        return reject(why, RM_REASON_WRONG_TYPE, name);
    if (!t->integer)
        return reject(why, RM_REASON_NOT_AN_INTEGER, name);
    const char *p = d->js + t->start;
    size_t n = t->end - t->start;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
        n--;
    }
    if (n > 12)
        return reject(why, RM_REASON_OUT_OF_RANGE, name);
    long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    if (neg)
        v = -v;
    if (v < min || v > max)
        return reject(why, RM_REASON_OUT_OF_RANGE, name);
    *out = v;
    return 0;
}

static int get_date(rm_decoder_t *d, const rm_json_tok_t *t, const char *name, uint16_t *day,
                    rm_reject_t *why) {
    if (!t)
        return reject(why, RM_REASON_MISSING_FIELD, name);
    if (t->type != RM_JSON_STRING)
        return reject(why, RM_REASON_WRONG_TYPE, name);
    rm_span_t s = str_of(d, t);
    if (!rm_date_parse(s.ptr, s.len, day))
        return reject(why, RM_REASON_INVALID_DATE, name);
    return 0;
}

static int check_range(long start, long count, const char *name, rm_reject_t *why) {
    if (start + count > (long)RM_SLOTS_PER_DAY)
        return reject(why, RM_REASON_RANGE_PAST_END_OF_DAY, name);
    return 0;
}

static int get_slot_pair(rm_decoder_t *d, const rm_json_tok_t *st, const rm_json_tok_t *ct,
                         const char *start_name, const char *count_name, uint16_t *start,
                         uint16_t *count, rm_reject_t *why) {
    long s, c;
    if (get_int(d, st, start_name, 0, RM_SLOTS_PER_DAY - 1, &s, why) < 0 ||
        get_int(d, ct, count_name, 1, RM_SLOTS_PER_DAY, &c, why) < 0 ||
        check_range(s, c, count_name, why) < 0)
        return -1;
    *start = (uint16_t)s;
    *count = (uint16_t)c;
    return 0;
}

/* Escaped member names longer than this cannot be a name of the tables: the
 * longest, "accepts_new_patients", is 20 characters, 120 bytes written as
 * \u escapes. Unescaping never lengthens a name, so this buffer holds it. */
#define MAX_ESCAPED_NAME 128

/* Maps the members of object token o to the names of `table` in one pass,
 * for the top level and every nested object alike: a member whose name,
 * compared after unescaping, is the table's name v and whose bit v is in
 * `wanted` stores its value token's index in tok[v] (0 = absent; the
 * caller zeroes tok). Any other member is unknown and ignored, its value
 * skipped whole however deep it nests. A wanted name twice is ambiguous, so
 * it is rejected (field fields[v]) rather than resolved by position. */
static int map_members(rm_decoder_t *d, const rm_json_tok_t *o, const name_slot_t *table,
                       unsigned none, uint32_t wanted, uint32_t *tok, const char *const *fields,
                       rm_reject_t *why) {
    uint32_t i = (uint32_t)(o - d->toks) + 1;
    for (uint32_t m = 0; m < o->size; m++) {
        const rm_json_tok_t *k = &d->toks[i];
        unsigned v;
        if (k->escaped) {
            char buf[MAX_ESCAPED_NAME];
            v = k->end - k->start < sizeof(buf)
                    ? name_find(table, buf, rm_json_unescape(d->js, k, buf), none)
                    : none;
        } else {
            v = name_find(table, d->js + k->start, k->end - k->start, none);
        }
        if (v != none && (wanted >> v & 1u)) {
            if (tok[v])
                return reject(why, RM_REASON_DUPLICATE_FIELD, fields[v]);
            tok[v] = i + 1;
        }
        i = d->toks[i + 1].next;
    }
    return 0;
}

/* The members of nested object o that `wanted` names, into tok[N__COUNT]. */
static int nested_members(rm_decoder_t *d, const rm_json_tok_t *o, uint32_t wanted,
                          const char *const fields[N__COUNT], uint32_t tok[N__COUNT],
                          rm_reject_t *why) {
    memset(tok, 0, N__COUNT * sizeof(tok[0]));
    return map_members(d, o, nested_table, N__COUNT, wanted, tok, fields, why);
}

static const rm_json_tok_t *tok_at(rm_decoder_t *d, uint32_t i) {
    return i ? &d->toks[i] : NULL;
}

/* {"date", "start_slot", "slot_count"} object (Rescheduled from/to). */
static int get_slot_object(rm_decoder_t *d, const rm_json_tok_t *t, const char *name,
                           const char *const fields[N__COUNT], rm_slots_t *out, rm_reject_t *why) {
    if (!t)
        return reject(why, RM_REASON_MISSING_FIELD, name);
    if (t->type != RM_JSON_OBJECT)
        return reject(why, RM_REASON_WRONG_TYPE, name);
    uint32_t m[N__COUNT];
    if (nested_members(d, t, SLOT_MEMBERS, fields, m, why) < 0 ||
        get_date(d, tok_at(d, m[N_DATE]), fields[N_DATE], &out->day, why) < 0)
        return -1;
    return get_slot_pair(d, tok_at(d, m[N_START_SLOT]), tok_at(d, m[N_SLOT_COUNT]),
                         fields[N_START_SLOT], fields[N_SLOT_COUNT], &out->start, &out->count, why);
}

static int get_string_array(rm_decoder_t *d, const rm_json_tok_t *t, const char *name,
                            rm_reject_t *why) {
    if (t->type != RM_JSON_ARRAY)
        return reject(why, RM_REASON_WRONG_TYPE, name);
    for (uint32_t i = (uint32_t)(t - d->toks) + 1; i < t->next; i = d->toks[i].next)
        if (d->toks[i].type != RM_JSON_STRING)
            return reject(why, RM_REASON_WRONG_TYPE, name);
    return 0;
}

static int get_coord(rm_decoder_t *d, const rm_json_tok_t *t, const char *name, double limit,
                     double *out, rm_span_t *raw, rm_reject_t *why) {
    if (!t)
        return reject(why, RM_REASON_MISSING_FIELD, name);
    if (t->type != RM_JSON_NUMBER)
        return reject(why, RM_REASON_WRONG_TYPE, name);
    char buf[64];
    size_t n = t->end - t->start;
    if (n >= sizeof(buf))
        return reject(why, RM_REASON_OUT_OF_RANGE, name);
    memcpy(buf, d->js + t->start, n);
    buf[n] = '\0';
    double v = strtod(buf, NULL);
    if (!isfinite(v) || v < -limit || v > limit)
        return reject(why, RM_REASON_OUT_OF_RANGE, name);
    *out = v;
    *raw = raw_of(d, t);
    return 0;
}

static int decode_profile(rm_decoder_t *d, rm_event_t *ev, bool all_required, rm_reject_t *why) {
    static const field_t pf[] = {F_NAME, F_SPECIALTIES, F_CITY, F_LOCATION, F_LANGUAGES, F_ACCEPTS};
    for (size_t i = 0; i < sizeof(pf) / sizeof(pf[0]); i++) {
        field_t f = pf[i];
        if (!d->field_tok[f]) {
            if (all_required)
                return reject(why, RM_REASON_MISSING_FIELD, field_names[f]);
            continue;
        }
        const rm_json_tok_t *t = &d->toks[d->field_tok[f]];
        ev->profile |= 1u << i;
        switch (f) {
        case F_NAME:
        case F_CITY:
            if (t->type != RM_JSON_STRING)
                return reject(why, RM_REASON_WRONG_TYPE, field_names[f]);
            *(f == F_NAME ? &ev->name_json : &ev->city_json) = raw_of(d, t);
            break;
        case F_SPECIALTIES:
        case F_LANGUAGES:
            if (get_string_array(d, t, field_names[f], why) < 0)
                return -1;
            *(f == F_SPECIALTIES ? &ev->specialties_json : &ev->languages_json) = raw_of(d, t);
            break;
        case F_LOCATION: {
            if (t->type != RM_JSON_OBJECT)
                return reject(why, RM_REASON_WRONG_TYPE, "location");
            uint32_t m[N__COUNT];
            if (nested_members(d, t, LOCATION_MEMBERS, location_fields, m, why) < 0 ||
                get_coord(d, tok_at(d, m[N_LAT]), location_fields[N_LAT], 90, &ev->lat,
                          &ev->lat_json, why) < 0 ||
                get_coord(d, tok_at(d, m[N_LON]), location_fields[N_LON], 180, &ev->lon,
                          &ev->lon_json, why) < 0)
                return -1;
            break;
        }
        case F_ACCEPTS:
            if (t->type != RM_JSON_TRUE && t->type != RM_JSON_FALSE)
                return reject(why, RM_REASON_WRONG_TYPE, "accepts_new_patients");
            ev->accepts_new_patients = t->type == RM_JSON_TRUE;
            break;
        default:
            break;
        }
    }
    if (!all_required && ev->profile == 0)
        return reject(why, RM_REASON_EMPTY_UPDATE, "");
    return 0;
}

static const rm_json_tok_t *field(rm_decoder_t *d, field_t f) {
    return d->field_tok[f] ? &d->toks[d->field_tok[f]] : NULL;
}

static int decode_day_slots(rm_decoder_t *d, rm_event_t *ev, rm_reject_t *why) {
    if (get_date(d, field(d, F_DATE), "date", &ev->slots.day, why) < 0)
        return -1;
    return get_slot_pair(d, field(d, F_START_SLOT), field(d, F_SLOT_COUNT), "start_slot",
                         "slot_count", &ev->slots.start, &ev->slots.count, why);
}

static int decode_snapshot(rm_decoder_t *d, rm_event_t *ev, rm_reject_t *why) {
    if (get_date(d, field(d, F_DATE), "date", &ev->slots.day, why) < 0)
        return -1;
    const rm_json_tok_t *pub = field(d, F_PUBLISHED);
    if (!pub)
        return reject(why, RM_REASON_MISSING_FIELD, "published");
    if (pub->type != RM_JSON_ARRAY)
        return reject(why, RM_REASON_WRONG_TYPE, "published");
    size_t n = 0;
    for (uint32_t i = (uint32_t)(pub - d->toks) + 1; i < pub->next; i = d->toks[i].next) {
        const rm_json_tok_t *pair = &d->toks[i];
        if (pair->type != RM_JSON_ARRAY || pair->size != 2)
            return reject(why, RM_REASON_WRONG_TYPE, "published");
        rm_slots_t *r = &d->published[n++];
        r->day = ev->slots.day;
        if (get_slot_pair(d, pair + 1, &d->toks[pair[1].next], "published.start_slot",
                          "published.slot_count", &r->start, &r->count, why) < 0)
            return -1;
    }
    ev->published = d->published;
    ev->n_published = n;

    const rm_json_tok_t *bk = field(d, F_BOOKINGS);
    if (!bk)
        return reject(why, RM_REASON_MISSING_FIELD, "bookings");
    if (bk->type != RM_JSON_ARRAY)
        return reject(why, RM_REASON_WRONG_TYPE, "bookings");
    n = 0;
    for (uint32_t i = (uint32_t)(bk - d->toks) + 1; i < bk->next; i = d->toks[i].next) {
        const rm_json_tok_t *o = &d->toks[i];
        if (o->type != RM_JSON_OBJECT)
            return reject(why, RM_REASON_WRONG_TYPE, "bookings");
        if (n >= MAX_SNAP_BOOKINGS)
            return reject(why, RM_REASON_TOO_LARGE, "bookings");
        rm_snapshot_booking_t *b = &d->bookings[n++];
        uint32_t m[N__COUNT];
        if (nested_members(d, o, BOOKING_MEMBERS, booking_fields, m, why) < 0 ||
            get_id(d, tok_at(d, m[N_BOOKING_ID]), booking_fields[N_BOOKING_ID], &b->booking_id,
                   why) < 0 ||
            get_slot_pair(d, tok_at(d, m[N_START_SLOT]), tok_at(d, m[N_SLOT_COUNT]),
                          booking_fields[N_START_SLOT], booking_fields[N_SLOT_COUNT], &b->start,
                          &b->count, why) < 0)
            return -1;
    }
    ev->bookings = d->bookings;
    ev->n_bookings = n;
    return 0;
}

static int decode_body(rm_decoder_t *d, rm_event_t *ev, rm_reject_t *why) {
    switch (ev->type) {
    case RM_EV_PRACTITIONER_REGISTERED:
        return decode_profile(d, ev, true, why);
    case RM_EV_PRACTITIONER_UPDATED:
        return decode_profile(d, ev, false, why);
    case RM_EV_PRACTITIONER_DEACTIVATED:
        return 0;
    case RM_EV_SLOTS_PUBLISHED:
    case RM_EV_SLOTS_WITHDRAWN:
        return decode_day_slots(d, ev, why);
    case RM_EV_BOOKING_CREATED:
        if (get_id(d, field(d, F_BOOKING_ID), "booking_id", &ev->booking_id, why) < 0 ||
            get_id(d, field(d, F_PATIENT_ID), "patient_id", &ev->patient_id, why) < 0)
            return -1;
        return decode_day_slots(d, ev, why);
    case RM_EV_BOOKING_CANCELLED:
        if (get_id(d, field(d, F_BOOKING_ID), "booking_id", &ev->booking_id, why) < 0)
            return -1;
        return decode_day_slots(d, ev, why);
    case RM_EV_BOOKING_RESCHEDULED:
        if (get_id(d, field(d, F_BOOKING_ID), "booking_id", &ev->booking_id, why) < 0 ||
            get_slot_object(d, field(d, F_FROM), "from", from_fields, &ev->from, why) < 0)
            return -1;
        return get_slot_object(d, field(d, F_TO), "to", to_fields, &ev->slots, why);
    case RM_EV_AVAILABILITY_SNAPSHOT:
        return decode_snapshot(d, ev, why);
    default:
        return 0;
    }
}

static bool pid_chars_ok(rm_span_t s) {
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

rm_decode_result_t rm_decode(rm_decoder_t *d, const void *key, size_t key_len, const void *value,
                             size_t value_len, rm_event_t *ev, rm_reject_t *why) {
    if (value == NULL)
        return RM_DECODE_TOMBSTONE;
    rm_reject_t r = {RM_REASON_MALFORMED_JSON, ""};
    memset(ev, 0, sizeof(*ev));
    d->scratch_used = 0;
    d->js = value;
    if (value_len > RM_MAX_MESSAGE_BYTES) {
        *why = (rm_reject_t){RM_REASON_TOO_LARGE, ""};
        return RM_DECODE_INVALID;
    }
    size_t ntok = 0;
    switch (rm_json_scan(value, value_len, d->toks, MAX_TOKENS, &ntok)) {
    case RM_JSON_OK:
        break;
    case RM_JSON_ERR_UTF8:
        *why = (rm_reject_t){RM_REASON_INVALID_UTF8, ""};
        return RM_DECODE_INVALID;
    default:
        *why = (rm_reject_t){RM_REASON_MALFORMED_JSON, ""};
        return RM_DECODE_INVALID;
    }
    const rm_json_tok_t *root = &d->toks[0];
    if (root->type != RM_JSON_OBJECT) {
        *why = (rm_reject_t){RM_REASON_NOT_AN_OBJECT, ""};
        return RM_DECODE_INVALID;
    }

    /* Map top-level members to the field table (every field is known at
     * the top level; a known field twice is rejected). */
    memset(d->field_tok, 0, sizeof(d->field_tok));
    if (map_members(d, root, field_table, F__COUNT, (1u << F__COUNT) - 1, d->field_tok, field_names,
                    &r) < 0)
        goto invalid;

    long version;
    if (get_int(d, field(d, F_SCHEMA_VERSION), "schema_version", 1, 1, &version, &r) < 0) {
        if (r.reason == RM_REASON_OUT_OF_RANGE)
            r.reason = RM_REASON_UNSUPPORTED_SCHEMA_VERSION;
        goto invalid;
    }
    if (get_id(d, field(d, F_EVENT_ID), "event_id", &ev->event_id, &r) < 0)
        goto invalid;
    const rm_json_tok_t *ts = field(d, F_OCCURRED_AT);
    if (!ts) {
        reject(&r, RM_REASON_MISSING_FIELD, "occurred_at");
        goto invalid;
    }
    if (ts->type != RM_JSON_STRING) {
        reject(&r, RM_REASON_WRONG_TYPE, "occurred_at");
        goto invalid;
    }
    ev->occurred_at = str_of(d, ts);
    if (!rm_timestamp_valid(ev->occurred_at.ptr, ev->occurred_at.len)) {
        reject(&r, RM_REASON_INVALID_TIMESTAMP, "occurred_at");
        goto invalid;
    }
    if (get_id(d, field(d, F_PRACTITIONER_ID), "practitioner_id", &ev->practitioner_id, &r) < 0)
        goto invalid;
    if (!pid_chars_ok(ev->practitioner_id)) {
        reject(&r, RM_REASON_INVALID_ID, "practitioner_id");
        goto invalid;
    }
    if (key && (key_len != ev->practitioner_id.len ||
                memcmp(key, ev->practitioner_id.ptr, key_len) != 0)) {
        reject(&r, RM_REASON_KEY_MISMATCH, "practitioner_id");
        goto invalid;
    }
    const rm_json_tok_t *type = field(d, F_TYPE);
    if (!type) {
        reject(&r, RM_REASON_MISSING_FIELD, "type");
        goto invalid;
    }
    if (type->type != RM_JSON_STRING) {
        reject(&r, RM_REASON_WRONG_TYPE, "type");
        goto invalid;
    }
    rm_span_t tname = str_of(d, type);
    ev->type = (rm_event_type_t)name_find(type_table, tname.ptr, tname.len, RM_EV__COUNT);
    if (ev->type == RM_EV__COUNT)
        return RM_DECODE_IGNORED;
    if (decode_body(d, ev, &r) < 0)
        goto invalid;
    return RM_DECODE_OK;
invalid:
    *why = r;
    return RM_DECODE_INVALID;
}
