/*
 * The admin commands (rebuild, verify, status): the part every target
 * shares. For each sink the command targets (--target, "all": every
 * configured one, in pipeline order) it plans the replay, refuses truncated
 * history unless allowed, honours --dry-run, and hands the accepted plan to
 * that sink's implementation (rm_admin_target_t). Exit codes of several
 * targets combine in one documented way per command.
 */
#include "admin_internal.h"
#include "progress.h"
#include "report.h"
#include "readmodel/admin.h"
#include "readmodel/http.h"
#include "readmodel/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TARGETS 8

static const rm_admin_target_t *const targets[] = {&rm_admin_redis, &rm_admin_opensearch};

static const rm_admin_target_t *target_of(const rm_sink_ops_t *ops) {
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
        if (targets[i]->sink == ops)
            return targets[i];
    return NULL;
}

typedef enum { CMD_REBUILD, CMD_VERIFY, CMD_STATUS } command_t;

/* One target: plan, the checks every target shares, then its own work. */
static rm_err_t run_target(const rm_config_t *cfg, const rm_admin_target_t *t, command_t cmd) {
    rm_replay_t r;
    if (rm_replay_plan(cfg, &r) != RM_ERR_OK) {
        rm_replay_free(&r);
        return RM_ERR_IO;
    }
    rm_err_t rc;
    int truncated = rm_replay_truncated(&r);
    if (cmd != CMD_STATUS && rm_report_json())
        rm_report_plan(cfg, &r, stdout);
    if (cmd == CMD_STATUS) {
        rc = t->status(cfg, &r);
    } else if (cmd == CMD_REBUILD) {
        if (!rm_report_json())
            rm_report_plan(cfg, &r, stdout);
        if (truncated && !cfg->allow_truncated) {
            fprintf(stderr,
                    "readmodel rebuild: %d partition(s) start above offset 0: a model built from "
                    "this log would be incomplete unless AvailabilitySnapshot events after the "
                    "earliest offsets summarise what is gone. Nothing was written. Re-run with "
                    "--allow-truncated-history to accept it.\n",
                    truncated);
            rc = RM_ERR_TRUNCATED;
        } else if (cfg->dry_run) {
            rm_report_set("dry_run", json_true());
            if (!rm_report_json())
                printf("dry run (%s): nothing changed\n", t->sink->name);
            rc = RM_ERR_OK;
        } else {
            rc = t->rebuild(cfg, &r, truncated);
        }
    } else if (truncated && !cfg->allow_truncated) {
        if (!rm_report_json())
            rm_report_plan(cfg, &r, stderr);
        fprintf(stderr,
                "readmodel verify: %d partition(s) start above offset 0; re-run with "
                "--allow-truncated-history to compare anyway\n",
                truncated);
        rc = RM_ERR_TRUNCATED;
    } else {
        rc = t->verify(cfg, &r, truncated);
    }
    rm_replay_free(&r);
    return rc;
}

/* How bad a verify result is, to report the worst of several targets:
 * could not compare, then truncated history, then drift. */
static int verify_severity(rm_err_t e) {
    return e == RM_ERR_OK ? 0 : e == RM_ERR_DRIFT ? 1 : e == RM_ERR_TRUNCATED ? 2 : 3;
}

/* The result of a command (or one target) as the JSON report names it. */
static const char *result_name(const rm_config_t *cfg, command_t cmd, rm_err_t e) {
    switch (e) {
    case RM_ERR_OK:
        return cmd == CMD_VERIFY   ? "identical"
               : cmd == CMD_STATUS ? "ok"
               : cfg->dry_run      ? "dry_run"
                                   : "rebuilt";
    case RM_ERR_DRIFT:
        return "drift";
    case RM_ERR_TRUNCATED:
        return "truncated_refused";
    case RM_ERR_LEASE_HELD:
        return "lease_held";
    case RM_ERR_INVAL:
        return "usage_error";
    default:
        return cmd == CMD_VERIFY ? "could_not_compare" : "failed";
    }
}

