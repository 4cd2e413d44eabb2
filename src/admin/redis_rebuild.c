/*
 * rebuild and verify of the Redis model.
 *
 *   rebuild: plan -> (lease) -> replay into memory; as each partition ends:
 *            diff its practitioners with Redis -> write -> free; then delete
 *            what should not exist -> checkpoints -> (release)
 *   verify:  plan -> replay into memory -> diff with Redis -> report
 *
 * The plan captures each partition's earliest and end offsets and reports
 * truncated partitions before anything is written. The replay uses the same
 * decoder and projection as serve, reads each thread's partitions a few at a
 * time and hands each one over when it reaches its end offset, so a rebuild
 * writes while the replay goes on. The diff reads what Redis holds (SCAN of
 * <prefix>avail:* and <prefix>state:* as the replay starts, then pipelined
 * GETs), so a rebuild writes only the keys whose value is wrong or missing,
 * deletes the keys that should not exist, and rewrites every practitioner's
 * state and fence, one atomic transaction per practitioner: readers see a
 * key's old value until the corrected one replaces it, never an empty model.
 * Checkpoints are written last, then the lease is released and live writers
 * resume from them. A rebuild that dies leaves every practitioner consistent
 * (old or new), and its lease expires.
 */
#include "admin_internal.h"
#include "progress.h"
#include "report.h"
#include "readmodel/clock.h"
#include "readmodel/admin.h"
#include "readmodel/date.h"
#include "readmodel/log.h"
#include "readmodel/redis_sink.h"
#include "readmodel/stop.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK    500
#define EXAMPLES 5

typedef struct {
    uint64_t written, deleted, unchanged; /* rebuild */
    uint64_t missing, wrong, extra;       /* keys */
    uint64_t state_missing, state_wrong, state_extra;
    uint64_t checkpoint_wrong, skipped;
    uint64_t replayed; /* verify: practitioners in the replay */
    char examples[4][EXAMPLES][160];
    int nexamples[4];
} diff_t;

enum { EX_MISSING, EX_WRONG, EX_EXTRA, EX_STATE };

