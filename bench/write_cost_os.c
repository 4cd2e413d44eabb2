/*
 * OpenSearch counterpart of write_cost.c: the write cost of one event on
 * one practitioner against its live bookings, for the OpenSearch sink
 * (bench/write_cost.sh builds this against the current tree and against the
 * layout before per-day OpenSearch state, and compares them).
 *
 * The same cases and events as write_cost.c: one practitioner with that
 * many live bookings (48 six-slot bookings on each published day), written
 * once, then single events each flushed on its own (a cancellation on the
 * first day, a booking on a new day, a reschedule from the middle of the
 * history). Measured: the bytes of the _bulk bodies the server received per
 * event, all of them and those of the state index (the practitioner's
 * document is the rest: its free_dates list every day with a free slot, so
 * it grows with those days, not with the bookings), the time per flush,
 * and the time to load the stored state back. The server is the test server of
 * tests/support/os_server.c in this process: bytes sent do not depend on
 * the engine, and no JVM is needed.
 *
 * Usage: rm_bench_write_cost_os LABEL. Prints one line of key=value per
 * case. Uses only the API that both layouts share.
 */
#include "os_server.h"
#include "readmodel/availability.h"
#include "readmodel/opensearch_sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define D0      9823 /* 2026-11-23 */
#define PER_DAY 48
#define EVENTS  30

static os_server_t *srv;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void event(rm_avail_t *st, rm_event_type_t type, int b, uint16_t day, uint16_t start) {
    char id[32];
    snprintf(id, sizeof(id), "b-%07d", b);
    rm_event_t e = {.type = type, .booking_id = {id, strlen(id)}, .slots = {day, start, 6}};
    rm_avail_apply(st, &e);
}

/* Through the alias, or (a live flush since its states go to the
 * generation they were loaded from) the concrete index. */
#define STATE_BYTES    "bulk_bytes:practitioners-state"
#define STATE_BYTES_G1 "bulk_bytes:practitioners-state-000001"

static long state_bytes(void) {
    return os_server_requests(srv, STATE_BYTES) + os_server_requests(srv, STATE_BYTES_G1);
}

/* Flushes the item; the bytes of _bulk bodies (all, and of the state
 * index's actions) and the seconds it took. */
static int flush(rm_os_sink_t *s, rm_sink_item_t *it, long *bytes, long *state, double *secs) {
    long before = os_server_requests(srv, "bulk_bytes");
    long sbefore = state_bytes();
    double t0 = now_s();
    if (rm_os_sink_flush(s, it, 1, 3) != RM_ERR_OK || !it->written) {
        fprintf(stderr, "flush failed: %s\n", rm_os_sink_last_error(s));
        return -1;
    }
    *secs = now_s() - t0;
    *bytes = os_server_requests(srv, "bulk_bytes") - before;
    *state = state_bytes() - sbefore;
    rm_avail_clear_dirty(it->st);
    it->expect_partition = it->partition;
    it->expect_fence = it->fence++;
    return 0;
}

/* The single events after the first write, each flushed on its own. */
typedef struct {
    long total, state, max_state;
    double secs;
} sums_t;

static int events(rm_os_sink_t *s, rm_sink_item_t *it, int created, uint16_t last, sums_t *sum) {
    for (int i = 0; i < EVENTS; i++) {
        if (i % 3 == 0) /* a booking of the first day (cancelled above or not) */
            event(it->st, RM_EV_BOOKING_CANCELLED, i / 3 % PER_DAY, 0, 0);
        else if (i % 3 == 1)
            event(it->st, RM_EV_BOOKING_CREATED, created + i, (uint16_t)(last + 1 + i), 0);
        else
            event(it->st, RM_EV_BOOKING_RESCHEDULED, created / 2 + i, (uint16_t)(last + 1 + i), 12);
        long bytes, state;
        double secs;
        if (flush(s, it, &bytes, &state, &secs) < 0)
            return -1;
        sum->total += bytes;
        sum->state += state;
        sum->max_state = state > sum->max_state ? state : sum->max_state;
        sum->secs += secs;
    }
    return 0;
}

