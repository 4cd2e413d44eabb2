/*
 * Redis sink against a real redis-server: keys and values as events.md
 * defines them, fences that refuse stale writes, compare-and-set
 * checkpoints, and reconnection after the server restarts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "readmodel/redis_cluster.h"
#include "readmodel/redis_sink.h"
#include "test_redis.h"
#include "avail_check.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define D0 9823 /* 2026-11-23 */

static rm_test_redis_t srv;

static int setup(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* as main() does: a dead socket is an error, not a signal */
    return rm_test_redis_start(&srv);
}

static int teardown(void **state) {
    (void)state;
    rm_test_redis_destroy(&srv);
    return 0;
}

static rm_redis_sink_t *new_sink(void) {
    rm_redis_url_t u;
    char err[128];
    assert_int_equal(rm_redis_url_parse(srv.url, &u, err, sizeof(err)), 0);
    rm_redis_sink_t *s = rm_redis_sink_new(&u, "rm:");
    rm_redis_url_free(&u);
    assert_non_null(s);
    return s;
}

/* Whether p-1's key of 2026-11-24 exists (1) or not (0). */
static long long day_key_exists(redisContext *c) {
    redisReply *r = redisCommand(c, "EXISTS rm:avail:{p-1}:2026-11-24");
    assert_non_null(r);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static void assert_stored_fence(redisContext *c, const char *want) {
    redisReply *r = redisCommand(c, "HGET rm:state:{p-1} f");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, want);
    freeReplyObject(r);
}

static void apply(rm_avail_t *st, rm_event_type_t t, uint16_t day, uint16_t start, uint16_t n) {
    rm_event_t e;
    memset(&e, 0, sizeof(e));
    e.type = t;
    e.slots = (rm_slots_t){day, start, n};
    e.booking_id = (rm_span_t){"b1", 2};
    rm_avail_apply(st, &e);
}

