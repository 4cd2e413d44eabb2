/*
 * Write cost and state memory of one practitioner against its live
 * bookings (bench/write_cost.sh builds this against the current tree and
 * against the layout before per-day state, and compares them).
 *
 * For each size: one practitioner with that many live bookings (48
 * six-slot bookings on each published day, day after day), written once,
 * then single events each flushed on its own, as serve flushes a batch
 * that holds one event of that practitioner: a cancellation of a booking
 * on the first (long past) day, a booking on a new day, a reschedule of a
 * booking from the middle of the history. Measured: the bytes the server
 * read per event (INFO stats total_net_input_bytes), the time per flush,
 * the state's memory in Redis (MEMORY USAGE of its key) and in the process
 * (day array and booking table). A churn case creates 200,000 bookings and
 * cancels three quarters of them: memory follows the live bookings.
 *
 * Usage: rm_bench_write_cost REDIS_URL LABEL. Prints one line of key=value
 * per case. Uses only the API that both layouts share.
 */
#include "readmodel/availability.h"
#include "readmodel/redis_sink.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define D0      9823 /* 2026-11-23 */
#define PER_DAY 48
#define EVENTS  30

static redisContext *admin;

static long long info_stat(const char *field) {
    redisReply *r = redisCommand(admin, "INFO stats");
    const char *at = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, field) : NULL;
    long long n = at ? atoll(at + strlen(field) + 1) : -1;
    freeReplyObject(r);
    return n;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void book(rm_avail_t *st, int b, uint16_t day, uint16_t start) {
    char id[32];
    snprintf(id, sizeof(id), "b-%07d", b);
    rm_event_t e = {
        .type = RM_EV_BOOKING_CREATED, .booking_id = {id, strlen(id)}, .slots = {day, start, 6}};
    rm_avail_apply(st, &e);
}

static void cancel(rm_avail_t *st, int b) {
    char id[32];
    snprintf(id, sizeof(id), "b-%07d", b);
    rm_event_t e = {.type = RM_EV_BOOKING_CANCELLED, .booking_id = {id, strlen(id)}};
    rm_avail_apply(st, &e);
}

/* Flushes the item; the server's input bytes and the seconds it took. */
static int flush(rm_redis_sink_t *s, rm_sink_item_t *it, long long *bytes, double *secs) {
    long long before = info_stat("total_net_input_bytes");
    double t0 = now_s();
    if (rm_redis_sink_flush(s, it, 1) != RM_ERR_OK || !it->written) {
        fprintf(stderr, "flush failed: %s\n", rm_redis_sink_last_error(s));
        return -1;
    }
    *secs = now_s() - t0;
    *bytes = info_stat("total_net_input_bytes") - before;
    rm_avail_clear_dirty(it->st);
    it->expect_partition = it->partition;
    it->expect_fence = it->fence++;
    return 0;
}

/* The day array and the booking table. The per-day layout added a 2-byte
 * day column to the table (its struct grew from 16 to 24 bytes); the
 * baseline has none. */
static size_t process_bytes(const rm_avail_t *st) {
    size_t per_entry = sizeof(rm_booking_t) + (sizeof(rm_booking_table_t) > 16 ? 2 : 0);
    return (size_t)st->days_cap * (sizeof(rm_day_t) + sizeof(uint16_t)) +
           (size_t)st->bookings.capacity * per_entry;
}

static int run_case(rm_redis_sink_t *s, const char *label, const char *name, int created,
                    bool churn) {
    rm_avail_t st;
    if (rm_avail_init(&st) != 0)
        return -1;
    uint16_t last = D0;
    for (int b = 0; b < created; b++) {
        last = (uint16_t)(D0 + b / PER_DAY);
        if (b % PER_DAY == 0) {
            rm_event_t p = {.type = RM_EV_SLOTS_PUBLISHED, .slots = {last, 0, 288}};
            rm_avail_apply(&st, &p);
        }
        book(&st, b, last, (uint16_t)(b % PER_DAY * 6));
    }
    for (int b = 0; churn && b < created; b++)
        if (b % 4) /* three of four bookings, spread over every day */
            cancel(&st, b);
    char pid[64];
    snprintf(pid, sizeof(pid), "%s-%s", label, name);
    rm_sink_item_t it = {.pid = pid,
                         .pid_len = strlen(pid),
                         .st = &st,
                         .partition = 0,
                         .fence = 1,
                         .expect_partition = -1,
                         .expect_fence = -1};
    long long first, bytes, total = 0, max = 0;
    double secs, tsum = 0;
    if (flush(s, &it, &first, &secs) < 0)
        return -1;
    char key[128];
    snprintf(key, sizeof(key), "rm:state:{%s}", pid);
    redisReply *r = redisCommand(admin, "MEMORY USAGE %s SAMPLES 0", key); /* exact */
    long long mem = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    for (int i = 0; i < EVENTS; i++) {
        int b = created + i;
        if (i % 3 == 0) /* a booking of the first day (cancelled above or not) */
            cancel(&st, i / 3 % PER_DAY);
        else if (i % 3 == 1)
            book(&st, b, (uint16_t)(last + 1 + i), 0);
        else {
            char id[32];
            snprintf(id, sizeof(id), "b-%07d", created / 2 + i);
            rm_event_t e = {.type = RM_EV_BOOKING_RESCHEDULED,
                            .booking_id = {id, strlen(id)},
                            .slots = {(uint16_t)(last + 1 + i), 12, 6}};
            rm_avail_apply(&st, &e);
        }
        if (flush(s, &it, &bytes, &secs) < 0)
            return -1;
        total += bytes;
        max = bytes > max ? bytes : max;
        tsum += secs;
    }
    rm_avail_t back; /* what a worker does on first touch: load the stored state */
    if (rm_avail_init(&back) != 0)
        return -1;
    rm_sink_item_t ld = {.pid = pid, .pid_len = strlen(pid), .st = &back};
    double t0 = now_s();
    if (rm_redis_sink_load(s, &ld, 1) != RM_ERR_OK || ld.fence != it.fence - 1) {
        fprintf(stderr, "load failed: %s\n", rm_redis_sink_last_error(s));
        return -1;
    }
    double load_ms = (now_s() - t0) * 1000;
    rm_avail_free(&back);
    printf("layout=%s case=%s live=%u days=%u first_write_B=%lld redis_state_B=%lld "
           "process_state_B=%zu per_event_B=%lld max_event_B=%lld flush_ms=%.3f load_ms=%.2f\n",
           label, name, st.bookings.count, st.ndays, first, mem, process_bytes(&st), total / EVENTS,
           max, tsum / EVENTS * 1000, load_ms);
    fflush(stdout);
    rm_avail_free(&st);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s REDIS_URL LABEL\n", argv[0]);
        return 2;
    }
    rm_redis_url_t url;
    char err[256];
    if (rm_redis_url_parse(argv[1], &url, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    admin = url.socket_path ? redisConnectUnix(url.socket_path) : redisConnect(url.host, url.port);
    rm_redis_sink_t *s = rm_redis_sink_new(&url, "rm:");
    rm_redis_url_free(&url);
    if (!admin || admin->err || !s) {
        fprintf(stderr, "cannot connect to %s\n", argv[1]);
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
        rc = run_case(s, argv[2], cases[i].name, cases[i].created, cases[i].churn);
    rm_redis_sink_free(s);
    redisFree(admin);
    return rc ? 1 : 0;
}
