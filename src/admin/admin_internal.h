/* Shared by the rebuild/verify implementations of each target. */
#ifndef READMODEL_ADMIN_INTERNAL_H
#define READMODEL_ADMIN_INTERNAL_H

#include "../consumers/replay.h"

#include <stdio.h>

/* Runs the replay with progress. 0 when every partition reached its end. */
int rm_admin_replay(const rm_serve_config_t *cfg, rm_replay_t *r);
void rm_admin_log_events(const rm_replay_t *r);
void rm_admin_print_plan(const rm_serve_config_t *cfg, const rm_replay_t *r, FILE *out);

/* rebuild / verify of the OpenSearch index after the plan was accepted
 * (rebuild_opensearch.c). Return the command's exit code. */
int rm_os_rebuild_run(const rm_serve_config_t *cfg, rm_replay_t *r, int truncated);
int rm_os_verify_run(const rm_serve_config_t *cfg, rm_replay_t *r);
int rm_os_status_run(const rm_serve_config_t *cfg, rm_replay_t *r);

#endif
