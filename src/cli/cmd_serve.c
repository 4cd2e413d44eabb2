/* `readmodel serve`: parse the configuration, then run the workers. */
#include "commands.h"
#include "readmodel/config.h"
#include "readmodel/log.h"
#include "readmodel/serve.h"

#include <stdio.h>

int rm_cmd_serve(int argc, char **argv) {
    rm_config_t cfg;
    char err[512];
    switch (rm_config_parse(RM_CMD_SERVE, argc, argv, &cfg, err, sizeof(err))) {
    case RM_CONFIG_HELP:
        fputs(rm_usage(RM_CMD_SERVE), stdout);
        rm_config_free(&cfg);
        return 0;
    case RM_CONFIG_ERROR:
        fprintf(stderr, "readmodel serve: %s\n", err);
        rm_config_free(&cfg);
        return 2;
    case RM_CONFIG_OK:
        break;
    }
    if (cfg.check_config) {
        rm_config_print(&cfg, stdout);
        int rc = rm_config_check_redis(RM_CMD_SERVE, &cfg, stdout, err, sizeof(err)) ? 2 : 0;
        if (rc)
            fprintf(stderr, "readmodel serve: %s\n", err);
        rm_config_free(&cfg);
        return rc;
    }
    rm_err_t e = rm_serve_run(&cfg, NULL);
    rm_config_free(&cfg);
    return rm_exit_code(e);
}
