/*
 * The process's stop token: one C11 atomic, set by a signal handler (SIGINT,
 * SIGTERM), by serve's main loop (caught up) or by a worker that failed for
 * good, and read by every long-running loop (workers, replay, rebuild
 * writers, tools). A lock-free atomic_int is both thread-safe and
 * async-signal-safe, which a `volatile sig_atomic_t` shared between threads
 * is not.
 *
 * Thread-safety: every function is thread-safe and async-signal-safe.
 */
#ifndef READMODEL_STOP_H
#define READMODEL_STOP_H

#include <stdbool.h>

/* Asks everything to finish its current step and stop. */
void rm_stop_request(void);
/* True until a stop was requested. */
bool rm_running(void);
/* Whether the stop came from a signal (exit code 1 for tools that were cut
 * short, rather than 0). */
void rm_stop_by_signal(void);
bool rm_stopped_by_signal(void);
/* Clears the token; for tests that run several commands in one process. */
void rm_stop_reset(void);

#endif
