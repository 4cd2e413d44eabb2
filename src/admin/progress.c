/*
 * Progress reporting for rebuild and verify. The same numbers go to the
 * terminal (a live line), to the log (every 5 s when stderr is not a
 * terminal) and to the published metrics block, so an operator watching
 * `kubectl logs` and one watching Prometheus see the same thing.
 */
#include "progress.h"
#include "readmodel/clock.h"
#include "readmodel/log.h"

#include <stdio.h>
#include <unistd.h>

static rm_job_stats_t *published;

void rm_progress_publish(rm_job_stats_t *job) {
    published = job;
}

void rm_progress_phase(rm_rebuild_phase_t phase) {
    if (published)
        atomic_store(&published->phase, (int)phase);
}

static void publish(const rm_progress_t *p, uint64_t done, double rate) {
    if (!published)
        return;
    atomic_store(&published->phase, (int)p->phase);
    atomic_store(&published->total, (long long)p->total);
    atomic_store(&published->done, (long long)done);
    if (p->phase == RM_PHASE_REPLAY) /* events/s; the write phase keeps the replay's rate */
        atomic_store(&published->rate, (long long)rate);
}

double rm_progress_elapsed(const rm_progress_t *p) {
    return rm_mono_s() - p->start;
}

void rm_progress_begin(rm_progress_t *p, rm_rebuild_phase_t phase, uint64_t total) {
    p->phase = phase;
    p->total = total;
    p->start = rm_mono_s();
    p->last_print = 0;
    p->tty = isatty(STDERR_FILENO);
    publish(p, 0, 0);
}

static void print(rm_progress_t *p, uint64_t done, bool final) {
    double t = rm_progress_elapsed(p);
    double rate = t > 0 ? (double)done / t : 0;
    double eta = rate > 0 && p->total > done ? (double)(p->total - done) / rate : 0;
    double pct = p->total ? 100.0 * (double)done / (double)p->total : 100.0;
    const char *name = rm_rebuild_phase_name(p->phase);
    publish(p, done, rate);
    if (p->tty) {
        fprintf(stderr, "\r%-8s %llu/%llu (%.1f%%) %.0f/s ETA %.0fs   %s", name,
                (unsigned long long)done, (unsigned long long)p->total, pct, rate, eta,
                final ? "\n" : "");
        fflush(stderr);
    } else {
        rm_log_fields(RM_LOG_INFO, NULL, final ? "phase done" : "progress", RM_LOG_S("phase", name),
                      RM_LOG_I("done", done), RM_LOG_I("total", p->total), RM_LOG_D("percent", pct),
                      RM_LOG_D("per_second", rate),
                      RM_LOG_D(final ? "took_s" : "eta_s", final ? t : eta));
    }
}

void rm_progress_update(rm_progress_t *p, uint64_t done) {
    double t = rm_progress_elapsed(p);
    publish(p, done, t > 0 ? (double)done / t : 0);
    if (t - p->last_print >= (p->tty ? 0.5 : 5.0)) {
        p->last_print = t;
        print(p, done, false);
    }
}

double rm_progress_end(rm_progress_t *p, uint64_t done) {
    print(p, done, true);
    return rm_progress_elapsed(p);
}