static void example(diff_t *d, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void example(diff_t *d, int kind, const char *fmt, ...) {
    if (d->nexamples[kind] >= EXAMPLES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->examples[kind][d->nexamples[kind]++], 160, fmt, ap);
    va_end(ap);
}

/* What Redis holds: per practitioner the days with a key (in st.dirty) and
 * whether a state key exists (loaded); keys under the model's patterns that
 * name no practitioner or date are foreign. */
typedef struct {
    pract_map_t by_pid;
    char **foreign;
    size_t nforeign, cap;
    int failed;
} existing_t;

static void add_foreign(existing_t *ex, const char *key, size_t len) {
    if (ex->nforeign == ex->cap) {
        ex->cap = ex->cap ? ex->cap * 2 : 64;
        char **n = realloc(ex->foreign, ex->cap * sizeof(*n));
        if (!n) {
            ex->failed = 1;
            return;
        }
        ex->foreign = n;
    }
    char *copy = strndup(key, len);
    if (!copy) {
        ex->failed = 1;
        return;
    }
    ex->foreign[ex->nforeign++] = copy;
}

static bool pid_ok(const char *s, size_t n) {
    if (n < 1 || n > RM_MAX_ID_CHARS)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static pract_t *existing_get(existing_t *ex, const char *pid, size_t n) {
    pract_t *p = rm_pract_find(&ex->by_pid, pid, n);
    if (!p && !(p = rm_pract_add(&ex->by_pid, pid, n)))
        ex->failed = 1;
    return p;
}

/* "avail:{pid}:YYYY-MM-DD" */
static void on_avail_key(const char *key, size_t len, void *arg) {
    existing_t *ex = arg;
    const char *open = key + 6, *close = memchr(key, '}', len);
    uint16_t day;
    if (len > 7 && key[6] == '{' && close && close + 12 == key + len && close[1] == ':' &&
        pid_ok(open + 1, (size_t)(close - open - 1)) && rm_date_parse(close + 2, 10, &day)) {
        pract_t *p = existing_get(ex, open + 1, (size_t)(close - open - 1));
        if (p)
            roaring_bitmap_add(p->st.dirty, day);
    } else {
        add_foreign(ex, key, len);
    }
}

/* "state:{pid}" */
static void on_state_key(const char *key, size_t len, void *arg) {
    existing_t *ex = arg;
    if (len > 8 && key[6] == '{' && key[len - 1] == '}' && pid_ok(key + 7, len - 8)) {
        pract_t *p = existing_get(ex, key + 7, len - 8);
        if (p)
            p->loaded = true;
    } else {
        add_foreign(ex, key, len);
    }
}

static void existing_free(existing_t *ex) {
    rm_pract_map_free(&ex->by_pid);
    for (size_t i = 0; i < ex->nforeign; i++)
        free(ex->foreign[i]);
    free(ex->foreign);
}

static void free_keys(char **keys, size_t n) {
    for (size_t i = 0; keys && i < n; i++)
        free(keys[i]);
    free(keys);
}

/* A growing list of malloc'd key names. */
typedef struct {
    char **keys;
    size_t n, cap;
} keylist_t;

/* Appends key (taking it; NULL means it could not be made). 0, or -1 when
 * out of memory (key freed). */
static int keylist_push(keylist_t *l, char *key) {
    if (!key)
        return -1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **k = realloc(l->keys, cap * sizeof(*k));
        if (!k) {
            free(key);
            return -1;
        }
        l->keys = k;
        l->cap = cap;
    }
    l->keys[l->n++] = key;
    return 0;
}

/* "avail:{pid}:YYYY-MM-DD" or "state:{pid}" (without prefix), malloc'd;
 * NULL when out of memory or when it does not fit. */
static char *model_key(const pract_t *p, bool state, uint16_t day) {
    char buf[RM_MAX_ID_CHARS + 32];
    int len = state ? rm_redis_key_state(buf, sizeof(buf), "", p->pid, p->pid_len)
                    : rm_redis_key_avail(buf, sizeof(buf), "", p->pid, p->pid_len, day);
    return len < 0 || (size_t)len >= sizeof(buf) ? NULL : strdup(buf);
}

static rm_redis_sink_t *open_sink(const rm_config_t *cfg) {
    char err[256];
    rm_redis_sink_t *s = rm_redis_sink_open(cfg, err, sizeof(err));
    if (!s) {
        rm_error("%s", err);
        return NULL;
    }
    if (rm_redis_sink_connect(s) != RM_ERR_OK) {
        rm_error("%s", rm_redis_sink_last_error(s));
        rm_redis_sink_free(s);
        return NULL;
    }
    return s;
}

/* Compares one chunk of replayed practitioners with Redis. Fills each
 * practitioner's st.dirty with the days to write or delete. */
static int diff_chunk(rm_redis_sink_t *s, existing_t *ex, pract_t **chunk, size_t n, diff_t *d) {
    size_t nkeys = 0, cap = 0;
    char **keys = NULL;
    uint16_t *key_day = NULL;
    size_t *key_owner = NULL;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        pract_t *pr = chunk[i];
        rm_avail_mark_all_dirty(&pr->st);
        pract_t *have = rm_pract_find(&ex->by_pid, pr->pid, pr->pid_len);
        if (have) {
            roaring_bitmap_or_inplace(pr->st.dirty, have->st.dirty);
            have->dirty = true; /* matched: not extra */
        }
        roaring_uint32_iterator_t it;
        roaring_init_iterator(pr->st.dirty, &it);
        for (; it.has_value; roaring_advance_uint32_iterator(&it)) {
            if (!have || !roaring_bitmap_contains(have->st.dirty, it.current_value))
                continue;
            if (nkeys == cap) {
                cap = cap ? cap * 2 : 1024;
                char **k = realloc(keys, cap * sizeof(*k));
                uint16_t *kd = realloc(key_day, cap * sizeof(*kd));
                size_t *ko = realloc(key_owner, cap * sizeof(*ko));
                keys = k ? k : keys;
                key_day = kd ? kd : key_day;
                key_owner = ko ? ko : key_owner;
                if (!k || !kd || !ko) {
                    rc = -1;
                    goto out;
                }
            }
            if (!(keys[nkeys] = model_key(pr, false, (uint16_t)it.current_value))) {
                rc = -1;
                goto out;
            }
            key_day[nkeys] = (uint16_t)it.current_value;
            key_owner[nkeys++] = i;
        }
    }
    char **vals = calloc(nkeys ? nkeys : 1, sizeof(*vals));
    size_t *lens = calloc(nkeys ? nkeys : 1, sizeof(*lens));
    if (!vals || !lens || rm_redis_get_many(s, keys, nkeys, vals, lens) != RM_ERR_OK) {
        if (vals && lens)
            rm_error("%s", rm_redis_sink_last_error(s));
        free(vals);
        free(lens);
        rc = -1;
        goto out;
    }
    /* Days with an existing key: compare values. */
    roaring_bitmap_t **keep = calloc(n ? n : 1, sizeof(*keep)); /* unchanged days, per pract. */
    for (size_t i = 0; keep && i < n; i++)
        if (!(keep[i] = roaring_bitmap_create())) {
            while (i-- > 0)
                roaring_bitmap_free(keep[i]);
            free(keep);
            keep = NULL;
        }
    for (size_t k = 0; keep && k < nkeys; k++) {
        pract_t *pr = chunk[key_owner[k]];
        uint8_t want[RM_DAY_BYTES];
        unsigned nfree = rm_avail_day(&pr->st, key_day[k], want);
        if (nfree == 0) {
            d->extra++;
            example(d, EX_EXTRA, "%s%s (should not exist)", "", keys[k]);
        } else if (!vals[k]) {
            d->missing++; /* deleted between SCAN and GET */
            example(d, EX_MISSING, "%s%s", "", keys[k]);
        } else if (lens[k] != RM_DAY_BYTES || memcmp(vals[k], want, RM_DAY_BYTES) != 0) {
            d->wrong++;
            example(d, EX_WRONG, "%s%s (wrong bits)", "", keys[k]);
        } else {
            d->unchanged++;
            roaring_bitmap_add(keep[key_owner[k]], key_day[k]);
        }
    }
    /* Days without a key: missing when they have a free slot. */
    for (size_t i = 0; keep && i < n; i++) {
        pract_t *pr = chunk[i];
        pract_t *have = rm_pract_find(&ex->by_pid, pr->pid, pr->pid_len);
        roaring_uint32_iterator_t it;
        roaring_init_iterator(pr->st.dirty, &it);
        uint8_t want[RM_DAY_BYTES];
        uint32_t pos = 0;
        for (; it.has_value; roaring_advance_uint32_iterator(&it)) {
            if (have && roaring_bitmap_contains(have->st.dirty, it.current_value))
                continue;
            if (rm_avail_day_next(&pr->st, &pos, (uint16_t)it.current_value, want) > 0) {
                d->missing++;
                if (d->nexamples[EX_MISSING] < EXAMPLES) { /* into an empty Redis: every key */
                    char key[RM_MAX_ID_CHARS + 32];
                    if (rm_redis_key_avail(key, sizeof(key), "", pr->pid, pr->pid_len,
                                           (uint16_t)it.current_value) >= 0)
                        example(d, EX_MISSING, "%s%s", "", key);
                }
            } else {
                roaring_bitmap_add(keep[i], it.current_value); /* absent, as it should be */
            }
        }
        roaring_bitmap_andnot_inplace(pr->st.dirty, keep[i]);
        roaring_bitmap_free(keep[i]);
    }
    if (!keep)
        rc = -1;
    free(keep);
    for (size_t k = 0; k < nkeys; k++)
        free(vals[k]);
    free(vals);
    free(lens);
out:
    for (size_t k = 0; k < nkeys; k++)
        free(keys[k]);
    free(keys);
    free(key_day);
    free(key_owner);
    return rc;
}

