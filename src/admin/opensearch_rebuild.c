/*
 * rebuild and verify of the OpenSearch practitioner index.
 *
 *   (lease) -> replay into memory -> new generation (refresh off, no
 *   replicas) -> bulk-load documents, states, checkpoints -> restore settings,
 *   refresh -> one _aliases call moves both aliases -> release the lease ->
 *   after a grace period, delete the previous generation
 *
 * Readers of the alias see the previous index, complete, until the instant
 * the complete new one replaces it; nothing they read is ever empty or
 * partial. A rebuild that dies leaves the alias on the previous generation
 * and an orphan new one, which the next rebuild deletes and recreates.
 * verify replays the same way and compares every document behind the alias.
 */
#include "admin_internal.h"
#include "progress.h"
#include "report.h"
#include "readmodel/clock.h"
#include "readmodel/admin.h"
#include "readmodel/log.h"
#include "readmodel/opensearch_sink.h"
#include "readmodel/stop.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOAD_CHUNK 5000
#define EXAMPLES   5

static rm_os_sink_t *open_sink(const rm_config_t *cfg) {
    char err[256];
    rm_os_sink_t *s = rm_os_sink_ops.open(cfg, err, sizeof(err));
    if (!s) {
        rm_error("%s", err);
        return NULL;
    }
    if (rm_os_sink_ping(s) != RM_ERR_OK) {
        rm_error("OpenSearch at %s: %s", cfg->opensearch_url, rm_os_sink_last_error(s));
        rm_os_sink_free(s);
        return NULL;
    }
    return s;
}

static rm_err_t renew_os(void *sink, const char *holder, int ttl_ms, bool *ok) {
    return rm_os_lease_renew(sink, holder, ttl_ms, ok);
}

static bool load(const rm_config_t *cfg, rm_os_sink_t *s, long gen, pract_t **all, size_t n,
                 rm_renewer_t *rn, unsigned long long *rejected) {
    rm_sink_item_t *items = malloc(LOAD_CHUNK * sizeof(*items));
    if (!items)
        return false;
    rm_progress_t wp;
    rm_progress_begin(&wp, RM_PHASE_WRITE, n);
    bool ok = true;
    for (size_t off = 0; ok && off < n && !atomic_load(&rn->lost) && rm_running();
         off += LOAD_CHUNK) {
        size_t m = n - off < LOAD_CHUNK ? n - off : LOAD_CHUNK;
        for (size_t i = 0; i < m; i++) {
            pract_t *pr = all[off + i];
            items[i] = (rm_sink_item_t){.pid = pr->pid,
                                        .pid_len = pr->pid_len,
                                        .st = &pr->st,
                                        .profile = &pr->profile,
                                        .partition = pr->fence_partition,
                                        .fence = pr->fence};
        }
        if (rm_os_generation_load(s, gen, items, m, 8) != RM_ERR_OK) {
            rm_error("loading the new index: %s", rm_os_sink_last_error(s));
            ok = false;
        }
        for (size_t i = 0; ok && i < m; i++)
            *rejected += items[i].rejected;
        rm_progress_update(&wp, off + m);
    }
    rm_progress_end(&wp, ok ? n : 0);
    free(items);
    (void)cfg;
    return ok && !atomic_load(&rn->lost) && rm_running();
}

/* Takes the OpenSearch lease for holder and has lease_sink (the renewer's
 * handle) read it back: the renewal compares the lease document's version,
 * which a handle learns by reading. RM_ERR_OK, RM_ERR_LEASE_HELD or
 * RM_ERR_IO (logged). */
static rm_err_t take_lease(const rm_config_t *cfg, rm_os_sink_t *s, rm_os_sink_t *lease_sink,
                           const char *holder) {
    bool got = false;
    char diff[512], other[256] = "";
    if (rm_os_sink_ensure(s, diff, sizeof(diff)) != RM_ERR_OK ||
        rm_os_lease_acquire(s, holder, cfg->lease_ttl_ms, &got, other, sizeof(other)) !=
            RM_ERR_OK) {
        rm_error("OpenSearch: %s", rm_os_sink_last_error(s));
        return RM_ERR_IO;
    }
    if (!got) {
        fprintf(stderr,
                "readmodel rebuild: another rebuild holds the OpenSearch lease (%s); not "
                "starting\n",
                other);
        return RM_ERR_LEASE_HELD;
    }
    long long ttl;
    char me[256] = "";
    if (rm_os_lease_get(lease_sink, me, sizeof(me), &ttl) != RM_ERR_OK) {
        rm_error("OpenSearch lease: reading it back: %s", rm_os_sink_last_error(lease_sink));
        return RM_ERR_IO; /* it expires after its ttl */
    }
    if (strcmp(me, holder) != 0) {
        rm_error("OpenSearch lease: taken by %s right after this rebuild took it", me);
        return RM_ERR_IO;
    }
    rm_info("OpenSearch lease taken as %s; live serve processes pause index writes until it is "
            "released",
            holder);
    return RM_ERR_OK;
}