static void test_flush_writes_keys_and_state(void **state) {
    (void)state;
    rm_redis_sink_t *s = new_sink();
    rm_avail_t st;
    rm_avail_init(&st);
    apply(&st, RM_EV_SLOTS_PUBLISHED, D0, 0, 2);
    apply(&st, RM_EV_SLOTS_PUBLISHED, D0 + 1, 10, 1);
    rm_sink_item_t it = {.pid = "p-1",
                         .pid_len = 3,
                         .st = &st,
                         .partition = 0,
                         .fence = 41,
                         .expect_partition = -1,
                         .expect_fence = -1};
    assert_int_equal(rm_redis_sink_flush(s, &it, 1), RM_ERR_OK);
    assert_true(it.written);

    redisContext *c = rm_test_redis_connect(&srv);
    redisReply *r = redisCommand(c, "GET rm:avail:{p-1}:2026-11-23");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, 36);
    assert_int_equal((unsigned char)r->str[0], 0xC0);
    freeReplyObject(r);
    r = redisCommand(c, "GETBIT rm:avail:{p-1}:2026-11-24 10");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    r = redisCommand(c, "BITCOUNT rm:avail:{p-1}:2026-11-24");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);

    /* Booking the last free slot deletes the key. */
    rm_avail_clear_dirty(&st);
    apply(&st, RM_EV_BOOKING_CREATED, D0 + 1, 10, 1);
    it.expect_partition = 0;
    it.expect_fence = 41;
    it.fence = 42;
    assert_int_equal(rm_redis_sink_flush(s, &it, 1), RM_ERR_OK);
    assert_true(it.written);
    assert_int_equal(day_key_exists(c), 0);

    /* A writer whose idea of the stored fence is out of date (a replay,
     * another writer, a Redis that lost data) is refused and changes nothing. */
    rm_avail_t old;
    rm_avail_init(&old);
    apply(&old, RM_EV_SLOTS_PUBLISHED, D0 + 1, 10, 1);
    rm_sink_item_t stale = {.pid = "p-1",
                            .pid_len = 3,
                            .st = &old,
                            .partition = 0,
                            .fence = 43,
                            .expect_partition = 0,
                            .expect_fence = 41,
                            .written = true};
    assert_int_equal(rm_redis_sink_flush(s, &stale, 1), RM_ERR_OK);
    assert_false(stale.written);
    assert_int_equal(day_key_exists(c), 0);
    stale.expect_fence = -1; /* "nothing stored" is just as wrong */
    assert_int_equal(rm_redis_sink_flush(s, &stale, 1), RM_ERR_OK);
    assert_false(stale.written);
    /* A rebuild's forced write replaces whatever is stored. */
    stale.force = true;
    assert_int_equal(rm_redis_sink_flush(s, &stale, 1), RM_ERR_OK);
    assert_true(stale.written);
    assert_int_equal(day_key_exists(c), 1);
    assert_stored_fence(c, "43");
    /* Forced too: a day left without a free slot is deleted, with the fence. */
    rm_avail_clear_dirty(&old);
    apply(&old, RM_EV_BOOKING_CREATED, D0 + 1, 10, 1);
    stale.fence = 45;
    assert_int_equal(rm_redis_sink_flush(s, &stale, 1), RM_ERR_OK);
    assert_true(stale.written);
    assert_int_equal(day_key_exists(c), 0);
    assert_stored_fence(c, "45");
    it.expect_fence = 45; /* back to the state of `st` for the load below: */
    it.fence = 44;        /* its keys and its whole state, not just its dirty days */
    rm_avail_mark_all_dirty(&st);
    rm_avail_mark_rewrite(&st);
    assert_int_equal(rm_redis_sink_flush(s, &it, 1), RM_ERR_OK);
    assert_true(it.written);

    /* The stored state loads back with its fence. */
    rm_avail_t back;
    rm_avail_init(&back);
    rm_sink_item_t ld[2] = {{.pid = "p-1", .pid_len = 3, .st = &back},
                            {.pid = "nobody", .pid_len = 6, .st = &old}};
    assert_int_equal(rm_redis_sink_load(s, ld, 2), RM_ERR_OK);
    assert_int_equal(ld[0].fence, 44);
    assert_int_equal(ld[0].partition, 0);
    assert_int_equal(ld[1].fence, -1);
    uint8_t a[36], b[36];
    assert_int_equal(rm_avail_day(&back, D0, a), rm_avail_day(&st, D0, b));
    assert_memory_equal(a, b, 36);
    assert_int_equal(rm_avail_day(&back, D0 + 1, a), 0);

    /* A corrupt stored state is reported, not trusted. */
    freeReplyObject(redisCommand(c, "HSET rm:state:{bad} p 0 f 1 s garbage"));
    rm_avail_t bad;
    rm_avail_init(&bad);
    rm_sink_item_t lb = {.pid = "bad", .pid_len = 3, .st = &bad};
    assert_int_equal(rm_redis_sink_load(s, &lb, 1), RM_ERR_CORRUPT);

    /* A forced write replaces the state key whole, whatever it held (here
     * not even a hash), in one transaction. */
    freeReplyObject(redisCommand(c, "SET rm:state:{bad} not-a-hash"));
    rm_sink_item_t forced = {.pid = "bad", .pid_len = 3, .st = &st, .fence = 1, .force = true};
    rm_avail_mark_all_dirty(&st);
    assert_int_equal(rm_redis_sink_flush(s, &forced, 1), RM_ERR_OK);
    assert_true(forced.written);
    rm_avail_t bad2;
    rm_avail_init(&bad2);
    lb.st = &bad2;
    assert_int_equal(rm_redis_sink_load(s, &lb, 1), RM_ERR_OK);
    assert_int_equal(lb.fence, 1);
    assert_int_equal(rm_avail_day(&bad2, D0, a), rm_avail_day(&st, D0, b));
    assert_memory_equal(a, b, 36);
    rm_avail_free(&bad2);
    redisFree(c);
    rm_avail_free(&st);
    rm_avail_free(&old);
    rm_avail_free(&back);
    rm_avail_free(&bad);
    rm_redis_sink_free(s);
}

/* Key formats; a buffer too small is an error (-1), never a length the
 * caller could pass on: the key would be read past its buffer. */
static void test_key_formats(void **state) {
    (void)state;
    char k[64];
    assert_int_equal(rm_redis_key_avail(k, sizeof(k), "rm:", "p-1", 3, D0), 25);
    assert_string_equal(k, "rm:avail:{p-1}:2026-11-23");
    assert_int_equal(rm_redis_key_avail(k, sizeof(k), "", "p-1x", 3, D0), 22);
    assert_string_equal(k, "avail:{p-1}:2026-11-23");
    assert_int_equal(rm_redis_key_avail(k, 10, "rm:", "p-1", 3, D0), -1);
    assert_int_equal(rm_redis_key_avail(k, 25, "rm:", "p-1", 3, D0), -1);
    assert_int_equal(rm_redis_key_avail(k, 26, "rm:", "p-1", 3, D0), 25);
    assert_int_equal(rm_redis_key_state(k, sizeof(k), "rm:", "p-1", 3), 14);
    assert_string_equal(k, "rm:state:{p-1}");
    assert_int_equal(rm_redis_key_state(k, 14, "rm:", "p-1", 3), -1);
    assert_int_equal(rm_redis_key_checkpoint(k, sizeof(k), "rm:", "t", 3), 17);
    assert_string_equal(k, "rm:checkpoint:t:3");
    assert_int_equal(rm_redis_key_checkpoint(k, 17, "rm:", "t", 3), -1);
}

/* How many keys the server holds under prefix (SCAN, so it works with any
 * prefix length). */
