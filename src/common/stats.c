/*
 * Name tables of every metric label (results, sink error kinds, rebuild
 * phases, event types, invalid reasons), generated from the X-macros in
 * include/readmodel/stats.h and event.h, and the flush histograms' bounds.
 * They live here, below every layer, so the exporter, the workers, the
 * decoder and the admin commands use one copy.
 */
#include "readmodel/stats.h"

#include <sched.h>
#include <string.h>

static const char *const result_names[] = {
#define RM_RESULT_NAME(n, s) s,
    RM_RESULT_MAP(RM_RESULT_NAME)
#undef RM_RESULT_NAME
};

static const char *const sink_error_names[] = {
#define RM_SINK_ERROR_NAME(n, s) s,
    RM_SINK_ERROR_MAP(RM_SINK_ERROR_NAME)
#undef RM_SINK_ERROR_NAME
};

static const char *const phase_names[] = {
#define RM_PHASE_NAME(n, s) s,
    RM_REBUILD_PHASE_MAP(RM_PHASE_NAME)
#undef RM_PHASE_NAME
};

static const char *const type_names[RM_EV__COUNT] = {
#define RM_EV_NAME(name, str) str,
    RM_EVENT_TYPE_MAP(RM_EV_NAME)
#undef RM_EV_NAME
};

static const char *const reason_names[RM_REASON__COUNT] = {
#define RM_REASON_NAME(name, str) str,
    RM_REASON_MAP(RM_REASON_NAME)
#undef RM_REASON_NAME
};

const double rm_flush_seconds_bounds[RM_FLUSH_SECONDS_BUCKETS] = {0.001, 0.005, 0.01, 0.025, 0.05,
                                                                  0.1,   0.25,  1,    5};
const double rm_flush_size_bounds[RM_FLUSH_SIZE_BUCKETS] = {1, 10, 100, 1000, 10000, 100000};

const char *rm_result_name(rm_result_t r) {
    return (unsigned)r < RM_RESULT__COUNT ? result_names[r] : "unknown";
}

const char *rm_sink_error_name(rm_sink_error_t k) {
    return (unsigned)k < RM_SINK_ERROR__COUNT ? sink_error_names[k] : "unknown";
}

const char *rm_rebuild_phase_name(rm_rebuild_phase_t phase) {
    return (unsigned)phase < RM_PHASE__COUNT ? phase_names[phase] : "unknown";
}

const char *rm_event_type_name(rm_event_type_t t) {
    return (unsigned)t < RM_EV__COUNT ? type_names[t] : "unknown";
}

const char *rm_reason_name(rm_reason_t r) {
    return (unsigned)r < RM_REASON__COUNT ? reason_names[r] : "unknown";
}

void rm_stats_observe_flush(rm_stats_t *st, double seconds, size_t n) {
    int b = 0;
    while (b < RM_FLUSH_SECONDS_BUCKETS && seconds > rm_flush_seconds_bounds[b])
        b++;
    atomic_fetch_add_explicit(&st->flush_seconds_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->flush_seconds_sum_us, (uint64_t)(seconds * 1e6),
                              memory_order_relaxed);
    b = 0;
    while (b < RM_FLUSH_SIZE_BUCKETS && (double)n > rm_flush_size_bounds[b])
        b++;
    atomic_fetch_add_explicit(&st->flush_size_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->flush_size_sum, n, memory_order_relaxed);
}

int rm_partition_out_of_range(rm_partition_obs_t *o) {
    long long cp = atomic_load(&o->checkpoint), end = atomic_load(&o->end),
              lo = atomic_load(&o->earliest);
    if (cp >= 0 && end >= 0 && cp > end)
        return 1;
    if (cp >= 0 && lo >= 0 && cp < lo)
        return -1;
    return 0;
}

/* The node block's spin lock: held only for a copy of about 1 KiB. */
static void nodes_lock(rm_sink_nodes_t *b) {
    int free_ = 0;
    while (!atomic_compare_exchange_weak_explicit(&b->lock, &free_, 1, memory_order_acquire,
                                                  memory_order_relaxed)) {
        free_ = 0;
        sched_yield();
    }
}

static void nodes_unlock(rm_sink_nodes_t *b) {
    atomic_store_explicit(&b->lock, 0, memory_order_release);
}

void rm_stats_set_nodes(rm_stats_t *st, const rm_sink_node_t *nodes, int n) {
    rm_sink_nodes_t *b = &st->nodes;
    if (n > RM_SINK_NODES_MAX)
        n = RM_SINK_NODES_MAX;
    nodes_lock(b);
    b->n = n < 0 ? 0 : n;
    for (int i = 0; i < b->n; i++) {
        b->node[i] = nodes[i];
        b->node[i].name[RM_SINK_NODE_NAME - 1] = '\0';
    }
    nodes_unlock(b);
}

int rm_stats_get_nodes(rm_stats_t *st, rm_sink_node_t *out, int cap) {
    rm_sink_nodes_t *b = &st->nodes;
    nodes_lock(b);
    int n = b->n < cap ? b->n : cap;
    if (n > 0)
        memcpy(out, b->node, (size_t)n * sizeof(*out));
    nodes_unlock(b);
    return n < 0 ? 0 : n;
}
