/*
 * Prometheus exposition (text format 0.0.4) of serve's counters, partition
 * offsets, sink health and process figures. Every metric is described once
 * in the table in metrics.c and rendered there.
 *
 * Thread-safety: render, ready and live only read atomics and may run on
 * any thread while the workers update st.
 */
#ifndef READMODEL_METRICS_H
#define READMODEL_METRICS_H

#include "readmodel/stats.h"

/* Renders every metric. Returns a malloc'd NUL-terminated string (caller
 * frees), or NULL when out of memory. `target` is the label value ("redis"). */
char *rm_metrics_render(rm_stats_t *st, const char *topic, const char *target);

/* Readiness of serve: the first pipeline's sink answers (serve's health
 * connection; the why of a 503 names the nodes that did not answer) and
 * its last write succeeded; a Job is always ready.
 * Liveness: every worker of every pipeline turned its loop within the last
 * 30 s (monotonic clock). Both fill why (cap bytes) with a one-line reason. */
bool rm_metrics_ready(rm_stats_t *st, char *why, size_t cap);
bool rm_metrics_live(rm_stats_t *st, char *why, size_t cap);

/* Records the process start time for process_start_time_seconds. */
void rm_metrics_process_started(void);

#endif
