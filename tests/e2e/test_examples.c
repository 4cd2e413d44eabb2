/*
 * examples/ run against a real model: serve builds the Redis model from a
 * generated log, then the redis-cli script, the C program and the Python
 * script answer the three questions of examples/README.md (is a slot free,
 * the first free slot of a day, the free days of a week) for many
 * practitioner-days. Their output is compared with answers computed here
 * from the reference projection (tests/support/ref_model.c), not from
 * Redis: the examples must read the bits as docs/contract.md says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "e2e.h"
#include "readmodel/gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef RM_SOURCE_DIR
#error RM_SOURCE_DIR must name the source tree
#endif
#ifndef RM_EXAMPLE_C
#error RM_EXAMPLE_C must name the built examples/read_model.c
#endif

/* The reference's keys ("avail:{id}:date") and values. */
typedef struct {
    char key[128];
    unsigned char v[36];
} ref_key_t;

static ref_key_t *ref_keys;
static size_t n_ref_keys;

static void collect(const char *key, const unsigned char v[36], void *arg) {
    (void)arg;
    ref_keys = realloc(ref_keys, (n_ref_keys + 1) * sizeof(*ref_keys));
    snprintf(ref_keys[n_ref_keys].key, sizeof(ref_keys[0].key), "%s", key);
    memcpy(ref_keys[n_ref_keys++].v, v, 36);
}

/* The expected bitmap of a practitioner-day, or NULL: no free slot. */
static const unsigned char *expected(const char *pid, const char *date) {
    char key[160];
    snprintf(key, sizeof(key), "avail:{%s}:%s", pid, date);
    for (size_t i = 0; i < n_ref_keys; i++)
        if (strcmp(ref_keys[i].key, key) == 0)
            return ref_keys[i].v;
    return NULL;
}

/* Slot i of the contract: bit 7 - i % 8 of byte i / 8. */
static bool slot_free(const unsigned char *v, int slot) {
    return v && (v[slot / 8] >> (7 - slot % 8)) & 1;
}

static int first_free(const unsigned char *v) {
    for (int i = 0; v && i < 288; i++)
        if (slot_free(v, i))
            return i;
    return -1;
}