/* Keys of what Redis holds that no replayed practitioner accounts for
 * (foreign keys, and every key of a practitioner the replay did not see).
 * On success *out (caller frees with free_keys) holds *n keys; on failure
 * (out of memory) nothing is allocated, *out is NULL and *n 0. */
static int leftovers(existing_t *ex, char ***out, size_t *n, diff_t *d) {
    keylist_t l = {0};
    int rc = 0;
    *out = NULL;
    *n = 0;
    for (size_t i = 0; rc == 0 && i < ex->nforeign; i++) {
        rc = keylist_push(&l, strdup(ex->foreign[i]));
        d->extra++;
        example(d, EX_EXTRA, "%s%s (not a model key)", "", ex->foreign[i]);
    }
    for (uint32_t i = 0; rc == 0 && i < ex->by_pid.capacity; i++) {
        pract_t *p = ex->by_pid.slots[i];
        if (!p || p->dirty)
            continue;
        roaring_uint32_iterator_t it;
        roaring_init_iterator(p->st.dirty, &it);
        for (; rc == 0 && it.has_value; roaring_advance_uint32_iterator(&it)) {
            rc = keylist_push(&l, model_key(p, false, (uint16_t)it.current_value));
            d->extra++;
            if (rc == 0)
                example(d, EX_EXTRA, "%s%s (no such practitioner in the log)", "", l.keys[l.n - 1]);
        }
        if (rc == 0 && p->loaded) {
            rc = keylist_push(&l, model_key(p, true, 0));
            d->state_extra++;
            if (rc == 0)
                example(d, EX_STATE, "%s%s (no such practitioner in the log)", "", l.keys[l.n - 1]);
        }
    }
    if (rc < 0) {
        free_keys(l.keys, l.n);
        return -1;
    }
    *out = l.keys;
    *n = l.n;
    return 0;
}

static int scan_existing(rm_redis_sink_t *s, existing_t *ex) {
    memset(ex, 0, sizeof(*ex));
    if (rm_redis_scan(s, "avail:*", on_avail_key, ex) != RM_ERR_OK ||
        rm_redis_scan(s, "state:*", on_state_key, ex) != RM_ERR_OK) {
        rm_error("%s", rm_redis_sink_last_error(s));
        return -1;
    }
    return ex->failed ? -1 : 0;
}

/* ---- lease renewal ---- */

static rm_err_t renew_redis(void *sink, const char *holder, int ttl_ms, bool *ok) {
    return rm_redis_lease_renew(sink, holder, ttl_ms, ok);
}

/* --flush: deletes every key of the model (nothing was replayed yet, so
 * every key is a leftover). 0, or -1 (logged). */
static int flush_model(rm_redis_sink_t *s) {
    existing_t ex;
    if (scan_existing(s, &ex) < 0) {
        existing_free(&ex);
        return -1;
    }
    diff_t d = {0};
    char **keys = NULL;
    size_t n = 0;
    int rc = leftovers(&ex, &keys, &n, &d);
    if (rc < 0)
        rm_error("--flush: out of memory");
    else if (rm_redis_del_many(s, keys, n) != RM_ERR_OK) {
        rm_error("--flush: %s", rm_redis_sink_last_error(s));
        rc = -1;
    } else
        rm_warn("--flush: deleted %zu key(s); readers see an empty model until the rebuild ends",
                n);
    free_keys(keys, n);
    existing_free(&ex);
    return rc;
}

/* ---- write: partitions as the replay ends them ---- */

