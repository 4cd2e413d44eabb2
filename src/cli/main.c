/*
 * readmodel: command dispatch, signals, exit codes. Everything below main()
 * returns errors; only main() and the cmd_* functions turn them into exit
 * codes (0 ok, 1 runtime failure, 2 bad usage or configuration).
 */
#include "commands.h"
#include "readmodel/config.h"
#include "readmodel/metrics.h"
#include "readmodel/stop.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#ifndef RM_VERSION
#define RM_VERSION "dev"
#endif

int rm_exit_code(rm_err_t e) {
    return e == RM_ERR_OK ? 0 : e == RM_ERR_INVAL ? 2 : 1;
}

static void on_signal(int sig) {
    (void)sig;
    rm_stop_by_signal();
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN); /* a closed socket is an error return, not a signal */
    rm_metrics_process_started();
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (argc < 2) {
        fputs(rm_usage_main(), stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(rm_usage_main(), stdout);
        return 0;
    }
    /* Hidden: the build generates the man page and the completion with
     * these (CMakeLists.txt), from the same table as --help. */
    if (strcmp(cmd, "help-man") == 0) {
        rm_usage_man(stdout);
        return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
    }
    if (strcmp(cmd, "help-completion") == 0) {
        rm_usage_bash_completion(stdout);
        return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("readmodel %s\n", RM_VERSION);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return rm_cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "rebuild") == 0)
        return rm_cmd_rebuild(argc - 1, argv + 1);
    if (strcmp(cmd, "verify") == 0)
        return rm_cmd_verify(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return rm_cmd_status(argc - 1, argv + 1);
    if (strcmp(cmd, "dev-kafka") == 0)
        return rm_cmd_dev_kafka(argc - 1, argv + 1);
    if (strcmp(cmd, "gen") == 0)
        return rm_cmd_gen(argc - 1, argv + 1);
    fprintf(stderr, "readmodel: unknown command '%s' (see readmodel --help)\n", cmd);
    return 2;
}
