/*
 * Log lines (src/common/log.c), captured from stderr: one line per record,
 * ending in a newline, valid JSON in JSON mode, and a message too long for
 * the line cut cleanly (whole characters and escapes, the JSON string and
 * object closed) and marked as truncated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "readmodel/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What one call of fn wrote to stderr (malloc'd, *len bytes). */
static char *capture(void (*fn)(const char *arg), const char *arg, size_t *len) {
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    fn(arg);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
    long n = ftell(tmp);
    assert_true(n >= 0);
    rewind(tmp);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, tmp), (size_t)n);
    buf[n] = '\0';
    fclose(tmp);
    *len = (size_t)n;
    return buf;
}

/* Exactly one line: no NUL inside, one newline, at the end. */
static void assert_one_line(const char *buf, size_t len) {
    assert_true(len > 0);
    assert_int_equal(strlen(buf), len);
    assert_int_equal(buf[len - 1], '\n');
    assert_ptr_equal(strchr(buf, '\n'), buf + len - 1);
}

static void log_plain(const char *msg) {
    rm_info("%s", msg);
}

static void log_ctx(const char *msg) {
    rm_log_ctx_t ctx = {.target = "redis", .partition = 3, .offset = 42};
    rm_logc(RM_LOG_WARN, &ctx, "%s", msg);
}

/* A message of n copies of unit (NUL-terminated, malloc'd). */
static char *repeat(const char *unit, size_t n) {
    size_t u = strlen(unit);
    char *s = malloc(u * n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    s[u * n] = '\0';
    return s;
}

static void test_text_lines(void **state) {
    (void)state;
    rm_log_set_json(false);
    size_t len;
    char *out = capture(log_plain, "hello", &len);
    assert_one_line(out, len);
    assert_non_null(strstr(out, " info  hello\n"));
    assert_null(strstr(out, "truncated"));
    free(out);

    char *msg = repeat("a", 10000);
    out = capture(log_ctx, msg, &len);
    assert_one_line(out, len);
    assert_non_null(strstr(out, "aaaa [truncated] target=redis partition=3 offset=42\n"));
    free(out);
    free(msg);
}

/* The line parses as JSON with these fields; returns it (caller decrefs). */
static json_t *parse_line(const char *buf, size_t len) {
    assert_one_line(buf, len);
    json_error_t err;
    json_t *o = json_loadb(buf, len, 0, &err);
    if (!o)
        fail_msg("not JSON (%s): %.200s", err.text, buf);
    assert_true(json_is_string(json_object_get(o, "time")));
    assert_true(json_is_string(json_object_get(o, "level")));
    assert_true(json_is_string(json_object_get(o, "msg")));
    return o;
}

static void test_json_lines(void **state) {
    (void)state;
    rm_log_set_json(true);
    size_t len;
    char *out = capture(log_ctx, "say \"hi\"\n\\", &len);
    json_t *o = parse_line(out, len);
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "say \"hi\"\n\\");
    assert_string_equal(json_string_value(json_object_get(o, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(o, "target")), "redis");
    assert_int_equal(json_integer_value(json_object_get(o, "partition")), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "offset")), 42);
    assert_null(json_object_get(o, "truncated"));
    json_decref(o);
    free(out);
    rm_log_set_json(false);
}

/* Too long for the line: plain bytes, control characters (6 bytes each
 * once escaped) and two-byte UTF-8 characters, which must not be cut in
 * half. Each gives one valid JSON line with its context, marked. */
static void test_json_truncated(void **state) {
    (void)state;
    rm_log_set_json(true);
    const char *units[] = {"a", "\x01", "\xc3\xa9", "\"", "ab\xe2\x82\xac"};
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        char *msg = repeat(units[u], 6000);
        size_t len;
        char *out = capture(log_ctx, msg, &len);
        json_t *o = parse_line(out, len);
        assert_true(json_is_true(json_object_get(o, "truncated")));
        assert_string_equal(json_string_value(json_object_get(o, "target")), "redis");
        assert_int_equal(json_integer_value(json_object_get(o, "offset")), 42);
        const char *got = json_string_value(json_object_get(o, "msg"));
        assert_true(strlen(got) > 500);
        assert_true(strlen(got) < strlen(msg));
        assert_memory_equal(got, msg, strlen(got)); /* a prefix, whole characters */
        json_decref(o);
        free(out);
        free(msg);
    }
    rm_log_set_json(false);
}

/* A line with structured fields: every kind, a NULL string (left out), a
 * value that needs quoting in text and escaping in JSON, NaN. `arg` is a
 * long value's length ("0": a short one). */
static void log_fields(const char *arg) {
    rm_log_ctx_t ctx = {.target = "redis", .partition = 3, .offset = 42};
    size_t n = (size_t)atol(arg);
    char *big = repeat("\xc3\xa9", n ? n : 1);
    rm_log_fields(RM_LOG_WARN, &ctx, "invalid event", RM_LOG_S("reason", "wrong_type"),
                  RM_LOG_S("field", "slot_count"), RM_LOG_I("count", -7), RM_LOG_D("rate", 1.5),
                  RM_LOG_S("absent", NULL), RM_LOG_S("quote", "a \"b\"=c\n"),
                  RM_LOG_D("nan", 0.0 / 0.0), RM_LOG_S("big", n ? big : "x"));
    free(big);
}

static void test_fields_json(void **state) {
    (void)state;
    rm_log_set_json(true);
    size_t len;
    char *out = capture(log_fields, "0", &len);
    json_t *o = parse_line(out, len);
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "invalid event");
    assert_string_equal(json_string_value(json_object_get(o, "target")), "redis");
    assert_int_equal(json_integer_value(json_object_get(o, "partition")), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "offset")), 42);
    assert_string_equal(json_string_value(json_object_get(o, "reason")), "wrong_type");
    assert_string_equal(json_string_value(json_object_get(o, "field")), "slot_count");
    assert_int_equal(json_integer_value(json_object_get(o, "count")), -7);
    assert_true(json_real_value(json_object_get(o, "rate")) == 1.5);
    assert_null(json_object_get(o, "absent"));
    assert_string_equal(json_string_value(json_object_get(o, "quote")), "a \"b\"=c\n");
    assert_true(json_is_null(json_object_get(o, "nan")));
    json_decref(o);
    free(out);
    /* a string value too long is cut on a character; the line stays JSON */
    out = capture(log_fields, "3000", &len);
    o = parse_line(out, len);
    const char *big = json_string_value(json_object_get(o, "big"));
    assert_non_null(big);
    assert_true(strlen(big) > 400 && strlen(big) < 600 && strlen(big) % 2 == 0);
    assert_int_equal(json_integer_value(json_object_get(o, "count")), -7);
    json_decref(o);
    free(out);
    rm_log_set_json(false);
}

static void test_fields_text(void **state) {
    (void)state;
    rm_log_set_json(false);
    size_t len;
    char *out = capture(log_fields, "0", &len);
    assert_one_line(out, len);
    assert_non_null(strstr(out, " warn  invalid event target=redis partition=3 offset=42 "
                                "reason=wrong_type field=slot_count count=-7 rate=1.5 "
                                "quote=\"a \\\"b\\\"=c\\u000a\" nan=null big=x\n"));
    assert_null(strstr(out, "absent"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_json),    cmocka_unit_test(test_fields_text),
        cmocka_unit_test(test_text_lines),     cmocka_unit_test(test_json_lines),
        cmocka_unit_test(test_json_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