/* Shared by the writer threads. A partition handed out by the replay is
 * written by one writer, so the `existing` entry of a practitioner is only
 * marked by the thread that writes that practitioner. */
typedef struct {
    const rm_config_t *cfg;
    rm_replay_t *r;
    existing_t *ex;
    rm_renewer_t *rn;
    atomic_size_t written; /* practitioners written */
    atomic_int failed;
    atomic_int ended;   /* writer threads that have returned */
    pthread_mutex_t mu; /* the busy clock below */
    int busy;           /* writers inside a chunk */
    double busy_since, busy_s;
} write_shared_t;

typedef struct {
    write_shared_t *sh;
    diff_t d;
    bool ok; /* read only after join */
    pthread_t thread;
} writer_t;

/* Time during which at least one writer is busy: the "writing" share of a
 * rebuild, most of it while the replay is still running. */
static void busy(write_shared_t *sh, bool enter) {
    pthread_mutex_lock(&sh->mu);
    double now = rm_mono_s();
    if (enter && sh->busy++ == 0)
        sh->busy_since = now;
    else if (!enter && --sh->busy == 0)
        sh->busy_s += now - sh->busy_since;
    pthread_mutex_unlock(&sh->mu);
}

/* Diffs and writes one chunk of practitioners. */
static bool write_chunk(writer_t *w, rm_redis_sink_t *s, pract_t **prs, size_t m) {
    if (diff_chunk(s, w->sh->ex, prs, m, &w->d) < 0)
        return false;
    rm_sink_item_t items[CHUNK];
    for (size_t i = 0; i < m; i++)
        items[i] = (rm_sink_item_t){.pid = prs[i]->pid,
                                    .pid_len = prs[i]->pid_len,
                                    .st = &prs[i]->st,
                                    .partition = prs[i]->fence_partition,
                                    .fence = prs[i]->fence,
                                    .force = true};
    if (rm_redis_sink_flush(s, items, m) != RM_ERR_OK) {
        rm_error("%s", rm_redis_sink_last_error(s));
        return false;
    }
    return true;
}

/* Writes every practitioner of partition p, then frees its state. */
static bool write_partition(writer_t *w, rm_redis_sink_t *s, int p) {
    write_shared_t *sh = w->sh;
    pract_map_t *map = &sh->r->maps[p];
    pract_t *chunk[CHUNK];
    size_t m = 0;
    bool ok = true;
    for (uint32_t i = 0; ok && i <= map->capacity; i++) {
        if (i < map->capacity && map->slots[i])
            chunk[m++] = map->slots[i];
        if (m == CHUNK || (i == map->capacity && m > 0)) {
            if (atomic_load(&sh->rn->lost) || !rm_running() || atomic_load(&sh->failed))
                return false;
            ok = write_chunk(w, s, chunk, m);
            atomic_fetch_add(&sh->written, m);
            m = 0;
        }
    }
    if (ok)
        rm_pract_map_free(map); /* written: the replay's peak memory is what is left */
    return ok;
}

static void *write_main(void *arg) {
    writer_t *w = arg;
    write_shared_t *sh = w->sh;
    rm_redis_sink_t *s = open_sink(sh->cfg);
    w->ok = s != NULL;
    for (int p; w->ok && (p = rm_replay_take_partition(sh->r)) >= 0;) {
        busy(sh, true);
        w->ok = write_partition(w, s, p);
        busy(sh, false);
    }
    if (!w->ok) { /* the others and the replay stop too */
        atomic_store(&sh->failed, 1);
        atomic_store(&sh->r->stop, 1);
    }
    rm_redis_sink_free(s);
    atomic_fetch_add(&sh->ended, 1);
    return NULL;
}

static void diff_add(diff_t *into, const diff_t *d) {
    into->missing += d->missing;
    into->wrong += d->wrong;
    into->extra += d->extra;
    into->unchanged += d->unchanged;
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < d->nexamples[k] && into->nexamples[k] < EXAMPLES; i++)
            memcpy(into->examples[k][into->nexamples[k]++], d->examples[k][i], 160);
}

/* The replay and the writes, overlapped: the replay threads read the
 * partitions a few at a time and hand each one over as it ends; writer
 * threads (one Redis connection each) diff and write its practitioners
 * while the replay reads the rest. What Redis holds is read (SCAN) while
 * the replay starts, before the first write. Progress shows the replay,
 * then the practitioners still to write. Sets *replay_s to the time the
 * replay took. true when every partition was replayed and written. */