/* What a rebuild of the index did, for its record and summary. */
typedef struct {
    time_t started;
    double t0, write_start;
    size_t documents;
    unsigned long long rejected;
    char *old_docs, *old_state; /* the generation it replaced (owned) */
    char new_docs[256], new_state[256];
} os_build_t;

/* Writes the rebuild's record and prints its summary. */
static void rebuild_report(rm_os_sink_t *s, const rm_replay_t *r, const os_build_t *b, bool ok,
                           int truncated) {
    double secs = rm_mono_s() - b->t0;
    double share = secs > 0 ? (secs - b->write_start) / secs : 0.0;
    json_t *rec =
        json_pack("{s:I,s:I,s:s,s:f,s:I,s:I,s:I,s:i,s:s,s:f}", "started_at", (json_int_t)b->started,
                  "finished_at", (json_int_t)time(NULL), "result", ok ? "ok" : "failed",
                  "duration_s", secs, "events", (json_int_t)atomic_load(&r->done), "documents",
                  (json_int_t)b->documents, "rejected", (json_int_t)b->rejected,
                  "truncated_partitions", truncated, "index", b->new_docs, "write_share", share);
    if (!rec || rm_os_record_set(s, "rebuild:last:opensearch", rec) != RM_ERR_OK)
        rm_warn("could not record the rebuild result: %s", rm_os_sink_last_error(s));
    json_decref(rec);
    printf("rebuild (opensearch) %s in %.1f s: events applied=%llu invalid=%llu ignored=%llu; "
           "documents written=%zu rejected=%llu into %s; writing took %.0f%% of the time%s\n",
           ok ? "completed" : "FAILED", secs,
           (unsigned long long)atomic_load(&r->stats.events[RM_RESULT_APPLIED]),
           (unsigned long long)atomic_load(&r->stats.events[RM_RESULT_INVALID]),
           (unsigned long long)atomic_load(&r->stats.events[RM_RESULT_IGNORED]), b->documents,
           b->rejected, b->new_docs, 100.0 * share,
           truncated ? "; WARNING: built from truncated history" : "");
    fflush(stdout);
}

/* Under the lease: replay, build generation N+1 beside the live one, load
 * it, checkpoint it, restore its settings and move both aliases to it.
 * true when the aliases moved. */
static bool build_generation(const rm_config_t *cfg, rm_os_sink_t *s, rm_replay_t *r,
                             rm_renewer_t *rn, int truncated, os_build_t *b) {
    b->started = time(NULL);
    b->t0 = rm_mono_s();
    r->profiles = true;
    if (rm_admin_replay(cfg, r) != RM_ERR_OK)
        return false;
    rm_admin_log_events(r);
    long gen = 0;
    if (rm_os_current(s, &b->old_docs, &b->old_state, &gen) != RM_ERR_OK) {
        rm_error("OpenSearch: %s", rm_os_sink_last_error(s));
        return false;
    }
    long next_gen = gen + 1;
    rm_os_gen_names(s, next_gen, b->new_docs, b->new_state, sizeof(b->new_docs));
    pract_t **all = rm_admin_collect(r, &b->documents);
    b->write_start = rm_mono_s() - b->t0;
    bool ok = all && rm_os_generation_create(s, next_gen) == RM_ERR_OK;
    if (ok)
        rm_info("building %s (refresh off, no replicas) beside %s", b->new_docs,
                b->old_docs ? b->old_docs : "(no index)");
    ok = ok && load(cfg, s, next_gen, all, b->documents, rn, &b->rejected);
    for (int p = 0; ok && p < r->partitions; p++)
        ok = rm_os_generation_checkpoint(s, next_gen, cfg->topic, p, r->high[p]) == RM_ERR_OK;
    ok = ok && rm_os_generation_finish(s, next_gen) == RM_ERR_OK;
    ok = ok && !atomic_load(&rn->lost) && rm_os_generation_activate(s, next_gen) == RM_ERR_OK;
    if (!ok && !atomic_load(&rn->lost))
        rm_error("rebuild failed: %s; the alias still points to %s", rm_os_sink_last_error(s),
                 b->old_docs ? b->old_docs : "nothing");
    if (ok)
        rm_info("alias %s now points to %s (one _aliases call)", rm_os_alias(s), b->new_docs);
    free(all);
    rebuild_report(s, r, b, ok, truncated);
    return ok;
}

