/*
 * Decoder rules, table-driven: each row is a message (key, value) and the
 * result and reason events.md requires for it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "readmodel/event.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENV "\"event_id\":\"e1\",\"schema_version\":1,\"occurred_at\":\"2026-11-20T10:15:00Z\","
#define PID "\"practitioner_id\":\"p-42\""

typedef struct {
    const char *name;
    const char *key; /* NULL: no key */
    const char *value;
    rm_decode_result_t want;
    rm_reason_t reason;
    const char *field;
} row_t;

/* Repetition, for deep nesting in a row's literal. */
#define X3(s)   s s s
#define X10(s)  s s s s s s s s s s
#define X100(s) X10(X10(s))
#define LOC(l)  "{" ENV PID ",\"type\":\"PractitionerUpdated\",\"location\":{" l "}}"
#define RESCHED(from, to)                                                                          \
    "{" ENV PID ",\"type\":\"BookingRescheduled\",\"booking_id\":\"b1\",\"from\":{" from "},"      \
    "\"to\":{" to "}}"
#define SNAP_BOOKING(b)                                                                            \
    "{" ENV PID ",\"type\":\"AvailabilitySnapshot\",\"date\":\"2026-11-23\",\"published\":[],"     \
    "\"bookings\":[{" b "}]}"

#define OK(n, v)                                                                                   \
    { n, "p-42", v, RM_DECODE_OK, 0, NULL }
