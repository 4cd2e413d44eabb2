/*
 * libFuzzer target: the configuration parser (rm_config_parse,
 * include/readmodel/config.h).
 *
 * Input: byte 0 picks the command (modulo the number of commands), the
 * rest is its argv after argv[0], split on NUL and newline bytes (at most
 * 64 arguments, each in its own heap buffer). The environment is part of
 * the configuration too: READMODEL_* and AWS_* are unset once at start, so
 * every run sees the same environment. rm_config_parse resets getopt
 * itself (optind = 0); it is also reset here, to be independent of that.
 *
 * Checks: an error is one non-empty line (control characters escaped, as
 * the header promises); a parsed configuration prints (--check-config) and
 * rm_config_free leaves it zeroed, whatever the result.
 */
#include "readmodel/config.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern char **environ;

enum { N_COMMANDS = RM_CMD_DEV_KAFKA + 1, MAX_ARGS = 64 };

static const char *const names[N_COMMANDS] = {"serve",  "rebuild", "verify",
                                              "status", "gen",     "dev-kafka"};
static FILE *devnull;

static void fail(const char *what) {
    fprintf(stderr, "fuzz_config: %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    for (;;) { /* unsetenv changes environ: look again after each */
        char name[256] = "";
        for (char **e = environ; *e && !name[0]; e++)
            if (strncmp(*e, "READMODEL_", 10) == 0 || strncmp(*e, "AWS_", 4) == 0 ||
                strncmp(*e, "POSIXLY_CORRECT=", 16) == 0)
                snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
        if (!name[0])
            break;
        unsetenv(name);
    }
    if (!(devnull = fopen("/dev/null", "w")))
        fail("cannot open /dev/null");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    rm_command_t cmd = (rm_command_t)(data[0] % N_COMMANDS);
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = strdup(names[cmd]);
    for (size_t i = 1; i < size && argc <= MAX_ARGS;) {
        size_t n = 0;
        while (i + n < size && data[i + n] != '\0' && data[i + n] != '\n')
            n++;
        argv[argc] = malloc(n + 1);
        memcpy(argv[argc], data + i, n);
        argv[argc++][n] = '\0';
        i += n + 1;
    }
    argv[argc] = NULL;
    char *owned[MAX_ARGS + 2]; /* getopt permutes argv */
    memcpy(owned, argv, sizeof(owned));

    rm_config_t cfg;
    char err[512] = "";
    optind = 0;
    switch (rm_config_parse(cmd, argc, argv, &cfg, err, sizeof(err))) {
    case RM_CONFIG_OK:
        rm_config_print(&cfg, devnull);
        break;
    case RM_CONFIG_HELP:
        if (!rm_usage(cmd)[0])
            fail("empty usage text");
        break;
    case RM_CONFIG_ERROR:
        if (!err[0])
            fail("error without a message");
        for (const char *c = err; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                fail("error message with a control character");
        break;
    default:
        fail("unknown result");
    }
    rm_config_free(&cfg);
    static const rm_config_t zero;
    if (memcmp(&cfg, &zero, sizeof(cfg)) != 0)
        fail("rm_config_free left something behind");
    for (int i = 0; i < argc; i++)
        free(owned[i]);
    return 0;
}
