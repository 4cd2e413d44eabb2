/*
 * Log lines to stderr. Text: "2026-11-22T10:00:00.123Z INFO message".
 * JSON: {"time":...,"level":...,"msg":...}. Each line is formatted into a
 * local buffer and written with one write(2), so lines from worker threads
 * never interleave.
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

static size_t json_escape(char *out, size_t cap, const char *s) {
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return o;
}

static void vlog(rm_log_level_t level, const rm_log_ctx_t *ctx, const char *fmt, va_list ap) {
    if (level < min_level)
        return;
    char msg[2048], line[4800], ts[40], context[200] = "";
    vsnprintf(msg, sizeof(msg), fmt, ap);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
    size_t c = 0;
    if (ctx && ctx->target)
        c += (size_t)snprintf(context + c, sizeof(context) - c,
                              json_lines ? ",\"target\":\"%s\"" : " target=%s", ctx->target);
    if (ctx && ctx->partition >= 0 && c < sizeof(context))
        c += (size_t)snprintf(context + c, sizeof(context) - c,
                              json_lines ? ",\"partition\":%d" : " partition=%d", ctx->partition);
    if (ctx && ctx->offset >= 0 && c < sizeof(context))
        snprintf(context + c, sizeof(context) - c, json_lines ? ",\"offset\":%lld" : " offset=%lld",
                 ctx->offset);
    int len;
    if (json_lines) {
        char esc[4200];
        json_escape(esc, sizeof(esc), msg);
        len = snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"%s}\n",
                       ts, level_names[level], esc, context);
    } else {
        len = snprintf(line, sizeof(line), "%s %-5s %s%s\n", ts, level_names[level], msg, context);
    }
    if (len > (int)sizeof(line))
        len = (int)sizeof(line);
    ssize_t w = write(STDERR_FILENO, line, (size_t)len);
    (void)w;
}

void rm_log(rm_log_level_t level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(level, NULL, fmt, ap);
    va_end(ap);
}

void rm_logc(rm_log_level_t level, const rm_log_ctx_t *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(level, ctx, fmt, ap);
    va_end(ap);
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
