/* `readmodel rebuild`, `verify` and `status`: parse, then run. */
#include "commands.h"
#include "readmodel/admin.h"
#include "readmodel/config.h"

#include <stdio.h>

/* The exit codes documented in the commands' --help. */
enum {
    EXIT_OK = 0,
    EXIT_FAILED = 1, /* rebuild or status failed; verify found drift */
    EXIT_USAGE = 2,  /* bad usage; for verify also "could not compare" */
    EXIT_TRUNCATED = 3,
    EXIT_LEASE_HELD = 4,
};

/* The one mapping of an admin command's result to its exit code. */
static int exit_of(rm_command_t cmd, rm_err_t e) {
    switch (e) {
    case RM_ERR_OK:
        return EXIT_OK;
    case RM_ERR_DRIFT:
        return EXIT_FAILED;
    case RM_ERR_TRUNCATED:
        return EXIT_TRUNCATED;
    case RM_ERR_LEASE_HELD:
        return EXIT_LEASE_HELD;
    case RM_ERR_INVAL:
        return EXIT_USAGE;
    default:
        return cmd == RM_CMD_VERIFY ? EXIT_USAGE : EXIT_FAILED;
    }
}

static int run(rm_command_t cmd, int argc, char **argv) {
    rm_config_t cfg;
    char err[512];
    int rc;
    switch (rm_config_parse(cmd, argc, argv, &cfg, err, sizeof(err))) {
    case RM_CONFIG_HELP:
        fputs(rm_usage(cmd), stdout);
        rc = 0;
        break;
    case RM_CONFIG_ERROR:
        fprintf(stderr, "readmodel %s: %s\n", argv[0], err);
        rc = EXIT_USAGE;
        break;
    default:
        if (cfg.check_config) {
            rm_config_print(&cfg, stdout);
            rc = rm_config_check_redis(cmd, &cfg, stdout, err, sizeof(err)) ? EXIT_USAGE : 0;
            if (rc)
                fprintf(stderr, "readmodel %s: %s\n", argv[0], err);
        } else {
            rc = exit_of(cmd, cmd == RM_CMD_REBUILD  ? rm_rebuild_main(&cfg)
                              : cmd == RM_CMD_VERIFY ? rm_verify_main(&cfg)
                                                     : rm_status_main(&cfg));
        }
    }
    rm_config_free(&cfg);
    return rc;
}

int rm_cmd_rebuild(int argc, char **argv) {
    return run(RM_CMD_REBUILD, argc, argv);
}

int rm_cmd_verify(int argc, char **argv) {
    return run(RM_CMD_VERIFY, argc, argv);
}

int rm_cmd_status(int argc, char **argv) {
    return run(RM_CMD_STATUS, argc, argv);
}
