/*
 * The process's clocks (see include/readmodel/clock.h for which to use
 * where). One place, so no module grows its own.
 */
#include "readmodel/clock.h"

#include <time.h>

static long long ms_of(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long rm_wall_ms(void) {
    return ms_of(CLOCK_REALTIME);
}

long long rm_mono_ms(void) {
    return ms_of(CLOCK_MONOTONIC);
}

double rm_mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void rm_sleep_ms(int ms) {
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) /* EINTR: sleep the rest */
        ;
}