static long long count_keys(redisContext *c, const char *prefix) {
    long long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s* COUNT 1000", cursor, prefix);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        n += (long long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

/* A prefix of 200 bytes: every key that no longer fits its buffer is
 * refused with RM_ERR_INVAL and a clear error, nothing reaches the server,
 * and the sink keeps working for keys that fit. */
static void test_long_prefix_is_refused(void **state) {
    (void)state;
    char prefix[201], pid[81], topic[401], longkey[401];
    memset(prefix, 'x', 200);
    prefix[200] = '\0';
    memset(pid, 'p', 80);
    pid[80] = '\0';
    memset(topic, 't', 400);
    topic[400] = '\0';
    memset(longkey, 'k', 400);
    longkey[400] = '\0';
    rm_redis_url_t u;
    char err[128];
    assert_int_equal(rm_redis_url_parse(srv.url, &u, err, sizeof(err)), 0);
    rm_redis_sink_t *s = rm_redis_sink_new(&u, prefix);
    rm_redis_url_free(&u);
    assert_non_null(s);

    rm_avail_t st;
    rm_avail_init(&st);
    apply(&st, RM_EV_SLOTS_PUBLISHED, D0, 0, 2);
    rm_sink_item_t it = {.pid = pid,
                         .pid_len = 80,
                         .st = &st,
                         .partition = 0,
                         .fence = 1,
                         .expect_partition = -1,
                         .expect_fence = -1};
    assert_int_equal(rm_redis_sink_flush(s, &it, 1), RM_ERR_INVAL);
    assert_false(it.written);
    assert_non_null(strstr(rm_redis_sink_last_error(s), "too long"));
    it.force = true;
    assert_int_equal(rm_redis_sink_flush(s, &it, 1), RM_ERR_INVAL);
    assert_false(it.written);
    it.force = false;

    rm_avail_t back;
    rm_avail_init(&back);
    rm_sink_item_t ld[2] = {{.pid = "p-1", .pid_len = 3, .st = &back},
                            {.pid = pid, .pid_len = 80, .st = &back}};
    assert_int_equal(rm_redis_sink_load(s, ld, 2), RM_ERR_INVAL);
    assert_non_null(strstr(rm_redis_sink_last_error(s), "too long"));

    int64_t next = 0, cur = 0;
    bool ok = true;
    assert_int_equal(rm_redis_sink_checkpoint_get(s, topic, 0, &next), RM_ERR_INVAL);
    assert_int_equal(rm_redis_sink_checkpoint_cas(s, topic, 0, -1, 5, &ok, &cur), RM_ERR_INVAL);
    assert_int_equal(rm_redis_checkpoint_set(s, topic, 0, 5), RM_ERR_INVAL);
    assert_non_null(strstr(rm_redis_sink_last_error(s), "too long"));

    char *keys[2] = {"short", longkey}, *vals[2];
    size_t lens[2];
    assert_int_equal(rm_redis_get_many(s, keys, 2, vals, lens), RM_ERR_INVAL);
    assert_null(vals[0]);
    assert_null(vals[1]);
    assert_int_equal(rm_redis_del_many(s, keys, 2), RM_ERR_INVAL);
    char *pids[1] = {longkey};
    int32_t parts[1];
    int64_t fences[1];
    assert_int_equal(rm_redis_fences(s, pids, 1, parts, fences), RM_ERR_INVAL);
    assert_non_null(strstr(rm_redis_sink_last_error(s), "too long"));

    redisContext *c = rm_test_redis_connect(&srv);
    assert_int_equal(count_keys(c, prefix), 0);

    /* Keys that fit still work on the same sink. */
    it.pid = "p-1";
    it.pid_len = 3;
    assert_int_equal(rm_redis_sink_flush(s, &it, 1), RM_ERR_OK);
    assert_true(it.written);
    assert_int_equal(rm_redis_sink_checkpoint_cas(s, "t", 0, -1, 5, &ok, &cur), RM_ERR_OK);
    assert_true(ok);
    assert_int_equal(count_keys(c, prefix), 3); /* day key, state, checkpoint */
    redisFree(c);
    rm_avail_free(&st);
    rm_avail_free(&back);
    rm_redis_sink_free(s);
}

static void test_checkpoint_cas(void **state) {
    (void)state;
    rm_redis_sink_t *s = new_sink();
    int64_t next, cur;
    bool ok;
    assert_int_equal(rm_redis_sink_checkpoint_get(s, "t", 3, &next), RM_ERR_OK);
    assert_int_equal(next, -1);
    assert_int_equal(rm_redis_sink_checkpoint_cas(s, "t", 3, -1, 100, &ok, &cur), RM_ERR_OK);
    assert_true(ok);
    assert_int_equal(rm_redis_sink_checkpoint_cas(s, "t", 3, -1, 200, &ok, &cur), RM_ERR_OK);
    assert_false(ok);
    assert_int_equal(cur, 100);
    assert_int_equal(rm_redis_sink_checkpoint_cas(s, "t", 3, 100, 200, &ok, &cur), RM_ERR_OK);
    assert_true(ok);
    assert_int_equal(rm_redis_sink_checkpoint_get(s, "t", 3, &next), RM_ERR_OK);
    assert_int_equal(next, 200);
    rm_redis_sink_free(s);
}

static void script_flush(void) {
    redisContext *c = rm_test_redis_connect(&srv);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "SCRIPT FLUSH");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
}