static int run_case(rm_os_sink_t *s, const char *label, const char *name, int created, bool churn) {
    rm_avail_t st;
    rm_profile_t prof = {0};
    if (rm_avail_init(&st) != 0)
        return -1;
    uint16_t last = D0;
    for (int b = 0; b < created; b++) {
        last = (uint16_t)(D0 + b / PER_DAY);
        if (b % PER_DAY == 0) {
            rm_event_t p = {.type = RM_EV_SLOTS_PUBLISHED, .slots = {last, 0, 288}};
            rm_avail_apply(&st, &p);
        }
        event(&st, RM_EV_BOOKING_CREATED, b, last, (uint16_t)(b % PER_DAY * 6));
    }
    for (int b = 0; churn && b < created; b++)
        if (b % 4) /* three of four bookings, spread over every day */
            event(&st, RM_EV_BOOKING_CANCELLED, b, 0, 0);
    char pid[64];
    snprintf(pid, sizeof(pid), "%s-%s", label, name);
    rm_sink_item_t it = {.pid = pid,
                         .pid_len = strlen(pid),
                         .st = &st,
                         .profile = &prof,
                         .partition = 0,
                         .fence = 1,
                         .expect_partition = -1,
                         .expect_fence = -1};
    long first, first_state;
    double secs;
    sums_t sum = {0};
    if (flush(s, &it, &first, &first_state, &secs) < 0 || events(s, &it, created, last, &sum) < 0)
        return -1;
    rm_avail_t back; /* what a worker does on first touch: load the stored state */
    rm_profile_t bprof = {0};
    if (rm_avail_init(&back) != 0)
        return -1;
    rm_sink_item_t ld = {.pid = pid, .pid_len = strlen(pid), .st = &back, .profile = &bprof};
    double t0 = now_s();
    if (rm_os_sink_load(s, &ld, 1) != RM_ERR_OK || ld.fence != it.fence - 1) {
        fprintf(stderr, "load failed: %s\n", rm_os_sink_last_error(s));
        return -1;
    }
    double load_ms = (now_s() - t0) * 1000;
    rm_avail_free(&back);
    rm_profile_free(&bprof);
    printf("layout=%s case=%s live=%u days=%u first_state_B=%ld per_event_B=%ld "
           "state_per_event_B=%ld max_state_event_B=%ld flush_ms=%.3f load_ms=%.2f\n",
           label, name, st.bookings.count, st.ndays, first_state, sum.total / EVENTS,
           sum.state / EVENTS, sum.max_state, sum.secs / EVENTS * 1000, load_ms);
    fflush(stdout);
    rm_avail_free(&st);
    rm_profile_free(&prof);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s LABEL\n", argv[0]);
        return 2;
    }
    srv = os_server_start(0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv ? os_server_port(srv) : 0);
    rm_os_config_t cfg = {.url = url, .timeout_ms = 60000};
    rm_os_sink_t *s = srv ? rm_os_sink_new(&cfg) : NULL;
    if (!s || rm_os_sink_ensure(s, NULL, 0) != RM_ERR_OK) {
        fprintf(stderr, "cannot start the test server or create the indices\n");
        return 1;
    }
    static const struct {
        const char *name;
        int created;
        bool churn;
    } cases[] = {{"live-1k", 1000, false},
                 {"live-10k", 10000, false},
                 {"live-50k", 50000, false},
                 {"live-200k", 200000, false},
                 {"churn-200k-to-50k", 200000, true}};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(cases) / sizeof(cases[0]); i++)
        rc = run_case(s, argv[1], cases[i].name, cases[i].created, cases[i].churn);
    rm_os_sink_free(s);
    os_server_stop(srv);
    return rc ? 1 : 0;
}