static bool replay_and_write(const rm_config_t *cfg, rm_redis_sink_t *s, rm_replay_t *r,
                             existing_t *ex, diff_t *d, rm_renewer_t *rn, double *replay_s,
                             double *busy_s) {
    write_shared_t sh = {.cfg = cfg, .r = r, .ex = ex, .rn = rn};
    pthread_mutex_init(&sh.mu, NULL);
    int nt = cfg->workers < 1 ? 1 : cfg->workers > 16 ? 16 : cfg->workers, started = 0;
    writer_t ws[16];
    double t0 = rm_mono_s();
    bool ok = rm_replay_start(cfg, r) == RM_ERR_OK;
    /* Serve checks the lease before each flush, so one that checked just
     * before the lease was taken may land after this SCAN. That is safe: its
     * days were touched by events the replay also applies (every such day is
     * rewritten), or by events past the plan, which serve applies again from
     * the checkpoints this rebuild writes. */
    if (ok && scan_existing(s, ex) < 0)
        ok = false;
    for (int i = 0; ok && i < nt; i++) {
        ws[i] = (writer_t){.sh = &sh};
        if (pthread_create(&ws[i].thread, NULL, write_main, &ws[i]) != 0) {
            ok = false;
            break;
        }
        started++;
    }
    if (!ok)
        atomic_store(&r->stop, 1);
    rm_progress_t pr;
    rm_progress_begin(&pr, RM_PHASE_REPLAY, r->total);
    while (ok && atomic_load(&r->done) < r->total && !atomic_load(&r->failed) &&
           !atomic_load(&sh.failed) && rm_running()) {
        if (atomic_load(&rn->lost)) { /* the writers would refuse: stop reading */
            atomic_store(&r->stop, 1);
            break;
        }
        usleep(10 * 1000);
        rm_progress_update(&pr, atomic_load(&r->done));
    }
    bool replayed = rm_replay_join(r) == RM_ERR_OK && rm_running();
    rm_progress_end(&pr, atomic_load(&r->done));
    *replay_s = rm_mono_s() - t0;
    if (!replayed)
        rm_error("replay did not complete%s", !rm_running() ? " (interrupted)"
                                              : atomic_load(&sh.failed)
                                                  ? " (stopped: a write failed)"
                                              : atomic_load(&rn->lost) ? " (stopped: lease lost)"
                                                                       : "");
    else
        rm_admin_log_events(r);
    size_t total = 0;
    for (int p = 0; p < r->partitions; p++)
        total += r->prcount[p];
    rm_progress_t wp;
    rm_progress_begin(&wp, RM_PHASE_WRITE, total);
    while (atomic_load(&sh.ended) < started) {
        usleep(10 * 1000);
        rm_progress_update(&wp, atomic_load(&sh.written));
    }
    for (int i = 0; i < started; i++) {
        pthread_join(ws[i].thread, NULL);
        ok &= ws[i].ok;
        diff_add(d, &ws[i].d);
    }
    ok = ok && replayed && started == nt && !atomic_load(&sh.failed);
    rm_progress_end(&wp, atomic_load(&sh.written));
    pthread_mutex_destroy(&sh.mu);
    *busy_s = sh.busy_s;
    return ok;
}

/* Writes the rebuild's record (rebuild:last:redis) and prints its summary. */
static void rebuild_report(rm_redis_sink_t *s, const rm_replay_t *r, const diff_t *d, bool ok,
                           time_t started, double secs, double replay_s, double busy_s,
                           int truncated) {
    char started_s[32], finished[32], dur[32], events[32], written[32], deleted[32], unchanged[32],
        trunc[16], write_share[32];
    snprintf(started_s, sizeof(started_s), "%lld", (long long)started);
    snprintf(finished, sizeof(finished), "%lld", (long long)time(NULL));
    snprintf(dur, sizeof(dur), "%.3f", secs);
    snprintf(events, sizeof(events), "%llu", (unsigned long long)atomic_load(&r->done));
    snprintf(written, sizeof(written), "%llu", (unsigned long long)d->written);
    snprintf(deleted, sizeof(deleted), "%llu", (unsigned long long)d->deleted);
    snprintf(unchanged, sizeof(unchanged), "%llu", (unsigned long long)d->unchanged);
    snprintf(trunc, sizeof(trunc), "%d", truncated);
    double share = secs > 0 ? busy_s / secs : 0.0, after = secs > replay_s ? secs - replay_s : 0.0;
    snprintf(write_share, sizeof(write_share), "%.3f", share);
    const char *fields[] = {
        "started_at",   "finished_at",  "result",         "duration_s",           "events",
        "keys_written", "keys_deleted", "keys_unchanged", "truncated_partitions", "write_share"};
    const char *values[] = {
        started_s, finished, ok ? "ok" : "failed", dur, events, written, deleted,
        unchanged, trunc,    write_share};
    if (rm_redis_record_set(s, "rebuild:last:redis", fields, values, 10) != RM_ERR_OK)
        rm_warn("could not record the rebuild result: %s", rm_redis_sink_last_error(s));
    printf("rebuild %s in %.1f s: events applied=%llu invalid=%llu ignored=%llu; keys written=%s "
           "deleted=%s unchanged=%s; writing took %.0f%% of the time (%.2f s after the replay)%s\n",
           ok ? "completed" : "FAILED", secs,
           (unsigned long long)atomic_load(&r->stats.events[RM_RESULT_APPLIED]),
           (unsigned long long)atomic_load(&r->stats.events[RM_RESULT_INVALID]),
           (unsigned long long)atomic_load(&r->stats.events[RM_RESULT_IGNORED]), written, deleted,
           unchanged, 100.0 * share, after,
           truncated ? "; WARNING: built from truncated history" : "");
}

/* The work done under the lease: (flush,) replay and write, delete what
 * should not exist, checkpoints, record. true when it all succeeded. */