/* After a SCRIPT FLUSH every EVALSHA gets NOSCRIPT: the sink reloads the
 * script and sends the call again, once, on the same call of the API. */
static void test_scripts_reloaded_after_script_flush(void **state) {
    (void)state;
    rm_redis_sink_t *s = new_sink();
    int64_t cur = 0;
    bool ok = false;
    assert_int_equal(rm_redis_sink_checkpoint_cas(s, "ns", 1, -1, 10, &ok, &cur), RM_ERR_OK);
    assert_true(ok);
    script_flush();
    assert_int_equal(rm_redis_sink_checkpoint_cas(s, "ns", 1, 10, 11, &ok, &cur), RM_ERR_OK);
    assert_true(ok);
    script_flush();
    assert_int_equal(rm_redis_sink_checkpoint_cas(s, "ns", 1, 10, 12, &ok, &cur), RM_ERR_OK);
    assert_false(ok); /* the reloaded script still compares */
    assert_int_equal(cur, 11);

    /* The flush script: a pipeline of several practitioners, all sent again. */
    rm_avail_t st;
    rm_avail_init(&st);
    apply(&st, RM_EV_SLOTS_PUBLISHED, D0, 0, 2);
    rm_sink_item_t it[3];
    const char *pids[3] = {"ns-1", "ns-2", "ns-3"};
    for (int i = 0; i < 3; i++)
        it[i] = (rm_sink_item_t){.pid = pids[i],
                                 .pid_len = 4,
                                 .st = &st,
                                 .partition = 1,
                                 .fence = 5,
                                 .expect_partition = -1,
                                 .expect_fence = -1};
    script_flush();
    assert_int_equal(rm_redis_sink_flush(s, it, 3), RM_ERR_OK);
    for (int i = 0; i < 3; i++)
        assert_true(it[i].written);
    for (int i = 0; i < 3; i++) {
        it[i].expect_partition = 1;
        it[i].expect_fence = 5;
        it[i].fence = 6;
    }
    script_flush();
    assert_int_equal(rm_redis_sink_flush(s, it, 3), RM_ERR_OK);
    for (int i = 0; i < 3; i++)
        assert_true(it[i].written);
    it[0].fence = 7; /* a stale expectation after the reload is still refused */
    script_flush();
    assert_int_equal(rm_redis_sink_flush(s, it, 1), RM_ERR_OK);
    assert_false(it[0].written);
    rm_avail_free(&st);
    rm_redis_sink_free(s);
}

/* A fake Redis on a Unix socket for replies a real server never sends: it
 * answers SCRIPT with a sha, every other command with the next of `replies`
 * (RESP), and closes the connection when they run out. */
typedef struct {
    char dir[32], path[64];
    int lfd;
    const char *const *replies;
    pthread_t th;
} fake_t;

/* Reads one RESP command; its name (first argument) into name. */
static int fake_read(FILE *in, char *name, size_t cap) {
    char line[64];
    if (!fgets(line, sizeof(line), in) || line[0] != '*')
        return -1;
    int n = atoi(line + 1);
    for (int i = 0; i < n; i++) {
        if (!fgets(line, sizeof(line), in) || line[0] != '$')
            return -1;
        size_t len = (size_t)atol(line + 1);
        char *buf = malloc(len + 2);
        if (!buf || fread(buf, 1, len + 2, in) != len + 2) {
            free(buf);
            return -1;
        }
        if (i == 0)
            snprintf(name, cap, "%.*s", (int)len, buf);
        free(buf);
    }
    return 0;
}

static void *fake_main(void *arg) {
    fake_t *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    FILE *in = fdopen(fd, "r");
    char name[32];
    for (size_t next = 0; in && fake_read(in, name, sizeof(name)) == 0;) {
        const char *rep = "$40\r\n0123456789012345678901234567890123456789\r\n";
        if (strcmp(name, "CLUSTER") == 0) /* the mode probe: one server */
            rep = "-ERR This instance has cluster support disabled\r\n";
        else if (strcmp(name, "SCRIPT") != 0 && !(rep = f->replies[next++]))
            break;
        if (write(fd, rep, strlen(rep)) != (ssize_t)strlen(rep))
            break;
    }
    if (in)
        fclose(in);
    else
        close(fd);
    return NULL;
}

/* Starts the fake server and returns a sink (prefix "rm:") connected to it. */
static rm_redis_sink_t *fake_start(fake_t *f, const char *const *replies) {
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/rm-fake-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/redis.sock", f->dir);
    f->replies = replies;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", f->path);
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 1), 0);
    assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
    rm_redis_url_t u = {.socket_path = f->path};
    rm_redis_sink_t *s = rm_redis_sink_new(&u, "rm:");
    assert_non_null(s);
    return s;
}