static void add_days(const char *date, int days, char out[11]) {
    struct tm tm = {0};
    sscanf(date, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_mday += days;
    time_t t = timegm(&tm);
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

typedef struct {
    int yes, no, first_none, first_some, week_none, week_some;
} seen_t;

/* The three lines every example prints for (pid, date, at). */
static void expected_output(const char *pid, const char *date, const char *at, char *out,
                            size_t cap, seen_t *seen) {
    int hh, mm;
    sscanf(at, "%d:%d", &hh, &mm);
    const unsigned char *v = expected(pid, date);
    bool free_at = slot_free(v, (hh * 60 + mm) / 5);
    int first = first_free(v);
    size_t n = (size_t)snprintf(out, cap, "free at %s: %s\n", at, free_at ? "yes" : "no");
    if (first >= 0)
        n += (size_t)snprintf(out + n, cap - n, "first free slot: %02d:%02d\n", first * 5 / 60,
                              first * 5 % 60);
    else
        n += (size_t)snprintf(out + n, cap - n, "first free slot: none\n");
    /* 2026-11-23 is a Monday: the week of a date d is found by weekday. */
    struct tm tm = {0};
    sscanf(date, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    gmtime_r(&t, &tm);
    char monday[11], sunday[11], d[11];
    add_days(date, -((tm.tm_wday + 6) % 7), monday);
    add_days(monday, 6, sunday);
    n += (size_t)snprintf(out + n, cap - n, "free days in week %s..%s:", monday, sunday);
    int days = 0;
    for (int i = 0; i < 7; i++) {
        add_days(monday, i, d);
        if (expected(pid, d)) {
            n += (size_t)snprintf(out + n, cap - n, " %s", d);
            days++;
        }
    }
    snprintf(out + n, cap - n, "%s\n", days ? "" : " none");
    seen->yes += free_at;
    seen->no += !free_at;
    seen->first_none += first < 0;
    seen->first_some += first >= 0;
    seen->week_none += days == 0;
    seen->week_some += days > 0;
}

/* Runs one example; its stdout (caller frees), NULL when it failed. */
static char *run_example(const char *socket, const char *program, const char *pid, const char *date,
                         const char *at) {
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "REDIS_SOCKET='%s' %s '%s' '%s' '%s'", socket, program, pid, date,
             at);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    char *out = calloc(1, 4096);
    size_t n = fread(out, 1, 4095, p);
    out[n] = '\0';
    if (pclose(p) != 0) {
        fprintf(stderr, "failed: %s\n", cmd);
        free(out);
        return NULL;
    }
    return out;
}

static void test_examples_answer_as_the_reference(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, "booking.events", 3), 0);
    rm_gen_t *g = e2e_generator(11, 40, 7);
    e2e_produce_generated(&e, g, -1);
    rm_gen_free(g);
    const char *until[] = {"--until-caught-up", NULL};
    assert_int_equal(e2e_wait(e2e_serve(&e, until)), 0);
    assert_int_equal(e2e_compare(&e), 0);
    ref_each_key(e.ref, collect, NULL);
    assert_true(n_ref_keys > 0);

    const char *programs[] = {"bash " RM_SOURCE_DIR "/examples/read_model.sh",
                              "python3 " RM_SOURCE_DIR "/examples/read_model.py", RM_EXAMPLE_C};
    /* Days of the generated week, one after it (no key at all), and a
     * practitioner who has no event. */
    const char *dates[] = {"2026-11-23", "2026-11-26", "2026-11-29", "2026-12-02"};
    const char *pids[] = {"p-00000", "p-00005", "p-00011", "p-00017",
                          "p-00023", "p-00031", "p-00039", "p-nobody"};
    seen_t seen = {0};
    int cases = 0;
    for (size_t pi = 0; pi < sizeof(pids) / sizeof(pids[0]); pi++)
        for (size_t di = 0; di < sizeof(dates) / sizeof(dates[0]); di++) {
            /* 10:30, and the day's first free slot (or 00:00), which is free */
            int first = first_free(expected(pids[pi], dates[di]));
            char at[2][16] = {"10:30", "00:00"};
            if (first >= 0)
                snprintf(at[1], sizeof(at[1]), "%02d:%02d", first * 5 / 60, first * 5 % 60);
            for (int ai = 0; ai < 2; ai++) {
                char want[512];
                expected_output(pids[pi], dates[di], at[ai], want, sizeof(want), &seen);
                for (size_t k = 0; k < sizeof(programs) / sizeof(programs[0]); k++) {
                    char *got = run_example(e.redis.sock, programs[k], pids[pi], dates[di], at[ai]);
                    assert_non_null(got);
                    if (strcmp(got, want) != 0)
                        fprintf(stderr, "%s %s %s %s\nwant:\n%sgot:\n%s", programs[k], pids[pi],
                                dates[di], at[ai], want, got);
                    assert_string_equal(got, want);
                    free(got);
                }
                cases++;
            }
        }
    fprintf(stderr,
            "%d cases x %zu examples: free %d / not free %d, first slot %d / none %d, week with "
            "free days %d / none %d\n",
            cases, sizeof(programs) / sizeof(programs[0]), seen.yes, seen.no, seen.first_some,
            seen.first_none, seen.week_some, seen.week_none);
    /* every kind of answer occurred, so a wrong bit order cannot pass */
    assert_true(seen.yes > 0 && seen.no > 0 && seen.first_some > 0 && seen.first_none > 0 &&
                seen.week_some > 0 && seen.week_none > 0);
    free(ref_keys);
    e2e_stop(&e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_answer_as_the_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
