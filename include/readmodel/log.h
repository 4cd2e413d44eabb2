/*
 * Logging to stderr, one line per record, as text or JSON lines. Thread-safe
 * (one write(2) per line). A record too long for its line (messages over
 * 2047 bytes, or about 4 KiB once escaped) is cut on a character boundary
 * and marked: " [truncated]" in text, "truncated":true in JSON; the line
 * still ends in a newline and, in JSON, is a valid object. Secrets never reach a log line: callers
 * log redacted URLs (rm_redis_url_redacted) and never raw configuration values.
 */
#ifndef READMODEL_LOG_H
#define READMODEL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { RM_LOG_DEBUG, RM_LOG_INFO, RM_LOG_WARN, RM_LOG_ERROR } rm_log_level_t;

/* Process-wide settings; call before starting threads. */
void rm_log_set_level(rm_log_level_t level);
void rm_log_set_json(bool json);
/* Parses "debug|info|warn|error"; false on anything else. */
bool rm_log_parse_level(const char *s, rm_log_level_t *out);

void rm_log(rm_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Context of a log line: JSON fields ("target", "partition", "offset") or,
 * in text, key=value pairs after the message. partition/offset < 0: absent. */
typedef struct {
    const char *target; /* NULL: absent */
    int partition;
    long long offset;
} rm_log_ctx_t;

void rm_logc(rm_log_level_t level, const rm_log_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Structured fields: the facts of a line (a reason, a count, a topic) as
 * their own JSON members ("reason":"wrong_type", "applied":1200) or, in
 * text, key=value pairs after the message (the value quoted when it holds a
 * space, '=' or '"'), so that the message stays a fixed sentence a log
 * pipeline can group by. Keys are literal identifiers other than time,
 * level, msg, target, partition, offset and truncated (which the line and
 * its context own). A STR field whose value is NULL is left out; a string
 * value longer than about 500 bytes is cut; a field that does not fit on
 * the line is left out whole. Thread-safe, like every log call; the fields
 * are borrowed for the call. */
typedef enum { RM_LOG_FIELD_STR, RM_LOG_FIELD_INT, RM_LOG_FIELD_NUM } rm_log_field_kind_t;
typedef struct {
    const char *key;
    rm_log_field_kind_t kind;
    const char *s; /* STR */
    long long i;   /* INT */
    double d;      /* NUM: NaN and infinities are written as null */
} rm_log_field_t;

#define RM_LOG_S(k, v) ((rm_log_field_t){.key = (k), .kind = RM_LOG_FIELD_STR, .s = (v)})
#define RM_LOG_I(k, v) ((rm_log_field_t){.key = (k), .kind = RM_LOG_FIELD_INT, .i = (long long)(v)})
#define RM_LOG_D(k, v) ((rm_log_field_t){.key = (k), .kind = RM_LOG_FIELD_NUM, .d = (double)(v)})

/* One line: msg (a fixed sentence, not a format), ctx (may be NULL), then
 * the n fields in order. */
void rm_log_fields_n(rm_log_level_t level, const rm_log_ctx_t *ctx, const char *msg,
                     const rm_log_field_t *fields, size_t n);
/* rm_log_fields(RM_LOG_WARN, &ctx, "invalid event", RM_LOG_S("reason", r), ...) */
#define rm_log_fields(level, ctx, msg, ...)                                                        \
    rm_log_fields_n((level), (ctx), (msg), (const rm_log_field_t[]){__VA_ARGS__},                  \
                    sizeof((const rm_log_field_t[]){__VA_ARGS__}) / sizeof(rm_log_field_t))

#define rm_debug(...) rm_log(RM_LOG_DEBUG, __VA_ARGS__)
#define rm_info(...)  rm_log(RM_LOG_INFO, __VA_ARGS__)
#define rm_warn(...)  rm_log(RM_LOG_WARN, __VA_ARGS__)
#define rm_error(...) rm_log(RM_LOG_ERROR, __VA_ARGS__)

/* Rate limiter: at most `burst` lines per window of `window_s` seconds.
 * rm_ratelimit_allow returns true when a line may be written and, through
 * *suppressed, how many were dropped since the last allowed one. Not
 * thread-safe: keep one per thread. */
typedef struct {
    unsigned burst;
    unsigned window_s;
    int64_t window_start;
    unsigned used;
    uint64_t suppressed;
} rm_ratelimit_t;

bool rm_ratelimit_allow(rm_ratelimit_t *rl, uint64_t *suppressed);

#endif