static void fake_stop(fake_t *f, rm_redis_sink_t *s) {
    rm_redis_sink_free(s); /* closes the connection: the server's thread ends */
    pthread_join(f->th, NULL);
    close(f->lfd);
    unlink(f->path);
    rmdir(f->dir);
}

static void count_key(const char *key, size_t len, void *arg) {
    (void)key;
    (void)len;
    (*(int *)arg)++;
}

/* Replies of a type the command never returns are RM_ERR_REPLY with the
 * command named in the error, never a crash or a made-up value. */
static void test_unexpected_reply_types(void **state) {
    (void)state;
    static const char *const scan_cursor_int[] = {"*2\r\n:0\r\n*0\r\n", NULL};
    static const char *const scan_keys_not_array[] = {"*2\r\n$1\r\n0\r\n$2\r\nxx\r\n", NULL};
    static const char *const scan_key_int[] = {"*2\r\n$1\r\n0\r\n*1\r\n:5\r\n", NULL};
    static const char *const hgetall_int[] = {"*2\r\n:1\r\n$1\r\nx\r\n", NULL};
    static const char *const hgetall_status[] = {"+OK\r\n", NULL};
    static const char *const hmget_array[] = {"*2\r\n*0\r\n$1\r\n5\r\n", NULL};
    static const char *const hmget_int[] = {":3\r\n", NULL};
    const char *const *scans[] = {scan_cursor_int, scan_keys_not_array, scan_key_int};
    fake_t f;
    for (int i = 0; i < 3; i++) {
        rm_redis_sink_t *s = fake_start(&f, scans[i]);
        int n = 0;
        assert_int_equal(rm_redis_scan(s, "avail:*", count_key, &n), RM_ERR_REPLY);
        assert_non_null(strstr(rm_redis_sink_last_error(s), "SCAN"));
        assert_int_equal(n, 0);
        fake_stop(&f, s);
    }
    const char *const *hgetalls[] = {hgetall_int, hgetall_status};
    for (int i = 0; i < 2; i++) {
        rm_redis_sink_t *s = fake_start(&f, hgetalls[i]);
        char out[128];
        assert_int_equal(rm_redis_record_get(s, "rebuild:last:redis", out, sizeof(out)),
                         RM_ERR_REPLY);
        assert_non_null(strstr(rm_redis_sink_last_error(s), "HGETALL"));
        fake_stop(&f, s);
    }
    const char *const *hmgets[] = {hmget_array, hmget_int};
    for (int i = 0; i < 2; i++) {
        rm_redis_sink_t *s = fake_start(&f, hmgets[i]);
        char *pids[1] = {"p-1"};
        int32_t part = 7;
        int64_t fence = 7;
        assert_int_equal(rm_redis_fences(s, pids, 1, &part, &fence), RM_ERR_REPLY);
        assert_non_null(strstr(rm_redis_sink_last_error(s), "HMGET"));
        assert_int_equal(fence, -1);
        fake_stop(&f, s);
    }
}

/* Stored numbers that do not parse (a fence, a checkpoint) are reported as
 * corrupt, as rm_redis_sink_load and rm_redis_sink_checkpoint_get do. */
static void test_stored_numbers_checked(void **state) {
    (void)state;
    rm_redis_sink_t *s = new_sink();
    redisContext *c = rm_test_redis_connect(&srv);
    freeReplyObject(redisCommand(c, "HSET rm:state:{num-1} p 2 f 17"));
    freeReplyObject(redisCommand(c, "HSET rm:state:{num-2} p abc f 5"));
    freeReplyObject(redisCommand(c, "HSET rm:state:{num-3} p 1 f 5x"));
    char *ok_pid[1] = {"num-1"}, *bad_p[1] = {"num-2"}, *bad_f[1] = {"num-3"};
    int32_t part = 0;
    int64_t fence = 0;
    assert_int_equal(rm_redis_fences(s, ok_pid, 1, &part, &fence), RM_ERR_OK);
    assert_int_equal(part, 2);
    assert_int_equal(fence, 17);
    assert_int_equal(rm_redis_fences(s, bad_p, 1, &part, &fence), RM_ERR_CORRUPT);
    assert_non_null(strstr(rm_redis_sink_last_error(s), "num-2"));
    assert_int_equal(rm_redis_fences(s, bad_f, 1, &part, &fence), RM_ERR_CORRUPT);
    assert_non_null(strstr(rm_redis_sink_last_error(s), "num-3"));

    freeReplyObject(redisCommand(c, "SET rm:checkpoint:bad:0 garbage"));
    bool ok = true;
    int64_t cur = 0;
    assert_int_equal(rm_redis_sink_checkpoint_cas(s, "bad", 0, 5, 6, &ok, &cur), RM_ERR_CORRUPT);
    assert_false(ok);
    assert_non_null(strstr(rm_redis_sink_last_error(s), "not an offset"));
    redisFree(c);
    rm_redis_sink_free(s);
}