/* After a successful move: keep the previous generation for rollback, or
 * delete it after the grace period (readers that resolved the alias before
 * the move finish first). */
static void drop_previous(const rm_config_t *cfg, rm_os_sink_t *s, const os_build_t *b) {
    if (!b->old_docs)
        return;
    if (cfg->keep_previous) {
        printf("previous generation kept for rollback: %s and %s (move the aliases back with "
               "one _aliases call, or delete them)\n",
               b->old_docs, b->old_state ? b->old_state : "-");
        return;
    }
    rm_info("deleting the previous generation %s in %d s (readers that resolved the "
            "alias before the move finish first)",
            b->old_docs, cfg->previous_grace_s);
    for (int i = 0; i < cfg->previous_grace_s * 10 && rm_running(); i++)
        usleep(100 * 1000);
    if (rm_os_index_delete(s, b->old_docs) != RM_ERR_OK ||
        (b->old_state && rm_os_index_delete(s, b->old_state) != RM_ERR_OK))
        rm_warn("could not delete the previous generation: %s; delete %s by hand",
                rm_os_sink_last_error(s), b->old_docs);
}

static rm_err_t os_rebuild(const rm_config_t *cfg, rm_replay_t *r, int truncated) {
    if (cfg->flush)
        rm_warn("--flush does not apply to OpenSearch: the index is rebuilt beside the live one "
                "and swapped in, so readers never see it empty");
    rm_os_sink_t *s = open_sink(cfg), *lease_sink = open_sink(cfg);
    rm_err_t rc = RM_ERR_IO;
    char holder[256];
    rm_admin_holder(holder, sizeof(holder));
    rm_renewer_t rn = {.target = "OpenSearch",
                       .sink = lease_sink,
                       .renew = renew_os,
                       .holder = holder,
                       .ttl_ms = cfg->lease_ttl_ms};
    if (s && lease_sink && (rc = take_lease(cfg, s, lease_sink, holder)) == RM_ERR_OK) {
        os_build_t b = {0};
        bool held = true; /* a lost lease is not ours to release */
        if (rm_renewer_start(&rn) != RM_ERR_OK) {
            rc = RM_ERR_IO;
        } else {
            rc = build_generation(cfg, s, r, &rn, truncated, &b) ? RM_ERR_OK : RM_ERR_IO;
            held = rm_renewer_stop(&rn);
        }
        if (held && rm_os_lease_release(lease_sink, holder) != RM_ERR_OK)
            rm_warn("could not release the OpenSearch lease (%s); it expires in %d ms",
                    rm_os_sink_last_error(lease_sink), cfg->lease_ttl_ms);
        if (rc == RM_ERR_OK)
            drop_previous(cfg, s, &b);
        free(b.old_docs);
        free(b.old_state);
    }
    rm_os_sink_free(s);
    rm_os_sink_free(lease_sink);
    return rc;
}

/* ---- verify ---- */

typedef struct {
    rm_replay_t *r;
    const int64_t *ends; /* each partition's end offset when the comparison started */
    pract_map_t seen;    /* practitioners found in the index */
    unsigned long long missing, wrong, extra, skipped, same, checkpoints_wrong;
    int nex[3];
    char ex[3][EXAMPLES][160];
    bool failed;
} compare_t;

static void example(compare_t *c, int kind, const char *id, const char *why) {
    if (c->nex[kind] < EXAMPLES)
        snprintf(c->ex[kind][c->nex[kind]++], 160, "%s%s", id, why);
}

static pract_t *replayed(rm_replay_t *r, const char *id, size_t len) {
    for (int p = 0; p < r->partitions; p++) {
        pract_t *pr = rm_pract_find(&r->maps[p], id, len);
        if (pr)
            return pr;
    }
    return NULL;
}