/* Runs cmd on every targeted sink. rebuild stops at the first target that
 * does not succeed and returns its result; verify and status go on and
 * return the worst (verify: "could not compare" above truncated history
 * above drift). */
static rm_err_t run_targets(const rm_config_t *cfg, command_t cmd) {
    const rm_sink_ops_t *ops[MAX_TARGETS];
    size_t n = rm_sinks_targeted(cfg, ops, MAX_TARGETS);
    if (n == 0) {
        rm_error("--target %s: no such target", cfg->target ? cfg->target : "(none)");
        return RM_ERR_INVAL;
    }
    rm_err_t worst = RM_ERR_OK;
    rm_report_begin(cfg, cmd == CMD_STATUS ? "status" : cmd == CMD_VERIFY ? "verify" : "rebuild");
    for (size_t i = 0; i < n; i++) {
        const rm_admin_target_t *t = target_of(ops[i]);
        if (!t)
            rm_error("%s: no %s implementation", ops[i]->name,
                     cmd == CMD_STATUS   ? "status"
                     : cmd == CMD_VERIFY ? "verify"
                                         : "rebuild");
        rm_report_target_begin(ops[i]->name);
        rm_err_t rc = t ? run_target(cfg, t, cmd) : RM_ERR_INVAL;
        rm_report_target_end(result_name(cfg, cmd, rc));
        if (cmd == CMD_VERIFY ? verify_severity(rc) > verify_severity(worst) : rc != RM_ERR_OK)
            worst = rc;
        if (cmd == CMD_REBUILD && rc != RM_ERR_OK)
            break;
    }
    rm_report_end(result_name(cfg, cmd, worst));
    return worst;
}

static rm_err_t rebuild_run(const rm_config_t *cfg) {
    return run_targets(cfg, CMD_REBUILD);
}

static rm_err_t verify_run(const rm_config_t *cfg) {
    return run_targets(cfg, CMD_VERIFY);
}

/* Runs a rebuild or verify with its own /metrics endpoint when
 * --metrics-addr is given, so a Kubernetes Job is observable while it runs.
 * Only the flag turns it on (not READMODEL_METRICS_ADDR), so a rebuild run
 * with `kubectl exec` inside a serve pod does not collide with serve's port. */
static rm_err_t with_metrics(const rm_config_t *cfg, const char *command,
                             rm_err_t (*run)(const rm_config_t *)) {
    rm_stats_t *st = NULL;
    rm_job_stats_t job = {.command = command};
    rm_http_t *http = NULL;
    if (cfg->metrics_addr) {
        char err[256] = "out of memory";
        st = calloc(1, sizeof(*st));
        if (st) {
            st->job = &job;
            http = rm_http_start(cfg->metrics_addr, st, cfg->topic, cfg->target, err, sizeof(err));
        }
        if (!http) {
            rm_error("--metrics-addr: %s", err);
            free(st);
            return RM_ERR_INVAL;
        }
        rm_info("metrics on %s (port %d): /metrics /livez /readyz", cfg->metrics_addr,
                rm_http_port(http));
        rm_progress_publish(&job);
        rm_progress_phase(RM_PHASE_PLAN);
    }
    rm_err_t rc = run(cfg);
    /* verify's drift found is a completed comparison */
    bool done = rc == RM_ERR_OK || rc == RM_ERR_DRIFT;
    rm_progress_phase(done ? RM_PHASE_DONE : RM_PHASE_FAILED);
    rm_progress_publish(NULL);
    rm_http_stop(http);
    free(st);
    return rc;
}

rm_err_t rm_rebuild_main(const rm_config_t *cfg) {
    return with_metrics(cfg, "rebuild", rebuild_run);
}

rm_err_t rm_verify_main(const rm_config_t *cfg) {
    return with_metrics(cfg, "verify", verify_run);
}

rm_err_t rm_status_main(const rm_config_t *cfg) {
    return run_targets(cfg, CMD_STATUS);
}
