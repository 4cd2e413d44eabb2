/*
 * Operator commands on a read model: rebuild, verify, status. Each returns
 * the process exit code documented in its --help (never exits itself).
 *
 * Thread-safety: call from one thread (the command's main thread); each
 * command starts and joins its own threads.
 */
#ifndef READMODEL_ADMIN_H
#define READMODEL_ADMIN_H

#include "readmodel/config.h"
#include "readmodel/stats.h"

enum {
    RM_EXIT_OK = 0,
    RM_EXIT_FAILED = 1, /* rebuild failed / verify found drift */
    RM_EXIT_USAGE = 2,  /* bad usage; for verify also "could not compare" */
    RM_EXIT_TRUNCATED = 3,
    RM_EXIT_LEASE_HELD = 4,
};

int rm_rebuild_main(const rm_config_t *cfg);
int rm_verify_main(const rm_config_t *cfg);
int rm_status_main(const rm_config_t *cfg);

#endif