#define BAD(n, v, r, f)                                                                            \
    { n, "p-42", v, RM_DECODE_INVALID, RM_REASON_##r, f }

static const row_t rows[] = {
    OK("registered", "{" ENV PID ",\"type\":\"PractitionerRegistered\",\"name\":\"Dr A. Jones\","
                     "\"specialties\":[\"dermatology\"],\"city\":\"Dublin\",\"location\":{\"lat\":"
                     "53.35,\"lon\":-6.26},\"languages\":[\"en\",\"ga\"],\"accepts_new_patients\":"
                     "true}"),
    OK("updated subset", "{" ENV PID ",\"type\":\"PractitionerUpdated\",\"city\":\"Cork\"}"),
    OK("deactivated", "{" ENV PID ",\"type\":\"PractitionerDeactivated\"}"),
    OK("published", "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2026-11-23\","
                    "\"start_slot\":0,\"slot_count\":288}"),
    OK("withdrawn last slot", "{" ENV PID ",\"type\":\"SlotsWithdrawn\",\"date\":\"2099-12-31\","
                              "\"start_slot\":287,\"slot_count\":1}"),
    OK("created", "{" ENV PID ",\"type\":\"BookingCreated\",\"booking_id\":\"b1\",\"patient_id\":"
                  "\"x\",\"date\":\"2000-01-01\",\"start_slot\":10,\"slot_count\":3}"),
    OK("cancelled", "{" ENV PID ",\"type\":\"BookingCancelled\",\"booking_id\":\"b1\","
                    "\"date\":\"2026-11-23\",\"start_slot\":10,\"slot_count\":3}"),
    OK("rescheduled", "{" ENV PID ",\"type\":\"BookingRescheduled\",\"booking_id\":\"b1\","
                      "\"from\":{\"date\":\"2026-11-23\",\"start_slot\":10,\"slot_count\":3},"
                      "\"to\":{\"date\":\"2026-11-24\",\"start_slot\":20,\"slot_count\":2}}"),
    OK("snapshot", "{" ENV PID ",\"type\":\"AvailabilitySnapshot\",\"date\":\"2026-11-23\","
                   "\"published\":[[0,10],[100,20]],\"bookings\":[{\"booking_id\":\"b9\","
                   "\"start_slot\":100,\"slot_count\":2}]}"),
    OK("leap day", "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2028-02-29\","
                   "\"start_slot\":0,\"slot_count\":1}"),
    OK("unknown fields ignored", "{" ENV PID ",\"type\":\"PractitionerDeactivated\",\"x\":[1,{}]}"),
    /* Unknown members are ignored however deep their values nest: at the
     * top level and inside an object the decoder reads. */
    OK("unknown field nested 40 deep",
       "{" ENV PID ",\"type\":\"PractitionerDeactivated\",\"x\":" X10("[[[[") "1" X10("]]]]") "}"),
    OK("unknown field nested 300 objects deep",
       "{" ENV PID
       ",\"type\":\"PractitionerDeactivated\",\"x\":" X100(X3("{\"a\":")) "null" X100(X3("}")) "}"),
    OK("unknown member of location nested 40 deep",
       LOC("\"lat\":1,\"x\":" X10("[{\"a\":[[") X10("]]}]") ",\"lon\":2")),
    /* Member names of nested objects are compared after unescaping, as at
     * the top level, however long their escaped form. */
    OK("escaped name in location", LOC("\"l\\u0061t\":53.35,\"lo\\u006e\":-6.26")),
    OK("escaped names in from and to",
       RESCHED("\"d\\u0061te\":\"2026-11-23\",\"start\\u005fslot\":10,\"slot_count\":3",
               "\"date\":\"2026-11-24\",\"start_slot\":20,\"\\u0073lot_count\":2")),
    OK("escaped name in snapshot booking",
       SNAP_BOOKING("\"booking\\u005fid\":\"b9\",\"start_slot\":1,\"slot_count\":1")),
    OK("fully escaped long name",
       "{" ENV PID ",\"type\":\"PractitionerUpdated\",\"\\u0061\\u0063\\u0063\\u0065\\u0070"
       "\\u0074\\u0073\\u005f\\u006e\\u0065\\u0077\\u005f\\u0070\\u0061\\u0074\\u0069\\u0065"
       "\\u006e\\u0074\\u0073\":true}"),
    OK("unknown duplicate in location ignored", LOC("\"lat\":1,\"x\":1,\"lon\":2,\"x\":[]")),
    OK("location members named like other fields are unknown",
       LOC("\"lat\":1,\"date\":1,\"lon\":2,\"date\":2")),
    {"no key is fine", NULL, "{" ENV PID ",\"type\":\"PractitionerDeactivated\"}", RM_DECODE_OK, 0,
     NULL},
    {"unknown type ignored", "p-42", "{" ENV PID ",\"type\":\"PaymentTaken\"}", RM_DECODE_IGNORED,
     0, NULL},
    {"tombstone", "p-42", NULL, RM_DECODE_TOMBSTONE, 0, NULL},

    BAD("malformed", "{" ENV PID, MALFORMED_JSON, ""),
    BAD("trailing comma", "{" ENV PID ",\"type\":\"PractitionerDeactivated\",}", MALFORMED_JSON,
        ""),
    BAD("missing colon", "{\"event_id\" \"e1\"}", MALFORMED_JSON, ""),
    BAD("trailing garbage", "{" ENV PID ",\"type\":\"PractitionerDeactivated\"} x", MALFORMED_JSON,
        ""),
    BAD("bad escape", "{" ENV PID ",\"type\":\"PractitionerDeactivated\",\"x\":\"\\q\"}",
        MALFORMED_JSON, ""),
    BAD("raw control char", "{" ENV PID ",\"type\":\"PractitionerDeactivated\",\"x\":\"a\nb\"}",
        MALFORMED_JSON, ""),
    BAD("leading zero",
        "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2026-11-23\","
        "\"start_slot\":01,\"slot_count\":1}",
        MALFORMED_JSON, ""),
    BAD("not an object", "[1,2]", NOT_AN_OBJECT, ""),
    BAD("empty", "", MALFORMED_JSON, ""),
    BAD("invalid utf8", "{" ENV PID ",\"type\":\"PractitionerDeactivated\",\"x\":\"\xC3\x28\"}",
        INVALID_UTF8, ""),
    BAD("overlong utf8", "{" ENV PID ",\"type\":\"PractitionerDeactivated\",\"x\":\"\xC0\xAF\"}",
        INVALID_UTF8, ""),
    BAD("encoded surrogate",
        "{" ENV PID ",\"type\":\"PractitionerDeactivated\",\"x\":\"\xED\xA0\x80\"}", INVALID_UTF8,
        ""),
    BAD("lone surrogate escape",
        "{" ENV PID ",\"type\":\"PractitionerDeactivated\",\"x\":\"\\ud800\"}", INVALID_UTF8, ""),
    BAD("duplicate field", "{" ENV PID ",\"type\":\"PractitionerDeactivated\",\"type\":\"x\"}",
        DUPLICATE_FIELD, "type"),
    BAD("schema 2",
        "{\"event_id\":\"e1\",\"schema_version\":2,\"occurred_at\":\"2026-11-20T10:15:"
        "00Z\"," PID ",\"type\":\"PractitionerDeactivated\"}",
        UNSUPPORTED_SCHEMA_VERSION, "schema_version"),
    BAD("schema 0",
        "{\"event_id\":\"e1\",\"schema_version\":0,\"occurred_at\":\"2026-11-20T10:15:"
        "00Z\"," PID ",\"type\":\"PractitionerDeactivated\"}",
        UNSUPPORTED_SCHEMA_VERSION, "schema_version"),
    BAD("schema float",
        "{\"event_id\":\"e1\",\"schema_version\":1.0,\"occurred_at\":\"2026-11-20T1"
        "0:15:00Z\"," PID ",\"type\":\"PractitionerDeactivated\"}",
        NOT_AN_INTEGER, "schema_version"),
    BAD("schema string",
        "{\"event_id\":\"e1\",\"schema_version\":\"1\",\"occurred_at\":\"2026-11-"
        "20T10:15:00Z\"," PID ",\"type\":\"PractitionerDeactivated\"}",
        WRONG_TYPE, "schema_version"),
    BAD("schema missing",
        "{\"event_id\":\"e1\",\"occurred_at\":\"2026-11-20T10:15:00Z\"," PID
        ",\"type\":\"PractitionerDeactivated\"}",
        MISSING_FIELD, "schema_version"),
    BAD("event_id empty",
        "{\"event_id\":\"\",\"schema_version\":1,\"occurred_at\":\"2026-11-20T10:"
        "15:00Z\"," PID ",\"type\":\"PractitionerDeactivated\"}",
        INVALID_ID, "event_id"),
    BAD("event_id 65 chars",
        "{\"event_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
        "\"schema_version\":1,\"occurred_at\":\"2026-11-20T10:15:00Z\"," PID
        ",\"type\":\"PractitionerDeactivated\"}",
        INVALID_ID, "event_id"),
    BAD("occurred_at not utc",
        "{\"event_id\":\"e1\",\"schema_version\":1,\"occurred_at\":\"2026-11-"
        "20T10:15:00+01:00\"," PID ",\"type\":\"PractitionerDeactivated\"}",
        INVALID_TIMESTAMP, "occurred_at"),
    BAD("occurred_at bad day",
        "{\"event_id\":\"e1\",\"schema_version\":1,\"occurred_at\":\"2026-02-"
        "30T10:15:00Z\"," PID ",\"type\":\"PractitionerDeactivated\"}",
        INVALID_TIMESTAMP, "occurred_at"),
    BAD("pid bad char",
        "{" ENV "\"practitioner_id\":\"p 42\",\"type\":\"PractitionerDeactivated\"}", INVALID_ID,
        "practitioner_id"),
    BAD("pid missing", "{" ENV "\"type\":\"PractitionerDeactivated\"}", MISSING_FIELD,
        "practitioner_id"),
    {"key mismatch", "p-43", "{" ENV PID ",\"type\":\"PractitionerDeactivated\"}",
     RM_DECODE_INVALID, RM_REASON_KEY_MISMATCH, "practitioner_id"},
    {"empty key mismatch", "", "{" ENV PID ",\"type\":\"PractitionerDeactivated\"}",
     RM_DECODE_INVALID, RM_REASON_KEY_MISMATCH, "practitioner_id"},
    BAD("type missing", "{" ENV PID "}", MISSING_FIELD, "type"),
    BAD("type number", "{" ENV PID ",\"type\":3}", WRONG_TYPE, "type"),
    BAD("registered missing city",
        "{" ENV PID ",\"type\":\"PractitionerRegistered\",\"name\":\"n\",\"specialties\":[],"
        "\"location\":{\"lat\":1,\"lon\":2},\"languages\":[],\"accepts_new_patients\":true}",
        MISSING_FIELD, "city"),
    BAD("lat out of range",
        "{" ENV PID ",\"type\":\"PractitionerUpdated\",\"location\":{\"lat\":"
        "90.5,\"lon\":2}}",
        OUT_OF_RANGE, "location.lat"),
    BAD("lon string",
        "{" ENV PID ",\"type\":\"PractitionerUpdated\",\"location\":{\"lat\":1,"
        "\"lon\":\"2\"}}",
        WRONG_TYPE, "location.lon"),
    BAD("escaped name in location is checked", LOC("\"l\\u0061t\":90.5,\"lon\":2"), OUT_OF_RANGE,
        "location.lat"),
    BAD("escaped name in to is checked",
        RESCHED("\"date\":\"2026-11-23\",\"start_slot\":10,\"slot_count\":3",
                "\"d\\u0061te\":\"2026-02-30\",\"start_slot\":20,\"slot_count\":2"),
        INVALID_DATE, "to.date"),
    /* A known member twice in a nested object is rejected as at the top
     * level, escaped or not. */
    BAD("duplicate in location", LOC("\"lat\":1,\"lon\":2,\"lat\":3"), DUPLICATE_FIELD,
        "location.lat"),
    BAD("escaped duplicate in location", LOC("\"lat\":1,\"l\\u0061t\":1,\"lon\":2"),
        DUPLICATE_FIELD, "location.lat"),
    BAD("duplicate in to",
        RESCHED("\"date\":\"2026-11-23\",\"start_slot\":10,\"slot_count\":3",
                "\"date\":\"2026-11-24\",\"start_slot\":20,\"slot_count\":2,\"slot_count\":2"),
        DUPLICATE_FIELD, "to.slot_count"),
    BAD("duplicate in from",
        RESCHED("\"date\":\"2026-11-23\",\"d\\u0061te\":\"2026-11-23\",\"start_slot\":10,"
                "\"slot_count\":3",
                "\"date\":\"2026-11-24\",\"start_slot\":20,\"slot_count\":2"),
        DUPLICATE_FIELD, "from.date"),
    BAD("duplicate in snapshot booking",
        SNAP_BOOKING("\"booking_id\":\"a\",\"start_slot\":1,\"slot_count\":1,\"booking_id\":\"b\""),
        DUPLICATE_FIELD, "bookings.booking_id"),
    BAD("specialties not strings",
        "{" ENV PID ",\"type\":\"PractitionerUpdated\",\"specialties\":"
        "[1]}",
        WRONG_TYPE, "specialties"),
    BAD("accepts string",
        "{" ENV PID ",\"type\":\"PractitionerUpdated\",\"accepts_new_patients\":"
        "\"yes\"}",
        WRONG_TYPE, "accepts_new_patients"),
    BAD("empty update", "{" ENV PID ",\"type\":\"PractitionerUpdated\"}", EMPTY_UPDATE, ""),
    BAD("impossible date",
        "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2026-02-29\","
        "\"start_slot\":0,\"slot_count\":1}",
        INVALID_DATE, "date"),
    BAD("date before 2000",
        "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"1999-12-31\","
        "\"start_slot\":0,\"slot_count\":1}",
        INVALID_DATE, "date"),
    BAD("date after 2099",
        "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2100-01-01\","
        "\"start_slot\":0,\"slot_count\":1}",
        INVALID_DATE, "date"),
    BAD("date shape",
        "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2026-1-23\","
        "\"start_slot\":0,\"slot_count\":1}",
        INVALID_DATE, "date"),
    BAD("start float",
        "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2026-11-23\","
        "\"start_slot\":1.0,\"slot_count\":1}",
        NOT_AN_INTEGER, "start_slot"),
    BAD("start exponent",
        "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2026-11-23\","
        "\"start_slot\":1e1,\"slot_count\":1}",
        NOT_AN_INTEGER, "start_slot"),
    BAD("start negative",
        "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2026-11-23\","
        "\"start_slot\":-1,\"slot_count\":1}",
        OUT_OF_RANGE, "start_slot"),
    BAD("start 288",
        "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2026-11-23\","
        "\"start_slot\":288,\"slot_count\":1}",
        OUT_OF_RANGE, "start_slot"),
    BAD("count 0",
        "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2026-11-23\","
        "\"start_slot\":0,\"slot_count\":0}",
        OUT_OF_RANGE, "slot_count"),
    BAD("huge count",
        "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2026-11-23\","
        "\"start_slot\":0,\"slot_count\":99999999999999999999}",
        OUT_OF_RANGE, "slot_count"),
    BAD("past end of day",
        "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2026-11-23\","
        "\"start_slot\":280,\"slot_count\":9}",
        RANGE_PAST_END_OF_DAY, "slot_count"),
    BAD("created without patient",
        "{" ENV PID ",\"type\":\"BookingCreated\",\"booking_id\":\"b1\","
        "\"date\":\"2026-11-23\",\"start_slot\":10,\"slot_count\":3}",
        MISSING_FIELD, "patient_id"),
    BAD("booking id number",
        "{" ENV PID ",\"type\":\"BookingCancelled\",\"booking_id\":7,"
        "\"date\":\"2026-11-23\",\"start_slot\":10,\"slot_count\":3}",
        WRONG_TYPE, "booking_id"),
    BAD("reschedule to past end",
        "{" ENV PID ",\"type\":\"BookingRescheduled\",\"booking_id\":"
        "\"b1\",\"from\":{\"date\":\"2026-11-23\",\"start_slot\":10,"
        "\"slot_count\":3},\"to\":{\"date\":\"2026-11-24\","
        "\"start_slot\":287,\"slot_count\":2}}",
        RANGE_PAST_END_OF_DAY, "to.slot_count"),
    BAD("reschedule missing from",
        "{" ENV PID ",\"type\":\"BookingRescheduled\",\"booking_id\":"
        "\"b1\",\"to\":{\"date\":\"2026-11-24\",\"start_slot\":1,"
        "\"slot_count\":2}}",
        MISSING_FIELD, "from"),
    BAD("snapshot bad pair",
        "{" ENV PID ",\"type\":\"AvailabilitySnapshot\",\"date\":\"2026-11-23\","
        "\"published\":[[0,10,3]],\"bookings\":[]}",
        WRONG_TYPE, "published"),
    BAD("snapshot range",
        "{" ENV PID ",\"type\":\"AvailabilitySnapshot\",\"date\":\"2026-11-23\","
        "\"published\":[[280,10]],\"bookings\":[]}",
        RANGE_PAST_END_OF_DAY, "published.slot_count"),
    BAD("snapshot booking missing id",
        "{" ENV PID ",\"type\":\"AvailabilitySnapshot\",\"date\":"
        "\"2026-11-23\",\"published\":[],\"bookings\":[{"
        "\"start_slot\":1,\"slot_count\":1}]}",
        MISSING_FIELD, "bookings.booking_id"),
    BAD("snapshot missing bookings",
        "{" ENV PID ",\"type\":\"AvailabilitySnapshot\",\"date\":"
        "\"2026-11-23\",\"published\":[]}",
        MISSING_FIELD, "bookings"),
};

static void test_rows(void **state) {
    (void)state;
    rm_decoder_t *d = rm_decoder_new();
    assert_non_null(d);
    int failures = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const row_t *r = &rows[i];
        rm_event_t ev;
        rm_reject_t why = {RM_REASON__COUNT, "(unset)"};
        rm_decode_result_t got = rm_decode(d, r->key, r->key ? strlen(r->key) : 0, r->value,
                                           r->value ? strlen(r->value) : 0, &ev, &why);
        int ok = got == r->want;
        if (ok && got == RM_DECODE_INVALID)
            ok = why.reason == r->reason && strcmp(why.field, r->field) == 0;
        if (!ok) {
            fprintf(stderr, "row '%s': got result %d reason %s field '%s'\n", r->name, got,
                    rm_reason_name(why.reason), why.field);
            failures++;
        }
    }
    rm_decoder_free(d);
    assert_int_equal(failures, 0);
}

