/* Progress of long work: a live line on a terminal, else a log line every 5 s. */
#ifndef READMODEL_PROGRESS_H
#define READMODEL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

typedef struct {
    const char *phase;
    uint64_t total;
    struct timespec start;
    double last_print;
    bool tty;
} rm_progress_t;

void rm_progress_begin(rm_progress_t *p, const char *phase, uint64_t total);
/* Prints when due (every 0.5 s on a terminal, 5 s otherwise). */
void rm_progress_update(rm_progress_t *p, uint64_t done);
/* Final line of the phase; returns its duration in seconds. */
double rm_progress_end(rm_progress_t *p, uint64_t done);
double rm_progress_elapsed(const rm_progress_t *p);

#endif