/* strdup, interposed for this executable (the sink is linked in
 * statically): the call fail_strdup_at calls from now fails (-1: none). */
static _Thread_local int fail_strdup_at = -1;

char *strdup(const char *str) {
    if (fail_strdup_at >= 0 && fail_strdup_at-- == 0)
        return NULL;
    size_t n = strlen(str) + 1;
    char *p = malloc(n);
    return p ? memcpy(p, str, n) : NULL;
}

/* Out of memory while copying the URL's user, password or host, or the
 * prefix: no sink (it would connect without authentication). */
static void test_new_fails_when_a_copy_fails(void **state) {
    (void)state;
    rm_redis_url_t u = {.host = "127.0.0.1", .port = 1, .user = "u", .password = "pw"};
    int copies = 0;
    for (;; copies++) {
        fail_strdup_at = copies;
        rm_redis_sink_t *s = rm_redis_sink_new(&u, "rm:");
        bool failed = fail_strdup_at < 0; /* the counter ran out: a copy failed */
        fail_strdup_at = -1;
        if (!failed) {
            assert_non_null(s);
            rm_redis_sink_free(s);
            break;
        }
        assert_null(s);
    }
    assert_int_equal(copies, 4); /* host, user, password, prefix */
}

/* A server that refuses the configuration (no password where one is
 * required, a wrong one, an unknown database) is RM_ERR_CONFIG, named as
 * such, never with the password in the message: the worker stops retrying
 * under --until-caught-up and /readyz names the cause. */
static void test_refused_configuration(void **state) {
    (void)state;
    redisContext *c = rm_test_redis_connect(&srv);
    freeReplyObject(redisCommand(c, "CONFIG SET requirepass s3cr3t-pw"));
    rm_redis_url_t u = {.socket_path = srv.sock};
    rm_redis_sink_t *none = rm_redis_sink_new(&u, "rm:");
    assert_int_equal(rm_redis_sink_ping(none), RM_ERR_CONFIG);
    assert_non_null(strstr(rm_redis_sink_last_error(none), "NOAUTH"));
    rm_redis_sink_free(none);
    u.password = "not-the-password";
    rm_redis_sink_t *wrong = rm_redis_sink_new(&u, "rm:");
    assert_int_equal(rm_redis_sink_ping(wrong), RM_ERR_CONFIG);
    assert_null(strstr(rm_redis_sink_last_error(wrong), "not-the-password"));
    rm_redis_sink_free(wrong);
    u.password = "s3cr3t-pw";
    u.db = 9999;
    rm_redis_sink_t *db = rm_redis_sink_new(&u, "rm:");
    assert_int_equal(rm_redis_sink_ping(db), RM_ERR_CONFIG);
    assert_non_null(strstr(rm_redis_sink_last_error(db), "SELECT"));
    rm_redis_sink_free(db);
    u.db = 0;
    rm_redis_sink_t *ok = rm_redis_sink_new(&u, "rm:");
    assert_int_equal(rm_redis_sink_ping(ok), RM_ERR_OK);
    rm_redis_sink_free(ok);
    freeReplyObject(redisCommand(c, "AUTH s3cr3t-pw"));
    freeReplyObject(redisCommand(c, "CONFIG SET requirepass %s", ""));
    redisFree(c);
}

static void test_reconnects_after_restart(void **state) {
    (void)state;
    rm_redis_sink_t *s = new_sink();
    int64_t next;
    assert_int_equal(rm_redis_sink_checkpoint_get(s, "t", 0, &next), RM_ERR_OK);
    rm_test_redis_stop(&srv, 1);
    assert_int_equal(rm_redis_sink_checkpoint_get(s, "t", 0, &next), RM_ERR_IO);
    assert_int_equal(rm_redis_sink_checkpoint_get(s, "t", 0, &next), RM_ERR_IO);
    assert_true(strlen(rm_redis_sink_last_error(s)) > 0);
    assert_int_equal(rm_test_redis_restart(&srv), 0);
    assert_int_equal(rm_redis_sink_checkpoint_get(s, "t", 0, &next), RM_ERR_OK);
    assert_int_equal(next, -1); /* persistence is off: the restarted server is empty */
    rm_redis_sink_free(s);
    rm_redis_sink_free(NULL);
}

/* Bytes the server has read from all its clients (INFO stats), less the
 * INFO request that asks. */
static long long net_input(redisContext *c) {
    redisReply *r = redisCommand(c, "INFO stats");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    const char *at = strstr(r->str, "total_net_input_bytes:");
    assert_non_null(at);
    long long n = atoll(at + strlen("total_net_input_bytes:"));
    freeReplyObject(r);
    return n;
}

#define BIG_BOOKINGS 200000
#define PER_DAY      48 /* 6-slot bookings filling each published day */

/* Flushes the one-practitioner item and clears its dirty days; returns the
 * bytes the server read for it. */
