/*
 * Command-line and environment configuration of `serve`. Flags override the
 * environment; the environment overrides defaults. Parsing never exits: it
 * returns an error naming the setting, and main() turns that into exit 2.
 */
#ifndef READMODEL_CONFIG_H
#define READMODEL_CONFIG_H

#include "readmodel/serve.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum { RM_CONFIG_OK, RM_CONFIG_HELP, RM_CONFIG_ERROR } rm_config_result_t;

typedef enum { RM_CMD_SERVE, RM_CMD_REBUILD, RM_CMD_VERIFY, RM_CMD_STATUS } rm_command_t;

/* Parses the arguments of `cmd` (argv[0] is the command name) into *cfg,
 * which owns its strings afterwards (free with rm_serve_config_free). A flag
 * that belongs to another command is an error. On RM_CONFIG_ERROR, err holds
 * one line such as "--workers: must be 1..256 (got 0)". */
rm_config_result_t rm_config_parse(rm_command_t cmd, int argc, char **argv, rm_serve_config_t *cfg,
                                   char *err, size_t errlen);
void rm_serve_config_free(rm_serve_config_t *cfg);
/* Writes the effective configuration, secrets masked, one setting a line. */
void rm_serve_config_print(const rm_serve_config_t *cfg, FILE *out);
/* --help text of each command. */
const char *rm_usage(rm_command_t cmd);

#endif
