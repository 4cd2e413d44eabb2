/* The stop token (include/readmodel/stop.h). */
#include "readmodel/stop.h"

#include <stdatomic.h>

static atomic_int stop_requested;
static atomic_int by_signal;

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the stop token must be lock-free (signal handlers)");

void rm_stop_request(void) {
    atomic_store_explicit(&stop_requested, 1, memory_order_release);
}

bool rm_running(void) {
    return atomic_load_explicit(&stop_requested, memory_order_acquire) == 0;
}

void rm_stop_by_signal(void) {
    atomic_store_explicit(&by_signal, 1, memory_order_release);
    rm_stop_request();
}

bool rm_stopped_by_signal(void) {
    return atomic_load_explicit(&by_signal, memory_order_acquire) != 0;
}

void rm_stop_reset(void) {
    atomic_store(&by_signal, 0);
    atomic_store(&stop_requested, 0);
}
