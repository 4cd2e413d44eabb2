/*
 * The report of an admin command (report.h): facts in, text lines or one
 * JSON object out. In text mode every function prints at once what the
 * command has always printed; in JSON mode it adds the fact to the current
 * target's object, and rm_report_end prints the whole object, so a program
 * reading stdout gets exactly one JSON document whatever happened (logs and
 * progress go to stderr). Times are RFC 3339 in UTC.
 */
#include "report.h"

#include <stdlib.h>
#include <string.h>

static json_t *root;    /* NULL: text */
static json_t *current; /* the target being reported, borrowed from root */

void rm_report_time(time_t t, char *out, size_t cap) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *time_json(time_t t) {
    char s[32];
    rm_report_time(t, s, sizeof(s));
    return json_string(s);
}

void rm_report_begin(const rm_config_t *cfg, const char *command) {
    json_decref(root);
    root = current = NULL;
    if (!cfg->output_format || strcmp(cfg->output_format, "json") != 0)
        return;
    root = json_pack("{s:s,s:s,s:o,s:[]}", "command", command, "topic", cfg->topic, "generated_at",
                     time_json(time(NULL)), "targets");
    if (!root)
        fprintf(stderr, "readmodel %s: out of memory for the JSON report\n", command);
}

bool rm_report_json(void) {
    return root != NULL;
}

void rm_report_target_begin(const char *target) {
    current = NULL;
    if (!root)
        return;
    json_t *t = json_pack("{s:s}", "target", target);
    if (t && json_array_append_new(json_object_get(root, "targets"), t) == 0)
        current = t;
}

void rm_report_set(const char *key, json_t *v) {
    if (current && v)
        json_object_set_new(current, key, v);
    else
        json_decref(v);
}

void rm_report_target_end(const char *result) {
    rm_report_set("result", json_string(result));
    current = NULL;
}

void rm_report_end(const char *result) {
    if (!root)
        return;
    json_object_set_new(root, "result", json_string(result));
    if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(6)) != 0)
        fprintf(stderr, "readmodel: could not write the JSON report\n");
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(root);
    root = current = NULL;
}

/* Appends v (stolen) to the array key of the current target, made if absent. */
static void push(const char *key, json_t *v) {
    json_t *a = current ? json_object_get(current, key) : NULL;
    if (current && !a && json_object_set_new(current, key, a = json_array()) != 0)
        a = NULL;
    if (!a || json_array_append_new(a, v) != 0)
        json_decref(v);
}

void rm_report_plan(const rm_config_t *cfg, const rm_replay_t *r, FILE *text_out) {
    if (!root) {
        fprintf(text_out, "plan: topic %s, %d partition(s), %llu event(s) to replay\n", cfg->topic,
                r->partitions, (unsigned long long)r->total);
        for (int p = 0; p < r->partitions; p++)
            fprintf(text_out, "  partition %d: offsets %lld..%lld (%lld events)%s\n", p,
                    (long long)r->low[p], (long long)r->high[p],
                    (long long)(r->high[p] - r->low[p]),
                    r->low[p] > 0 ? "  TRUNCATED: history before the earliest offset is gone" : "");
        return;
    }
    json_t *parts = json_array();
    int truncated = 0;
    for (int p = 0; p < r->partitions; p++) {
        truncated += r->low[p] > 0;
        json_array_append_new(parts, json_pack("{s:i,s:I,s:I,s:I,s:b}", "partition", p, "earliest",
                                               (json_int_t)r->low[p], "end", (json_int_t)r->high[p],
                                               "events", (json_int_t)(r->high[p] - r->low[p]),
                                               "truncated", r->low[p] > 0));
    }
    rm_report_set("plan", json_pack("{s:s,s:I,s:i,s:o}", "topic", cfg->topic, "events",
                                    (json_int_t)r->total, "truncated_partitions", truncated,
                                    "partitions", parts));
}

