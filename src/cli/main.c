/*
 * readmodel: command dispatch, signals, exit codes. Everything below main()
 * returns errors; only main() and the cmd_* functions turn them into exit
 * codes (0 ok, 1 runtime failure, 2 bad usage or configuration).
 */
#include "commands.h"
#include "readmodel/metrics.h"
#include "readmodel/stop.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#ifndef RM_VERSION
#define RM_VERSION "dev"
#endif
#ifndef RM_DOCDIR
#define RM_DOCDIR "/usr/share/doc/readmodel"
#endif

static const char usage[] =
    "Usage: readmodel COMMAND [options]\n"
    "\n"
    "Keeps the booking platform's derived read models in step with the booking log.\n"
    "\n"
    "Commands:\n"
    "  serve       consume the log and maintain the Redis availability bitmaps and, with\n"
    "              --opensearch, the OpenSearch practitioner index\n"
    "  rebuild     repair a read model from the whole log while readers keep reading\n"
    "  verify      replay the log and compare with the live model (exit 1 on drift)\n"
    "  status      offsets, checkpoints, lag, rebuild lease and last rebuild\n"
    "  dev-kafka   run a local Kafka (librdkafka mock cluster) and print its bootstrap servers\n"
    "  gen         generate a deterministic, realistic booking log into Kafka or a file\n"
    "  version     print the version\n"
    "\n"
    "Run 'readmodel COMMAND --help' for a command's options.\n"
    "The contract (events read, keys and documents written, bit order of the bitmaps):\n"
    "docs/contract.md in the source tree, " RM_DOCDIR "/contract.md from the Debian\n"
    "package; examples of reading the model: examples/ (" RM_DOCDIR "/examples).\n";

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
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
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
