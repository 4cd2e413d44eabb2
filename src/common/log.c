/*
 * Log lines to stderr. Text: "2026-11-22T10:00:00.123Z INFO message".
 * JSON: {"time":...,"level":...,"msg":...}. Each line is formatted into a
 * local buffer and written with one write(2), so lines from worker threads
 * never interleave. A message too long for the line is cut on a character
 * (and escape) boundary and marked: " [truncated]" after it in text,
 * "truncated":true in JSON, whose line stays valid JSON (and UTF-8).
 *
 * Facts go in fields, not in the message (rm_log_fields): in JSON each is a
 * member of its own ("partition":3, "reason":"wrong_type"), in text a
 * key=value after the message (quoted when the value has spaces), so a log
 * pipeline filters on them without parsing prose.
 */
#include "readmodel/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static rm_log_level_t min_level = RM_LOG_INFO;
static bool json_lines = false;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void rm_log_set_level(rm_log_level_t level) {
    min_level = level;
}

void rm_log_set_json(bool json) {
    json_lines = json;
}

bool rm_log_parse_level(const char *s, rm_log_level_t *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) {
            *out = (rm_log_level_t)i;
            return true;
        }
    return false;
}

/* A line being built: appends that do not fit before `cap` are refused
 * whole, so what is written always ends on a complete character or escape. */
typedef struct {
    char *p;
    size_t len, cap;
} line_t;

static bool put(line_t *b, const char *s, size_t n) {
    if (n > b->cap - b->len)
        return false;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return true;
}

/* Bytes of the UTF-8 character at s, or 1 for a byte that does not start
 * a complete, well-formed sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s) {
    size_t n = *s >= 0xC2 && *s <= 0xDF   ? 2
               : *s >= 0xE0 && *s <= 0xEF ? 3
               : *s >= 0xF0 && *s <= 0xF4 ? 4
                                          : 1;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 1;
    if ((*s == 0xE0 && s[1] < 0xA0) || (*s == 0xED && s[1] >= 0xA0) ||
        (*s == 0xF0 && s[1] < 0x90) || (*s == 0xF4 && s[1] >= 0x90))
        return 1;
    return n;
}

/* Appends s whole character by whole character, JSON-escaped when json
 * (where a byte that is not valid UTF-8 becomes U+FFFD). False when it
 * stopped for lack of room. */
static bool put_text(line_t *b, const char *s, bool json) {
    while (*s) {
        const unsigned char *u = (const unsigned char *)s;
        size_t n = utf8_len(u);
        char esc[8];
        bool ok;
        if (json && (*u == '"' || *u == '\\')) {
            esc[0] = '\\';
            esc[1] = (char)*u;
            ok = put(b, esc, 2);
        } else if (json && *u < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *u);
            ok = put(b, esc, 6);
        } else if (json && n == 1 && *u >= 0x80) {
            ok = put(b, "\\ufffd", 6);
        } else {
            ok = put(b, s, n);
        }
        if (!ok)
            return false;
        s += n;
    }
    return true;
}

/* Drops an incomplete UTF-8 sequence at the end of s (vsnprintf cut it). */
static void utf8_trim(char *s, size_t len) {
    size_t i = len;
    while (i > 0 && len - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i > 0 && (unsigned char)s[i - 1] >= 0xC0 && utf8_len((unsigned char *)s + i - 1) == 1)
        s[i - 1] = '\0';
}

/* Whether a text value must be quoted to stay one key=value token. */
static bool needs_quotes(const char *s) {
    if (!*s)
        return true;
    for (; *s; s++)
        if (*s == ' ' || *s == '"' || *s == '=' || (unsigned char)*s < 0x20)
            return true;
    return false;
}

/* Appends one field (",\"key\":value" or " key=value") whole, or not at all
 * when the line has no room; a long string value is cut on a character. */
static void put_field(line_t *c, const rm_log_field_t *f) {
    char tmp[560], num[48];
    line_t t = {tmp, 0, sizeof(tmp) - 2}; /* room for the closing quote */
    if (f->kind == RM_LOG_FIELD_STR && !f->s)
        return;
    put(&t, json_lines ? ",\"" : " ", json_lines ? 2 : 1);
    put_text(&t, f->key, json_lines);
    put(&t, json_lines ? "\":" : "=", json_lines ? 2 : 1);
    if (f->kind == RM_LOG_FIELD_STR) {
        bool quote = json_lines || needs_quotes(f->s);
        if (quote)
            put(&t, "\"", 1);
        put_text(&t, f->s, quote);
        t.cap = sizeof(tmp);
        if (quote)
            put(&t, "\"", 1);
    } else if (f->kind == RM_LOG_FIELD_INT) {
        put(&t, num, (size_t)snprintf(num, sizeof(num), "%lld", f->i));
    } else if (f->d != f->d || f->d - f->d != 0) { /* NaN or infinite: not a JSON number */
        put(&t, "null", 4);
    } else {
        put(&t, num, (size_t)snprintf(num, sizeof(num), "%.6g", f->d));
    }
    put(c, tmp, t.len);
}

