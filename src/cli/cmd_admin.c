/* `readmodel rebuild`, `verify` and `status`: parse, then run. */
#include "commands.h"
#include "readmodel/admin.h"
#include "readmodel/config.h"

#include <stdio.h>

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
        rc = RM_EXIT_USAGE;
        break;
    default:
        if (cfg.check_config) {
            rm_config_print(&cfg, stdout);
            rc = 0;
        } else {
            rc = cmd == RM_CMD_REBUILD  ? rm_rebuild_main(&cfg)
                 : cmd == RM_CMD_VERIFY ? rm_verify_main(&cfg)
                                        : rm_status_main(&cfg);
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