static bool rebuild_locked(const rm_config_t *cfg, rm_redis_sink_t *s, rm_replay_t *r,
                           rm_renewer_t *rn, int truncated) {
    time_t started = time(NULL);
    double t0 = rm_mono_s();
    if (cfg->flush && flush_model(s) < 0)
        return false;
    /* A flush changes what the replay must write, so the plan's offsets are
     * kept: events after them are serve's to apply after the lease. */
    existing_t ex = {0};
    diff_t d = {0};
    double replay_s = 0, busy_s = 0;
    bool ok = replay_and_write(cfg, s, r, &ex, &d, rn, &replay_s, &busy_s), wrote = ok;
    char **extra_keys = NULL;
    size_t nextra = 0;
    if (ok && (leftovers(&ex, &extra_keys, &nextra, &d) < 0 ||
               rm_redis_del_many(s, extra_keys, nextra) != RM_ERR_OK))
        ok = false;
    d.written = d.missing + d.wrong;
    d.deleted = d.extra + d.state_extra;
    for (int p = 0; ok && p < r->partitions; p++)
        if (rm_redis_checkpoint_set(s, cfg->topic, p, r->high[p]) != RM_ERR_OK)
            ok = false;
    if (wrote && !ok && !atomic_load(&rn->lost))
        rm_error("rebuild failed: %s", rm_redis_sink_last_error(s));
    free_keys(extra_keys, nextra);
    existing_free(&ex);
    rebuild_report(s, r, &d, ok, started, rm_mono_s() - t0, replay_s, busy_s, truncated);
    return ok;
}

static rm_err_t redis_rebuild(const rm_config_t *cfg, rm_replay_t *r, int truncated) {
    rm_redis_sink_t *s = open_sink(cfg), *lease_sink = open_sink(cfg);
    if (!s || !lease_sink) {
        rm_redis_sink_free(s);
        rm_redis_sink_free(lease_sink);
        return RM_ERR_IO;
    }
    char holder[256], other[256] = "";
    rm_admin_holder(holder, sizeof(holder));
    bool got = false;
    rm_err_t rc = RM_ERR_IO;
    rm_renewer_t rn = {.target = "Redis",
                       .sink = lease_sink,
                       .renew = renew_redis,
                       .holder = holder,
                       .ttl_ms = cfg->lease_ttl_ms};
    if (rm_redis_lease_acquire(s, holder, cfg->lease_ttl_ms, &got, other, sizeof(other)) !=
        RM_ERR_OK) {
        rm_error("%s", rm_redis_sink_last_error(s));
    } else if (!got) {
        fprintf(stderr, "readmodel rebuild: another rebuild holds the lease (%s); not starting\n",
                other);
        rc = RM_ERR_LEASE_HELD;
    } else {
        rm_log_ctx_t ctx = {"redis", -1, -1};
        rm_log_fields(RM_LOG_INFO, &ctx,
                      "lease taken; live serve processes pause writes until it is released",
                      RM_LOG_S("holder", holder), RM_LOG_I("ttl_ms", cfg->lease_ttl_ms));
        if (rm_renewer_start(&rn) == RM_ERR_OK) {
            rc = rebuild_locked(cfg, s, r, &rn, truncated) ? RM_ERR_OK : RM_ERR_IO;
            bool held = rm_renewer_stop(&rn); /* a lost lease is not ours to release */
            if (held && rm_redis_lease_release(s, holder) != RM_ERR_OK)
                rm_warn("could not release the lease (%s); it expires in %d ms",
                        rm_redis_sink_last_error(s), cfg->lease_ttl_ms);
        } else if (rm_redis_lease_release(s, holder) != RM_ERR_OK) {
            rm_warn("could not release the lease: %s", rm_redis_sink_last_error(s));
        }
    }
    rm_redis_sink_free(s);
    rm_redis_sink_free(lease_sink);
    return rc;
}

static void print_examples(const diff_t *d, int kind, const char *title) {
    for (int i = 0; i < d->nexamples[kind]; i++)
        rm_report_example(title, d->examples[kind][i]);
}

/* Compares every replayed practitioner's state and days with Redis, chunk
 * by chunk. Practitioners a live serve has moved past the plan are skipped.
 * 0, or -1 when Redis could not be read. */