static void test_fields_decoded(void **state) {
    (void)state;
    rm_decoder_t *d = rm_decoder_new();
    rm_event_t ev;
    rm_reject_t why;
    const char *v = "{" ENV PID ",\"type\":\"BookingRescheduled\",\"booking_id\":\"b\\u0031\","
                    "\"from\":{\"date\":\"2026-11-23\",\"start_slot\":10,\"slot_count\":3},"
                    "\"to\":{\"date\":\"2026-11-24\",\"start_slot\":20,\"slot_count\":2}}";
    assert_int_equal(rm_decode(d, "p-42", 4, v, strlen(v), &ev, &why), RM_DECODE_OK);
    assert_int_equal(ev.type, RM_EV_BOOKING_RESCHEDULED);
    assert_int_equal(ev.booking_id.len, 2);
    assert_memory_equal(ev.booking_id.ptr, "b1", 2);
    assert_int_equal(ev.from.start, 10);
    assert_int_equal(ev.slots.day, ev.from.day + 1);
    assert_int_equal(ev.slots.start, 20);
    assert_int_equal(ev.slots.count, 2);

    const char *s = "{" ENV PID ",\"type\":\"AvailabilitySnapshot\",\"date\":\"2000-01-02\","
                    "\"published\":[[0,10],[100,20]],\"bookings\":[{\"booking_id\":\"b9\","
                    "\"start_slot\":100,\"slot_count\":2}]}";
    assert_int_equal(rm_decode(d, NULL, 0, s, strlen(s), &ev, &why), RM_DECODE_OK);
    assert_int_equal(ev.slots.day, 1);
    assert_int_equal(ev.n_published, 2);
    assert_int_equal(ev.published[1].start, 100);
    assert_int_equal(ev.published[1].count, 20);
    assert_int_equal(ev.n_bookings, 1);
    assert_memory_equal(ev.bookings[0].booking_id.ptr, "b9", 2);

    const char *r = "{" ENV PID ",\"type\":\"PractitionerRegistered\",\"name\":\"Dr \\\"A\\\"\","
                    "\"specialties\":[\"x\"],\"city\":\"Dublin\",\"location\":{\"lat\":-90,"
                    "\"lon\":180},\"languages\":[],\"accepts_new_patients\":false}";
    assert_int_equal(rm_decode(d, "p-42", 4, r, strlen(r), &ev, &why), RM_DECODE_OK);
    assert_int_equal(ev.profile, RM_PROFILE_ALL);
    assert_int_equal(ev.name_json.len, strlen("\"Dr \\\"A\\\"\""));
    assert_true(ev.lat == -90 && ev.lon == 180);
    assert_false(ev.accepts_new_patients);

    /* Escaped member names in nested objects reach the same fields. */
    const char *e = "{" ENV PID ",\"type\":\"PractitionerUpdated\",\"location\":{\"l\\u006fn\":"
                    "-6.26,\"\\u006c\\u0061\\u0074\":53.35}}";
    assert_int_equal(rm_decode(d, "p-42", 4, e, strlen(e), &ev, &why), RM_DECODE_OK);
    assert_int_equal(ev.profile, RM_PROFILE_LOCATION);
    assert_true(ev.lat == 53.35 && ev.lon == -6.26);
    assert_int_equal(ev.lat_json.len, 5);
    assert_memory_equal(ev.lat_json.ptr, "53.35", 5);
    const char *b = "{" ENV PID ",\"type\":\"AvailabilitySnapshot\",\"date\":\"2000-01-02\","
                    "\"published\":[],\"bookings\":[{\"slot_count\":2,\"b\\u006f\\u006fking_id\":"
                    "\"b\\u0039\",\"start_\\u0073lot\":100}]}";
    assert_int_equal(rm_decode(d, NULL, 0, b, strlen(b), &ev, &why), RM_DECODE_OK);
    assert_int_equal(ev.n_bookings, 1);
    assert_int_equal(ev.bookings[0].booking_id.len, 2);
    assert_memory_equal(ev.bookings[0].booking_id.ptr, "b9", 2);
    assert_int_equal(ev.bookings[0].start, 100);
    assert_int_equal(ev.bookings[0].count, 2);
    rm_decoder_free(d);
}

