/*
 * What rebuild, verify and status tell the operator: text lines for people
 * (the default), or with --output json one JSON object on stdout when the
 * command ends (its fields: docs/output-json.md). The targets report their
 * facts through these functions instead of printing, so both forms come from
 * the same facts and the text is unchanged by the JSON.
 *
 * Thread-safety: the report is process state of the admin command; call
 * these from its main thread only. Ownership: functions taking a json_t *
 * steal the reference (also in text mode, where it is dropped). Errors: a
 * JSON value that cannot be allocated is left out of the report (never a
 * crash); rm_report_end says so on stderr.
 */
#ifndef READMODEL_ADMIN_REPORT_H
#define READMODEL_ADMIN_REPORT_H

#include "readmodel/config.h"
#include "readmodel/error.h"
#include "readmodel/replay.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Starts the report of `command` ("status", "verify", "rebuild"): JSON when
 * cfg->output_format is "json", else text. */
void rm_report_begin(const rm_config_t *cfg, const char *command);
/* Whether the report is JSON (text lines must not be printed then). */
bool rm_report_json(void);
/* Opens the object of one target (pushed on "targets"); later facts go in it. */
void rm_report_target_begin(const char *target);
/* Closes it with its result ("identical", "drift", "truncated_refused", ...). */
void rm_report_target_end(const char *result);
/* Prints the JSON object (with the command's overall `result`) and frees it;
 * nothing in text mode. */
void rm_report_end(const char *result);

/* Sets key of the current target to v (stolen). */
void rm_report_set(const char *key, json_t *v);
/* The plan: text lines on text_out, or "plan" {topic, events, partitions}. */
void rm_report_plan(const rm_config_t *cfg, const rm_replay_t *r, FILE *text_out);
/* One row of status: partition, earliest, end, checkpoint (-1: none), lag. */
void rm_report_partition(const rm_replay_t *r, int p, int64_t checkpoint);
/* The lease: holder ("" when free) and the ms until it expires (-1: none). */
void rm_report_lease(const char *holder, long long ttl_ms);
/* A record of the last rebuild or verify (rec stolen; NULL: none) under
 * key ("last_rebuild"), titled title in text. Integer fields named *_at are
 * Unix seconds and are shown as RFC 3339 in both forms. */
void rm_report_record(const char *key, const char *title, json_t *rec);
/* A record stored as "field=value\n" lines: numbers become numbers. New
 * reference, or NULL when text is empty (or out of memory). */
json_t *rm_report_record_parse(const char *text);
/* An example of a difference of kind ("missing", "wrong", "extra", "state"). */
void rm_report_example(const char *kind, const char *text);
/* A wrong checkpoint found by verify: its value, the offset it should have
 * reached, and why it is wrong; text is the line printed in text mode. */
void rm_report_checkpoint(int p, int64_t checkpoint, int64_t expected, const char *reason,
                          const char *text);
/* A note in text ("note: ..."), "notes" [..] in JSON. */
void rm_report_note(const char *text);
/* t as RFC 3339 UTC ("2026-11-29T13:30:00Z") into out (at least 21 bytes). */
void rm_report_time(time_t t, char *out, size_t cap);

#endif