static int compare_practitioners(rm_redis_sink_t *s, existing_t *ex, rm_replay_t *r,
                                 const int64_t *ends, diff_t *d) {
    size_t n;
    pract_t **all = rm_admin_collect(r, &n);
    if (!all)
        return -1;
    d->replayed = n;
    bool ok = true;
    rm_progress_t cp_progress;
    rm_progress_begin(&cp_progress, RM_PHASE_COMPARE, n);
    char *pids[CHUNK];
    int32_t parts[CHUNK];
    int64_t fences[CHUNK];
    for (size_t off = 0; ok && off < n; off += CHUNK) {
        size_t m = n - off < CHUNK ? n - off : CHUNK, keep = 0;
        for (size_t i = 0; i < m; i++)
            pids[i] = all[off + i]->pid;
        if (rm_redis_fences(s, pids, m, parts, fences) != RM_ERR_OK) {
            ok = false;
            break;
        }
        pract_t *chunk[CHUNK];
        for (size_t i = 0; i < m; i++) {
            pract_t *pr = all[off + i];
            pract_t *have = rm_pract_find(&ex->by_pid, pr->pid, pr->pid_len);
            bool same =
                parts[i] == pr->fence_partition && parts[i] >= 0 && parts[i] < r->partitions;
            if (same && fences[i] >= r->high[parts[i]] && fences[i] < ends[parts[i]]) {
                d->skipped++; /* a live serve applied newer events: not comparable */
                if (have)
                    have->dirty = true;
                continue;
            }
            if (same && fences[i] >= ends[parts[i]]) {
                d->state_wrong++; /* no event at that offset exists: the log was reset */
                example(d, EX_STATE, "state:{%s} (fence %lld above the log's end %lld)", pr->pid,
                        (long long)fences[i], (long long)ends[parts[i]]);
            } else if (fences[i] < 0) {
                d->state_missing++;
                example(d, EX_STATE, "state:{%s}%s", pr->pid, " (missing)");
            } else if (!same || fences[i] != pr->fence) {
                d->state_wrong++;
                example(d, EX_STATE, "state:{%s}%s", pr->pid, " (wrong fence)");
            }
            chunk[keep++] = pr;
        }
        if (diff_chunk(s, ex, chunk, keep, d) < 0)
            ok = false;
        rm_progress_update(&cp_progress, off + m);
    }
    rm_progress_end(&cp_progress, ok ? n : 0);
    free(all);
    return ok ? 0 : -1;
}

/* Checkpoints below the plan's end are drift; between it and the log's
 * current end a live serve moved on; above the current end no log position
 * explains them: the log was reset (topic recreated, Kafka data lost, another
 * cluster), and only a rebuild repairs that. */
static int compare_checkpoints(rm_redis_sink_t *s, const rm_config_t *cfg, const rm_replay_t *r,
                               const int64_t *ends, diff_t *d) {
    for (int p = 0; p < r->partitions; p++) {
        int64_t cp;
        if (rm_redis_sink_checkpoint_get(s, cfg->topic, p, &cp) != RM_ERR_OK)
            return -1;
        char line[256];
        if (cp < r->high[p]) {
            d->checkpoint_wrong++;
            snprintf(line, sizeof(line), "  checkpoint of partition %d: %lld, log end %lld", p,
                     (long long)cp, (long long)r->high[p]);
            rm_report_checkpoint(p, cp, r->high[p], cp < 0 ? "missing" : "behind", line);
        } else if (cp > ends[p]) {
            d->checkpoint_wrong++;
            snprintf(line, sizeof(line),
                     "  checkpoint of partition %d: %lld is above the log's end %lld: the log "
                     "was reset; run `readmodel rebuild`",
                     p, (long long)cp, (long long)ends[p]);
            rm_report_checkpoint(p, cp, ends[p], "above_log_end", line);
        }
    }
    return 0;
}

/* Prints verify's summary and examples, records it; returns the drift. */
static uint64_t verify_report(rm_redis_sink_t *s, const diff_t *d, int truncated) {
    uint64_t drift = d->missing + d->wrong + d->extra + d->state_missing + d->state_wrong +
                     d->state_extra + d->checkpoint_wrong;
    rm_report_set(
        "counts",
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "drift", (json_int_t)drift,
                  "keys_missing", (json_int_t)d->missing, "keys_wrong", (json_int_t)d->wrong,
                  "keys_extra", (json_int_t)d->extra, "keys_correct", (json_int_t)d->unchanged,
                  "states_missing", (json_int_t)d->state_missing, "states_wrong",
                  (json_int_t)d->state_wrong, "states_extra", (json_int_t)d->state_extra,
                  "checkpoints_wrong", (json_int_t)d->checkpoint_wrong, "practitioners_replayed",
                  (json_int_t)d->replayed, "practitioners_skipped", (json_int_t)d->skipped));
    rm_report_set("truncated_history", json_boolean(truncated));
    if (!rm_report_json())
        printf("verify: %s. keys: %llu missing, %llu wrong, %llu extra, %llu correct; states: %llu "
               "missing, %llu wrong, %llu extra; checkpoints: %llu wrong; %llu practitioner(s) "
               "skipped (moved on during verify)%s\n",
               drift ? "DRIFT FOUND" : "identical", (unsigned long long)d->missing,
               (unsigned long long)d->wrong, (unsigned long long)d->extra,
               (unsigned long long)d->unchanged, (unsigned long long)d->state_missing,
               (unsigned long long)d->state_wrong, (unsigned long long)d->state_extra,
               (unsigned long long)d->checkpoint_wrong, (unsigned long long)d->skipped,
               truncated ? "; compared against truncated history" : "");
    char fin[32], total[32], c1[32], c2[32], c3[32], c4[32], c5[32];
    snprintf(fin, sizeof(fin), "%lld", (long long)time(NULL));
    snprintf(total, sizeof(total), "%llu", (unsigned long long)drift);
    snprintf(c1, sizeof(c1), "%llu", (unsigned long long)d->missing);
    snprintf(c2, sizeof(c2), "%llu", (unsigned long long)d->wrong);
    snprintf(c3, sizeof(c3), "%llu", (unsigned long long)d->extra);
    snprintf(c4, sizeof(c4), "%llu",
             (unsigned long long)(d->state_missing + d->state_wrong + d->state_extra));
    snprintf(c5, sizeof(c5), "%llu", (unsigned long long)d->checkpoint_wrong);
    const char *vf[] = {"finished_at", "drift",  "missing_keys", "wrong_keys",
                        "extra_keys",  "states", "checkpoints"};
    const char *vv[] = {fin, total, c1, c2, c3, c4, c5};
    if (rm_redis_record_set(s, "verify:last:redis", vf, vv, 7) != RM_ERR_OK)
        rm_warn("could not record the verify result: %s", rm_redis_sink_last_error(s));
    print_examples(d, EX_MISSING, "missing");
    print_examples(d, EX_WRONG, "wrong");
    print_examples(d, EX_EXTRA, "extra");
    print_examples(d, EX_STATE, "state");
    return drift;
}

