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

void rm_log(rm_log_level_t level, const char *fmt, ...) {
    if (level < min_level)
        return;
    char msg[2048], line[4500], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
    int len;
    if (json_lines) {
        char esc[4200];
        json_escape(esc, sizeof(esc), msg);
        len = snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n",
                       ts, level_names[level], esc);
    } else {
        len = snprintf(line, sizeof(line), "%s %-5s %s\n", ts, level_names[level], msg);
    }
    if (len > (int)sizeof(line))
        len = (int)sizeof(line);
    ssize_t w = write(STDERR_FILENO, line, (size_t)len);
    (void)w;
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
