/* The readmodel subcommands; each returns the process exit code. */
#ifndef READMODEL_COMMANDS_H
#define READMODEL_COMMANDS_H

int rm_cmd_serve(int argc, char **argv);
int rm_cmd_dev_kafka(int argc, char **argv);
int rm_cmd_gen(int argc, char **argv);
int rm_cmd_rebuild(int argc, char **argv);
int rm_cmd_verify(int argc, char **argv);
int rm_cmd_status(int argc, char **argv);

/* Set by SIGINT/SIGTERM (see main.c). */
extern volatile int rm_cli_interrupted;

#endif