static rm_err_t redis_verify(const rm_config_t *cfg, rm_replay_t *r, int truncated) {
    rm_redis_sink_t *s = open_sink(cfg);
    if (!s || rm_admin_replay(cfg, r) != RM_ERR_OK) {
        rm_redis_sink_free(s);
        return RM_ERR_IO;
    }
    existing_t ex = {0};
    diff_t d = {0};
    char **extra_keys = NULL;
    size_t nextra = 0;
    int64_t *ends = calloc((size_t)r->partitions + 1, sizeof(*ends));
    bool ok = ends && rm_replay_ends(cfg, r, ends) == RM_ERR_OK && scan_existing(s, &ex) == 0 &&
              compare_practitioners(s, &ex, r, ends, &d) == 0 &&
              leftovers(&ex, &extra_keys, &nextra, &d) == 0 &&
              compare_checkpoints(s, cfg, r, ends, &d) == 0;
    free(ends);
    free_keys(extra_keys, nextra);
    existing_free(&ex);
    rm_err_t rc = RM_ERR_IO;
    if (!ok) {
        rm_error("verify could not compare: %s", rm_redis_sink_last_error(s));
    } else {
        uint64_t drift = verify_report(s, &d, truncated);
        rc = drift ? RM_ERR_DRIFT : RM_ERR_OK;
        char note[256];
        if (!drift && d.replayed > 0 && d.skipped == d.replayed) {
            rm_report_note("verify could not compare: every practitioner moved on during verify "
                           "(a live serve applied newer events); run it again when the log is "
                           "quieter");
            rc = RM_ERR_IO;
        } else if (!drift && d.skipped * 2 > d.replayed) {
            snprintf(note, sizeof(note),
                     "note: %llu of %llu practitioners were skipped (moved on during verify); "
                     "the comparison covers the rest only",
                     (unsigned long long)d.skipped, (unsigned long long)d.replayed);
            rm_report_note(note);
        }
    }
    rm_redis_sink_free(s);
    return rc;
}

static rm_err_t redis_status(const rm_config_t *cfg, rm_replay_t *r) {
    rm_redis_sink_t *s = open_sink(cfg);
    if (!s)
        return RM_ERR_IO;
    rm_err_t rc = RM_ERR_OK;
    rm_report_set("prefix", json_string(cfg->redis_prefix));
    char topo[2048];
    bool have_topo = rm_redis_topology(s, topo, sizeof(topo)) == RM_ERR_OK;
    if (have_topo)
        rm_report_set("redis_topology", json_string(topo));
    if (!rm_report_json()) {
        printf("target redis, topic %s, prefix %s\n", cfg->topic, cfg->redis_prefix);
        if (have_topo)
            fputs(topo, stdout);
        printf("%-10s %12s %12s %12s %10s\n", "partition", "earliest", "end", "checkpoint", "lag");
    }
    for (int p = 0; p < r->partitions; p++) {
        int64_t cp = -1;
        if (rm_redis_sink_checkpoint_get(s, cfg->topic, p, &cp) != RM_ERR_OK) {
            rm_error("%s", rm_redis_sink_last_error(s));
            rc = RM_ERR_IO;
            break;
        }
        rm_report_partition(r, p, cp);
    }
    char holder[256], record[1024];
    long long ttl;
    if (rc == 0 && rm_redis_lease_get(s, holder, sizeof(holder), &ttl) == RM_ERR_OK)
        rm_report_lease(holder, ttl);
    if (rc == 0 &&
        rm_redis_record_get(s, "rebuild:last:redis", record, sizeof(record)) == RM_ERR_OK)
        rm_report_record("last_rebuild", "last rebuild", rm_report_record_parse(record));
    if (rc == 0 && rm_redis_record_get(s, "verify:last:redis", record, sizeof(record)) == RM_ERR_OK)
        rm_report_record("last_verify", "last verify", rm_report_record_parse(record));
    rm_redis_sink_free(s);
    return rc;
}

const rm_admin_target_t rm_admin_redis = {
    .sink = &rm_redis_sink_ops,
    .rebuild = redis_rebuild,
    .verify = redis_verify,
    .status = redis_status,
};
