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

/* Parses `serve` arguments (argv[0] is "serve") into *cfg, which owns its
 * strings afterwards (free with rm_serve_config_free). On RM_CONFIG_ERROR,
 * err holds one line such as "--workers: must be 1..256 (got 0)". */
rm_config_result_t rm_serve_config_parse(int argc, char **argv, rm_serve_config_t *cfg, char *err,
                                         size_t errlen);
void rm_serve_config_free(rm_serve_config_t *cfg);
/* Writes the effective configuration, secrets masked, one setting a line. */
void rm_serve_config_print(const rm_serve_config_t *cfg, FILE *out);
extern const char rm_serve_usage[];

#endif