void rm_report_partition(const rm_replay_t *r, int p, int64_t checkpoint) {
    const char *state = r->low[p] > 0 ? "truncated_history" : "ok";
    const char *note = r->low[p] > 0 ? "  (truncated history)" : "";
    long long lag = -1;
    if (checkpoint > r->high[p]) {
        state = "checkpoint_above_end";
        note = "  CHECKPOINT ABOVE THE LOG'S END: the log was reset; run readmodel rebuild";
    } else {
        if (checkpoint >= 0 && checkpoint < r->low[p]) {
            state = "checkpoint_below_earliest";
            note = "  CHECKPOINT BELOW THE EARLIEST OFFSET: retention deleted unapplied events";
        }
        lag = (long long)(r->high[p] - (checkpoint >= 0 ? checkpoint : r->low[p]));
    }
    if (root) {
        push("partitions",
             json_pack("{s:i,s:I,s:I,s:o,s:o,s:s}", "partition", p, "earliest",
                       (json_int_t)r->low[p], "end", (json_int_t)r->high[p], "checkpoint",
                       checkpoint >= 0 ? json_integer(checkpoint) : json_null(), "lag",
                       lag >= 0 ? json_integer(lag) : json_null(), "state", state));
        return;
    }
    char cps[24] = "none", lags[24] = "-";
    if (checkpoint >= 0)
        snprintf(cps, sizeof(cps), "%lld", (long long)checkpoint);
    if (lag >= 0)
        snprintf(lags, sizeof(lags), "%lld", lag);
    printf("%-10d %12lld %12lld %12s %10s%s\n", p, (long long)r->low[p], (long long)r->high[p], cps,
           lags, note);
}

void rm_report_lease(const char *holder, long long ttl_ms) {
    if (!root) {
        printf("lease: %s\n", holder[0] ? holder : "free");
        return;
    }
    json_t *l = json_pack("{s:b,s:o}", "held", holder[0] != '\0', "holder",
                          holder[0] ? json_string(holder) : json_null());
    if (l && holder[0] && ttl_ms >= 0) {
        json_object_set_new(l, "expires_in_ms", json_integer(ttl_ms));
        json_object_set_new(l, "expires_at", time_json(time(NULL) + (time_t)(ttl_ms / 1000)));
    }
    rm_report_set("lease", l);
}

/* Fields named *_at holding Unix seconds become RFC 3339 strings. */
static void times_to_rfc3339(json_t *rec) {
    const char *k;
    json_t *v;
    json_object_foreach(rec, k, v) {
        size_t n = strlen(k);
        if (n > 3 && strcmp(k + n - 3, "_at") == 0 && json_is_integer(v))
            json_object_set_new(rec, k, time_json((time_t)json_integer_value(v)));
    }
}

void rm_report_record(const char *key, const char *title, json_t *rec) {
    if (rec)
        times_to_rfc3339(rec);
    if (root) {
        rm_report_set(key, rec ? rec : json_null());
        return;
    }
    if (!rec) {
        printf("%s: none\n", title);
        return;
    }
    printf("%s:\n", title);
    const char *k;
    json_t *v;
    json_object_foreach(rec, k, v) {
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(6));
        printf("%s=%s\n", k, json_is_string(v) ? json_string_value(v) : text ? text : "?");
        free(text);
    }
    json_decref(rec);
}

json_t *rm_report_record_parse(const char *text) {
    if (!text || !*text)
        return NULL;
    json_t *rec = json_object();
    for (const char *line = text; rec && *line;) {
        size_t len = strcspn(line, "\n");
        const char *eq = memchr(line, '=', len);
        if (eq) {
            char key[128], val[512], *end;
            snprintf(key, sizeof(key), "%.*s", (int)(eq - line), line);
            snprintf(val, sizeof(val), "%.*s", (int)(line + len - eq - 1), eq + 1);
            long long i = strtoll(val, &end, 10);
            json_t *v = *val && !*end ? json_integer(i) : NULL;
            double d = v ? 0 : strtod(val, &end);
            if (!v)
                v = *val && !*end ? json_real(d) : json_string(val);
            json_object_set_new(rec, key, v);
        }
        line += len + (line[len] == '\n');
    }
    return rec;
}

void rm_report_example(const char *kind, const char *text) {
    if (!root) {
        printf("  %s: %s\n", kind, text);
        return;
    }
    json_t *ex = current ? json_object_get(current, "examples") : NULL;
    if (current && !ex)
        json_object_set_new(current, "examples", ex = json_object());
    json_t *a = ex ? json_object_get(ex, kind) : NULL;
    if (ex && !a)
        json_object_set_new(ex, kind, a = json_array());
    if (a)
        json_array_append_new(a, json_string(text));
}

void rm_report_checkpoint(int p, int64_t checkpoint, int64_t expected, const char *reason,
                          const char *text) {
    if (!root) {
        printf("%s\n", text);
        return;
    }
    push("checkpoints_wrong", json_pack("{s:i,s:o,s:I,s:s}", "partition", p, "checkpoint",
                                        checkpoint >= 0 ? json_integer(checkpoint) : json_null(),
                                        "expected", (json_int_t)expected, "reason", reason));
}

void rm_report_note(const char *text) {
    if (!root)
        printf("%s\n", text);
    else
        push("notes", json_string(text));
}
