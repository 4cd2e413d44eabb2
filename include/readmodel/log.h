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