static void test_oversized(void **state) {
    (void)state;
    rm_decoder_t *d = rm_decoder_new();
    size_t n = RM_MAX_MESSAGE_BYTES + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    const char *ev = "{" ENV PID ",\"type\":\"PractitionerDeactivated\"}";
    memcpy(big, ev, strlen(ev));
    rm_event_t out;
    rm_reject_t why;
    assert_int_equal(rm_decode(d, NULL, 0, big, n, &out, &why), RM_DECODE_INVALID);
    assert_int_equal(why.reason, RM_REASON_TOO_LARGE);
    /* Exactly at the limit is accepted (trailing whitespace is valid JSON). */
    assert_int_equal(rm_decode(d, NULL, 0, big, n - 1, &out, &why), RM_DECODE_OK);
    free(big);
    rm_decoder_free(d);
}

/* An unknown member nested as deep as a message of the maximum size allows
 * (32,000 levels of arrays, or of objects) is ignored: the scanner keeps no
 * stack, so no depth limit of its own remains. Cut anywhere short of its
 * end, the same message is malformed JSON. */
static void test_deep_nesting(void **state) {
    (void)state;
    rm_decoder_t *d = rm_decoder_new();
    const char *head = "{" ENV PID ",\"type\":\"PractitionerDeactivated\",\"x\":";
    size_t hl = strlen(head);
    char *buf = malloc(RM_MAX_MESSAGE_BYTES);
    assert_non_null(buf);
    rm_event_t ev;
    rm_reject_t why;
    for (int objects = 0; objects < 2; objects++) {
        const char *open = objects ? "{\"a\":" : "[";
        const char *close = objects ? "}" : "]";
        size_t ol = strlen(open), levels = (RM_MAX_MESSAGE_BYTES - hl - 2) / (ol + 1);
        assert_true(levels >= (objects ? 10000 : 32000));
        size_t n = 0;
        memcpy(buf, head, hl);
        n += hl;
        for (size_t i = 0; i < levels; i++, n += ol)
            memcpy(buf + n, open, ol);
        buf[n++] = '1';
        for (size_t i = 0; i < levels; i++)
            buf[n++] = close[0];
        buf[n++] = '}';
        assert_true(n <= RM_MAX_MESSAGE_BYTES);
        assert_int_equal(rm_decode(d, "p-42", 4, buf, n, &ev, &why), RM_DECODE_OK);
        assert_int_equal(ev.type, RM_EV_PRACTITIONER_DEACTIVATED);
        why.reason = RM_REASON__COUNT;
        assert_int_equal(rm_decode(d, "p-42", 4, buf, n - 2, &ev, &why), RM_DECODE_INVALID);
        assert_int_equal(why.reason, RM_REASON_MALFORMED_JSON);
    }
    free(buf);
    rm_decoder_free(d);
}

