/*
 * Clocks. Durations (heartbeats, backoff, deadlines, stopwatches) are
 * measured on the monotonic clock, so an NTP step never fails /livez or
 * stretches a backoff; the wall clock is only for timestamps that leave
 * the process (records, Kafka message times, metrics with a Unix time).
 *
 * Thread-safety: every function is thread-safe and async-signal-safe.
 */
#ifndef READMODEL_CLOCK_H
#define READMODEL_CLOCK_H

/* Wall clock (CLOCK_REALTIME), milliseconds since the Unix epoch. */
long long rm_wall_ms(void);
/* Monotonic clock (CLOCK_MONOTONIC), milliseconds since an arbitrary point. */
long long rm_mono_ms(void);
/* Monotonic clock in seconds, for stopwatches. */
double rm_mono_s(void);
/* Sleeps ms milliseconds (0 or less: returns at once). */
void rm_sleep_ms(int ms);

#endif
