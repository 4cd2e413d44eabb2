/*
 * Practitioner document projection: events in, document out (table-driven),
 * exact field order and bytes, and the profile's stored form round trip.
 */
#include "readmodel/availability.h"
#include "readmodel/event.h"
#include "readmodel/error.h"
#include "readmodel/practitioner_doc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define ENV(type, rest)                                                                            \
    "{\"event_id\":\"e\",\"type\":\"" type "\",\"schema_version\":1,\"occurred_at\":"              \
    "\"2026-11-20T10:00:00Z\",\"practitioner_id\":\"p-1\"" rest "}"

#define REGISTER                                                                                   \
    ENV("PractitionerRegistered",                                                                  \
        ",\"name\":\"Dr A. Jones\",\"specialties\":[\"dermatology\"],\"city\":\"Dublin\","         \
        "\"location\":{\"lat\":53.35,\"lon\":-6.26},\"languages\":[\"en\",\"ga\"],"                \
        "\"accepts_new_patients\":true")

typedef struct {
    const char *name;
    const char *events[6];
    const char *doc; /* expected, compared as JSON */
} case_t;

static const case_t cases[] = {
    {"registered only",
     {REGISTER},
     "{\"practitioner_id\":\"p-1\",\"name\":\"Dr A. Jones\",\"specialties\":[\"dermatology\"],"
     "\"city\":\"Dublin\",\"location\":{\"lat\":53.35,\"lon\":-6.26},\"languages\":[\"en\","
     "\"ga\"],\"accepts_new_patients\":true,\"active\":true,\"free_dates\":[],"
     "\"free_slots_total\":0}"},
    {"no profile: fields absent, active by default",
     {ENV("SlotsPublished", ",\"date\":\"2026-11-24\",\"start_slot\":10,\"slot_count\":4"),
      ENV("SlotsPublished", ",\"date\":\"2026-11-23\",\"start_slot\":0,\"slot_count\":2")},
     "{\"practitioner_id\":\"p-1\",\"active\":true,\"free_dates\":[\"2026-11-23\","
     "\"2026-11-24\"],\"free_slots_total\":6}"},
    {"booked day drops out of free_dates",
     {ENV("SlotsPublished", ",\"date\":\"2026-11-23\",\"start_slot\":0,\"slot_count\":2"),
      ENV("SlotsPublished", ",\"date\":\"2026-11-24\",\"start_slot\":0,\"slot_count\":3"),
      ENV("BookingCreated", ",\"booking_id\":\"b\",\"patient_id\":\"x\",\"date\":\"2026-11-23\","
                            "\"start_slot\":0,\"slot_count\":2")},
     "{\"practitioner_id\":\"p-1\",\"active\":true,\"free_dates\":[\"2026-11-24\"],"
     "\"free_slots_total\":3}"},
    {"update replaces only its fields",
     {REGISTER, ENV("PractitionerUpdated", ",\"city\":\"Cork\",\"accepts_new_patients\":false")},
     "{\"practitioner_id\":\"p-1\",\"name\":\"Dr A. Jones\",\"specialties\":[\"dermatology\"],"
     "\"city\":\"Cork\",\"location\":{\"lat\":53.35,\"lon\":-6.26},\"languages\":[\"en\","
     "\"ga\"],\"accepts_new_patients\":false,\"active\":true,\"free_dates\":[],"
     "\"free_slots_total\":0}"},
    {"deactivated: no free dates, profile kept",
     {ENV("PractitionerUpdated", ",\"name\":\"B\""),
      ENV("SlotsPublished", ",\"date\":\"2026-11-23\",\"start_slot\":0,\"slot_count\":2"),
      ENV("PractitionerDeactivated", "")},
     "{\"practitioner_id\":\"p-1\",\"name\":\"B\",\"active\":false,\"free_dates\":[],"
     "\"free_slots_total\":0}"},
    {"re-registration reactivates",
     {ENV("SlotsPublished", ",\"date\":\"2026-11-23\",\"start_slot\":5,\"slot_count\":1"),
      ENV("PractitionerDeactivated", ""), REGISTER},
     "{\"practitioner_id\":\"p-1\",\"name\":\"Dr A. Jones\",\"specialties\":[\"dermatology\"],"
     "\"city\":\"Dublin\",\"location\":{\"lat\":53.35,\"lon\":-6.26},\"languages\":[\"en\","
     "\"ga\"],\"accepts_new_patients\":true,\"active\":true,\"free_dates\":[\"2026-11-23\"],"
     "\"free_slots_total\":1}"},
};

static void project(const case_t *c, rm_avail_t *st, rm_profile_t *p) {
    rm_decoder_t *d = rm_decoder_new();
    assert_int_equal(rm_avail_init(st), 0);
    memset(p, 0, sizeof(*p));
    for (int i = 0; i < 6 && c->events[i]; i++) {
        rm_event_t ev;
        rm_reject_t why;
        assert_int_equal(rm_decode(d, NULL, 0, c->events[i], strlen(c->events[i]), &ev, &why),
                         RM_DECODE_OK);
        rm_avail_apply(st, &ev);
        assert_int_equal(rm_profile_apply(p, &ev), 0);
    }
    rm_decoder_free(d);
}

static void test_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rm_avail_t st;
        rm_profile_t p;
        project(&cases[i], &st, &p);
        char *doc;
        size_t len;
        assert_int_equal(rm_doc_render("p-1", 3, &p, &st, &doc, &len), 0);
        assert_int_equal(strlen(doc), len);
        json_t *got = json_loads(doc, 0, NULL), *want = json_loads(cases[i].doc, 0, NULL);
        if (!got || !want || !json_equal(got, want))
            fail_msg("%s:\n  got  %s\n  want %s", cases[i].name, doc, cases[i].doc);
        json_decref(got);
        json_decref(want);
        free(doc);
        rm_profile_free(&p);
        rm_avail_free(&st);
    }
}

/* Byte-exact: field order is fixed and numbers keep the event's text. */
static void test_exact_bytes(void **state) {
    (void)state;
    rm_avail_t st;
    rm_profile_t p;
    project(&cases[0], &st, &p);
    char *doc;
    size_t len;
    assert_int_equal(rm_doc_render("p-1", 3, &p, &st, &doc, &len), 0);
    assert_string_equal(doc, cases[0].doc);
    free(doc);
    rm_profile_free(&p);
    rm_avail_free(&st);
}

static void test_profile_round_trip(void **state) {
    (void)state;
    rm_avail_t st;
    rm_profile_t p, q = {0};
    project(&cases[3], &st, &p);
    json_t *j = rm_profile_to_json(&p);
    assert_non_null(j);
    assert_int_equal(rm_profile_from_json(&q, j), 0);
    char *a, *b;
    size_t la, lb;
    assert_int_equal(rm_doc_render("p-1", 3, &p, &st, &a, &la), 0);
    assert_int_equal(rm_doc_render("p-1", 3, &q, &st, &b, &lb), 0);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(j);
    /* Stored bytes it did not write are refused, not trusted. */
    rm_profile_t r = {0};
    j = json_pack("{s:s}", "name", "not json");
    assert_int_equal(rm_profile_from_json(&r, j), RM_ERR_CORRUPT);
    json_decref(j);
    j = json_pack("{s:s}", "lat", "1.5"); /* lat without lon */
    assert_int_equal(rm_profile_from_json(&r, j), RM_ERR_CORRUPT);
    json_decref(j);
    rm_profile_free(&p);
    rm_profile_free(&q);
    rm_profile_free(&r);
    rm_profile_free(&r); /* freeing twice is a no-op */
    rm_avail_free(&st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_profile_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