static long long flush_measured(rm_redis_sink_t *s, redisContext *c, rm_sink_item_t *it) {
    long long before = net_input(c);
    assert_int_equal(rm_redis_sink_flush(s, it, 1), RM_ERR_OK);
    assert_true(it->written);
    long long bytes = net_input(c) - before;
    rm_avail_clear_dirty(it->st);
    it->expect_partition = it->partition;
    it->expect_fence = it->fence++;
    return bytes;
}

/* The write cost of an event is bounded by what it changed, not by the
 * history: after 200,000 bookings on one practitioner, a cancellation of a
 * booking on its first (long past) day, a booking on a new day and a
 * reschedule each cost the server a few KB of input (the old layout, the
 * whole state in one field, cost about 3 MB each). What is stored still
 * loads back to the same state. */
static void test_write_cost_bounded_by_change(void **state) {
    (void)state;
    rm_redis_sink_t *s = new_sink();
    redisContext *c = rm_test_redis_connect(&srv);
    rm_avail_t st;
    rm_avail_init(&st);
    char id[32];
    uint16_t last = D0;
    for (int b = 0; b < BIG_BOOKINGS; b++) {
        last = (uint16_t)(D0 + b / PER_DAY);
        if (b % PER_DAY == 0)
            apply(&st, RM_EV_SLOTS_PUBLISHED, last, 0, 288);
        snprintf(id, sizeof(id), "b-%06d", b);
        rm_event_t e = {.type = RM_EV_BOOKING_CREATED,
                        .booking_id = {id, strlen(id)},
                        .slots = {last, (uint16_t)(b % PER_DAY * 6), 6}};
        rm_avail_apply(&st, &e);
    }
    rm_sink_item_t it = {.pid = "big",
                         .pid_len = 3,
                         .st = &st,
                         .partition = 0,
                         .fence = 1,
                         .expect_partition = -1,
                         .expect_fence = -1};
    long long first = flush_measured(s, c, &it);
    redisReply *r = redisCommand(c, "MEMORY USAGE rm:state:{big} SAMPLES 0");
    long long mem = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    rm_event_t cancel = {.type = RM_EV_BOOKING_CANCELLED, .booking_id = {"b-000003", 8}};
    rm_avail_apply(&st, &cancel);
    long long one = flush_measured(s, c, &it);
    snprintf(id, sizeof(id), "new-1");
    rm_event_t book = {.type = RM_EV_BOOKING_CREATED,
                       .booking_id = {id, strlen(id)},
                       .slots = {(uint16_t)(last + 1), 0, 2}};
    rm_avail_apply(&st, &book);
    long long two = flush_measured(s, c, &it);
    rm_event_t move = {.type = RM_EV_BOOKING_RESCHEDULED,
                       .booking_id = {"b-100000", 8},
                       .slots = {(uint16_t)(last + 2), 4, 2}};
    rm_avail_apply(&st, &move);
    long long three = flush_measured(s, c, &it);
    print_message("state of %d bookings: first write %lld B, stored %lld B; one event after it: "
                  "%lld, %lld, %lld B\n",
                  BIG_BOOKINGS, first, mem, one, two, three);
    assert_true(first > 2000000); /* the measurement sees a large write */
    assert_true(one < 4096);
    assert_true(two < 4096);
    assert_true(three < 4096);

    rm_avail_t back;
    rm_avail_init(&back);
    rm_sink_item_t ld = {.pid = "big", .pid_len = 3, .st = &back};
    assert_int_equal(rm_redis_sink_load(s, &ld, 1), RM_ERR_OK);
    assert_int_equal(ld.fence, it.fence - 1);
    assert_same_state(&st, &back);
    rm_avail_free(&back);
    rm_avail_free(&st);
    redisFree(c);
    rm_redis_sink_free(s);
}

/* State stored by an earlier release (one field s with the whole state)
 * loads, and the next write replaces it whole with the per-day form. */
