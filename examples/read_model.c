/*
 * How an application reads readmodel's Redis availability bitmaps from C
 * with hiredis (docs/contract.md, section 5.1). Three questions about one
 * practitioner:
 *   1. is the slot at HH:MM (UTC) on DATE free?        GETBIT key slot
 *   2. the first free slot of DATE                     BITPOS key 1
 *   3. the free days of DATE's week (Monday..Sunday)   EXISTS key, pipelined
 *
 *   usage: read_model PRACTITIONER DATE [HH:MM]        (HH:MM default 10:30)
 *   connection: REDIS_SOCKET=/path.sock, or REDIS_HOST / REDIS_PORT
 *               (default 127.0.0.1:6379); key prefix READMODEL_PREFIX (rm:)
 *
 * Build: cc read_model.c $(pkg-config --cflags --libs hiredis)
 */
#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The key of one practitioner-day; the braces are part of the name. */
static void day_key(char *out, size_t cap, const char *prefix, const char *pid, const char *date) {
    snprintf(out, cap, "%savail:{%s}:%s", prefix, pid, date);
}

/* One command with an integer reply; -2 on any error (printed). */
static long long integer(redisContext *c, redisReply *r) {
    long long v = -2;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else
        fprintf(stderr, "redis: %s\n", r ? (r->str ? r->str : "unexpected reply") : c->errstr);
    freeReplyObject(r);
    return v;
}

/* DATE (YYYY-MM-DD) as midnight UTC; -1 when malformed. */
static time_t parse_date(const char *s) {
    struct tm tm = {0};
    if (sscanf(s, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s PRACTITIONER YYYY-MM-DD [HH:MM]\n", argv[0]);
        return 2;
    }
    const char *pid = argv[1], *date = argv[2], *at = argc == 4 ? argv[3] : "10:30";
    const char *prefix = getenv("READMODEL_PREFIX") ? getenv("READMODEL_PREFIX") : "rm:";
    int hh, mm;
    time_t day = parse_date(date);
    if (day < 0 || sscanf(at, "%d:%d", &hh, &mm) != 2) {
        fprintf(stderr, "usage: %s PRACTITIONER YYYY-MM-DD [HH:MM]\n", argv[0]);
        return 2;
    }
    const char *sock = getenv("REDIS_SOCKET"), *host = getenv("REDIS_HOST");
    const char *port = getenv("REDIS_PORT");
    redisContext *c = sock && *sock
                          ? redisConnectUnix(sock)
                          : redisConnect(host ? host : "127.0.0.1", port ? atoi(port) : 6379);
    if (!c || c->err) {
        fprintf(stderr, "redis: %s\n", c ? c->errstr : "out of memory");
        redisFree(c);
        return 1;
    }
    char key[256];
    day_key(key, sizeof(key), prefix, pid, date);

    /* 1. Slot i starts i*5 minutes after 00:00 UTC. A missing key is a day
     * without a free slot: GETBIT answers 0. */
    long long bit = integer(c, redisCommand(c, "GETBIT %s %d", key, (hh * 60 + mm) / 5));
    /* 2. BITPOS answers -1 when no bit is set (also for a missing key). */
    long long first = integer(c, redisCommand(c, "BITPOS %s 1", key));
    if (bit < 0 || first < -1) {
        redisFree(c);
        return 1;
    }
    printf("free at %s: %s\n", at, bit == 1 ? "yes" : "no");
    if (first >= 0)
        printf("first free slot: %02lld:%02lld\n", first * 5 / 60, first * 5 % 60);
    else
        printf("first free slot: none\n");

    /* 3. A day has a key if and only if it has a free slot: seven EXISTS,
     * pipelined (sent together, then read in order). */
    struct tm tm;
    gmtime_r(&day, &tm);
    time_t monday = day - (time_t)((tm.tm_wday + 6) % 7) * 86400;
    char dates[7][11];
    for (int i = 0; i < 7; i++) {
        time_t t = monday + (time_t)i * 86400;
        gmtime_r(&t, &tm);
        strftime(dates[i], sizeof(dates[i]), "%Y-%m-%d", &tm);
        day_key(key, sizeof(key), prefix, pid, dates[i]);
        redisAppendCommand(c, "EXISTS %s", key);
    }
    printf("free days in week %s..%s:", dates[0], dates[6]);
    int n = 0;
    for (int i = 0; i < 7; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            fprintf(stderr, "\nredis: %s\n", c->errstr);
            redisFree(c);
            return 1;
        }
        if (integer(c, r) == 1)
            printf(" %s", dates[i]), n++;
    }
    printf("%s\n", n ? "" : " none");
    redisFree(c);
    return 0;
}