static void on_doc(const char *id, json_t *src, long long version, void *arg) {
    compare_t *c = arg;
    size_t len = strlen(id);
    pract_t *pr = len <= RM_MAX_ID_CHARS ? replayed(c->r, id, len) : NULL;
    if (!pr) {
        c->extra++;
        example(c, 2, id, "");
        return;
    }
    if (!rm_pract_add(&c->seen, id, len))
        c->failed = true;
    long long fence = version - 1;
    int32_t fp = pr->fence_partition;
    if (fp >= 0 && fp < c->r->partitions && fence >= c->ends[fp]) {
        c->wrong++; /* no event at that offset exists: the log was reset */
        example(c, 1, id, " (version above the log's end: the log was reset)");
        return;
    }
    if (fp >= 0 && fp < c->r->partitions && fence >= c->r->high[fp]) {
        c->skipped++; /* a live serve applied newer events: not comparable */
        return;
    }
    char *doc;
    size_t dlen;
    if (rm_doc_render(pr->pid, pr->pid_len, &pr->profile, &pr->st, &doc, &dlen) != 0) {
        c->failed = true;
        return;
    }
    json_t *want = json_loadb(doc, dlen, 0, NULL);
    free(doc);
    if (!json_equal(want, src)) {
        c->wrong++;
        example(c, 1, id, fence != pr->fence ? " (older version)" : "");
    } else {
        c->same++;
    }
    json_decref(want);
}

/* Checkpoints below the plan's end, or above the log's current end (a
 * reset log), are drift. 0, or -1 when they could not be read. */
static int compare_checkpoints(rm_os_sink_t *s, const rm_config_t *cfg, compare_t *c) {
    for (int p = 0; p < c->r->partitions; p++) {
        int64_t cp;
        if (rm_os_checkpoint_get(s, cfg->topic, p, &cp) != RM_ERR_OK)
            return -1;
        if (cp < c->r->high[p] || cp > c->ends[p]) {
            c->checkpoints_wrong++;
            int64_t want = cp < c->r->high[p] ? c->r->high[p] : c->ends[p];
            char line[256];
            snprintf(line, sizeof(line), "  checkpoint of partition %d: %lld, log end %lld%s", p,
                     (long long)cp, (long long)want,
                     cp > c->ends[p] ? ": above the log's end, the log was reset; run `readmodel "
                                       "rebuild --target opensearch`"
                                     : "");
            rm_report_checkpoint(p, cp, want,
                                 cp > c->ends[p] ? "above_log_end"
                                 : cp < 0        ? "missing"
                                                 : "behind",
                                 line);
        }
    }
    return 0;
}

/* Every document behind the alias against the replay, then the checkpoints.
 * 0, or -1 when the index could not be read (logged). */
static int compare_index(const rm_config_t *cfg, rm_os_sink_t *s, compare_t *c) {
    rm_progress_t cp;
    size_t n = 0;
    pract_t **all = rm_admin_collect(c->r, &n);
    rm_progress_begin(&cp, RM_PHASE_COMPARE, n);
    rm_err_t e = all ? rm_os_scan(s, on_doc, c) : RM_ERR_NOMEM;
    for (size_t i = 0; e == RM_ERR_OK && i < n; i++)
        if (!rm_pract_find(&c->seen, all[i]->pid, all[i]->pid_len)) {
            c->missing++;
            example(c, 0, all[i]->pid, "");
        }
    rm_progress_end(&cp, n);
    free(all);
    if (e != RM_ERR_OK || c->failed || compare_checkpoints(s, cfg, c) < 0) {
        rm_error("reading the index: %s", rm_os_sink_last_error(s));
        return -1;
    }
    return 0;
}

