/*
 * Progress of long work (rebuild, verify): a live line on a terminal, else a
 * log line every 5 s; and, when a metrics block is published, the phase,
 * progress and replay rate for that command's /metrics.
 */
#ifndef READMODEL_PROGRESS_H
#define READMODEL_PROGRESS_H

#include "readmodel/config.h"
#include "readmodel/stats.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    rm_rebuild_phase_t phase;
    uint64_t total;
    double start; /* rm_mono_s() */
    double last_print;
    bool tty;
} rm_progress_t;

/* Starts a phase (RM_PHASE_REPLAY, RM_PHASE_WRITE or RM_PHASE_COMPARE) of
 * `total` units and publishes it. */
void rm_progress_begin(rm_progress_t *p, rm_rebuild_phase_t phase, uint64_t total);
/* Publishes; prints when due (every 0.5 s on a terminal, 5 s otherwise). */
void rm_progress_update(rm_progress_t *p, uint64_t done);
/* Final line of the phase; returns its duration in seconds. */
double rm_progress_end(rm_progress_t *p, uint64_t done);
/* Seconds since rm_progress_begin. */
double rm_progress_elapsed(const rm_progress_t *p);

/* Makes job the block that phases and progress are published into (the
 * command's --metrics-addr endpoint reads it); NULL stops publishing. job is
 * borrowed and must outlive the publishing. Not thread-safe: call from the
 * command's main thread before and after the work. */
void rm_progress_publish(rm_job_stats_t *job);
/* Sets the published phase (plan, done, failed: the ones without progress). */
void rm_progress_phase(rm_rebuild_phase_t phase);

#endif
