/*
 * A real Redis Cluster for tests (Debian's redis-server and redis-cli):
 * masters with one replica each on free loopback ports, persistence off,
 * created with `redis-cli --cluster create`, optionally over TLS
 * (--tls-cluster yes, --tls-auth-clients yes, certificates made here with
 * openssl). Every node also listens on a plain port so the test can read
 * the model with hiredis 0.14, which has no TLS.
 *
 * Each server runs in its own process group, killed at exit (also when an
 * assertion fails). Not thread-safe: one cluster per test program.
 */
#ifndef RM_REDIS_CLUSTER_REAL_H
#define RM_REDIS_CLUSTER_REAL_H

#include "ref_model.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <sys/types.h>

#define RC_MAX_NODES 8

typedef struct {
    int n;
    int port[RC_MAX_NODES];     /* plain */
    int tls_port[RC_MAX_NODES]; /* 0 without TLS */
    pid_t pid[RC_MAX_NODES];
    bool tls;
    char dir[128];
    char url[256]; /* readmodel's --redis: a node's plain or TLS port */
    /* TLS: files in dir */
    char ca[200], cert[200], key[200], client_cert[200], client_key[200];
    double start_s; /* seconds to start and form the cluster */
} rc_cluster_t;

/* Starts masters x (1 + replicas) nodes and forms the cluster (masters 1
 * and replicas 0: one server, cluster mode off); with tls,
 * makes a CA, a server certificate (127.0.0.1, localhost) and a client
 * certificate, and adds an ACL user "app" with password "app-secret".
 * 0 on success; -1 with a message naming `bash scripts/setup.sh --real`
 * when redis-server or redis-cli is missing. */
int rc_start(rc_cluster_t *c, int masters, int replicas, bool tls);
/* Kills every node and removes the directory. */
void rc_stop(rc_cluster_t *c);
/* A hiredis connection to node i's plain port, or NULL. */
redisContext *rc_connect(const rc_cluster_t *c, int i);
/* Indexes of the nodes that are masters owning slots now (asked of any
 * live node); returns their number. */
int rc_masters(const rc_cluster_t *c, int *idx, int max);
/* The cluster node id of node i ("" when it does not answer). */
void rc_node_id(const rc_cluster_t *c, int i, char *out, size_t cap);
/* kill -9 of node i. */
void rc_kill(rc_cluster_t *c, int i);
/* Polls until every live node reports cluster_state:ok and the masters
 * cover all slots; false after timeout_s. */
bool rc_wait_ok(const rc_cluster_t *c, int timeout_s);
/* Polls until every live replica has finished its sync with its master
 * (INFO replication: master_link_status:up); false after timeout_s. A
 * replica that never synced refuses to fail over ("Disconnected from
 * master for longer than allowed", cluster-replica-validity-factor), so a
 * master killed before that leaves its slots without a master for good.
 * rc_start waits for this. */
bool rc_wait_replicas(const rc_cluster_t *c, int timeout_s);
/* The index of a live replica of node `master`, or -1. */
int rc_replica_of(const rc_cluster_t *c, int master);
/* Starts `redis-cli --cluster reshard` moving nslots from node `from` to
 * node `to`; returns its pid (wait with e2e_wait). */
pid_t rc_reshard(const rc_cluster_t *c, int from, int to, int nslots);
/* GET key on whichever master owns it (following MOVED); NULL when absent
 * or unreachable. Caller frees with freeReplyObject. */
redisReply *rc_get(const rc_cluster_t *c, const char *key);
/* Compares the union of every master's rm:avail:* keys with the reference:
 * the number of differences (missing, wrong, extra), printed. */
int rc_compare(const rc_cluster_t *c, const ref_model_t *ref);
/* Resident memory of every node, in MiB. */
double rc_rss_mib(const rc_cluster_t *c);

#endif