#define TRUNCATED_TEXT " [truncated]"
#define TRUNCATED_JSON ",\"truncated\":true"

static void vlog(rm_log_level_t level, const rm_log_ctx_t *ctx, const rm_log_field_t *fields,
                 size_t nfields, const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static void vlog(rm_log_level_t level, const rm_log_ctx_t *ctx, const rm_log_field_t *fields,
                 size_t nfields, const char *fmt, va_list ap) {
    if (level < min_level)
        return;
    char msg[2048], line[6400], ts[40], context[1800];
    int mlen = vsnprintf(msg, sizeof(msg), fmt, ap);
    bool truncated = mlen < 0 || (size_t)mlen >= sizeof(msg);
    if (mlen < 0)
        msg[0] = '\0';
    else if (truncated)
        utf8_trim(msg, sizeof(msg) - 1);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
    /* The context: the target is cut to leave room for the rest. */
    line_t c = {context, 0, 200 - 64};
    char num[48];
    if (ctx && ctx->target) {
        put(&c, json_lines ? ",\"target\":\"" : " target=", json_lines ? 11 : 8);
        put_text(&c, ctx->target, json_lines);
    }
    c.cap = 200;
    if (ctx && ctx->target && json_lines)
        put(&c, "\"", 1);
    if (ctx && ctx->partition >= 0)
        put(&c, num,
            (size_t)snprintf(num, sizeof(num), json_lines ? ",\"partition\":%d" : " partition=%d",
                             ctx->partition));
    if (ctx && ctx->offset >= 0)
        put(&c, num,
            (size_t)snprintf(num, sizeof(num), json_lines ? ",\"offset\":%lld" : " offset=%lld",
                             ctx->offset));
    c.cap = sizeof(context);
    for (size_t i = 0; i < nfields; i++)
        put_field(&c, &fields[i]);
    /* The message gets what the head, the context, the mark and the end
     * leave of the line. */
    size_t tail =
        c.len + (json_lines ? 1 + strlen(TRUNCATED_JSON) + 2 : strlen(TRUNCATED_TEXT) + 1);
    line_t b = {line, 0, sizeof(line) - tail};
    char head[96];
    int hl = json_lines
                 ? snprintf(head, sizeof(head), "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                            level_names[level])
                 : snprintf(head, sizeof(head), "%s %-5s ", ts, level_names[level]);
    put(&b, head, (size_t)hl);
    if (!put_text(&b, msg, json_lines))
        truncated = true;
    b.cap = sizeof(line);
    if (json_lines)
        put(&b, "\"", 1);
    if (truncated && !json_lines)
        put(&b, TRUNCATED_TEXT, strlen(TRUNCATED_TEXT));
    put(&b, context, c.len);
    if (truncated && json_lines)
        put(&b, TRUNCATED_JSON, strlen(TRUNCATED_JSON));
    put(&b, json_lines ? "}\n" : "\n", json_lines ? 2 : 1);
    ssize_t w = write(STDERR_FILENO, line, b.len);
    (void)w;
}

void rm_log(rm_log_level_t level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(level, NULL, NULL, 0, fmt, ap);
    va_end(ap);
}

void rm_logc(rm_log_level_t level, const rm_log_ctx_t *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(level, ctx, NULL, 0, fmt, ap);
    va_end(ap);
}

/* vlog takes a format; a fields line's message is one "%s". */
static void log_msg(rm_log_level_t level, const rm_log_ctx_t *ctx, const rm_log_field_t *fields,
                    size_t n, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void log_msg(rm_log_level_t level, const rm_log_ctx_t *ctx, const rm_log_field_t *fields,
                    size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(level, ctx, fields, n, fmt, ap);
    va_end(ap);
}

void rm_log_fields_n(rm_log_level_t level, const rm_log_ctx_t *ctx, const char *msg,
                     const rm_log_field_t *fields, size_t n) {
    log_msg(level, ctx, fields, n, "%s", msg);
}

bool rm_ratelimit_allow(rm_ratelimit_t *rl, uint64_t *suppressed) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - rl->window_start >= (int64_t)rl->window_s) {
        rl->window_start = now.tv_sec;
        rl->used = 0;
    }
    if (rl->used >= rl->burst) {
        rl->suppressed++;
        return false;
    }
    rl->used++;
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return true;
}