static void test_old_state_format_migrates(void **state) {
    (void)state;
    rm_redis_sink_t *s = new_sink();
    redisContext *c = rm_test_redis_connect(&srv);
    rm_avail_t st;
    rm_avail_init(&st);
    apply(&st, RM_EV_SLOTS_PUBLISHED, D0, 0, 20);
    apply(&st, RM_EV_BOOKING_CREATED, D0, 2, 3);
    apply(&st, RM_EV_SLOTS_PUBLISHED, D0 + 3, 5, 5);
    char *blob;
    size_t len;
    assert_int_equal(rm_avail_encode(&st, &blob, &len), 0);
    freeReplyObject(redisCommand(c, "HSET rm:state:{old} p 1 f 10 s %b", blob, len));
    free(blob);

    rm_avail_t back;
    rm_avail_init(&back);
    rm_sink_item_t it = {.pid = "old", .pid_len = 3, .st = &back};
    assert_int_equal(rm_redis_sink_load(s, &it, 1), RM_ERR_OK);
    assert_int_equal(it.partition, 1);
    assert_int_equal(it.fence, 10);
    assert_same_state(&st, &back);
    assert_true(back.rewrite);
    apply(&back, RM_EV_SLOTS_PUBLISHED, D0 + 1, 0, 1);
    it.expect_partition = 1;
    it.expect_fence = 10;
    it.fence = 11;
    assert_int_equal(rm_redis_sink_flush(s, &it, 1), RM_ERR_OK);
    assert_true(it.written);
    redisReply *r = redisCommand(c, "HEXISTS rm:state:{old} s");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    r = redisCommand(c, "HLEN rm:state:{old}");
    assert_int_equal(r->integer, 3 + 3); /* p f h, three days */
    freeReplyObject(r);

    rm_avail_t again;
    rm_avail_init(&again);
    it.st = &again;
    assert_int_equal(rm_redis_sink_load(s, &it, 1), RM_ERR_OK);
    assert_int_equal(it.fence, 11);
    assert_false(again.rewrite);
    assert_same_state(&back, &again);
    /* A field this program never writes is not trusted. */
    freeReplyObject(redisCommand(c, "HSET rm:state:{old} x 1"));
    rm_avail_t bad;
    rm_avail_init(&bad);
    it.st = &bad;
    assert_int_equal(rm_redis_sink_load(s, &it, 1), RM_ERR_CORRUPT);
    assert_true(it.corrupt);
    rm_avail_free(&bad);
    rm_avail_free(&again);
    rm_avail_free(&back);
    rm_avail_free(&st);
    redisFree(c);
    rm_redis_sink_free(s);
}

/* The client (redis_cluster.c) on one server: a MULTI ... EXEC unit of
 * more replies than an entry keeps inline, between single commands, each
 * reply back in the order appended. */
static void test_client_unit_of_many_replies(void **state) {
    (void)state;
    rm_redis_url_t u;
    char err[128];
    assert_int_equal(rm_redis_url_parse(srv.url, &u, err, sizeof(err)), 0);
    rm_rclient_t *cl = rm_rclient_new(&u);
    assert_non_null(cl);
    assert_int_equal(rm_rclient_connect(cl, NULL), RM_ERR_OK);
    assert_false(rm_rclient_is_cluster(cl));
    assert_int_equal(rm_rclient_masters(cl), 1);
    char unit[1024];
    int o = snprintf(unit, sizeof(unit), "*1\r\n$5\r\nMULTI\r\n");
    for (int i = 0; i < 10; i++)
        o += snprintf(unit + o, sizeof(unit) - (size_t)o,
                      "*3\r\n$3\r\nSET\r\n$9\r\nu:{t}:k%02d\r\n$1\r\n%d\r\n", i, i % 10);
    o += snprintf(unit + o, sizeof(unit) - (size_t)o, "*1\r\n$4\r\nEXEC\r\n");
    const char *ping[] = {"PING"};
    size_t plen[] = {4};
    assert_int_equal(rm_rclient_append(cl, NULL, 0, 1, ping, plen), RM_ERR_OK);
    assert_int_equal(rm_rclient_append_owned(cl, "u:{t}", 5, strdup(unit), (size_t)o, 12),
                     RM_ERR_OK);
    const char *get[] = {"GET", "u:{t}:k07"};
    size_t glen[] = {3, 9};
    assert_int_equal(rm_rclient_append(cl, get[1], glen[1], 2, get, glen), RM_ERR_OK);
    redisReply *r;
    assert_int_equal(rm_rclient_reply(cl, &r), RM_ERR_OK);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);
    for (int i = 0; i < 11; i++) { /* +OK, then +QUEUED x 10 */
        assert_int_equal(rm_rclient_reply(cl, &r), RM_ERR_OK);
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        freeReplyObject(r);
    }
    assert_int_equal(rm_rclient_reply(cl, &r), RM_ERR_OK); /* EXEC */
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 10);
    freeReplyObject(r);
    assert_int_equal(rm_rclient_reply(cl, &r), RM_ERR_OK);
    assert_string_equal(r->str, "7");
    freeReplyObject(r);
    assert_int_equal(rm_rclient_reply(cl, &r), RM_ERR_IO); /* nothing pending */
    rm_rclient_free(cl);
    rm_redis_url_free(&u);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_unit_of_many_replies),
        cmocka_unit_test(test_flush_writes_keys_and_state),
        cmocka_unit_test(test_key_formats),
        cmocka_unit_test(test_new_fails_when_a_copy_fails),
        cmocka_unit_test(test_long_prefix_is_refused),
        cmocka_unit_test(test_checkpoint_cas),
        cmocka_unit_test(test_scripts_reloaded_after_script_flush),
        cmocka_unit_test(test_unexpected_reply_types),
        cmocka_unit_test(test_stored_numbers_checked),
        cmocka_unit_test(test_refused_configuration),
        cmocka_unit_test(test_reconnects_after_restart),
        cmocka_unit_test(test_write_cost_bounded_by_change),
        cmocka_unit_test(test_old_state_format_migrates),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
