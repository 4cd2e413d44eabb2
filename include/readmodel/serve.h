/*
 * `readmodel serve`: one pipeline per configured sink (Redis, and the
 * OpenSearch index with --opensearch), each a set of consumer workers in
 * the group `<group>-<sink>`, that keep the read models in step with the
 * booking log.
 *
 * Flow per worker: poll a batch -> decode -> project (per-partition state)
 * -> flush dirty practitioners (sink) -> checkpoint (sink, compare-and-set)
 * -> commit offsets to Kafka (for lag tools). Each worker thread is its own
 * consumer in its pipeline's group, so the partitions it is assigned are
 * owned by that thread alone and rebalance callbacks run on it.
 *
 * Thread-safety: call rm_serve_run from one thread; stop it with
 * rm_stop_request() (readmodel/stop.h) from any thread or a signal handler.
 */
#ifndef READMODEL_SERVE_H
#define READMODEL_SERVE_H

#include "readmodel/config.h"
#include "readmodel/error.h"
#include "readmodel/stats.h"

/* Runs serve until rm_stop_request() (or, with until_caught_up, until the
 * end of the log). Returns RM_ERR_OK on a clean stop, RM_ERR_IO on a
 * runtime failure and RM_ERR_INVAL on a configuration the clients rejected
 * (both logged). stats is the first pipeline's block (the others are
 * chained to it while serve runs); NULL: serve keeps its own. */
rm_err_t rm_serve_run(const rm_config_t *cfg, rm_stats_t *stats);

#endif
