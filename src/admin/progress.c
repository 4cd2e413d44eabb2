/* Progress reporting for rebuild and verify (see progress.h). */
#include "progress.h"
#include "readmodel/log.h"

#include <stdio.h>
#include <unistd.h>

double rm_progress_elapsed(const rm_progress_t *p) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - p->start.tv_sec) + (double)(now.tv_nsec - p->start.tv_nsec) / 1e9;
}

void rm_progress_begin(rm_progress_t *p, const char *phase, uint64_t total) {
    p->phase = phase;
    p->total = total;
    clock_gettime(CLOCK_MONOTONIC, &p->start);
    p->last_print = 0;
    p->tty = isatty(STDERR_FILENO);
}

static void print(rm_progress_t *p, uint64_t done, bool final) {
    double t = rm_progress_elapsed(p);
    double rate = t > 0 ? (double)done / t : 0;
    double eta = rate > 0 && p->total > done ? (double)(p->total - done) / rate : 0;
    double pct = p->total ? 100.0 * (double)done / (double)p->total : 100.0;
    if (p->tty) {
        fprintf(stderr, "\r%-8s %llu/%llu (%.1f%%) %.0f/s ETA %.0fs   %s", p->phase,
                (unsigned long long)done, (unsigned long long)p->total, pct, rate, eta,
                final ? "\n" : "");
        fflush(stderr);
    } else {
        rm_info("%s: %llu/%llu (%.1f%%), %.0f/s, %s %.0fs", p->phase, (unsigned long long)done,
                (unsigned long long)p->total, pct, rate, final ? "took" : "ETA", final ? t : eta);
    }
}

void rm_progress_update(rm_progress_t *p, uint64_t done) {
    double t = rm_progress_elapsed(p);
    if (t - p->last_print >= (p->tty ? 0.5 : 5.0)) {
        p->last_print = t;
        print(p, done, false);
    }
}

double rm_progress_end(rm_progress_t *p, uint64_t done) {
    print(p, done, true);
    return rm_progress_elapsed(p);
}
