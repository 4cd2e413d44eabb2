/*
 * Pieces rebuild and verify share across targets: the plan printout, the
 * replay with progress, the list of replayed practitioners, the lease
 * holder's name, the thread that renews a lease while the work runs, and
 * the per-partition line of `status`.
 */
#include "admin_internal.h"
#include "progress.h"
#include "readmodel/log.h"
#include "readmodel/stop.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

pract_t **rm_admin_collect(rm_replay_t *r, size_t *n) {
    size_t total = 0;
    for (int p = 0; p < r->partitions; p++)
        total += r->maps[p].count;
    pract_t **all = malloc((total ? total : 1) * sizeof(*all));
    *n = 0;
    for (int p = 0; all && p < r->partitions; p++)
        for (uint32_t i = 0; i < r->maps[p].capacity; i++)
            if (r->maps[p].slots[i])
                all[(*n)++] = r->maps[p].slots[i];
    return all;
}

void rm_admin_holder(char *out, size_t cap) {
    char host[128] = "host";
    gethostname(host, sizeof(host) - 1);
    snprintf(out, cap, "%s:%d:%lld", host, (int)getpid(), (long long)time(NULL));
}

static void *renew_main(void *arg) {
    rm_renewer_t *rn = arg;
    while (!atomic_load(&rn->stop)) {
        /* Short naps: rm_renewer_stop() waits for this thread at the end of
         * every rebuild. */
        for (int i = 0; i < rn->ttl_ms / 3 / 10 && !atomic_load(&rn->stop); i++)
            usleep(10 * 1000);
        if (atomic_load(&rn->stop))
            break;
        bool ok = false;
        if (rn->renew(rn->sink, rn->holder, rn->ttl_ms, &ok) == RM_ERR_OK && !ok) {
            rm_error("the %s rebuild lease was lost (expired or taken); stopping", rn->target);
            atomic_store(&rn->lost, 1);
            break;
        }
    }
    return NULL;
}

rm_err_t rm_renewer_start(rm_renewer_t *rn) {
    atomic_store(&rn->stop, 0);
    atomic_store(&rn->lost, 0);
    rn->started = pthread_create(&rn->thread, NULL, renew_main, rn) == 0;
    return rn->started ? RM_ERR_OK : RM_ERR_NOMEM;
}

bool rm_renewer_stop(rm_renewer_t *rn) {
    atomic_store(&rn->stop, 1);
    if (rn->started)
        pthread_join(rn->thread, NULL);
    rn->started = false;
    return !atomic_load(&rn->lost);
}

rm_err_t rm_admin_replay(const rm_config_t *cfg, rm_replay_t *r) {
    rm_err_t e = rm_replay_start(cfg, r);
    if (e != RM_ERR_OK) {
        rm_replay_join(r);
        return e;
    }
    rm_progress_t pr;
    rm_progress_begin(&pr, RM_PHASE_REPLAY, r->total);
    while (atomic_load(&r->done) < r->total && !atomic_load(&r->failed) && rm_running()) {
        usleep(10 * 1000); /* the write phase starts at most 10 ms after the replay */
        rm_progress_update(&pr, atomic_load(&r->done));
    }
    e = rm_replay_join(r);
    rm_progress_end(&pr, atomic_load(&r->done));
    if (e != RM_ERR_OK || !rm_running())
        rm_error("replay did not complete%s", rm_running() ? "" : " (interrupted)");
    return e != RM_ERR_OK ? e : rm_running() ? RM_ERR_OK : RM_ERR_IO;
}

void rm_admin_log_events(const rm_replay_t *r) {
    const rm_stats_t *st = &r->stats;
    rm_log_fields(RM_LOG_INFO, NULL, "replayed events",
                  RM_LOG_I("applied", atomic_load(&st->events[RM_RESULT_APPLIED])),
                  RM_LOG_I("invalid", atomic_load(&st->events[RM_RESULT_INVALID])),
                  RM_LOG_I("ignored", atomic_load(&st->events[RM_RESULT_IGNORED])),
                  RM_LOG_I("tombstone", atomic_load(&st->events[RM_RESULT_TOMBSTONE])),
                  RM_LOG_I("anomalies", atomic_load(&st->anomalies)));
}
