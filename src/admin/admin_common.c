/*
 * Pieces rebuild and verify share across targets: the list of replayed
 * practitioners, the lease holder's name, the thread that renews a lease
 * while the work runs, and the per-partition line of `status`.
 */
#include "admin_internal.h"

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

int rm_renewer_start(rm_renewer_t *rn) {
    atomic_store(&rn->stop, 0);
    atomic_store(&rn->lost, 0);
    rn->started = pthread_create(&rn->thread, NULL, renew_main, rn) == 0;
    return rn->started ? 0 : -1;
}

bool rm_renewer_stop(rm_renewer_t *rn) {
    atomic_store(&rn->stop, 1);
    if (rn->started)
        pthread_join(rn->thread, NULL);
    rn->started = false;
    return !atomic_load(&rn->lost);
}

void rm_admin_print_partition(const rm_replay_t *r, int p, int64_t checkpoint) {
    char cps[24] = "none", lag[24];
    if (checkpoint >= 0)
        snprintf(cps, sizeof(cps), "%lld", (long long)checkpoint);
    snprintf(lag, sizeof(lag), "%lld",
             (long long)(r->high[p] - (checkpoint >= 0 ? checkpoint : r->low[p])));
    printf("%-10d %12lld %12lld %12s %10s%s\n", p, (long long)r->low[p], (long long)r->high[p], cps,
           lag, r->low[p] > 0 ? "  (truncated history)" : "");
}
