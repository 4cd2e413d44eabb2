/*
 * The fake sink of the worker tests (see fake_sink.h): an in-memory store
 * with fault knobs behind an rm_sink_ops_t, checking as it goes that every
 * checkpoint covers only stored events.
 */
#include "fake_sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    fake_store_t *st;
    int id;
    char err[160];
} fake_handle_t;

static fake_store_t *current_store;
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;

void fake_sink_use(fake_store_t *st) {
    pthread_mutex_lock(&open_mu);
    current_store = st;
    pthread_mutex_unlock(&open_mu);
}

fake_store_t *fake_sink_new(void) {
    fake_store_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    pthread_mutex_init(&st->mu, NULL);
    for (int p = 0; p < FAKE_MAX_PARTS; p++) {
        st->cp[p] = -1;
        st->last_writer[p] = -1;
    }
    st->moved_partition = -1;
    st->refused_partition = -1;
    return st;
}

void fake_sink_clear(fake_store_t *st) {
    for (int i = 0; i < st->npr; i++)
        free(st->pr[i].state);
    memset(st->pr, 0, sizeof(st->pr));
    st->npr = 0;
}

void fake_sink_free(fake_store_t *st) {
    if (!st)
        return;
    fake_sink_clear(st);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

void fake_sink_lock(fake_store_t *st) {
    pthread_mutex_lock(&st->mu);
}

void fake_sink_unlock(fake_store_t *st) {
    pthread_mutex_unlock(&st->mu);
}

void fake_sink_expect(fake_store_t *st, int32_t partition, int64_t offset, const char *pid) {
    if (partition >= 0 && partition < FAKE_MAX_PARTS && offset >= 0 && offset < FAKE_MAX_OFFS)
        st->ev_pid[partition][offset] = pid;
}

static fake_pract_t *find_n(fake_store_t *st, const char *pid, size_t len) {
    for (int i = 0; i < st->npr; i++)
        if (strlen(st->pr[i].pid) == len && memcmp(st->pr[i].pid, pid, len) == 0)
            return &st->pr[i];
    return NULL;
}

fake_pract_t *fake_sink_find(fake_store_t *st, const char *pid) {
    return find_n(st, pid, strlen(pid));
}

static fake_pract_t *slot_n(fake_store_t *st, const char *pid, size_t len) {
    fake_pract_t *p = find_n(st, pid, len);
    if (p || st->npr == FAKE_MAX_PRACT || len >= FAKE_PID_CAP)
        return p;
    p = &st->pr[st->npr++];
    memset(p, 0, sizeof(*p));
    memcpy(p->pid, pid, len);
    p->partition = -1;
    p->fence = -1;
    return p;
}

int fake_sink_put(fake_store_t *st, const char *pid, int32_t partition, int64_t fence,
                  const char *state, size_t len) {
    fake_pract_t *p = slot_n(st, pid, strlen(pid));
    char *copy = malloc(len ? len : 1);
    if (!p || !copy) {
        free(copy);
        return -1;
    }
    memcpy(copy, state, len);
    free(p->state);
    p->state = copy;
    p->state_len = len;
    p->partition = partition;
    p->fence = fence;
    return 0;
}

static void log_call(fake_store_t *st, fake_call_kind_t kind, int handle, int32_t partition,
                     int64_t value) {
    if (st->nlog < FAKE_MAX_LOG)
        st->log[st->nlog++] = (fake_call_t){kind, handle, partition, value};
}

/* ---- the ops ---- */

static bool configured(const rm_config_t *cfg) {
    (void)cfg;
    return true;
}

static void *fake_open(const rm_config_t *cfg, char *err, size_t errlen) {
    (void)cfg;
    pthread_mutex_lock(&open_mu);
    fake_store_t *st = current_store;
    pthread_mutex_unlock(&open_mu);
    fake_handle_t *h = st ? calloc(1, sizeof(*h)) : NULL;
    if (!h) {
        snprintf(err, errlen, "fake sink: %s", st ? "out of memory" : "no store");
        return NULL;
    }
    h->st = st;
    pthread_mutex_lock(&st->mu);
    h->id = st->handles_total++;
    st->handles_open++;
    pthread_mutex_unlock(&st->mu);
    return h;
}

static void fake_free(void *s) {
    fake_handle_t *h = s;
    if (!h)
        return;
    pthread_mutex_lock(&h->st->mu);
    h->st->handles_open--;
    pthread_mutex_unlock(&h->st->mu);
    free(h);
}

static const char *last_error(const void *s) {
    return ((const fake_handle_t *)s)->err;
}

static rm_err_t ping(void *s) {
    (void)s;
    return RM_ERR_OK;
}

static rm_err_t load(void *s, rm_sink_item_t *items, size_t n) {
    fake_handle_t *h = s;
    fake_store_t *st = h->st;
    rm_err_t rc = RM_ERR_OK;
    pthread_mutex_lock(&st->mu);
    st->load_calls++;
    for (size_t i = 0; i < n; i++) {
        fake_pract_t *p = find_n(st, items[i].pid, items[i].pid_len);
        items[i].partition = p ? p->partition : -1;
        items[i].fence = p ? p->fence : -1;
        items[i].corrupt = false;
        if (p && p->state) {
            int e = rm_avail_decode(items[i].st, p->state, p->state_len);
            if (e != 0) {
                snprintf(h->err, sizeof(h->err), "fake load: decode %s: %d", p->pid, e);
                rc = e == RM_ERR_CORRUPT ? RM_ERR_CORRUPT : RM_ERR_NOMEM;
                if (rc == RM_ERR_CORRUPT)
                    items[i].corrupt = true;
                else
                    break;
            }
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Counts the events of pid on partition stored by a write of (from, to]. */
static void count_applied(fake_store_t *st, const char *pid, int32_t partition, int64_t from,
                          int64_t to) {
    if (partition < 0 || partition >= FAKE_MAX_PARTS)
        return;
    for (int64_t off = from + 1; off <= to && off < FAKE_MAX_OFFS; off++)
        if (off >= 0 && st->ev_pid[partition][off] && strcmp(st->ev_pid[partition][off], pid) == 0)
            st->applied[partition][off]++;
}

static void note_writer(fake_store_t *st, int handle, int32_t partition) {
    if (partition < 0 || partition >= FAKE_MAX_PARTS || st->last_writer[partition] == handle)
        return;
    if (st->last_writer[partition] >= 0)
        st->owner_switches[partition]++;
    if (st->writers[partition] & (1u << (handle & 31)))
        st->owner_returns[partition]++;
    st->writers[partition] |= 1u << (handle & 31);
    st->last_writer[partition] = handle;
}

static rm_err_t flush(void *s, rm_sink_item_t *items, size_t n) {
    fake_handle_t *h = s;
    fake_store_t *st = h->st;
    pthread_mutex_lock(&st->mu);
    int delay = st->flush_delay_ms;
    pthread_mutex_unlock(&st->mu);
    if (delay > 0) {
        struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&st->mu);
    st->flush_calls++;
    if (st->lease[0])
        st->flushes_while_leased++;
    for (size_t i = 0; i < n; i++)
        items[i].written = items[i].stale = items[i].rejected = false;
    if (st->fail_flush > 0) {
        st->fail_flush--;
        st->flush_failed++;
        snprintf(h->err, sizeof(h->err), "fake flush: injected I/O error");
        pthread_mutex_unlock(&st->mu);
        return RM_ERR_IO;
    }
    /* Everything is encoded first, so an error writes nothing. */
    char **enc = calloc(n ? n : 1, sizeof(*enc));
    size_t *len = calloc(n ? n : 1, sizeof(*len));
    rm_err_t rc = enc && len ? RM_ERR_OK : RM_ERR_NOMEM;
    for (size_t i = 0; rc == RM_ERR_OK && i < n; i++)
        if (rm_avail_encode(items[i].st, &enc[i], &len[i]) != 0)
            rc = RM_ERR_NOMEM;
    for (size_t i = 0; rc == RM_ERR_OK && i < n; i++)
        if (!slot_n(st, items[i].pid, items[i].pid_len))
            rc = RM_ERR_NOMEM;
    if (rc != RM_ERR_OK) {
        for (size_t i = 0; enc && i < n; i++)
            free(enc[i]);
        free(enc);
        free(len);
        snprintf(h->err, sizeof(h->err), "fake flush: out of memory");
        st->flush_failed++;
        pthread_mutex_unlock(&st->mu);
        return rc;
    }
    bool refuse = st->refuse_items > 0 && n > 0;
    if (refuse)
        st->refuse_items--;
    size_t written = 0;
    for (size_t i = 0; i < n; i++) {
        rm_sink_item_t *it = &items[i];
        fake_pract_t *p = find_n(st, it->pid, it->pid_len);
        bool match = p->partition == it->expect_partition && p->fence == it->expect_fence;
        if ((refuse && i == 0) || (!it->force && !match)) {
            if (refuse && i == 0) {
                snprintf(st->refused_pid, sizeof(st->refused_pid), "%s", p->pid);
                st->refused_partition = it->partition;
                st->refused_expect = p->partition == it->partition ? p->fence : -1;
                st->refused_fence = it->fence;
                st->refused_cp = it->partition >= 0 && it->partition < FAKE_MAX_PARTS
                                     ? st->cp[it->partition]
                                     : -1;
            }
            free(enc[i]);
            continue;
        }
        note_writer(st, h->id, it->partition);
        count_applied(st, p->pid, it->partition, p->partition == it->partition ? p->fence : -1,
                      it->fence);
        free(p->state);
        p->state = enc[i];
        p->state_len = len[i];
        p->partition = it->partition;
        p->fence = it->fence;
        p->writes++;
        it->written = true;
        written++;
    }
    free(enc);
    free(len);
    st->flush_ok++;
    log_call(st, FAKE_CALL_FLUSH, h->id, -1, (int64_t)written);
    pthread_mutex_unlock(&st->mu);
    return RM_ERR_OK;
}

static bool part_ok(int32_t partition) {
    return partition >= 0 && partition < FAKE_MAX_PARTS;
}

static rm_err_t cp_get(void *s, const char *topic, int32_t partition, int64_t *next) {
    fake_handle_t *h = s;
    fake_store_t *st = h->st;
    (void)topic;
    pthread_mutex_lock(&st->mu);
    st->cp_get_calls++;
    rm_err_t rc = RM_ERR_OK;
    if (st->fail_cp_get > 0) {
        st->fail_cp_get--;
        snprintf(h->err, sizeof(h->err), "fake checkpoint_get: injected I/O error");
        rc = RM_ERR_IO;
    } else if (!part_ok(partition)) {
        rc = RM_ERR_INVAL;
    } else {
        *next = st->cp[partition];
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Every valid event of the partition below next is stored. */
static void check_covered(fake_store_t *st, int32_t partition, int64_t next) {
    for (int64_t off = 0; off < next && off < FAKE_MAX_OFFS; off++) {
        const char *pid = st->ev_pid[partition][off];
        if (!pid)
            continue;
        fake_pract_t *p = fake_sink_find(st, pid);
        if (!p || p->partition != partition || p->fence < off)
            st->cp_violations++;
    }
}

static rm_err_t cp_cas(void *s, const char *topic, int32_t partition, int64_t expected,
                       int64_t next, bool *ok, int64_t *current) {
    fake_handle_t *h = s;
    fake_store_t *st = h->st;
    (void)topic;
    pthread_mutex_lock(&st->mu);
    st->cas_calls++;
    rm_err_t rc = RM_ERR_OK;
    if (st->fail_cas > 0) {
        st->fail_cas--;
        snprintf(h->err, sizeof(h->err), "fake checkpoint_cas: injected I/O error");
        rc = RM_ERR_IO;
    } else if (!part_ok(partition)) {
        rc = RM_ERR_INVAL;
    } else if (st->cas_move_armed && next > st->cas_move_to) {
        /* A rebuild wrote another checkpoint. */
        st->cas_move_armed = false;
        st->cp[partition] = st->cas_move_to;
        st->moved_next = next;
        st->moved_partition = partition;
        st->cas_moved++;
        *ok = false;
        *current = st->cp[partition];
        log_call(st, FAKE_CALL_CAS_MOVED, h->id, partition, next);
    } else if (st->cp[partition] != expected) {
        st->cas_moved++;
        *ok = false;
        *current = st->cp[partition];
        log_call(st, FAKE_CALL_CAS_MOVED, h->id, partition, next);
    } else {
        check_covered(st, partition, next);
        note_writer(st, h->id, partition);
        st->cp[partition] = next;
        st->cas_ok++;
        *ok = true;
        log_call(st, FAKE_CALL_CAS_OK, h->id, partition, next);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static rm_err_t lease_get(void *s, char *holder, size_t cap, long long *ttl_ms) {
    fake_handle_t *h = s;
    pthread_mutex_lock(&h->st->mu);
    snprintf(holder, cap, "%s", h->st->lease);
    *ttl_ms = h->st->lease[0] ? 30000 : -1;
    pthread_mutex_unlock(&h->st->mu);
    return RM_ERR_OK;
}

static bool take_moved(void *s) {
    fake_handle_t *h = s;
    pthread_mutex_lock(&h->st->mu);
    bool moved = h->st->moved;
    h->st->moved = false;
    pthread_mutex_unlock(&h->st->mu);
    return moved;
}

static rm_err_t last_runs(void *s, rm_sink_runs_t *out) {
    (void)s;
    memset(out, 0, sizeof(*out));
    return RM_ERR_OK;
}

const rm_sink_ops_t fake_sink_ops = {
    .name = "fake",
    .title = "Fake",
    .profiles = false,
    .configured = configured,
    .open = fake_open,
    .free = fake_free,
    .last_error = last_error,
    .ping = ping,
    .ensure = NULL,
    .load = load,
    .flush = flush,
    .checkpoint_get = cp_get,
    .checkpoint_cas = cp_cas,
    .lease_get = lease_get,
    .take_moved = take_moved,
    .last_runs = last_runs,
};

/* ---- driving real workers (see fake_sink.h) ---- */

#include "readmodel/date.h"
#include "readmodel/gen.h"

#include <time.h>

unsigned long long fk_stat(const atomic_uint_least64_t *c) {
    return (unsigned long long)atomic_load(c);
}

static int32_t partition_of(const char *key, size_t len, int nparts) {
    unsigned h = 0;
    for (size_t i = 0; i < len; i++)
        h = h * 31 + (unsigned char)key[i];
    return (int32_t)(h % (unsigned)nparts);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    fk_msg_t *msg = m->_private;
    if (!m->err && m->partition == msg->partition && m->offset == msg->offset)
        msg->delivered = true;
    else
        fprintf(stderr, "fk: delivery of %.*s: %s partition %d offset %lld (expected %d %lld)\n",
                (int)msg->klen, msg->key, rd_kafka_err2str(m->err), (int)m->partition,
                (long long)m->offset, (int)msg->partition, (long long)msg->offset);
}

static int generate(fk_t *t, int practitioners, double invalid_ratio) {
    rm_gen_config_t gc = {.seed = 7,
                          .practitioners = practitioners,
                          .days = 1,
                          .invalid_ratio = invalid_ratio,
                          .ignored_ratio = 0};
    rm_date_parse("2026-11-23", 10, &gc.start_day);
    rm_gen_t *g = rm_gen_new(&gc);
    rm_decoder_t *dec = rm_decoder_new();
    int rc = g && dec ? 0 : -1;
    size_t cap = 0;
    int64_t next[FAKE_MAX_PARTS] = {0};
    rm_gen_msg_t m;
    while (rc == 0 && rm_gen_next(g, &m)) {
        if (t->n == cap) {
            cap = cap ? cap * 2 : 256;
            fk_msg_t *nm = realloc(t->msgs, cap * sizeof(*nm));
            if (!nm) {
                rc = -1;
                break;
            }
            t->msgs = nm;
        }
        fk_msg_t *x = &t->msgs[t->n];
        memset(x, 0, sizeof(*x));
        x->key = malloc(m.key_len + 1);
        x->val = malloc(m.value_len + 1);
        if (!x->key || !x->val) {
            free(x->key);
            free(x->val);
            rc = -1;
            break;
        }
        t->n++;
        memcpy(x->key, m.key, m.key_len);
        memcpy(x->val, m.value, m.value_len);
        x->klen = m.key_len;
        x->vlen = m.value_len;
        x->partition = partition_of(m.key, m.key_len, t->nparts);
        x->offset = next[x->partition]++;
        if (x->offset >= FAKE_MAX_OFFS) {
            rc = -1;
            break;
        }
        rm_event_t ev;
        rm_reject_t why;
        if (rm_decode(dec, x->key, x->klen, x->val, x->vlen, &ev, &why) == RM_DECODE_OK &&
            ev.practitioner_id.len < FAKE_PID_CAP) {
            x->valid = true;
            memcpy(x->pid, ev.practitioner_id.ptr, ev.practitioner_id.len);
            t->nvalid++;
        }
    }
    for (size_t i = 0; rc == 0 && i < t->n; i++) /* msgs no longer moves */
        if (t->msgs[i].valid)
            fake_sink_expect(t->fs, t->msgs[i].partition, t->msgs[i].offset, t->msgs[i].pid);
    rm_gen_free(g);
    rm_decoder_free(dec);
    return rc;
}

int fk_setup(fk_t *t, rm_mock_kafka_t *mk, const char *name, int nparts, int practitioners,
             double invalid_ratio, size_t max_batch) {
    memset(t, 0, sizeof(*t));
    snprintf(t->topic, sizeof(t->topic), "%s", name);
    snprintf(t->group, sizeof(t->group), "g-%s", name);
    t->nparts = nparts;
    if (nparts > FAKE_MAX_PARTS || rm_mock_kafka_create_topic(mk, t->topic, nparts) != 0)
        return -1;
    if (!(t->fs = fake_sink_new()) || !(t->stats = calloc(1, sizeof(*t->stats))))
        return -1;
    fake_sink_use(t->fs);
    if (generate(t, practitioners, invalid_ratio) != 0)
        return -1;
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", rm_mock_kafka_bootstraps(mk), err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "linger.ms", "2", err, sizeof(err));
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    if (!(t->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)))) {
        fprintf(stderr, "fk: producer: %s\n", err);
        return -1;
    }
    /* A short session so the mock's rebalances (a joining member waits for
     * the others to rejoin) take a second or two, not tens. */
    static char *props[] = {"session.timeout.ms=6000", "heartbeat.interval.ms=200",
                            "fetch.wait.max.ms=50"};
    t->cfg = (rm_config_t){.brokers = (char *)rm_mock_kafka_bootstraps(mk),
                           .topic = t->topic,
                           .group = t->group,
                           .workers = 1,
                           .kafka = props,
                           .n_kafka = sizeof(props) / sizeof(props[0]),
                           .max_batch = max_batch,
                           .cache_limit = 10000,
                           .shutdown_timeout_s = 2};
    t->stats->workers = 1;
    atomic_store(&t->stats->sink_write_ok, 1);
    t->sh = (rm_serve_shared_t){
        .cfg = &t->cfg, .ops = &fake_sink_ops, .stats = t->stats, .topic_partitions = nparts};
    return 0;
}

int fk_produce(fk_t *t, size_t from, size_t to) {
    for (size_t i = from; i < to && i < t->n; i++) {
        fk_msg_t *x = &t->msgs[i];
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(
                    t->prod, RD_KAFKA_V_TOPIC(t->topic), RD_KAFKA_V_PARTITION(x->partition),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(x->key, x->klen),
                    RD_KAFKA_V_VALUE(x->val, x->vlen), RD_KAFKA_V_OPAQUE(x), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(t->prod, 10);
        if (err) {
            fprintf(stderr, "fk: produce: %s\n", rd_kafka_err2str(err));
            return -1;
        }
    }
    for (int tries = 0; rd_kafka_outq_len(t->prod) > 0 && tries < 30; tries++)
        rd_kafka_flush(t->prod, 1000);
    for (size_t i = from; i < to && i < t->n; i++) {
        if (!t->msgs[i].delivered)
            return -1;
        if (t->msgs[i].offset + 1 > t->end[t->msgs[i].partition])
            t->end[t->msgs[i].partition] = t->msgs[i].offset + 1;
    }
    if (to > t->produced)
        t->produced = to;
    return 0;
}

int fk_worker_start(fk_t *t, int i, void *(*start)(void *)) {
    t->inited[i] = true;
    if (rm_worker_init(&t->w[i], i, &t->sh) != 0)
        return -1;
    if (pthread_create(&t->w[i].thread, NULL, start, &t->w[i]) != 0)
        return -1;
    t->running[i] = true;
    return 0;
}

void fk_workers_stop(fk_t *t) {
    rm_stop_request();
    for (int i = 0; i < 2; i++)
        if (t->running[i]) {
            pthread_join(t->w[i].thread, NULL);
            t->running[i] = false;
        }
    for (int i = 0; i < 2; i++)
        if (t->inited[i]) {
            rm_worker_destroy(&t->w[i]);
            t->inited[i] = false;
        }
    rm_stop_reset();
}

void fk_teardown(fk_t *t) {
    fk_workers_stop(t);
    if (t->prod)
        rd_kafka_destroy(t->prod);
    for (size_t i = 0; i < t->n; i++) {
        free(t->msgs[i].key);
        free(t->msgs[i].val);
    }
    free(t->msgs);
    fake_sink_use(NULL);
    fake_sink_free(t->fs);
    free(t->stats);
    memset(t, 0, sizeof(*t));
}

bool fk_wait(fk_t *t, bool (*pred)(fk_t *), int timeout_ms) {
    struct timespec ts = {0, 10 * 1000000L};
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (pred(t))
            return true;
        nanosleep(&ts, NULL);
    }
    return pred(t);
}

bool fk_caught_up(fk_t *t) {
    fake_sink_lock(t->fs);
    bool ok = true;
    for (int p = 0; p < t->nparts; p++)
        ok = ok && t->fs->cp[p] == t->end[p];
    fake_sink_unlock(t->fs);
    return ok;
}

size_t fk_count_valid(const fk_t *t, int32_t p, int64_t from, int64_t to) {
    size_t n = 0;
    for (size_t i = 0; i < t->produced; i++)
        n += t->msgs[i].valid && t->msgs[i].partition == p && t->msgs[i].offset >= from &&
             t->msgs[i].offset < to;
    return n;
}

/* The reference state of every practitioner from the valid produced events
 * below limit[p]: refs[i] for the i-th distinct pid in pids[], fences[i]
 * its last offset. Returns the number of practitioners, -1 on ENOMEM. */
typedef struct {
    const char *pid;
    int32_t partition;
    int64_t fence;
    rm_avail_t st;
} ref_t;

static int build_refs(fk_t *t, const int64_t *limit, ref_t **out) {
    ref_t *refs = calloc(t->nvalid + 1, sizeof(*refs));
    rm_decoder_t *dec = rm_decoder_new();
    int n = 0;
    if (!refs || !dec) {
        free(refs);
        rm_decoder_free(dec);
        return -1;
    }
    for (size_t i = 0; i < t->produced; i++) {
        fk_msg_t *x = &t->msgs[i];
        if (!x->valid || (limit && x->offset >= limit[x->partition]))
            continue;
        int k = 0;
        while (k < n && strcmp(refs[k].pid, x->pid) != 0)
            k++;
        if (k == n) {
            refs[n].pid = x->pid;
            rm_avail_init(&refs[n].st);
            n++;
        }
        rm_event_t ev;
        rm_reject_t why;
        rm_decode(dec, x->key, x->klen, x->val, x->vlen, &ev, &why);
        rm_avail_apply(&refs[k].st, &ev);
        refs[k].partition = x->partition;
        refs[k].fence = x->offset;
    }
    rm_decoder_free(dec);
    *out = refs;
    return n;
}

static void free_refs(ref_t *refs, int n) {
    for (int i = 0; i < n; i++)
        rm_avail_free(&refs[i].st);
    free(refs);
}

static bool same_state(const rm_avail_t *a, const rm_avail_t *b) {
    if (a->exists != b->exists || a->active != b->active)
        return false;
    const rm_avail_t *s[2] = {a, b};
    for (int k = 0; k < 2; k++)
        for (uint32_t i = 0; i < s[k]->ndays; i++) {
            uint8_t va[RM_DAY_BYTES], vb[RM_DAY_BYTES];
            unsigned na = rm_avail_day(a, s[k]->days[i].day, va);
            unsigned nb = rm_avail_day(b, s[k]->days[i].day, vb);
            if (na != nb || (na && memcmp(va, vb, sizeof(va)) != 0))
                return false;
        }
    return true;
}

int fk_compare(fk_t *t, const int64_t *limit) {
    ref_t *refs;
    int n = build_refs(t, limit, &refs);
    if (n < 0)
        return 1000000;
    int diffs = 0;
    fake_sink_lock(t->fs);
    for (int i = 0; i < n; i++) {
        fake_pract_t *p = fake_sink_find(t->fs, refs[i].pid);
        rm_avail_t got;
        rm_avail_init(&got);
        bool ok = p && p->partition == refs[i].partition && p->fence == refs[i].fence && p->state &&
                  rm_avail_decode(&got, p->state, p->state_len) == 0 &&
                  same_state(&got, &refs[i].st);
        rm_avail_free(&got);
        if (!ok) {
            fprintf(stderr, "fk: %s: stored %s fence %d/%lld, expected fence %d/%lld\n",
                    refs[i].pid, p ? "state" : "nothing", p ? (int)p->partition : -1,
                    p ? (long long)p->fence : -1LL, (int)refs[i].partition,
                    (long long)refs[i].fence);
            diffs++;
        }
    }
    for (int j = 0; j < t->fs->npr; j++) {
        int i = 0;
        while (i < n && strcmp(refs[i].pid, t->fs->pr[j].pid) != 0)
            i++;
        if (i == n) {
            fprintf(stderr, "fk: %s stored but not expected\n", t->fs->pr[j].pid);
            diffs++;
        }
    }
    fake_sink_unlock(t->fs);
    free_refs(refs, n);
    return diffs;
}

int fk_snapshot(fk_t *t, const int64_t *limit) {
    ref_t *refs;
    int n = build_refs(t, limit, &refs);
    if (n < 0)
        return -1;
    int rc = 0;
    fake_sink_lock(t->fs);
    fake_sink_clear(t->fs);
    for (int i = 0; rc == 0 && i < n; i++) {
        char *buf = NULL;
        size_t len = 0;
        rc = rm_avail_encode(&refs[i].st, &buf, &len) == 0 &&
                     fake_sink_put(t->fs, refs[i].pid, refs[i].partition, refs[i].fence, buf,
                                   len) == 0
                 ? 0
                 : -1;
        free(buf);
    }
    for (int p = 0; p < t->nparts; p++) {
        t->fs->cp[p] = limit[p];
        for (int64_t off = 0; off < FAKE_MAX_OFFS; off++)
            t->fs->applied[p][off] = off < limit[p] && t->fs->ev_pid[p][off] ? 1 : 0;
    }
    fake_sink_unlock(t->fs);
    free_refs(refs, n);
    return rc;
}

unsigned fk_applied_wrong(fk_t *t) {
    unsigned wrong = 0;
    fake_sink_lock(t->fs);
    for (size_t i = 0; i < t->produced; i++) {
        fk_msg_t *x = &t->msgs[i];
        unsigned a = t->fs->applied[x->partition][x->offset];
        if (x->valid && a != 1) {
            if (wrong < 10)
                fprintf(stderr, "fk: event %d/%lld of %s stored %u times\n", (int)x->partition,
                        (long long)x->offset, x->pid, a);
            wrong++;
        }
    }
    fake_sink_unlock(t->fs);
    return wrong;
}
