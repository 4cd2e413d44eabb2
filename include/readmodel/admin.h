/*
 * Operator commands on a read model: rebuild, verify, status, over every
 * sink the command targets. Each returns an rm_err_t (never exits):
 *   RM_ERR_OK          done (verify: identical)
 *   RM_ERR_DRIFT       verify found differences
 *   RM_ERR_TRUNCATED   the log starts above offset 0 and
 *                      --allow-truncated-history was not given
 *   RM_ERR_LEASE_HELD  rebuild: another rebuild holds the lease
 *   RM_ERR_INVAL       bad usage (e.g. --metrics-addr cannot be bound)
 *   anything else      the work failed (logged); for verify: could not
 *                      compare
 * src/cli maps them to the exit codes documented in --help, once.
 *
 * Thread-safety: call from one thread (the command's main thread); each
 * command starts and joins its own threads.
 */
#ifndef READMODEL_ADMIN_H
#define READMODEL_ADMIN_H

#include "readmodel/config.h"
#include "readmodel/error.h"

rm_err_t rm_rebuild_main(const rm_config_t *cfg);
rm_err_t rm_verify_main(const rm_config_t *cfg);
rm_err_t rm_status_main(const rm_config_t *cfg);

#endif
