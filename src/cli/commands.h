/* The readmodel subcommands; each returns the process exit code. */
#ifndef READMODEL_COMMANDS_H
#define READMODEL_COMMANDS_H

#include "readmodel/error.h"

int rm_cmd_serve(int argc, char **argv);
int rm_cmd_dev_kafka(int argc, char **argv);
int rm_cmd_gen(int argc, char **argv);
int rm_cmd_rebuild(int argc, char **argv);
int rm_cmd_verify(int argc, char **argv);
int rm_cmd_status(int argc, char **argv);

/* The one mapping of an error below the command layer to an exit code:
 * RM_ERR_OK 0, RM_ERR_INVAL (configuration the clients rejected) 2,
 * anything else 1. */
int rm_exit_code(rm_err_t e);

#endif