/* Deep nesting and random bytes never crash and never pass as valid. */
static void test_hostile_inputs(void **state) {
    (void)state;
    rm_decoder_t *d = rm_decoder_new();
    char buf[4096];
    memset(buf, '[', sizeof(buf));
    rm_event_t ev;
    rm_reject_t why;
    assert_int_equal(rm_decode(d, NULL, 0, buf, sizeof(buf), &ev, &why), RM_DECODE_INVALID);
    unsigned seed = 7;
    const char *base = "{" ENV PID ",\"type\":\"SlotsPublished\",\"date\":\"2026-11-23\","
                       "\"start_slot\":0,\"slot_count\":288}";
    size_t len = strlen(base);
    for (int i = 0; i < 20000; i++) {
        memcpy(buf, base, len);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % len] = (char)(seed >> 20);
        }
        rm_decode_result_t r = rm_decode(d, NULL, 0, buf, len, &ev, &why);
        if (r == RM_DECODE_OK && ev.type == RM_EV_SLOTS_PUBLISHED)
            assert_true(ev.slots.start + ev.slots.count <= 288);
    }
    rm_decoder_free(d);
}

/* The decoder's JSON scanner against jansson, an independent strict parser:
 * on many mutations of valid messages (bytes swapped for JSON punctuation,
 * escapes, control characters and UTF-8 lead and continuation bytes,
 * inserted or deleted), a message is rejected as malformed JSON or invalid
 * UTF-8 exactly when jansson refuses it. The messages are long enough that
 * strings cross the scanner's 64-byte blocks and end in its last, partial
 * one. Numbers jansson cannot represent (it refuses an overflowing integer
 * or real that the JSON grammar allows) are left out of the comparison. */