static rm_err_t os_verify(const rm_config_t *cfg, rm_replay_t *r, int truncated) {
    (void)truncated; /* the summary line is the same either way */
    rm_os_sink_t *s = open_sink(cfg);
    if (!s)
        return RM_ERR_IO;
    r->profiles = true;
    rm_err_t rc = RM_ERR_IO;
    int64_t *ends = calloc((size_t)r->partitions + 1, sizeof(*ends));
    compare_t c = {.r = r, .ends = ends};
    if (!ends || rm_admin_replay(cfg, r) != RM_ERR_OK || rm_replay_ends(cfg, r, ends) != RM_ERR_OK)
        goto done;
    rm_admin_log_events(r);
    if (compare_index(cfg, s, &c) < 0)
        goto done;
    unsigned long long drift = c.missing + c.wrong + c.extra + c.checkpoints_wrong;
    rm_report_set("counts", json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "drift", (json_int_t)drift,
                                      "documents_missing", (json_int_t)c.missing, "documents_wrong",
                                      (json_int_t)c.wrong, "documents_extra", (json_int_t)c.extra,
                                      "documents_correct", (json_int_t)c.same, "documents_skipped",
                                      (json_int_t)c.skipped, "checkpoints_wrong",
                                      (json_int_t)c.checkpoints_wrong));
    if (!rm_report_json())
        printf("verify (opensearch): %llu document(s) identical, %llu missing, %llu wrong, %llu "
               "extra, %llu skipped (updated by a live serve during verify); checkpoints: %llu "
               "wrong\n",
               c.same, c.missing, c.wrong, c.extra, c.skipped, c.checkpoints_wrong);
    const char *titles[] = {"missing", "wrong", "extra"};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < c.nex[k]; i++)
            rm_report_example(titles[k], c.ex[k][i]);
    json_t *rec =
        json_pack("{s:I,s:I}", "finished_at", (json_int_t)time(NULL), "drift", (json_int_t)drift);
    if (!rec || rm_os_record_set(s, "verify:last:opensearch", rec) != RM_ERR_OK)
        rm_warn("could not record the verify result: %s", rm_os_sink_last_error(s));
    json_decref(rec);
    rc = drift ? RM_ERR_DRIFT : RM_ERR_OK;
    unsigned long long seen = c.same + c.wrong + c.skipped;
    if (!drift && seen > 0 && c.skipped == seen) {
        rm_report_note("verify could not compare: every document moved on during verify (a live "
                       "serve applied newer events); run it again when the log is quieter");
        rc = RM_ERR_IO;
    }
done:
    free(ends);
    rm_pract_map_free(&c.seen);
    rm_os_sink_free(s);
    return rc;
}

/* ---- status ---- */

static void print_record(rm_os_sink_t *s, const char *key, const char *title, const char *name) {
    json_t *rec = NULL;
    if (rm_os_record_get(s, name, &rec) != RM_ERR_OK) {
        json_decref(rec);
        rec = NULL;
    }
    rm_report_record(key, title, rec);
}

static rm_err_t os_status(const rm_config_t *cfg, rm_replay_t *r) {
    rm_os_sink_t *s = open_sink(cfg);
    if (!s)
        return RM_ERR_IO;
    rm_err_t rc = RM_ERR_OK;
    char *docs = NULL, *state = NULL;
    long gen = 0;
    if (rm_os_current(s, &docs, &state, &gen) != RM_ERR_OK) {
        rm_error("OpenSearch: %s", rm_os_sink_last_error(s));
        rm_os_sink_free(s);
        return RM_ERR_IO;
    }
    rm_report_set("alias", json_string(rm_os_alias(s)));
    rm_report_set("index", docs ? json_string(docs) : json_null());
    rm_report_set("generation", json_integer(gen));
    if (!rm_report_json()) {
        printf("target opensearch, topic %s, alias %s -> %s (generation %ld)\n", cfg->topic,
               rm_os_alias(s), docs ? docs : "(none: serve creates it)", gen);
        printf("%-10s %12s %12s %12s %10s\n", "partition", "earliest", "end", "checkpoint", "lag");
    }
    for (int p = 0; docs && p < r->partitions; p++) {
        int64_t cp = -1;
        if (rm_os_checkpoint_get(s, cfg->topic, p, &cp) != RM_ERR_OK) {
            rm_error("%s", rm_os_sink_last_error(s));
            rc = RM_ERR_IO;
            break;
        }
        rm_report_partition(r, p, cp);
    }
    char holder[256];
    long long ttl;
    if (rc == 0 && rm_os_lease_get(s, holder, sizeof(holder), &ttl) == RM_ERR_OK)
        rm_report_lease(holder, ttl);
    if (rc == 0) {
        print_record(s, "last_rebuild", "last rebuild", "rebuild:last:opensearch");
        print_record(s, "last_verify", "last verify", "verify:last:opensearch");
    }
    free(docs);
    free(state);
    rm_os_sink_free(s);
    return rc;
}

const rm_admin_target_t rm_admin_opensearch = {
    .sink = &rm_os_sink_ops,
    .rebuild = os_rebuild,
    .verify = os_verify,
    .status = os_status,
};
