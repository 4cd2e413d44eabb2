/*
 * Dates and timestamps of the event contract (readmodel/date.h): a day is a
 * 16-bit number counted from 2000-01-01, valid up to 2099-12-31
 * (RM_DAY_MAX); every day in that range formats and parses back to itself;
 * impossible or out-of-range dates and other spellings are refused; and the
 * RFC 3339 UTC timestamps occurred_at accepts (Z or +00:00, optional
 * fraction, leap second) against the forms it refuses (no zone, another
 * offset, hour 24, a space for T).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "readmodel/date.h"

#include <string.h>

static void test_bounds_and_roundtrip(void **state) {
    (void)state;
    uint16_t d;
    assert_true(rm_date_parse("2000-01-01", 10, &d));
    assert_int_equal(d, 0);
    assert_true(rm_date_parse("2099-12-31", 10, &d));
    assert_int_equal(d, RM_DAY_MAX);
    assert_true(rm_date_parse("2000-03-01", 10, &d));
    assert_int_equal(d, 31 + 29);
    char out[11];
    for (unsigned day = 0; day <= RM_DAY_MAX; day++) {
        rm_date_format((uint16_t)day, out);
        uint16_t back;
        assert_true(rm_date_parse(out, 10, &back));
        assert_int_equal(back, day);
    }
    rm_date_format(9823, out); /* 2026-11-23 */
    assert_string_equal(out, "2026-11-23");
}

static void test_invalid_dates(void **state) {
    (void)state;
    const char *bad[] = {"1999-12-31", "2100-01-01", "2026-02-29", "2100-02-29", "2026-13-01",
                         "2026-00-10", "2026-04-31", "2026-4-01",  "2026/04/01", "2026-04-0a"};
    uint16_t d;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(rm_date_parse(bad[i], strlen(bad[i]), &d));
    assert_true(rm_date_parse("2000-02-29", 10, &d)); /* 2000 is a leap year */
}

static void test_timestamps(void **state) {
    (void)state;
    const char *good[] = {"2026-11-20T10:15:00Z", "2026-11-20t10:15:00z",
                          "2026-11-20T10:15:00.123Z", "2026-11-20T10:15:00+00:00",
                          "2016-12-31T23:59:60Z"};
    const char *bad[] = {"2026-11-20T10:15:00",   "2026-11-20 10:15:00Z",
                         "2026-11-20T24:00:00Z",  "2026-11-20T10:15:00+01:00",
                         "2026-11-20T10:15:00.Z", "2026-02-30T00:00:00Z"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(rm_timestamp_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(rm_timestamp_valid(bad[i], strlen(bad[i])));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds_and_roundtrip),
        cmocka_unit_test(test_invalid_dates),
        cmocka_unit_test(test_timestamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