static void test_json_agrees_with_jansson(void **state) {
    (void)state;
    static const char *const bases[] = {
        "{" ENV PID ",\"type\":\"BookingRescheduled\",\"booking_id\":\"b\\u00e9-\\ud83d\\ude00\","
        "\"from\":{\"date\":\"2026-11-23\",\"start_slot\":10,\"slot_count\":3},"
        "\"to\":{\"date\":\"2026-11-24\",\"start_slot\":20,\"slot_count\":2}}",
        "{" ENV PID ",\"type\":\"PractitionerRegistered\",\"name\":\"Dr \xc3\xa9\xe2\x82\xac "
        "\xf0\x9f\x98\x80 \\\"A\\\" \\\\ "
        "\\/\\n\",\"specialties\":[\"x\",\"y\"],\"city\":\"Dublin\","
        "\"location\":{\"lat\":-9.5e-1,\"lon\":180.25E+0},\"languages\":[],"
        "\"accepts_new_patients\":false,\"extra\":[null,true,{},0,-0.5]}",
        " [ \"a long string value that crosses a sixty-four byte block of the message\" , 1 ] ",
    };
    static const char alphabet[] =
        "\"\\u{}[],:0-e.+ \t\n/ab\x00\x01\x1f\x7f\x80\xbf\xc2\xc3\xe0\xed"
        "\xf0\xf4\xf5\xff"
        "D8";
    rm_decoder_t *d = rm_decoder_new();
    unsigned seed = 11;
    char buf[1024];
    int compared = 0, rejected = 0;
    for (int i = 0; i < 60000; i++) {
        const char *base = bases[i % 3];
        size_t len = strlen(base);
        memcpy(buf, base, len);
        int edits = 1 + i % 3;
        for (int k = 0; k < edits; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            char c = alphabet[(seed >> 20) % (sizeof(alphabet) - 1)];
            switch ((seed >> 28) % 4) {
            case 0: /* insert */
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = c;
                len++;
                break;
            case 1: /* delete */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            default: /* replace */
                buf[at] = c;
            }
        }
        json_error_t err = {.text = ""};
        json_t *j = NULL;
        if (memchr(buf, 0, len)) {
            /* A raw NUL is never valid JSON (a control character in a
             * string, not whitespace outside one), but jansson 2.14 takes
             * one after a number for the end of it: the decoder alone. */
            strcpy(err.text, "raw NUL");
        } else {
            j = json_loadb(buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
            json_decref(j);
            if (!j && (strstr(err.text, "too big") || strstr(err.text, "overflow")))
                continue;
        }
        rm_event_t ev;
        rm_reject_t why = {RM_REASON__COUNT, ""};
        rm_decode_result_t r = rm_decode(d, NULL, 0, buf, len, &ev, &why);
        bool bad_json = r == RM_DECODE_INVALID && (why.reason == RM_REASON_MALFORMED_JSON ||
                                                   why.reason == RM_REASON_INVALID_UTF8);
        if (bad_json != !j) {
            fprintf(stderr, "mutation %d: jansson %s (%s), decoder %s\n", i,
                    j ? "accepts" : "refuses", j ? "" : err.text, rm_reason_name(why.reason));
            for (size_t b = 0; b < len; b++)
                fprintf(stderr,
                        (unsigned char)buf[b] < 0x20 || (unsigned char)buf[b] > 0x7e ? "<%02x>"
                                                                                     : "%c",
                        (unsigned char)buf[b]);
            fprintf(stderr, "\n");
            fail();
        }
        compared++;
        rejected += !j;
    }
    rm_decoder_free(d);
    /* Both outcomes were exercised many times. */
    assert_true(compared > 50000);
    assert_true(rejected > compared / 10 && rejected < compared * 9 / 10);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),           cmocka_unit_test(test_fields_decoded),
        cmocka_unit_test(test_oversized),      cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_hostile_inputs), cmocka_unit_test(test_json_agrees_with_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
